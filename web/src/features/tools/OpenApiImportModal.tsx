"use client";

import { UploadOutlined } from "@ant-design/icons";
import { Alert, App, Button, Checkbox, Collapse, Flex, Form, Input, InputNumber, Modal, Radio, Space, Tag, Typography, Upload } from "antd";
import { useLayoutEffect, useState } from "react";
import { useT } from "@/i18n";
import { errorMessage } from "@/ui/ErrorAlert";
import {
  createImport,
  previewDocument,
  updateImport,
  type OpenApiAuthIn,
  type OpenApiImport,
  type OpenApiOperation,
} from "./openapiApi";
import "./messages";

interface Values {
  name: string;
  description?: string;
  document?: string;
  base_url?: string;
  auth_kind: OpenApiAuthIn["kind"];
  auth_location: "header" | "query";
  auth_name?: string;
  auth_secret?: string;
  timeout_seconds?: number;
  max_response_bytes?: number;
}

const METHOD_COLORS: Record<string, string> = { GET: "blue", POST: "green", PUT: "orange", PATCH: "gold", DELETE: "red" };

/** The operations of a document, each with a checkbox (those that cannot be tools are shown, disabled). */
function OperationList({
  operations,
  chosen,
  onChange,
}: {
  operations: OpenApiOperation[];
  chosen: string[];
  onChange: (chosen: string[]) => void;
}) {
  const t = useT();
  const supported = operations.filter((op) => !op.unsupported).map((op) => op.tool_name);
  const set = new Set(chosen);
  return (
    <fieldset style={{ border: 0, margin: 0, padding: 0 }}>
      <legend style={{ fontWeight: 600, fontSize: 14, marginBottom: 4 }}>{t("openapi.operations")}</legend>
      <Flex gap={8} align="center" wrap style={{ marginBottom: 8 }}>
        <Typography.Text type="secondary">{t("openapi.operationsHint")}</Typography.Text>
        <Button size="small" onClick={() => onChange(supported)}>
          {t("openapi.selectAll")}
        </Button>
        <Button size="small" onClick={() => onChange([])}>
          {t("openapi.selectNone")}
        </Button>
      </Flex>
      <ul style={{ listStyle: "none", margin: 0, padding: 0, maxHeight: 320, overflowY: "auto" }} data-testid="openapi-operations">
        {operations.map((op) => (
          <li key={op.tool_name} style={{ padding: "6px 0", borderBottom: "1px solid rgba(128,128,128,.2)" }}>
            <Checkbox
              checked={set.has(op.tool_name)}
              disabled={Boolean(op.unsupported)}
              aria-describedby={`op-${op.tool_name}`}
              onChange={(event) =>
                onChange(event.target.checked ? [...chosen, op.tool_name] : chosen.filter((name) => name !== op.tool_name))
              }
            >
              <Tag color={METHOD_COLORS[op.method] ?? "default"}>{op.method}</Tag>
              <Typography.Text code style={{ wordBreak: "break-all" }}>
                {op.path}
              </Typography.Text>
            </Checkbox>
            <div id={`op-${op.tool_name}`} style={{ marginInlineStart: 24 }}>
              <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                {t("tools.toolName")}: {op.tool ?? op.tool_name} · {op.summary ?? op.description}
              </Typography.Text>
              {op.unsupported ? (
                <div>
                  <Typography.Text type="warning" style={{ fontSize: 12 }}>
                    {t("openapi.unsupported", { reason: op.unsupported })}
                  </Typography.Text>
                </div>
              ) : null}
            </div>
          </li>
        ))}
      </ul>
    </fieldset>
  );
}

