"use client";

import {
  CheckCircleFilled,
  CheckCircleOutlined,
  ClockCircleFilled,
  CloseCircleFilled,
  DeleteOutlined,
  MinusCircleOutlined,
  PlusOutlined,
  ProfileOutlined,
} from "@ant-design/icons";
import {
  Alert,
  App,
  Button,
  Descriptions,
  Drawer,
  Flex,
  Form,
  Grid,
  Input,
  InputNumber,
  Modal,
  Popconfirm,
  Space,
  Table,
  Tag,
  theme,
  Tooltip,
  Typography,
} from "antd";
import { useState } from "react";
import { useMe } from "@/features/auth/SessionProvider";
import { useLocale, useT } from "@/i18n";
import type { MessageKey } from "@/i18n/messages";
import { EmptyState } from "@/ui/EmptyState";
import { CheckResultAlert } from "@/ui/CheckResultAlert";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { useAction } from "@/ui/useAction";
import { useAsync } from "@/ui/useAsync";
import {
  checkRemoteAgent,
  createRemoteAgent,
  deleteRemoteAgent,
  listRemoteAgents,
  remoteAgentCard,
  type RemoteAgent,
  type RemoteCheck,
  type RemoteStatus,
} from "./api";
import "./messages";

/** A remote agent's health: an icon in the status's colour and the words. */
function StatusBadge({ status }: { status: RemoteStatus }) {
  const t = useT();
  const { token } = theme.useToken();
  const icon =
    status === "ok" ? (
      <CheckCircleFilled style={{ color: token.colorSuccess }} />
    ) : status === "unknown" ? (
      <MinusCircleOutlined style={{ color: token.colorTextSecondary }} />
    ) : status === "timeout" ? (
      <ClockCircleFilled style={{ color: token.colorWarning }} />
    ) : (
      <CloseCircleFilled style={{ color: token.colorError }} />
    );
  return (
    <Tag icon={icon} data-testid="remote-status">
      {t(`remote.status.${status}` as MessageKey)}
    </Tag>
  );
}

function checkText(t: ReturnType<typeof useT>, agent: RemoteAgent, result: RemoteCheck): string {
  const values = {
    name: agent.name,
    status: t(`remote.status.${result.status}` as MessageKey),
    ms: Math.round(result.latency_ms),
    detail: result.detail ?? "",
  };
  return result.status === "ok" ? t("remote.checkOk", values) : t("remote.checkFailed", values);
}

function CheckButton({ agent, onChecked }: { agent: RemoteAgent; onChecked: (result: RemoteCheck) => void }) {
  const t = useT();
  const { message } = App.useApp();
  const [checking, setChecking] = useState(false);
  const run = async () => {
    setChecking(true);
    try {
      onChecked(await checkRemoteAgent(agent.id));
    } catch (error) {
      message.error(errorMessage(error, t));
    } finally {
      setChecking(false);
    }
  };
  return (
    <Button size="small" icon={<CheckCircleOutlined />} loading={checking} onClick={run} aria-label={`${t("remote.check")} ${agent.name}`}>
      {t("remote.check")}
    </Button>
  );
}

interface AddValues {
  card_url: string;
  name?: string;
  api_key?: string;
  token?: string;
  timeout_seconds?: number;
}

/** Add by the card's URL, with the credentials the card declares (written, never read back). */
function AddModal({ open, onClose, onSaved }: { open: boolean; onClose: () => void; onSaved: () => void }) {
  const t = useT();
  const [form] = Form.useForm<AddValues>();
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (values: AddValues) => {
    setSaving(true);
    setError(null);
    try {
      await createRemoteAgent({
        card_url: values.card_url.trim(),
        ...(values.name?.trim() ? { name: values.name.trim() } : {}),
        ...(values.api_key ? { api_key: values.api_key } : {}),
        ...(values.token ? { token: values.token } : {}),
        enabled: true,
        timeout_seconds: values.timeout_seconds ?? 120,
      });
      form.resetFields();
      onSaved();
    } catch (caught) {
      setError(caught);
    } finally {
      setSaving(false);
    }
  };
  return (
    <Modal
      open={open}
      title={t("remote.addTitle")}
      onCancel={onClose}
      onOk={() => form.submit()}
      okText={t("remote.add")}
      cancelText={t("common.cancel")}
      confirmLoading={saving}
      destroyOnHidden
    >
      {error ? <Alert type="error" showIcon title={errorMessage(error, t)} style={{ marginBottom: 12 }} data-testid="remote-add-error" /> : null}
      <Form form={form} layout="vertical" onFinish={submit} initialValues={{ timeout_seconds: 120 }}>
        <Form.Item
          name="card_url"
          label={t("remote.cardUrl")}
          extra={t("remote.cardUrlHint")}
          rules={[{ required: true, whitespace: true, message: t("auth.required") }]}
        >
          <Input autoComplete="off" placeholder="https://agents.example.com/.well-known/agent-card.json" />
        </Form.Item>
        <Form.Item name="name" label={t("remote.name")} extra={t("remote.nameHint")}>
          <Input autoComplete="off" maxLength={30} />
        </Form.Item>
        <Form.Item name="api_key" label={t("remote.apiKey")} extra={t("remote.secretHint")}>
          <Input.Password autoComplete="new-password" visibilityToggle={false} />
        </Form.Item>
        <Form.Item name="token" label={t("remote.token")} extra={t("remote.secretHint")}>
          <Input.Password autoComplete="new-password" visibilityToggle={false} />
        </Form.Item>
        <Form.Item name="timeout_seconds" label={t("remote.timeout")}>
          <InputNumber min={1} max={3600} style={{ width: "100%" }} />
        </Form.Item>
        {/* Enter in a field submits the form (the visible button is the dialog's). */}
        <button type="submit" hidden tabIndex={-1} aria-hidden="true" />
      </Form>
    </Modal>
  );
}

