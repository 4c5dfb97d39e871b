"""Knowledge routes: knowledge bases and their shares, documents, chunks and search (config service), and
uploads, re-indexing and the progress stream (data-process service)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Header, Query, Response, UploadFile, status
from fastapi import Path as FastPath
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import StringConstraints, ValidationError

from nexent.core.errors import AppError, problem_body
from nexent.core.openapi import problems
from nexent.core.pagination import Page, PageParamsDep
from nexent.engines.deps import EnginesDep, SessionDep
from nexent.identity.auth import UserCaller
from nexent.identity.schemas import ShareIn, ShareRead
from nexent.knowledge import events
from nexent.knowledge.auth import (
    EditableKnowledgeBase,
    KnowledgeManager,
    ManagedKnowledgeBase,
    ReadableKnowledgeBase,
)
from nexent.knowledge.models import FINAL_STATUSES, DocumentStatus
from nexent.knowledge.rows import InvalidRowOptions, RowOptions
from nexent.knowledge.schemas import (
    ChunkDetail,
    ChunkRead,
    ChunkUpdate,
    DocumentMetadataIn,
    DocumentRead,
    DocumentTable,
    KnowledgeBaseCreate,
    KnowledgeBaseRead,
    KnowledgeBaseUpdate,
    PreviewRead,
    SearchIn,
    SearchResult,
    UploadResult,
)
from nexent.knowledge.service import MAX_FILES_PER_UPLOAD, IncomingFile, KnowledgeService, PreviewFile

router = APIRouter(prefix="/api/knowledge-bases", tags=["knowledge"])
ingest_router = APIRouter(prefix="/api/knowledge-bases", tags=["knowledge"])
UPLOAD_PATH = r"/api/knowledge-bases/[^/]+/documents"
KEEP_ALIVE_SECONDS = 15.0
# type/subtype as RFC 9110 tokens (parameters are dropped); anything else is served as application/octet-stream.
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,63}/[A-Za-z0-9!#$&^_.+-]{1,63}$")
_RFC5987_SAFE = "!#$&+^`|"  # attr-chars that `quote` would escape (letters, digits and `-._~` it keeps)


class InvalidUpload(AppError):
    status, code = 422, "invalid_upload"


# --- knowledge bases ------------------------------------------------------------------------------------------


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a knowledge base.",
    responses=problems(s404="The tenant has no default embedding model.", s502="The embedding model did not answer."),
)
async def create_knowledge_base(
    body: KnowledgeBaseCreate, caller: KnowledgeManager, session: SessionDep, engines: EnginesDep
) -> KnowledgeBaseRead:
    return await KnowledgeService(session, engines, caller).create(body)


@router.get("", summary="Knowledge bases the caller may see: all for those who manage knowledge, else shared ones.")
async def list_knowledge_bases(
    caller: UserCaller,
    session: SessionDep,
    engines: EnginesDep,
    page: PageParamsDep,
    q: Annotated[str | None, Query(max_length=120, description="Substring of the name.")] = None,
) -> Page[KnowledgeBaseRead]:
    return await KnowledgeService(session, engines, caller).list_bases(page, query=q)


@router.get("/{kb_id}", summary="One knowledge base, with its document counts by status.")
async def get_knowledge_base(kb: ReadableKnowledgeBase, session: SessionDep, engines: EnginesDep) -> KnowledgeBaseRead:
    return await KnowledgeService(session, engines, kb.caller).get(kb)


@router.patch(
    "/{kb_id}",
    summary="Change a knowledge base; a new embedding model re-embeds every chunk.",
    responses=problems(s502="The embedding model did not answer."),
)
async def update_knowledge_base(
    kb: EditableKnowledgeBase, body: KnowledgeBaseUpdate, session: SessionDep, engines: EnginesDep
) -> KnowledgeBaseRead:
    service = KnowledgeService(session, engines, kb.caller)
    updated = await service.update(kb, body)
    await session.commit()  # the re-embedding job reads the committed knowledge base
    await service.start_jobs()
    return updated


@router.delete(
    "/{kb_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a knowledge base.",
    responses=problems(s409="A published agent version uses it (`knowledge_base_in_use`)."),
)
async def delete_knowledge_base(kb: ManagedKnowledgeBase, session: SessionDep, engines: EnginesDep) -> None:
    await KnowledgeService(session, engines, kb.caller).delete(kb)


@router.get("/{kb_id}/shares", summary="Groups the knowledge base is shared with.")
async def list_knowledge_base_shares(
    kb: ReadableKnowledgeBase, session: SessionDep, engines: EnginesDep
) -> list[ShareRead]:
    return await KnowledgeService(session, engines, kb.caller).shares_of(kb)


@router.put("/{kb_id}/shares/{group_id}", summary="Share the knowledge base with a group (read or edit).")
async def share_knowledge_base(
    kb: ManagedKnowledgeBase, group_id: uuid.UUID, body: ShareIn, session: SessionDep, engines: EnginesDep
) -> ShareRead:
    return await KnowledgeService(session, engines, kb.caller).share(kb, group_id, body.permission)


@router.delete(
    "/{kb_id}/shares/{group_id}", status_code=204, response_class=Response, summary="Stop sharing with a group."
)
async def unshare_knowledge_base(
    kb: ManagedKnowledgeBase, group_id: uuid.UUID, session: SessionDep, engines: EnginesDep
) -> None:
    await KnowledgeService(session, engines, kb.caller).unshare(kb, group_id)


@router.post(
    "/{kb_id}/search",
    summary="Search a knowledge base: hybrid (BM25 + vectors), bm25 or vector.",
    responses=problems(
        s400="The search is not valid for this index.", s502="The embedding or rerank model did not answer."
    ),
)
async def search_knowledge_base(
    kb: ReadableKnowledgeBase, body: SearchIn, session: SessionDep, engines: EnginesDep
) -> SearchResult:
    return await KnowledgeService(session, engines, kb.caller).search(kb, body)


# --- documents and chunks -------------------------------------------------------------------------------------


@router.get("/{kb_id}/documents", summary="Documents of a knowledge base, newest first.")
async def list_documents(
    kb: ReadableKnowledgeBase,
    session: SessionDep,
    engines: EnginesDep,
    page: PageParamsDep,
    status: DocumentStatus | None = None,
    q: Annotated[str | None, Query(max_length=255, description="Substring of the file name.")] = None,
) -> Page[DocumentRead]:
    return await KnowledgeService(session, engines, kb.caller).list_documents(kb, page, status=status, query=q)


@router.get("/{kb_id}/documents/{doc_id}", summary="One document: status, progress, typed error.")
async def get_document(
    kb: ReadableKnowledgeBase, doc_id: uuid.UUID, session: SessionDep, engines: EnginesDep
) -> DocumentRead:
    return await KnowledgeService(session, engines, kb.caller).get_document(kb, doc_id)


@router.delete("/{kb_id}/documents/{doc_id}", status_code=204, response_class=Response, summary="Delete a document.")
async def delete_document(
    kb: EditableKnowledgeBase, doc_id: uuid.UUID, session: SessionDep, engines: EnginesDep
) -> None:
    await KnowledgeService(session, engines, kb.caller).delete_document(kb, doc_id)


@router.get("/{kb_id}/documents/{doc_id}/chunks", summary="A document's chunks in order.")
async def list_chunks(
    kb: ReadableKnowledgeBase, doc_id: uuid.UUID, session: SessionDep, engines: EnginesDep, page: PageParamsDep
) -> Page[ChunkRead]:
    return await KnowledgeService(session, engines, kb.caller).list_chunks(kb, doc_id, page)


@router.get(
    "/{kb_id}/documents/{doc_id}/tables",
    summary="A document's tables in order: caption, header and rows, each rebuilt from its table chunks.",
)
async def list_tables(
    kb: ReadableKnowledgeBase, doc_id: uuid.UUID, session: SessionDep, engines: EnginesDep
) -> list[DocumentTable]:
    return await KnowledgeService(session, engines, kb.caller).list_tables(kb, doc_id)


@router.get(
    "/{kb_id}/documents/{doc_id}/file",
    summary="Download a document's original file, as uploaded (streamed, as an attachment).",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        **problems(s404="No such document, or its stored file is gone (`file_missing`)."),
    },
)
async def download_document(
    kb: ReadableKnowledgeBase, doc_id: uuid.UUID, session: SessionDep, engines: EnginesDep
) -> StreamingResponse:
    stored = await KnowledgeService(session, engines, kb.caller).open_file(kb, doc_id)
    doc = stored.document
    return StreamingResponse(
        stored.content,
        headers={
            "Content-Type": _media_type(doc.content_type),  # as stored; no charset is guessed for text/*
            "Content-Disposition": content_disposition(doc.file_name),
            "Content-Length": str(doc.size),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )


# --- previews -------------------------------------------------------------------------------------------------

PREVIEW_MAX_AGE = 3600  # seconds a browser keeps a preview before asking again (with If-None-Match)
_PREVIEW_PROBLEMS = problems(
    s404="No such document, page or preview (`preview_not_found`: a format with a text preview only).",
    s409="The document is not indexed yet (`document_not_indexed`), or its file cannot be previewed "
    "(`preview_failed`, with a `reason`).",
)
_IF_NONE_MATCH = Header(description="An ETag of an earlier answer: 304 when it is still current.")


def _preview_answer(preview: PreviewFile) -> Response:
    headers = {
        "ETag": preview.etag,
        "Cache-Control": f"private, max-age={PREVIEW_MAX_AGE}",
        "X-Content-Type-Options": "nosniff",
    }
    if preview.data is None:
        return Response(status_code=304, headers=headers)
    return Response(preview.data, media_type=preview.media_type, headers=headers)


def _binary(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"content": {media_type: {"schema": {"type": "string", "format": "binary"}}}},
        304: {"description": "The copy named by If-None-Match is current."},
        **_PREVIEW_PROBLEMS,
    }


@router.get(
    "/{kb_id}/documents/{doc_id}/preview",
    summary="What can be seen of a document: its kind (page images or text only) and page count.",
)
async def get_preview(
    kb: ReadableKnowledgeBase, doc_id: uuid.UUID, session: SessionDep, engines: EnginesDep
) -> PreviewRead:
    return await KnowledgeService(session, engines, kb.caller).preview(kb, doc_id)


@router.get(
    "/{kb_id}/documents/{doc_id}/preview/pages/{page}",
    summary="One page of a PDF (or frame of an image) as a WebP image; made on the first request when missing.",
    response_class=Response,
    responses=_binary("image/webp"),
)
async def get_preview_page(
    kb: ReadableKnowledgeBase,
    doc_id: uuid.UUID,
    page: Annotated[int, FastPath(ge=1, le=100_000, description="From 1.")],
    session: SessionDep,
    engines: EnginesDep,
    if_none_match: Annotated[str | None, _IF_NONE_MATCH] = None,
) -> Response:
    service = KnowledgeService(session, engines, kb.caller)
    return _preview_answer(await service.preview_file(kb, doc_id, f"page-{page}", if_none_match))


@router.get(
    "/{kb_id}/documents/{doc_id}/preview/thumbnail",
    summary="A small image of a PDF's first page or of an image document (WebP).",
    response_class=Response,
    responses=_binary("image/webp"),
)
async def get_preview_thumbnail(
    kb: ReadableKnowledgeBase,
    doc_id: uuid.UUID,
    session: SessionDep,
    engines: EnginesDep,
    if_none_match: Annotated[str | None, _IF_NONE_MATCH] = None,
) -> Response:
    service = KnowledgeService(session, engines, kb.caller)
    return _preview_answer(await service.preview_file(kb, doc_id, "thumbnail", if_none_match))


@router.get(
    "/{kb_id}/documents/{doc_id}/preview/text",
    summary="The start of a document's parsed text (up to 64 KiB), as plain text.",
    response_class=Response,
    responses=_binary("text/plain"),
)
async def get_preview_text(
    kb: ReadableKnowledgeBase,
    doc_id: uuid.UUID,
    session: SessionDep,
    engines: EnginesDep,
    if_none_match: Annotated[str | None, _IF_NONE_MATCH] = None,
) -> Response:
    service = KnowledgeService(session, engines, kb.caller)
    return _preview_answer(await service.preview_file(kb, doc_id, "text", if_none_match))


def content_disposition(file_name: str) -> str:
    """`attachment` with an ASCII fallback `filename` and the exact name as `filename*` (RFC 6266, RFC 5987)."""
    fallback = "".join(ch if " " <= ch <= "~" and ch not in '"\\%' else "_" for ch in file_name).strip() or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe=_RFC5987_SAFE)}"


def _media_type(stored: str | None) -> str:
    base = (stored or "").split(";", 1)[0].strip().lower()
    return base if _MEDIA_TYPE.match(base) else "application/octet-stream"


@router.get("/{kb_id}/chunks/{chunk_id}", summary="One chunk, with its document's file name (a citation's source).")
async def get_chunk(
    kb: ReadableKnowledgeBase, chunk_id: uuid.UUID, session: SessionDep, engines: EnginesDep
) -> ChunkDetail:
    return await KnowledgeService(session, engines, kb.caller).get_chunk(kb, chunk_id)


@router.patch(
    "/{kb_id}/chunks/{chunk_id}",
    summary="Edit a chunk's text; it is embedded again at once.",
    responses=problems(s502="The embedding model did not answer."),
)
async def update_chunk(
    kb: EditableKnowledgeBase, chunk_id: uuid.UUID, body: ChunkUpdate, session: SessionDep, engines: EnginesDep
) -> ChunkRead:
    return await KnowledgeService(session, engines, kb.caller).update_chunk(kb, chunk_id, body)


@router.delete("/{kb_id}/chunks/{chunk_id}", status_code=204, response_class=Response, summary="Delete a chunk.")
async def delete_chunk(
    kb: EditableKnowledgeBase, chunk_id: uuid.UUID, session: SessionDep, engines: EnginesDep
) -> None:
    await KnowledgeService(session, engines, kb.caller).delete_chunk(kb, chunk_id)


# --- ingestion ------------------------------------------------------------------------------------------------


@ingest_router.post(
    "/{kb_id}/documents",
    status_code=status.HTTP_201_CREATED,
    summary="Upload files (multipart field `file`, repeatable); each is processed in the background.",
    description=(
        "Each file becomes one document; with `split=rows`, each row of a CSV or JSON Lines file becomes one "
        "(structured import: `id_column`, `metadata_columns`, `text_columns`), and rows that cannot be imported "
        "are listed in `rejected_rows`."
    ),
    response_model=UploadResult,
    responses={
        422: {
            "description": "No file could be accepted (`rejected` and `rejected_rows` say why), or the row options "
            "are invalid."
        }
    },
)
async def upload_documents(
    kb: EditableKnowledgeBase,
    session: SessionDep,
    engines: EnginesDep,
    file: Annotated[list[UploadFile], File(description="One or more files.")],
    metadata: Annotated[
        str | None, Form(description="JSON object of metadata for every file (filterable in searches).")
    ] = None,
    split: Annotated[
        Literal["file", "rows"],
        Form(description="`file`: one document per file; `rows`: one per row of a CSV or JSON Lines file."),
    ] = "file",
    id_column: Annotated[
        str | None,
        Form(max_length=255, description="With `split=rows`: the column of each row's id (default: its line)."),
    ] = None,
    metadata_columns: Annotated[
        list[Annotated[str, StringConstraints(max_length=255)]] | None,
        Form(description="With `split=rows` (repeatable): columns stored as the row's metadata, filterable."),
    ] = None,
    text_columns: Annotated[
        list[Annotated[str, StringConstraints(max_length=255)]] | None,
        Form(description="With `split=rows` (repeatable): the columns of the searchable text (default: the others)."),
    ] = None,
) -> UploadResult | JSONResponse:
    if len(file) > MAX_FILES_PER_UPLOAD:
        raise InvalidUpload(f"At most {MAX_FILES_PER_UPLOAD} files per upload.", code="too_many_files")
    extra = _parse_metadata(metadata)
    rows = _row_options(split, id_column, metadata_columns or [], text_columns or [], extra)
    limit = engines.settings.knowledge_max_file_bytes
    incoming = []
    for upload in file:
        data = await upload.read(limit + 1)
        incoming.append(
            IncomingFile(
                file_name=upload.filename or "unnamed",
                content_type=upload.content_type,
                data=data[:limit] if len(data) > limit else data,
                too_large=len(data) > limit,
            )
        )
    service = KnowledgeService(session, engines, kb.caller)
    result = await service.upload(kb, incoming, extra, rows)
    await session.commit()  # workers read the documents from other sessions
    await service.start_jobs()
    if not result.documents:
        detail = "No file could be accepted."
        answer = result.model_dump(mode="json")
        extra_fields = {"rejected": answer["rejected"]}
        if rows is not None:
            extra_fields["rejected_rows"] = answer["rejected_rows"]
        body = problem_body(422, "no_acceptable_files", detail, extra_fields)
        return JSONResponse(body, status_code=422, media_type="application/problem+json")
    return result


def _row_options(
    split: str, id_column: str | None, metadata_columns: list[str], text_columns: list[str], extra: dict[str, Any]
) -> RowOptions | None:
    """The structured import's options (`split=rows`), checked before any file is read."""
    if split != "rows":
        if id_column or metadata_columns or text_columns:
            raise InvalidUpload(
                "id_column, metadata_columns and text_columns need split=rows.", code="invalid_row_options"
            )
        return None
    try:
        options = RowOptions.build(id_column, metadata_columns, text_columns)
    except InvalidRowOptions as exc:
        raise InvalidUpload(exc.message, code=exc.code) from None
    keys = set(extra) | set(options.metadata_columns.values())
    if len(keys) > 20:
        raise InvalidUpload(
            "At most 20 metadata keys, the upload's and the columns' together.", code="invalid_metadata_column"
        )
    return options