/** Import an OpenAPI document (paste or upload, read it, choose operations, base URL and auth), or edit an import. */
export function OpenApiImportModal({
  open,
  existing,
  onClose,
  onSaved,
}: {
  open: boolean;
  existing: OpenApiImport | null;
  onClose: () => void;
  onSaved: (saved: OpenApiImport) => void;
}) {
  const t = useT();
  const { message } = App.useApp();
  const [form] = Form.useForm<Values>();
  const [operations, setOperations] = useState<OpenApiOperation[]>([]);
  const [chosen, setChosen] = useState<string[]>([]);
  const [readDocument, setReadDocument] = useState<string | null>(null);
  const [reading, setReading] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const authKind = Form.useWatch("auth_kind", form) ?? "none";

  // Before the first paint of the opened dialog: a click that lands right away is not undone by the reset.
  useLayoutEffect(() => {
    if (!open) return;
    setError(null);
    setReadDocument(null);
    form.resetFields();
    if (existing) {
      setOperations(existing.operations);
      setChosen(existing.operations.filter((op) => op.selected).map((op) => op.tool_name));
      form.setFieldsValue({
        name: existing.name,
        description: existing.description,
        base_url: existing.base_url,
        auth_kind: existing.auth.kind,
        auth_location: existing.auth.location,
        auth_name: existing.auth.name ?? undefined,
        timeout_seconds: existing.timeout_seconds,
        max_response_bytes: existing.max_response_bytes,
      });
    } else {
      setOperations([]);
      setChosen([]);
      form.setFieldsValue({ auth_kind: "none", auth_location: "header", timeout_seconds: 20, max_response_bytes: 200000 });
    }
  }, [open, existing, form]);

  const read = async () => {
    const document = (form.getFieldValue("document") as string | undefined) ?? "";
    setReading(true);
    setError(null);
    try {
      const preview = await previewDocument(document);
      setOperations(preview.operations);
      setChosen(preview.operations.filter((op) => op.selected).map((op) => op.tool_name));
      setReadDocument(document);
      if (!form.getFieldValue("base_url") && preview.base_url) form.setFieldValue("base_url", preview.base_url);
      if (!existing && !form.getFieldValue("name")) {
        const name = preview.title.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "").replace(/^[^a-z]+/, "").slice(0, 30);
        if (name) form.setFieldValue("name", name.replace(/_+$/, ""));
      }
    } catch (caught) {
      setError(caught);
    } finally {
      setReading(false);
    }
  };

  const save = async (values: Values) => {
    if (chosen.length === 0) {
      setError(new Error(t("openapi.chooseOne")));
      return;
    }
    const auth: OpenApiAuthIn = {
      kind: values.auth_kind,
      location: values.auth_kind === "api_key" ? values.auth_location : "header",
      ...(values.auth_kind === "api_key" ? { name: values.auth_name?.trim() } : {}),
      ...(values.auth_kind !== "none" && values.auth_secret ? { secret: values.auth_secret } : {}),
    };
    const common = {
      description: values.description ?? "",
      base_url: values.base_url?.trim() || null,
      auth,
      timeout_seconds: values.timeout_seconds ?? 20,
      max_response_bytes: values.max_response_bytes ?? 200000,
      operations: chosen,
    };
    setBusy(true);
    setError(null);
    try {
      let saved: OpenApiImport;
      if (existing) {
        saved = await updateImport(existing.id, {
          ...common,
          ...(values.name !== existing.name ? { name: values.name } : {}),
          ...(readDocument !== null ? { document: readDocument } : {}),
        });
        message.success(t("common.saved"));
      } else {
        saved = await createImport({ ...common, name: values.name, document: readDocument ?? values.document ?? "" });
        message.success(t("openapi.created", { name: saved.name, count: chosen.length }));
      }
      onSaved(saved);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  const documentFields = (
    <>
      <Form.Item name="document" label={t("openapi.document")} extra={t("openapi.documentHint")}>
        <Input.TextArea rows={8} spellCheck={false} style={{ fontFamily: "monospace" }} />
      </Form.Item>
      <Space wrap style={{ marginBottom: 16 }}>
        <Upload
          accept=".json,.yaml,.yml,application/json,application/yaml,text/yaml"
          showUploadList={false}
          beforeUpload={async (file) => {
            form.setFieldValue("document", await file.text());
            await read();
            return false;
          }}
        >
          <Button icon={<UploadOutlined />}>{t("openapi.upload")}</Button>
        </Upload>
        <Button type={operations.length && !existing ? "default" : "primary"} loading={reading} onClick={read}>
          {t("openapi.preview")}
        </Button>
      </Space>
    </>
  );

  const ready = operations.length > 0;
  return (
    <Modal
      open={open}
      title={existing ? t("openapi.editTitle", { name: existing.name }) : t("openapi.addTitle")}
      onCancel={onClose}
      destroyOnHidden
      width={720}
      footer={
        <Space wrap>
          <Button onClick={onClose}>{t("common.cancel")}</Button>
          <Button type="primary" loading={busy} disabled={!ready} onClick={() => form.submit()}>
            {t("common.save")}
          </Button>
        </Space>
      }
    >
      {error ? <Alert type="error" showIcon role="alert" title={errorMessage(error, t)} style={{ marginBottom: 16 }} /> : null}
      <Form form={form} layout="vertical" onFinish={save} requiredMark="optional">
        {existing ? (
          <Collapse
            size="small"
            style={{ marginBottom: 16 }}
            items={[{ key: "doc", label: t("openapi.replaceDocument"), children: documentFields }]}
          />
        ) : (
          documentFields
        )}
        {ready ? (
          <>
            <div style={{ marginBottom: 16 }}>
              <OperationList operations={operations} chosen={chosen} onChange={setChosen} />
            </div>
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
            <Form.Item name="base_url" label={t("openapi.baseUrl")} extra={t("openapi.baseUrlHint")}>
              <Input maxLength={2048} inputMode="url" autoComplete="off" placeholder="https://api.example.com/v1" />
            </Form.Item>
            <Form.Item name="auth_kind" label={t("openapi.auth")}>
              <Radio.Group
                options={(["none", "bearer", "api_key"] as const).map((kind) => ({ value: kind, label: t(`openapi.auth.${kind}`) }))}
              />
            </Form.Item>
            {authKind === "api_key" ? (
              <Flex gap={12} wrap>
                <Form.Item name="auth_location" label={t("openapi.auth.location")}>
                  <Radio.Group
                    options={[
                      { value: "header", label: t("openapi.auth.header") },
                      { value: "query", label: t("openapi.auth.query") },
                    ]}
                  />
                </Form.Item>
                <Form.Item
                  name="auth_name"
                  label={t("openapi.auth.name")}
                  rules={[{ required: true, whitespace: true, message: t("auth.required") }]}
                  style={{ flex: "1 1 180px" }}
                >
                  <Input maxLength={100} autoComplete="off" placeholder="X-API-Key" />
                </Form.Item>
              </Flex>
            ) : null}
            {authKind !== "none" ? (
              <Form.Item
                name="auth_secret"
                label={t("openapi.auth.secret")}
                extra={existing?.auth.has_secret && existing.auth.kind === authKind ? t("openapi.auth.keep") : t("openapi.auth.secretHint")}
                rules={
                  existing?.auth.has_secret && existing.auth.kind === authKind
                    ? []
                    : [{ required: true, whitespace: true, message: t("auth.required") }]
                }
              >
                <Input.Password autoComplete="new-password" visibilityToggle={false} />
              </Form.Item>
            ) : null}
            <Flex gap={12} wrap>
              <Form.Item name="timeout_seconds" label={t("openapi.timeout")}>
                <InputNumber min={1} max={120} />
              </Form.Item>
              <Form.Item name="max_response_bytes" label={t("openapi.maxResponse")}>
                <InputNumber min={1024} max={2000000} step={1024} />
              </Form.Item>
            </Flex>
          </>
        ) : null}
      </Form>
    </Modal>
  );
}
