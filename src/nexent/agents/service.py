"""Agent drafts: validation (model, tools, sub-agents without cycles), access through roles and group shares."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, or_, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.agents.models import A2aExposure, Agent, AgentVersion
from nexent.agents.repository import AgentRepository, exposed_over_a2a
from nexent.agents.schemas import (
    AgentConfig,
    AgentCreate,
    AgentRead,
    AgentUpdate,
    Instructions,
    ToolRead,
    ToolSourceRead,
    ToolUse,
    VersionRef,
)
from nexent.agents.versions import VersionService
from nexent.core.errors import AppError, Conflict, NotFound
from nexent.core.pagination import Page, PageParams
from nexent.core.references import refuse_if_used
from nexent.identity.auth import Caller
from nexent.identity.permissions import Permission
from nexent.identity.schemas import ShareIn, ShareRead
from nexent.identity.services.audit import record
from nexent.identity.services.sharing import Granted, ResourceAccess, Shareable, ShareService
from nexent.knowledge.service import readable_knowledge_base_ids
from nexent.providers.models import ModelConfig, ModelEndpoint, ModelKind
from nexent.providers.service import model_facts
from nexent.skills.service import readable_skills
from nexent.tools import registry, sources

RESOURCE = "agent"
AGENTS = Shareable(RESOURCE, manage=Permission.MANAGE_AGENTS)


_BUILTIN = ToolSourceRead(kind="builtin", name="builtin")
_NO_SETTINGS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


def tool_catalog() -> list[ToolRead]:
    """Every built-in tool, by name: what it does, its arguments and its per-agent settings."""
    return [
        ToolRead(
            name=tool.name,
            description=tool.description,
            parameters=tool.parameters,
            settings_schema=tool.settings_json_schema,
            managed_settings=list(tool.managed_settings),
            source=_BUILTIN,
        )
        for tool in registry.all_tools()
    ]


async def tenant_tool_catalog(session: AsyncSession, tenant_id: uuid.UUID) -> list[ToolRead]:
    """Every tool an agent of the tenant may be given: the built-in ones, then the tenant's sources' tools (which
    take no settings), by name."""
    external = [
        ToolRead(
            name=tool.name,
            description=tool.description,
            parameters=tool.parameters,
            settings_schema=_NO_SETTINGS,
            managed_settings=[],
            source=source_read(tool.source),
        )
        for tool in await sources.tenant_tools(session, tenant_id)
    ]
    return sorted([*tool_catalog(), *external], key=lambda t: t.name)


def source_read(source: sources.SourceRef) -> ToolSourceRead:
    return ToolSourceRead.model_validate({"kind": source.kind, "id": source.id, "name": source.name})


class AgentNotFound(NotFound):
    code = "agent_not_found"


class InvalidAgent(AppError):
    """A draft that points at things that do not exist or do not fit; `errors` names each field."""

    status, code = 422, "invalid_agent"


class AgentService:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller
        self.agents = AgentRepository(session, caller.tenant_id)
        self.shares = ShareService(session, caller)
        self.access = ResourceAccess(session, caller, AGENTS)
        self.versions = VersionService(session, caller)
        # Seeing and using agents follows the member's role, also through their API keys.
        self.sees_all = self.access.sees_all

    # --- reading ------------------------------------------------------------------------------------------------

    async def reach(self, agent_id: uuid.UUID) -> Granted[Agent]:
        """The agent if the caller may read it (a 404 otherwise, as for another tenant's agents), and whether they
        may change it: what `agents/auth.py` gives the routes."""
        found = await self.agents.get_checked(agent_id, where=self._visible(), flag=self.access.editable(Agent.id))
        if found is None:
            raise AgentNotFound(f"No agent {agent_id} in this tenant.")
        agent, can_edit = found
        return Granted(self.caller, agent, can_edit)

    def _visible(self) -> ColumnElement[bool]:
        """What the caller sees: agents they may read, and of those they may not edit only the published ones."""
        return self.access.readable(Agent.id) & or_(
            self.access.editable(Agent.id), Agent.published_version.is_not(None)
        )

    async def with_model(
        self, agent_id: uuid.UUID, number: int | None
    ) -> tuple[Agent, AgentVersion | None, ModelConfig | None, list[ModelEndpoint]]:
        """For a caller who sees every agent of the tenant: the agent (if they may use it), its version `number`
        (the published one when None, none when 0), the model that thinks (the version's, else the draft's) and
        the model's endpoints, in one query."""
        found = (
            await self.agents.with_model(agent_id, number)
            if self.sees_all and self.caller.may_use_agent(agent_id)
            else None
        )
        if found is None:
            raise AgentNotFound(f"No agent {agent_id} in this tenant.")
        return found

    async def published_usable(self, name: str | None = None, *, limit: int = 1000) -> list[Agent]:
        """The agents with a published version that the caller may use (an API key limited to some agents: only
        those), by name; with `name`, the one of that name only. What the external APIs offer."""
        where = self._visible() & Agent.published_version.is_not(None)
        if self.caller.allowed_agent_ids is not None:
            where = where & Agent.id.in_(sorted(self.caller.allowed_agent_ids))
        if name is not None:
            where = where & (Agent.name == name)
        rows, _ = await self.agents.page_checked(where=where, flag=true(), name_contains=None, limit=limit, offset=0)
        return [agent for agent, _ in rows]

    async def get_usable(self, agent_id: uuid.UUID) -> Granted[Agent]:
        """The agent, if the caller may use it (a 404 otherwise, as for another tenant's agents)."""
        granted = await self.reach(agent_id)
        if not self.caller.may_use_agent(agent_id):
            raise AgentNotFound(f"No agent {agent_id} in this tenant.")
        return granted

    async def version_for_run(self, agent_id: uuid.UUID, wanted: VersionRef | None) -> AgentVersion | None:
        """The version a run of the agent asks for (`wanted`; the published one when None); None for the draft."""
        return await self.versions.for_run(agent_id, wanted)

    async def get(self, agent: Granted[Agent]) -> AgentRead:
        published = {} if agent.can_edit else await self.versions.published_configs([agent.resource.id])
        return _read(agent.resource, can_edit=agent.can_edit, published=published.get(agent.resource.id))

    async def list_agents(self, page: PageParams, *, query: str | None) -> Page[AgentRead]:
        """Members who manage agents see all of them; others see those shared with their groups."""
        rows, total = await self.agents.page_checked(
            where=self._visible(),
            flag=self.access.editable(Agent.id),
            name_contains=query,
            limit=page.limit,
            offset=page.offset,
        )
        published = await self.versions.published_configs([agent.id for agent, can_edit in rows if not can_edit])
        items = [_read(agent, can_edit=can_edit, published=published.get(agent.id)) for agent, can_edit in rows]
        return Page[AgentRead](items=items, total=total, limit=page.limit, offset=page.offset)

    # --- writing ------------------------------------------------------------------------------------------------

    async def create(self, data: AgentCreate) -> AgentRead:
        """A new agent (the route's `AgentManager` checked the caller's role)."""
        await self._check_name(data.name)
        agent = Agent(tenant_id=self.caller.tenant_id, created_by=self.caller.user_id)
        _apply(agent, data.model_dump(exclude_unset=False))
        await self._validate(agent)
        try:
            async with self.session.begin_nested():
                await self.agents.add(agent)
        except IntegrityError:
            raise Conflict(f"An agent named {data.name!r} exists.", code="agent_name_taken") from None
        await record(self.session, self.caller, "agent.created", RESOURCE, agent.id, name=agent.name)
        return _read(agent, can_edit=True)

    async def update(self, granted: Granted[Agent], data: AgentUpdate) -> AgentRead:
        agent = granted.resource
        if data.name is not None:
            await self._check_name(data.name, except_id=agent.id)
        changes = data.model_dump(exclude_unset=True)
        _apply(agent, changes)
        await self._validate(agent)
        await self.session.flush()
        await record(self.session, self.caller, "agent.updated", RESOURCE, agent.id, fields=sorted(changes))
        return _read(agent, can_edit=True)

    async def delete(self, granted: Granted[Agent]) -> None:
        agent = granted.resource
        callers = [a for a, subs in (await self.agents.sub_agent_graph()).items() if agent.id in subs]
        if callers:
            raise Conflict(
                "Other agents use this one as a sub-agent; remove it from them first.",
                code="agent_in_use",
                extra={"used_by": [str(a) for a in callers]},
            )
        await refuse_if_used(self.session, self.caller.tenant_id, "agent", agent.id)
        await self.agents.delete(agent)
        await record(self.session, self.caller, "agent.deleted", RESOURCE, agent.id, name=agent.name)

    async def _check_name(self, name: str, *, except_id: uuid.UUID | None = None) -> None:
        if await self.agents.name_taken(name, except_id=except_id):
            raise Conflict(f"An agent named {name!r} exists.", code="agent_name_taken")

    async def _validate(self, agent: Agent) -> None:
        """Every reference must exist in this tenant and fit: the model, each tool's settings, the sub-agents."""
        errors: list[dict[str, Any]] = []
        if agent.model_id is not None:
            model = await model_facts(self.session, self.caller.tenant_id, agent.model_id)
            if model is None:
                errors.append(_error(["model_id"], "No such model in this tenant."))
            elif model.kind not in (ModelKind.LLM, ModelKind.VLM):
                errors.append(_error(["model_id"], f"The model is an {model.kind} model; agents need an llm or vlm."))
        seen: set[str] = set()
        tenant_tools: set[str] | None = None
        for index, tool in enumerate(agent.tools):
            name = str(tool.get("name"))
            if name in seen:
                errors.append(_error(["tools", index, "name"], f"The tool {name!r} is listed twice."))
            seen.add(name)
            if not registry.has(name):  # a tool of one of the tenant's sources (MCP servers, OpenAPI imports)
                if tenant_tools is None:
                    tenant_tools = {t.name for t in await sources.tenant_tools(self.session, self.caller.tenant_id)}
                if name not in tenant_tools:
                    errors.append(_error(["tools", index], f"No tool named {name!r} in this tenant."))
                elif tool.get("settings"):
                    errors.append(_error(["tools", index, "settings"], f"The tool {name!r} takes no settings."))
                continue
            try:
                registry.validate_settings(name, tool.get("settings") or {})
            except (registry.UnknownTool, registry.ToolSettingsError) as exc:
                errors.append(_error(["tools", index], str(exc)))
        errors.extend(await self._sub_agent_errors(agent))
        # An agent searches its knowledge bases for all its users: attach only what the editor may read.
        known = await readable_knowledge_base_ids(
            self.session, self.caller, [uuid.UUID(k) for k in agent.knowledge_base_ids]
        )
        errors.extend(
            _error(["knowledge_base_ids", index], f"No knowledge base {kb_id} in this tenant.")
            for index, kb_id in enumerate(agent.knowledge_base_ids)
            if uuid.UUID(kb_id) not in known
        )
        # Skills too: the agent loads them for all its users; attach only what the editor may read.
        skill_ids = [uuid.UUID(s) for s in agent.skill_ids or []]
        readable = {skill.id for skill in await readable_skills(self.session, self.caller, skill_ids)}
        errors.extend(
            _error(["skill_ids", index], f"No skill {skill_id} in this tenant.")
            for index, skill_id in enumerate(skill_ids)
            if skill_id not in readable
        )
        if errors:
            raise InvalidAgent("The agent is not valid.", extra={"errors": errors})

    async def _sub_agent_errors(self, agent: Agent) -> list[dict[str, Any]]:
        graph = await self.agents.sub_agent_graph()
        graph[agent.id] = [uuid.UUID(s) for s in agent.sub_agent_ids]
        errors = [
            _error(["sub_agent_ids", index], f"No agent {sub} in this tenant.")
            for index, sub in enumerate(graph[agent.id])
            if sub not in graph
        ]
        if agent.id in graph[agent.id]:
            errors.append(_error(["sub_agent_ids"], "An agent cannot be its own sub-agent."))
        elif _reaches(graph, start=agent.id):
            errors.append(_error(["sub_agent_ids"], "These sub-agents would make a cycle back to this agent."))
        return errors

    # --- sharing ------------------------------------------------------------------------------------------------

    async def shares_of(self, agent: Granted[Agent]) -> list[ShareRead]:
        return await self.shares.list(RESOURCE, agent.resource.id)

    async def share(self, agent: Granted[Agent], group_id: uuid.UUID, data: ShareIn) -> ShareRead:
        return await self.shares.share(RESOURCE, agent.resource.id, group_id, data.permission)

    async def unshare(self, agent: Granted[Agent], group_id: uuid.UUID) -> None:
        await self.shares.unshare(RESOURCE, agent.resource.id, group_id)


async def existing_agent_ids(
    session: AsyncSession, tenant_id: uuid.UUID, agent_ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """Those of `agent_ids` that are agents of the tenant: what identity asks before it limits an API key to agents
    (provided to it through `identity.hooks` by `nexent.wiring`)."""
    return await AgentRepository(session, tenant_id).existing_ids(agent_ids)


def _reaches(graph: dict[uuid.UUID, list[uuid.UUID]], *, start: uuid.UUID) -> bool:
    """Whether following sub-agents from `start` ever leads back to it."""
    stack, seen = list(graph.get(start, [])), set()
    while stack:
        current = stack.pop()
        if current == start:
            return True
        if current in seen:
            continue
        seen.add(current)
        stack.extend(graph.get(current, []))
    return False


def _error(loc: list[Any], msg: str) -> dict[str, Any]:
    return {"loc": ["body", *map(str, loc)], "msg": msg, "type": "invalid_reference"}


def _apply(agent: Agent, values: dict[str, Any]) -> None:
    for field, value in values.items():
        if field == "instructions":
            instructions = value or {}
            agent.duty = instructions.get("duty", "")
            agent.constraints = instructions.get("constraints", "")
            agent.examples = list(instructions.get("examples", []))
        elif field in ("sub_agent_ids", "knowledge_base_ids", "skill_ids"):
            setattr(agent, field, list(dict.fromkeys(str(s) for s in value)))
        elif field == "tools":
            agent.tools = [dict(t) for t in value]
        else:
            setattr(agent, field, value)


def _read(agent: Agent, *, can_edit: bool, published: AgentConfig | None = None) -> AgentRead:
    """The agent as the caller sees it: its draft, or its published version for those who may not edit it."""
    if published is not None:
        return AgentRead(
            **published.model_dump(exclude={"sub_agents", "skills"}),
            id=agent.id,
            sub_agent_ids=[pin.agent_id for pin in published.sub_agents],
            skill_ids=[use.skill_id for use in published.skills],
            min_pass_rate=agent.min_pass_rate,
            a2a_exposure=agent.a2a_exposure,
            published_version=agent.published_version,
            can_edit=can_edit,
            created_by=agent.created_by,
            created_at=agent.created_at,
            updated_at=agent.updated_at,
        )
    return AgentRead(
        id=agent.id,
        name=agent.name,
        display_name=agent.display_name,
        description=agent.description,
        instructions=Instructions(duty=agent.duty, constraints=agent.constraints, examples=agent.examples),
        model_id=agent.model_id,
        agent_type=agent.agent_type,
        tools=[ToolUse(**t) for t in agent.tools],
        sub_agent_ids=[uuid.UUID(s) for s in agent.sub_agent_ids],
        knowledge_base_ids=[uuid.UUID(s) for s in agent.knowledge_base_ids],
        skill_ids=[uuid.UUID(s) for s in agent.skill_ids or []],
        max_steps=agent.max_steps,
        greeting=agent.greeting,
        example_questions=agent.example_questions,
        min_pass_rate=agent.min_pass_rate,
        a2a_exposure=agent.a2a_exposure,
        published_version=agent.published_version,
        can_edit=can_edit,
        created_by=agent.created_by,
        created_at=agent.created_at,
        updated_at=agent.updated_at,
    )


@dataclass(frozen=True)
class A2aAgent:
    """An agent exposed over A2A, as its card and its callers see it: its published version."""

    agent_id: uuid.UUID
    tenant_id: uuid.UUID
    owner_id: uuid.UUID | None
    exposure: A2aExposure
    config: AgentConfig


async def exposed_agent(session: AsyncSession, agent_id: uuid.UUID) -> A2aAgent | None:
    """The agent if it is published and exposed over A2A; None otherwise (also for unknown ids)."""
    found = await exposed_over_a2a(session, agent_id)
    if found is None:
        return None
    agent, version = found
    return A2aAgent(
        agent_id=agent.id,
        tenant_id=agent.tenant_id,
        owner_id=agent.created_by,
        exposure=A2aExposure(agent.a2a_exposure),
        config=AgentConfig.model_validate(version.config),
    )
