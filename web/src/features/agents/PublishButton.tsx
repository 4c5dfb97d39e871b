"use client";

import { CloudUploadOutlined } from "@ant-design/icons";
import { Alert, App, Button, Form, Input, Modal, Typography } from "antd";
import { useState } from "react";
import { ApiError } from "@/api/problem";
import { useT } from "@/i18n";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { agentLabel, publishAgent, startEvaluation, type Agent, type Version } from "./api";
import { percent } from "./EvaluationResults";
import { fieldLabel, type Names } from "./VersionDiff";
import "./messages";

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/** The Publish button of the studio and its dialog: an optional note, and the server's reasons when it refuses. */
export function PublishButton({
  agent,
  dirty,
  names,
  onPublished,
  onShowTests,
}: {
  agent: Agent;
  /** Whether the form has changes not saved yet (they are not published). */
  dirty: boolean;
  names: Names;
  onPublished: (version: Version) => void;
  /** Open the Tests tab (after an evaluation was started from here, or to compare the evaluations). */
  onShowTests?: () => void;
}) {
  const t = useT();
  const { message } = App.useApp();
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [form] = Form.useForm<{ note: string }>();

  const publish = async ({ note }: { note: string }) => {
    setBusy(true);
    setError(null);
    try {
      const version = await publishAgent(agent.id, (note ?? "").trim());
      message.success(t("agents.publish.done", { n: version.number }));
      setOpen(false);
      onPublished(version);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  const evaluate = async () => {
    setBusy(true);
    setError(null);
    try {
      await startEvaluation(agent.id, "draft");
      message.success(t("agents.gate.evaluationStarted"));
      setOpen(false);
      onShowTests?.();
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  const gate = error instanceof ApiError ? gateAlert(error, t, evaluate, onShowTests && (() => {
    setOpen(false);
    onShowTests();
  })) : null;

  return (
    <>
      <Button
        icon={<CloudUploadOutlined aria-hidden />}
        onClick={() => {
          setError(null);
          form.resetFields();
          setOpen(true);
        }}
      >
        {t("agents.publish")}
      </Button>
      <Modal
        open={open}
        title={t("agents.publish.title", { name: agentLabel(agent) })}
        okText={t("agents.publish")}
        cancelText={t("common.cancel")}
        confirmLoading={busy}
        onOk={() => form.submit()}
        onCancel={() => setOpen(false)}
        destroyOnHidden
      >
        <Typography.Paragraph type="secondary">{t("agents.publish.hint")}</Typography.Paragraph>
        {dirty ? <Alert type="warning" showIcon title={t("agents.publish.unsaved")} style={{ marginBottom: 16 }} /> : null}
        {gate ? (
          gate
        ) : error instanceof ApiError && error.code === "cannot_publish" ? (
          <Alert
            type="error"
            showIcon
            role="alert"
            style={{ marginBottom: 16 }}
            title={t("agents.publish.refused")}
            description={
              <ul style={{ margin: 0, paddingInlineStart: 20 }}>
                {(error.problem.errors ?? []).map((item, index) => (
                  <li key={index}>{reason(item, names, t)}</li>
                ))}
              </ul>
            }
          />
        ) : (
          <ErrorAlert error={error} />
        )}
        <Form form={form} layout="vertical" onFinish={publish} initialValues={{ note: "" }}>
          <Form.Item label={t("agents.publish.note")} name="note" extra={t("agents.publish.noteHint")} style={{ marginBottom: 0 }}>
            <Input.TextArea
              autoFocus
              autoSize={{ minRows: 2, maxRows: 6 }}
              maxLength={2000}
              onKeyDown={(event) => {
                if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
                  event.preventDefault();
                  form.submit();
                }
              }}
            />
          </Form.Item>
        </Form>
      </Modal>
    </>
  );
}

/** One reason the server gave, with the field's label and the names of the agents it mentions by id. */
function reason(
  item: { loc?: (string | number)[]; msg?: string },
  names: Names,
  t: ReturnType<typeof useT>,
): string {
  const loc = (item.loc ?? []).filter((part) => part !== "body").map(String);
  const field = loc[0] === "sub_agent_ids" ? "agents.field.subAgents" : null;
  const label = field ? t(field) : loc[0] ? fieldLabel(loc[0], names, t) : "";
  const text = (item.msg ?? "").replace(UUID, (id) => names.agents.get(id) ?? id);
  return label ? `${label}: ${text}` : text;
}

/** The publish gate's refusals (docs/evaluation.md): no evaluation of the draft as it is, or a pass rate too low. */
function gateAlert(
  error: ApiError,
  t: ReturnType<typeof useT>,
  evaluate: () => void,
  showTests?: () => void,
): React.ReactNode {
  const problem = error.problem;
  const minimum = percent(problem.min_pass_rate as number | null | undefined);
  if (error.code === "evaluation_required") {
    return (
      <Alert
        type="error"
        showIcon
        role="alert"
        style={{ marginBottom: 16 }}
        title={t("agents.gate.required", { min: minimum })}
        description={t("agents.gate.requiredHint")}
        action={
          <Button size="small" type="primary" onClick={evaluate}>
            {t("agents.gate.runNow")}
          </Button>
        }
      />
    );
  }
  if (error.code === "below_pass_rate") {
    const published = problem.published_version as number | null | undefined;
    const publishedRate = problem.published_pass_rate as number | null | undefined;
    return (
      <Alert
        type="error"
        showIcon
        role="alert"
        style={{ marginBottom: 16 }}
        title={t("agents.gate.below", { rate: percent(problem.pass_rate as number), min: minimum })}
        description={
          published == null
            ? t("agents.gate.noPublished")
            : publishedRate == null
              ? t("agents.gate.publishedUnevaluated", { n: published })
              : t("agents.gate.publishedRate", { n: published, rate: percent(publishedRate) })
        }
        action={
          showTests ? (
            <Button size="small" onClick={showTests}>
              {t("agents.gate.showTests")}
            </Button>
          ) : undefined
        }
      />
    );
  }
  return null;
}
