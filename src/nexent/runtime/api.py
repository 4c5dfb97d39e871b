"""Run and conversation routes. A run streams as Server-Sent Events: `id: <seq>`, `event: <type>`,
`data: <json>`; the stream can be resumed with `Last-Event-ID` or `?after=`."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Header, Query, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse

from nexent.agents.api import GENERATION_STREAM, generation_stream
from nexent.agents.auth import EditableAgent
from nexent.agents.generation import GenerationService, language_of, transcript_of
from nexent.agents.schemas import ImproveIn
from nexent.core.openapi import event_stream_schemas, openapi_schemas, problems
from nexent.core.pagination import Page, PageParamsDep
from nexent.engines.container import Engines
from nexent.engines.deps import EnginesDep, SessionDep
from nexent.identity.auth import Caller, RequirePermission
from nexent.identity.permissions import Permission
from nexent.knowledge.reading import MEDIA_TYPES
from nexent.runtime.attachments import AttachmentService
from nexent.runtime.conversations import ConversationService
from nexent.runtime.event_types import EVENT_MODELS, RunStreamEvent
from nexent.runtime.events import follow, sse_frame
from nexent.runtime.execution import RunManager
from nexent.runtime.models import RunStatus
from nexent.runtime.schemas import (
    AttachmentRead,
    ConversationDetail,
    ConversationRead,
    ConversationUpdate,
    RunCreate,
    RunRead,
    RunTimeline,
)
from nexent.runtime.service import RuntimeService

router = APIRouter(tags=["runs"])
Chatter = Annotated[Caller, RequirePermission(Permission.CHAT)]
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
ATTACHMENT_UPLOAD_PATH = r"/api/attachments"

# A run's events count from 1 in a 32-bit column (`run_events.seq`): no run has a later event, so a resume point
# past it is a client's mistake, answered 422 before any query.
MAX_EVENT_SEQ = 2**31 - 1
_SEQ = re.compile(r"[0-9]{1,10}")  # ASCII digits only: `int` also takes "²" or "١٢" (which `isdigit` accepts)


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


# The OpenAPI document describes a run's stream frame by frame (component `RunStreamFrame`): each event type's
# `data` is that event's JSON without its type (`<Event>Data`). The typed union `RunStreamEvent` is published too.
# The app (`server.NexentApp`) adds these components from `schemas`.
EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The run's events as Server-Sent Events: `id: <seq>`, `event: <type>`, `data: <the event "
        "without its type, as JSON>`; each event is one of `RunStreamEvent`.",
        "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/RunStreamFrame"}}},
    }
}


schemas = event_stream_schemas(
    "RunStreamFrame",
    EVENT_MODELS,
    openapi_schemas(RunStreamEvent),
    description="One frame of a run's stream.",
    id_description="The event's sequence number.",
)


def run_manager(request: Request) -> RunManager:
    manager: RunManager = request.app.state.runs
    return manager


def event_stream(engines: Engines, caller: Caller, run_id: uuid.UUID, after: int) -> EventStreamResponse:
    async def lines() -> AsyncIterator[str]:
        async for event in follow(engines, caller.tenant_id, run_id, after=after):
            if event is None:
                yield ": keep-alive\n\n"
                continue
            yield sse_frame(event)

    return EventStreamResponse(lines(), headers=SSE_HEADERS)


@router.post(
    "/api/agents/{agent_id}/runs",
    summary="Start a run of an agent and stream its events (SSE).",
    response_class=StreamingResponse,  # no content of its own in the OpenAPI document: see EVENT_STREAM
    responses={
        **EVENT_STREAM,
        **problems(
            s403="Only those who may edit the agent run its draft.",
            s404="No such agent, or no such version (`version_not_found`).",
            s422="An attachment is not yours, or was sent already (`invalid_attachment`).",
            s409="The version is disabled (`version_disabled`), or the agent has no published version "
            "(`agent_not_published`).",
            s429="Too many runs of this tenant are going on; `Retry-After` says when.",
        ),
    },
)
async def start_run(
    agent_id: uuid.UUID, body: RunCreate, request: Request, caller: Chatter, session: SessionDep, engines: EnginesDep
) -> EventStreamResponse:
    manager = run_manager(request)
    # start() returns once the run is stored (it must never be lost); its agent is already on its way.
    run = await RuntimeService(session, engines, caller).start(
        manager, agent_id, body.message, body.conversation_id, body.version, body.attachment_ids
    )
    response = event_stream(engines, caller, run.id, after=0)
    response.headers["X-Run-Id"] = str(run.id)
    response.headers["X-Conversation-Id"] = str(run.conversation_id)
    return response


@router.post(
    "/api/conversations/{conversation_id}/regenerate",
    summary="Run the conversation's last user message again; the new answer replaces the last one (SSE).",
    response_class=StreamingResponse,  # no content of its own in the OpenAPI document: see EVENT_STREAM
    responses={
        **EVENT_STREAM,
        **problems(
            s409="A run of the conversation is still going on (`conversation_busy`), or it has no user message "
            "(`nothing_to_regenerate`).",
            s422="The conversation's agent was deleted (`conversation_of_another_agent`).",
            s429="Too many runs of this tenant are going on; `Retry-After` says when.",
        ),
    },
)
async def regenerate(
    conversation_id: uuid.UUID, request: Request, caller: Chatter, session: SessionDep, engines: EnginesDep
) -> EventStreamResponse:
    manager = run_manager(request)
    run = await RuntimeService(session, engines, caller).regenerate(manager, conversation_id)
    response = event_stream(engines, caller, run.id, after=0)
    response.headers["X-Run-Id"] = str(run.id)
    response.headers["X-Conversation-Id"] = str(run.conversation_id)
    return response


@router.post(
    "/api/agents/{agent_id}/improve",
    summary="Better instructions (duty, constraints, examples) for the agent from a note on what went wrong and a "
    "conversation with it, streamed field by field (SSE); nothing is stored.",
    response_class=StreamingResponse,  # no content of its own in the OpenAPI document: see GENERATION_STREAM
    responses={
        **GENERATION_STREAM,
        **problems(
            s404="No such agent or conversation of yours, or the tenant has no default LLM (`no_default_model`).",
            s422="The conversation is held with another agent (`conversation_of_another_agent`).",
        ),
    },
)
async def improve_agent(
    agent: EditableAgent, body: ImproveIn, request: Request, session: SessionDep, engines: EnginesDep
) -> StreamingResponse:
    # Here rather than in agents/api.py: the evidence is a conversation, which is runtime's (agents may not import it).
    turns = (
        await ConversationService(session, agent.caller).turns_with(body.conversation_id, agent.resource.id)
        if body.conversation_id is not None
        else []
    )
    language = language_of(body.language, request.headers.get("accept-language"))
    generation = await GenerationService(session, engines, agent.caller).improve(
        agent, body.note, transcript_of(turns), language
    )
    return generation_stream(generation)


@router.get("/api/runs", summary="The caller's runs, latest first.")
async def list_runs(
    caller: Chatter,
    session: SessionDep,
    engines: EnginesDep,
    page: PageParamsDep,
    conversation_id: uuid.UUID | None = None,
    status: RunStatus | None = None,
) -> Page[RunRead]:
    return await RuntimeService(session, engines, caller).list_runs(
        page, conversation_id=conversation_id, status=status
    )


@router.get("/api/runs/{run_id}", summary="A run's state, answer, error and usage.")
async def get_run(run_id: uuid.UUID, caller: Chatter, session: SessionDep, engines: EnginesDep) -> RunRead:
    return await RuntimeService(session, engines, caller).get(run_id)


@router.get(
    "/api/runs/{run_id}/timeline",
    summary="Where a run's time went: each step with its model call and tool calls, their durations and tokens.",
)
async def run_timeline(run_id: uuid.UUID, caller: Chatter, session: SessionDep, engines: EnginesDep) -> RunTimeline:
    return await RuntimeService(session, engines, caller).timeline(run_id)


@router.get(
    "/api/runs/{run_id}/events",
    summary="Replay a run's events after a sequence number, then follow it.",
    response_class=StreamingResponse,  # no content of its own in the OpenAPI document: see EVENT_STREAM
    responses=EVENT_STREAM,
)
async def run_events(
    run_id: uuid.UUID,
    caller: Chatter,
    session: SessionDep,
    engines: EnginesDep,
    after: Annotated[int | None, Query(ge=0, le=MAX_EVENT_SEQ, description="Last sequence number seen.")] = None,
    last_event_id: Annotated[str | None, Header(max_length=20, description="Last sequence number seen.")] = None,
) -> EventStreamResponse:
    resume = after if after is not None else resume_point(last_event_id)
    await RuntimeService(session, engines, caller).get(run_id)
    return event_stream(engines, caller, run_id, after=resume)


def content_disposition(file_name: str, *, inline: bool) -> str:
    """`inline` or `attachment`, with an ASCII fallback `filename` and the exact name as `filename*` (RFC 6266,
    RFC 5987)."""
    fallback = "".join(ch if " " <= ch <= "~" and ch not in '"\\%' else "_" for ch in file_name).strip() or "file"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe=_RFC5987_SAFE)}"


_RFC5987_SAFE = "!#$&+^`|"  # attr-chars that `quote` would escape (letters, digits and `-._~` it keeps)


def resume_point(last_event_id: str | None) -> int:
    """The sequence number in a `Last-Event-ID` header (none or empty: from the start); 422 if it is not one."""
    if not last_event_id:
        return 0
    if _SEQ.fullmatch(last_event_id) and int(last_event_id) <= MAX_EVENT_SEQ:
        return int(last_event_id)
    raise RequestValidationError(
        [
            {
                "loc": ("header", "last-event-id"),
                "msg": f"Must be a sequence number from 0 to {MAX_EVENT_SEQ}.",
                "type": "value_error",
            }
        ]
    )


@router.post("/api/runs/{run_id}/stop", summary="Stop a run; it ends with run.stopped.", status_code=202)
async def stop_run(run_id: uuid.UUID, caller: Chatter, session: SessionDep, engines: EnginesDep) -> RunRead:
    return await RuntimeService(session, engines, caller).stop(run_id)


@router.get("/api/conversations", summary="The caller's conversations, latest first.")
async def list_conversations(
    caller: Chatter,
    session: SessionDep,
    engines: EnginesDep,
    page: PageParamsDep,
    q: Annotated[
        str | None, Query(max_length=200, description="Only conversations whose title contains this (any case).")
    ] = None,
) -> Page[ConversationRead]:
    return await ConversationService(session, caller).list_conversations(page, title_contains=q)


@router.get("/api/conversations/{conversation_id}", summary="A conversation with its messages.")
async def get_conversation(
    conversation_id: uuid.UUID, caller: Chatter, session: SessionDep, engines: EnginesDep
) -> ConversationDetail:
    return await ConversationService(session, caller).get(conversation_id)


@router.patch("/api/conversations/{conversation_id}", summary="Rename a conversation.")
async def rename_conversation(
    conversation_id: uuid.UUID, body: ConversationUpdate, caller: Chatter, session: SessionDep, engines: EnginesDep
) -> ConversationRead:
    return await ConversationService(session, caller).rename(conversation_id, body)


@router.delete(
    "/api/conversations/{conversation_id}", summary="Delete a conversation.", status_code=204, response_class=Response
)
async def delete_conversation(
    conversation_id: uuid.UUID, caller: Chatter, session: SessionDep, engines: EnginesDep
) -> None:
    await AttachmentService(session, engines, caller).delete_conversation(conversation_id)


@router.post(
    "/api/attachments",
    summary="Upload a file or image for a chat message to come (multipart field `file`); a run sends it by its id "
    "(`attachment_ids`).",
    status_code=201,
    responses=problems(
        s413="The file is larger than the knowledge file limit (`too_large`).",
        s415="Not a format the knowledge parsers read (`unsupported_format`).",
        s422="The file is empty (`empty`), or a damaged image (`corrupt_file`).",
    ),
)
async def upload_attachment(
    caller: Chatter,
    session: SessionDep,
    engines: EnginesDep,
    file: Annotated[UploadFile, File(description="The file: a document in a knowledge format, or an image.")],
) -> AttachmentRead:
    limit = engines.settings.knowledge_max_file_bytes
    data = await file.read(limit + 1)
    return await AttachmentService(session, engines, caller).upload(file.filename or "unnamed", file.content_type, data)


@router.get(
    "/api/attachments",
    summary="The caller's attachments, latest first: those not sent yet, and those of the conversations they read.",
)
async def list_attachments(
    caller: Chatter,
    session: SessionDep,
    engines: EnginesDep,
    page: PageParamsDep,
    conversation_id: Annotated[uuid.UUID | None, Query(description="Only those of this conversation.")] = None,
    unsent: Annotated[bool, Query(description="Only those no message carries yet.")] = False,
) -> Page[AttachmentRead]:
    return await AttachmentService(session, engines, caller).list_attachments(
        page, conversation_id=conversation_id, unsent=unsent
    )


@router.get(
    "/api/attachments/{attachment_id}",
    summary="Download an attachment (an image inline, a document as a file); only for who may read its "
    "conversation (an unsent one: its uploader).",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The file, with its format's content type.",
            "content": {
                # A JSON file is any JSON value; every other format is bytes.
                media: {"schema": {} if media == "application/json" else {"type": "string", "format": "binary"}}
                for media in sorted({*MEDIA_TYPES.values(), "application/octet-stream"})
            },
        },
        **problems(s404="No such attachment of yours, or its file is gone (`file_missing`)."),
    },
)
async def download_attachment(
    attachment_id: uuid.UUID, caller: Chatter, session: SessionDep, engines: EnginesDep
) -> StreamingResponse:
    opened = await AttachmentService(session, engines, caller).open(attachment_id)
    row = opened.attachment
    return StreamingResponse(
        opened.content,
        headers={
            "Content-Type": row.content_type,
            "Content-Disposition": content_disposition(row.name, inline=row.kind == "image"),
            "Content-Length": str(row.size),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600",
        },
    )


routers = [router]
