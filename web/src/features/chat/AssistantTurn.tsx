"use client";

import { Think, ThoughtChain, type ThoughtChainItemType } from "@ant-design/x";
import { Alert, Button, Collapse, Flex, Space, Tag, Tooltip, Typography } from "antd";
import { BulbOutlined, CopyOutlined, DatabaseOutlined, EditOutlined, PlusCircleOutlined, FileSearchOutlined, FieldTimeOutlined, RedoOutlined } from "@ant-design/icons";
import Link from "next/link";
import { App } from "antd";
import { useState } from "react";
import { useT } from "@/i18n";
import type { Citation, Learned, RememberedFact, Step, Turn } from "./transcript";
import { Markdown } from "./Markdown";
import { AttachmentProgress } from "./attachments/AttachmentProgress";
import "./messages";

function stepItems(steps: Step[], t: ReturnType<typeof useT>): ThoughtChainItemType[] {
  return steps.map((step) => ({
    key: step.callId,
    title: step.name,
    description: step.status === "running" ? t("chat.step.running") : step.error ? t("chat.step.failed") : undefined,
    status: step.status === "running" ? "loading" : step.status === "error" ? "error" : "success",
    collapsible: true,
    content: (
      <Flex vertical gap={8}>
        {step.arguments != null ? (
          <div>
            <Typography.Text strong>{t("chat.step.arguments")}</Typography.Text>
            <pre className="nx-pre">{JSON.stringify(step.arguments, null, 2)}</pre>
          </div>
        ) : null}
        {step.code ? <pre className="nx-pre">{step.code}</pre> : null}
        {step.inner.steps.length || step.inner.text ? (
          <div className="nx-nested">
            <Typography.Text strong>{t("chat.step.subAgent")}</Typography.Text>
            {step.inner.steps.length ? <ThoughtChain items={stepItems(step.inner.steps, t)} /> : null}
            {step.inner.text ? <Typography.Paragraph>{step.inner.text}</Typography.Paragraph> : null}
          </div>
        ) : null}
        {step.output != null || step.error ? (
          <div>
            <Typography.Text strong>{t("chat.step.result")}</Typography.Text>
            <pre className="nx-pre">{step.error || step.output}</pre>
          </div>
        ) : null}
      </Flex>
    ),
  }));
}

/** "Remembered N things": the memories the run started with, folded away. */
function Recalled({ memories }: { memories: RememberedFact[] }) {
  const t = useT();
  return (
    <Collapse
      size="small"
      ghost
      data-testid="memory-recalled"
      items={[
        {
          key: "recalled",
          label: (
            <Typography.Text type="secondary">
              <DatabaseOutlined />{" "}
              {memories.length === 1 ? t("chat.memory.recalledOne") : t("chat.memory.recalled", { n: memories.length })}
            </Typography.Text>
          ),
          children: (
            <ul className="nx-memory-list" style={{ margin: 0, paddingInlineStart: 20 }}>
              {memories.map((memory) => (
                <li key={memory.id}>{memory.text}</li>
              ))}
            </ul>
          ),
        },
      ]}
    />
  );
}

/** "Learned: ..." and "Updated: ...": what memory kept from the turn, with a way to the memory page. */
function LearnedNote({ learned }: { learned: Learned }) {
  const t = useT();
  if (!learned.added.length && !learned.updated.length) return null;
  return (
    <Flex vertical gap={2} data-testid="memory-learned" role="status">
      {learned.added.map((memory) => (
        <Typography.Text key={`a-${memory.id}`} type="secondary" style={{ fontSize: 13 }}>
          <PlusCircleOutlined /> {t("chat.memory.learned", { text: memory.text })}
        </Typography.Text>
      ))}
      {learned.updated.map((memory) => (
        <Typography.Text key={`u-${memory.id}`} type="secondary" style={{ fontSize: 13 }}>
          <EditOutlined /> {t("chat.memory.updated", { text: memory.text })}
        </Typography.Text>
      ))}
      <Link href="/memory" style={{ fontSize: 13 }}>
        {t("chat.memory.manage")}
      </Link>
    </Flex>
  );
}

