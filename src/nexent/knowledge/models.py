"""Knowledge bases, their documents (with a visible state machine) and the chunks each document was cut into.

The chunks live here as well as in the search engine: they are what users list and edit, and what a knowledge
base re-embeds from when its embedding model changes, without parsing the files again.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nexent.core.db import Base, IdMixin, TimestampMixin
from nexent.engines.search.analysis import ANALYSIS_VERSION


class DocumentStatus(StrEnum):
    QUEUED = "queued"
    PARSING = "parsing"
    EMBEDDING = "embedding"
    INDEXED = "indexed"
    FAILED = "failed"


FINAL_STATUSES = frozenset({DocumentStatus.INDEXED, DocumentStatus.FAILED})


class KnowledgeBase(IdMixin, TimestampMixin, Base):
    """A searchable collection of documents, embedded with one model into one search index."""

    __tablename__ = "knowledge_bases"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_knowledge_bases_tenant_name"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str | None] = mapped_column(Text, default=None)
    summary_updated_at: Mapped[datetime | None] = mapped_column(default=None)
    embedding_model_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("model_configs.id", ondelete="SET NULL"), default=None
    )
    embedding_dimension: Mapped[int] = mapped_column()
    index_name: Mapped[str] = mapped_column(String(64))
    # While the knowledge base is re-embedded with another model, searches keep using the current index.
    pending_embedding_model_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    pending_embedding_dimension: Mapped[int | None] = mapped_column(default=None)
    pending_index_name: Mapped[str | None] = mapped_column(String(64), default=None)
    reembed_job_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    rerank_model_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("model_configs.id", ondelete="SET NULL"), default=None
    )
    # The text analysis its current index was built with (engines/search/analysis.py); a rebuild brings it up to
    # date. Rows from before versions were recorded are version 1.
    analysis_version: Mapped[int] = mapped_column(default=ANALYSIS_VERSION)
    # Hybrid search: the vector side's weight, set by an editor; None: chosen per query (docs/search.md).
    vector_weight: Mapped[float | None] = mapped_column(default=None)
    # Set for a conversation's index of its long attachments (docs/attachments.md): hidden from every list, search
    # and picker, searched only by that conversation's runs, deleted with it. Knowledge knows no conversations, so
    # this is a plain id, not a foreign key.
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)
    chunk_target_chars: Mapped[int] = mapped_column(default=1200)
    chunk_overlap_chars: Mapped[int] = mapped_column(default=150)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)


class KnowledgeDocument(IdMixin, TimestampMixin, Base):
    """One uploaded file and where its processing stands."""

    __tablename__ = "knowledge_documents"
    __table_args__ = (
        UniqueConstraint("knowledge_base_id", "content_hash", name="uq_knowledge_documents_kb_hash"),
        Index("ix_knowledge_documents_kb_status", "knowledge_base_id", "status"),
        # One document per row of a structured import: a row is its file's name and its id (NULLs never clash).
        UniqueConstraint("knowledge_base_id", "row_source", "row_id", name="uq_knowledge_documents_kb_row"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    knowledge_base_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("knowledge_bases.id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(120), default=None)
    size: Mapped[int] = mapped_column()
    content_hash: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(500))
    format: Mapped[str | None] = mapped_column(String(16), default=None)
    status: Mapped[str] = mapped_column(String(16), default=DocumentStatus.QUEUED)
    progress: Mapped[float] = mapped_column(default=0.0)
    error_code: Mapped[str | None] = mapped_column(String(40), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    chunk_count: Mapped[int] = mapped_column(default=0)
    page_count: Mapped[int | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    # The job that owns the document's processing; an older job that finds another id here stops.
    job_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    doc_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    indexed_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set for a row of a CSV or JSON Lines file imported one document per row: the file's name, the row's id
    # and the line it started on. The stored object is then the row's text, as indexed.
    row_source: Mapped[str | None] = mapped_column(String(255), default=None)
    row_id: Mapped[str | None] = mapped_column(String(255), default=None)
    row_line: Mapped[int | None] = mapped_column(default=None)


class KnowledgeChunk(IdMixin, TimestampMixin, Base):
    """A passage of a document, with where it came from."""

    __tablename__ = "knowledge_chunks"
    __table_args__ = (Index("ix_knowledge_chunks_document_position", "document_id", "position"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    knowledge_base_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("knowledge_bases.id", ondelete="CASCADE"), index=True
    )
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("knowledge_documents.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column()
    text: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16), default="paragraph")
    page: Mapped[int | None] = mapped_column(default=None)
    page_end: Mapped[int | None] = mapped_column(default=None)
    heading_path: Mapped[list[str]] = mapped_column(JSON, default=list)
    source: Mapped[str | None] = mapped_column(String(500), default=None)
    start_offset: Mapped[int] = mapped_column(default=0)
    end_offset: Mapped[int] = mapped_column(default=0)
    edited: Mapped[bool] = mapped_column(default=False)
    # The caption of the table a table chunk holds ("Table 4. ..."), when the document gives one.
    caption: Mapped[str | None] = mapped_column(Text, default=None)
    # Where the chunk's text is on its first page (PDFs with a text layer): [x0, y0, x1, y1], fractions of the
    # page from its top left corner (knowledge/previews.py).
    box: Mapped[list[float] | None] = mapped_column(JSON, default=None)
