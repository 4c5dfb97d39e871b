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
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from nexent.core.db import utcnow
from nexent.engines.container import Engines
from nexent.engines.search.analysis import ANALYSIS_VERSION
from nexent.engines.storage.base import ObjectNotFound
from nexent.jobs.registry import JobContext, JobResult, PermanentJobError, job_handler
from nexent.jobs.service import unfinished_payloads
from nexent.jobs.sweeps import job_sweep
from nexent.knowledge import events
from nexent.knowledge.chunking import Chunk, ChunkSettings, chunk_document, document_text
from nexent.knowledge.embedder import EMBED_BATCH, Embedder, EmbeddingFailed
from nexent.knowledge.metrics import DOCUMENTS, INDEXED_CHUNKS, INGESTED_BYTES
from nexent.knowledge.models import FINAL_STATUSES, DocumentStatus, KnowledgeBase, KnowledgeChunk, KnowledgeDocument
from nexent.knowledge.parsing import Block, ParsedDocument, ParseFailure, ParseLimits, ParserPool, parser_pool
from nexent.knowledge.previews import EAGER_PAGES, TEXT_PREVIEW_CHARS, Box, ChunkSpan, locate_chunks
from nexent.knowledge.repository import (
    ChunkRepository,
    DocumentRepository,
    KnowledgeBaseRepository,
    StuckDocumentRepository,
)
from nexent.knowledge.service import (
    INDEX_DOCUMENT,
    PREVIEW,
    REEMBED,
    SUMMARIZE,
    acting_caller,
    indexed_chunk,
    live_indexes,
    preview_key,
    preview_pages,
    queue_processing,
    stored_preview,
)
from nexent.providers.models import ModelKind
from nexent.providers.service import NoDefaultModel, ProviderService
from nexent.providers.types import ProviderError, complete

logger = logging.getLogger("nexent.knowledge")

SWEEP_BATCH = 200
INDEX_BATCH = 500  # Milvus takes at most 500 rows an insert
SUMMARY_DELAY_SECONDS = 2.0
_BUSY = (DocumentStatus.QUEUED, DocumentStatus.PARSING, DocumentStatus.EMBEDDING)
_SUMMARY_PROMPT = (
    "Below are the opening passages of the documents of a knowledge base named {name!r} ({description}). "
    "Write a summary of at most 80 words of what it contains, so that an assistant can decide when to search "
    "it. Answer with the summary only, in the language of the documents.\n\n"
)


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
    analysis: int


@dataclass
class _Work:
    """A document this job still owns, and what processing made of it so far."""

    doc: KnowledgeDocument
    fresh: bool  # no earlier attempt can have written to the index
    chunks: list[KnowledgeChunk] = field(default_factory=list)
    format: str | None = None
    page_count: int | None = None
    text: str | None = None  # the start of the parsed text, stored as the document's text preview


