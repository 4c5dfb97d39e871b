"use client";

import { App, List, Modal, Select, Spin, Typography } from "antd";
import { useState } from "react";
import { useT } from "@/i18n";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { deleteShare, listGroups, listShares, putShare, type KnowledgeBase, type SharePermission } from "./api";
import "./messages";

/** Which groups may read or edit a knowledge base. */
export function ShareModal({ base, onClose }: { base: KnowledgeBase | null; onClose: () => void }) {
  const t = useT();
  const { message } = App.useApp();
  const [busy, setBusy] = useState<string | null>(null);
  const state = useAsync(
    async () => (base ? Promise.all([listGroups(), listShares(base.id)]) : undefined),
    [base?.id],
  );
  const groups = state.data?.[0].items ?? [];
  const shares = new Map((state.data?.[1] ?? []).map((share) => [share.group_id, share.permission]));

  const change = async (groupId: string, value: SharePermission | "none") => {
    if (!base) return;
    setBusy(groupId);
    try {
      if (value === "none") await deleteShare(base.id, groupId);
      else await putShare(base.id, groupId, value);
      state.setData((previous) => {
        if (!previous) return previous;
        const rest = previous[1].filter((share) => share.group_id !== groupId);
        const next =
          value === "none"
            ? rest
            : [...rest, { group_id: groupId, permission: value, resource_id: base.id, resource_type: "knowledge_base" }];
        return [previous[0], next];
      });
      message.success(t("common.saved"));
    } catch (error) {
      message.error(errorMessage(error, t));
    } finally {
      setBusy(null);
    }
  };

  return (
    <Modal
      open={!!base}
      title={base ? t("kb.share.title", { name: base.name }) : ""}
      onCancel={onClose}
      footer={null}
      destroyOnHidden
    >
      <Typography.Paragraph type="secondary">{t("kb.share.hint")}</Typography.Paragraph>
      <ErrorAlert error={state.error} onRetry={state.reload} />
      {state.loading && !state.data ? (
        <Spin />
      ) : groups.length === 0 && !state.error ? (
        <Typography.Paragraph>{t("kb.share.noGroups")}</Typography.Paragraph>
      ) : (
        <List
          dataSource={groups}
          renderItem={(group) => (
            <List.Item
              actions={[
                <Select<SharePermission | "none">
                  key="permission"
                  aria-label={t("kb.share.group", { name: group.name })}
                  value={shares.get(group.id) ?? "none"}
                  loading={busy === group.id}
                  disabled={busy === group.id}
                  onChange={(value) => change(group.id, value)}
                  style={{ width: 130 }}
                  options={[
                    { value: "none", label: t("kb.share.none") },
                    { value: "read", label: t("kb.share.read") },
                    { value: "edit", label: t("kb.share.edit") },
                  ]}
                />,
              ]}
            >
              <List.Item.Meta title={group.name} description={group.description || undefined} />
            </List.Item>
          )}
        />
      )}
    </Modal>
  );
}
