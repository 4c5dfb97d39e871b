"use client";

import { Button, Descriptions, Drawer, Grid, Spin, Typography } from "antd";
import { DownloadOutlined } from "@ant-design/icons";
import { useEffect, useState } from "react";
import { apiFetch } from "@/api/client";
import { ApiError, problemOf } from "@/api/problem";
import { useT } from "@/i18n";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { DocumentPreview, type PageBox } from "@/features/knowledge/DocumentPreview";
import type { Citation } from "./transcript";
import "./messages";

interface ChunkView {
  text: string;
  document_id: string;
  file_name?: string;
}

function meta(citation: Citation, key: string): string | undefined {
  const value = (citation.metadata as Record<string, unknown> | undefined)?.[key];
  return value == null ? undefined : String(value);
}

/** A cited passage: the whole chunk from its knowledge base (with the reader's permissions), and its document. */
export function CitationDrawer({ citation, onClose }: { citation: Citation | null; onClose: () => void }) {
  const t = useT();
  const screens = Grid.useBreakpoint();
  const [chunk, setChunk] = useState<ChunkView | null>(null);
  const [error, setError] = useState<unknown>(null);
  const kb = citation ? meta(citation, "knowledge_base_id") : undefined;
  const chunkId = citation ? meta(citation, "chunk_id") : undefined;
  const documentId = citation ? meta(citation, "document_id") : undefined;

  useEffect(() => {
    setChunk(null);
    setError(null);
    if (!kb || !chunkId) return;
    const controller = new AbortController();
    apiFetch(new Request(`/api/knowledge-bases/${kb}/chunks/${chunkId}`, { signal: controller.signal }))
      .then(async (response) => {
        if (!response.ok) throw new ApiError(await problemOf(response));
        setChunk((await response.json()) as ChunkView);
      })
      .catch((caught: unknown) => !controller.signal.aborted && setError(caught));
    return () => controller.abort();
  }, [kb, chunkId]);

  const download = async () => {
    try {
      const response = await apiFetch(new Request(`/api/knowledge-bases/${kb}/documents/${documentId}/file`));
      if (!response.ok) throw new ApiError(await problemOf(response));
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement("a");
      link.href = url;
      link.download = citation?.title ?? "document";
      link.click();
      URL.revokeObjectURL(url);
    } catch (caught) {
      setError(caught);
    }
  };

  const page = citation ? meta(citation, "page") : undefined;
  const rawBox = (citation?.metadata as Record<string, unknown> | undefined)?.box;
  const box = Array.isArray(rawBox) && rawBox.length === 4 ? (rawBox.map(Number) as unknown as PageBox) : null;
  const details = [
    ...(page ? [{ key: "page", label: t("chat.citation.page"), children: page }] : []),
    ...(citation?.url
      ? [{ key: "url", label: "URL", children: <a href={citation.url} target="_blank" rel="noreferrer">{citation.url}</a> }]
      : []),
  ];

  return (
    <Drawer
      open={citation != null}
      onClose={onClose}
      title={citation?.title}
      size={screens.md ? 640 : "100%"}
      closable={{ "aria-label": t("common.close") }}
    >
      {citation ? (
        <>
          <ErrorAlert error={error} />
          {details.length ? <Descriptions column={1} size="small" items={details} /> : null}
          <Typography.Title level={5}>{t("chat.citation.passage")}</Typography.Title>
          {kb && chunkId && !chunk && !error ? <Spin /> : null}
          <Typography.Paragraph style={{ whiteSpace: "pre-wrap" }} data-testid="citation-text">
            {chunk?.text ?? citation.snippet}
          </Typography.Paragraph>
          {kb && documentId ? (
            <Button icon={<DownloadOutlined />} onClick={download}>
              {t("chat.citation.download")}
            </Button>
          ) : null}
          {kb && documentId && page ? (
            <section aria-label={t("chat.citation.preview")} style={{ marginTop: 16 }}>
              <Typography.Title level={5}>{t("chat.citation.preview")}</Typography.Title>
              <DocumentPreview kbId={kb} docId={documentId} page={Number(page)} box={box} />
            </section>
          ) : null}
        </>
      ) : null}
    </Drawer>
  );
}
