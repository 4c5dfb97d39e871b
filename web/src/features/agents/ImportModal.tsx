"use client";

import { CheckCircleFilled, InboxOutlined, WarningFilled } from "@ant-design/icons";
import { Alert, App, Button, Card, Flex, Input, Modal, Tag, Typography, Upload, theme } from "antd";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { useT } from "@/i18n";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { importAgents, previewImport, type AgentDocument, type AgentPreview, type ImportPreview } from "./api";
import "./builderMessages";

/**
 * Import: a document (a .json file, or pasted), its preview (each agent to create with the name it gets, how its
 * model, knowledge bases and tools map here, the warnings), new names, then Import, which opens the root agent.
 */
export function ImportModal({ open, onClose }: { open: boolean; onClose: () => void }) {
  const t = useT();
  const { message } = App.useApp();
  const router = useRouter();
  const [text, setText] = useState("");
  const [fileName, setFileName] = useState<string | null>(null);
  const [document, setDocument] = useState<AgentDocument | null>(null);
  const [preview, setPreview] = useState<ImportPreview | null>(null);
  const [names, setNames] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const reset = () => {
    setText("");
    setFileName(null);
    setDocument(null);
    setPreview(null);
    setNames({});
    setError(null);
  };

  const load = async (source: string, newNames: Record<string, string> = {}) => {
    setError(null);
    let parsed: AgentDocument;
    try {
      parsed = JSON.parse(source) as AgentDocument;
    } catch {
      setError(new Error(t("agents.import.notJson")));
      setPreview(null);
      return;
    }
    setBusy(true);
    try {
      setPreview(await previewImport(parsed, newNames));
      setDocument(parsed);
      setNames(newNames);
    } catch (caught) {
      setError(caught);
      setPreview(null);
    } finally {
      setBusy(false);
    }
  };

  const rename = (agent: AgentPreview, value: string) => {
    if (!document) return;
    const next = { ...names };
    const wanted = value.trim();
    if (!wanted || wanted === agent.name) delete next[agent.ref];
    else next[agent.ref] = wanted;
    if (JSON.stringify(next) !== JSON.stringify(names)) void load(JSON.stringify(document), next);
  };

  const run = async () => {
    if (!document) return;
    setBusy(true);
    setError(null);
    try {
      const result = await importAgents(document, names);
      message.success(t("agents.import.done", { count: result.agents.length }));
      onClose();
      reset();
      router.push(`/agents/edit?id=${result.root_agent_id}`);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal
      open={open}
      title={t("agents.import.title")}
      width={760}
      onCancel={() => {
        onClose();
        reset();
      }}
      destroyOnHidden
      footer={
        <Flex justify="end" gap={8} wrap>
          <Button
            onClick={() => {
              onClose();
              reset();
            }}
          >
            {t("common.cancel")}
          </Button>
          {preview ? (
            <Button onClick={reset} disabled={busy}>
              {t("agents.import.another")}
            </Button>
          ) : null}
          <Button type="primary" disabled={!preview} loading={busy && !!preview} onClick={() => void run()}>
            {t("agents.import.action")}
          </Button>
        </Flex>
      }
    >
      <Flex vertical gap={12}>
        {!preview ? (
          <>
            <Typography.Paragraph type="secondary" style={{ margin: 0 }}>
              {t("agents.import.hint")}
            </Typography.Paragraph>
            <Upload.Dragger
              accept=".json,application/json"
              multiple={false}
              showUploadList={false}
              beforeUpload={(file) => {
                setFileName(file.name);
                void file.text().then((content) => {
                  setText(content);
                  void load(content);
                });
                return false;
              }}
            >
              <p className="ant-upload-drag-icon">
                <InboxOutlined aria-hidden />
              </p>
              <p className="ant-upload-text">{t("agents.import.drop")}</p>
              {fileName ? <p className="ant-upload-hint">{fileName}</p> : null}
            </Upload.Dragger>
            <label htmlFor="import-document">{t("agents.import.paste")}</label>
            <Input.TextArea
              id="import-document"
              value={text}
              onChange={(event) => setText(event.target.value)}
              autoSize={{ minRows: 3, maxRows: 10 }}
              style={{ fontFamily: "monospace" }}
            />
            <Button style={{ alignSelf: "start" }} disabled={!text.trim()} loading={busy} onClick={() => void load(text)}>
              {t("agents.import.preview")}
            </Button>
          </>
        ) : null}
        <ErrorAlert error={error} />
        {preview ? <PreviewList preview={preview} names={names} onRename={rename} busy={busy} /> : null}
      </Flex>
    </Modal>
  );
}

function PreviewList({
  preview,
  names,
  onRename,
  busy,
}: {
  preview: ImportPreview;
  names: Record<string, string>;
  onRename: (agent: AgentPreview, value: string) => void;
  busy: boolean;
}) {
  const t = useT();
  const { token } = theme.useToken();
  const ok = (label: string) => (
    <Tag icon={<CheckCircleFilled aria-hidden style={{ color: token.colorSuccess }} />}>{label}</Tag>
  );
  const warn = (label: string) => <Tag icon={<WarningFilled aria-hidden style={{ color: token.colorWarning }} />}>{label}</Tag>;
  return (
    <Flex vertical gap={12} data-testid="import-preview">
      <Typography.Text>{t("agents.import.willCreate", { count: preview.agents.length })}</Typography.Text>
      {preview.warnings.length ? (
        <Alert
          type="warning"
          showIcon
          title={t("agents.import.warnings")}
          description={
            <ul style={{ margin: 0, paddingInlineStart: 20 }}>
              {preview.warnings.map((warning) => (
                <li key={warning}>{warning}</li>
              ))}
            </ul>
          }
        />
      ) : null}
      {preview.agents.map((agent) => (
        <Card key={agent.ref} size="small" data-testid={`import-agent-${agent.ref}`}>
          <Flex vertical gap={8}>
            <div>
              <label htmlFor={`import-name-${agent.ref}`} style={{ display: "block", marginBottom: 4 }}>
                {t("agents.import.nameOf", { name: agent.name })}
              </label>
              <Input
                id={`import-name-${agent.ref}`}
                defaultValue={names[agent.ref] ?? agent.name}
                maxLength={80}
                disabled={busy}
                onBlur={(event) => onRename(agent, event.target.value)}
                onPressEnter={(event) => onRename(agent, event.currentTarget.value)}
              />
              <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                {t("agents.import.finalName", { name: agent.final_name })}
              </Typography.Text>
            </div>
            <Flex gap={4} wrap align="center">
              <Typography.Text strong>{t("agents.field.model")}:</Typography.Text>
              {agent.model.status === "mapped"
                ? ok(t("agents.import.modelMapped", { name: agent.model.name ?? "" }))
                : agent.model.status === "default"
                  ? ok(t("agents.import.modelDefault"))
                  : warn(t("agents.import.modelUnmapped", { name: agent.model.name ?? "" }))}
            </Flex>
            {agent.knowledge_bases.length ? (
              <Flex gap={4} wrap align="center">
                <Typography.Text strong>{t("agents.field.knowledgeBases")}:</Typography.Text>
                {agent.knowledge_bases.map((kb) =>
                  kb.status === "mapped" ? (
                    <span key={kb.name}>{ok(t("agents.import.kbMapped", { name: kb.name }))}</span>
                  ) : (
                    <span key={kb.name}>{warn(t("agents.import.kbUnmapped", { name: kb.name }))}</span>
                  ),
                )}
              </Flex>
            ) : null}
            {agent.tools.length ? (
              <Flex gap={4} wrap align="center">
                <Typography.Text strong>{t("agents.field.tools")}:</Typography.Text>
                {agent.tools.map((tool) =>
                  tool.status === "ok" ? (
                    <span key={tool.name}>{ok(tool.name)}</span>
                  ) : (
                    <span key={tool.name} title={tool.message ?? undefined}>
                      {warn(
                        tool.status === "unknown"
                          ? t("agents.import.toolUnknown", { name: tool.name })
                          : t("agents.import.toolInvalid", { name: tool.name }),
                      )}
                    </span>
                  ),
                )}
              </Flex>
            ) : null}
            {agent.sub_agents.length ? (
              <Typography.Text type="secondary">
                {t("agents.import.subAgents", { refs: agent.sub_agents.join(", ") })}
              </Typography.Text>
            ) : null}
          </Flex>
        </Card>
      ))}
    </Flex>
  );
}
