"""Agent routes: `/api/agents` (drafts), their versions and group shares, and `/api/tools` (the tool catalog). Who
may call each: `agents/auth.py`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from fastapi.exceptions import RequestValidationError

from nexent.agents.auth import AgentManager, EditableAgent, ManagedAgent, ReadableAgent
from nexent.agents.schemas import (
    AgentCreate,
    AgentRead,
    AgentUpdate,
    PublishIn,
    ToolRead,
    VersionDiff,
    VersionRead,
    VersionRef,
    VersionUpdate,
)
from nexent.agents.service import AgentService, tool_catalog
from nexent.agents.versions import VersionService
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


tools_router = APIRouter(prefix="/api/tools", tags=["agents"])


@tools_router.get(
    "",
    summary="The tools an agent may be given: description, arguments and the JSON schema of their settings.",
)
async def list_tools(caller: UserCaller) -> list[ToolRead]:
    return tool_catalog()


routers = [router, tools_router]
