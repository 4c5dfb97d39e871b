"""Background work of knowledge bases: processing a document (parse, chunk, embed, index), re-embedding a
knowledge base with a new model, and writing its summary.

A document is processed by one job at a time: the job carries the document's processing token and stops at
its next step when the token changed (the user asked for a re-index or deleted the document). The search index
is written first and the database last, in one transaction that also marks the document `indexed`; searches
only show chunks of indexed documents, and a retried job first removes what an earlier attempt wrote, so a
worker killed mid-document leaves nothing half-indexed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from nexent.core.db import utcnow
from nexent.engines.container import Engines
from nexent.engines.storage.base import ObjectNotFound
from nexent.jobs.registry import JobContext, JobResult, PermanentJobError, job_handler
from nexent.knowledge import events
from nexent.knowledge.chunking import ChunkSettings, chunk_document
from nexent.knowledge.models import DocumentStatus, KnowledgeBase, KnowledgeChunk, KnowledgeDocument
from nexent.knowledge.parsing import ParseFailure, ParseLimits, parse_document
from nexent.knowledge.repository import ChunkRepository, DocumentRepository, KnowledgeBaseRepository
from nexent.knowledge.service import (
    INDEX_DOCUMENT,
    REEMBED,
    SUMMARIZE,
    acting_caller,
    indexed_chunk,
    live_indexes,
)
from nexent.providers.models import ModelKind
from nexent.providers.service import NoDefaultModel, ProviderService
from nexent.providers.types import RETRYABLE, ProviderError, complete

logger = logging.getLogger("nexent.knowledge")

EMBED_BATCH = 256  # texts per embedding call: large batches let the model group texts of similar length
INDEX_BATCH = 500  # Milvus takes at most 500 rows an insert
SUMMARY_DELAY_SECONDS = 2.0
_BUSY = (DocumentStatus.QUEUED, DocumentStatus.PARSING, DocumentStatus.EMBEDDING)
_SUMMARY_PROMPT = (
    "Below are the opening passages of the documents of a knowledge base named {name!r} ({description}). "
    "Write a summary of at most 80 words of what it contains, so that an assistant can decide when to search "
    "it. Answer with the summary only, in the language of the documents.\n\n"
)


class Superseded(Exception):
    """The document was re-indexed or deleted while this job worked on it."""


class DocumentFailed(Exception):
    """Processing ended with a typed failure that retrying cannot fix."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Target:
    """One index to write: the one searches use, or the one being built by a re-embedding."""

    name: str
    model_id: uuid.UUID | None
    dimension: int


