"use client";

import { ArrowLeftOutlined, DeleteOutlined, PlusOutlined } from "@ant-design/icons";
import { App, Button, Card, Col, Flex, Form, Grid, Input, InputNumber, Radio, Row, Select, Spin, Tabs, Typography } from "antd";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useMemo, useState } from "react";
import { ApiError } from "@/api/problem";
import { useMe } from "@/features/auth/SessionProvider";
import { AgentMemoryCard } from "@/features/memory/AgentMemoryCard";
import { useT } from "@/i18n";
import { AppShell } from "@/ui/AppShell";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import {
  createAgent,
  getAgent,
  listAllAgents,
  listChatModels,
  listKnowledgeBases,
  listSkillNames,
  listTools,
  agentLabel,
  updateAgent,
  type Agent,
  type AgentCreate,
  type KnowledgeBase,
  type Model,
  type ToolInfo,
  type ToolUse,
} from "./api";
import { ExportButton } from "./ExportButton";
import { ImproveButton, type ImprovedInstructions } from "./ImproveDialog";
import { PublishButton } from "./PublishButton";
import { PublishStatus } from "./PublishStatus";
import { A2aPanel } from "./A2aPanel";
import { SharingPanel } from "./SharingPanel";
import { TestChatSlot } from "./TestChatSlot";
import { TestsPanel } from "./TestsPanel";
import { ToolPicker } from "./ToolPicker";
import { SkillPicker } from "@/features/skills/SkillPicker";
import type { Names } from "./VersionDiff";
import { VersionsPanel } from "./VersionsPanel";
import { ExampleCard } from "./ExampleCard";
import "./messages";
import "./builderMessages";
import "@/features/remote-agents/messages";

const MAX_EXAMPLE_QUESTIONS = 10;
const MAX_EXAMPLES = 20;
const CARD_HEADING = { fontSize: 16, margin: 0, fontWeight: 600 } as const;

/** The form's values: the draft as the API takes it (the model left empty for the tenant's default). */
interface DraftValues {
  name: string;
  display_name: string;
  description: string;
  agent_type: Agent["agent_type"];
  /** A model's id, or TENANT_DEFAULT. */
  model_id: string;
  max_steps: number;
  instructions: { duty: string; constraints: string; examples: { question: string; answer: string }[] };
  tools: ToolUse[];
  knowledge_base_ids: string[];
  skill_ids: string[];
  sub_agent_ids: string[];
  /** Remote (A2A) agents used as sub-agents: their tool names (they are `tools` entries of the draft). */
  remote_agents: string[];
  greeting: string;
  example_questions: string[];
}

/** The model choice that stands for `null`: the tenant's default model. */
const TENANT_DEFAULT = "";

const NEW_DRAFT: DraftValues = {
  name: "",
  display_name: "",
  model_id: TENANT_DEFAULT,
  description: "",
  agent_type: "tool_calling",
  max_steps: 10,
  instructions: { duty: "", constraints: "", examples: [] },
  tools: [],
  knowledge_base_ids: [],
  skill_ids: [],
  sub_agent_ids: [],
  remote_agents: [],
  greeting: "",
  example_questions: [],
};

/** The names of the tenant's remote agents among the catalog's tools. */
function remoteNames(tools: ToolInfo[]): Set<string> {
  return new Set(tools.filter((tool) => tool.source.kind === "a2a").map((tool) => tool.name));
}

function valuesOf(agent: Agent, remote: Set<string>): DraftValues {
  return {
    name: agent.name,
    display_name: agent.display_name,
    description: agent.description,
    agent_type: agent.agent_type,
    model_id: agent.model_id ?? TENANT_DEFAULT,
    max_steps: agent.max_steps,
    instructions: {
      duty: agent.instructions.duty ?? "",
      constraints: agent.instructions.constraints ?? "",
      examples: agent.instructions.examples ?? [],
    },
    tools: agent.tools.filter((tool) => !remote.has(tool.name)),
    knowledge_base_ids: agent.knowledge_base_ids,
    skill_ids: agent.skill_ids ?? [],
    sub_agent_ids: agent.sub_agent_ids,
    remote_agents: agent.tools.filter((tool) => remote.has(tool.name)).map((tool) => tool.name),
    greeting: agent.greeting,
    example_questions: agent.example_questions,
  };
}

