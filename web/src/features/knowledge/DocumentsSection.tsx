"use client";

import { DeleteOutlined, ExclamationCircleOutlined, FileTextOutlined, InboxOutlined, RedoOutlined } from "@ant-design/icons";
import { Alert, App, Badge, Button, Card, Popconfirm, Progress, Space, Table, Tooltip, Typography, Upload, theme } from "antd";
import type { UploadFile, UploadProps } from "antd";
import { useCallback, useEffect, useRef, useState } from "react";
import { useT } from "@/i18n";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import {
  PROCESSING,
  deleteDocument,
  followDocuments,
  formatBytes,
  listDocuments,
  reindexDocument,
  uploadDocuments,
  type DocumentEvent,
  type KbDocument,
  type KnowledgeBase,
  type RejectedRow,
} from "./api";
import { ChunksDrawer } from "./ChunksDrawer";
import { RowImportModal } from "./RowImportModal";
import { isRowFile, type RowChoice } from "./rows";
import { StatusTag, documentErrorText } from "./status";
import "./messages";

type RequestOptions = Parameters<NonNullable<UploadProps["customRequest"]>>[0];

/** The documents of a knowledge base: drag-and-drop upload, live processing progress, re-index, delete, chunks. */
export function DocumentsSection({
  kb,
  doc,
  onDoc,
}: {
  kb: KnowledgeBase;
  doc: string | null;
  onDoc: (id: string | null) => void;
}) {
  const t = useT();
  const { message } = App.useApp();
  const { token } = theme.useToken();
  // The latest progress event of each document and when it arrived. An answer requested before that moment may hold
  // an older state (seen: a listing read while a file was parsing answered after its "failed" event, and the row
  // went back to "Parsing" for good), so such an answer takes the event's state; a later state has its own event.
  const latest = useRef(new Map<string, { event: DocumentEvent; at: number }>());
  const withEvents = useCallback((item: KbDocument, requestedAt: number): KbDocument => {
    const seen = latest.current.get(item.id);
    return seen && seen.at >= requestedAt ? applyEvent(item, seen.event) : item;
  }, []);
  const readList = useCallback(() => {
    const requestedAt = performance.now();
    return listDocuments(kb.id).then((page) => ({ ...page, items: page.items.map((item) => withEvents(item, requestedAt)) }));
  }, [kb.id, withEvents]);
  const docs = useAsync(readList, [readList]);
  const [live, setLive] = useState<"live" | "polling" | null>(null);
  const [rejections, setRejections] = useState<string[]>([]);
  const [uploading, setUploading] = useState<UploadFile[]>([]);
  const items = docs.data?.items ?? [];
  const itemsRef = useRef(items);
  itemsRef.current = items;
  const { setData } = docs;

  // Live progress: the SSE stream; if it cannot be opened or drops, the list is read again every 2 s.
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setInterval> | undefined;
    const refresh = () =>
      readList()
        .then((page) => setData(page))
        .catch(() => undefined);
    // Events of documents the list does not show (just uploaded, or past its first page: a structured import makes
    // thousands) read the list again at most twice a second, not once per event.
    let soon: ReturnType<typeof setTimeout> | undefined;
    const refreshSoon = () => {
      soon ??= setTimeout(() => {
        soon = undefined;
        void refresh();
      }, 500);
    };
    const onEvent = (event: DocumentEvent) => {
      latest.current.set(event.document_id, { event, at: performance.now() });
      // Read from the list as last rendered: an updater function runs later, too late to decide this.
      const known = itemsRef.current.some((item) => item.id === event.document_id);
      setData((previous) => {
        if (!previous) return previous!;
        return {
          ...previous,
          items: previous.items.map((item) => (item.id === event.document_id ? applyEvent(item, event) : item)),
        };
      });
      if (!known) refreshSoon();
    };
    followDocuments(kb.id, onEvent, controller.signal, () => setLive("live"))
      .catch(() => undefined)
      .finally(() => {
        if (controller.signal.aborted) return;
        setLive("polling");
        timer = setInterval(refresh, 2000);
      });
    return () => {
      controller.abort();
      if (timer) clearInterval(timer);
      if (soon) clearTimeout(soon);
    };
  }, [kb.id, readList, setData]);

  // The files antd hands over one by one are sent together, in one request. CSV and JSON Lines files ask first whether
  // each row becomes a document (structured import); they then go in a request of their own.
  const pending = useRef<RequestOptions[]>([]);
  const [rowPrompt, setRowPrompt] = useState<{ files: File[]; resolve: (choice: RowChoice | "file" | null) => void } | null>(
    null,
  );
  const askRows = (files: File[]) =>
    new Promise<RowChoice | "file" | null>((resolve) => setRowPrompt({ files, resolve }));
  const flush = async () => {
    const batch = pending.current;
    pending.current = [];
    if (!batch.length) return;
    const structured = batch.filter((option) => isRowFile(option.file as File));
    if (!structured.length) return send(batch);
    const choice = await askRows(structured.map((option) => option.file as File));
    setRowPrompt(null);
    if (choice === "file") return send(batch);
    const others = batch.filter((option) => !structured.includes(option));
    if (choice === null) {
      for (const option of structured) option.onError?.(new Error(t("kb.rows.cancelled")));
      message.info(t("kb.rows.cancelledFiles", { names: structured.map((option) => (option.file as File).name).join(", ") }));
    } else await send(structured, choice);
    if (others.length) await send(others);
  };
  const send = async (batch: RequestOptions[], rows?: RowChoice) => {
    const files = batch.map((option) => option.file as File);
    try {
      const requestedAt = performance.now();
      const result = await uploadDocuments(kb.id, files, rows);
      const rejected = new Map(result.rejected.map((item) => [item.file_name, item]));
      for (const option of batch) {
        const name = (option.file as File).name;
        const refusal = rejected.get(name);
        if (refusal) option.onError?.(new Error(documentErrorText(refusal.error, t)));
        else option.onSuccess?.({});
      }
      recordRejections([
        ...result.rejected.map((item) => t("kb.upload.rejected", { name: item.file_name, reason: documentErrorText(item.error, t) })),
        ...rowRejections(result.rejected_rows ?? []),
      ]);
      const added = result.documents.filter((item) => !item.duplicate && !item.replaced).length;
      const replaced = result.documents.filter((item) => item.replaced).length;
      const duplicates = result.documents.filter((item) => item.duplicate);
      if (rows) {
        if (added) message.success(t("kb.rows.done", { count: added }));
        if (replaced) message.success(t("kb.rows.updated", { count: replaced }));
        if (duplicates.length) message.info(t("kb.rows.unchanged", { count: duplicates.length }));
      } else {
        for (const item of duplicates) message.info(t("kb.upload.duplicate", { name: item.document.file_name }));
        if (added) message.success(t("kb.upload.done", { count: added }));
      }
      setData((previous) => {
        if (!previous) return previous!;
        const known = new Set(previous.items.map((item) => item.id));
        const fresh = result.documents
          .map((item) => withEvents(item.document, requestedAt))
          .filter((item) => !known.has(item.id));
        return { ...previous, items: [...fresh, ...previous.items], total: previous.total + fresh.length };
      });
      // A small document can be processed before this answer arrives, its events before the list knew it: read the
      // list once more, so that no document stays shown as queued.
      readList().then(setData, () => undefined);
    } catch (error) {
      // No file accepted: the problem lists each refusal (and, for rows, each rejected row).
      const problem = (
        error as {
          problem?: { rejected?: { file_name: string; error: KbDocument["error"] }[]; rejected_rows?: RejectedRow[] };
        }
      ).problem;
      const refusals = problem?.rejected ?? [];
      const reasons = new Map(refusals.map((item) => [item.file_name, documentErrorText(item.error, t)]));
      for (const option of batch) {
        option.onError?.(new Error(reasons.get((option.file as File).name) ?? errorMessage(error, t)));
      }
      if (refusals.length)
        recordRejections([
          ...refusals.map((item) => t("kb.upload.rejected", { name: item.file_name, reason: documentErrorText(item.error, t) })),
          ...rowRejections(problem?.rejected_rows ?? []),
        ]);
      else message.error(errorMessage(error, t));
    }
  };
  const rowRejections = (rows: RejectedRow[]) =>
    rows.map((row) =>
      t("kb.rows.rejected", { name: row.file_name, line: row.line, reason: documentErrorText(row.error, t) }),
    );
  const recordRejections = (next: string[]) => {
    if (next.length) setRejections((previous) => [...next, ...previous].slice(0, 50));
  };

  const reindex = async (item: KbDocument) => {
    try {
      const requestedAt = performance.now();
      const updated = withEvents(await reindexDocument(kb.id, item.id), requestedAt);
      setData((previous) =>
        previous ? { ...previous, items: previous.items.map((entry) => (entry.id === item.id ? updated : entry)) } : previous!,
      );
      message.success(t("kb.doc.reindexed", { name: item.file_name }));
    } catch (error) {
      message.error(errorMessage(error, t));
    }
  };
  const remove = async (item: KbDocument) => {
    try {
      await deleteDocument(kb.id, item.id);
      setData((previous) =>
        previous
          ? { ...previous, items: previous.items.filter((entry) => entry.id !== item.id), total: previous.total - 1 }
          : previous!,
      );
      message.success(t("common.deleted"));
    } catch (error) {
      message.error(errorMessage(error, t));
    }
  };

  const opened = items.find((item) => item.id === doc) ?? null;

  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      {kb.can_edit ? (
        <Upload.Dragger
          multiple
          name="file"
          fileList={uploading}
          progress={{ size: [-1, 2], showInfo: false, "aria-label": t("kb.upload.progress") }}
          onChange={({ fileList }) => setUploading(fileList.filter((file) => file.status === "uploading"))}
          customRequest={(option) => {
            pending.current.push(option);
            if (pending.current.length === 1) setTimeout(() => void flush(), 50);
          }}
        >
          <p className="ant-upload-drag-icon">
            <InboxOutlined />
          </p>
          <p className="ant-upload-text">{t("kb.upload.drop")}</p>
          <p className="ant-upload-hint">{t("kb.upload.hint")}</p>
        </Upload.Dragger>
      ) : (
        <Alert type="info" showIcon title={t("kb.upload.readOnly")} />
      )}
      {rejections.length ? (
        <Alert
          type="error"
          showIcon
          role="alert"
          closable={{ onClose: () => setRejections([]), "aria-label": t("common.close") }}
          title={
            <ul style={{ margin: 0, paddingInlineStart: 16 }}>
              {rejections.map((item, index) => (
                <li key={`${index}-${item}`}>{item}</li>
              ))}
            </ul>
          }
        />
      ) : null}
      <ErrorAlert error={docs.error} onRetry={docs.reload} />
      <Card
        title={t("kb.tab.documents")}
        extra={
          live ? (
            <Badge status={live === "live" ? "processing" : "default"} text={live === "live" ? t("kb.live") : t("kb.polling")} />
          ) : null
        }
        styles={{ body: { padding: items.length ? 0 : 24 } }}
      >
        {!docs.loading && !docs.error && items.length === 0 ? (
          <EmptyState title={t("kb.doc.empty")} hint={kb.can_edit ? t("kb.doc.emptyHint") : undefined} />
        ) : (
          <Table<KbDocument>
            rowKey="id"
            loading={docs.loading && !docs.data}
            dataSource={items}
            pagination={items.length > 50 ? { pageSize: 50 } : false}
            scroll={{ x: "max-content" }}
            columns={[
              {
                title: t("kb.doc.name"),
                dataIndex: "file_name",
                render: (name: string) => (
                  <Typography.Text style={{ maxWidth: 280, display: "inline-block", overflowWrap: "anywhere" }}>
                    {name}
                  </Typography.Text>
                ),
              },
              {
                title: t("kb.doc.status"),
                dataIndex: "status",
                render: (_, item) => <StatusTag status={item.status} t={t} />,
              },
              {
                title: t("kb.doc.progress"),
                key: "progress",
                render: (_, item) =>
                  item.status === "failed" ? (
                    "—"
                  ) : (
                    <Progress
                      percent={Math.round((item.status === "indexed" ? 1 : item.progress) * 100)}
                      size="small"
                      status={PROCESSING.has(item.status) ? "active" : undefined}
                      style={{ width: 120, margin: 0 }}
                      aria-label={`${t("kb.doc.progress")} ${item.file_name}`}
                    />
                  ),
              },
              { title: t("kb.doc.size"), dataIndex: "size", render: (size: number) => formatBytes(size) },
              { title: t("kb.doc.chunks"), dataIndex: "chunk_count" },
              {
                title: t("kb.doc.problem"),
                key: "error",
                render: (_, item) =>
                  item.error ? (
                    <span style={{ display: "inline-flex", gap: 6, maxWidth: 320, whiteSpace: "normal" }}>
                      <ExclamationCircleOutlined style={{ color: token.colorError, marginTop: 4 }} />
                      <span>{documentErrorText(item.error, t)}</span>
                    </span>
                  ) : null,
              },
              {
                title: t("common.actions"),
                key: "actions",
                render: (_, item) => {
                  const label = (action: string) => t("kb.doc.actionsFor", { action, name: item.file_name });
                  return (
                    <Space size={0}>
                      <Tooltip title={t("kb.doc.viewChunks")}>
                        <Button
                          type="text"
                          icon={<FileTextOutlined />}
                          aria-label={label(t("kb.doc.viewChunks"))}
                          onClick={() => onDoc(item.id)}
                        />
                      </Tooltip>
                      {kb.can_edit ? (
                        <>
                          <Tooltip title={t("kb.doc.reindex")}>
                            <Button
                              type="text"
                              icon={<RedoOutlined />}
                              aria-label={label(t("kb.doc.reindex"))}
                              disabled={PROCESSING.has(item.status)}
                              onClick={() => reindex(item)}
                            />
                          </Tooltip>
                          <Popconfirm
                            title={t("kb.doc.deleteConfirm", { name: item.file_name })}
                            okText={t("common.delete")}
                            cancelText={t("common.cancel")}
                            okButtonProps={{ danger: true }}
                            onConfirm={() => remove(item)}
                          >
                            <Tooltip title={t("common.delete")}>
                              <Button type="text" danger icon={<DeleteOutlined />} aria-label={label(t("common.delete"))} />
                            </Tooltip>
                          </Popconfirm>
                        </>
                      ) : null}
                    </Space>
                  );
                },
              },
            ]}
          />
        )}
      </Card>
      <ChunksDrawer kb={kb} document={opened} docId={doc} onClose={() => onDoc(null)} />
      <RowImportModal files={rowPrompt?.files ?? null} onDone={(choice) => rowPrompt?.resolve(choice)} />
    </Space>
  );
}

/** A document with the state a progress event reports. */
function applyEvent(item: KbDocument, event: DocumentEvent): KbDocument {
  return { ...item, status: event.status, progress: event.progress, error: event.error, chunk_count: event.chunk_count };
}
