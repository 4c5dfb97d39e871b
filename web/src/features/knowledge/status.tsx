"use client";

import { CheckCircleOutlined, ClockCircleOutlined, CloseCircleOutlined, SyncOutlined } from "@ant-design/icons";
import { Tag, theme } from "antd";
import type { ReactNode } from "react";
import type { Translate } from "@/i18n";
import type { MessageKey } from "@/i18n/messages";
import type { DocumentStatus, KbDocument } from "./api";
import "./messages";

const STATUS: Record<DocumentStatus, { key: MessageKey }> = {
  queued: { key: "kb.status.queued" },
  parsing: { key: "kb.status.parsing" },
  embedding: { key: "kb.status.embedding" },
  indexed: { key: "kb.status.indexed" },
  failed: { key: "kb.status.failed" },
};

export function statusLabel(status: DocumentStatus, t: Translate): string {
  return t(STATUS[status]?.key ?? "kb.status.queued");
}

/**
 * The document's state as a tag (queued → parsing → embedding → ready, or failed): the colour is on the icon, the text
 * keeps the theme's text colour (Ant Design's coloured tags are below 4.5:1 contrast).
 */
export function StatusTag({ status, t, children }: { status: DocumentStatus; t: Translate; children?: ReactNode }) {
  const { token } = theme.useToken();
  const tone =
    status === "indexed"
      ? { icon: <CheckCircleOutlined />, color: token.colorSuccess, border: token.colorSuccessBorder, bg: token.colorSuccessBg }
      : status === "failed"
        ? { icon: <CloseCircleOutlined />, color: token.colorError, border: token.colorErrorBorder, bg: token.colorErrorBg }
        : status === "queued"
          ? { icon: <ClockCircleOutlined />, color: token.colorTextSecondary, border: token.colorBorder, bg: token.colorFillQuaternary }
          : { icon: <SyncOutlined spin />, color: token.colorPrimary, border: token.colorPrimaryBorder, bg: token.colorPrimaryBg };
  return (
    <Tag style={{ color: token.colorText, borderColor: tone.border, background: tone.bg }}>
      <span style={{ color: tone.color, marginInlineEnd: 4 }}>{tone.icon}</span>
      {statusLabel(status, t)}
      {children}
    </Tag>
  );
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
  // structured import (one document per row): the file, then each row
  rows_not_supported: "kb.error.rows_not_supported",
  no_valid_rows: "kb.error.no_valid_rows",
  too_many_rows: "kb.error.too_many_rows",
  invalid_encoding: "kb.error.invalid_encoding",
  wrong_column_count: "kb.error.wrong_column_count",
  malformed_row: "kb.error.malformed_row",
  invalid_json: "kb.error.invalid_json",
  not_an_object: "kb.error.not_an_object",
  missing_id: "kb.error.missing_id",
  invalid_id: "kb.error.invalid_id",
  duplicate_id: "kb.error.duplicate_id",
  empty_text: "kb.error.empty_text",
  row_too_long: "kb.error.row_too_long",
  invalid_metadata: "kb.error.invalid_metadata",
  metadata_too_long: "kb.error.metadata_too_long",
};

/** A document's typed error in plain words; the server's own message for a code this UI does not know. */
export function documentErrorText(error: KbDocument["error"], t: Translate): string {
  if (!error) return "";
  const key = ERRORS[error.code];
  return key ? t(key) : error.message || error.code;
}
