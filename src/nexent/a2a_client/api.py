"""Remote agent routes: `/api/remote-agents` (the tenant's A2A agents, their cards and their health)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from nexent.a2a_client.schemas import (
    RemoteAgentCard,
    RemoteAgentCreate,
    RemoteAgentRead,
    RemoteAgentUpdate,
    RemoteCheckResult,
)
from nexent.a2a_client.service import RemoteAgentService
from nexent.core.openapi import problems
from nexent.core.pagination import Page, PageParamsDep
from nexent.engines.deps import EnginesDep, SessionDep
from nexent.identity.auth import Caller, RequirePermission
from nexent.identity.permissions import Permission

router = APIRouter(prefix="/api/remote-agents", tags=["remote-agents"])
ManageTools = Annotated[Caller, RequirePermission(Permission.MANAGE_TOOLS)]
AgentId = Annotated[uuid.UUID, Path(description="The remote agent's id.")]

_CARD = (
    "The card cannot be fetched or is not an A2A 1.0 card (`remote_agent_card_invalid`; `card_status` says why: "
    "unreachable, auth, protocol, timeout)."
)
_BAD = (
    "The URL is on an address that is not allowed (`remote_agent_url_not_allowed`), or an API key was given for "
    "a card that declares none in a header (`remote_agent_credentials_invalid`)."
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add a remote A2A agent by the URL of its agent card, with the credentials the card declares.",
    responses=problems(s400=_BAD, s409="The name is taken (`remote_agent_name_taken`).", s422=_CARD),
)
async def create_remote_agent(
    body: RemoteAgentCreate, caller: ManageTools, session: SessionDep, engines: EnginesDep
) -> RemoteAgentRead:
    return await RemoteAgentService(session, engines, caller).create(body)


@router.get("", summary="The tenant's remote agents (credentials are never returned).")
async def list_remote_agents(
    caller: ManageTools, session: SessionDep, engines: EnginesDep, page: PageParamsDep
) -> Page[RemoteAgentRead]:
    return await RemoteAgentService(session, engines, caller).page(page)


@router.get("/{remote_agent_id}", summary="One remote agent.", responses=problems(404))
async def get_remote_agent(
    remote_agent_id: AgentId, caller: ManageTools, session: SessionDep, engines: EnginesDep
) -> RemoteAgentRead:
    return await RemoteAgentService(session, engines, caller).get(remote_agent_id)


@router.get(
    "/{remote_agent_id}/card", summary="The remote agent's card as last fetched and validated.", responses=problems(404)
)
async def get_remote_agent_card(
    remote_agent_id: AgentId, caller: ManageTools, session: SessionDep, engines: EnginesDep
) -> RemoteAgentCard:
    return await RemoteAgentService(session, engines, caller).card(remote_agent_id)


@router.patch(
    "/{remote_agent_id}",
    summary="Change a remote agent; `api_key` and `token` replace the stored credential (empty: removed).",
    responses=problems(404, s400=_BAD, s409="The name is taken (`remote_agent_name_taken`).", s422=_CARD),
)
async def update_remote_agent(
    remote_agent_id: AgentId, body: RemoteAgentUpdate, caller: ManageTools, session: SessionDep, engines: EnginesDep
) -> RemoteAgentRead:
    return await RemoteAgentService(session, engines, caller).update(remote_agent_id, body)


@router.delete(
    "/{remote_agent_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a remote agent.",
    responses=problems(404, s409="A published agent version uses it as a sub-agent (`tool_source_in_use`)."),
)
async def delete_remote_agent(
    remote_agent_id: AgentId, caller: ManageTools, session: SessionDep, engines: EnginesDep
) -> None:
    await RemoteAgentService(session, engines, caller).delete(remote_agent_id)


@router.post(
    "/{remote_agent_id}/check",
    summary="Fetch and validate the card again, then make an authenticated request; the classified status "
    "(ok, unreachable, auth, protocol, timeout) is stored.",
    responses=problems(404),
)
async def check_remote_agent(
    remote_agent_id: AgentId, caller: ManageTools, session: SessionDep, engines: EnginesDep
) -> RemoteCheckResult:
    return await RemoteAgentService(session, engines, caller).check(remote_agent_id)


routers = [router]
