"use client";

import { RobotOutlined, StopOutlined } from "@ant-design/icons";
import { Alert, App, Button, Col, Drawer, Flex, Grid, Input, Row, Typography } from "antd";
import { useRouter } from "next/navigation";
import { useEffect, useRef, useState } from "react";
import { Markdown } from "@/features/chat/Markdown";
import { useT } from "@/i18n";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { createFromManifest, manifestBody, streamDraft, type DraftCompleted, type DraftFailed } from "./api";
import { Refusal } from "./SkillUploader";
import "./messages";

type Phase = "idle" | "running" | "completed" | "failed" | "stopped" | "dropped";

/**
 * "Draft with AI": a description in, the SKILL.md streamed into an editable text (with its preview); Stop keeps what
 * was written; Create skill uploads the edited text as version 1 and opens the skill.
 */
export function DraftSkillDrawer({ open, onClose }: { open: boolean; onClose: () => void }) {
  const t = useT();
  const router = useRouter();
  const { message } = App.useApp();
  const screens = Grid.useBreakpoint();
  const [description, setDescription] = useState("");
  const [text, setText] = useState("");
  const [phase, setPhase] = useState<Phase>("idle");
  const [completed, setCompleted] = useState<DraftCompleted | null>(null);
  const [failure, setFailure] = useState<DraftFailed | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<unknown>(null);
  const controller = useRef<AbortController | null>(null);
  useEffect(() => () => controller.current?.abort(), []);

  const generate = async () => {
    if (!description.trim()) return;
    controller.current?.abort();
    const abort = new AbortController();
    controller.current = abort;
    setText("");
    setCompleted(null);
    setFailure(null);
    setError(null);
    setSaveError(null);
    setPhase("running");
    let written = "";
    let ended: Phase | null = null;
    try {
      await streamDraft(
        description.trim(),
        (event) => {
          if (abort.signal.aborted) return;
          if (event.type === "skill.delta") {
            written += event.delta;
            setText(written);
          } else if (event.type === "skill.completed") {
            ended = "completed";
            setText(event.content);
            setCompleted(event);
          } else if (event.type === "skill.failed") {
            ended = "failed";
            setText(event.content || written);
            setFailure(event);
          }
        },
        abort.signal,
      );
      setPhase(ended ?? "dropped");
    } catch (caught) {
      if (abort.signal.aborted) setPhase("stopped");
      else {
        setError(caught);
        setPhase("idle");
      }
    }
  };
  const stop = () => controller.current?.abort();
  const save = async () => {
    setSaving(true);
    setSaveError(null);
    try {
      const skill = await createFromManifest(text);
      message.success(t("skills.uploaded", { name: skill.name }));
      onClose();
      router.push(`/skills?id=${skill.id}`);
    } catch (caught) {
      setSaveError(caught);
    } finally {
      setSaving(false);
    }
  };

  const status =
    phase === "running"
      ? t("skills.draft.running")
      : phase === "completed"
        ? t("skills.draft.completed")
        : phase === "stopped"
          ? t("skills.draft.stopped")
          : phase === "dropped"
            ? t("skills.draft.dropped")
            : phase === "failed"
              ? t("skills.draft.failed")
              : "";
  const body = manifestBody(text);
  return (
    <Drawer
      open={open}
      onClose={onClose}
      title={t("skills.draft.title")}
      size={screens.lg ? 1000 : "100%"}
      destroyOnHidden
      extra={
        <Button type="primary" loading={saving} disabled={!text.trim() || phase === "running"} onClick={save}>
          {t("skills.draft.create")}
        </Button>
      }
    >
      <Flex vertical gap={12}>
        <label htmlFor="skill-draft-description" style={{ fontWeight: 600 }}>
          {t("skills.draft.description")}
        </label>
        <Input.TextArea
          id="skill-draft-description"
          autoFocus
          value={description}
          onChange={(event) => setDescription(event.target.value)}
          onKeyDown={(event) => {
            if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && phase !== "running") void generate();
          }}
          placeholder={t("skills.draft.placeholder")}
          autoSize={{ minRows: 3, maxRows: 8 }}
          maxLength={4000}
        />
        <Flex gap={8} wrap align="center">
          <Button icon={<RobotOutlined />} onClick={generate} disabled={!description.trim() || phase === "running"}>
            {text ? t("skills.draft.again") : t("skills.draft.generate")}
          </Button>
          {phase === "running" ? (
            <Button icon={<StopOutlined />} onClick={stop}>
              {t("skills.draft.stop")}
            </Button>
          ) : null}
          <Typography.Text type="secondary" role="status" data-testid="skill-draft-status">
            {status}
          </Typography.Text>
        </Flex>
        <ErrorAlert error={error} />
        {failure ? (
          <Alert type="error" showIcon title={t("skills.draft.failedWith", { message: failure.message })} description={<Typography.Text code>{failure.code}</Typography.Text>} />
        ) : null}
        {completed?.problem ? (
          <Alert
            type="warning"
            showIcon
            data-testid="skill-draft-problem"
            title={t("skills.draft.problem", { message: completed.problem.message })}
          />
        ) : null}
        {text || phase === "running" ? (
          <Row gutter={[16, 16]}>
            <Col xs={24} lg={12}>
              <Flex vertical gap={8}>
                <label htmlFor="skill-draft-text" style={{ fontWeight: 600 }}>
                  {t("skills.draft.text")}
                </label>
                <Input.TextArea
                  id="skill-draft-text"
                  value={text}
                  readOnly={phase === "running"}
                  onChange={(event) => setText(event.target.value)}
                  autoSize={{ minRows: 12, maxRows: 36 }}
                  spellCheck={false}
                  style={{ fontFamily: "monospace", fontSize: 13 }}
                />
                <Refusal error={saveError} onClose={() => setSaveError(null)} />
              </Flex>
            </Col>
            <Col xs={24} lg={12}>
              <Typography.Text strong>{t("skills.preview")}</Typography.Text>
              <section aria-label={t("skills.preview")} style={{ overflowWrap: "anywhere" }}>
                {body.trim() ? <Markdown text={body} streaming={phase === "running"} /> : null}
              </section>
            </Col>
          </Row>
        ) : null}
      </Flex>
    </Drawer>
  );
}