class DocumentPipeline:
    def __init__(self, engines: Engines, tenant_id: uuid.UUID, doc_id: uuid.UUID, token: uuid.UUID) -> None:
        self.engines = engines
        self.tenant_id = tenant_id
        self.doc_id = doc_id
        self.token = token
        self.fresh = False

    async def _update(self, **changes: Any) -> tuple[KnowledgeDocument, KnowledgeBase]:
        """Apply `changes` to the document if this job still owns it, commit, and publish the new state."""
        async with self.engines.sessions() as session, session.begin():
            doc = await DocumentRepository(session, self.tenant_id).get(self.doc_id)
            kb = await KnowledgeBaseRepository(session, self.tenant_id).get(doc.knowledge_base_id) if doc else None
            if doc is None or kb is None or doc.job_id != self.token:
                raise Superseded
            if "attempts" in changes:  # the start of an attempt: could an earlier one have written to the index?
                self.fresh = doc.attempts == 0 and doc.indexed_at is None
            for field, value in changes.items():
                setattr(doc, field, value)
        await events.publish_document(self.engines, doc)
        return doc, kb

    async def fail(self, code: str, message: str) -> None:
        with contextlib.suppress(Superseded):
            await self._update(status=DocumentStatus.FAILED, error_code=code, error_message=message[:2000])

    async def run(self, attempt: int, *, last_attempt: bool) -> JobResult:
        doc, kb = await self._update(
            status=DocumentStatus.PARSING, progress=0.05, attempts=attempt, error_code=None, error_message=None
        )
        settings = self.engines.settings
        try:
            data = await self.engines.storage.get(doc.storage_key)
        except ObjectNotFound:
            raise DocumentFailed(
                "file_missing", "The uploaded file is no longer in storage; upload it again."
            ) from None
        limits = ParseLimits(max_bytes=settings.knowledge_max_file_bytes, ocr=settings.knowledge_ocr)
        try:
            parsed = await asyncio.to_thread(parse_document, data, doc.file_name, doc.content_type, limits)
        except ParseFailure as failure:
            raise DocumentFailed(failure.code, failure.message) from None
        chunk_settings = ChunkSettings(target_chars=kb.chunk_target_chars, overlap_chars=kb.chunk_overlap_chars)
        pieces = await asyncio.to_thread(chunk_document, parsed, chunk_settings)
        if not pieces:
            raise DocumentFailed("empty", "The document has no text to index.")
        doc, kb = await self._update(
            status=DocumentStatus.EMBEDDING, progress=0.2, format=parsed.format, page_count=parsed.page_count
        )
        chunks = [
            KnowledgeChunk(
                id=uuid.uuid4(),
                tenant_id=self.tenant_id,
                knowledge_base_id=kb.id,
                document_id=doc.id,
                position=piece.index,
                text=piece.text,
                kind=piece.kind,
                page=piece.page,
                page_end=piece.page_end,
                heading_path=list(piece.heading_path),
                source=piece.source,
                start_offset=piece.start,
                end_offset=piece.end,
                edited=False,
            )
            for piece in pieces
        ]
        targets = [_Target(*t) for t in live_indexes(kb)]
        vectors = {}
        for number, target in enumerate(targets):
            vectors[target.name] = await self._embed(doc, target, chunks, number, len(targets), last_attempt)
        for target in targets:
            if not self.fresh:
                await self.engines.search.delete(target.name, document_id=doc.id.hex)
            rows = [indexed_chunk(c, v, doc) for c, v in zip(chunks, vectors[target.name], strict=True)]
            for start in range(0, len(rows), INDEX_BATCH):
                await self.engines.search.upsert(target.name, rows[start : start + INDEX_BATCH])
        async with self.engines.sessions() as session, session.begin():
            documents = DocumentRepository(session, self.tenant_id)
            current = await documents.get(self.doc_id)
            if current is None or current.job_id != self.token:
                raise Superseded
            repo = ChunkRepository(session, self.tenant_id)
            await repo.delete_of_document(doc.id)
            await repo.add_all(chunks)
            current.status, current.progress, current.chunk_count = DocumentStatus.INDEXED, 1.0, len(chunks)
            current.indexed_at = utcnow()
        await events.publish_document(self.engines, current)
        # Counted after our own commit, so whichever document of a batch finishes last sees none left.
        async with self.engines.sessions() as session:
            busy = await DocumentRepository(session, self.tenant_id).count(
                KnowledgeDocument.knowledge_base_id == kb.id, KnowledgeDocument.status.in_(_BUSY)
            )
        if not busy:
            await self.engines.queue.enqueue(
                SUMMARIZE,
                {"knowledge_base_id": str(kb.id)},
                tenant_id=self.tenant_id,
                delay_seconds=SUMMARY_DELAY_SECONDS,
            )
        return {"chunks": len(chunks), "format": parsed.format}

    async def _embed(
        self,
        doc: KnowledgeDocument,
        target: _Target,
        chunks: Sequence[KnowledgeChunk],
        number: int,
        of: int,
        last_attempt: bool,
    ) -> list[list[float]]:
        if target.model_id is None:
            raise DocumentFailed("embedding_failed", "The knowledge base's embedding model was deleted.")
        async with self.engines.sessions() as session:
            client = await ProviderService(session, self.engines, acting_caller(self.tenant_id, doc.created_by)).client(
                target.model_id
            )
        vectors: list[list[float]] = []
        for start in range(0, len(chunks), EMBED_BATCH):
            texts = [c.text for c in chunks[start : start + EMBED_BATCH]]
            try:
                batch, _ = await client.embed(texts, batch_size=64)
            except ProviderError as exc:
                if exc.code in RETRYABLE and not last_attempt:
                    raise  # the job retries with backoff
                raise DocumentFailed("embedding_failed", f"The embedding model failed: {exc.message}") from None
            for vector in batch:
                if len(vector) != target.dimension:
                    raise DocumentFailed(
                        "dimension_mismatch",
                        f"The embedding model returns {len(vector)} dimensions; the index has {target.dimension}.",
                    )
            vectors.extend(list(v) for v in batch)
            if len(vectors) < len(chunks):  # the last batch's progress is the final state, written next
                done = (number + len(vectors) / len(chunks)) / of
                await self._update(progress=round(0.2 + 0.7 * done, 3))
        return vectors


def _ids(ctx: JobContext, *keys: str) -> tuple[uuid.UUID, ...]:
    if ctx.tenant_id is None:
        raise PermanentJobError("a knowledge job needs its tenant")
    try:
        return tuple(uuid.UUID(str(ctx.payload[key])) for key in keys)
    except (KeyError, ValueError):
        raise PermanentJobError(f"a knowledge job needs {', '.join(keys)}") from None


@job_handler(INDEX_DOCUMENT)
async def index_document(ctx: JobContext) -> JobResult:
    """Parse, chunk, embed and index one document, ending in `indexed` or `failed` with a typed error."""
    doc_id, token = _ids(ctx, "document_id", "token")
    assert ctx.tenant_id is not None
    pipeline = DocumentPipeline(ctx.engines, ctx.tenant_id, doc_id, token)
    try:
        return await pipeline.run(ctx.attempt, last_attempt=ctx.last_attempt)
    except Superseded:
        return {"skipped": "superseded"}
    except DocumentFailed as failure:
        await pipeline.fail(failure.code, failure.message)
        return {"failed": failure.code}
    except Exception:
        if ctx.last_attempt:
            await pipeline.fail("processing_failed", "Processing failed repeatedly; re-index the document to retry.")
        raise