export function AssistantTurn({
  turn,
  onRegenerate,
  onCitation,
}: {
  turn: Turn;
  onRegenerate?: () => void;
  onCitation: (citation: Citation) => void;
}) {
  const t = useT();
  const { message } = App.useApp();
  const running = turn.status === "running";
  const [thoughtsOpen, setThoughtsOpen] = useState(false); // collapsed until asked for
  return (
    <Flex vertical gap={8} className="nx-turn" aria-busy={running}>
      {turn.attachments?.length ? <AttachmentProgress items={turn.attachments} /> : null}
      {turn.recalled.length ? <Recalled memories={turn.recalled} /> : null}
      {turn.thinking ? (
        <Think
          icon={<BulbOutlined />}
          // The panel opens on a click of its status line, a plain element: the title is a button inside it, so the
          // keyboard reaches it (its click goes on to the line) and it says whether the panel is open.
          title={
            <button type="button" className="nx-plain-button" aria-expanded={thoughtsOpen}>
              {running && !turn.text ? t("chat.thinking") : t("chat.thought")}
            </button>
          }
          loading={running && !turn.text}
          expanded={thoughtsOpen}
          onExpand={setThoughtsOpen}
        >
          <Typography.Paragraph style={{ whiteSpace: "pre-wrap", marginBottom: 0 }}>{turn.thinking}</Typography.Paragraph>
        </Think>
      ) : null}
      {turn.steps.length ? <ThoughtChain items={stepItems(turn.steps, t)} /> : null}
      {turn.text ? (
        <div className="nx-answer" data-testid="answer">
          <Markdown text={turn.text} streaming={running} />
        </div>
      ) : running && !turn.thinking && !turn.steps.length ? (
        <Typography.Text type="secondary">{t("chat.waiting")}</Typography.Text>
      ) : null}
      {turn.status === "failed" ? <Alert type="error" showIcon title={turn.error || t("chat.failed")} /> : null}
      {turn.status === "stopped" ? <Tag>{t("chat.stopped")}</Tag> : null}
      {turn.citations.length ? (
        <ul aria-label={t("chat.sources")} className="nx-sources">
          {turn.citations.map((citation, index) => (
            <li key={`${citation.title}-${index}`}>
              <Button size="small" icon={<FileSearchOutlined />} onClick={() => onCitation(citation)}>
                [{index + 1}] {citation.title}
              </Button>
            </li>
          ))}
        </ul>
      ) : null}
      {turn.learned ? <LearnedNote learned={turn.learned} /> : null}
      {!running ? (
        <Space size="small" wrap>
          {turn.usage ? (
            <Typography.Text type="secondary" style={{ fontSize: 12 }}>
              {t("chat.usage", { input: turn.usage.input_tokens, output: turn.usage.output_tokens })}
            </Typography.Text>
          ) : null}
          <Tooltip title={t("chat.copyAnswer")}>
            <Button
              size="small"
              type="text"
              aria-label={t("chat.copyAnswer")}
              icon={<CopyOutlined />}
              onClick={() => navigator.clipboard?.writeText(turn.text).then(() => message.success(t("common.copied")))}
            />
          </Tooltip>
          {onRegenerate ? (
            <Tooltip title={t("chat.regenerate")}>
              <Button size="small" type="text" aria-label={t("chat.regenerate")} icon={<RedoOutlined />} onClick={onRegenerate} />
            </Tooltip>
          ) : null}
          {turn.runId ? (
            <Tooltip title={t("chat.timeline")}>
              <Link href={`/runs?id=${turn.runId}`} aria-label={t("chat.timeline")}>
                <FieldTimeOutlined />
              </Link>
            </Tooltip>
          ) : null}
        </Space>
      ) : null}
    </Flex>
  );
}
