"""Prometheus metrics of knowledge ingestion: embedding calls, documents indexed or failed, and the bytes and chunks
indexed (throughput)."""

from __future__ import annotations

from prometheus_client import Counter

EMBEDDING_CALLS = Counter(
    "nexent_knowledge_embedding_calls_total",
    "Embedding calls of knowledge bases, by purpose (index, search, chunk_edit, reembed, probe) and outcome (ok, "
    "an error code of the model, or dimension_mismatch).",
    ["purpose", "outcome"],
)
EMBEDDED_TEXTS = Counter(
    "nexent_knowledge_embedded_texts_total", "Texts embedded for knowledge bases, by purpose.", ["purpose"]
)
INGESTED_BYTES = Counter(
    "nexent_knowledge_ingested_bytes_total", "Bytes of the source files of documents indexed (ingestion throughput)."
)
INDEXED_CHUNKS = Counter("nexent_knowledge_indexed_chunks_total", "Chunks stored by documents indexed.")
DOCUMENTS = Counter(
    "nexent_knowledge_documents_total",
    "Documents whose processing ended, by outcome (`indexed`, or `failed:<error code>`).",
    ["outcome"],
)