class DocumentBatch:
    """Processes the documents of one job together: small documents arrive in groups (one upload), so that the
    embedding model gets full batches and the index and the database one write per group instead of one per
    document. Each document keeps its own processing token, state and typed failure: one bad file fails alone."""

    def __init__(self, engines: Engines, tenant_id: uuid.UUID, tokens: dict[uuid.UUID, uuid.UUID]) -> None:
        self.engines = engines
        self.tenant_id = tenant_id
        self.tokens = tokens
        self.work: dict[uuid.UUID, _Work] = {}

    async def _transition(
        self, changes: dict[uuid.UUID, dict[str, Any]]
    ) -> tuple[list[KnowledgeDocument], KnowledgeBase | None]:
        """Apply each document's changes if this job still owns it, in one transaction, and publish the new states.
        Documents re-indexed or deleted meanwhile are dropped from the batch."""
        changed: list[KnowledgeDocument] = []
        async with self.engines.sessions() as session, session.begin():
            docs = await DocumentRepository(session, self.tenant_id).of_ids(changes)
            kb_ids = {d.knowledge_base_id for d in docs.values()}
            kbs = await KnowledgeBaseRepository(session, self.tenant_id).of_ids(kb_ids)
            kb = kbs[0] if kbs else None
            for doc_id, fields in changes.items():
                doc = docs.get(doc_id)
                if (
                    doc is None
                    or kb is None
                    or doc.knowledge_base_id != kb.id
                    or doc.job_id != self.tokens[doc_id]
                    or doc.status in FINAL_STATUSES
                ):
                    self.work.pop(doc_id, None)  # re-indexed, deleted, or already finished by an earlier attempt
                    continue
                for name, value in fields.items():
                    setattr(doc, name, value)
                changed.append(doc)
        for doc in changed:
            if doc.status == DocumentStatus.FAILED:
                DOCUMENTS.labels(f"failed:{doc.error_code}").inc()
            await events.publish_document(self.engines, doc)
        return changed, kb

    async def fail(self, failures: dict[uuid.UUID, tuple[str, str]]) -> None:
        """Mark documents `failed` with a typed error (those this job still owns)."""
        if failures:
            await self._transition({doc_id: _failed(code, message) for doc_id, (code, message) in failures.items()})
            for doc_id in failures:
                self.work.pop(doc_id, None)

    async def run(self, attempt: int, *, last_attempt: bool) -> JobResult:
        start = {"status": DocumentStatus.PARSING, "progress": 0.05, "error_code": None, "error_message": None}
        async with self.engines.sessions() as session:  # could an earlier attempt have written to the index?
            before = await DocumentRepository(session, self.tenant_id).of_ids(self.tokens)
        docs, kb = await self._transition({doc_id: {**start, "attempts": attempt} for doc_id in self.tokens})
        if kb is None:
            return {"skipped": "superseded"}
        for doc in docs:
            earlier = before[doc.id]
            self.work[doc.id] = _Work(doc, fresh=earlier.attempts == 0 and earlier.indexed_at is None)
        failures = await self._parse(kb)
        await self._transition(
            {
                doc_id: _failed(*failures[doc_id])
                if doc_id in failures
                else {
                    "status": DocumentStatus.EMBEDDING,
                    "progress": 0.2,
                    "format": w.format,
                    "page_count": w.page_count,
                }
                for doc_id, w in self.work.items()
            }
        )
        for doc_id in failures:
            self.work.pop(doc_id, None)
        if not self.work:
            return {"documents": 0, "failed": len(failures)}
        targets = [_Target(*t) for t in live_indexes(kb)]
        try:
            vectors = [
                await self._embed(target, number, len(targets), last_attempt) for number, target in enumerate(targets)
            ]
        except DocumentFailed as failure:
            await self.fail({doc_id: (failure.code, failure.message) for doc_id in self.work})
            return {"documents": 0, "failed": len(failures) + len(self.work)}
        for target, target_vectors in zip(targets, vectors, strict=True):
            for w in self.work.values():
                if not w.fresh:
                    await self.engines.search.delete(target.name, document_id=w.doc.id.hex)
            chunks = [c for w in self.work.values() for c in w.chunks]
            docs_by_id = {w.doc.id: w.doc for w in self.work.values()}
            rows = [indexed_chunk(c, target_vectors[c.id], docs_by_id[c.document_id], target.analysis) for c in chunks]
            for offset in range(0, len(rows), INDEX_BATCH):
                await self.engines.search.upsert(target.name, rows[offset : offset + INDEX_BATCH])
        indexed = await self._finish()
        # Counted after our own commit, so whichever batch of a knowledge base finishes last sees none left.
        async with self.engines.sessions() as session:
            busy = await DocumentRepository(session, self.tenant_id).count(
                KnowledgeDocument.knowledge_base_id == kb.id, KnowledgeDocument.status.in_(_BUSY)
            )
        if indexed and not busy:
            await self.engines.queue.enqueue(
                SUMMARIZE,
                {"knowledge_base_id": str(kb.id)},
                tenant_id=self.tenant_id,
                delay_seconds=SUMMARY_DELAY_SECONDS,
            )
        return {"documents": indexed, "failed": len(failures), "chunks": sum(len(w.chunks) for w in self.work.values())}

    async def _parse(self, kb: KnowledgeBase) -> dict[uuid.UUID, tuple[str, str]]:
        """Read, parse and chunk every document; returns the typed failures."""
        settings = self.engines.settings
        limits = ParseLimits(max_bytes=settings.knowledge_max_file_bytes, ocr=settings.knowledge_ocr)
        chunk_settings = ChunkSettings(target_chars=kb.chunk_target_chars, overlap_chars=kb.chunk_overlap_chars)
        pool = parser_pool(settings.knowledge_parse_memory_mb, settings.knowledge_parse_processes)
        failures: dict[uuid.UUID, tuple[str, str]] = {}
        for doc_id, w in self.work.items():
            try:
                data = await self.engines.storage.get(w.doc.storage_key)
            except ObjectNotFound:
                failures[doc_id] = ("file_missing", "The uploaded file is no longer in storage; upload it again.")
                continue
            try:
                if w.doc.row_id is not None:  # a row of a structured import: its text, stored as is
                    parsed = ParsedDocument(format=w.doc.format or "txt", blocks=[Block("paragraph", data.decode())])
                    pieces = chunk_document(parsed, chunk_settings)
                    boxes: list[Box | None] = [None] * len(pieces)
                    w.text = document_text(parsed)[:TEXT_PREVIEW_CHARS]
                else:
                    parsed, pieces, boxes, w.text = await asyncio.to_thread(
                        _parse_and_chunk, data, w.doc, limits, chunk_settings, pool
                    )
            except ParseFailure as failure:
                failures[doc_id] = (failure.code, failure.message)
                continue
            if not pieces:
                failures[doc_id] = ("empty", "The document has no text to index.")
                continue
            w.format, w.page_count = parsed.format, parsed.page_count
            w.chunks = [
                KnowledgeChunk(
                    id=uuid.uuid4(),
                    tenant_id=self.tenant_id,
                    knowledge_base_id=kb.id,
                    document_id=doc_id,
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
                    caption=piece.caption,
                    box=list(box) if box else None,
                )
                for piece, box in zip(pieces, boxes, strict=True)
            ]
        return failures

    async def _embed(self, target: _Target, number: int, of: int, last_attempt: bool) -> dict[uuid.UUID, list[float]]:
        """Vectors of every chunk of the batch for one index, by chunk id, in calls of up to EMBED_BATCH texts."""
        if target.model_id is None:
            raise DocumentFailed("embedding_failed", "The knowledge base's embedding model was deleted.")
        creator = next(iter(self.work.values())).doc.created_by
        async with self.engines.sessions() as session:
            client = await ProviderService(session, self.engines, acting_caller(self.tenant_id, creator)).client(
                target.model_id
            )
        chunks = [c for w in self.work.values() for c in w.chunks]
        embedder = Embedder(client, purpose="index", dimension=target.dimension)
        vectors: dict[uuid.UUID, list[float]] = {}
        batches = embedder.batches([c.text for c in chunks])
        while True:
            try:
                offset, batch = await anext(batches)
            except StopAsyncIteration:
                break
            except EmbeddingFailed as failure:
                if failure.retryable and not last_attempt:
                    raise  # the job retries with backoff
                raise DocumentFailed(failure.code, failure.message) from None
            for chunk, vector in zip(chunks[offset : offset + len(batch)], batch, strict=True):
                vectors[chunk.id] = vector
            if len(vectors) < len(chunks):  # the last call's progress is the final state, written next
                progress: dict[uuid.UUID, dict[str, Any]] = {}
                for doc_id, w in self.work.items():
                    done = sum(1 for c in w.chunks if c.id in vectors) / len(w.chunks)
                    progress[doc_id] = {"progress": round(0.2 + 0.7 * (number + done) / of, 3)}
                await self._transition(progress)
        return vectors

    async def _finish(self) -> int:
        """Store the chunks and mark the documents `indexed`, in one transaction, after the index was written."""
        finished: list[KnowledgeDocument] = []
        async with self.engines.sessions() as session, session.begin():
            docs = await DocumentRepository(session, self.tenant_id).of_ids(self.work)
            chunks = ChunkRepository(session, self.tenant_id)
            stale = [doc_id for doc_id, w in self.work.items() if not w.fresh]
            if stale:
                await chunks.delete_of_documents(stale)
            now = utcnow()
            for doc_id, w in list(self.work.items()):
                doc = docs.get(doc_id)
                if doc is None or doc.job_id != self.tokens[doc_id]:
                    del self.work[doc_id]
                    continue
                doc.status, doc.progress, doc.chunk_count, doc.indexed_at = (
                    DocumentStatus.INDEXED,
                    1.0,
                    len(w.chunks),
                    now,
                )
                doc.format, doc.page_count = w.format, w.page_count
                finished.append(doc)
            await chunks.add_all([c for w in self.work.values() for c in w.chunks])
        DOCUMENTS.labels("indexed").inc(len(finished))
        INGESTED_BYTES.inc(sum(doc.size for doc in finished))
        INDEXED_CHUNKS.inc(sum(doc.chunk_count for doc in finished))
        for doc in finished:
            await events.publish_document(self.engines, doc)
        await self._previews(finished)
        return len(finished)

    async def _previews(self, finished: list[KnowledgeDocument]) -> None:
        """Store each document's text preview and queue the rendering of its pages. Previews help people read
        what was indexed; a failure here is logged (and made again on the first request), never the document's."""
        with_pages = []
        for doc in finished:
            w = self.work.get(doc.id)
            try:
                if w is not None and w.text is not None:
                    await self.engines.storage.put(preview_key(doc, "text.txt"), w.text.encode())
                await self.engines.storage.delete(preview_key(doc, "error.json"))
            except Exception:
                logger.warning("could not store the text preview of document %s", doc.id, exc_info=True)
            if preview_pages(doc):
                with_pages.append(str(doc.id))
        if with_pages:
            try:
                await self.engines.queue.enqueue(PREVIEW, {"documents": with_pages}, tenant_id=self.tenant_id)
            except Exception:
                logger.warning("could not queue the previews of %d document(s)", len(with_pages), exc_info=True)


