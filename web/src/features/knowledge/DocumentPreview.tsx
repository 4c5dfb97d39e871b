"use client";

import { Alert, Button, Pagination, Space, Spin, Typography } from "antd";
import { useEffect, useState } from "react";
import { apiFetch } from "@/api/client";
import { ApiError, problemOf } from "@/api/problem";
import { useT } from "@/i18n";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { readPreview } from "./api";
import "./messages";

/** `[x0, y0, x1, y1]`: fractions of the page from its top left corner (a chunk's `box`). */
export type PageBox = readonly [number, number, number, number];

const STRIP_AROUND = 4; // thumbnails either side of the current page

function previewUrl(kbId: string, docId: string, part: string): string {
  return `/api/knowledge-bases/${kbId}/documents/${docId}/preview/${part}`;
}

/** An image of the API as an object URL (the request carries the session's token; the browser's HTTP cache and
 * the ETag keep repeated views cheap). */
function usePreviewImage(url: string | null): { src: string | null; error: unknown } {
  const [src, setSrc] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setSrc(null);
    setError(null);
    if (!url) return;
    const controller = new AbortController();
    let objectUrl: string | null = null;
    apiFetch(new Request(url, { signal: controller.signal }))
      .then(async (response) => {
        if (!response.ok) throw new ApiError(await problemOf(response));
        objectUrl = URL.createObjectURL(await response.blob());
        setSrc(objectUrl);
      })
      .catch((caught: unknown) => !controller.signal.aborted && setError(caught));
    return () => {
      controller.abort();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [url]);
  return { src, error };
}

function PageImage({ url, alt, box, label }: { url: string; alt: string; box?: PageBox | null; label?: string }) {
  const { src, error } = usePreviewImage(url);
  if (error) return <ErrorAlert error={error} />;
  if (!src) return <Spin />;
  return (
    <div style={{ position: "relative", display: "inline-block", maxWidth: "100%", lineHeight: 0 }}>
      {/* eslint-disable-next-line @next/next/no-img-element -- an object URL of the API's image */}
      <img src={src} alt={alt} style={{ maxWidth: "100%", height: "auto", border: "1px solid #d9d9d9" }} />
      {box ? (
        <div
          data-testid="preview-highlight"
          role="img"
          aria-label={label}
          style={{
            position: "absolute",
            left: `${box[0] * 100}%`,
            top: `${box[1] * 100}%`,
            width: `${Math.max(box[2] - box[0], 0.01) * 100}%`,
            height: `${Math.max(box[3] - box[1], 0.01) * 100}%`,
            background: "rgba(250, 173, 20, 0.25)",
            outline: "2px solid #fa8c16",
            outlineOffset: 2,
            pointerEvents: "none",
          }}
        />
      ) : null}
    </div>
  );
}

function Thumb({ url, alt }: { url: string; alt: string }) {
  const { src } = usePreviewImage(url);
  return src ? (
    // eslint-disable-next-line @next/next/no-img-element -- an object URL of the API's image
    <img src={src} alt={alt} style={{ width: 56, height: "auto", display: "block" }} />
  ) : (
    <span style={{ display: "block", width: 56, height: 72 }} />
  );
}

/**
 * What a document looks like: its pages as images with a pager and a strip of page thumbnails (PDFs, images), or
 * its parsed text (other formats). With `box`, the passage on `page` is outlined.
 */
export function DocumentPreview({
  kbId,
  docId,
  page: initialPage,
  box,
  status,
}: {
  kbId: string;
  docId: string;
  page?: number | null;
  box?: PageBox | null;
  status?: string;
}) {
  const t = useT();
  const info = useAsync(() => readPreview(kbId, docId), [kbId, docId, status]);
  const [page, setPage] = useState(initialPage ?? 1);
  useEffect(() => setPage(initialPage ?? 1), [initialPage, docId]);
  const preview = info.data;

  if (info.error) return <ErrorAlert error={info.error} onRetry={info.reload} />;
  if (!preview) return <Spin />;
  if (!preview.kind) return <EmptyState title={t("kb.preview.notReady")} />;
  if (preview.kind === "text" || preview.page_count === 0) return <TextPreview kbId={kbId} docId={docId} />;

  const count = preview.page_count;
  const first = Math.max(1, Math.min(page - STRIP_AROUND, count - 2 * STRIP_AROUND));
  const strip = Array.from({ length: Math.min(count, 2 * STRIP_AROUND + 1) }, (_, i) => first + i);
  const highlighted = box && page === (initialPage ?? 1) ? box : null;
  return (
    <div data-testid="document-preview">
      {preview.error ? (
        <Alert type="warning" showIcon style={{ marginBottom: 8 }} title={t("kb.preview.failed")} description={preview.error.message} />
      ) : null}
      <Space wrap style={{ marginBottom: 8, justifyContent: "space-between", width: "100%" }}>
        <Pagination
          simple
          size="small"
          current={page}
          pageSize={1}
          total={count}
          onChange={setPage}
          aria-label={t("kb.preview.pager")}
        />
        <Typography.Text type="secondary">{t("kb.preview.pageOf", { page, count })}</Typography.Text>
      </Space>
      {count > 1 ? (
        <nav aria-label={t("kb.preview.thumbnails")} style={{ display: "flex", gap: 6, overflowX: "auto", marginBottom: 8 }}>
          {strip.map((n) => (
            <Button
              key={n}
              onClick={() => setPage(n)}
              aria-label={t("kb.preview.goTo", { page: n })}
              aria-current={n === page ? "page" : undefined}
              style={{ height: "auto", padding: 2, borderColor: n === page ? "#1677ff" : undefined, borderWidth: n === page ? 2 : 1 }}
            >
              <Thumb url={previewUrl(kbId, docId, `pages/${n}`)} alt="" />
            </Button>
          ))}
        </nav>
      ) : null}
      <PageImage
        url={previewUrl(kbId, docId, `pages/${page}`)}
        alt={t("kb.preview.pageAlt", { page })}
        box={highlighted}
        label={t("kb.preview.highlight")}
      />
    </div>
  );
}

function TextPreview({ kbId, docId }: { kbId: string; docId: string }) {
  const t = useT();
  const text = useAsync(async () => {
    const response = await apiFetch(new Request(previewUrl(kbId, docId, "text")));
    if (!response.ok) throw new ApiError(await problemOf(response));
    return response.text();
  }, [kbId, docId]);
  if (text.error) return <ErrorAlert error={text.error} onRetry={text.reload} />;
  if (text.data === undefined) return <Spin />;
  return (
    <div data-testid="document-preview">
      <Typography.Paragraph type="secondary">{t("kb.preview.textOnly")}</Typography.Paragraph>
      <pre
        tabIndex={0}
        aria-label={t("kb.preview.text")}
        style={{ whiteSpace: "pre-wrap", wordBreak: "break-word", maxHeight: "70vh", overflow: "auto", fontSize: 13 }}
      >
        {text.data}
      </pre>
    </div>
  );
}
