import { createParser } from "eventsource-parser";
import { api, apiFetch, unwrap, type Schemas } from "@/api/client";
import { ApiError, problemOf } from "@/api/problem";
import type { RowChoice } from "./rows";

export type KnowledgeBase = Schemas["KnowledgeBaseRead"];
export type KnowledgeBaseCreate = Schemas["KnowledgeBaseCreate"];
export type KnowledgeBaseUpdate = Schemas["KnowledgeBaseUpdate"];
export type KbDocument = Schemas["DocumentRead"];
export type DocumentStatus = Schemas["DocumentStatus"];
export type Chunk = Schemas["ChunkRead"];
export type DocumentTable = Schemas["DocumentTable"];
export type Model = Schemas["ModelRead"];
export type Group = Schemas["GroupRead"];
export type Share = Schemas["ShareRead"];
export type SharePermission = Schemas["SharePermission"];
export type SearchMode = Schemas["SearchIn"]["mode"] & string;
export type SearchResult = Schemas["SearchResult"];
export type UploadResult = Schemas["UploadResult"];
export type RejectedRow = Schemas["RejectedRow"];
/** One `document` event of the progress stream: the document's fields that change while it is processed. */
export type DocumentEvent = Pick<KbDocument, "file_name" | "status" | "progress" | "error" | "chunk_count"> & {
  document_id: string;
};

const path = (kb_id: string) => ({ params: { path: { kb_id } } });

export const listKnowledgeBases = () => unwrap(api.GET("/api/knowledge-bases", { params: { query: { limit: 200 } } }));
export const readKnowledgeBase = (id: string) => unwrap(api.GET("/api/knowledge-bases/{kb_id}", path(id)));
export const createKnowledgeBase = (body: KnowledgeBaseCreate) => unwrap(api.POST("/api/knowledge-bases", { body }));
export const updateKnowledgeBase = (id: string, body: KnowledgeBaseUpdate) =>
  unwrap(api.PATCH("/api/knowledge-bases/{kb_id}", { ...path(id), body }));
export const deleteKnowledgeBase = (id: string) => unwrap(api.DELETE("/api/knowledge-bases/{kb_id}", path(id)));

export const listModels = (kind: Schemas["ModelKind"]) =>
  unwrap(api.GET("/api/models", { params: { query: { kind, limit: 200 } } }));
export const listGroups = () => unwrap(api.GET("/api/groups", { params: { query: { limit: 200 } } }));
export const listShares = (id: string) => unwrap(api.GET("/api/knowledge-bases/{kb_id}/shares", path(id)));
export const putShare = (id: string, group_id: string, permission: SharePermission) =>
  unwrap(
    api.PUT("/api/knowledge-bases/{kb_id}/shares/{group_id}", {
      params: { path: { kb_id: id, group_id } },
      body: { permission },
    }),
  );
export const deleteShare = (id: string, group_id: string) =>
  unwrap(api.DELETE("/api/knowledge-bases/{kb_id}/shares/{group_id}", { params: { path: { kb_id: id, group_id } } }));

export const listDocuments = (id: string) =>
  unwrap(api.GET("/api/knowledge-bases/{kb_id}/documents", { params: { path: { kb_id: id }, query: { limit: 200 } } }));

/**
 * Upload files in one request (multipart field `file`, repeated); with `rows`, CSV and JSON Lines files become one
 * document per row (structured import).
 */
export function uploadDocuments(id: string, files: File[], rows?: RowChoice): Promise<UploadResult> {
  const form = new FormData();
  for (const file of files) form.append("file", file, file.name);
  if (rows) {
    form.append("split", "rows");
    if (rows.id_column) form.append("id_column", rows.id_column);
    for (const column of rows.metadata_columns) form.append("metadata_columns", column);
    for (const column of rows.text_columns) form.append("text_columns", column);
  }
  return unwrap(
    api.POST("/api/knowledge-bases/{kb_id}/documents", {
      ...path(id),
      // The typed body only names the fields; the FormData carries the files.
      body: { file: files.map((file) => file.name), split: rows ? "rows" : "file" },
      bodySerializer: () => form,
    }),
  );
}

export const reindexDocument = (id: string, doc_id: string) =>
  unwrap(api.POST("/api/knowledge-bases/{kb_id}/documents/{doc_id}/reindex", { params: { path: { kb_id: id, doc_id } } }));
export const deleteDocument = (id: string, doc_id: string) =>
  unwrap(api.DELETE("/api/knowledge-bases/{kb_id}/documents/{doc_id}", { params: { path: { kb_id: id, doc_id } } }));
export const readDocument = (id: string, doc_id: string) =>
  unwrap(api.GET("/api/knowledge-bases/{kb_id}/documents/{doc_id}", { params: { path: { kb_id: id, doc_id } } }));

export const listChunks = (id: string, doc_id: string) =>
  unwrap(
    api.GET("/api/knowledge-bases/{kb_id}/documents/{doc_id}/chunks", {
      params: { path: { kb_id: id, doc_id }, query: { limit: 200 } },
    }),
  );
/** What can be previewed of a document: page images (PDFs, images) or its text only. */
export const readPreview = (id: string, doc_id: string) =>
  unwrap(api.GET("/api/knowledge-bases/{kb_id}/documents/{doc_id}/preview", { params: { path: { kb_id: id, doc_id } } }));
/** The document's tables in order, each rebuilt from its table chunks (caption, header, rows). */
export const listTables = (id: string, doc_id: string) =>
  unwrap(api.GET("/api/knowledge-bases/{kb_id}/documents/{doc_id}/tables", { params: { path: { kb_id: id, doc_id } } }));
export const updateChunk = (id: string, chunk_id: string, text: string) =>
  unwrap(
    api.PATCH("/api/knowledge-bases/{kb_id}/chunks/{chunk_id}", {
      params: { path: { kb_id: id, chunk_id } },
      body: { text },
    }),
  );
export const deleteChunk = (id: string, chunk_id: string) =>
  unwrap(api.DELETE("/api/knowledge-bases/{kb_id}/chunks/{chunk_id}", { params: { path: { kb_id: id, chunk_id } } }));

export const search = (id: string, query: string, mode: SearchMode, top_k: number, vector_weight: number | null = null) =>
  unwrap(
    api.POST("/api/knowledge-bases/{kb_id}/search", {
      ...path(id),
      body: { query, mode, top_k, rerank: true, ...(vector_weight === null ? {} : { vector_weight }) },
    }),
  );
export type SearchWeights = Schemas["SearchWeights"];

/**
 * Follow the knowledge base's progress stream, calling `onEvent` for every document event, until the server closes it
 * or `signal` aborts. Throws when the stream cannot be opened or drops (the caller then polls instead).
 */
export async function followDocuments(
  id: string,
  onEvent: (event: DocumentEvent) => void,
  signal: AbortSignal,
  onOpen?: () => void,
): Promise<void> {
  const request = new Request(`/api/knowledge-bases/${encodeURIComponent(id)}/events`, {
    headers: { Accept: "text/event-stream" },
    signal,
  });
  const response = await apiFetch(request);
  if (!response.ok || !response.body) throw new ApiError(await problemOf(response));
  onOpen?.();
  const parser = createParser({
    onEvent(message) {
      if (message.event === "document") onEvent(JSON.parse(message.data) as DocumentEvent);
    },
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(value);
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

export const PROCESSING: ReadonlySet<DocumentStatus> = new Set(["queued", "parsing", "embedding"]);

/** A size in bytes for people. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}
