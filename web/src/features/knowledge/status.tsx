"use client";

import { Tag } from "antd";
import type { Translate } from "@/i18n";
import type { MessageKey } from "@/i18n/messages";
import type { DocumentStatus, KbDocument } from "./api";

const STATUS: Record<DocumentStatus, { key: MessageKey; color: string }> = {
  queued: { key: "kb.status.queued", color: "default" },
  parsing: { key: "kb.status.parsing", color: "processing" },
  embedding: { key: "kb.status.embedding", color: "processing" },
  indexed: { key: "kb.status.indexed", color: "success" },
  failed: { key: "kb.status.failed", color: "error" },
};

export function statusLabel(status: DocumentStatus, t: Translate): string {
  return t(STATUS[status]?.key ?? "kb.status.queued");
}

/** The document's state as a tag (queued → parsing → embedding → ready, or failed). */
export function StatusTag({ status, t }: { status: DocumentStatus; t: Translate }) {
  return <Tag color={STATUS[status]?.color ?? "default"}>{statusLabel(status, t)}</Tag>;
}

const ERRORS: Record<string, MessageKey> = {
  unsupported_format: "kb.error.unsupported_format",
  corrupt_file: "kb.error.corrupt_file",
  encrypted: "kb.error.encrypted",
  empty: "kb.error.empty",
  too_large: "kb.error.too_large",
  embedding_failed: "kb.error.embedding_failed",
  dimension_mismatch: "kb.error.dimension_mismatch",
  file_missing: "kb.error.file_missing",
  processing_failed: "kb.error.processing_failed",
};

/** A document's typed error in plain words; the server's own message for a code this UI does not know. */
export function documentErrorText(error: KbDocument["error"], t: Translate): string {
  if (!error) return "";
  const key = ERRORS[error.code];
  return key ? t(key) : error.message || error.code;
}