/** The card's details: description, skills, credentials, the raw card. */
function CardDetails({ agent }: { agent: RemoteAgent }) {
  const t = useT();
  const card = useAsync(() => remoteAgentCard(agent.id), [agent.id, agent.card_fetched_at]);
  return (
    <Flex vertical gap={12}>
      <Descriptions
        column={1}
        size="small"
        bordered
        items={[
          { key: "agent", label: t("remote.agent"), children: `${agent.agent_name} ${agent.version ? `(${agent.version})` : ""}` },
          { key: "tool", label: t("remote.toolName"), children: <Typography.Text code>{agent.tool_name}</Typography.Text> },
          { key: "stream", label: t("remote.answers"), children: agent.streaming ? t("remote.streaming") : t("remote.notStreaming") },
          {
            key: "auth",
            label: t("remote.auth"),
            children: (
              <>
                {agent.auth.length ? agent.auth.join(", ") : t("remote.authNone")}
                {agent.header_names.length ? (
                  <div>
                    <Typography.Text type="secondary">{t("remote.stored", { names: agent.header_names.join(", ") })}</Typography.Text>
                  </div>
                ) : null}
              </>
            ),
          },
        ]}
      />
      <Typography.Paragraph>{agent.description}</Typography.Paragraph>
      <Typography.Title level={3} style={{ fontSize: 16, margin: 0 }}>
        {t("remote.skills")}
      </Typography.Title>
      {agent.skills.length === 0 ? (
        <Typography.Text type="secondary">{t("remote.noSkills")}</Typography.Text>
      ) : (
        <ul style={{ margin: 0, paddingInlineStart: 20 }} data-testid="remote-skills">
          {agent.skills.map((skill) => (
            <li key={skill.id}>
              <Typography.Text strong>{skill.name}</Typography.Text>: {skill.description}
            </li>
          ))}
        </ul>
      )}
      <Typography.Title level={3} style={{ fontSize: 16, margin: 0 }}>
        {t("remote.rawCard")}
      </Typography.Title>
      <ErrorAlert error={card.error} onRetry={card.reload} />
      <pre
        tabIndex={0}
        aria-label={t("remote.rawCard")}
        style={{ maxHeight: 320, overflow: "auto", fontSize: 12, whiteSpace: "pre-wrap", wordBreak: "break-all", margin: 0 }}
      >
        {card.data ? JSON.stringify(card.data.card, null, 2) : ""}
      </pre>
    </Flex>
  );
}