def _failed(code: str, message: str) -> dict[str, Any]:
    return {"status": DocumentStatus.FAILED, "error_code": code, "error_message": message[:2000]}


def _parse_and_chunk(
    data: bytes, doc: KnowledgeDocument, limits: ParseLimits, settings: ChunkSettings, pool: ParserPool
) -> tuple[ParsedDocument, list[Chunk], list[Box | None], str]:
    """The parsed document, its chunks, where each chunk is on its page (PDFs) and the text preview."""
    parsed = pool.parse(data, doc.file_name, doc.content_type, limits)
    chunks = chunk_document(parsed, settings)
    text = document_text(parsed)
    boxes: list[Box | None] = [None] * len(chunks)
    if parsed.format == "pdf":
        spans = [ChunkSpan(text[c.start : c.end], c.page, c.page_end) for c in chunks]
        try:  # positions are a help for citations: a failure leaves the chunks without, never the document
            boxes = locate_chunks(data, spans)
        except Exception:
            logger.warning("could not locate the chunks of document %s on their pages", doc.id, exc_info=True)
    return parsed, chunks, boxes, text[:TEXT_PREVIEW_CHARS]


def _ids(ctx: JobContext, *keys: str) -> tuple[uuid.UUID, ...]:
    if ctx.tenant_id is None:
        raise PermanentJobError("a knowledge job needs its tenant")
    try:
        return tuple(uuid.UUID(str(ctx.payload[key])) for key in keys)
    except (KeyError, ValueError):
        raise PermanentJobError(f"a knowledge job needs {', '.join(keys)}") from None