function bodyOf({ remote_agents, ...values }: DraftValues): AgentCreate {
  return {
    ...values,
    tools: [...(values.tools ?? []), ...(remote_agents ?? []).map((name) => ({ name }))],
    name: values.name.trim(),
    display_name: (values.display_name ?? "").trim(),
    model_id: values.model_id || null,
    instructions: {
      ...values.instructions,
      examples: (values.instructions.examples ?? []).filter((example) => example.question || example.answer),
    },
    example_questions: (values.example_questions ?? []).map((question) => question.trim()).filter(Boolean),
  };
}

/** Form fields of the studio, by the first part of an error's `loc`; deeper parts are kept where the form has them. */
const FIELD_DEPTH: Record<string, number> = {
  name: 1,
  display_name: 1,
  description: 1,
  agent_type: 1,
  model_id: 1,
  max_steps: 1,
  tools: 1,
  knowledge_base_ids: 1,
  skill_ids: 1,
  sub_agent_ids: 1,
  remote_agents: 1,
  greeting: 1,
  example_questions: 2,
  instructions: 4,
};

/** The problem's field errors as form field errors (the whole message is in the alert too). */
function fieldErrorsOf(error: unknown): { name: (string | number)[]; errors: string[] }[] {
  if (!(error instanceof ApiError)) return [];
  if (error.code === "agent_name_taken") return [{ name: ["name"], errors: [error.message] }];
  const byField = new Map<string, { name: (string | number)[]; errors: string[] }>();
  for (const item of error.problem.errors ?? []) {
    const loc = (item.loc ?? []).filter((part) => part !== "body").map((part) => (/^\d+$/.test(String(part)) ? Number(part) : part));
    const depth = FIELD_DEPTH[String(loc[0])];
    if (!depth) continue;
    const name = loc.slice(0, depth);
    const key = JSON.stringify(name);
    const entry = byField.get(key) ?? { name, errors: [] };
    entry.errors.push(item.msg ?? "");
    byField.set(key, entry);
  }
  return [...byField.values()];
}

export function AgentStudioPage() {
  return (
    <AppShell>
      <Studio />
    </AppShell>
  );
}

interface Choices {
  models: Model[];
  knowledgeBases: KnowledgeBase[];
  agents: Agent[];
  tools: ToolInfo[];
  skills: Map<string, string>;
}

function Studio() {
  const t = useT();
  const id = useSearchParams().get("id");
  const agent = useAsync(() => (id ? getAgent(id) : Promise.resolve(null)), [id]);
  const choices = useAsync<Choices>(async () => {
    const [models, knowledgeBases, agents, tools, skills] = await Promise.all([
      listChatModels(),
      listKnowledgeBases(),
      listAllAgents(),
      listTools(),
      listSkillNames().catch(() => new Map<string, string>()),
    ]);
    return { models, knowledgeBases, agents, tools, skills };
  }, []);

  const back = (
    <Link href="/agents">
      <ArrowLeftOutlined aria-hidden /> {t("agents.backToList")}
    </Link>
  );
  if (agent.error || choices.error) {
    return (
      <>
        <ErrorAlert error={agent.error ?? choices.error} onRetry={agent.error ? agent.reload : choices.reload} />
        {back}
      </>
    );
  }
  if (agent.loading || choices.loading || !choices.data || agent.data === undefined) {
    return <Spin style={{ display: "block", margin: "15vh auto" }} />;
  }
  return (
    <Editor
      key={agent.data?.id ?? "new"}
      agent={agent.data}
      choices={choices.data}
      back={back}
      onSaved={(saved) => agent.setData(saved)}
    />
  );
}

