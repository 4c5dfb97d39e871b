"""Agent routes: `/api/agents` (drafts), their versions and group shares, drafts written by a model
(`/api/agents/generate`), and `/api/tools` (the tool catalog). Who may call each: `agents/auth.py`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse

from nexent.agents.auth import AgentManager, EditableAgent, ManagedAgent, ReadableAgent
from nexent.agents.generation import Generation, GenerationService, language_of, sse_frames
from nexent.agents.schemas import (
    GENERATION_EVENTS,
    AgentCreate,
    AgentDocument,
    AgentImport,
    AgentRead,
    AgentUpdate,
    GenerateIn,
    ImportPreview,
    ImportResult,
    PublishIn,
    ToolRead,
    VersionDiff,
    VersionRead,
    VersionRef,
    VersionUpdate,
)
from nexent.agents.service import AgentService, tenant_tool_catalog
from nexent.agents.transfer import TransferService, attachment_name
from nexent.agents.versions import VersionService
from nexent.core.openapi import event_stream_schemas, openapi_schemas, problems
from nexent.core.pagination import Page, PageParamsDep
from nexent.engines.deps import EnginesDep, SessionDep
from nexent.identity.auth import UserCaller
from nexent.identity.schemas import ShareIn, ShareRead

router = APIRouter(prefix="/api/agents", tags=["agents"])
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


# The OpenAPI document describes the stream frame by frame (component `GenerationStreamFrame`); the app adds these.
schemas = event_stream_schemas(
    "GenerationStreamFrame",
    GENERATION_EVENTS,
    openapi_schemas(*GENERATION_EVENTS.values()),
    description="One frame of a generation's stream.",
    id_description="The frame's number, from 1.",
)
GENERATION_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The draft as Server-Sent Events: `id: <n>`, `event: <type>`, `data: <JSON>`: `field.delta`s "
        "and `field.completed`s, then `draft.completed` or `generation.failed`.",
        "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/GenerationStreamFrame"}}},
    }
}


def generation_stream(generation: Generation) -> StreamingResponse:
    """A prepared generation's events as an SSE response."""
    return StreamingResponse(sse_frames(generation.events()), media_type="text/event-stream", headers=SSE_HEADERS)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an agent draft.",
    responses=problems(s400="A tool is unknown or its settings are not valid."),
)
async def create_agent(body: AgentCreate, caller: AgentManager, session: SessionDep) -> AgentRead:
    return await AgentService(session, caller).create(body)


@router.post(
    "/generate",
    summary="Draft an agent from a description with an LLM, streamed field by field (SSE); nothing is stored.",
    response_class=StreamingResponse,  # no content of its own in the OpenAPI document: see GENERATION_STREAM
    responses={
        **GENERATION_STREAM,
        **problems(
            s404="The tenant has no default LLM (`no_default_model`), or no such model.",
            s422="The body is not valid, or `model_id` is not an LLM of the tenant (`invalid_generation`).",
        ),
    },
)
async def generate_agent(
    body: GenerateIn, request: Request, caller: AgentManager, session: SessionDep, engines: EnginesDep
) -> StreamingResponse:
    language = language_of(body.language, request.headers.get("accept-language"))
    generation = await GenerationService(session, engines, caller).generate(body, language)
    return generation_stream(generation)


@router.get("", summary="Agents the caller may use: all of them for those who manage agents, else shared ones.")
async def list_agents(
    caller: UserCaller,
    session: SessionDep,
    page: PageParamsDep,
    q: Annotated[str | None, Query(max_length=80, description="Substring of the name.")] = None,
) -> Page[AgentRead]:
    return await AgentService(session, caller).list_agents(page, query=q)


@router.get("/{agent_id}", summary="One agent.")
async def get_agent(agent: ReadableAgent, session: SessionDep) -> AgentRead:
    return await AgentService(session, agent.caller).get(agent)


@router.patch(
    "/{agent_id}",
    summary="Change an agent draft.",
    responses=problems(s400="A tool is unknown or its settings are not valid."),
)
async def update_agent(agent: EditableAgent, body: AgentUpdate, session: SessionDep) -> AgentRead:
    return await AgentService(session, agent.caller).update(agent, body)


@router.delete(
    "/{agent_id}",
    summary="Delete an agent.",
    status_code=204,
    response_class=Response,
    responses=problems(s409="Another agent uses it as a sub-agent, in its draft or a published version."),
)
async def delete_agent(agent: ManagedAgent, session: SessionDep) -> None:
    await AgentService(session, agent.caller).delete(agent)


@router.post(
    "/{agent_id}/publish",
    status_code=status.HTTP_201_CREATED,
    summary="Publish the draft as the next version, which chat and the APIs then run.",
    responses=problems(
        s409="Published by someone else at the same moment, or no evaluation of the draft as it is "
        "(`evaluation_required`).",
        s422="The draft cannot be published, or its evaluation is below `min_pass_rate` (`below_pass_rate`).",
    ),
)
async def publish_agent(agent: EditableAgent, session: SessionDep, body: PublishIn | None = None) -> VersionRead:
    return await VersionService(session, agent.caller).publish(agent, body or PublishIn())


