"use client";

import { DeleteOutlined, FileOutlined, FolderOutlined, PlusOutlined } from "@ant-design/icons";
import { Alert, App, Button, Card, Col, Empty, Flex, Form, Input, Modal, Popconfirm, Row, Spin, Typography } from "antd";
import { useEffect, useMemo, useState } from "react";
import { ApiError } from "@/api/problem";
import { useT } from "@/i18n";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { deleteFile, formatBytes, readFile, writeFile, type SkillDetail } from "./api";
import { Refusal } from "./SkillUploader";
import "./messages";

interface Folder {
  folders: Map<string, Folder>;
  files: { name: string; path: string; size: number }[];
}

function treeOf(files: SkillDetail["files"]): Folder {
  const root: Folder = { folders: new Map(), files: [] };
  for (const entry of files) {
    const parts = entry.path.split("/");
    let node = root;
    for (const part of parts.slice(0, -1)) {
      let next = node.folders.get(part);
      if (!next) node.folders.set(part, (next = { folders: new Map(), files: [] }));
      node = next;
    }
    node.files.push({ name: parts[parts.length - 1], path: entry.path, size: entry.size });
  }
  return root;
}

function FolderList({ folder, selected, onSelect, top }: { folder: Folder; selected: string | null; onSelect: (path: string) => void; top?: boolean }) {
  const t = useT();
  const folders = [...folder.folders.entries()].sort(([a], [b]) => a.localeCompare(b));
  const files = [...folder.files].sort((a, b) => (a.name === "SKILL.md" ? -1 : b.name === "SKILL.md" ? 1 : a.name.localeCompare(b.name)));
  return (
    <ul
      aria-label={top ? t("skills.fileTree") : undefined}
      style={{ listStyle: "none", margin: 0, paddingInlineStart: top ? 0 : 18 }}
    >
      {folders.map(([name, child]) => (
        <li key={`d:${name}`}>
          <Typography.Text type="secondary" style={{ display: "inline-flex", gap: 6, padding: "2px 0" }}>
            <FolderOutlined aria-hidden />
            {name}/
          </Typography.Text>
          <FolderList folder={child} selected={selected} onSelect={onSelect} />
        </li>
      ))}
      {files.map((file) => (
        <li key={file.path}>
          <Button
            type={selected === file.path ? "primary" : "text"}
            ghost={selected === file.path}
            size="small"
            icon={<FileOutlined aria-hidden />}
            aria-current={selected === file.path ? "true" : undefined}
            aria-label={`${file.path} (${formatBytes(file.size)})`}
            onClick={() => onSelect(file.path)}
            style={{ maxWidth: "100%" }}
          >
            <span style={{ overflow: "hidden", textOverflow: "ellipsis" }}>{file.name}</span>
          </Button>
        </li>
      ))}
    </ul>
  );
}

