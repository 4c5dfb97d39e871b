"use client";

import {
  CheckCircleFilled,
  CheckCircleOutlined,
  ClockCircleFilled,
  CloseCircleFilled,
  DeleteOutlined,
  EditOutlined,
  MinusCircleOutlined,
  PlusOutlined,
  ProfileOutlined,
  ReloadOutlined,
} from "@ant-design/icons";
import { Alert, App, Button, Drawer, Flex, Grid, Popconfirm, Space, Table, Tabs, Tag, theme, Tooltip, Typography } from "antd";
import { useState } from "react";
import { useLocale, useT } from "@/i18n";
import type { MessageKey } from "@/i18n/messages";
import { EmptyState } from "@/ui/EmptyState";
import { CheckResultAlert } from "@/ui/CheckResultAlert";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { useAction } from "@/ui/useAction";
import { useAsync } from "@/ui/useAsync";
import {
  checkServer,
  deleteServer,
  listServers,
  serverLogs,
  serverTools,
  type McpCheck,
  type McpServer,
  type McpStatus,
} from "./mcpApi";
import { McpServerModal } from "./McpServerModal";
import { SchemaView } from "./SchemaView";
import "./messages";

/** A server's health as a badge: an icon in the status's colour and the words (the text keeps its contrast). */
export function StatusBadge({ status }: { status: McpStatus }) {
  const t = useT();
  const { token } = theme.useToken();
  const icon =
    status === "ok" ? (
      <CheckCircleFilled style={{ color: token.colorSuccess }} />
    ) : status === "unknown" || status === "disabled" ? (
      <MinusCircleOutlined style={{ color: token.colorTextSecondary }} />
    ) : status === "timeout" ? (
      <ClockCircleFilled style={{ color: token.colorWarning }} />
    ) : (
      <CloseCircleFilled style={{ color: token.colorError }} />
    );
  return (
    <Tag icon={icon} data-testid="mcp-status">
      {t(`mcp.status.${status}` as MessageKey)}
    </Tag>
  );
}

function checkText(t: ReturnType<typeof useT>, server: McpServer, result: McpCheck): string {
  const values = {
    name: server.name,
    status: t(`mcp.status.${result.status}` as MessageKey),
    ms: Math.round(result.latency_ms),
    count: result.tools.length,
    detail: result.detail ?? "",
  };
  return result.status === "ok" ? t("mcp.checkOk", values) : t("mcp.checkFailed", values);
}

/** A server's tools (with their arguments and any schema problem) and its log lines. */
function ServerDetails({ server, onChecked }: { server: McpServer; onChecked: () => void }) {
  const t = useT();
  const tools = useAsync(() => serverTools(server.id), [server.id, server.checked_at]);
  const logs = useAsync(() => serverLogs(server.id), [server.id]);
  return (
    <Tabs
      items={[
        {
          key: "tools",
          label: t("mcp.tools"),
          children: (
            <>
              <ErrorAlert error={tools.error} onRetry={tools.reload} />
              {tools.data && tools.data.length === 0 ? (
                <EmptyState
                  title={t("mcp.toolsEmpty")}
                  action={<CheckButton server={server} onChecked={onChecked} />}
                />
              ) : (
                <ul style={{ listStyle: "none", margin: 0, padding: 0 }} data-testid="mcp-tools">
                  {(tools.data ?? []).map((tool) => (
                    <li key={tool.name} style={{ padding: "8px 0", borderBottom: "1px solid rgba(128,128,128,.2)" }}>
                      <Typography.Text code style={{ wordBreak: "break-all" }}>
                        {tool.name}
                      </Typography.Text>
                      <div>
                        <Typography.Text type="secondary">{tool.description}</Typography.Text>
                      </div>
                      {tool.problem ? (
                        <Alert type="warning" showIcon title={t("mcp.toolProblem", { problem: tool.problem })} style={{ margin: "4px 0" }} />
                      ) : null}
                      <SchemaView schema={tool.parameters} />
                    </li>
                  ))}
                </ul>
              )}
            </>
          ),
        },
        {
          key: "logs",
          label: t("mcp.logs"),
          children: (
            <>
              <Flex justify="flex-end" style={{ marginBottom: 8 }}>
                <Button size="small" icon={<ReloadOutlined />} onClick={logs.reload} loading={logs.loading}>
                  {t("mcp.refresh")}
                </Button>
              </Flex>
              <ErrorAlert error={logs.error} onRetry={logs.reload} />
              {logs.data && logs.data.length === 0 ? (
                <Typography.Text type="secondary">{t("mcp.logsEmpty")}</Typography.Text>
              ) : (
                <pre
                  tabIndex={0}
                  aria-label={t("mcp.logs")}
                  data-testid="mcp-logs"
                  style={{ maxHeight: 400, overflow: "auto", fontSize: 12, whiteSpace: "pre-wrap", wordBreak: "break-all" }}
                >
                  {(logs.data ?? []).map((line) => `${line.at} [${line.stream}] ${line.line}`).join("\n")}
                </pre>
              )}
            </>
          ),
        },
      ]}
    />
  );
}

function CheckButton({ server, onChecked }: { server: McpServer; onChecked: (result: McpCheck) => void }) {
  const t = useT();
  const { message } = App.useApp();
  const [checking, setChecking] = useState(false);
  const run = async () => {
    setChecking(true);
    try {
      const result = await checkServer(server.id);
      const text = checkText(t, server, result);
      if (result.status === "ok") message.success(text);
      else message.warning(text);
      onChecked(result);
    } catch (error) {
      message.error(errorMessage(error, t));
    } finally {
      setChecking(false);
    }
  };
  return (
    <Button size="small" icon={<CheckCircleOutlined />} loading={checking} onClick={run} aria-label={`${t("mcp.check")} ${server.name}`}>
      {t("mcp.check")}
    </Button>
  );
}