@job_handler(INDEX_DOCUMENT)
async def index_documents(ctx: JobContext) -> JobResult:
    """Parse, chunk, embed and index a group of documents (or one), each ending `indexed` or `failed` with a typed
    error. The payload lists `documents` with their processing tokens (an older payload names one document)."""
    if ctx.tenant_id is None:
        raise PermanentJobError("a knowledge job needs its tenant")
    listed = ctx.payload.get("documents", [ctx.payload])
    try:
        tokens = {uuid.UUID(str(item["document_id"])): uuid.UUID(str(item["token"])) for item in listed}
    except (KeyError, TypeError, ValueError):
        raise PermanentJobError("a knowledge job needs documents with their tokens") from None
    batch = DocumentBatch(ctx.engines, ctx.tenant_id, tokens)
    try:
        return await batch.run(ctx.attempt, last_attempt=ctx.last_attempt)
    except Exception:
        if ctx.last_attempt:
            message = "Processing failed repeatedly; re-index the document to retry."
            await batch.fail({doc_id: ("processing_failed", message) for doc_id in batch.work})
        raise


@job_handler(PREVIEW)
async def generate_previews(ctx: JobContext) -> JobResult:
    """Render the thumbnail and the first `EAGER_PAGES` pages of indexed PDFs and images into object storage
    (later pages are rendered on their first request). A document that cannot be previewed gets its failure
    recorded beside its previews (`error.json`, shown by `GET .../preview`); the job goes on with the others."""
    if ctx.tenant_id is None:
        raise PermanentJobError("a knowledge job needs its tenant")
    try:
        ids = [uuid.UUID(str(item)) for item in ctx.payload["documents"]]
    except (KeyError, TypeError, ValueError):
        raise PermanentJobError("a preview job needs its documents") from None
    engines = ctx.engines
    async with engines.sessions() as session:
        docs = await DocumentRepository(session, ctx.tenant_id).of_ids(ids)
    rendered = failed = 0
    for doc in docs.values():
        if doc.status != DocumentStatus.INDEXED:
            continue
        parts = ["thumbnail", *(f"page-{n}" for n in range(1, min(preview_pages(doc), EAGER_PAGES) + 1))]
        try:
            for part in parts:
                await stored_preview(engines, doc, part)
                rendered += 1
        except Exception as exc:  # recorded for the document, whatever it was; the others still get theirs
            failed += 1
            code = str(getattr(exc, "extra", {}).get("reason") or getattr(exc, "code", "preview_failed"))
            message = str(getattr(exc, "detail", "")) or "The document's pages could not be rendered."
            logger.warning("preview of document %s failed: %s", doc.id, code, exc_info=not hasattr(exc, "code"))
            try:
                await engines.storage.put(
                    preview_key(doc, "error.json"), json.dumps({"code": code, "message": message}).encode()
                )
            except Exception:
                logger.warning("could not record the preview failure of document %s", doc.id, exc_info=True)
    return {"rendered": rendered, "failed": failed}


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
    embedder = Embedder(client, purpose="reembed", dimension=dimension)
    after: uuid.UUID | None = None
    done = 0
    while True:
        async with engines.sessions() as session:
            batch = await ChunkRepository(session, tenant_id).batch_of_kb(kb_id, after=after, limit=EMBED_BATCH)
            docs = {d.id: d for d in await DocumentRepository(session, tenant_id).of_kb(kb_id)} if batch else {}
        if not batch:
            break
        try:
            vectors = await embedder.embed([c.text for c in batch])
        except EmbeddingFailed as failure:
            if failure.retryable and not ctx.last_attempt:
                raise
            if failure.provider_error is None:
                raise PermanentJobError("the new embedding model changed its dimension") from None
            raise PermanentJobError(f"the new embedding model failed: {failure.provider_error.code.value}") from None
        rows = [indexed_chunk(c, v, docs[c.document_id], ANALYSIS_VERSION) for c, v in zip(batch, vectors, strict=True)]
        await engines.search.upsert(target, rows)
        after, done = batch[-1].id, done + len(batch)
    async with engines.sessions() as session, session.begin():
        kb = await KnowledgeBaseRepository(session, tenant_id).lock(kb_id)
        if kb is None or kb.reembed_job_id != token:
            return {"skipped": "superseded"}
        old = kb.index_name
        kb.index_name, kb.embedding_model_id = target, kb.pending_embedding_model_id
        kb.embedding_dimension, kb.analysis_version = dimension, ANALYSIS_VERSION
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
            if kb.conversation_id is not None:  # a conversation's index is searched by its file names alone
                return {"skipped": "conversation index"}
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


