"use client";

import { BulbOutlined, StopOutlined, ThunderboltOutlined } from "@ant-design/icons";
import { Button, Card, Flex, Form, Input, Modal, Select, Typography } from "antd";
import { useState } from "react";
import { useLocale } from "@/i18n";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { agentLabel, listAgentConversations, streamImprove, type Agent } from "./api";
import { FieldState, GenerationNotices } from "./GenerationNotices";
import { useGeneration } from "./useGeneration";
import "./builderMessages";

export interface ImprovedInstructions {
  duty?: string;
  constraints?: string;
  examples?: { question: string; answer: string }[];
}

/**
 * "Improve instructions": a note on what went wrong (and optionally one of the caller's conversations with the
 * agent as evidence) streams proposed duty, constraints and examples; Apply puts them into the studio's form (it is
 * saved only when the user saves).
 */
export function ImproveButton({ agent, onApply }: { agent: Agent; onApply: (proposal: ImprovedInstructions) => void }) {
  const { t } = useLocale();
  const [open, setOpen] = useState(false);
  return (
    <>
      <Button size="small" icon={<BulbOutlined aria-hidden />} onClick={() => setOpen(true)}>
        {t("agents.improve")}
      </Button>
      {open ? <ImproveDialog agent={agent} onClose={() => setOpen(false)} onApply={onApply} /> : null}
    </>
  );
}

function ImproveDialog({
  agent,
  onClose,
  onApply,
}: {
  agent: Agent;
  onClose: () => void;
  onApply: (proposal: ImprovedInstructions) => void;
}) {
  const { t, locale } = useLocale();
  const [note, setNote] = useState("");
  const [conversationId, setConversationId] = useState<string | undefined>();
  const [proposal, setProposal] = useState<ImprovedInstructions>({});
  const conversations = useAsync(() => listAgentConversations(agent.id), [agent.id]);
  const generation = useGeneration({
    onText: (field, text) => {
      if (field === "duty" || field === "constraints") setProposal((previous) => ({ ...previous, [field]: text }));
    },
    onValue: (field, value) => {
      if (field === "duty" || field === "constraints") setProposal((previous) => ({ ...previous, [field]: String(value ?? "") }));
      if (field === "examples") {
        setProposal((previous) => ({ ...previous, examples: (value as ImprovedInstructions["examples"]) ?? [] }));
      }
    },
  });
  const { state } = generation;
  const started = state.running || state.completed || state.failure || state.stopped;

  const improve = () => {
    const text = note.trim();
    if (!text) return;
    setProposal({});
    void generation.start(["duty", "constraints", "examples"], (onEvent, signal) =>
      streamImprove(agent.id, { note: text, conversation_id: conversationId ?? null, language: locale }, onEvent, signal),
    );
  };

  const close = () => {
    generation.stop();
    onClose();
  };

  // Only what the model wrote completely is applied (a field cut short by a stop or a failure is left out).
  const applicable: ImprovedInstructions = {};
  if (!state.running) {
    if (proposal.duty !== undefined && !state.missing.includes("duty")) applicable.duty = proposal.duty;
    if (proposal.constraints !== undefined && !state.missing.includes("constraints")) applicable.constraints = proposal.constraints;
    if (proposal.examples !== undefined) applicable.examples = proposal.examples;
  }
  const canApply = Object.keys(applicable).length > 0 && !state.stopped;

  return (
    <Modal
      open
      title={t("agents.improve.title", { name: agentLabel(agent) })}
      onCancel={close}
      width={720}
      destroyOnHidden
      footer={
        <Flex justify="end" gap={8} wrap>
          <Button onClick={close}>{t("common.cancel")}</Button>
          {state.running ? (
            <Button icon={<StopOutlined aria-hidden />} onClick={generation.stop}>
              {t("agents.gen.stop")}
            </Button>
          ) : (
            <Button icon={<ThunderboltOutlined aria-hidden />} disabled={!note.trim()} onClick={improve}>
              {started ? t("agents.gen.generateAgain") : t("agents.improve.propose")}
            </Button>
          )}
          <Button
            type="primary"
            disabled={!canApply}
            onClick={() => {
              onApply(applicable);
              onClose();
            }}
          >
            {t("agents.improve.apply")}
          </Button>
        </Flex>
      }
    >
      <Flex vertical gap={12}>
        <Typography.Paragraph type="secondary" style={{ margin: 0 }}>
          {t("agents.improve.hint")}
        </Typography.Paragraph>
        <Form layout="vertical" component="div">
          <Form.Item label={t("agents.improve.note")} htmlFor="improve-note" extra={t("agents.improve.noteHint")}>
            <Input.TextArea
              id="improve-note"
              autoFocus
              value={note}
              onChange={(event) => setNote(event.target.value)}
              autoSize={{ minRows: 2, maxRows: 8 }}
              maxLength={4000}
              onKeyDown={(event) => {
                if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !state.running) {
                  event.preventDefault();
                  improve();
                }
              }}
            />
          </Form.Item>
          <Form.Item
            label={t("agents.improve.conversation")}
            htmlFor="improve-conversation"
            extra={t("agents.improve.conversationHint")}
            style={{ marginBottom: 0 }}
          >
            <Select
              id="improve-conversation"
              allowClear
              loading={conversations.loading}
              value={conversationId}
              onChange={(value?: string) => setConversationId(value)}
              placeholder={t("agents.improve.noConversation")}
              notFoundContent={t("agents.improve.noConversations")}
              options={(conversations.data ?? []).map((conversation) => ({
                value: conversation.id,
                label: conversation.title || t("agents.improve.untitled"),
              }))}
            />
          </Form.Item>
        </Form>
        <ErrorAlert error={conversations.error} />
        <GenerationNotices state={state} />
        {started ? (
          <Card size="small" title={<h2 style={{ fontSize: 16, margin: 0, fontWeight: 600 }}>{t("agents.improve.proposal")}</h2>}>
            <Flex vertical gap={12} data-testid="improve-proposal">
              <Proposed label={t("agents.field.duty")} text={proposal.duty} />
              <FieldState field="duty" state={state} />
              <Proposed label={t("agents.field.constraints")} text={proposal.constraints} />
              <FieldState field="constraints" state={state} />
              <div>
                <Typography.Text strong>{t("agents.field.examples")}</Typography.Text>
                {proposal.examples?.length ? (
                  <ol style={{ margin: "4px 0 0", paddingInlineStart: 20 }}>
                    {proposal.examples.map((example, index) => (
                      <li key={index}>
                        <Typography.Text>{example.question}</Typography.Text>
                        <br />
                        <Typography.Text type="secondary" style={{ whiteSpace: "pre-wrap" }}>
                          {example.answer}
                        </Typography.Text>
                      </li>
                    ))}
                  </ol>
                ) : (
                  <Typography.Paragraph type="secondary" style={{ margin: 0 }}>
                    {proposal.examples ? t("agents.improve.noExamples") : "—"}
                  </Typography.Paragraph>
                )}
                <FieldState field="examples" state={state} raw />
              </div>
            </Flex>
          </Card>
        ) : null}
      </Flex>
    </Modal>
  );
}

function Proposed({ label, text }: { label: string; text?: string }) {
  return (
    <div>
      <Typography.Text strong>{label}</Typography.Text>
      <Typography.Paragraph style={{ whiteSpace: "pre-wrap", margin: "4px 0 0" }}>{text || "—"}</Typography.Paragraph>
    </div>
  );
}