/** The version's file tree; a chosen file is shown, and editable (a new version) when it is text and the caller may. */
export function SkillFiles({
  skill,
  editable,
  onSaved,
}: {
  skill: SkillDetail;
  editable: boolean;
  onSaved: (next: SkillDetail) => void;
}) {
  const t = useT();
  const { message } = App.useApp();
  const tree = useMemo(() => treeOf(skill.files), [skill.files]);
  const [selected, setSelected] = useState<string | null>(null);
  const [adding, setAdding] = useState(false);
  const exists = selected !== null && skill.files.some((file) => file.path === selected);
  const file = useAsync(
    async () => (selected && exists ? readFile(skill.id, selected, skill.version) : undefined),
    [skill.id, skill.version, selected, exists],
  );
  const [draft, setDraft] = useState("");
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setDraft(file.data?.content ?? "");
    setError(null);
  }, [file.data]);
  const notText = file.error instanceof ApiError && file.error.code === "skill_file_not_text";

  const save = async () => {
    if (!selected) return;
    setSaving(true);
    setError(null);
    try {
      const next = await writeFile(skill.id, selected, draft);
      message.success(t("skills.savedVersion", { number: next.version }));
      onSaved(next);
    } catch (caught) {
      setError(caught);
    } finally {
      setSaving(false);
    }
  };
  const remove = async () => {
    if (!selected) return;
    try {
      const next = await deleteFile(skill.id, selected);
      message.success(t("skills.fileDeleted", { path: selected, number: next.version }));
      setSelected(null);
      onSaved(next);
    } catch (caught) {
      message.error(errorMessage(caught, t));
    }
  };

  return (
    <Row gutter={[16, 16]}>
      <Col xs={24} md={8}>
        <Card
          size="small"
          title={t("skills.files")}
          extra={
            editable ? (
              <Button size="small" icon={<PlusOutlined />} onClick={() => setAdding(true)}>
                {t("skills.newFile")}
              </Button>
            ) : null
          }
        >
          <FolderList folder={tree} selected={selected} onSelect={setSelected} top />
        </Card>
      </Col>
      <Col xs={24} md={16}>
        {!selected || !exists ? (
          <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={t("skills.selectFile")} />
        ) : notText ? (
          <Alert type="info" showIcon title={t("skills.notText", { path: selected })} />
        ) : file.error ? (
          <ErrorAlert error={file.error} onRetry={file.reload} />
        ) : !file.data ? (
          <Spin />
        ) : (
          <Flex vertical gap={8}>
            <Typography.Text strong style={{ overflowWrap: "anywhere" }}>
              {selected}
            </Typography.Text>
            <Input.TextArea
              aria-label={t("skills.fileContent", { path: selected })}
              value={draft}
              onChange={(event) => setDraft(event.target.value)}
              readOnly={!editable}
              autoSize={{ minRows: 10, maxRows: 30 }}
              spellCheck={false}
              style={{ fontFamily: "monospace", fontSize: 13 }}
            />
            <Refusal error={error} onClose={() => setError(null)} />
            {editable ? (
              <Flex gap={8} wrap>
                <Button type="primary" loading={saving} disabled={draft === file.data.content} onClick={save}>
                  {t("skills.save")}
                </Button>
                {selected !== "SKILL.md" ? (
                  <Popconfirm
                    title={t("skills.deleteFileConfirm", { path: selected })}
                    okText={t("common.delete")}
                    cancelText={t("common.cancel")}
                    okButtonProps={{ danger: true }}
                    onConfirm={remove}
                  >
                    <Button icon={<DeleteOutlined />}>
                      {t("skills.deleteFile")}
                    </Button>
                  </Popconfirm>
                ) : null}
              </Flex>
            ) : null}
          </Flex>
        )}
      </Col>
      <NewFileModal
        open={adding}
        skillId={skill.id}
        onClose={() => setAdding(false)}
        onSaved={(next, path) => {
          setAdding(false);
          onSaved(next);
          setSelected(path);
        }}
      />
    </Row>
  );
}

function NewFileModal({
  open,
  skillId,
  onClose,
  onSaved,
}: {
  open: boolean;
  skillId: string;
  onClose: () => void;
  onSaved: (next: SkillDetail, path: string) => void;
}) {
  const t = useT();
  const [form] = Form.useForm<{ path: string; content: string }>();
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (values: { path: string; content?: string }) => {
    setSaving(true);
    setError(null);
    try {
      const path = values.path.trim();
      onSaved(await writeFile(skillId, path, values.content ?? ""), path);
      form.resetFields();
    } catch (caught) {
      setError(caught);
    } finally {
      setSaving(false);
    }
  };
  return (
    <Modal
      open={open}
      title={t("skills.newFile")}
      onCancel={onClose}
      onOk={() => form.submit()}
      okText={t("skills.create")}
      cancelText={t("common.cancel")}
      confirmLoading={saving}
      destroyOnHidden
    >
      <Refusal error={error} />
      <Form form={form} layout="vertical" onFinish={submit} style={{ marginTop: 12 }}>
        <Form.Item name="path" label={t("skills.newFilePath")} rules={[{ required: true, whitespace: true, message: t("auth.required") }]}>
          <Input autoComplete="off" />
        </Form.Item>
        <Form.Item name="content" label={t("skills.newFileContent")}>
          <Input.TextArea autoSize={{ minRows: 4, maxRows: 16 }} spellCheck={false} style={{ fontFamily: "monospace" }} />
        </Form.Item>
      </Form>
    </Modal>
  );
}