@job_sweep("knowledge.stuck_documents")
async def resume_stuck_documents(engines: Engines) -> int:
    """Queue again the documents left in processing for `knowledge_stuck_seconds` with no job queued or running
    for them (their job was lost, or ended without recording it on the document): each gets a new processing
    token and a new job, written in one transaction. A document whose job had started its last allowed attempt
    (its worker died there, as a file that kills workers would do every time) fails with `processing_failed`
    instead, so that no document stays in processing, and none is retried forever. Returns how many it ended
    or resumed."""
    deadline = utcnow() - timedelta(seconds=engines.settings.knowledge_stuck_seconds)
    async with engines.sessions() as session:
        stuck = await StuckDocumentRepository(session).stuck(before=deadline, limit=SWEEP_BATCH)
    if not stuck:
        return 0
    covered = {
        str(item.get("document_id"))
        for payload in await unfinished_payloads(engines, INDEX_DOCUMENT)
        for item in payload.get("documents", [payload])
        if isinstance(item, dict)
    }
    resumed: list[KnowledgeDocument] = []
    async with engines.sessions() as session, session.begin():
        repo = StuckDocumentRepository(session)
        by_tenant: dict[uuid.UUID, list[KnowledgeDocument]] = {}
        for doc in stuck:
            if str(doc.id) in covered:
                continue  # a job will get to it: only a slow queue
            if doc.status != DocumentStatus.QUEUED and doc.attempts >= engines.settings.knowledge_max_attempts:
                changes = _failed("processing_failed", "Processing stopped repeatedly; re-index the document to retry.")
                if await repo.claim(doc.id, token=doc.job_id, before=deadline, changes=changes):
                    for name, value in changes.items():
                        setattr(doc, name, value)
                    DOCUMENTS.labels("failed:processing_failed").inc()
                    resumed.append(doc)
                continue
            changes = {"status": DocumentStatus.QUEUED, "progress": 0.0, "job_id": uuid.uuid4()}
            if await repo.claim(doc.id, token=doc.job_id, before=deadline, changes=changes):
                for name, value in changes.items():
                    setattr(doc, name, value)
                by_tenant.setdefault(doc.tenant_id, []).append(doc)
                resumed.append(doc)
        queued = []
        for tenant_id, docs in by_tenant.items():
            queued += await queue_processing(session, engines, tenant_id, docs)
    await engines.queue.dispatch(queued)
    for doc in resumed:
        await events.publish_document(engines, doc)
    return len(resumed)


