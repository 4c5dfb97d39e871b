"use client";

import { App, Select, Spin, Typography } from "antd";
import Link from "next/link";
import { useState } from "react";
import { useT } from "@/i18n";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { listGroups, listShares, shareAgent, unshareAgent, type SharePermission } from "./api";
import "./messages";

type Access = SharePermission | "none";

/** Which groups may use (read) or change (edit) the agent; each change is saved at once. */
export function SharingPanel({ agentId }: { agentId: string }) {
  const t = useT();
  const { message } = App.useApp();
  const state = useAsync(async () => {
    const [groups, shares] = await Promise.all([listGroups(), listShares(agentId)]);
    return { groups, shares: new Map(shares.map((share) => [share.group_id, share.permission])) };
  }, [agentId]);
  const [busy, setBusy] = useState<string | null>(null);

  const change = async (groupId: string, access: Access) => {
    setBusy(groupId);
    try {
      if (access === "none") await unshareAgent(agentId, groupId);
      else await shareAgent(agentId, groupId, access);
      state.setData((previous) => {
        const shares = new Map(previous?.shares);
        if (access === "none") shares.delete(groupId);
        else shares.set(groupId, access);
        return { groups: previous?.groups ?? [], shares };
      });
      message.success(t("common.saved"));
    } catch (error) {
      message.error(errorMessage(error, t));
    } finally {
      setBusy(null);
    }
  };

  if (state.error) return <ErrorAlert error={state.error} onRetry={state.reload} />;
  if (!state.data) return <Spin />;
  if (!state.data.groups.length) {
    return <EmptyState title={t("agents.share.noGroups")} hint={t("agents.share.noGroupsHint")} action={<Link href="/team">{t("agents.share.toTeam")}</Link>} />;
  }
  const options = [
    { value: "none", label: t("agents.share.none") },
    { value: "read", label: t("agents.share.read") },
    { value: "edit", label: t("agents.share.edit") },
  ];
  return (
    <>
      <Typography.Paragraph type="secondary">{t("agents.share.hint")}</Typography.Paragraph>
      <ul style={{ listStyle: "none", margin: 0, padding: 0 }}>
        {state.data.groups.map((group) => (
          <li
            key={group.id}
            style={{ display: "flex", justifyContent: "space-between", alignItems: "center", gap: 12, padding: "6px 0" }}
          >
            <Typography.Text ellipsis style={{ minWidth: 0 }}>
              {group.name}
            </Typography.Text>
            <Select
              aria-label={t("agents.share.accessOf", { name: group.name })}
              value={state.data?.shares.get(group.id) ?? "none"}
              loading={busy === group.id}
              disabled={busy === group.id}
              onChange={(access: Access) => change(group.id, access)}
              options={options}
              style={{ width: 150, flex: "none" }}
            />
          </li>
        ))}
      </ul>
    </>
  );
}