def _parse_metadata(raw: str | None) -> dict[str, str | int | float | bool]:
    if not raw:
        return {}
    try:
        return dict(DocumentMetadataIn.model_validate({"metadata": json.loads(raw)}).metadata)
    except (ValueError, ValidationError) as exc:
        message = str(exc).splitlines()[0] if isinstance(exc, json.JSONDecodeError) else _first_error(exc)
        raise InvalidUpload(f"Invalid metadata: {message}", code="invalid_metadata") from None


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"
    return str(exc)


@ingest_router.post(
    "/{kb_id}/documents/{doc_id}/reindex",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Process a document again (retry a failure, apply new chunk settings).",
)
async def reindex_document(
    kb: EditableKnowledgeBase, doc_id: uuid.UUID, session: SessionDep, engines: EnginesDep
) -> DocumentRead:
    service = KnowledgeService(session, engines, kb.caller)
    document = await service.reindex_document(kb, doc_id)
    await session.commit()
    await service.start_jobs()
    return document


@ingest_router.get(
    "/{kb_id}/events",
    summary="Follow document progress live (SSE): the documents in processing first, then every change.",
    response_class=StreamingResponse,
)
async def document_events(
    kb: ReadableKnowledgeBase,
    session: SessionDep,
    engines: EnginesDep,
    until_idle: Annotated[bool, Query(description="End the stream once no document is in processing.")] = False,
) -> StreamingResponse:
    active = await KnowledgeService(session, engines, kb.caller).active_documents(kb)
    subscription = engines.bus.subscribe(events.channel(kb.resource.tenant_id, kb.resource.id))
    stream = await subscription.__aenter__()  # before the snapshot is sent, so no change falls in between

    async def lines() -> AsyncIterator[str]:
        pending = {str(d.id) for d in active}
        try:
            for doc in active:
                yield _sse("document", events.document_event(doc))
            if until_idle and not pending:
                yield _sse("idle", {})
                return
            while True:
                try:
                    message = await asyncio.wait_for(anext(stream), timeout=KEEP_ALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield _sse("document", message)
                if DocumentStatus(message["status"]) in FINAL_STATUSES:
                    pending.discard(str(message["document_id"]))
                else:
                    pending.add(str(message["document_id"]))
                if until_idle and not pending:
                    yield _sse("idle", {})
                    return
        finally:
            await subscription.__aexit__(None, None, None)

    return StreamingResponse(
        lines(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


routers = [router]
ingest_routers = [ingest_router]