@router.get("/{agent_id}/versions", summary="The agent's versions, newest first (disabled ones for editors only).")
async def list_versions(agent: ReadableAgent, session: SessionDep) -> list[VersionRead]:
    return await VersionService(session, agent.caller).of_agent(agent)


VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/{agent_id}/versions/{number}", summary="One version.")
async def get_version(agent: ReadableAgent, number: VersionNumber, session: SessionDep) -> VersionRead:
    return await VersionService(session, agent.caller).get(agent, number)


@router.patch(
    "/{agent_id}/versions/{number}",
    summary="Disable a version (the newest enabled one is the published one) or enable it again.",
    responses=problems(s409="What the version uses no longer exists."),
)
async def update_version(
    agent: EditableAgent, number: VersionNumber, body: VersionUpdate, session: SessionDep
) -> VersionRead:
    return await VersionService(session, agent.caller).set_disabled(agent, number, body.disabled)


@router.post(
    "/{agent_id}/versions/{number}/rollback",
    summary="Make the draft what this version was (publish it again to make it the published one).",
    responses=problems(s409="The version's name is taken by another agent now."),
)
async def rollback_agent(agent: EditableAgent, number: VersionNumber, session: SessionDep) -> AgentRead:
    await VersionService(session, agent.caller).rollback(agent, number)
    return await AgentService(session, agent.caller).get(agent)


def _version_ref(value: str) -> VersionRef:
    if value == "draft":
        return "draft"
    if value.isascii() and value.isdigit() and 1 <= len(value) <= 10 and 1 <= int(value) <= 2**31 - 1:
        return int(value)
    raise RequestValidationError(
        [{"loc": ["query"], "msg": "A version number or `draft`.", "type": "value_error", "input": value}]
    )


VersionQuery = Annotated[str, Query(pattern=r"^(draft|[0-9]{1,10})$", description="A version number or `draft`.")]


@router.get(
    "/{agent_id}/compare",
    summary="What changes, field by field, from one version (or the draft) to another.",
    responses=problems(s403="Only editors see the draft."),
)
async def compare_versions(
    agent: ReadableAgent, session: SessionDep, base: VersionQuery, target: VersionQuery = "draft"
) -> VersionDiff:
    return await VersionService(session, agent.caller).diff(agent, _version_ref(base), _version_ref(target))


@router.get("/{agent_id}/shares", summary="Groups the agent is shared with.")
async def list_agent_shares(agent: ReadableAgent, session: SessionDep) -> list[ShareRead]:
    return await AgentService(session, agent.caller).shares_of(agent)


@router.put("/{agent_id}/shares/{group_id}", summary="Share the agent with a group (read or edit).")
async def share_agent(agent: ManagedAgent, group_id: uuid.UUID, body: ShareIn, session: SessionDep) -> ShareRead:
    return await AgentService(session, agent.caller).share(agent, group_id, body)


@router.delete(
    "/{agent_id}/shares/{group_id}", summary="Stop sharing with a group.", status_code=204, response_class=Response
)
async def unshare_agent(agent: ManagedAgent, group_id: uuid.UUID, session: SessionDep) -> None:
    await AgentService(session, agent.caller).unshare(agent, group_id)


# --- import and export: `/import` takes POST only, which no `/{agent_id}` route does, so the two never meet.


@router.get(
    "/{agent_id}/export",
    summary="The agent with its sub-agents and tool settings as one JSON document, to import elsewhere.",
    responses=problems(
        s403="Only editors export the draft (readers name a published version); a sub-agent is not shared with you.",
        s409="Its sub-agents do not fit one document.",
    ),
)
async def export_agent(
    agent: ReadableAgent,
    response: Response,
    session: SessionDep,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="A version; default: the draft.")] = None,
) -> AgentDocument:
    document = await TransferService(session, agent.caller).export(agent, version)
    response.headers["Content-Disposition"] = attachment_name(agent.resource.name)
    return document


@router.post(
    "/import/preview",
    summary="What importing a document would create here and how it maps onto this tenant; writes nothing.",
)
async def preview_import(body: AgentImport, caller: AgentManager, session: SessionDep) -> ImportPreview:
    return await TransferService(session, caller).preview(body)


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    summary="Create every agent of a document as drafts, sub-agents first, all or none.",
    responses=problems(s409="A name was taken at the same moment."),
)
async def import_agents(body: AgentImport, caller: AgentManager, session: SessionDep) -> ImportResult:
    return await TransferService(session, caller).run_import(body)


tools_router = APIRouter(prefix="/api/tools", tags=["agents"])


@tools_router.get(
    "",
    summary="The tools an agent of the tenant may be given: the built-in ones and the tenant's MCP servers' and "
    "OpenAPI imports' tools, with their source, description, arguments and the JSON schema of their settings.",
)
async def list_tools(caller: UserCaller, session: SessionDep) -> list[ToolRead]:
    return await tenant_tool_catalog(session, caller.tenant_id)


routers = [router, tools_router]