@job_handler(REEMBED)
async def reembed(ctx: JobContext) -> JobResult:
    """Embed every chunk with the knowledge base's new model into its new index, then switch searches to it."""
    kb_id, token = _ids(ctx, "knowledge_base_id", "token")
    tenant_id = ctx.tenant_id
    assert tenant_id is not None
    engines = ctx.engines
    async with engines.sessions() as session:
        kb = await KnowledgeBaseRepository(session, tenant_id).get(kb_id)
        if kb is None or kb.reembed_job_id != token or not kb.pending_index_name:
            return {"skipped": "superseded"}
        assert kb.pending_embedding_model_id is not None and kb.pending_embedding_dimension is not None
        client = await ProviderService(session, engines, acting_caller(tenant_id, kb.created_by)).client(
            kb.pending_embedding_model_id
        )
        target, dimension = kb.pending_index_name, kb.pending_embedding_dimension
    after: uuid.UUID | None = None
    done = 0
    while True:
        async with engines.sessions() as session:
            batch = await ChunkRepository(session, tenant_id).batch_of_kb(kb_id, after=after, limit=EMBED_BATCH)
            docs = {d.id: d for d in await DocumentRepository(session, tenant_id).of_kb(kb_id)} if batch else {}
        if not batch:
            break
        try:
            vectors, _ = await client.embed([c.text for c in batch], batch_size=64)
        except ProviderError as exc:
            if exc.code in RETRYABLE and not ctx.last_attempt:
                raise
            raise PermanentJobError(f"the new embedding model failed: {exc.code.value}") from None
        if any(len(v) != dimension for v in vectors):
            raise PermanentJobError("the new embedding model changed its dimension")
        rows = [indexed_chunk(c, v, docs[c.document_id]) for c, v in zip(batch, vectors, strict=True)]
        await engines.search.upsert(target, rows)
        after, done = batch[-1].id, done + len(batch)
    async with engines.sessions() as session, session.begin():
        kb = await KnowledgeBaseRepository(session, tenant_id).lock(kb_id)
        if kb is None or kb.reembed_job_id != token:
            return {"skipped": "superseded"}
        old = kb.index_name
        kb.index_name, kb.embedding_model_id = target, kb.pending_embedding_model_id
        kb.embedding_dimension = dimension
        kb.pending_index_name = kb.pending_embedding_model_id = kb.pending_embedding_dimension = None
        kb.reembed_job_id = None
    await engines.search.drop_index(old)
    return {"chunks": done}


@job_handler(SUMMARIZE)
async def summarize(ctx: JobContext) -> JobResult:
    """Have the tenant's default LLM describe the knowledge base, when documents were indexed since the last time."""
    (kb_id,) = _ids(ctx, "knowledge_base_id")
    tenant_id = ctx.tenant_id
    assert tenant_id is not None
    engines = ctx.engines
    async with engines.bus.lock(f"knowledge-summary:{kb_id}", ttl_seconds=120, wait_seconds=60):
        async with engines.sessions() as session:
            kb = await KnowledgeBaseRepository(session, tenant_id).get(kb_id)
            if kb is None:
                return {"skipped": "deleted"}
            latest = await session.scalar(
                select(func.max(KnowledgeDocument.indexed_at)).where(
                    KnowledgeDocument.tenant_id == tenant_id, KnowledgeDocument.knowledge_base_id == kb_id
                )
            )
            if latest is None or (kb.summary_updated_at is not None and kb.summary_updated_at >= latest):
                return {"skipped": "up to date"}
            busy = await DocumentRepository(session, tenant_id).count(
                KnowledgeDocument.knowledge_base_id == kb_id, KnowledgeDocument.status.in_(_BUSY)
            )
            if busy:  # the last document of the batch asks again; summarise once, not after every document
                return {"skipped": "documents in processing"}
            openings = await ChunkRepository(session, tenant_id).first_of_kb(kb_id, limit=12)
            try:
                client = await ProviderService(
                    session, engines, acting_caller(tenant_id, kb.created_by)
                ).default_client(ModelKind.LLM)
            except NoDefaultModel:
                return {"skipped": "no default llm"}
            prompt = _SUMMARY_PROMPT.format(name=kb.name, description=kb.description or "no description")
        excerpt = "\n\n".join(c.text[:600] for c in openings)
        started = utcnow()
        try:
            result = await complete(client, [{"role": "user", "content": prompt + excerpt}], max_tokens=200)
        except ProviderError as exc:
            raise PermanentJobError(f"the model could not write a summary: {exc.code.value}") from None
        summary = " ".join(result.content.split())[:2000]
        if not summary:
            return {"skipped": "empty summary"}
        async with engines.sessions() as session, session.begin():
            kb = await KnowledgeBaseRepository(session, tenant_id).get(kb_id)
            if kb is None:
                return {"skipped": "deleted"}
            kb.summary, kb.summary_updated_at = summary, started
    return {"summary": summary}
