"use client";

import { Alert, App, Button, Checkbox, Collapse, Form, Input, InputNumber, Modal, Radio, Select, Space } from "antd";
import { useLayoutEffect, useState } from "react";
import { useLocale, useT, type Locale } from "@/i18n";
import type { MessageKey } from "@/i18n/messages";
import { errorMessage } from "@/ui/ErrorAlert";
import {
  BUILTIN_MODELS,
  checkDraft,
  createModel,
  KINDS,
  updateModel,
  type CheckResult,
  type Model,
  type ModelKind,
  type ModelSettings,
} from "./api";
import { checkErrorText } from "./checkText";
import "./messages";

interface Values {
  provider: "openai_compatible" | "local";
  kind: ModelKind;
  name: string;
  model: string;
  base_url?: string;
  api_key?: string;
  context_window?: number | null;
  max_concurrency?: number | null;
  requests_per_minute?: number | null;
  timeout_seconds?: number | null;
  is_default?: boolean;
  languages?: string[];
  accepts_images?: boolean;
}

// The languages offered for an embedding model (any other ISO 639-1 code can be typed).
const LANGUAGE_CODES = ["en", "zh", "ja", "ko", "fr", "de", "es", "pt", "it", "ru", "ar", "hi", "th", "vi"];

/** Add a model, or edit one (`model`): an OpenAI-compatible endpoint or a built-in model, with a test before saving. */
export function ModelForm({
  open,
  model,
  onClose,
  onSaved,
}: {
  open: boolean;
  model: Model | null;
  onClose: () => void;
  onSaved: (model: Model) => void;
}) {
  const t = useT();
  const { locale } = useLocale();
  const { message } = App.useApp();
  const [form] = Form.useForm<Values>();
  const [busy, setBusy] = useState(false);
  const [checking, setChecking] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [check, setCheck] = useState<CheckResult | null>(null);
  const provider = Form.useWatch("provider", form) ?? "openai_compatible";
  const kind = Form.useWatch("kind", form) ?? "llm";
  const apiKey = Form.useWatch("api_key", form);
  const editing = model !== null;

  // Before the first paint of the opened dialog: a click that lands right away is not undone by the reset.
  useLayoutEffect(() => {
    if (!open) return;
    setError(null);
    setCheck(null);
    form.resetFields();
    if (model) {
      form.setFieldsValue({
        provider: model.provider,
        kind: model.kind,
        name: model.name,
        model: model.model,
        base_url: model.endpoints[0]?.base_url,
        context_window: model.context_window,
        max_concurrency: model.max_concurrency,
        requests_per_minute: model.requests_per_minute,
        timeout_seconds: model.timeout_seconds,
        languages: model.languages ?? [],
        accepts_images: model.accepts_images,
      });
    } else {
      form.setFieldsValue({ provider: "openai_compatible", kind: "llm", timeout_seconds: 60 });
    }
  }, [open, model, form]);

  const builtin = BUILTIN_MODELS.filter((item) => item.kind === kind);
  const settings = (values: Values): ModelSettings => {
    const limits = {
      context_window: values.context_window ?? null,
      max_concurrency: values.max_concurrency ?? null,
      requests_per_minute: values.requests_per_minute ?? null,
      timeout_seconds: values.timeout_seconds ?? 60,
      ...(values.kind === "embedding" && values.languages?.length ? { languages: values.languages } : {}),
      accepts_images: values.kind === "llm" ? (values.accepts_images ?? false) : false,
    };
    if (values.provider === "local") return { kind: values.kind, provider: "local", model: values.model, ...limits };
    return {
      kind: values.kind,
      provider: "openai_compatible",
      model: values.model,
      base_url: values.base_url?.trim(),
      api_key: values.api_key || null,
      ...limits,
    };
  };

  const test = async () => {
    let values: Values;
    try {
      values = await form.validateFields();
    } catch {
      return;
    }
    setChecking(true);
    setError(null);
    setCheck(null);
    try {
      setCheck(await checkDraft(settings(values)));
    } catch (caught) {
      setError(caught);
    } finally {
      setChecking(false);
    }
  };

  const save = async (values: Values) => {
    setBusy(true);
    setError(null);
    try {
      let saved: Model;
      if (model) {
        const changedUrl = values.base_url?.trim() && values.base_url.trim() !== model.endpoints[0]?.base_url;
        saved = await updateModel(model.id, {
          name: values.name,
          model: values.model,
          ...(model.provider === "openai_compatible" && changedUrl ? { base_url: values.base_url?.trim() } : {}),
          ...(values.api_key ? { api_key: values.api_key } : {}),
          context_window: values.context_window ?? undefined,
          max_concurrency: values.max_concurrency ?? undefined,
          requests_per_minute: values.requests_per_minute ?? undefined,
          timeout_seconds: values.timeout_seconds ?? 60,
          ...(model.kind === "embedding" ? { languages: values.languages?.length ? values.languages : null } : {}),
          ...(model.kind === "llm" ? { accepts_images: values.accepts_images ?? false } : {}),
        });
        message.success(t("common.saved"));
      } else {
        saved = await createModel({ ...settings(values), name: values.name, is_default: values.is_default ?? false });
        message.success(t("models.created", { name: saved.name }));
      }
      onSaved(saved);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  const canTest = !editing || provider === "local" || Boolean(apiKey);
  return (
    <Modal
      open={open}
      title={model ? t("models.editTitle", { name: model.name }) : t("models.addTitle")}
      onCancel={onClose}
      destroyOnHidden
      width={560}
      footer={
        <Space wrap>
          <Button onClick={onClose}>{t("common.cancel")}</Button>
          {canTest ? (
            <Button onClick={test} loading={checking}>
              {t("models.checkDraft")}
            </Button>
          ) : null}
          <Button type="primary" loading={busy} onClick={() => form.submit()}>
            {t("common.save")}
          </Button>
        </Space>
      }
    >
      <Form form={form} layout="vertical" onFinish={save} requiredMark="optional">
        <Form.Item name="provider" label={t("models.provider")}>
          <Radio.Group
            disabled={editing}
            onChange={(event) => {
              if (event.target.value === "local") {
                const first = BUILTIN_MODELS.find((item) => item.kind === kind) ?? BUILTIN_MODELS[0];
                form.setFieldsValue({ kind: first.kind, model: first.model });
              }
            }}
            options={[
              { value: "openai_compatible", label: t("models.provider.openai_compatible") },
              { value: "local", label: t("models.provider.local") },
            ]}
          />
        </Form.Item>
        <Form.Item name="kind" label={t("models.kind")} rules={[{ required: true }]}>
          <Select
            disabled={editing}
            onChange={(next: ModelKind) => {
              if (provider === "local") form.setFieldValue("model", BUILTIN_MODELS.find((item) => item.kind === next)?.model);
            }}
            options={(provider === "local" ? [...new Set(BUILTIN_MODELS.map((item) => item.kind))] : KINDS).map((value) => ({
              value,
              label: t(`models.kind.${value}` as MessageKey),
            }))}
          />
        </Form.Item>
        <Form.Item name="name" label={t("models.name")} rules={[{ required: true, whitespace: true, message: t("auth.required") }]}>
          <Input maxLength={120} autoComplete="off" />
        </Form.Item>
        {provider === "local" ? (
          <Form.Item name="model" label={t("models.builtinModel")} rules={[{ required: true, message: t("auth.required") }]}>
            <Select disabled={editing} options={builtin.map((item) => ({ value: item.model, label: item.model }))} />
          </Form.Item>
        ) : (
          <>
            <Form.Item
              name="base_url"
              label={t("models.baseUrl")}
              extra={t("models.baseUrlHint")}
              rules={[{ required: true, whitespace: true, message: t("auth.required") }]}
            >
              <Input maxLength={500} autoComplete="off" inputMode="url" placeholder="https://api.openai.com/v1" />
            </Form.Item>
            <Form.Item
              name="api_key"
              label={t("models.apiKey")}
              extra={editing && model?.endpoints[0]?.has_api_key ? t("models.apiKeyKeep") : t("models.apiKeyHint")}
            >
              <Input.Password autoComplete="new-password" visibilityToggle={false} />
            </Form.Item>
            <Form.Item
              name="model"
              label={t("models.model")}
              extra={t("models.modelHint")}
              rules={[{ required: true, whitespace: true, message: t("auth.required") }]}
            >
              <Input maxLength={200} autoComplete="off" />
            </Form.Item>
          </>
        )}
        {kind === "embedding" ? (
          <Form.Item
            name="languages"
            label={t("models.languages")}
            extra={t("models.languagesHint")}
            rules={[{ type: "array", defaultField: { pattern: /^[A-Za-z]{2}$/, message: t("models.languageCode") } }]}
          >
            <Select
              mode="tags"
              tokenSeparators={[",", " "]}
              placeholder={t("models.languagesAny")}
              options={LANGUAGE_CODES.map((code) => ({ value: code, label: `${code} · ${languageName(code, locale)}` }))}
            />
          </Form.Item>
        ) : null}
        {kind === "llm" ? (
          <Form.Item name="accepts_images" valuePropName="checked" extra={t("models.acceptsImagesHint")}>
            <Checkbox data-testid="accepts-images">{t("models.acceptsImages")}</Checkbox>
          </Form.Item>
        ) : null}
        <Collapse
          ghost
          size="small"
          items={[
            {
              key: "limits",
              label: t("models.limits"),
              forceRender: true,
              children: (
                <Space wrap align="start">
                  <Form.Item name="context_window" label={t("models.contextWindow")}>
                    <InputNumber min={256} max={10_000_000} style={{ width: 180 }} />
                  </Form.Item>
                  <Form.Item name="max_concurrency" label={t("models.maxConcurrency")}>
                    <InputNumber min={1} max={10_000} style={{ width: 180 }} />
                  </Form.Item>
                  <Form.Item name="requests_per_minute" label={t("models.rpm")}>
                    <InputNumber min={1} max={1_000_000} style={{ width: 180 }} />
                  </Form.Item>
                  <Form.Item name="timeout_seconds" label={t("models.timeout")}>
                    <InputNumber min={1} max={3600} style={{ width: 180 }} />
                  </Form.Item>
                </Space>
              ),
            },
          ]}
        />
        {editing ? null : (
          <Form.Item name="is_default" valuePropName="checked" style={{ marginTop: 12 }}>
            <Checkbox>{t("models.makeDefault")}</Checkbox>
          </Form.Item>
        )}
      </Form>
      {check ? (
        <CheckAlert result={check} />
      ) : null}
      {error ? <Alert type="error" showIcon role="alert" title={errorMessage(error, t)} /> : null}
    </Modal>
  );
}

/** The outcome of a check, in plain words. */
export function CheckAlert({
  result,
  prefix,
  onClose,
}: {
  result: CheckResult;
  prefix?: string;
  onClose?: () => void;
}) {
  const t = useT();
  const named = (text: string) => (prefix ? `${prefix}: ${text}` : text);
  const ms = Math.round(result.latency_ms);
  if (result.ok) {
    return (
      <Alert
        type="success"
        showIcon
        role="status"
        closable={onClose ? { onClose, "aria-label": t("common.close") } : false}
        title={named(
          result.dimension ? t("models.checkOkDimension", { ms, dimension: result.dimension }) : t("models.checkOk", { ms }),
        )}
      />
    );
  }
  return (
    <Alert
      type="error"
      showIcon
      role="alert"
      closable={onClose ? { onClose, "aria-label": t("common.close") } : false}
      title={named(checkErrorText(result.error, t))}
      description={result.error?.message ? t("models.error.detail", { message: result.error.message }) : undefined}
    />
  );
}

/** A language's name in the interface's language, from its ISO 639-1 code. */
export function languageName(code: string, locale: Locale): string {
  try {
    return new Intl.DisplayNames([locale === "zh" ? "zh-CN" : "en"], { type: "language" }).of(code) ?? code;
  } catch {
    return code;
  }
}
