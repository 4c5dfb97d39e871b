"use client";

import { CheckCircleFilled, ImportOutlined, PlusOutlined, ThunderboltOutlined } from "@ant-design/icons";
import { App, Button, Flex, Input, Popconfirm, Space, Table, Tag, Typography, theme } from "antd";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { useMe } from "@/features/auth/SessionProvider";
import { useLocale } from "@/i18n";
import { AppShell } from "@/ui/AppShell";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { agentLabel, deleteAgent, listAgents, type Agent } from "./api";
import { GenerateAgentDrawer } from "./GenerateAgentDrawer";
import { ImportModal } from "./ImportModal";
import "./messages";
import "./builderMessages";

const PAGE_SIZE = 20;

export function AgentsListPage() {
  return (
    <AppShell>
      <AgentsList />
    </AppShell>
  );
}

function AgentsList() {
  const { t, locale } = useLocale();
  const { can } = useMe();
  const { message } = App.useApp();
  const { token } = theme.useToken();
  const router = useRouter();
  const [page, setPage] = useState(1);
  const [query, setQuery] = useState("");
  const agents = useAsync(() => listAgents({ q: query, limit: PAGE_SIZE, offset: (page - 1) * PAGE_SIZE }), [page, query]);
  const manage = can("agents.manage");
  const [generating, setGenerating] = useState(false);
  const [importing, setImporting] = useState(false);

  const remove = async (agent: Agent) => {
    try {
      await deleteAgent(agent.id);
      message.success(t("agents.deleted", { name: agentLabel(agent) }));
      if (agents.data?.items.length === 1 && page > 1) setPage(page - 1);
      else agents.reload();
    } catch (error) {
      message.error(errorMessage(error, t));
    }
  };

  const createButton = manage ? (
    <Flex gap={8} wrap>
      <Button icon={<ImportOutlined aria-hidden />} onClick={() => setImporting(true)}>
        {t("agents.import")}
      </Button>
      <Button icon={<ThunderboltOutlined aria-hidden />} onClick={() => setGenerating(true)}>
        {t("agents.gen.open")}
      </Button>
      <Button type="primary" icon={<PlusOutlined />} onClick={() => router.push("/agents/edit")}>
        {t("agents.create")}
      </Button>
    </Flex>
  ) : null;
  const formatDate = (value: string) =>
    new Date(value).toLocaleString(locale === "zh" ? "zh-CN" : "en", { dateStyle: "medium", timeStyle: "short" });
  const empty = !agents.loading && !agents.error && agents.data?.total === 0 && !query;

  return (
    <div style={{ maxWidth: 1100 }}>
      <Flex justify="space-between" align="center" wrap gap={12} style={{ marginBottom: 16 }}>
        <Typography.Title level={1} style={{ fontSize: 24, margin: 0 }}>
          {t("agents.title")}
        </Typography.Title>
        {empty ? null : createButton}
      </Flex>
      <ErrorAlert error={agents.error} onRetry={agents.reload} />
      {manage ? <GenerateAgentDrawer open={generating} onClose={() => setGenerating(false)} /> : null}
      {manage ? <ImportModal open={importing} onClose={() => setImporting(false)} /> : null}
      {empty ? (
        <EmptyState
          title={t("agents.empty")}
          hint={manage ? t("agents.emptyHint") : t("agents.emptyHintShared")}
          action={createButton}
        />
      ) : (
        <>
          <Input.Search
            aria-label={t("agents.search")}
            placeholder={t("agents.search")}
            allowClear
            onSearch={(value) => {
              setPage(1);
              setQuery(value.trim());
            }}
            style={{ maxWidth: 320, marginBottom: 12 }}
          />
          <Table<Agent>
            rowKey="id"
            loading={agents.loading}
            dataSource={agents.data?.items}
            scroll={{ x: "max-content" }}
            locale={{ emptyText: t("agents.noMatch") }}
            pagination={{
              current: page,
              pageSize: PAGE_SIZE,
              total: agents.data?.total ?? 0,
              showSizeChanger: false,
              hideOnSinglePage: true,
              onChange: setPage,
              showTotal: (total) => t("common.total", { count: total }),
            }}
            columns={[
              {
                title: t("common.name"),
                dataIndex: "name",
                width: 220,
                render: (name: string, agent) => (
                  <Flex vertical>
                    <Link href={`/agents/edit?id=${agent.id}`}>{agentLabel(agent)}</Link>
                    {agentLabel(agent) !== name ? (
                      <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                        {name}
                      </Typography.Text>
                    ) : null}
                  </Flex>
                ),
              },
              {
                title: t("agents.column.version"),
                dataIndex: "published_version",
                width: 110,
                render: (version: number | null) =>
                  version == null ? (
                    <Tag>{t("agents.draftOnly")}</Tag>
                  ) : (
                    <Tag icon={<CheckCircleFilled aria-hidden style={{ color: token.colorSuccess }} />}>
                      {t("agents.versionTag", { n: version })}
                    </Tag>
                  ),
              },
              {
                title: t("common.description"),
                dataIndex: "description",
                ellipsis: true,
                responsive: ["md"],
                render: (description: string) => description || <Typography.Text type="secondary">—</Typography.Text>,
              },
              {
                title: t("agents.field.tools"),
                dataIndex: "tools",
                width: 90,
                render: (tools: Agent["tools"]) => tools.length,
              },
              {
                title: t("common.updated"),
                dataIndex: "updated_at",
                width: 180,
                responsive: ["md"],
                render: formatDate,
              },
              {
                title: t("common.actions"),
                key: "actions",
                width: 170,
                render: (_, agent) => (
                  <Space size="small">
                    <Link href={`/agents/edit?id=${agent.id}`} aria-label={`${agent.can_edit ? t("common.edit") : t("agents.view")} ${agentLabel(agent)}`}>
                      {agent.can_edit ? t("common.edit") : t("agents.view")}
                    </Link>
                    {manage ? (
                      <Popconfirm
                        title={t("common.confirmDelete", { name: agentLabel(agent) })}
                        okText={t("common.delete")}
                        cancelText={t("common.cancel")}
                        okButtonProps={{ danger: true }}
                        onConfirm={() => remove(agent)}
                      >
                        <Button type="link" size="small" aria-label={`${t("common.delete")} ${agentLabel(agent)}`}>
                          {t("common.delete")}
                        </Button>
                      </Popconfirm>
                    ) : null}
                  </Space>
                ),
              },
            ]}
          />
        </>
      )}
    </div>
  );
}
