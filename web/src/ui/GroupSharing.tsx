"use client";

import { App, Select, Spin, Typography } from "antd";
import Link from "next/link";
import { useState } from "react";
import { useT } from "@/i18n";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";

export type ShareAccess = "read" | "edit";
type Access = ShareAccess | "none";

/** What one kind of resource calls its sharing (each feature keeps its own wording). */
export interface SharingTexts {
  hint: string;
  none: string;
  read: string;
  edit: string;
  accessOf: (group: string) => string;
  noGroups: string;
  noGroupsHint: string;
  toTeam: string;
}

/** Which groups may use (read) or change (edit) a resource; each change is saved at once. */
export function GroupSharing({
  resourceId,
  load,
  share,
  unshare,
  texts,
}: {
  resourceId: string;
  load: () => Promise<{ groups: { id: string; name: string }[]; shares: { group_id: string; permission: ShareAccess }[] }>;
  share: (groupId: string, access: ShareAccess) => Promise<unknown>;
  unshare: (groupId: string) => Promise<unknown>;
  texts: SharingTexts;
}) {
  const t = useT();
  const { message } = App.useApp();
  const state = useAsync(async () => {
    const { groups, shares } = await load();
    return { groups, shares: new Map(shares.map((item) => [item.group_id, item.permission])) };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- the resource decides what is loaded
  }, [resourceId]);
  const [busy, setBusy] = useState<string | null>(null);

  const change = async (groupId: string, access: Access) => {
    setBusy(groupId);
    try {
      if (access === "none") await unshare(groupId);
      else await share(groupId, access);
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
    return <EmptyState title={texts.noGroups} hint={texts.noGroupsHint} action={<Link href="/team?tab=groups">{texts.toTeam}</Link>} />;
  }
  const options = [
    { value: "none", label: texts.none },
    { value: "read", label: texts.read },
    { value: "edit", label: texts.edit },
  ];
  return (
    <>
      <Typography.Paragraph type="secondary">{texts.hint}</Typography.Paragraph>
      <ul style={{ listStyle: "none", margin: 0, padding: 0, maxWidth: 560 }}>
        {state.data.groups.map((group) => (
          <li
            key={group.id}
            style={{ display: "flex", justifyContent: "space-between", alignItems: "center", gap: 12, padding: "6px 0" }}
          >
            <Typography.Text ellipsis style={{ minWidth: 0 }}>
              {group.name}
            </Typography.Text>
            <Select
              aria-label={texts.accessOf(group.name)}
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
