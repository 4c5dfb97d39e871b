"""Agent routes: `/api/agents` (drafts) and their group shares, and `/api/tools` (the tool catalog). Who may call
each: `agents/auth.py`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from nexent.agents.auth import AgentManager, EditableAgent, ManagedAgent, ReadableAgent
from nexent.agents.schemas import AgentCreate, AgentRead, AgentUpdate, ToolRead
from nexent.agents.service import AgentService, tool_catalog
from nexent.core.openapi import problems
from nexent.core.pagination import Page, PageParamsDep
from nexent.engines.deps import SessionDep
from nexent.identity.auth import UserCaller
from nexent.identity.schemas import ShareIn, ShareRead

router = APIRouter(prefix="/api/agents", tags=["agents"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an agent draft.",
    responses=problems(s400="A tool is unknown or its settings are not valid."),
)
async def create_agent(body: AgentCreate, caller: AgentManager, session: SessionDep) -> AgentRead:
    return await AgentService(session, caller).create(body)


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


@router.delete("/{agent_id}", summary="Delete an agent.", status_code=204, response_class=Response)
async def delete_agent(agent: ManagedAgent, session: SessionDep) -> None:
    await AgentService(session, agent.caller).delete(agent)


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


tools_router = APIRouter(prefix="/api/tools", tags=["agents"])


@tools_router.get(
    "",
    summary="The tools an agent may be given: description, arguments and the JSON schema of their settings.",
)
async def list_tools(caller: UserCaller) -> list[ToolRead]:
    return tool_catalog()


routers = [router, tools_router]
