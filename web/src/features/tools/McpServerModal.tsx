"use client";

import { MinusCircleOutlined, PlusOutlined } from "@ant-design/icons";
import { Alert, App, Button, Flex, Form, Input, InputNumber, Modal, Radio, Space, Switch, Typography } from "antd";
import { useLayoutEffect, useState } from "react";
import { useT } from "@/i18n";
import { errorMessage } from "@/ui/ErrorAlert";
import { createServer, updateServer, type McpServer, type McpServerCreate } from "./mcpApi";
import "./messages";

type Transport = McpServerCreate["transport"];

interface Pair {
  name?: string;
  value?: string;
}

interface Values {
  name: string;
  description?: string;
  transport: Transport;
  url?: string;
  command?: string;
  headers?: Pair[];
  token?: string;
  env?: Pair[];
  enabled: boolean;
  call_timeout_seconds?: number;
  memory_mb?: number;
  cpu_seconds?: number;
  max_open_files?: number;
}

function pairs(list: Pair[] | undefined): Record<string, string> {
  return Object.fromEntries(
    (list ?? []).filter((pair) => pair.name?.trim()).map((pair) => [pair.name!.trim(), pair.value ?? ""]),
  );
}

/** Name/value rows (headers, environment variables); values are written, never read back. */
function PairList({ name, label, addLabel, removeLabel }: { name: "headers" | "env"; label: string; addLabel: string; removeLabel: string }) {
  const t = useT();
  return (
    <Form.List name={name}>
      {(fields, { add, remove }) => (
        <fieldset style={{ border: 0, margin: "0 0 16px", padding: 0 }}>
          <legend style={{ fontSize: 14, marginBottom: 8 }}>{label}</legend>
          {fields.map((field, index) => (
            <Flex key={field.key} gap={8} align="baseline" wrap>
              <Form.Item name={[field.name, "name"]} style={{ flex: "1 1 140px" }} rules={[{ required: true, whitespace: true, message: t("auth.required") }]}>
                <Input aria-label={`${name === "headers" ? t("mcp.headerName") : t("mcp.envName")} ${index + 1}`} placeholder={name === "headers" ? "X-Api-Key" : "API_TOKEN"} autoComplete="off" />
              </Form.Item>
              <Form.Item name={[field.name, "value"]} style={{ flex: "2 1 180px" }}>
                <Input.Password aria-label={`${t("mcp.headerValue")} ${index + 1}`} autoComplete="new-password" visibilityToggle={false} />
              </Form.Item>
              <Button
                type="text"
                icon={<MinusCircleOutlined />}
                aria-label={removeLabel.replace("{name}", String(index + 1))}
                onClick={() => remove(field.name)}
              />
            </Flex>
          ))}
          <Button icon={<PlusOutlined />} onClick={() => add({ name: "", value: "" })}>
            {addLabel}
          </Button>
        </fieldset>
      )}
    </Form.List>
  );
}

/** Add an MCP server (remote by URL with headers and a token, or local by command line with its environment), or
 * edit one: secrets are never shown; entering new ones replaces the saved ones. */
