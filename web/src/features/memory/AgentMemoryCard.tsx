"use client";

import { App, Card, Checkbox, Skeleton, Typography } from "antd";
import { useState } from "react";
import { useT } from "@/i18n";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { agentMemory, setAgentMemory } from "./api";
import "./messages";

/** The studio's memory card (members who manage memory): whether any run of the agent recalls and learns. */
export function AgentMemoryCard({ agentId }: { agentId: string }) {
  const t = useT();
  const { message } = App.useApp();
  const setting = useAsync(() => agentMemory(agentId), [agentId]);
  const [saving, setSaving] = useState(false);
  const change = async (enabled: boolean) => {
    setSaving(true);
    try {
      setting.setData(await setAgentMemory(agentId, enabled));
      message.success(enabled ? t("memory.studio.on") : t("memory.studio.off"));
    } catch (error) {
      message.error(errorMessage(error, t));
    } finally {
      setSaving(false);
    }
  };
  return (
    <Card title={<h2 style={{ fontSize: 16, margin: 0, fontWeight: 600 }}>{t("memory.title")}</h2>} size="small">
      <ErrorAlert error={setting.error} onRetry={setting.reload} />
      {setting.data ? (
        <>
          <Checkbox
            checked={setting.data.enabled}
            disabled={saving}
            onChange={(event) => void change(event.target.checked)}
            aria-describedby="agent-memory-hint"
          >
            {t("memory.studio.switch")}
          </Checkbox>
          <Typography.Paragraph type="secondary" id="agent-memory-hint" style={{ margin: "4px 0 0" }}>
            {t("memory.studio.hint")}
          </Typography.Paragraph>
        </>
      ) : setting.loading ? (
        <Skeleton active paragraph={false} />
      ) : null}
    </Card>
  );
}
