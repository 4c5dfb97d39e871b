"use client";

import { ExclamationCircleOutlined, LoadingOutlined } from "@ant-design/icons";
import { Alert, Flex, Tag, Typography } from "antd";
import { useT } from "@/i18n";
import { ErrorAlert } from "@/ui/ErrorAlert";
import type { GeneratedField } from "./api";
import type { GenerationState } from "./useGeneration";
import "./builderMessages";

/** A generated field's label in the page's language. */
export function generatedFieldLabel(field: GeneratedField, t: ReturnType<typeof useT>): string {
  switch (field) {
    case "name":
      return t("common.name");
    case "display_name":
      return t("agents.field.displayName");
    case "description":
      return t("common.description");
    case "duty":
      return t("agents.field.duty");
    case "constraints":
      return t("agents.field.constraints");
    case "examples":
      return t("agents.field.examples");
    case "tools":
      return t("agents.field.tools");
    case "knowledge_base_ids":
      return t("agents.field.knowledgeBases");
  }
}

/**
 * What a generation says besides its fields: a live status line for screen readers, the refusal before the stream,
 * the model's failure (its code and message), a stop, the fields not written and the server's notes.
 */
export function GenerationNotices({ state }: { state: GenerationState }) {
  const t = useT();
  const status = state.running
    ? t("agents.gen.status.running")
    : state.failure || state.error
      ? t("agents.gen.status.failed")
      : state.stopped
        ? t("agents.gen.status.stopped")
        : state.completed
          ? t("agents.gen.status.done")
          : "";
  return (
    <Flex vertical gap={8}>
      <Typography.Text type="secondary" aria-live="polite" role="status" data-testid="generation-status">
        {status}
      </Typography.Text>
      <ErrorAlert error={state.error} />
      {state.failure ? (
        <Alert
          type="error"
          showIcon
          role="alert"
          title={
            state.failure.code === "connection_lost"
              ? t("agents.gen.connectionLost")
              : t("agents.gen.failed", { code: state.failure.code })
          }
          description={state.failure.message || undefined}
        />
      ) : null}
      {state.stopped ? <Alert type="info" showIcon title={t("agents.gen.stopped")} /> : null}
      {state.missing.length && !state.running ? (
        <Alert
          type="warning"
          showIcon
          title={t("agents.gen.missing", {
            fields: state.missing.map((field) => generatedFieldLabel(field, t)).join(", "),
          })}
        />
      ) : null}
      {state.notes.length ? (
        <Alert
          type="info"
          showIcon
          title={t("agents.gen.notes")}
          description={
            <ul style={{ margin: 0, paddingInlineStart: 20 }}>
              {state.notes.map((note) => (
                <li key={note}>{note}</li>
              ))}
            </ul>
          }
        />
      ) : null}
    </Flex>
  );
}

/** A field's state under it while generating: being written (with the raw text of a list), or not written. */
export function FieldState({
  field,
  state,
  raw,
}: {
  field: GeneratedField;
  state: GenerationState;
  /** Show the raw text as it streams (for fields whose value is a list). */
  raw?: boolean;
}) {
  const t = useT();
  const writing = state.writing[field];
  if (writing !== undefined) {
    return (
      <Flex vertical gap={4}>
        <Tag icon={<LoadingOutlined aria-hidden />} style={{ width: "fit-content" }}>
          {t("agents.gen.writing")}
        </Tag>
        {raw && writing ? (
          <Typography.Paragraph type="secondary" style={{ whiteSpace: "pre-wrap", margin: 0, fontSize: 12 }}>
            {writing}
          </Typography.Paragraph>
        ) : null}
      </Flex>
    );
  }
  if (!state.running && state.missing.includes(field)) {
    return (
      <Tag icon={<ExclamationCircleOutlined aria-hidden />} style={{ width: "fit-content" }}>
        {t("agents.gen.notWritten")}
      </Tag>
    );
  }
  return null;
}
