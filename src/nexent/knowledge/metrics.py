"""Prometheus metrics of knowledge ingestion: embedding calls and documents indexed or failed."""

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
DOCUMENTS = Counter(
    "nexent_knowledge_documents_total",
    "Documents whose processing ended, by outcome (`indexed`, or `failed:<error code>`).",
    ["outcome"],
)
