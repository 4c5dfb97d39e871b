"use client";

import { DeleteOutlined, EditOutlined, PlusOutlined } from "@ant-design/icons";
import { Alert, App, Button, Card, Flex, Form, Input, List, Modal, Popconfirm, Select, Space, Switch, Tag, Typography } from "antd";
import { useMemo, useState } from "react";
import { useMe } from "@/features/auth/SessionProvider";
import { useLocale, useT } from "@/i18n";
import type { MessageKey } from "@/i18n/messages";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { useAction } from "@/ui/useAction";
import { useAsync } from "@/ui/useAsync";
import {
  AGENT_LEVELS,
  LEVELS,
  agentName,
  createMemory,
  deleteMemory,
  listAgentSummaries,
  listMemories,
  memorySettings,
  updateMemory,
  updateMemorySettings,
  type AgentSummary,
  type Memory,
  type MemoryLevel,
  type MemorySettings,
} from "./api";
import "./messages";

type T = ReturnType<typeof useT>;

const CARD_HEADING = { fontSize: 16, margin: 0, fontWeight: 600 } as const;

const levelLabel = (t: T, level: MemoryLevel) => t(`memory.level.${level}` as MessageKey);

/** Per-level switches and the agents whose runs with the caller use no memory. */
function SwitchesCard({
  settings,
  agents,
  onSaved,
}: {
  settings: MemorySettings;
  agents: AgentSummary[];
  onSaved: (settings: MemorySettings) => void;
}) {
  const t = useT();
  const { message } = App.useApp();
  const [saving, setSaving] = useState(false);
  const save = async (body: Parameters<typeof updateMemorySettings>[0]) => {
    setSaving(true);
    try {
      onSaved(await updateMemorySettings(body));
      message.success(t("memory.saved"));
    } catch (error) {
      message.error(errorMessage(error, t));
    } finally {
      setSaving(false);
    }
  };
  const byId = new Map(agents.map((agent) => [agent.id, agent]));
  const turnedOff = settings.agents_turned_off.map((id) => agentName(byId.get(id), t("memory.unknownAgent")));
  return (
    <Card title={<h2 style={CARD_HEADING}>{t("memory.switches")}</h2>} size="small">
      <Typography.Paragraph type="secondary">{t("memory.switchesHint")}</Typography.Paragraph>
      <Flex vertical gap={12}>
        {LEVELS.map((level) => (
          <Flex key={level} gap={12} align="flex-start">
            <Switch
              id={`memory-switch-${level}`}
              checked={settings.levels[level]}
              loading={saving}
              onChange={(checked) => void save({ levels: { ...settings.levels, [level]: checked } })}
              aria-label={levelLabel(t, level)}
              aria-describedby={`memory-switch-${level}-hint`}
            />
            <label htmlFor={`memory-switch-${level}`} style={{ cursor: "pointer" }}>
              <Typography.Text strong>{levelLabel(t, level)}</Typography.Text>
              <br />
              <Typography.Text type="secondary" id={`memory-switch-${level}-hint`}>
                {t(`memory.levelHint.${level}` as MessageKey)}
              </Typography.Text>
            </label>
          </Flex>
        ))}
        <div>
          <label htmlFor="memory-disabled-agents">
            <Typography.Text strong>{t("memory.disabledAgents")}</Typography.Text>
          </label>
          <Typography.Paragraph type="secondary" style={{ marginBottom: 4 }}>
            {t("memory.disabledAgentsHint")}
          </Typography.Paragraph>
          <Select
            id="memory-disabled-agents"
            mode="multiple"
            allowClear
            style={{ width: "100%", maxWidth: 520 }}
            value={settings.disabled_agent_ids}
            disabled={saving}
            optionFilterProp="label"
            options={agents.map((agent) => ({ value: agent.id, label: agentName(agent, agent.name) }))}
            onChange={(ids: string[]) => void save({ disabled_agent_ids: ids })}
          />
        </div>
        {turnedOff.length ? (
          <Typography.Text type="secondary">{t("memory.turnedOff", { names: turnedOff.join(", ") })}</Typography.Text>
        ) : null}
      </Flex>
    </Card>
  );
}

interface AddValues {
  level: MemoryLevel;
  agent_id?: string;
  text: string;
}

