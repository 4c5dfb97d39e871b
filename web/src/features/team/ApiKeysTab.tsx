"use client";

import { PlusOutlined } from "@ant-design/icons";
import { Alert, Button, Flex, Form, Input, InputNumber, Modal, Select, Table, Tag, Typography } from "antd";
import { useState } from "react";
import { useMe } from "@/features/auth/SessionProvider";
import { useT } from "@/i18n";
import { EmptyState } from "@/ui/EmptyState";
import { ConfirmButton } from "@/ui/ConfirmButton";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAction } from "@/ui/useAction";
import { useAsync } from "@/ui/useAsync";
import { currentConfig, serviceBase } from "@/api/config";
import { createApiKey, listAgents, listApiKeys, listMembers, revokeApiKey, type ApiKey, type ApiKeyCreated } from "./api";
import { CopyField, OkTag, useFormatDate } from "./shared";
import "./messages";

interface Values {
  name: string;
  agent_ids?: string[];
  expires_at?: string;
  daily_quota?: number | null;
  rate_limit_per_minute?: number | null;
}

/** Where OpenAI clients reach the agents: the northbound service's `/v1` (the UI's origin when embedded). */
function openAIBaseUrl(): string {
  const base = serviceBase("POST", "/v1/chat/completions") || window.location.origin;
  return `${base}/v1`;
}

