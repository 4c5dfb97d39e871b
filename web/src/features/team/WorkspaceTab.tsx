"use client";

import { Card, Flex, Switch, Typography } from "antd";
import { useState } from "react";
import { useT } from "@/i18n";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAction } from "@/ui/useAction";
import { useAsync } from "@/ui/useAsync";
import { getTenant, updateTenant } from "./api";
import "./messages";

/** The workspace's own settings (`GET`/`PATCH /api/tenant`): whether its skills' scripts may use the network. */
export function WorkspaceTab() {
  const t = useT();
  const tenant = useAsync(getTenant, []);
  const act = useAction();
  const [saving, setSaving] = useState(false);
  const save = async (checked: boolean) => {
    setSaving(true);
    await act(
      async () => tenant.setData(await updateTenant({ skills_network: checked })),
      t(checked ? "team.workspace.networkOn" : "team.workspace.networkOff"),
    );
    setSaving(false);
  };
  return (
    <>
      <ErrorAlert error={tenant.error} onRetry={tenant.reload} />
      <Card size="small" title={<h3 style={{ margin: 0, fontSize: 16 }}>{t("team.workspace.skills")}</h3>}>
        <Flex gap={12} align="flex-start">
          <Switch
            id="workspace-skills-network"
            checked={tenant.data?.skills_network ?? false}
            disabled={!tenant.data}
            loading={saving || tenant.loading}
            onChange={(checked) => void save(checked)}
            aria-describedby="workspace-skills-network-hint"
          />
          <div style={{ minWidth: 0 }}>
            <label htmlFor="workspace-skills-network" style={{ cursor: "pointer" }}>
              <Typography.Text strong>{t("team.workspace.network")}</Typography.Text>
            </label>
            <Typography.Paragraph type="secondary" id="workspace-skills-network-hint" style={{ margin: "4px 0 0" }}>
              {t("team.workspace.networkHint")}
            </Typography.Paragraph>
          </div>
        </Flex>
      </Card>
    </>
  );
}