function AddModal({
  open,
  levels,
  agents,
  onClose,
  onSaved,
}: {
  open: boolean;
  levels: MemoryLevel[];
  agents: AgentSummary[];
  onClose: () => void;
  onSaved: () => void;
}) {
  const t = useT();
  const [form] = Form.useForm<AddValues>();
  const level = Form.useWatch("level", form);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (values: AddValues) => {
    setSaving(true);
    setError(null);
    try {
      await createMemory({
        level: values.level,
        text: values.text.trim(),
        ...(AGENT_LEVELS.has(values.level) ? { agent_id: values.agent_id } : {}),
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
      title={t("memory.addTitle")}
      onCancel={onClose}
      onOk={() => form.submit()}
      okText={t("memory.add")}
      cancelText={t("common.cancel")}
      confirmLoading={saving}
      destroyOnHidden
    >
      {error ? <Alert type="error" showIcon title={errorMessage(error, t)} style={{ marginBottom: 12 }} /> : null}
      <Form form={form} layout="vertical" onFinish={submit} initialValues={{ level: "user" }}>
        <Form.Item name="text" label={t("memory.text")} extra={t("memory.textHint")} rules={[{ required: true, whitespace: true, message: t("auth.required") }]}>
          <Input.TextArea autoSize={{ minRows: 2, maxRows: 6 }} maxLength={2000} autoFocus />
        </Form.Item>
        <Form.Item name="level" label={t("memory.level")}>
          <Select options={levels.map((value) => ({ value, label: levelLabel(t, value) }))} />
        </Form.Item>
        {level && AGENT_LEVELS.has(level) ? (
          <Form.Item name="agent_id" label={t("memory.agent")} rules={[{ required: true, message: t("auth.required") }]}>
            <Select
              showSearch
              optionFilterProp="label"
              options={agents.map((agent) => ({ value: agent.id, label: agentName(agent, agent.name) }))}
            />
          </Form.Item>
        ) : null}
      </Form>
    </Modal>
  );
}

/** One memory: its text (edited in place), level, agent, origin; edit and delete when the caller may. */
function MemoryItem({ memory, agents, onChanged }: { memory: Memory; agents: Map<string, AgentSummary>; onChanged: () => void }) {
  const t = useT();
  const { locale } = useLocale();
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(memory.text);
  const [saving, setSaving] = useState(false);
  const act = useAction(onChanged);
  const save = async () => {
    setSaving(true);
    const ok = await act(() => updateMemory(memory.id, text.trim()), t("memory.updated"));
    setSaving(false);
    if (ok) setEditing(false);
  };
  const when = new Date(memory.updated_at).toLocaleString(locale === "zh" ? "zh-CN" : "en-US");
  const agent = memory.agent_id ? agentName(agents.get(memory.agent_id), t("memory.unknownAgent")) : null;
  return (
    <List.Item data-testid="memory-item">
      <Flex vertical gap={6} style={{ width: "100%", minWidth: 0 }}>
        {editing ? (
          <Flex vertical gap={8}>
            <Input.TextArea
              aria-label={t("memory.editLabel")}
              value={text}
              autoFocus
              maxLength={2000}
              autoSize={{ minRows: 2, maxRows: 8 }}
              onChange={(event) => setText(event.target.value)}
              onKeyDown={(event) => {
                if (event.key === "Escape") {
                  setEditing(false);
                  setText(memory.text);
                } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && text.trim()) {
                  void save();
                }
              }}
            />
            <Space>
              <Button type="primary" size="small" loading={saving} disabled={!text.trim()} onClick={() => void save()}>
                {t("memory.save")}
              </Button>
              <Button
                size="small"
                onClick={() => {
                  setEditing(false);
                  setText(memory.text);
                }}
              >
                {t("common.cancel")}
              </Button>
            </Space>
          </Flex>
        ) : (
          <Typography.Paragraph style={{ marginBottom: 0, whiteSpace: "pre-wrap", overflowWrap: "anywhere" }} data-testid="memory-text">
            {memory.text}
          </Typography.Paragraph>
        )}
        <Flex gap={8} wrap align="center">
          <Tag>{levelLabel(t, memory.level)}</Tag>
          {agent ? <Tag>{agent}</Tag> : null}
          <Typography.Text type="secondary" style={{ fontSize: 12 }}>
            {memory.source_run_id ? t("memory.fromRun") : t("memory.byHand")} · {t("memory.updatedAt", { when })}
            {memory.score != null ? ` · ${t("memory.score", { score: memory.score.toFixed(2) })}` : ""}
          </Typography.Text>
          {memory.can_edit ? (
            editing ? null : (
              <Space size="small" style={{ marginInlineStart: "auto" }}>
                <Button
                  size="small"
                  icon={<EditOutlined />}
                  aria-label={`${t("memory.edit")}: ${memory.text.slice(0, 60)}`}
                  onClick={() => {
                    setText(memory.text);
                    setEditing(true);
                  }}
                >
                  {t("memory.edit")}
                </Button>
                <Popconfirm
                  title={t("memory.deleteConfirm")}
                  okText={t("memory.delete")}
                  cancelText={t("common.cancel")}
                  okButtonProps={{ danger: true }}
                  onConfirm={() => act(() => deleteMemory(memory.id), t("memory.deleted"))}
                >
                  <Button size="small" icon={<DeleteOutlined />} aria-label={`${t("memory.delete")}: ${memory.text.slice(0, 60)}`}>
                    {t("memory.delete")}
                  </Button>
                </Popconfirm>
              </Space>
            )
          ) : (
            <Tag style={{ marginInlineStart: "auto" }}>{t("memory.readOnly")}</Tag>
          )}
        </Flex>
      </Flex>
    </List.Item>
  );
}

/** `/memory`: what agents remember of the caller (and the workspace's and agents' memories), search, switches. */
export function MemoryPage() {
  const t = useT();
  const { can } = useMe();
  const manager = can("memory.manage");
  const [level, setLevel] = useState<MemoryLevel | "all">("all");
  const [agentId, setAgentId] = useState<string | undefined>();
  const [query, setQuery] = useState("");
  const [adding, setAdding] = useState(false);
  const settings = useAsync(memorySettings, []);
  const agents = useAsync(listAgentSummaries, []);
  const memories = useAsync(
    () => listMemories({ level: level === "all" ? undefined : level, agentId, q: query || undefined }),
    [level, agentId, query],
  );
  const agentList = useMemo(() => agents.data ?? [], [agents.data]);
  const agentsById = useMemo(() => new Map(agentList.map((agent) => [agent.id, agent])), [agentList]);
  const list = memories.data ?? [];
  const filtered = level !== "all" || agentId || query;
  const addable: MemoryLevel[] = manager ? LEVELS : ["user", "user_agent"];
  const addButton = (
    <Button type="primary" icon={<PlusOutlined />} onClick={() => setAdding(true)}>
      {t("memory.add")}
    </Button>
  );
  return (
    <Flex vertical gap={16}>
      <Typography.Title level={1} style={{ fontSize: 24, margin: 0 }}>
        {t("memory.title")}
      </Typography.Title>
      <Typography.Paragraph type="secondary" style={{ margin: 0, maxWidth: 760 }}>
        {t("memory.intro")}
      </Typography.Paragraph>
      <ErrorAlert error={settings.error ?? agents.error} onRetry={settings.reload} />
      {settings.data && !settings.data.enabled ? <Alert type="warning" showIcon title={t("memory.platformOff")} /> : null}
      <Card title={<h2 style={CARD_HEADING}>{t("memory.list")}</h2>} size="small" extra={addButton}>
        <Flex vertical gap={12}>
          <Flex gap={8} wrap>
            <Input.Search
              aria-label={t("memory.search")}
              placeholder={t("memory.searchPlaceholder")}
              allowClear
              enterButton
              onSearch={(value) => setQuery(value.trim())}
              style={{ flex: "1 1 260px", maxWidth: 480 }}
            />
            <Select
              aria-label={t("memory.levelFilter")}
              value={level}
              onChange={setLevel}
              style={{ width: 190 }}
              options={[
                { value: "all", label: t("memory.all") },
                ...LEVELS.map((value) => ({ value, label: levelLabel(t, value) })),
              ]}
            />
            <Select
              aria-label={t("memory.agentFilter")}
              value={agentId ?? ""}
              onChange={(value: string) => setAgentId(value || undefined)}
              style={{ width: 190 }}
              optionFilterProp="label"
              showSearch
              options={[
                { value: "", label: t("memory.anyAgent") },
                ...agentList.map((agent) => ({ value: agent.id, label: agentName(agent, agent.name) })),
              ]}
            />
          </Flex>
          <ErrorAlert error={memories.error} onRetry={memories.reload} />
          {!memories.loading && !memories.error && list.length === 0 ? (
            filtered ? (
              <EmptyState title={t("memory.noMatch")} />
            ) : (
              <EmptyState title={t("memory.emptyTitle")} hint={t("memory.emptyHint")} action={addButton} />
            )
          ) : (
            <List
              loading={memories.loading}
              dataSource={list}
              rowKey="id"
              renderItem={(memory) => (
                <MemoryItem key={`${memory.id}-${memory.updated_at}`} memory={memory} agents={agentsById} onChanged={memories.reload} />
              )}
            />
          )}
        </Flex>
      </Card>
      {settings.data ? <SwitchesCard settings={settings.data} agents={agentList} onSaved={settings.setData} /> : null}
      <AddModal
        open={adding}
        levels={addable}
        agents={agentList}
        onClose={() => setAdding(false)}
        onSaved={() => {
          setAdding(false);
          memories.reload();
        }}
      />
    </Flex>
  );
}
