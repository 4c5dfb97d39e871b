"use client";

import { PlusOutlined, ReloadOutlined, StopOutlined, ThunderboltOutlined } from "@ant-design/icons";
import { App, Button, Card, Drawer, Flex, Form, Grid, Input, Select, Typography } from "antd";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { useLocale } from "@/i18n";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import {
  agentLabel,
  createAgent,
  listKnowledgeBases,
  listTools,
  streamGenerate,
  type GeneratedDraft,
  type GeneratedField,
} from "./api";
import { FieldState, GenerationNotices, generatedFieldLabel } from "./GenerationNotices";
import { useGeneration } from "./useGeneration";
import { ExampleCard } from "./ExampleCard";
import "./builderMessages";

/** The preview form: the draft as the model wrote it, editable before the agent is created. */
interface DraftForm {
  name: string;
  display_name: string;
  description: string;
  duty: string;
  constraints: string;
  examples: { question: string; answer: string }[];
  tools: string[];
  knowledge_base_ids: string[];
}

const EMPTY: DraftForm = {
  name: "",
  display_name: "",
  description: "",
  duty: "",
  constraints: "",
  examples: [],
  tools: [],
  knowledge_base_ids: [],
};

/** Fields whose text fills the form as it streams; the others (lists) show when they are complete. */
const TEXT_FIELDS: ReadonlySet<GeneratedField> = new Set(["name", "display_name", "description", "duty", "constraints"]);

/** The draft so far as the model's context: only what has a value. */
function currentDraft(values: DraftForm): GeneratedDraft {
  const draft: GeneratedDraft = {
    name: null,
    display_name: null,
    description: null,
    duty: null,
    constraints: null,
    examples: null,
    tools: null,
    knowledge_base_ids: null,
  };
  for (const field of TEXT_FIELDS) {
    const value = (values[field as keyof DraftForm] as string | undefined)?.trim();
    if (value) (draft as Record<string, unknown>)[field] = value;
  }
  const examples = (values.examples ?? []).filter((example) => example?.question?.trim() && example?.answer?.trim());
  if (examples.length) draft.examples = examples;
  if (values.tools?.length) draft.tools = values.tools;
  if (values.knowledge_base_ids?.length) draft.knowledge_base_ids = values.knowledge_base_ids;
  return draft;
}

/**
 * "Create from a description": the description, then the draft streamed field by field into an editable preview
 * (each field can be written again), the model's notes and failures, and Create agent, which opens the studio.
 */
