"""Memory routes: `/api/memories` (a member's own memories; managers also the tenant's and agents'),
`/api/memory/settings` (a member's switches) and `/api/memory/agents/{agent_id}` (an agent's switch, managers).

Every route needs a signed-in user (API keys: 403 `api_key_not_allowed`). Another user's memory answers 404
`memory_not_found` like an absent one; the tenant's and agents' memories are read by every member and changed only
by those whose role grants `memory.manage` (403 `permission_denied`).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from nexent.core.openapi import problems
from nexent.core.pagination import Page, PageParamsDep
from nexent.engines.deps import EnginesDep, SessionDep
from nexent.identity.auth import Caller, RequirePermission, UserCaller
from nexent.identity.permissions import Permission
from nexent.memory.models import MemoryLevel
from nexent.memory.schemas import (
    AgentMemorySetting,
    AgentMemorySettingUpdate,
    MemoryCreate,
    MemoryRead,
    MemorySettingsRead,
    MemorySettingsUpdate,
    MemoryUpdate,
)
from nexent.memory.service import MemoryService

router = APIRouter(tags=["memory"])
MemoryManager = Annotated[Caller, RequirePermission(Permission.MANAGE_MEMORY)]
MemoryId = Annotated[uuid.UUID, Path(description="The memory's id.")]
AgentId = Annotated[uuid.UUID, Path(description="The agent's id.")]

_MODEL = "The tenant has no default embedding model (`no_default_model`)."
_EMBED = "The embedding model failed (`model_call_failed`)."
_AGENT = "`agent_id` names no agent of the tenant (`agent_not_found`)."
_SCOPE = "`agent_id` does not fit the level (`invalid_memory_scope`)."


@router.get("/api/memories", summary="Memories the caller reads, newest first; `q` searches them by meaning.")
async def list_memories(
    caller: UserCaller,
    session: SessionDep,
    engines: EnginesDep,
    page: PageParamsDep,
    level: Annotated[MemoryLevel | None, Query(description="Only this level.")] = None,
    agent_id: Annotated[uuid.UUID | None, Query(description="Only memories of this agent.")] = None,
    q: Annotated[str | None, Query(max_length=2000, description="Search text (hybrid search).")] = None,
) -> Page[MemoryRead]:
    return await MemoryService(session, engines, caller).list_memories(page, level=level, agent_id=agent_id, query=q)


@router.post(
    "/api/memories",
    status_code=status.HTTP_201_CREATED,
    summary="Add a memory: the caller's own (`user`, `user_agent`), or (managers) the tenant's or an agent's.",
    responses=problems(403, s404=_AGENT, s409=_MODEL, s422=_SCOPE, s502=_EMBED),
)
async def create_memory(body: MemoryCreate, caller: UserCaller, session: SessionDep, engines: EnginesDep) -> MemoryRead:
    service = MemoryService(session, engines, caller)
    created = await service.create(body)
    await session.commit()
    await service.start_jobs()
    return created


@router.get("/api/memories/{memory_id}", summary="One memory.", responses=problems(404))
async def get_memory(memory_id: MemoryId, caller: UserCaller, session: SessionDep, engines: EnginesDep) -> MemoryRead:
    return await MemoryService(session, engines, caller).get(memory_id)


@router.patch(
    "/api/memories/{memory_id}",
    summary="Change a memory's text.",
    responses=problems(403, 404, s409=_MODEL, s502=_EMBED),
)
async def update_memory(
    memory_id: MemoryId, body: MemoryUpdate, caller: UserCaller, session: SessionDep, engines: EnginesDep
) -> MemoryRead:
    service = MemoryService(session, engines, caller)
    updated = await service.update(memory_id, body)
    await session.commit()
    await service.start_jobs()
    return updated


@router.delete(
    "/api/memories/{memory_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a memory.",
    responses=problems(403, 404),
)
async def delete_memory(memory_id: MemoryId, caller: UserCaller, session: SessionDep, engines: EnginesDep) -> Response:
    await MemoryService(session, engines, caller).delete(memory_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/memory/settings", summary="The caller's memory switches: per level, and agents turned off.")
async def get_memory_settings(caller: UserCaller, session: SessionDep, engines: EnginesDep) -> MemorySettingsRead:
    return await MemoryService(session, engines, caller).get_settings()


@router.put(
    "/api/memory/settings",
    summary="Turn the caller's memory on or off per level, and off for some agents (no recall, no extraction).",
    responses=problems(s404="An agent of `disabled_agent_ids` is not an agent of the tenant (`agent_not_found`)."),
)
async def update_memory_settings(
    body: MemorySettingsUpdate, caller: UserCaller, session: SessionDep, engines: EnginesDep
) -> MemorySettingsRead:
    return await MemoryService(session, engines, caller).update_settings(body)


@router.get(
    "/api/memory/agents/{agent_id}",
    summary="Whether an agent's runs use memory.",
    responses=problems(s404=_AGENT),
)
async def get_agent_memory(
    agent_id: AgentId, caller: MemoryManager, session: SessionDep, engines: EnginesDep
) -> AgentMemorySetting:
    return await MemoryService(session, engines, caller).agent_setting(agent_id)


@router.put(
    "/api/memory/agents/{agent_id}",
    summary="Turn memory on or off for every run of an agent.",
    responses=problems(s404=_AGENT),
)
async def set_agent_memory(
    agent_id: AgentId, body: AgentMemorySettingUpdate, caller: MemoryManager, session: SessionDep, engines: EnginesDep
) -> AgentMemorySetting:
    return await MemoryService(session, engines, caller).set_agent(agent_id, body.enabled)


routers = [router]