export function McpServerModal({
  open,
  existing,
  onClose,
  onSaved,
}: {
  open: boolean;
  existing: McpServer | null;
  onClose: () => void;
  onSaved: (saved: McpServer) => void;
}) {
  const t = useT();
  const { message } = App.useApp();
  const [form] = Form.useForm<Values>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const transport: Transport = Form.useWatch("transport", form) ?? "http";

  // Before the first paint of the opened dialog: a click that lands right away (a quick user, a test) is not undone
  // by the reset.
  useLayoutEffect(() => {
    if (!open) return;
    setError(null);
    form.resetFields();
    form.setFieldsValue(
      existing
        ? {
            name: existing.name,
            description: existing.description,
            transport: existing.transport,
            url: existing.url ?? undefined,
            command: existing.command ?? undefined,
            enabled: existing.enabled,
            call_timeout_seconds: existing.call_timeout_seconds,
            memory_mb: existing.memory_mb,
            cpu_seconds: existing.cpu_seconds,
            max_open_files: existing.max_open_files,
          }
        : { transport: "http", enabled: true, call_timeout_seconds: 30, memory_mb: 1024, cpu_seconds: 600, max_open_files: 256 },
    );
  }, [open, existing, form]);

  const save = async (values: Values) => {
    const local = values.transport === "stdio";
    const headers = pairs(values.headers);
    const env = pairs(values.env);
    setBusy(true);
    setError(null);
    try {
      let saved: McpServer;
      if (existing) {
        saved = await updateServer(existing.id, {
          ...(values.name !== existing.name ? { name: values.name } : {}),
          description: values.description ?? "",
          ...(local ? { command: values.command?.trim() } : { url: values.url?.trim() }),
          ...(!local && Object.keys(headers).length ? { headers } : {}),
          ...(!local && values.token ? { token: values.token } : {}),
          ...(local && Object.keys(env).length ? { env } : {}),
          enabled: values.enabled,
          call_timeout_seconds: values.call_timeout_seconds ?? 30,
          ...(local ? { memory_mb: values.memory_mb, cpu_seconds: values.cpu_seconds, max_open_files: values.max_open_files } : {}),
        });
        message.success(t("common.saved"));
      } else {
        saved = await createServer({
          name: values.name,
          description: values.description ?? "",
          transport: values.transport,
          ...(local ? { command: values.command?.trim(), env } : { url: values.url?.trim(), headers }),
          ...(!local && values.token ? { token: values.token } : {}),
          enabled: values.enabled,
          call_timeout_seconds: values.call_timeout_seconds ?? 30,
          memory_mb: values.memory_mb ?? 1024,
          cpu_seconds: values.cpu_seconds ?? 600,
          max_open_files: values.max_open_files ?? 256,
        });
        message.success(t("mcp.created", { name: saved.name }));
      }
      onSaved(saved);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal
      open={open}
      title={existing ? t("mcp.editTitle", { name: existing.name }) : t("mcp.addTitle")}
      onCancel={onClose}
      destroyOnHidden
      width={600}
      footer={
        <Space wrap>
          <Button onClick={onClose}>{t("common.cancel")}</Button>
          <Button type="primary" loading={busy} onClick={() => form.submit()}>
            {t("common.save")}
          </Button>
        </Space>
      }
    >
      {error ? <Alert type="error" showIcon role="alert" title={errorMessage(error, t)} style={{ marginBottom: 16 }} /> : null}
      <Form form={form} layout="vertical" onFinish={save} requiredMark="optional">
        <Form.Item name="transport" label={t("mcp.transport")}>
          <Radio.Group
            disabled={Boolean(existing)}
            options={(["http", "sse", "stdio"] as const).map((value) => ({ value, label: t(`mcp.transport.${value}`) }))}
          />
        </Form.Item>
        <Form.Item
          name="name"
          label={t("common.name")}
          extra={t("tools.nameHint")}
          rules={[{ required: true, pattern: /^[a-z](?:[a-z0-9]|_(?!_)){0,29}$/, message: t("tools.nameHint") }]}
        >
          <Input maxLength={30} autoComplete="off" />
        </Form.Item>
        <Form.Item name="description" label={t("common.description")}>
          <Input maxLength={2000} />
        </Form.Item>
        {transport === "stdio" ? (
          <>
            <Form.Item
              name="command"
              label={t("mcp.command")}
              extra={t("mcp.commandHint")}
              rules={[{ required: true, whitespace: true, message: t("auth.required") }]}
            >
              <Input maxLength={4000} autoComplete="off" spellCheck={false} style={{ fontFamily: "monospace" }} />
            </Form.Item>
            {existing?.env_names.length ? (
              <Typography.Paragraph type="secondary">{t("mcp.envKeep", { names: existing.env_names.join(", ") })}</Typography.Paragraph>
            ) : null}
            <PairList name="env" label={t("mcp.env")} addLabel={t("mcp.addEnv")} removeLabel={t("mcp.removeEnv")} />
            <fieldset style={{ border: 0, margin: 0, padding: 0 }}>
              <legend style={{ fontSize: 14, marginBottom: 8 }}>{t("mcp.limits")}</legend>
              <Flex gap={12} wrap>
                <Form.Item name="memory_mb" label={t("mcp.memory")}>
                  <InputNumber min={128} max={65536} step={128} />
                </Form.Item>
                <Form.Item name="cpu_seconds" label={t("mcp.cpu")}>
                  <InputNumber min={1} max={86400} />
                </Form.Item>
                <Form.Item name="max_open_files" label={t("mcp.openFiles")}>
                  <InputNumber min={16} max={65536} />
                </Form.Item>
              </Flex>
            </fieldset>
          </>
        ) : (
          <>
            <Form.Item name="url" label={t("mcp.url")} rules={[{ required: true, whitespace: true, message: t("auth.required") }]}>
              <Input maxLength={2000} inputMode="url" autoComplete="off" placeholder="https://mcp.example.com/mcp" />
            </Form.Item>
            <Typography.Paragraph type="secondary">
              {existing?.header_names.length ? t("mcp.headersKeep", { names: existing.header_names.join(", ") }) : t("mcp.headersHint")}
            </Typography.Paragraph>
            <PairList name="headers" label={t("mcp.headers")} addLabel={t("mcp.addHeader")} removeLabel={t("mcp.removeHeader")} />
            <Form.Item name="token" label={t("mcp.token")} extra={existing ? t("mcp.tokenKeep") : t("openapi.auth.secretHint")}>
              <Input.Password autoComplete="new-password" visibilityToggle={false} />
            </Form.Item>
          </>
        )}
        <Flex gap={16} wrap align="end">
          <Form.Item name="call_timeout_seconds" label={t("mcp.callTimeout")}>
            <InputNumber min={1} max={600} />
          </Form.Item>
          <Form.Item name="enabled" label={t("mcp.enabled")} valuePropName="checked">
            <Switch />
          </Form.Item>
        </Flex>
      </Form>
    </Modal>
  );
}
