"use client";

import { DeleteOutlined, EditOutlined } from "@ant-design/icons";
import { App, Button, Drawer, Grid, Input, List, Popconfirm, Space, Tabs, Tag, Typography } from "antd";
import { useEffect, useState } from "react";
import { useT } from "@/i18n";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { deleteChunk, listChunks, updateChunk, type Chunk, type KbDocument, type KnowledgeBase } from "./api";
import { DocumentPreview } from "./DocumentPreview";
import { DocumentTables } from "./DocumentTables";
import "./messages";

/** A document's view: its chunks in order (read, edit the text, embedded again at once, delete) and its tables. */
export function ChunksDrawer({
  kb,
  document,
  docId,
  onClose,
}: {
  kb: KnowledgeBase;
  document: KbDocument | null;
  docId: string | null;
  onClose: () => void;
}) {
  const t = useT();
  const screens = Grid.useBreakpoint();
  const [view, setView] = useState("chunks");
  useEffect(() => setView("chunks"), [docId]);
  return (
    <Drawer
      open={!!docId}
      onClose={onClose}
      title={document?.file_name ?? ""}
      size={screens.md ? 720 : "100%"}
      closable={{ "aria-label": t("common.close") }}
    >
      {docId ? (
        <Tabs
          activeKey={view}
          onChange={setView}
          items={[
            {
              key: "chunks",
              label: t("kb.docView.chunks"),
              children: <ChunkList kb={kb} document={document} docId={docId} />,
            },
            {
              key: "tables",
              label: t("kb.docView.tables"),
              children: <DocumentTables kb={kb} document={document} docId={docId} />,
            },
            {
              key: "preview",
              label: t("kb.docView.preview"),
              children: <DocumentPreview kbId={kb.id} docId={docId} status={document?.status} />,
            },
          ]}
        />
      ) : null}
    </Drawer>
  );
}

function ChunkList({ kb, document, docId }: { kb: KnowledgeBase; document: KbDocument | null; docId: string }) {
  const t = useT();
  // Read again when the document's chunk count changes (it became ready, or was re-indexed).
  const chunks = useAsync(() => listChunks(kb.id, docId), [kb.id, docId, document?.chunk_count, document?.status]);
  const items = chunks.data?.items ?? [];
  return (
    <>
      <ErrorAlert error={chunks.error} onRetry={chunks.reload} />
      {!chunks.loading && !chunks.error && items.length === 0 ? (
        <EmptyState title={t("kb.chunks.empty")} />
      ) : (
        <>
          {chunks.data && chunks.data.total > items.length ? (
            <Typography.Paragraph type="secondary">
              {t("kb.chunks.shown", { shown: items.length, total: chunks.data.total })}
            </Typography.Paragraph>
          ) : null}
          <List
            loading={chunks.loading && !chunks.data}
            dataSource={items}
            renderItem={(chunk) => (
              <ChunkItem
                key={chunk.id}
                kb={kb}
                chunk={chunk}
                onSaved={(saved) =>
                  chunks.setData((previous) =>
                    previous
                      ? { ...previous, items: previous.items.map((item) => (item.id === saved.id ? saved : item)) }
                      : previous!,
                  )
                }
                onDeleted={() =>
                  chunks.setData((previous) =>
                    previous
                      ? { ...previous, items: previous.items.filter((item) => item.id !== chunk.id), total: previous.total - 1 }
                      : previous!,
                  )
                }
              />
            )}
          />
        </>
      )}
    </>
  );
}

function ChunkItem({
  kb,
  chunk,
  onSaved,
  onDeleted,
}: {
  kb: KnowledgeBase;
  chunk: Chunk;
  onSaved: (chunk: Chunk) => void;
  onDeleted: () => void;
}) {
  const t = useT();
  const { message } = App.useApp();
  const [draft, setDraft] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const n = chunk.position + 1;

  const save = async () => {
    if (draft === null) return;
    setSaving(true);
    try {
      onSaved(await updateChunk(kb.id, chunk.id, draft));
      setDraft(null);
      message.success(t("common.saved"));
    } catch (error) {
      message.error(errorMessage(error, t));
    } finally {
      setSaving(false);
    }
  };
  const remove = async () => {
    try {
      await deleteChunk(kb.id, chunk.id);
      onDeleted();
      message.success(t("common.deleted"));
    } catch (error) {
      message.error(errorMessage(error, t));
    }
  };

  return (
    <List.Item style={{ display: "block" }}>
      <Space wrap size={4} style={{ marginBottom: 6 }}>
        <Tag>#{n}</Tag>
        {chunk.page ? <Tag>{t("kb.chunks.page", { page: chunk.page })}</Tag> : null}
        <Tag>{chunk.kind}</Tag>
        {chunk.source ? <Tag>{chunk.source}</Tag> : null}
        {chunk.edited ? <Tag color="blue">{t("kb.chunks.edited")}</Tag> : null}
        {chunk.heading_path.length ? (
          <Typography.Text type="secondary">{chunk.heading_path.join(" › ")}</Typography.Text>
        ) : null}
      </Space>
      {draft === null ? (
        <Typography.Paragraph style={{ whiteSpace: "pre-wrap", marginBottom: 6 }}>{chunk.text}</Typography.Paragraph>
      ) : (
        <Input.TextArea
          aria-label={t("kb.chunks.text", { n })}
          value={draft}
          onChange={(event) => setDraft(event.target.value)}
          autoSize={{ minRows: 3, maxRows: 16 }}
          maxLength={20000}
          style={{ marginBottom: 6 }}
        />
      )}
      {kb.can_edit ? (
        draft === null ? (
          <Space size={0}>
            <Button size="small" type="text" icon={<EditOutlined />} onClick={() => setDraft(chunk.text)} aria-label={t("kb.chunks.editN", { n })}>
              {t("common.edit")}
            </Button>
            <Popconfirm
              title={t("kb.chunks.deleteConfirm")}
              okText={t("common.delete")}
              cancelText={t("common.cancel")}
              okButtonProps={{ danger: true }}
              onConfirm={remove}
            >
              <Button size="small" type="text" danger icon={<DeleteOutlined />} aria-label={t("kb.chunks.deleteN", { n })}>
                {t("common.delete")}
              </Button>
            </Popconfirm>
          </Space>
        ) : (
          <Space>
            <Button size="small" type="primary" loading={saving} disabled={!draft.trim()} onClick={save}>
              {t("common.save")}
            </Button>
            <Button size="small" onClick={() => setDraft(null)}>
              {t("common.cancel")}
            </Button>
          </Space>
        )
      ) : null}
    </List.Item>
  );
}
