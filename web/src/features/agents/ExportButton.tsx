"use client";

import { DownloadOutlined, DownOutlined } from "@ant-design/icons";
import { App, Button, Dropdown } from "antd";
import { useState } from "react";
import { useT } from "@/i18n";
import { errorMessage } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { downloadExport, listVersions, type Agent } from "./api";
import "./builderMessages";

/**
 * Export: the agent as a JSON document (its sub-agents included), downloaded. With versions, a menu chooses the
 * draft (for editors) or a version; readers export versions only.
 */
export function ExportButton({ agent, revision }: { agent: Agent; revision: number }) {
  const t = useT();
  const { message } = App.useApp();
  const [busy, setBusy] = useState(false);
  const versions = useAsync(() => listVersions(agent.id), [agent.id, revision]);

  const download = async (version?: number) => {
    setBusy(true);
    try {
      await downloadExport(agent.id, version);
      message.success(t("agents.export.done"));
    } catch (error) {
      message.error(errorMessage(error, t));
    } finally {
      setBusy(false);
    }
  };

  const list = versions.data ?? [];
  if (!list.length) {
    return agent.can_edit ? (
      <Button icon={<DownloadOutlined aria-hidden />} loading={busy} onClick={() => void download()}>
        {t("agents.export")}
      </Button>
    ) : null;
  }
  const items = [
    ...(agent.can_edit ? [{ key: "draft", label: t("agents.export.draft") }] : []),
    ...list.map((version) => ({
      key: String(version.number),
      label: version.published
        ? t("agents.export.versionPublished", { n: version.number })
        : t("agents.export.version", { n: version.number }),
    })),
  ];
  return (
    <Dropdown
      trigger={["click"]}
      menu={{ items, onClick: ({ key }) => void download(key === "draft" ? undefined : Number(key)) }}
    >
      <Button icon={<DownloadOutlined aria-hidden />} loading={busy} aria-haspopup="menu">
        {t("agents.export")} <DownOutlined aria-hidden />
      </Button>
    </Dropdown>
  );
}
