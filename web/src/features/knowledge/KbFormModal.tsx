"use client";

import { Alert, App, Form, Input, InputNumber, Modal, Select, Space } from "antd";
import { useEffect, useLayoutEffect, useState } from "react";
import { useT } from "@/i18n";
import { errorMessage } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { createKnowledgeBase, listModels, updateKnowledgeBase, type KnowledgeBase } from "./api";
import "./messages";

interface Values {
  name: string;
  description?: string;
  embedding_model_id?: string | null;
  rerank_model_id?: string | null;
  target_chars: number;
  overlap_chars: number;
  vector_weight?: number | null;
}

/** Create a knowledge base (no `base`) or edit one. */
export function KbFormModal({
  open,
  base,
  onClose,
  onSaved,
}: {
  open: boolean;
  base?: KnowledgeBase;
  onClose: () => void;
  onSaved: (kb: KnowledgeBase) => void;
}) {
  const t = useT();
  const { message } = App.useApp();
  const [form] = Form.useForm<Values>();
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const models = useAsync(
    async () => (open ? Promise.all([listModels("embedding"), listModels("rerank")]) : undefined),
    [open],
  );
  const embedding = models.data?.[0].items ?? [];
  const rerank = models.data?.[1].items ?? [];

  // Before the first paint of the opened dialog: a click that lands right away is not undone by the reset.
  useLayoutEffect(() => {
    if (!open) return;
    setError(null);
    form.resetFields();
    form.setFieldsValue(
      base
        ? {
            name: base.name,
            description: base.description,
            embedding_model_id: base.embedding_model_id,
            rerank_model_id: base.rerank_model_id,
            target_chars: base.chunking.target_chars ?? 1200,
            overlap_chars: base.chunking.overlap_chars ?? 150,
            vector_weight: base.vector_weight,
          }
        : { target_chars: 1200, overlap_chars: 150 },
    );
  }, [open, base, form]);

  // A new knowledge base starts with the workspace's default embedding model chosen.
  useEffect(() => {
    if (!open || base || form.getFieldValue("embedding_model_id")) return;
    const fallback = embedding.find((model) => model.is_default);
    if (fallback) form.setFieldValue("embedding_model_id", fallback.id);
  }, [open, base, form, embedding]);

  const submit = async (values: Values) => {
    setSaving(true);
    setError(null);
    try {
      const chunking = { target_chars: values.target_chars, overlap_chars: values.overlap_chars };
      let saved: KnowledgeBase;
      if (base) {
        saved = await updateKnowledgeBase(base.id, {
          name: values.name,
          description: values.description ?? "",
          rerank_model_id: values.rerank_model_id ?? null,
          chunking,
          vector_weight: values.vector_weight ?? null,
          ...(values.embedding_model_id && values.embedding_model_id !== base.embedding_model_id
            ? { embedding_model_id: values.embedding_model_id }
            : {}),
        });
        message.success(t("common.saved"));
      } else {
        saved = await createKnowledgeBase({
          name: values.name,
          description: values.description ?? "",
          embedding_model_id: values.embedding_model_id ?? null,
          rerank_model_id: values.rerank_model_id ?? null,
          chunking,
          vector_weight: values.vector_weight ?? null,
        });
        message.success(t("kb.created", { name: saved.name }));
      }
      onSaved(saved);
    } catch (caught) {
      setError(caught);
    } finally {
      setSaving(false);
    }
  };

  return (
    <Modal
      open={open}
      title={base ? t("kb.edit.title", { name: base.name }) : t("kb.create.title")}
      okText={base ? t("common.save") : t("common.create")}
      cancelText={t("common.cancel")}
      confirmLoading={saving}
      onOk={() => form.submit()}
      onCancel={onClose}
      forceRender
    >
      {error ? <Alert type="error" showIcon role="alert" title={errorMessage(error, t)} style={{ marginBottom: 16 }} /> : null}
      {models.error ? (
        <Alert type="error" showIcon role="alert" title={errorMessage(models.error, t)} style={{ marginBottom: 16 }} />
      ) : null}
      {!models.loading && !models.error && embedding.length === 0 ? (
        <Alert type="warning" showIcon title={t("kb.noEmbeddingModel")} style={{ marginBottom: 16 }} />
      ) : null}
      <Form form={form} layout="vertical" onFinish={submit} requiredMark="optional">
        <Form.Item name="name" label={t("common.name")} rules={[{ required: true, whitespace: true, max: 120 }]}>
          <Input autoFocus maxLength={120} />
        </Form.Item>
        <Form.Item name="description" label={t("common.description")} rules={[{ max: 4000 }]}>
          <Input.TextArea autoSize={{ minRows: 2, maxRows: 6 }} />
        </Form.Item>
        <Form.Item
          name="embedding_model_id"
          label={t("kb.embeddingModel")}
          extra={base ? t("kb.embeddingModelChange") : t("kb.embeddingModelHint")}
        >
          <Select
            allowClear={!base}
            loading={models.loading}
            options={embedding.map((model) => ({
              value: model.id,
              label: `${model.name}${model.dimension ? ` · ${model.dimension}d` : ""}`,
            }))}
          />
        </Form.Item>
        <Form.Item name="rerank_model_id" label={t("kb.rerankModel")} extra={t("kb.rerankModelHint")}>
          <Select allowClear loading={models.loading} options={rerank.map((model) => ({ value: model.id, label: model.name }))} />
        </Form.Item>
        <Form.Item name="vector_weight" label={t("kb.vectorWeight")} extra={t("kb.vectorWeightHint")}>
          <InputNumber min={0} max={1} step={0.1} placeholder={t("kb.search.weightAuto")} style={{ width: 160 }} />
        </Form.Item>
        <Space wrap size="middle">
          <Form.Item name="target_chars" label={t("kb.targetChars")} rules={[{ required: true }]}>
            <InputNumber min={200} max={8000} step={100} style={{ width: 160 }} />
          </Form.Item>
          <Form.Item name="overlap_chars" label={t("kb.overlapChars")} rules={[{ required: true }]}>
            <InputNumber min={0} max={2000} step={50} style={{ width: 160 }} />
          </Form.Item>
        </Space>
        {base ? <div style={{ opacity: 0.75, marginTop: -8 }}>{t("kb.chunkingHint")}</div> : null}
      </Form>
    </Modal>
  );
}
