"""Knowledge bases: creation with an embedding model, uploads, documents and chunks, search, sharing.

Access follows agents: members who manage knowledge see and change every knowledge base of the tenant; others
see those shared with their groups, and change them where the share grants edit rights.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core import tracing
from nexent.core.errors import AppError, Conflict, NotFound
from nexent.core.pagination import Page, PageParams
from nexent.core.references import refuse_if_used
from nexent.engines.container import Engines
from nexent.engines.queue import QueuedJob
from nexent.engines.search.analysis import ANALYSIS_VERSION
from nexent.engines.search.base import IndexedChunk, SearchHit, SearchRequest
from nexent.engines.search.languages import query_languages, vector_weight_for
from nexent.engines.storage.base import ObjectNotFound
from nexent.identity.auth import Caller
from nexent.identity.models import Role, SharePermission
from nexent.identity.permissions import Permission
from nexent.identity.schemas import ShareRead
from nexent.identity.services.audit import record
from nexent.identity.services.sharing import Granted, ResourceAccess, Shareable, ShareService
from nexent.knowledge import events
from nexent.knowledge.chunking import document_text
from nexent.knowledge.embedder import Embedder, EmbeddingFailed
from nexent.knowledge.models import FINAL_STATUSES, DocumentStatus, KnowledgeBase, KnowledgeChunk, KnowledgeDocument
from nexent.knowledge.parsing import ParseFailure, ParseLimits, detect_format, parser_pool
from nexent.knowledge.previews import (
    PAGE_WIDTH,
    PREVIEW_VERSION,
    TEXT_PREVIEW_CHARS,
    THUMBNAIL_WIDTH,
    PreviewFailed,
    preview_kind,
    render_page,
)
from nexent.knowledge.repository import ChunkRepository, DocumentRepository, KnowledgeBaseRepository
from nexent.knowledge.rows import Row, RowFileRefused, RowLimits, RowOptions, row_format, split_rows
from nexent.knowledge.schemas import (
    ChunkDetail,
    ChunkingIn,
    ChunkRead,
    ChunkUpdate,
    DocumentError,
    DocumentRead,
    DocumentRow,
    DocumentTable,
    KnowledgeBaseCreate,
    KnowledgeBaseRead,
    KnowledgeBaseUpdate,
    PreviewError,
    PreviewRead,
    ReembedState,
    RejectedFile,
    RejectedRow,
    SearchHitRead,
    SearchIn,
    SearchResult,
    SearchTimings,
    SearchWeights,
    UploadedDocument,
    UploadResult,
)
from nexent.knowledge.tables import document_tables
from nexent.providers.models import ModelKind
from nexent.providers.service import ProviderService, default_model_facts, model_facts
from nexent.providers.types import ProviderError

RESOURCE = "knowledge_base"
KNOWLEDGE = Shareable(RESOURCE, manage=Permission.MANAGE_KNOWLEDGE)
INDEX_DOCUMENT = "knowledge.index_document"
REEMBED = "knowledge.reembed"
SUMMARIZE = "knowledge.summarize"
PREVIEW = "knowledge.preview"
MAX_FILES_PER_UPLOAD = 100


class KnowledgeBaseNotFound(NotFound):
    code = "knowledge_base_not_found"


class DocumentNotFound(NotFound):
    code = "document_not_found"


class ChunkNotFound(NotFound):
    code = "chunk_not_found"


class DocumentFileMissing(NotFound):
    code = "file_missing"


class PreviewNotFound(NotFound):
    """The document has no such preview: no page of that number, or no page images for its format."""

    code = "preview_not_found"


class PreviewNotReady(Conflict):
    code = "document_not_indexed"


class PreviewUnavailable(Conflict):
    """The file cannot be previewed; `reason` is a stable code (`corrupt_file`, `encrypted`, `too_large`...)."""

    code = "preview_failed"


@dataclass(frozen=True)
class PreviewFile:
    """A preview's bytes (None when the caller's copy is current: answer 304), its media type and ETag."""

    data: bytes | None
    media_type: str
    etag: str


@dataclass(frozen=True)
class StoredFile:
    """An uploaded file being read from object storage: its document and its bytes in pieces."""

    document: KnowledgeDocument
    content: AsyncIterator[bytes]


class InvalidKnowledgeBase(AppError):
    """A knowledge base that points at models that do not exist or do not fit; `errors` names each field."""

    status, code = 422, "invalid_knowledge_base"


class ModelCallFailed(AppError):
    """The embedding or rerank model did not answer; `model_error` carries the provider's classification."""

    status, code = 502, "model_call_failed"


class EmbeddingModelMissing(Conflict):
    code = "embedding_model_missing"


@dataclass
class _Upload:
    """What an upload made so far: documents in the order of the files (duplicate? replaced?), refusals."""

    uploaded: list[tuple[KnowledgeDocument, bool, bool]] = dataclasses.field(default_factory=list)
    created: list[KnowledgeDocument] = dataclasses.field(default_factory=list)
    replaced: list[KnowledgeDocument] = dataclasses.field(default_factory=list)
    rejected: list[RejectedFile] = dataclasses.field(default_factory=list)
    rejected_rows: list[RejectedRow] = dataclasses.field(default_factory=list)
    row_sources: set[str] = dataclasses.field(default_factory=set)  # files imported row by row


@dataclass(frozen=True)
class IncomingFile:
    """A file of an upload request, already read (the route bounds its size)."""

    file_name: str
    content_type: str | None
    data: bytes
    too_large: bool = False


# A knowledge base users see: not a conversation's index of its attachments, which only that conversation's runs
# search (docs/attachments.md).
SHARED_BASE = KnowledgeBase.conversation_id.is_(None)
# How long a run waits for its long attachments to be indexed before it fails them.
CONVERSATION_INDEX_WAIT_SECONDS = 300.0


class ConversationFileNotIndexed(AppError):
    """An attachment could not be indexed for its conversation; `code` says why (the upload's or parse's code)."""

    status, code = 422, "not_indexed"


def acting_caller(tenant_id: uuid.UUID, user_id: uuid.UUID | None) -> Caller:
    """Who background work and agents' searches act for: the user behind them, with a member's rights, in
    their tenant (model usage is metered to it)."""
    return Caller(user_id=user_id or uuid.UUID(int=0), tenant_id=tenant_id, role=Role.USER)


def index_name_for(kb_id: uuid.UUID, *, generation: uuid.UUID | None = None) -> str:
    """A search index name; a new generation when the knowledge base is re-embedded with another model."""
    return f"kb_{(generation or kb_id).hex}"


def storage_key(doc: KnowledgeDocument) -> str:
    return f"knowledge/{doc.tenant_id}/{doc.knowledge_base_id}/{doc.id}"


def model_call_failed(exc: ProviderError, what: str) -> ModelCallFailed:
    return ModelCallFailed(f"The {what} model failed: {exc.message}", extra={"model_error": {"code": exc.code.value}})