function Editor({
  agent,
  choices,
  back,
  onSaved,
}: {
  agent: Agent | null;
  choices: Choices;
  back: React.ReactNode;
  onSaved: (agent: Agent) => void;
}) {
  const t = useT();
  const { can } = useMe();
  const { message } = App.useApp();
  const router = useRouter();
  const screens = Grid.useBreakpoint();
  const [form] = Form.useForm<DraftValues>();
  const [error, setError] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  // Whether the form has changes not saved yet (publishing takes the saved draft).
  const [dirty, setDirty] = useState(false);
  // Bumped when versions change (published, rolled back to, disabled): what shows them loads again.
  const [revision, setRevision] = useState(0);
  // Bumped when an evaluation starts from the publish dialog: the Tests tab loads its evaluations again.
  const [testsRevision, setTestsRevision] = useState(0);
  const [tab, setTab] = useState(useSearchParams().get("tab") ?? "settings");
  const editable = agent ? agent.can_edit : can("agents.manage");
  const wide = screens.lg ?? true;
  const remote = useMemo(() => remoteNames(choices.tools), [choices.tools]);
  const names = useMemo<Names>(
    () => ({
      models: new Map(choices.models.map((model) => [model.id, model.name])),
      knowledgeBases: new Map(choices.knowledgeBases.map((kb) => [kb.id, kb.name])),
      agents: new Map(choices.agents.map((other) => [other.id, agentLabel(other)])),
      skills: choices.skills,
    }),
    [choices],
  );

  const rolledBack = (draft: Agent, number: number) => {
    onSaved(draft);
    form.resetFields();
    form.setFieldsValue(valuesOf(draft, remote));
    setDirty(false);
    setRevision((n) => n + 1);
    message.success(t("agents.versions.rolledBack", { n: number }));
  };

  const versionsChanged = async () => {
    setRevision((n) => n + 1);
    if (!agent) return;
    try {
      onSaved(await getAgent(agent.id));
    } catch {
      // The status shows what it last knew; the next load corrects it.
    }
  };

  const applyImprovement = (proposal: ImprovedInstructions) => {
    const current = form.getFieldValue("instructions") as DraftValues["instructions"];
    form.setFieldsValue({ instructions: { ...current, ...proposal } });
    setDirty(true);
    setTab("settings");
    message.info(t("agents.improve.applied"));
  };

  const save = async (values: DraftValues) => {
    setSaving(true);
    setError(null);
    try {
      const body = bodyOf(values);
      if (agent) {
        const saved = await updateAgent(agent.id, body);
        onSaved(saved);
        form.setFieldsValue(valuesOf(saved, remote));
        setDirty(false);
        message.success(t("agents.savedMessage", { name: agentLabel(saved) }));
      } else {
        const created = await createAgent(body);
        message.success(t("agents.createdMessage", { name: agentLabel(created) }));
        router.replace(`/agents/edit?id=${created.id}`);
      }
    } catch (caught) {
      setError(caught);
      form.setFields(fieldErrorsOf(caught));
    } finally {
      setSaving(false);
    }
  };

  const modelOptions = [
    { value: TENANT_DEFAULT, label: t("agents.model.tenantDefault") },
    ...choices.models.map((model) => ({
      value: model.id,
      label: model.is_default ? `${model.name} (${t("agents.model.default")})` : model.name,
    })),
  ];
  const sections = (
    <Form<DraftValues>
      form={form}
      layout="vertical"
      initialValues={agent ? valuesOf(agent, remote) : NEW_DRAFT}
      onFinish={save}
      onValuesChange={() => setDirty(true)}
      disabled={!editable}
      requiredMark="optional"
      scrollToFirstError
    >
      <Flex vertical gap={16}>
        <Card title={<h2 style={CARD_HEADING}>{t("agents.section.basics")}</h2>} size="small">
          <Form.Item
            label={t("common.name")}
            name="name"
            rules={[
              { required: true, whitespace: true, message: t("agents.nameRequired") },
              { max: 80, message: t("agents.nameTooLong") },
            ]}
          >
            <Input maxLength={80} autoFocus={!agent} />
          </Form.Item>
          <Form.Item
            label={t("agents.field.displayName")}
            name="display_name"
            extra={t("agents.displayNameHint")}
            rules={[{ max: 120, message: t("agents.displayNameTooLong") }]}
          >
            <Input maxLength={120} />
          </Form.Item>
          <Form.Item label={t("common.description")} name="description" extra={t("agents.descriptionHint")}>
            <Input.TextArea autoSize={{ minRows: 2, maxRows: 6 }} maxLength={2000} />
          </Form.Item>
          <Form.Item label={t("agents.field.model")} name="model_id" extra={choices.models.length ? undefined : t("agents.model.none")}>
            <Select options={modelOptions} />
          </Form.Item>
          <Form.Item label={t("agents.field.type")} name="agent_type" extra={t("agents.type.hint")}>
            <Radio.Group
              options={[
                { value: "tool_calling", label: t("agents.type.tool_calling") },
                { value: "code", label: t("agents.type.code") },
              ]}
            />
          </Form.Item>
          <Form.Item label={t("agents.field.maxSteps")} name="max_steps" extra={t("agents.maxStepsHint")} rules={[{ required: true, message: t("agents.maxStepsHint") }]}>
            <InputNumber min={1} max={50} precision={0} style={{ width: 120 }} />
          </Form.Item>
        </Card>

        <Card
          title={<h2 style={CARD_HEADING}>{t("agents.section.instructions")}</h2>}
          size="small"
          extra={agent && editable ? <ImproveButton agent={agent} onApply={applyImprovement} /> : null}
        >
          <Form.Item label={t("agents.field.duty")} name={["instructions", "duty"]} extra={t("agents.dutyHint")}>
            <Input.TextArea autoSize={{ minRows: 4, maxRows: 16 }} maxLength={20000} />
          </Form.Item>
          <Form.Item label={t("agents.field.constraints")} name={["instructions", "constraints"]} extra={t("agents.constraintsHint")}>
            <Input.TextArea autoSize={{ minRows: 2, maxRows: 12 }} maxLength={20000} />
          </Form.Item>
          <Typography.Text strong>{t("agents.field.examples")}</Typography.Text>
          <Typography.Paragraph type="secondary">{t("agents.examplesHint")}</Typography.Paragraph>
          <Form.List name={["instructions", "examples"]}>
            {(fields, { add, remove }) => (
              <>
                {fields.map((field, index) => (
                  <ExampleCard key={field.key} field={field} index={index} onRemove={() => remove(field.name)} style={{ marginBottom: 12 }} />
                ))}
                {fields.length < MAX_EXAMPLES ? (
                  <Button icon={<PlusOutlined />} onClick={() => add({ question: "", answer: "" })}>
                    {t("agents.addExample")}
                  </Button>
                ) : null}
              </>
            )}
          </Form.List>
        </Card>

        <Card title={<h2 style={CARD_HEADING}>{t("agents.section.tools")}</h2>} size="small">
          <Typography.Paragraph type="secondary">{t("agents.toolsHint")}</Typography.Paragraph>
          <Form.Item name="tools" style={{ marginBottom: 0 }}>
            <ToolPicker catalog={choices.tools.filter((tool) => !remote.has(tool.name))} disabled={!editable} />
          </Form.Item>
          <Form.Item label={t("skills.picker")} name="skill_ids" extra={t("skills.picker.hint")} style={{ marginBottom: 0, marginTop: 16 }}>
            <SkillPicker disabled={!editable} />
          </Form.Item>
        </Card>

        <Card title={<h2 style={CARD_HEADING}>{t("agents.section.knowledge")}</h2>} size="small">
          <Form.Item
            label={t("agents.field.knowledgeBases")}
            name="knowledge_base_ids"
            extra={choices.knowledgeBases.length ? t("agents.knowledgeHint") : t("agents.knowledgeNone")}
          >
            <Select
              mode="multiple"
              allowClear
              optionFilterProp="label"
              options={choices.knowledgeBases.map((kb) => ({ value: kb.id, label: kb.name }))}
            />
          </Form.Item>
          <Form.Item label={t("agents.field.subAgents")} name="sub_agent_ids" extra={t("agents.subAgentsHint")} style={{ marginBottom: 0 }}>
            <Select
              mode="multiple"
              allowClear
              optionFilterProp="label"
              options={choices.agents
                .filter((other) => other.id !== agent?.id)
                .map((other) => ({ value: other.id, label: agentLabel(other) }))}
            />
          </Form.Item>
          <Form.Item
            label={t("remote.picker")}
            name="remote_agents"
            extra={t("remote.pickerHint")}
            style={{ marginBottom: 0, marginTop: 16 }}
          >
            <Select
              mode="multiple"
              allowClear
              optionFilterProp="label"
              data-testid="remote-agent-picker"
              options={choices.tools
                .filter((tool) => tool.source.kind === "a2a")
                .map((tool) => ({ value: tool.name, label: `${tool.source.name} · ${tool.description.split("\n")[0].replace(/^Remote agent /, "")}`.slice(0, 120) }))}
            />
          </Form.Item>
        </Card>

        <Card title={<h2 style={CARD_HEADING}>{t("agents.section.opening")}</h2>} size="small">
          <Form.Item label={t("agents.field.greeting")} name="greeting" extra={t("agents.greetingHint")}>
            <Input.TextArea autoSize={{ minRows: 2, maxRows: 6 }} maxLength={2000} />
          </Form.Item>
          <Typography.Text strong>{t("agents.field.exampleQuestions")}</Typography.Text>
          <Typography.Paragraph type="secondary">{t("agents.exampleQuestionsHint")}</Typography.Paragraph>
          <Form.List name="example_questions">
            {(fields, { add, remove }) => (
              <>
                {fields.map((field, index) => (
                  <Flex key={field.key} gap={8} align="start">
                    <Form.Item name={field.name} style={{ flex: 1, marginBottom: 8 }} rules={[{ max: 500, message: t("agents.questionTooLong") }]}>
                      <Input aria-label={t("agents.exampleQuestion", { n: index + 1 })} maxLength={500} />
                    </Form.Item>
                    <Button
                      type="text"
                      icon={<DeleteOutlined />}
                      aria-label={t("agents.removeQuestion", { n: index + 1 })}
                      onClick={() => remove(field.name)}
                    />
                  </Flex>
                ))}
                {fields.length < MAX_EXAMPLE_QUESTIONS ? (
                  <Button icon={<PlusOutlined />} onClick={() => add("")}>
                    {t("agents.addQuestion")}
                  </Button>
                ) : null}
              </>
            )}
          </Form.List>
        </Card>

        {agent && editable ? (
          <Card title={<h2 style={CARD_HEADING}>{t("agents.section.a2a")}</h2>} size="small">
            <A2aPanel agent={agent} onChanged={onSaved} />
          </Card>
        ) : null}

        {agent && can("agents.manage") ? (
          <Card title={<h2 style={CARD_HEADING}>{t("agents.section.sharing")}</h2>} size="small">
            <SharingPanel agentId={agent.id} />
          </Card>
        ) : null}

        {agent && can("memory.manage") ? <AgentMemoryCard agentId={agent.id} /> : null}
      </Flex>
    </Form>
  );

  const chat = (
    <Card title={<h2 style={CARD_HEADING}>{t("agents.testChat")}</h2>} size="small">
      <TestChatSlot agent={agent} />
    </Card>
  );

  const versions = agent ? (
    <VersionsPanel
      agent={agent}
      names={names}
      revision={revision}
      onRolledBack={rolledBack}
      onVersionsChanged={() => void versionsChanged()}
    />
  ) : null;
  const settingsTab = { key: "settings", label: t("agents.tab.settings"), children: sections, forceRender: true };
  const versionsTab = versions ? [{ key: "versions", label: t("agents.tab.versions"), children: versions }] : [];
  const testsTab = agent
    ? [
        {
          key: "tests",
          label: t("agents.tab.tests"),
          children: <TestsPanel agent={agent} revision={testsRevision} onAgentChanged={onSaved} />,
        },
      ]
    : [];
  const chatTab = { key: "chat", label: t("agents.testChat"), children: chat };
  const tabs = wide ? [settingsTab, ...versionsTab, ...testsTab] : [settingsTab, chatTab, ...versionsTab, ...testsTab];
  const activeTab = tabs.some((item) => item.key === tab) ? tab : "settings";

  return (
    <div style={{ maxWidth: 1400 }}>
      {back}
      <Flex justify="space-between" align="center" wrap gap={12} style={{ margin: "8px 0 16px" }}>
        <Flex vertical gap={4} style={{ minWidth: 0 }}>
          <Typography.Title level={1} style={{ fontSize: 24, margin: 0, minWidth: 0 }} ellipsis>
            {agent ? agentLabel(agent) : t("agents.new")}
          </Typography.Title>
          {agent ? <PublishStatus agent={agent} revision={revision} /> : null}
        </Flex>
        {editable ? (
          <Flex gap={8} wrap>
            {agent ? (
              <PublishButton
                agent={agent}
                dirty={dirty}
                names={names}
                onPublished={(version) => {
                  onSaved({ ...agent, published_version: version.number });
                  setRevision((n) => n + 1);
                }}
                onShowTests={() => {
                  setTab("tests");
                  setTestsRevision((n) => n + 1);
                }}
              />
            ) : null}
            {agent ? <ExportButton agent={agent} revision={revision} /> : null}
            <Button type="primary" loading={saving} onClick={() => form.submit()}>
              {agent ? t("common.save") : t("agents.createAction")}
            </Button>
          </Flex>
        ) : (
          <Flex gap={8} wrap align="center">
            <Typography.Text type="secondary">{t("agents.readOnly")}</Typography.Text>
            {agent ? <ExportButton agent={agent} revision={revision} /> : null}
          </Flex>
        )}
      </Flex>
      <ErrorAlert error={error} />
      {wide ? (
        <Row gutter={24} wrap={false}>
          <Col flex="1 1 0" style={{ minWidth: 0 }}>
            {tabs.length > 1 ? <Tabs activeKey={activeTab} onChange={setTab} items={tabs} /> : sections}
          </Col>
          <Col flex="0 0 380px">
            <div style={{ position: "sticky", top: 16 }}>{chat}</div>
          </Col>
        </Row>
      ) : (
        <Tabs activeKey={activeTab} onChange={setTab} items={tabs} />
      )}
    </div>
  );
}