async def rebuild_indexes(engines: Engines, tenant_id: uuid.UUID) -> int:
    """Build every search index of the tenant's knowledge bases anew from the chunks the database holds (their
    vectors are not kept there: each chunk is embedded again with its index's model). A restored backup calls it
    (`nexent admin restore`, `nexent admin rebuild-search`). Returns how many chunks were indexed; an index whose
    model was deleted is left empty (as its searches already were)."""
    async with engines.sessions() as session:
        bases = await KnowledgeBaseRepository(session, tenant_id).meeting(KnowledgeBase.id.is_not(None))
    indexed = 0
    for kb in bases:
        docs: dict[uuid.UUID, KnowledgeDocument] = {}
        for name, model_id, dimension, analysis in live_indexes(kb):
            await engines.search.drop_index(name)
            await engines.search.create_index(name, dimension)
            if model_id is None:
                continue
            async with engines.sessions() as session:
                client = await ProviderService(session, engines, acting_caller(tenant_id, kb.created_by)).client(
                    model_id
                )
                if not docs:
                    docs = {d.id: d for d in await DocumentRepository(session, tenant_id).of_kb(kb.id)}
            embedder = Embedder(client, purpose="reembed", dimension=dimension)
            after: uuid.UUID | None = None
            while True:
                async with engines.sessions() as session:
                    batch = await ChunkRepository(session, tenant_id).batch_of_kb(kb.id, after=after, limit=EMBED_BATCH)
                if not batch:
                    break
                vectors = await embedder.embed([c.text for c in batch])
                rows = [indexed_chunk(c, v, docs[c.document_id], analysis) for c, v in zip(batch, vectors, strict=True)]
                for offset in range(0, len(rows), INDEX_BATCH):
                    await engines.search.upsert(name, rows[offset : offset + INDEX_BATCH])
                after, indexed = batch[-1].id, indexed + len(batch)
    return indexed