/** The base URL for OpenAI clients and a short example, with the key's secret when it is known. */
function OpenAIUsage({ secret }: { secret?: string }) {
  const t = useT();
  const baseUrl = openAIBaseUrl();
  const example = [
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url="${baseUrl}", api_key="${secret ?? "nxk_..."}")`,
    "answer = client.chat.completions.create(",
    `    model="<agent name>",`,
    `    messages=[{"role": "user", "content": "Hello"}],`,
    ")",
    "print(answer.choices[0].message.content)",
  ].join("\n");
  return (
    <section aria-label={t("team.keys.openaiTitle")}>
      <Typography.Title level={5} style={{ marginTop: 0 }}>
        {t("team.keys.openaiTitle")}
      </Typography.Title>
      <Typography.Paragraph type="secondary">{t("team.keys.openaiHint")}</Typography.Paragraph>
      <CopyField label={t("team.keys.baseUrl")} value={baseUrl} />
      <pre
        aria-label={t("team.keys.example")}
        tabIndex={0}
        style={{ overflowX: "auto", fontSize: 12, padding: 12, margin: 0, borderRadius: 6, background: "rgba(127,127,127,0.1)" }}
      >
        {example}
      </pre>
    </section>
  );
}

export function ApiKeysTab() {
  const t = useT();
  const { can } = useMe();
  const formatDate = useFormatDate();
  const keys = useAsync(listApiKeys, []);
  const agents = useAsync(() => listAgents().catch(() => []), []);
  const all = can("api_keys.manage_all");
  const members = useAsync(() => (all ? listMembers() : Promise.resolve([])), [all]);
  const [form] = Form.useForm<Values>();
  const [creating, setCreating] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<ApiKeyCreated | null>(null);

  const create = async (values: Values) => {
    setBusy(true);
    setError(null);
    try {
      const key = await createApiKey({
        name: values.name,
        agent_ids: values.agent_ids?.length ? values.agent_ids : null,
        expires_at: values.expires_at ? new Date(values.expires_at).toISOString() : null,
        daily_quota: values.daily_quota ?? null,
        rate_limit_per_minute: values.rate_limit_per_minute ?? null,
      });
      setCreating(false);
      setCreated(key);
      keys.reload();
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };
  const act = useAction(keys.reload);
  const revoke = (key: ApiKey) => act(() => revokeApiKey(key.id), t("team.inv.revoked"));
  const createButton = (
    <Button
      type="primary"
      icon={<PlusOutlined />}
      onClick={() => {
        setError(null);
        setCreating(true);
      }}
    >
      {t("team.keys.create")}
    </Button>
  );
  const list = keys.data ?? [];
  const agentName = (id: string) => agents.data?.find((a) => a.id === id)?.name ?? id.slice(0, 8);
  const now = Date.now();

  return (
    <>
      <ErrorAlert error={keys.error} onRetry={keys.reload} />
      {!keys.loading && !keys.error && list.length === 0 ? (
        <EmptyState title={t("team.keys.empty")} hint={t("team.keys.emptyHint")} action={createButton} />
      ) : (
        <Flex vertical gap={16}>
          <Flex justify="flex-end">{createButton}</Flex>
          <Table<ApiKey>
            rowKey="id"
            size="small"
            loading={keys.loading}
            dataSource={list}
            pagination={false}
            scroll={{ x: "max-content" }}
            columns={[
              { title: t("common.name"), dataIndex: "name" },
              {
                title: t("team.keys.prefix"),
                key: "prefix",
                render: (_, key) => <Typography.Text code>{key.prefix}…</Typography.Text>,
              },
              ...(all
                ? [
                    {
                      title: t("team.member"),
                      key: "user",
                      render: (_: unknown, key: ApiKey) =>
                        members.data?.find((m) => m.user_id === key.user_id)?.display_name ?? "—",
                    },
                  ]
                : []),
              {
                title: t("nav.agents"),
                key: "agents",
                render: (_, key) =>
                  key.agent_ids === null
                    ? t("team.keys.allAgents")
                    : key.agent_ids.length <= 2
                      ? key.agent_ids.map(agentName).join(", ") || t("common.none")
                      : t("team.keys.agentCount", { count: key.agent_ids.length }),
              },
              {
                title: t("team.keys.limits"),
                key: "limits",
                render: (_, key) =>
                  [
                    key.rate_limit_per_minute ? t("team.keys.perMinute", { count: key.rate_limit_per_minute }) : null,
                    key.daily_quota ? t("team.keys.perDay", { count: key.daily_quota }) : null,
                  ]
                    .filter(Boolean)
                    .join(" · ") || t("team.keys.noLimits"),
              },
              {
                title: t("team.inv.expires"),
                key: "expires",
                render: (_, key) => (key.expires_at ? formatDate(key.expires_at) : t("team.keys.noExpiry")),
              },
              {
                title: t("team.keys.lastUsed"),
                key: "used",
                render: (_, key) => (key.last_used_at ? formatDate(key.last_used_at) : t("team.keys.never")),
              },
              {
                title: t("common.status"),
                key: "status",
                render: (_, key) =>
                  key.revoked ? (
                    <Tag>{t("team.inv.revoked")}</Tag>
                  ) : key.expires_at && new Date(key.expires_at).getTime() < now ? (
                    <Tag>{t("team.inv.expired")}</Tag>
                  ) : (
                    <OkTag>{t("team.inv.active")}</OkTag>
                  ),
              },
              {
                title: t("common.actions"),
                key: "actions",
                render: (_, key) =>
                  key.revoked ? null : (
                    <ConfirmButton
                      label={t("team.keys.revoke")}
                      question={t("team.keys.revokeConfirm", { name: key.name })}
                      target={key.name}
                      onConfirm={() => revoke(key)}
                    />
                  ),
              },
            ]}
          />
        </Flex>
      )}
      <div style={{ marginTop: 24 }}>
        <OpenAIUsage />
      </div>
      <Modal
        open={creating}
        title={t("team.keys.createTitle")}
        onCancel={() => setCreating(false)}
        onOk={() => form.submit()}
        okText={t("common.create")}
        cancelText={t("common.cancel")}
        confirmLoading={busy}
        destroyOnHidden
      >
        <ErrorAlert error={error} />
        <Form<Values> form={form} layout="vertical" onFinish={create}>
          <Form.Item name="name" label={t("common.name")} rules={[{ required: true, whitespace: true, message: t("auth.required") }]}>
            <Input maxLength={80} autoComplete="off" />
          </Form.Item>
          <Form.Item name="agent_ids" label={t("team.keys.agents")} extra={t("team.keys.agentsHint")}>
            <Select
              mode="multiple"
              allowClear
              showSearch={{ optionFilterProp: "label" }}
              options={(agents.data ?? []).map((agent) => ({ value: agent.id, label: agent.name }))}
            />
          </Form.Item>
          <Flex gap={12} wrap>
            <Form.Item name="expires_at" label={t("team.keys.expires")}>
              <Input type="datetime-local" style={{ width: 220 }} />
            </Form.Item>
            <Form.Item name="daily_quota" label={t("team.keys.quota")}>
              <InputNumber min={1} max={10_000_000} style={{ width: 160 }} />
            </Form.Item>
            <Form.Item name="rate_limit_per_minute" label={t("team.keys.rateLimit")}>
              <InputNumber min={1} max={100_000} style={{ width: 160 }} />
            </Form.Item>
          </Flex>
        </Form>
      </Modal>
      <Modal
        open={created !== null}
        title={t("team.keys.createdTitle")}
        onCancel={() => setCreated(null)}
        footer={
          <Button type="primary" onClick={() => setCreated(null)}>
            {t("common.close")}
          </Button>
        }
        destroyOnHidden
      >
        {created ? (
          <>
            <Alert type="warning" showIcon title={t("team.keys.onceWarning")} style={{ marginBottom: 16 }} />
            <CopyField label={t("team.keys.secret")} value={created.secret} />
            <Typography.Paragraph type="secondary">{t("team.keys.usage")}</Typography.Paragraph>
            <CopyField label={t("team.keys.mcpUrl")} value={mcpConnectionUrl(created.mcp_url)} />
            <Typography.Paragraph type="secondary">{t("team.keys.mcpUsage")}</Typography.Paragraph>
            <OpenAIUsage secret={created.secret} />
          </>
        ) : null}
      </Modal>
    </>
  );
}

/** The MCP connection URL of a new key: its path on the mcp service's address (the UI's own origin unless the
 * split shape names another one). */
function mcpConnectionUrl(path: string): string {
  const base = currentConfig()?.services?.mcp?.url || window.location.origin;
  return base.replace(/\/$/, "") + path;
}