def _embedding_call_failed(failure: EmbeddingFailed) -> AppError:
    """What a request answers when embedding fails: 502 with the model's error, 409 for a changed dimension."""
    if failure.provider_error is not None:
        return model_call_failed(failure.provider_error, "embedding")
    return Conflict(failure.message, code=failure.code)


async def embedding_dimension(providers: ProviderService, model_id: uuid.UUID) -> int:
    """The model's vector length: the one its check recorded, or one probe call."""
    config = await model_facts(providers.session, providers.caller.tenant_id, model_id)
    if config is not None and config.dimension:
        return config.dimension
    embedder = Embedder(await providers.client(model_id), purpose="probe")
    try:
        vector = await embedder.embed_one("dimension probe")
    except EmbeddingFailed as failure:
        raise _embedding_call_failed(failure) from None
    return len(vector)


async def readable_knowledge_base_ids(
    session: AsyncSession, caller: Caller, kb_ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """Those of `kb_ids` that are knowledge bases of the caller's tenant which the caller may read: what an agent's
    editor may attach to it (an agent searches its knowledge bases for all its users)."""
    access = ResourceAccess(session, caller, KNOWLEDGE)
    bases = await KnowledgeBaseRepository(session, caller.tenant_id).of_ids(
        kb_ids, where=and_(access.readable(KnowledgeBase.id), SHARED_BASE)
    )
    return {kb.id for kb in bases}


@dataclass(frozen=True)
class KnowledgeBaseLabel:
    """A knowledge base as another domain names it (agent import and export, agent generation)."""

    id: uuid.UUID
    name: str
    description: str
    summary: str

    @property
    def about(self) -> str:
        """What it holds: its description, else its summary."""
        return self.description or self.summary


async def readable_knowledge_bases(
    session: AsyncSession, caller: Caller, kb_ids: Collection[uuid.UUID] | None = None
) -> list[KnowledgeBaseLabel]:
    """The knowledge bases of the caller's tenant that the caller may read (those of `kb_ids` when given), by
    name."""
    access = ResourceAccess(session, caller, KNOWLEDGE)
    repository = KnowledgeBaseRepository(session, caller.tenant_id)
    where = and_(access.readable(KnowledgeBase.id), SHARED_BASE)
    bases = await (repository.meeting(where) if kb_ids is None else repository.of_ids(kb_ids, where=where))
    return sorted(
        (KnowledgeBaseLabel(kb.id, kb.name, kb.description, kb.summary or "") for kb in bases), key=lambda kb: kb.name
    )


# Small documents are processed in groups, one job each: the embedding model then gets full batches and the index
# and the database one write per group. Large files and images (OCR takes seconds) get a job of their own, so
# that they spread over the workers.
GROUP_MAX_DOCUMENTS = 64
# Rows of a structured import need no parsing (their text is stored as is) and are short: larger groups, one
# embedding call of up to 256 texts each.
ROW_GROUP_MAX_DOCUMENTS = 256
GROUP_MAX_FILE_BYTES = 256 * 1024
_SLOW_FORMATS = frozenset({"png", "jpeg", "gif", "bmp", "tiff", "webp", "zip"})
_STORAGE_WRITES = 16  # object writes of one upload in flight at once (the rows of a structured import)


def _processing_groups(docs: Sequence[KnowledgeDocument]) -> list[list[KnowledgeDocument]]:
    """Jobs for `docs`: small documents of one knowledge base in evenly sized groups (rows of structured imports
    apart), the others alone."""
    small: dict[tuple[uuid.UUID, bool], list[KnowledgeDocument]] = {}
    groups: list[list[KnowledgeDocument]] = []
    for doc in docs:
        if doc.row_id is not None:
            small.setdefault((doc.knowledge_base_id, True), []).append(doc)
        elif doc.size <= GROUP_MAX_FILE_BYTES and doc.format not in _SLOW_FORMATS:
            small.setdefault((doc.knowledge_base_id, False), []).append(doc)
        else:
            groups.append([doc])
    for (_, rows), members in small.items():
        count = -(-len(members) // (ROW_GROUP_MAX_DOCUMENTS if rows else GROUP_MAX_DOCUMENTS))
        groups += [members[index::count] for index in range(count)]
    return groups


async def queue_processing(
    session: AsyncSession, engines: Engines, tenant_id: uuid.UUID, docs: Sequence[KnowledgeDocument]
) -> list[QueuedJob]:
    """Write the jobs that process `docs` (with their current tokens) in the session's transaction; the caller
    dispatches them after its commit. The documents and their jobs are committed together, so neither exists
    without the other: a process that dies after the commit leaves jobs the workers find in the table."""
    attempts = engines.settings.knowledge_max_attempts
    jobs = []
    for group in _processing_groups(docs):
        payload = {"documents": [{"document_id": str(d.id), "token": str(d.job_id)} for d in group]}
        job = await engines.queue.add(session, INDEX_DOCUMENT, payload, tenant_id=tenant_id, max_attempts=attempts)
        jobs.append(job)
    return jobs


class KnowledgeService:
    def __init__(self, session: AsyncSession, engines: Engines, caller: Caller) -> None:
        self.session = session
        self.engines = engines
        self.caller = caller
        self.bases = KnowledgeBaseRepository(session, caller.tenant_id)
        self.documents = DocumentRepository(session, caller.tenant_id)
        self.chunks = ChunkRepository(session, caller.tenant_id)
        self.shares = ShareService(session, caller)
        self.providers = ProviderService(session, engines, caller)
        self.access = ResourceAccess(session, caller, KNOWLEDGE)
        # Jobs written in the request's transaction, dispatched to the workers once it is committed.
        self._queued: list[QueuedJob] = []
        self._to_process: list[KnowledgeDocument] = []

    async def start_jobs(self) -> None:
        """Tell the workers about the jobs the committed changes wrote. Call after the commit, never before."""
        await self.engines.queue.dispatch(self._queued)
        for doc in self._to_process:
            await events.publish_document(self.engines, doc)
        self._queued, self._to_process = [], []

    # --- access -------------------------------------------------------------------------------------------------

    async def reach(self, kb_id: uuid.UUID) -> Granted[KnowledgeBase]:
        """The knowledge base if the caller may read it (a 404 otherwise, as for another tenant's), and whether they
        may change it: what `knowledge/auth.py` gives the routes."""
        found = await self.bases.get_checked(
            kb_id,
            where=and_(self.access.readable(KnowledgeBase.id), SHARED_BASE),
            flag=self.access.editable(KnowledgeBase.id),
        )
        if found is None:
            raise KnowledgeBaseNotFound(f"No knowledge base {kb_id} in this tenant.")
        kb, can_edit = found
        return Granted(self.caller, kb, can_edit)

    async def readable(self, kb_ids: Collection[uuid.UUID] | None = None) -> list[KnowledgeBase]:
        """The knowledge bases the caller may read (those of `kb_ids` when given), by name."""
        where = and_(self.access.readable(KnowledgeBase.id), SHARED_BASE)
        return await (self.bases.meeting(where) if kb_ids is None else self.bases.of_ids(kb_ids, where=where))

    async def attached(self, kb_ids: Sequence[uuid.UUID]) -> list[KnowledgeBase]:
        """An agent's knowledge bases in this tenant, without share checks: whoever may edit the agent chose them."""
        found = {kb.id: kb for kb in await self.bases.of_ids(kb_ids)}
        return [found[i] for i in kb_ids if i in found]

    # --- knowledge bases ----------------------------------------------------------------------------------------

    async def create(self, data: KnowledgeBaseCreate) -> KnowledgeBaseRead:
        """A new knowledge base (the route's `KnowledgeManager` checked the caller's role)."""
        await self._check_name(data.name)
        embedding_model_id = data.embedding_model_id or await self._default_embedding_model()
        await self._check_models(embedding_model_id, data.rerank_model_id)
        dimension = await embedding_dimension(self.providers, embedding_model_id)
        kb = KnowledgeBase(
            id=uuid.uuid4(),
            tenant_id=self.caller.tenant_id,
            name=data.name,
            description=data.description,
            embedding_model_id=embedding_model_id,
            embedding_dimension=dimension,
            rerank_model_id=data.rerank_model_id,
            chunk_target_chars=data.chunking.target_chars,
            chunk_overlap_chars=data.chunking.overlap_chars,
            vector_weight=data.vector_weight,
            analysis_version=ANALYSIS_VERSION,
            created_by=self.caller.user_id,
        )
        kb.index_name = index_name_for(kb.id)
        try:
            async with self.session.begin_nested():
                await self.bases.add(kb)
        except IntegrityError:
            raise Conflict(f"A knowledge base named {data.name!r} exists.", code="knowledge_base_name_taken") from None
        await self.engines.search.create_index(kb.index_name, dimension)
        await record(self.session, self.caller, "knowledge_base.created", RESOURCE, kb.id, name=kb.name)
        return await self._read(kb, can_edit=True)

    async def _default_embedding_model(self) -> uuid.UUID:
        config = await default_model_facts(self.session, self.caller.tenant_id, ModelKind.EMBEDDING)
        if config is None:
            raise InvalidKnowledgeBase(
                "This tenant has no default embedding model; add one under models or pick one.",
                extra={"errors": [_error(["embedding_model_id"], "No default embedding model.")]},
            )
        return config.id

    async def _check_models(self, embedding_model_id: uuid.UUID | None, rerank_model_id: uuid.UUID | None) -> None:
        errors: list[dict[str, Any]] = []
        for field, model_id, kind in (
            ("embedding_model_id", embedding_model_id, ModelKind.EMBEDDING),
            ("rerank_model_id", rerank_model_id, ModelKind.RERANK),
        ):
            if model_id is None:
                continue
            config = await model_facts(self.session, self.caller.tenant_id, model_id)
            if config is None:
                errors.append(_error([field], "No such model in this tenant."))
            elif config.kind != kind:
                errors.append(_error([field], f"The model is an {config.kind} model; this needs a {kind} model."))
        if errors:
            raise InvalidKnowledgeBase("The knowledge base is not valid.", extra={"errors": errors})

    async def _check_name(self, name: str, *, except_id: uuid.UUID | None = None) -> None:
        if await self.bases.name_taken(name, except_id=except_id):
            raise Conflict(f"A knowledge base named {name!r} exists.", code="knowledge_base_name_taken")

    async def get(self, granted: Granted[KnowledgeBase]) -> KnowledgeBaseRead:
        return await self._read(granted.resource, can_edit=granted.can_edit)

    async def list_bases(self, page: PageParams, *, query: str | None) -> Page[KnowledgeBaseRead]:
        rows, total = await self.bases.page_checked(
            where=and_(self.access.readable(KnowledgeBase.id), SHARED_BASE),
            flag=self.access.editable(KnowledgeBase.id),
            name_contains=query,
            limit=page.limit,
            offset=page.offset,
        )
        counts = await self.documents.status_counts([kb.id for kb, _ in rows])
        items = [_read_kb(kb, counts[kb.id], can_edit=can_edit) for kb, can_edit in rows]
        return Page[KnowledgeBaseRead](items=items, total=total, limit=page.limit, offset=page.offset)

    async def _read(self, kb: KnowledgeBase, *, can_edit: bool) -> KnowledgeBaseRead:
        counts = await self.documents.status_counts([kb.id])
        return _read_kb(kb, counts[kb.id], can_edit=can_edit)

    async def update(self, granted: Granted[KnowledgeBase], data: KnowledgeBaseUpdate) -> KnowledgeBaseRead:
        kb = granted.resource
        changes = data.model_dump(exclude_unset=True)
        new_model = data.embedding_model_id
        reembed = new_model is not None and new_model not in (kb.embedding_model_id, kb.pending_embedding_model_id)
        rebuild = not reembed and bool(data.rebuild_index) and not kb.pending_index_name
        if rebuild and kb.embedding_model_id is None:
            raise EmbeddingModelMissing(
                "The knowledge base's embedding model was deleted; choose another one, which rebuilds the index."
            )
        target = new_model if reembed else kb.embedding_model_id if rebuild else None
        dimension = None
        if target is not None:
            if reembed:
                await self._check_models(target, None)
            # Measured before anything changes: the model call's usage is written from another connection, which
            # must not wait behind this request's write (on SQLite it waited for the busy timeout, found by fuzzing).
            dimension = await embedding_dimension(self.providers, target)
        if data.name is not None:
            await self._check_name(data.name, except_id=kb.id)
            kb.name = data.name
        if data.description is not None:
            kb.description = data.description
        if "rerank_model_id" in changes:
            await self._check_models(None, data.rerank_model_id)
            kb.rerank_model_id = data.rerank_model_id
        if data.chunking is not None:
            kb.chunk_target_chars, kb.chunk_overlap_chars = data.chunking.target_chars, data.chunking.overlap_chars
        if "vector_weight" in changes:
            kb.vector_weight = data.vector_weight
        if target is not None and dimension is not None:
            await self._start_reembed(kb, target, dimension)
        await self.session.flush()
        await record(self.session, self.caller, "knowledge_base.updated", RESOURCE, kb.id, fields=sorted(changes))
        return await self._read(kb, can_edit=True)

    async def _start_reembed(self, kb: KnowledgeBase, model_id: uuid.UUID, dimension: int) -> None:
        """Build a new index with the model beside the current one; the job swaps them when it is complete. The
        model's dimension is known before anything is written, so a mismatch cannot half-fill an index."""
        if kb.pending_index_name:
            await self.engines.search.drop_index(kb.pending_index_name)
        kb.pending_embedding_model_id = model_id
        kb.pending_embedding_dimension = dimension
        kb.pending_index_name = index_name_for(kb.id, generation=uuid.uuid4())
        kb.reembed_job_id = uuid.uuid4()  # the token the job must present; a later change supersedes it
        await self.engines.search.create_index(kb.pending_index_name, dimension)
        payload = {"knowledge_base_id": str(kb.id), "token": str(kb.reembed_job_id)}
        job = await self.engines.queue.add(
            self.session, REEMBED, payload, tenant_id=self.caller.tenant_id, max_attempts=5
        )
        self._queued.append(job)

    async def delete(self, granted: Granted[KnowledgeBase]) -> None:
        kb = granted.resource
        await refuse_if_used(self.session, self.caller.tenant_id, "knowledge_base", kb.id)
        docs = await self.documents.of_kb(kb.id)
        await self.bases.delete(kb)
        for name in (kb.index_name, kb.pending_index_name):
            if name:
                await self.engines.search.drop_index(name)
        await self._in_storage([doc.storage_key for doc in docs])  # deleted
        await self._in_storage(await self.engines.storage.list(f"knowledge/{kb.tenant_id}/{kb.id}/"))  # previews
        await record(self.session, self.caller, "knowledge_base.deleted", RESOURCE, kb.id, name=kb.name)

    # --- a conversation's index of its long attachments ---------------------------------------------------------

    async def conversation_index(self, conversation_id: uuid.UUID) -> tuple[uuid.UUID, list[str]] | None:
        """The conversation's index and the names of the files indexed in it, when it has any."""
        kb = await self.bases.of_conversation(conversation_id)
        if kb is None:
            return None
        docs = await self.documents.of_kb(kb.id, statuses=[DocumentStatus.INDEXED.value])
        if not docs:
            return None
        return kb.id, sorted({doc.file_name for doc in docs})

    async def index_conversation_file(
        self, conversation_id: uuid.UUID, file_name: str, content_type: str | None, data: bytes
    ) -> uuid.UUID:
        """Add a file to the conversation's index (made at its first file, with the tenant's default embedding
        model), through the same upload and processing as any knowledge base's; committed, its job dispatched.
        Answers the document's id; `wait_indexed` waits for it."""
        kb = await self.bases.of_conversation(conversation_id)
        if kb is None:
            created = await self.create(KnowledgeBaseCreate(name=f"Conversation {conversation_id.hex}"))
            kb = await self.bases.get(created.id)
            assert kb is not None
            kb.conversation_id = conversation_id
            kb.description = "The documents attached to a conversation."
            await self.session.flush()
        result = await self.upload(Granted(self.caller, kb, True), [IncomingFile(file_name, content_type, data)], {})
        await self.session.commit()
        await self.start_jobs()
        if result.rejected:
            error = result.rejected[0].error
            raise ConversationFileNotIndexed(error.message, code=error.code)
        return result.documents[0].document.id

    async def wait_indexed(self, doc_id: uuid.UUID) -> int:
        """Wait until the document is indexed (its chunk count), or fail with its error."""
        deadline = time.monotonic() + CONVERSATION_INDEX_WAIT_SECONDS
        while True:
            async with self.engines.sessions() as session:
                doc = await DocumentRepository(session, self.caller.tenant_id).get(doc_id)
            if doc is None:
                raise ConversationFileNotIndexed("The document was deleted while it was indexed.", code="missing")
            if doc.status == DocumentStatus.INDEXED:
                return doc.chunk_count
            if doc.status == DocumentStatus.FAILED:
                raise ConversationFileNotIndexed(
                    doc.error_message or "The document could not be indexed.", code=doc.error_code or "not_indexed"
                )
            if time.monotonic() > deadline:
                raise ConversationFileNotIndexed("The document took too long to index.", code="timeout")
            await asyncio.sleep(0.2)

    async def delete_conversation_bases(self, conversation_id: uuid.UUID) -> None:
        """Delete the conversation's index: its rows, search index and files."""
        kb = await self.bases.of_conversation(conversation_id)
        if kb is not None:
            await self.delete(Granted(self.caller, kb, True))

    # --- sharing ------------------------------------------------------------------------------------------------

    async def shares_of(self, granted: Granted[KnowledgeBase]) -> list[ShareRead]:
        kb = granted.resource
        return await self.shares.list(RESOURCE, kb.id)

    async def share(
        self, granted: Granted[KnowledgeBase], group_id: uuid.UUID, permission: SharePermission
    ) -> ShareRead:
        kb = granted.resource
        return await self.shares.share(RESOURCE, kb.id, group_id, permission)

    async def unshare(self, granted: Granted[KnowledgeBase], group_id: uuid.UUID) -> None:
        kb = granted.resource
        await self.shares.unshare(RESOURCE, kb.id, group_id)

    # --- documents ----------------------------------------------------------------------------------------------

    async def upload(
        self,
        granted: Granted[KnowledgeBase],
        files: Sequence[IncomingFile],
        metadata: dict[str, Any],
        rows: RowOptions | None = None,
    ) -> UploadResult:
        """Store each acceptable file and create its document; refused files are reported, never stored.
        With `rows`, each CSV or JSON Lines file becomes one document per good row instead (`_import_rows`).
        Their processing jobs are written in the same transaction and dispatched by `start_jobs` after the commit."""
        kb = granted.resource
        max_bytes = self.engines.settings.knowledge_max_file_bytes
        upload = _Upload()
        hashes = {id(f): hashlib.sha256(f.data).hexdigest() for f in files}
        seen = await self.documents.by_hashes(kb.id, set(hashes.values())) if rows is None else {}
        for incoming in files:
            name = _clean_file_name(incoming.file_name)
            problem = _refusal(incoming, max_bytes)
            fmt = None
            if problem is None:
                try:
                    fmt = detect_format(incoming.data, name, incoming.content_type)
                except ParseFailure as failure:
                    problem = DocumentError(code=failure.code, message=failure.message)
            if problem is None and rows is not None:
                problem = await self._import_rows(kb, incoming, name, fmt or "", metadata, rows, upload)
                if problem is None:
                    continue
            if problem is not None:
                upload.rejected.append(RejectedFile(file_name=name, error=problem))
                continue
            content_hash = hashes[id(incoming)]
            existing = seen.get(content_hash)
            if existing is not None:
                upload.uploaded.append((existing, True, False))
                continue
            doc = KnowledgeDocument(
                id=uuid.uuid4(),
                tenant_id=self.caller.tenant_id,
                knowledge_base_id=kb.id,
                file_name=name,
                content_type=incoming.content_type,
                size=len(incoming.data),
                content_hash=content_hash,
                format=fmt,
                status=DocumentStatus.QUEUED,
                job_id=uuid.uuid4(),
                doc_metadata=dict(metadata),
                created_by=self.caller.user_id,
            )
            doc.storage_key = storage_key(doc)
            await self.engines.storage.put(doc.storage_key, incoming.data)
            seen[content_hash] = doc
            upload.created.append(doc)
            upload.uploaded.append((doc, False, False))
        if upload.created:
            await self.documents.add_all(upload.created)
        to_process = upload.created + upload.replaced
        if to_process:
            self._to_process += to_process
            self._queued += await queue_processing(self.session, self.engines, self.caller.tenant_id, to_process)
            await record(
                self.session,
                self.caller,
                "knowledge_documents.uploaded",
                RESOURCE,
                kb.id,
                count=len(upload.created),
                **({"replaced": len(upload.replaced)} if upload.replaced else {}),
            )
        return UploadResult(
            documents=[
                UploadedDocument(document=read_document(d), duplicate=dup, replaced=replaced)
                for d, dup, replaced in upload.uploaded
            ],
            rejected=upload.rejected,
            rejected_rows=upload.rejected_rows,
        )

    async def _import_rows(
        self,
        kb: KnowledgeBase,
        incoming: IncomingFile,
        name: str,
        fmt: str,
        metadata: dict[str, Any],
        options: RowOptions,
        upload: _Upload,
    ) -> DocumentError | None:
        """One document per good row of a CSV or JSON Lines file; the bad rows go to `rejected_rows`. A row whose
        id an earlier import of a file of the same name had replaces that row's document (unless it is unchanged:
        then it is a duplicate). Answers why the whole file is refused, or None."""
        kind = row_format(name, fmt)
        if kind is None:
            return DocumentError(
                code="rows_not_supported",
                message=f"Only CSV and JSON Lines files can be imported one document per row; this file is {fmt}.",
            )
        if name in upload.row_sources:  # its rows would be the same documents as those of the other file
            return DocumentError(
                code="duplicate_file_name",
                message="Another file of this upload has the same name; upload it separately.",
            )
        settings = self.engines.settings
        limits = RowLimits(
            max_rows=settings.knowledge_max_rows_per_file, max_row_chars=settings.knowledge_max_row_chars
        )
        try:
            split = await asyncio.to_thread(split_rows, incoming.data, kind, name, options, limits)
        except RowFileRefused as refused:
            return DocumentError(code=refused.code, message=refused.message)
        upload.rejected_rows += [
            RejectedRow(file_name=name, line=e.line, id=e.id, error=DocumentError(code=e.code, message=e.message))
            for e in split.errors
        ]
        if not split.rows and not split.errors:
            return DocumentError(code="empty", message="The file has no rows.")
        if not split.rows:
            return DocumentError(
                code="no_valid_rows",
                message=f"No row of the file could be imported; the {len(split.errors)} rows are in rejected_rows.",
            )
        upload.row_sources.add(name)
        existing = await self.documents.rows_of(kb.id, name, [row.id for row in split.rows])
        writes: list[tuple[str, bytes]] = []
        for row in split.rows:
            row_metadata = {**metadata, **row.metadata}
            text = row.text.encode("utf-8")
            content_hash = _row_hash(name, row, row_metadata)
            doc = existing.get(row.id)
            if doc is not None and doc.content_hash == content_hash:
                upload.uploaded.append((doc, True, False))
                continue
            if doc is not None:  # a new version of the row: the same document, processed again
                doc.content_hash, doc.size, doc.row_line, doc.doc_metadata = (
                    content_hash,
                    len(text),
                    row.line,
                    row_metadata,
                )
                doc.status, doc.progress, doc.error_code, doc.error_message = DocumentStatus.QUEUED, 0.0, None, None
                doc.format, doc.job_id = kind, uuid.uuid4()  # a job still working on the old version stops
                upload.replaced.append(doc)
                upload.uploaded.append((doc, False, True))
            else:
                doc = KnowledgeDocument(
                    id=uuid.uuid4(),
                    tenant_id=self.caller.tenant_id,
                    knowledge_base_id=kb.id,
                    file_name=_row_file_name(name, row.id),
                    content_type="text/plain; charset=utf-8",
                    size=len(text),
                    content_hash=content_hash,
                    format=kind,
                    status=DocumentStatus.QUEUED,
                    job_id=uuid.uuid4(),
                    doc_metadata=row_metadata,
                    created_by=self.caller.user_id,
                    row_source=name,
                    row_id=row.id,
                    row_line=row.line,
                )
                doc.storage_key = storage_key(doc)
                upload.created.append(doc)
                upload.uploaded.append((doc, False, False))
            writes.append((doc.storage_key, text))
        await self._in_storage(writes)
        return None

    async def _in_storage(self, items: Sequence[tuple[str, bytes]] | Sequence[str]) -> None:
        """Write (key, data) pairs, or delete keys (bare strings), `_STORAGE_WRITES` at a time: the thousands of
        small objects of structured imports."""
        limit = asyncio.Semaphore(_STORAGE_WRITES)
        storage = self.engines.storage

        async def one(item: tuple[str, bytes] | str) -> None:
            async with limit:
                if isinstance(item, str):
                    await storage.delete(item)
                else:
                    await storage.put(*item)

        await asyncio.gather(*(one(item) for item in items))

    async def list_documents(
        self, granted: Granted[KnowledgeBase], page: PageParams, *, status: DocumentStatus | None, query: str | None
    ) -> Page[DocumentRead]:
        kb = granted.resource
        docs, total = await self.documents.list_page(
            kb.id, status=status, query=query, limit=page.limit, offset=page.offset
        )
        return Page[DocumentRead](
            items=[read_document(d) for d in docs], total=total, limit=page.limit, offset=page.offset
        )

    async def _document(self, kb: KnowledgeBase, doc_id: uuid.UUID) -> KnowledgeDocument:
        doc = await self.documents.in_kb(kb.id, doc_id)
        if doc is None:
            raise DocumentNotFound(f"No document {doc_id} in this knowledge base.")
        return doc

    async def get_document(self, granted: Granted[KnowledgeBase], doc_id: uuid.UUID) -> DocumentRead:
        kb = granted.resource
        return read_document(await self._document(kb, doc_id))

    async def active_documents(self, granted: Granted[KnowledgeBase]) -> list[KnowledgeDocument]:
        """The knowledge base's documents still in processing (the start of a progress stream)."""
        active = [s.value for s in DocumentStatus if s not in FINAL_STATUSES]
        return await self.documents.of_kb(granted.resource.id, statuses=active)

    async def reindex_document(self, granted: Granted[KnowledgeBase], doc_id: uuid.UUID) -> DocumentRead:
        """Parse, chunk and embed the document again (after a failure, or to pick up new chunk settings).
        Chunk edits are lost: the document is cut anew."""
        kb = granted.resource
        doc = await self._document(kb, doc_id)
        doc.status, doc.progress, doc.error_code, doc.error_message = DocumentStatus.QUEUED, 0.0, None, None
        doc.job_id = uuid.uuid4()  # any job still working on the document stops at its next step
        await self.session.flush()
        self._to_process.append(doc)
        self._queued += await queue_processing(self.session, self.engines, self.caller.tenant_id, [doc])
        await record(self.session, self.caller, "knowledge_document.reindexed", RESOURCE, kb.id, document=str(doc.id))
        return read_document(doc)

    async def delete_document(self, granted: Granted[KnowledgeBase], doc_id: uuid.UUID) -> None:
        kb = granted.resource
        doc = await self._document(kb, doc_id)
        await self.documents.delete(doc)
        for name in (kb.index_name, kb.pending_index_name):
            if name:
                await self.engines.search.delete(name, document_id=doc.id.hex)
        await self.engines.storage.delete(doc.storage_key)
        await self._in_storage(await self.engines.storage.list(preview_prefix(doc)))
        await record(self.session, self.caller, "knowledge_document.deleted", RESOURCE, kb.id, document=str(doc.id))

    # --- chunks -------------------------------------------------------------------------------------------------

    async def list_chunks(
        self, granted: Granted[KnowledgeBase], doc_id: uuid.UUID, page: PageParams
    ) -> Page[ChunkRead]:
        kb = granted.resource
        doc = await self._document(kb, doc_id)
        chunks, total = await self.chunks.of_document(doc.id, limit=page.limit, offset=page.offset)
        return Page[ChunkRead](
            items=[_read_chunk(c) for c in chunks], total=total, limit=page.limit, offset=page.offset
        )

    async def list_tables(self, granted: Granted[KnowledgeBase], doc_id: uuid.UUID) -> list[DocumentTable]:
        """The document's tables in order, each rebuilt from its table chunks (a long table's pieces joined)."""
        doc = await self._document(granted.resource, doc_id)
        return document_tables(await self.chunks.tables_of(doc.id))

    async def get_chunk(self, granted: Granted[KnowledgeBase], chunk_id: uuid.UUID) -> ChunkDetail:
        """One chunk with its document's file name and metadata (what a citation links to)."""
        kb = granted.resource
        chunk = await self._chunk(kb, chunk_id)
        doc = await self._document(kb, chunk.document_id)
        return ChunkDetail(
            **_read_chunk(chunk).model_dump(),
            knowledge_base_id=kb.id,
            file_name=doc.file_name,
            content_type=doc.content_type,
            document_status=DocumentStatus(doc.status),
            document_metadata=dict(doc.doc_metadata),
        )

    async def open_file(self, granted: Granted[KnowledgeBase], doc_id: uuid.UUID) -> StoredFile:
        """The original uploaded file of a document, opened for streaming (404 `file_missing` when it is gone)."""
        doc = await self._document(granted.resource, doc_id)
        try:
            content = await self.engines.storage.stream(doc.storage_key)
        except ObjectNotFound:
            raise DocumentFileMissing(f"The stored file of document {doc_id} is gone.") from None
        return StoredFile(document=doc, content=content)

    # --- previews -----------------------------------------------------------------------------------------------

    async def preview(self, granted: Granted[KnowledgeBase], doc_id: uuid.UUID) -> PreviewRead:
        """What can be previewed of a document: its kind, its pages, and a failure the preview job recorded."""
        doc = await self._document(granted.resource, doc_id)
        indexed = doc.status == DocumentStatus.INDEXED
        kind = preview_kind(doc.format) if indexed else None
        error = None
        try:
            recorded = json.loads(await self.engines.storage.get(preview_key(doc, "error.json")))
            error = PreviewError(code=str(recorded["code"]), message=str(recorded["message"]))
        except (ObjectNotFound, ValueError, KeyError, TypeError):
            pass
        pages = preview_pages(doc) if kind is not None else 0
        return PreviewRead(
            document_id=doc.id,
            kind=kind,
            page_count=pages,
            page_width=PAGE_WIDTH if pages else None,
            thumbnail=pages > 0,
            text=indexed,
            error=error,
        )

    async def preview_file(
        self, granted: Granted[KnowledgeBase], doc_id: uuid.UUID, part: str, if_none_match: str | None
    ) -> PreviewFile:
        """One preview of a document (`page-<n>`, `thumbnail` or `text`) from object storage, made and stored on
        the first request when missing; no bytes when `if_none_match` names its current ETag."""
        doc = await self._document(granted.resource, doc_id)
        if doc.status != DocumentStatus.INDEXED:
            raise PreviewNotReady("The document is not indexed yet; its preview comes once it is.")
        if part != "text":
            pages = preview_pages(doc)
            if not pages:
                raise PreviewNotFound(f"A {doc.format} document has a text preview only, no page images.")
            if part.startswith("page-") and not 1 <= int(part.removeprefix("page-")) <= pages:
                raise PreviewNotFound(f"The document has {pages} page(s).")
        etag = preview_etag(doc, part)
        media_type = "text/plain; charset=utf-8" if part == "text" else "image/webp"
        if if_none_match is not None and etag in {tag.strip() for tag in if_none_match.split(",")}:
            return PreviewFile(None, media_type, etag)
        return PreviewFile(await stored_preview(self.engines, doc, part), media_type, etag)

    async def _chunk(self, kb: KnowledgeBase, chunk_id: uuid.UUID) -> KnowledgeChunk:
        chunk = await self.chunks.in_kb(kb.id, chunk_id)
        if chunk is None:
            raise ChunkNotFound(f"No chunk {chunk_id} in this knowledge base.")
        return chunk

    async def update_chunk(self, granted: Granted[KnowledgeBase], chunk_id: uuid.UUID, data: ChunkUpdate) -> ChunkRead:
        """Change a chunk's text; it is embedded again at once, so searches find the new text."""
        kb = granted.resource
        chunk = await self._chunk(kb, chunk_id)
        doc = await self._document(kb, chunk.document_id)
        if doc.status != DocumentStatus.INDEXED:
            raise Conflict("The document is being processed; edit its chunks once it is indexed.", code="document_busy")
        # Embedded before the chunk changes: a change would be flushed by the next query (the model's lookup) and
        # hold the database's write lock through the model call, while the call's usage report waits for that
        # lock from another connection (on SQLite, until the busy timeout: a minute).
        vectors = [
            (name, analysis, await self._embed_one(model_id, dimension, data.text))
            for name, model_id, dimension, analysis in live_indexes(kb)
        ]
        chunk.text, chunk.edited = data.text, True
        await self.session.flush()
        for name, analysis, vector in vectors:
            await self.engines.search.upsert(name, [indexed_chunk(chunk, vector, doc, analysis)])
        return _read_chunk(chunk)

    async def _embed_one(self, model_id: uuid.UUID | None, dimension: int, text: str) -> list[float]:
        if model_id is None:
            raise EmbeddingModelMissing("The knowledge base's embedding model was deleted; choose another one.")
        embedder = Embedder(await self.providers.client(model_id), purpose="chunk_edit", dimension=dimension)
        try:
            return await embedder.embed_one(text)
        except EmbeddingFailed as failure:
            raise _embedding_call_failed(failure) from None

    async def delete_chunk(self, granted: Granted[KnowledgeBase], chunk_id: uuid.UUID) -> None:
        kb = granted.resource
        chunk = await self._chunk(kb, chunk_id)
        doc = await self._document(kb, chunk.document_id)
        await self.chunks.delete(chunk)
        doc.chunk_count = max(0, doc.chunk_count - 1)
        for name, *_ in live_indexes(kb):
            await self.engines.search.delete(name, chunk_ids=[chunk.id.hex])

    # --- search -------------------------------------------------------------------------------------------------

    async def _weights(self, kb: KnowledgeBase, data: SearchIn, languages: dict[str, float]) -> SearchWeights:
        """The weights of the two lists for this knowledge base: the mode's, the request's, the knowledge base's,
        or the default weight scaled by the share of the query its embedding model understands."""
        facts = (
            await model_facts(self.session, self.caller.tenant_id, kb.embedding_model_id)
            if kb.embedding_model_id
            else None
        )
        model_languages = facts.languages if facts else None
        source: Literal["mode", "request", "knowledge_base", "languages"]
        if data.mode != "hybrid":
            vector, source = (1.0 if data.mode == "vector" else 0.0), "mode"
        elif data.vector_weight is not None:
            vector, source = data.vector_weight, "request"
        elif kb.vector_weight is not None:
            vector, source = kb.vector_weight, "knowledge_base"
        else:
            base = self.engines.settings.search_vector_weight
            vector, source = vector_weight_for(base, languages, model_languages), "languages"
        return SearchWeights(
            knowledge_base_id=kb.id,
            bm25_weight=round(1.0 - vector, 4),
            vector_weight=vector,
            source=source,
            query_languages=languages,
            model_languages=model_languages,
        )

    async def search(self, granted: Granted[KnowledgeBase], data: SearchIn) -> SearchResult:
        kb = granted.resource
        return await self.search_bases([kb], data)

    async def search_bases(self, bases: Sequence[KnowledgeBase], data: SearchIn) -> SearchResult:
        """Search several knowledge bases (an agent's) and merge the hits by score; only indexed documents count."""
        attributes = {
            "nexent.knowledge.bases": len(bases),
            "nexent.knowledge.mode": data.mode,
            "nexent.knowledge.top_k": data.top_k,
        }
        with tracing.span("knowledge.search", attributes) as span:
            result = await self._search_bases(bases, data)
            span.set_attribute("nexent.knowledge.hits", len(result.hits))
            return result

    async def _search_bases(self, bases: Sequence[KnowledgeBase], data: SearchIn) -> SearchResult:
        timings = {"embedding": 0.0, "search": 0.0, "rerank": 0.0}
        vectors: dict[uuid.UUID, list[float]] = {}
        if data.mode != "bm25":
            started = time.perf_counter()
            for model_id in {kb.embedding_model_id for kb in bases}:
                if model_id is None:
                    raise EmbeddingModelMissing(
                        "The knowledge base's embedding model was deleted; choose another one or search in bm25 mode."
                    )
                embedder = Embedder(await self.providers.client(model_id), purpose="search")
                try:
                    vectors[model_id] = await embedder.embed_one(data.query)
                except EmbeddingFailed as failure:
                    raise _embedding_call_failed(failure) from None
            timings["embedding"] = time.perf_counter() - started
        started = time.perf_counter()
        fetch = data.top_k * 2 + 5  # documents in processing are dropped afterwards
        hits: list[tuple[KnowledgeBase, SearchHit]] = []
        languages = query_languages(data.query)
        weights = []
        for kb in bases:
            weight = await self._weights(kb, data, languages)
            weights.append(weight)
            request = SearchRequest(
                text=data.query,
                vector=vectors.get(kb.embedding_model_id) if kb.embedding_model_id else None,
                mode=data.mode,
                top_k=fetch,
                document_ids=[d.hex for d in data.document_ids] if data.document_ids else None,
                metadata=data.metadata,
                analysis=kb.analysis_version,
                vector_weight=weight.vector_weight if data.mode == "hybrid" else None,
            )
            hits.extend((kb, hit) for hit in await self.engines.search.search(kb.index_name, request))
        hits.sort(key=lambda pair: pair[1].score, reverse=True)
        docs = await self.documents.indexed_of({uuid.UUID(hit.document_id) for _, hit in hits})
        hits = [(kb, hit) for kb, hit in hits if uuid.UUID(hit.document_id) in docs]
        chunks = await self.chunks.of_ids([uuid.UUID(hit.id) for _, hit in hits])
        hits = [(kb, hit) for kb, hit in hits if uuid.UUID(hit.id) in chunks]
        timings["search"] = time.perf_counter() - started
        rerank_model = next((kb.rerank_model_id for kb in bases if kb.rerank_model_id), None)
        scores = [hit.score for _, hit in hits]
        if data.rerank and rerank_model is not None and hits:
            started = time.perf_counter()
            candidates = hits[: max(data.top_k * 3, 20)]
            client = await self.providers.client(rerank_model)
            try:
                ranked = await client.rerank(data.query, [hit.text for _, hit in candidates], top_n=data.top_k)
            except ProviderError as exc:
                raise model_call_failed(exc, "rerank") from None
            hits = [candidates[i] for i, _ in ranked]
            scores = [score for _, score in ranked]
            timings["rerank"] = time.perf_counter() - started
        results = []
        for (kb, hit), score in list(zip(hits, scores, strict=True))[: data.top_k]:
            chunk = chunks[uuid.UUID(hit.id)]
            results.append(
                SearchHitRead(
                    chunk_id=chunk.id,
                    document_id=chunk.document_id,
                    knowledge_base_id=kb.id,
                    file_name=docs[chunk.document_id].file_name,
                    page=chunk.page,
                    heading_path=list(chunk.heading_path),
                    source=chunk.source,
                    text=chunk.text,
                    score=float(score),
                    bm25_rank=hit.bm25_rank,
                    vector_rank=hit.vector_rank,
                    metadata=dict(docs[chunk.document_id].doc_metadata),
                    box=_box(chunk.box),
                )
            )
        return SearchResult(
            hits=results,
            mode=data.mode,
            weights=weights,
            timings=SearchTimings(**{f"{k}_ms": round(v * 1000, 2) for k, v in timings.items()}),
        )


def indexed_chunk(
    chunk: KnowledgeChunk, vector: Sequence[float], doc: KnowledgeDocument, analysis: int
) -> IndexedChunk:
    """The search engine's copy of a chunk: its text (analysed with the index's `analysis` version), vector and
    the metadata searches may filter on."""
    metadata: dict[str, str | int | float | bool] = {"kind": chunk.kind, "format": doc.format or ""}
    if chunk.page is not None:
        metadata["page"] = chunk.page
    metadata.update(doc.doc_metadata)
    return IndexedChunk(
        id=chunk.id.hex,
        document_id=doc.id.hex,
        text=chunk.text,
        vector=list(vector),
        metadata=metadata,
        analysis=analysis,
    )


def live_indexes(kb: KnowledgeBase) -> list[tuple[str, uuid.UUID | None, int, int]]:
    """The index searches use and, during a re-embedding (or a rebuild), the one being built: both must see every
    change. Each with its model, dimension and text analysis version (a new index gets the current analysis)."""
    indexes = [(kb.index_name, kb.embedding_model_id, kb.embedding_dimension, kb.analysis_version)]
    if kb.pending_index_name and kb.pending_embedding_dimension:
        indexes.append(
            (kb.pending_index_name, kb.pending_embedding_model_id, kb.pending_embedding_dimension, ANALYSIS_VERSION)
        )
    return indexes


def _refusal(incoming: IncomingFile, max_bytes: int) -> DocumentError | None:
    if incoming.too_large or len(incoming.data) > max_bytes:
        return DocumentError(code="too_large", message=f"The file is larger than the limit of {max_bytes} bytes.")
    if not incoming.data:
        return DocumentError(code="empty", message="The file is empty.")
    return None


def _row_hash(source: str, row: Row, metadata: dict[str, Any]) -> str:
    """A row's content hash: its file, id, text and metadata (an unchanged row imported again is a duplicate)."""
    identity = json.dumps(["row", source, row.id, row.text, metadata], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def _row_file_name(source: str, row_id: str) -> str:
    """`faq.csv#q17`, the file's name shortened to fit 255 characters."""
    suffix = f"#{row_id}"
    return source[: 255 - len(suffix)] + suffix


def _clean_file_name(name: str) -> str:
    """The base name, without control characters, at most 255 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return (cleaned or "unnamed")[:255]


def _error(loc: list[Any], msg: str) -> dict[str, Any]:
    return {"loc": ["body", *map(str, loc)], "msg": msg, "type": "invalid_reference"}


def _read_kb(kb: KnowledgeBase, counts: dict[str, int], *, can_edit: bool) -> KnowledgeBaseRead:
    return KnowledgeBaseRead(
        id=kb.id,
        name=kb.name,
        description=kb.description,
        summary=kb.summary,
        embedding_model_id=kb.embedding_model_id,
        embedding_dimension=kb.embedding_dimension,
        rerank_model_id=kb.rerank_model_id,
        chunking=ChunkingIn(target_chars=kb.chunk_target_chars, overlap_chars=kb.chunk_overlap_chars),
        vector_weight=kb.vector_weight,
        analysis_version=kb.analysis_version,
        analysis_outdated=kb.analysis_version < ANALYSIS_VERSION,
        reembedding=(
            ReembedState(embedding_model_id=kb.pending_embedding_model_id, dimension=kb.pending_embedding_dimension)
            if kb.pending_index_name
            else None
        ),
        document_counts={status.value: counts.get(status.value, 0) for status in DocumentStatus},
        can_edit=can_edit,
        created_by=kb.created_by,
        created_at=kb.created_at,
        updated_at=kb.updated_at,
    )


def read_document(doc: KnowledgeDocument) -> DocumentRead:
    return DocumentRead(
        id=doc.id,
        knowledge_base_id=doc.knowledge_base_id,
        file_name=doc.file_name,
        content_type=doc.content_type,
        size=doc.size,
        content_hash=doc.content_hash,
        format=doc.format,
        status=DocumentStatus(doc.status),
        progress=doc.progress,
        error=DocumentError(code=doc.error_code, message=doc.error_message or "") if doc.error_code else None,
        chunk_count=doc.chunk_count,
        page_count=doc.page_count,
        attempts=doc.attempts,
        metadata=dict(doc.doc_metadata),
        row=(
            DocumentRow(source=doc.row_source or "", id=doc.row_id, line=doc.row_line or 0)
            if doc.row_id is not None
            else None
        ),
        created_by=doc.created_by,
        created_at=doc.created_at,
        updated_at=doc.updated_at,
        indexed_at=doc.indexed_at,
    )


def _read_chunk(chunk: KnowledgeChunk) -> ChunkRead:
    return ChunkRead(
        id=chunk.id,
        document_id=chunk.document_id,
        position=chunk.position,
        text=chunk.text,
        kind=chunk.kind,
        page=chunk.page,
        page_end=chunk.page_end,
        heading_path=list(chunk.heading_path),
        source=chunk.source,
        start_offset=chunk.start_offset,
        end_offset=chunk.end_offset,
        edited=chunk.edited,
        caption=chunk.caption,
        box=_box(chunk.box),
        updated_at=chunk.updated_at,
    )


def _box(value: list[float] | None) -> list[float] | None:
    if not value or len(value) != 4:
        return None
    return [float(v) for v in value]


# --- previews in object storage ----------------------------------------------------------------------------------


def preview_prefix(doc: KnowledgeDocument) -> str:
    """Where a document's previews live: beside its file, under the same knowledge base prefix."""
    return f"{doc.storage_key}.preview/"


def preview_key(doc: KnowledgeDocument, name: str) -> str:
    return preview_prefix(doc) + name


def _part_file(part: str) -> str:
    return "text.txt" if part == "text" else f"{part}.webp"


def preview_pages(doc: KnowledgeDocument) -> int:
    """How many page images the document has: a PDF's pages, an image's frames, none for other formats."""
    kind = preview_kind(doc.format)
    if kind == "text":
        return 0
    return max(doc.page_count or 1, 1)


def preview_etag(doc: KnowledgeDocument, part: str) -> str:
    """Made from the file's content hash and the renderer's version (and, for the text, when it was indexed, as
    a newer parser may read it differently): the same for as long as the stored preview is."""
    stamp = f"-{int(doc.indexed_at.timestamp())}" if part == "text" and doc.indexed_at else ""
    return f'"{doc.content_hash[:24]}-v{PREVIEW_VERSION}-{part}{stamp}"'


async def stored_preview(engines: Engines, doc: KnowledgeDocument, part: str) -> bytes:
    """A preview from object storage, or made now from the document's file and stored (`PreviewUnavailable` when
    the file cannot be previewed, `DocumentFileMissing` when it is gone)."""
    key = preview_key(doc, _part_file(part))
    try:
        return await engines.storage.get(key)
    except ObjectNotFound:
        pass
    data = await make_preview(engines, doc, part)
    await engines.storage.put(key, data)
    return data


async def make_preview(engines: Engines, doc: KnowledgeDocument, part: str) -> bytes:
    try:
        source = await engines.storage.get(doc.storage_key)
    except ObjectNotFound:
        raise DocumentFileMissing(f"The stored file of document {doc.id} is gone.") from None
    try:
        if part == "text":
            return (await asyncio.to_thread(_parsed_text, engines, doc, source)).encode()
        kind = preview_kind(doc.format)
        if part == "thumbnail":
            return await asyncio.to_thread(render_page, kind, source, 1, THUMBNAIL_WIDTH)
        return await asyncio.to_thread(render_page, kind, source, int(part.removeprefix("page-")))
    except PreviewFailed as failure:
        raise PreviewUnavailable(failure.message, extra={"reason": failure.code}) from None
    except IndexError:
        raise PreviewNotFound(f"The document has no {part}.") from None
    except ParseFailure as failure:
        raise PreviewUnavailable(failure.message, extra={"reason": failure.code}) from None


def _parsed_text(engines: Engines, doc: KnowledgeDocument, source: bytes) -> str:
    """The start of the document's parsed text, for documents indexed before text previews were stored."""
    if doc.row_id is not None:
        return source.decode()[:TEXT_PREVIEW_CHARS]
    settings = engines.settings
    limits = ParseLimits(max_bytes=settings.knowledge_max_file_bytes, ocr=settings.knowledge_ocr)
    pool = parser_pool(settings.knowledge_parse_memory_mb, settings.knowledge_parse_processes)
    parsed = pool.parse(source, doc.file_name, doc.content_type, limits)
    return document_text(parsed)[:TEXT_PREVIEW_CHARS]