/** The tenant's MCP servers with their health; add, check, see tools and logs, edit, remove. */
export function McpServersTab() {
  const t = useT();
  const { locale } = useLocale();
  const screens = Grid.useBreakpoint();
  const servers = useAsync(listServers, []);
  const [editing, setEditing] = useState<McpServer | null>(null);
  const [formOpen, setFormOpen] = useState(false);
  const [detailsId, setDetailsId] = useState<string | null>(null);
  const [lastCheck, setLastCheck] = useState<{ server: McpServer; result: McpCheck } | null>(null);
  const act = useAction(servers.reload);
  const list = servers.data ?? [];
  const details = list.find((server) => server.id === detailsId) ?? null;
  const show = (server: McpServer | null) => {
    setEditing(server);
    setFormOpen(true);
  };
  const checked = (server: McpServer) => (result: McpCheck) => {
    setLastCheck({ server, result });
    servers.reload();
  };
  const addButton = (
    <Button type="primary" icon={<PlusOutlined />} onClick={() => show(null)}>
      {t("mcp.add")}
    </Button>
  );
  return (
    <>
      <ErrorAlert error={servers.error} onRetry={servers.reload} />
      {!servers.loading && !servers.error && list.length === 0 ? (
        <EmptyState title={t("mcp.emptyTitle")} hint={t("mcp.emptyHint")} action={addButton} />
      ) : (
        <Flex vertical gap={16}>
          <Flex justify="flex-end">{addButton}</Flex>
          {lastCheck ? (
            <CheckResultAlert
              ok={lastCheck.result.status === "ok"}
              title={checkText(t, lastCheck.server, lastCheck.result)}
              onClose={() => setLastCheck(null)}
              testId="mcp-check-result"
            />
          ) : null}
          <Table<McpServer>
            rowKey="id"
            size="small"
            loading={servers.loading}
            dataSource={list}
            pagination={false}
            scroll={{ x: "max-content" }}
            columns={[
              {
                title: t("common.name"),
                key: "name",
                render: (_, server) => (
                  <Space orientation="vertical" size={0}>
                    <Typography.Text strong>{server.name}</Typography.Text>
                    <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                      {t(`mcp.transport.${server.transport}` as MessageKey)}
                      {server.enabled ? "" : ` · ${t("mcp.status.disabled")}`}
                    </Typography.Text>
                  </Space>
                ),
              },
              ...(screens.md
                ? [
                    {
                      title: t("mcp.where"),
                      key: "where",
                      render: (_: unknown, server: McpServer) => (
                        <Typography.Text code style={{ wordBreak: "break-all" }}>
                          {server.url ?? server.command}
                        </Typography.Text>
                      ),
                    },
                  ]
                : []),
              {
                title: t("mcp.status"),
                key: "status",
                render: (_, server) => (
                  <Space orientation="vertical" size={0}>
                    <StatusBadge status={server.status} />
                    <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                      {t("tools.toolsCount", { count: server.tool_count })}
                      {server.checked_at
                        ? ` · ${t("mcp.checkedAt", { when: new Date(server.checked_at).toLocaleString(locale === "zh" ? "zh-CN" : "en-US") })}`
                        : ""}
                    </Typography.Text>
                    {server.status !== "ok" && server.status_detail ? (
                      <Typography.Text type="secondary" style={{ fontSize: 12, maxWidth: 260 }} ellipsis={{ tooltip: server.status_detail }}>
                        {server.status_detail}
                      </Typography.Text>
                    ) : null}
                  </Space>
                ),
              },
              {
                title: t("common.actions"),
                key: "actions",
                render: (_, server) => (
                  <Space size={4} wrap={false}>
                    <CheckButton server={server} onChecked={checked(server)} />
                    <Tooltip title={t("mcp.details", { name: server.name })}>
                      <Button
                        size="small"
                        icon={<ProfileOutlined />}
                        onClick={() => setDetailsId(server.id)}
                        aria-label={t("mcp.details", { name: server.name })}
                      />
                    </Tooltip>
                    <Tooltip title={t("common.edit")}>
                      <Button size="small" icon={<EditOutlined />} onClick={() => show(server)} aria-label={`${t("common.edit")} ${server.name}`} />
                    </Tooltip>
                    <Popconfirm
                      title={t("mcp.deleteConfirm", { name: server.name })}
                      okText={t("common.delete")}
                      cancelText={t("common.cancel")}
                      okButtonProps={{ danger: true }}
                      onConfirm={() => act(() => deleteServer(server.id), t("common.deleted"))}
                    >
                      <Button size="small" danger icon={<DeleteOutlined />} aria-label={`${t("common.delete")} ${server.name}`} />
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
        title={details ? t("mcp.details", { name: details.name }) : ""}
        size={screens.md ? 640 : "100%"}
        extra={details ? <CheckButton server={details} onChecked={checked(details)} /> : null}
        destroyOnHidden
      >
        {details ? (
          <>
            <Flex gap={8} align="center" wrap style={{ marginBottom: 12 }}>
              <StatusBadge status={details.status} />
              <Typography.Text code style={{ wordBreak: "break-all" }}>
                {details.url ?? details.command}
              </Typography.Text>
            </Flex>
            <ServerDetails server={details} onChecked={servers.reload} />
          </>
        ) : null}
      </Drawer>
      <McpServerModal
        open={formOpen}
        existing={editing}
        onClose={() => setFormOpen(false)}
        onSaved={() => {
          setFormOpen(false);
          servers.reload();
        }}
      />
    </>
  );
}