export function GenerateAgentDrawer({ open, onClose }: { open: boolean; onClose: () => void }) {
  const { t, locale } = useLocale();
  const { message } = App.useApp();
  const router = useRouter();
  const narrow = !(Grid.useBreakpoint().md ?? true);
  const [form] = Form.useForm<DraftForm>();
  const [description, setDescription] = useState("");
  const [started, setStarted] = useState(false);
  const [creating, setCreating] = useState(false);
  const [createError, setCreateError] = useState<unknown>(null);
  const choices = useAsync(
    async () => (open ? { tools: await listTools(), knowledgeBases: await listKnowledgeBases() } : null),
    [open],
  );
  const generation = useGeneration({
    onText: (field, text) => {
      if (TEXT_FIELDS.has(field)) form.setFieldValue(field, text);
    },
    onValue: (field, value) => form.setFieldValue(field, value ?? (TEXT_FIELDS.has(field) ? "" : [])),
  });
  const { state } = generation;

  const generate = (fields?: GeneratedField[]) => {
    const brief = description.trim();
    if (!brief) return;
    setCreateError(null);
    const current = fields ? currentDraft(form.getFieldsValue(true) as DraftForm) : undefined;
    if (!fields) form.setFieldsValue(EMPTY);
    else if (fields.every((field) => TEXT_FIELDS.has(field))) fields.forEach((field) => form.setFieldValue(field, ""));
    setStarted(true);
    void generation.start(fields ?? [], (onEvent, signal) =>
      streamGenerate({ description: brief, language: locale, fields, current }, onEvent, signal),
    );
  };

  const create = async () => {
    let values: DraftForm;
    try {
      values = await form.validateFields();
    } catch {
      return;
    }
    setCreating(true);
    setCreateError(null);
    try {
      const created = await createAgent({
        name: values.name.trim(),
        display_name: (values.display_name ?? "").trim(),
        description: values.description ?? "",
        instructions: {
          duty: values.duty ?? "",
          constraints: values.constraints ?? "",
          examples: (values.examples ?? []).filter((example) => example?.question || example?.answer),
        },
        tools: (values.tools ?? []).map((name) => ({ name })),
        knowledge_base_ids: values.knowledge_base_ids ?? [],
        agent_type: "tool_calling",
        max_steps: 10,
        greeting: "",
      });
      message.success(t("agents.createdMessage", { name: agentLabel(created) }));
      close();
      router.push(`/agents/edit?id=${created.id}`);
    } catch (caught) {
      setCreateError(caught);
    } finally {
      setCreating(false);
    }
  };

  const close = () => {
    generation.stop();
    onClose();
  };

  const regenerate = (field: GeneratedField) => (
    <Button
      size="small"
      icon={<ReloadOutlined aria-hidden />}
      disabled={state.running || !description.trim()}
      aria-label={t("agents.gen.regenerateField", { field: generatedFieldLabel(field, t) })}
      onClick={() => generate([field])}
    >
      {t("agents.gen.regenerate")}
    </Button>
  );
  const footer = (field: GeneratedField, raw = false) => (
    <Flex justify="space-between" align="start" gap={8} wrap style={{ marginTop: 4 }}>
      <FieldState field={field} state={state} raw={raw} />
      <span style={{ marginInlineStart: "auto" }}>{regenerate(field)}</span>
    </Flex>
  );

  return (
    <Drawer
      open={open}
      onClose={close}
      title={t("agents.gen.title")}
      size={narrow ? "100%" : 760}
      destroyOnHidden
      footer={
        <Flex justify="end" gap={8} wrap>
          <Button onClick={close}>{t("common.cancel")}</Button>
          <Button type="primary" loading={creating} disabled={!started || state.running} onClick={() => void create()}>
            {t("agents.createAction")}
          </Button>
        </Flex>
      }
    >
      <Flex vertical gap={16}>
        <Typography.Paragraph type="secondary" style={{ margin: 0 }}>
          {t("agents.gen.hint")}
        </Typography.Paragraph>
        <div>
          <label htmlFor="agent-description" style={{ display: "block", marginBottom: 8 }}>
            {t("agents.gen.description")}
          </label>
          <Input.TextArea
            id="agent-description"
            autoFocus
            value={description}
            onChange={(event) => setDescription(event.target.value)}
            autoSize={{ minRows: 3, maxRows: 10 }}
            maxLength={4000}
            placeholder={t("agents.gen.placeholder")}
            aria-describedby="agent-description-hint"
            onKeyDown={(event) => {
              if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !state.running) {
                event.preventDefault();
                generate();
              }
            }}
          />
          <Typography.Text id="agent-description-hint" type="secondary" style={{ fontSize: 12 }}>
            {t("agents.gen.descriptionHint")}
          </Typography.Text>
        </div>
        <Flex gap={8} wrap>
          <Button
            type="primary"
            icon={<ThunderboltOutlined aria-hidden />}
            disabled={!description.trim()}
            loading={state.running}
            onClick={() => generate()}
          >
            {started ? t("agents.gen.generateAgain") : t("agents.gen.generate")}
          </Button>
          {state.running ? (
            <Button icon={<StopOutlined aria-hidden />} onClick={generation.stop}>
              {t("agents.gen.stop")}
            </Button>
          ) : null}
        </Flex>
        <GenerationNotices state={state} />
        <ErrorAlert error={choices.error ?? createError} />
        {started ? (
          <Card size="small" title={<h2 style={{ fontSize: 16, margin: 0, fontWeight: 600 }}>{t("agents.gen.preview")}</h2>}>
            <Form<DraftForm> form={form} layout="vertical" initialValues={EMPTY} requiredMark="optional">
              <Form.Item
                label={t("common.name")}
                name="name"
                extra={footer("name")}
                rules={[
                  { required: true, whitespace: true, message: t("agents.nameRequired") },
                  { max: 80, message: t("agents.nameTooLong") },
                ]}
              >
                <Input maxLength={80} />
              </Form.Item>
              <Form.Item
                label={t("agents.field.displayName")}
                name="display_name"
                extra={footer("display_name")}
                rules={[{ max: 120, message: t("agents.displayNameTooLong") }]}
              >
                <Input />
              </Form.Item>
              <Form.Item label={t("common.description")} name="description" extra={footer("description")}>
                <Input.TextArea autoSize={{ minRows: 2, maxRows: 6 }} maxLength={2000} />
              </Form.Item>
              <Form.Item label={t("agents.field.duty")} name="duty" extra={footer("duty")}>
                <Input.TextArea autoSize={{ minRows: 3, maxRows: 14 }} maxLength={20000} />
              </Form.Item>
              <Form.Item label={t("agents.field.constraints")} name="constraints" extra={footer("constraints")}>
                <Input.TextArea autoSize={{ minRows: 2, maxRows: 10 }} maxLength={20000} />
              </Form.Item>
              <Typography.Text strong>{t("agents.field.examples")}</Typography.Text>
              <Form.List name="examples">
                {(fields, { add, remove }) => (
                  <Flex vertical gap={8} style={{ margin: "8px 0" }}>
                    {fields.map((field, index) => (
                      <ExampleCard key={field.key} field={field} index={index} onRemove={() => remove(field.name)} />
                    ))}
                    <Flex justify="space-between" gap={8} wrap>
                      <Button icon={<PlusOutlined />} onClick={() => add({ question: "", answer: "" })}>
                        {t("agents.addExample")}
                      </Button>
                      {regenerate("examples")}
                    </Flex>
                    <FieldState field="examples" state={state} raw />
                  </Flex>
                )}
              </Form.List>
              <Form.Item label={t("agents.field.tools")} name="tools" extra={footer("tools", true)} style={{ marginTop: 16 }}>
                <Select
                  mode="multiple"
                  allowClear
                  options={(choices.data?.tools ?? []).map((tool) => ({ value: tool.name, label: tool.name }))}
                />
              </Form.Item>
              <Form.Item
                label={t("agents.field.knowledgeBases")}
                name="knowledge_base_ids"
                extra={footer("knowledge_base_ids", true)}
                style={{ marginBottom: 0 }}
              >
                <Select
                  mode="multiple"
                  allowClear
                  optionFilterProp="label"
                  options={(choices.data?.knowledgeBases ?? []).map((kb) => ({ value: kb.id, label: kb.name }))}
                />
              </Form.Item>
            </Form>
          </Card>
        ) : null}
      </Flex>
    </Drawer>
  );
}