/** `/remote-agents`: the tenant's A2A agents; add by card URL, check, see the card, remove. */
export function RemoteAgentsPage() {
  const t = useT();
  const { can } = useMe();
  const { locale } = useLocale();
  const screens = Grid.useBreakpoint();
  const agents = useAsync(listRemoteAgents, []);
  const [adding, setAdding] = useState(false);
  const [detailsId, setDetailsId] = useState<string | null>(null);
  const [lastCheck, setLastCheck] = useState<{ agent: RemoteAgent; result: RemoteCheck } | null>(null);
  const act = useAction(agents.reload);
  const list = agents.data ?? [];
  const details = list.find((agent) => agent.id === detailsId) ?? null;
  const checked = (agent: RemoteAgent) => (result: RemoteCheck) => {
    setLastCheck({ agent, result });
    agents.reload();
  };
  const addButton = (
    <Button type="primary" icon={<PlusOutlined />} onClick={() => setAdding(true)}>
      {t("remote.add")}
    </Button>
  );
  return (
    <>
      <Typography.Title level={2} style={{ marginTop: 0 }}>
        {t("remote.title")}
      </Typography.Title>
      <Typography.Paragraph type="secondary">{t("remote.intro")}</Typography.Paragraph>
      {!can("tools.manage") ? (
        <Alert type="info" showIcon title={t("remote.readOnly")} />
      ) : (
        <>
          <ErrorAlert error={agents.error} onRetry={agents.reload} />
          {!agents.loading && !agents.error && list.length === 0 ? (
            <EmptyState title={t("remote.emptyTitle")} hint={t("remote.emptyHint")} action={addButton} />
          ) : (
            <Flex vertical gap={16}>
              <Flex justify="flex-end">{addButton}</Flex>
              {lastCheck ? (
                <CheckResultAlert
                  ok={lastCheck.result.status === "ok"}
                  title={checkText(t, lastCheck.agent, lastCheck.result)}
                  onClose={() => setLastCheck(null)}
                  testId="remote-check-result"
                />
              ) : null}
              <Table<RemoteAgent>
                rowKey="id"
                size="small"
                loading={agents.loading}
                dataSource={list}
                pagination={false}
                scroll={{ x: "max-content" }}
                columns={[
                  {
                    title: t("common.name"),
                    key: "name",
                    render: (_, agent) => (
                      <Space orientation="vertical" size={0}>
                        <Typography.Text strong>{agent.name}</Typography.Text>
                        <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                          {agent.agent_name}
                        </Typography.Text>
                      </Space>
                    ),
                  },
                  ...(screens.md
                    ? [
                        {
                          title: t("remote.cardUrl"),
                          key: "url",
                          render: (_: unknown, agent: RemoteAgent) => (
                            <Typography.Text code style={{ wordBreak: "break-all" }}>
                              {agent.card_url}
                            </Typography.Text>
                          ),
                        },
                      ]
                    : []),
                  {
                    title: t("remote.status"),
                    key: "status",
                    render: (_, agent) => (
                      <Space orientation="vertical" size={0}>
                        <StatusBadge status={agent.status} />
                        {agent.checked_at ? (
                          <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                            {t("remote.checkedAt", {
                              when: new Date(agent.checked_at).toLocaleString(locale === "zh" ? "zh-CN" : "en-US"),
                            })}
                          </Typography.Text>
                        ) : null}
                        {agent.status !== "ok" && agent.status_detail ? (
                          <Typography.Text type="secondary" style={{ fontSize: 12, maxWidth: 260 }} ellipsis={{ tooltip: agent.status_detail }}>
                            {agent.status_detail}
                          </Typography.Text>
                        ) : null}
                      </Space>
                    ),
                  },
                  {
                    title: t("common.actions"),
                    key: "actions",
                    render: (_, agent) => (
                      <Space size={4} wrap={false}>
                        <CheckButton agent={agent} onChecked={checked(agent)} />
                        <Tooltip title={t("remote.details", { name: agent.name })}>
                          <Button
                            size="small"
                            icon={<ProfileOutlined />}
                            onClick={() => setDetailsId(agent.id)}
                            aria-label={t("remote.details", { name: agent.name })}
                          />
                        </Tooltip>
                        <Popconfirm
                          title={t("remote.deleteConfirm", { name: agent.name })}
                          okText={t("common.delete")}
                          cancelText={t("common.cancel")}
                          okButtonProps={{ danger: true }}
                          onConfirm={() => act(() => deleteRemoteAgent(agent.id), t("common.deleted"))}
                        >
                          <Button size="small" danger icon={<DeleteOutlined />} aria-label={`${t("common.delete")} ${agent.name}`} />
                        </Popconfirm>
                      </Space>
                    ),
                  },
                ]}
              />
            </Flex>
          )}
          <Drawer
            open={details !== null}
            onClose={() => setDetailsId(null)}
            title={details ? t("remote.details", { name: details.name }) : ""}
            size={screens.md ? 640 : "100%"}
            extra={details ? <CheckButton agent={details} onChecked={checked(details)} /> : null}
            destroyOnHidden
          >
            {details ? <CardDetails agent={details} /> : null}
          </Drawer>
          <AddModal
            open={adding}
            onClose={() => setAdding(false)}
            onSaved={() => {
              setAdding(false);
              agents.reload();
            }}
          />
        </>
      )}
    </>
  );
}
