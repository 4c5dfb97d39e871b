"use client";

import { Space, Spin, Table, Tag, Typography } from "antd";
import { useId } from "react";
import { useT, type Translate } from "@/i18n";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { listTables, type DocumentTable, type KbDocument, type KnowledgeBase } from "./api";
import "./messages";

const PAGE_SIZE = 50;
// Cells keep a readable width, so a wide table scrolls sideways on a phone instead of squeezing its columns.
const CELL = { minWidth: 64, maxWidth: 320, overflowWrap: "anywhere" } as const;

/** A document's tables, each under its caption (else "Table N, page P"), read again when the document changes. */
export function DocumentTables({ kb, docId, document }: { kb: KnowledgeBase; docId: string; document: KbDocument | null }) {
  const t = useT();
  const tables = useAsync(() => listTables(kb.id, docId), [kb.id, docId, document?.chunk_count, document?.status]);
  if (tables.error) return <ErrorAlert error={tables.error} onRetry={tables.reload} />;
  if (!tables.data) return <Spin style={{ display: "block", margin: "24px auto" }} />;
  if (tables.data.length === 0) return <EmptyState title={t("kb.tables.empty")} hint={t("kb.tables.emptyHint")} />;
  return (
    <Space orientation="vertical" size={24} style={{ width: "100%" }}>
      {tables.data.map((table) => (
        <TableView key={table.index} table={table} />
      ))}
    </Space>
  );
}

export function tableTitle(table: DocumentTable, t: Translate): string {
  if (table.caption) return table.caption;
  const n = table.index + 1;
  return table.page ? t("kb.tables.untitledPage", { n, page: table.page }) : t("kb.tables.untitled", { n });
}

interface Row {
  key: number;
  cells: string[];
}

function TableView({ table }: { table: DocumentTable }) {
  const t = useT();
  const titleId = useId();
  const pages =
    table.page && table.page_end && table.page_end !== table.page
      ? t("kb.tables.pages", { page: table.page, end: table.page_end })
      : table.page
        ? t("kb.chunks.page", { page: table.page })
        : null;
  const columns = table.header.map((name, column) => ({
    key: String(column),
    title: name || t("kb.tables.column", { n: column + 1 }),
    render: (_: unknown, row: Row) => <div style={CELL}>{row.cells[column] ?? ""}</div>,
  }));
  return (
    <section>
      <Typography.Title level={5} id={titleId} style={{ marginBottom: 4 }}>
        {tableTitle(table, t)}
      </Typography.Title>
      <Space wrap size={4} style={{ marginBottom: 8 }}>
        {pages ? <Tag>{pages}</Tag> : null}
        {table.source ? <Tag>{table.source}</Tag> : null}
        <Tag>{t("kb.tables.rows", { count: table.rows.length })}</Tag>
        {table.heading_path.length ? (
          <Typography.Text type="secondary">{table.heading_path.join(" › ")}</Typography.Text>
        ) : null}
      </Space>
      {/* Wide tables scroll sideways inside this region, which the keyboard can reach (a phone's width). */}
      <div role="region" aria-labelledby={titleId} tabIndex={0} style={{ overflowX: "auto", maxWidth: "100%" }}>
        <Table<Row>
          size="small"
          bordered
          rowKey="key"
          columns={columns}
          dataSource={table.rows.map((cells, key) => ({ key, cells }))}
          pagination={table.rows.length > PAGE_SIZE ? { pageSize: PAGE_SIZE, showSizeChanger: false } : false}
        />
      </div>
    </section>
  );
}
