"""Published versions of agents: publishing a draft as an immutable numbered snapshot (in one transaction), reading
and comparing versions, rolling the draft back to one, disabling one, and what a run runs (`AgentSpec`: a draft
or a version, in one shape).

The published version is the newest enabled one (`Agent.published_version`): chat and the external APIs run it
unless a request names another; the studio's test chat runs the draft. A version pins what it uses: the model
resolved when it was published (the tenant's default then, when the draft named none), its knowledge bases, and
each sub-agent at the sub-agent's own published version. While an enabled version uses a model, a knowledge base
or a sub-agent, deleting that is refused (`core.references`).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.agents.models import Agent, AgentVersion
from nexent.agents.repository import AgentRepository, VersionRepository
from nexent.agents.schemas import (
    AgentConfig,
    FieldChange,
    Instructions,
    PublishIn,
    SkillUse,
    SubAgentPin,
    ToolSnapshot,
    ToolUse,
    VersionDiff,
    VersionRead,
    VersionRef,
)
from nexent.core.errors import AppError, Conflict, Forbidden, NotFound
from nexent.identity.auth import Caller
from nexent.identity.services.audit import record
from nexent.identity.services.sharing import Granted
from nexent.knowledge.service import readable_knowledge_base_ids
from nexent.providers.models import ModelKind
from nexent.providers.service import default_model_facts, model_facts
from nexent.skills.service import load_for_run, pin_latest
from nexent.tools import registry, sources

RESOURCE = "agent"


class VersionNotFound(NotFound):
    code = "version_not_found"


class VersionDisabled(AppError):
    status, code = 409, "version_disabled"


class NotPublished(AppError):
    """The agent has no enabled version, and the caller may not run its draft."""

    status, code = 409, "agent_not_published"


class CannotPublish(AppError):
    """The draft cannot become a version as it is; `errors` names each reason."""

    status, code = 422, "cannot_publish"


# Checks a draft must pass to be published, given its fingerprint; each raises to refuse. A higher domain
# (evaluation: `min_pass_rate`) provides one through `wiring.py`, as agents may not import it.
PublishGate = Callable[[AsyncSession, Caller, Agent, str], Awaitable[None]]
_publish_gates: list[PublishGate] = []


def provide_publish_gate(gate: PublishGate) -> None:
    if gate not in _publish_gates:
        _publish_gates.append(gate)


@dataclass(frozen=True)
class AgentSpec:
    """What a run runs: an agent's draft (`version` None) or one of its versions, in one shape."""

    id: uuid.UUID
    version: int | None
    name: str
    display_name: str
    description: str
    duty: str
    constraints: str
    examples: list[dict[str, str]]
    model_id: uuid.UUID | None
    agent_type: str
    tools: list[dict[str, Any]]
    knowledge_base_ids: list[str]
    sub_agents: list[tuple[uuid.UUID, int | None]]  # a draft's sub-agents run at their published version
    max_steps: int
    # The skills (id, pinned version; None in a draft: the newest) the run may load.
    skills: list[tuple[uuid.UUID, int | None]] = field(default_factory=list)
    # A version's tenant tools as published (by name); a draft's are looked up when its run starts.
    tool_schemas: dict[str, sources.ExternalTool] = field(default_factory=dict)

    @classmethod
    def of_draft(cls, agent: Agent) -> AgentSpec:
        return cls(
            id=agent.id,
            version=None,
            name=agent.name,
            display_name=agent.display_name,
            description=agent.description,
            duty=agent.duty,
            constraints=agent.constraints,
            examples=list(agent.examples),
            model_id=agent.model_id,
            agent_type=agent.agent_type,
            tools=[dict(t) for t in agent.tools],
            knowledge_base_ids=list(agent.knowledge_base_ids),
            sub_agents=[(uuid.UUID(s), None) for s in agent.sub_agent_ids],
            max_steps=agent.max_steps,
            skills=[(uuid.UUID(s), None) for s in agent.skill_ids or []],
        )

    @classmethod
    def of_version(cls, version: AgentVersion) -> AgentSpec:
        config = AgentConfig.model_validate(version.config)
        return cls(
            id=version.agent_id,
            version=version.number,
            name=config.name,
            display_name=config.display_name,
            description=config.description,
            duty=config.instructions.duty,
            constraints=config.instructions.constraints,
            examples=[e.model_dump() for e in config.instructions.examples],
            model_id=config.model_id,
            agent_type=config.agent_type,
            tools=[t.model_dump() for t in config.tools],
            knowledge_base_ids=[str(k) for k in config.knowledge_base_ids],
            sub_agents=[(pin.agent_id, pin.version) for pin in config.sub_agents],
            max_steps=config.max_steps,
            skills=[(use.skill_id, use.version) for use in config.skills],
            tool_schemas={
                t.name: sources.ExternalTool.from_snapshot(t.model_dump(mode="json")) for t in config.tool_schemas
            },
        )


def draft_config(agent: Agent) -> AgentConfig:
    """The draft in a version's shape (the model as the draft names it; sub-agents not pinned)."""
    return AgentConfig(
        name=agent.name,
        display_name=agent.display_name,
        description=agent.description,
        instructions=Instructions(duty=agent.duty, constraints=agent.constraints, examples=agent.examples),
        model_id=agent.model_id,
        agent_type=agent.agent_type,
        tools=[ToolUse(**t) for t in agent.tools],
        knowledge_base_ids=[uuid.UUID(k) for k in agent.knowledge_base_ids],
        sub_agents=[SubAgentPin(agent_id=uuid.UUID(s), version=None) for s in agent.sub_agent_ids],
        skills=[SkillUse(skill_id=uuid.UUID(s)) for s in agent.skill_ids or []],
        max_steps=agent.max_steps,
        greeting=agent.greeting,
        example_questions=list(agent.example_questions),
    )


def fingerprint(config: AgentConfig) -> str:
    """A digest of what a draft or version would do (names and notes aside): equal for equal behaviour."""
    data = config.model_dump(
        mode="json", exclude={"display_name", "greeting", "example_questions", "description", "tool_schemas"}
    )
    for pin in data["sub_agents"]:
        pin["version"] = None  # a draft's sub-agents are not pinned: compare what the agent itself says
    data["skills"] = [use["skill_id"] for use in data.get("skills", [])]  # nor its skills
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class VersionService:
    """Versions of one tenant's agents, for a caller whose route dependency resolved the agent."""

    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller
        self.agents = AgentRepository(session, caller.tenant_id)
        self.versions = VersionRepository(session, caller.tenant_id)

    # --- reading ------------------------------------------------------------------------------------------------

    async def of_agent(self, granted: Granted[Agent]) -> list[VersionRead]:
        agent = granted.resource
        return [_read(v, agent) for v in await self.versions.of_agent(agent.id) if granted.can_edit or not v.disabled]

    async def get(self, granted: Granted[Agent], number: int) -> VersionRead:
        return _read(await self._version(granted, number), granted.resource)

    async def _version(self, granted: Granted[Agent], number: int) -> AgentVersion:
        version = await self.versions.number(granted.resource.id, number)
        if version is None or (version.disabled and not granted.can_edit):
            raise VersionNotFound(f"The agent has no version {number}.")
        return version

    async def published_configs(self, agent_ids: list[uuid.UUID]) -> dict[uuid.UUID, AgentConfig]:
        """The published version of each of these agents that has one: what those who may not edit them see."""
        found = await self.versions.published(agent_ids)
        return {agent_id: AgentConfig.model_validate(v.config) for agent_id, v in found.items()}

    async def diff(self, granted: Granted[Agent], base: VersionRef, target: VersionRef) -> VersionDiff:
        """Field by field, what changes from `base` to `target` (a version number or `draft`)."""
        if "draft" in (base, target) and not granted.can_edit:
            raise Forbidden("Only those who may edit the agent see its draft.", code="permission_denied")
        before, after = await self._config(granted, base), await self._config(granted, target)
        return VersionDiff(base=base, target=target, changes=compare(before, after))

    async def _config(self, granted: Granted[Agent], ref: VersionRef) -> AgentConfig:
        if ref == "draft":  # what publishing it would make: a draft on the default model equals its version
            config, _ = await self.as_published(granted.resource)
            return config
        return AgentConfig.model_validate((await self._version(granted, ref)).config)

    # --- writing ------------------------------------------------------------------------------------------------

    async def publish(self, granted: Granted[Agent], data: PublishIn) -> VersionRead:
        """Snapshot the draft as the next version and make it the published one, all in the request's transaction
        (a failure anywhere leaves no version and the published one unchanged)."""
        agent = granted.resource
        for gate in _publish_gates:
            await gate(self.session, self.caller, agent, fingerprint(draft_config(agent)))
        config = await self._resolved(agent)
        number = await self.versions.last_number(agent.id) + 1
        version = AgentVersion(
            tenant_id=agent.tenant_id,
            agent_id=agent.id,
            number=number,
            config=config.model_dump(mode="json"),
            model_id=config.model_id,
            note=data.note,
            created_by=self.caller.user_id,
        )
        try:
            async with self.session.begin_nested():
                await self.versions.add(version)
        except IntegrityError:
            raise Conflict(
                "Someone published this agent at the same moment; reload and try again.", code="publish_conflict"
            ) from None
        assert config.model_id is not None  # resolved by `_resolved`
        refs = [("model", config.model_id)]
        refs += [("knowledge_base", kb) for kb in config.knowledge_base_ids]
        refs += [("agent", pin.agent_id) for pin in config.sub_agents]
        refs += [("skill", use.skill_id) for use in config.skills]
        refs += list(dict.fromkeys(("tool_source", t.source.id) for t in config.tool_schemas if t.source.id))
        await self.versions.add_refs(version, refs)
        await self.versions.set_published(agent.id, number)
        agent.published_version = number
        await record(self.session, self.caller, "agent.published", RESOURCE, agent.id, version=number)
        return _read(version, agent)

    async def _resolved(self, agent: Agent) -> AgentConfig:
        """The draft as a version: its model resolved, sub-agents pinned; `CannotPublish` naming what is missing."""
        config, errors = await self.as_published(agent)
        if errors:
            raise CannotPublish("The draft cannot be published as it is.", extra={"errors": errors})
        return config

    async def as_published(self, agent: Agent) -> tuple[AgentConfig, list[dict[str, Any]]]:
        """The draft as publishing it now would make it (the tenant's default model named when it names none, each
        sub-agent pinned to its published version), and what keeps it from being published (an unpublished
        sub-agent stays unpinned)."""
        errors: list[dict[str, Any]] = []
        config = draft_config(agent)
        tenant = self.caller.tenant_id
        if agent.model_id is not None:
            model = await model_facts(self.session, tenant, agent.model_id)
        else:
            model = await default_model_facts(self.session, tenant, ModelKind.LLM)
        if model is None:
            errors.append(_error(["model_id"], "The agent names no model and the tenant has no default LLM."))
        else:
            config.model_id = model.id
        published = await self.versions.published([pin.agent_id for pin in config.sub_agents])
        for index, pin in enumerate(config.sub_agents):
            sub = published.get(pin.agent_id)
            if sub is None:
                errors.append(_error(["sub_agent_ids", index], f"Publish the sub-agent {pin.agent_id} first."))
            else:
                pin.version = sub.number
        if config.skills:  # each skill pinned to its newest version
            wanted = [use.skill_id for use in config.skills]
            latest = {found.skill_id: found for found in await pin_latest(self.session, tenant, wanted)}
            for index, use in enumerate(config.skills):
                found = latest.get(use.skill_id)
                if found is None:
                    errors.append(_error(["skill_ids", index], f"No skill {use.skill_id} in this tenant now."))
                else:
                    use.name, use.version = found.name, found.version
        external = [(index, t.name) for index, t in enumerate(config.tools) if not registry.has(t.name)]
        if external:  # the tenant's tools as they are now: the version keeps what it was published with
            offered = {t.name: t for t in await sources.tenant_tools(self.session, tenant)}
            for index, name in external:
                tool = offered.get(name)
                if tool is None:
                    errors.append(_error(["tools", index], f"No tool named {name!r} in this tenant any more."))
                else:
                    config.tool_schemas.append(ToolSnapshot.model_validate(tool.snapshot()))
        return config, errors

    async def rollback(self, granted: Granted[Agent], number: int) -> Agent:
        """Make the draft what version `number` was (sub-agents unpinned again); the published version stays."""
        config = AgentConfig.model_validate((await self._version(granted, number)).config)
        agent = granted.resource
        if config.name.lower() != agent.name.lower() and await self.agents.name_taken(config.name, except_id=agent.id):
            raise Conflict(f"An agent named {config.name!r} exists; rename it first.", code="agent_name_taken")
        agent.name, agent.display_name, agent.description = config.name, config.display_name, config.description
        agent.duty, agent.constraints = config.instructions.duty, config.instructions.constraints
        agent.examples = [e.model_dump() for e in config.instructions.examples]
        agent.model_id, agent.agent_type, agent.max_steps = config.model_id, config.agent_type, config.max_steps
        agent.tools = [t.model_dump() for t in config.tools]
        agent.knowledge_base_ids = [str(k) for k in config.knowledge_base_ids]
        agent.sub_agent_ids = [str(pin.agent_id) for pin in config.sub_agents]
        agent.skill_ids = [str(use.skill_id) for use in config.skills]
        agent.greeting, agent.example_questions = config.greeting, list(config.example_questions)
        await self.session.flush()
        await record(self.session, self.caller, "agent.rolled_back", RESOURCE, agent.id, version=number)
        return agent

    async def set_disabled(self, granted: Granted[Agent], number: int, disabled: bool) -> VersionRead:
        """Disable a version (it no longer runs; the newest enabled one becomes the published one) or enable it
        again (refused when what it uses is gone)."""
        agent = granted.resource
        version = await self._version(granted, number)
        if version.disabled != disabled:
            if not disabled:
                await self._check_still_complete(version)
            version.disabled = disabled
            await self.session.flush()
            agent.published_version = await self.versions.newest_enabled(agent.id)
            await self.versions.set_published(agent.id, agent.published_version)
            action = "agent.version_disabled" if disabled else "agent.version_enabled"
            await record(self.session, self.caller, action, RESOURCE, agent.id, version=number)
        return _read(version, agent)

    async def _check_still_complete(self, version: AgentVersion) -> None:
        config = AgentConfig.model_validate(version.config)
        missing = []
        if config.model_id is None or await model_facts(self.session, self.caller.tenant_id, config.model_id) is None:
            missing.append("its model")
        if config.knowledge_base_ids:
            present = await readable_knowledge_base_ids(self.session, self.caller, config.knowledge_base_ids)
            missing += [f"knowledge base {kb}" for kb in config.knowledge_base_ids if kb not in present]
        for pin in config.sub_agents:
            if await self.versions.number(pin.agent_id, pin.version or 0) is None:
                missing.append(f"sub-agent {pin.agent_id} version {pin.version}")
        if config.skills:
            uses = [(use.skill_id, use.version) for use in config.skills]
            present = {s.skill_id for s in await load_for_run(self.session, self.caller.tenant_id, uses)}
            missing += [f"skill {use.name or use.skill_id}" for use in config.skills if use.skill_id not in present]
        if missing:
            raise Conflict(
                f"Version {version.number} cannot run again: {', '.join(missing)} no longer exist.",
                code="version_broken",
                extra={"missing": missing},
            )

    # --- runs ---------------------------------------------------------------------------------------------------

    async def for_run(self, agent_id: uuid.UUID, wanted: VersionRef | None) -> AgentVersion | None:
        """The version a run asks for: `wanted`, the published one when None, none for the draft."""
        if wanted == "draft":
            return None
        number = wanted
        if number is None:
            agent = await self.agents.get(agent_id)
            number = agent.published_version if agent is not None else None
        return await self.versions.number(agent_id, number) if number is not None else None

    async def sub_agent_spec(self, agent_id: uuid.UUID, number: int | None) -> AgentSpec | None:
        """A sub-agent as a run uses it: the pinned version, else its published one, else its draft."""
        agent = await self.agents.get(agent_id)
        if agent is None:
            return None
        number = number if number is not None else agent.published_version
        version = await self.versions.number(agent_id, number) if number is not None else None
        return AgentSpec.of_version(version) if version is not None else AgentSpec.of_draft(agent)


def spec_for_run(agent: Agent, version: AgentVersion | None, wanted: VersionRef | None, *, can_edit: bool) -> AgentSpec:
    """What a run of `agent` runs: `wanted` (a number, or `draft`), by default its published version, or its draft
    for those who may edit it while it has none. `version` is the version the run's query found for `wanted`."""
    if wanted == "draft":
        if not can_edit:
            raise Forbidden("Only those who may edit the agent run its draft.", code="permission_denied")
        return AgentSpec.of_draft(agent)
    if wanted is not None:
        if version is None:
            raise VersionNotFound(f"The agent has no version {wanted}.")
        if version.disabled:
            raise VersionDisabled(f"Version {wanted} of the agent is disabled.")
        return AgentSpec.of_version(version)
    if version is not None:
        return AgentSpec.of_version(version)
    if can_edit:
        return AgentSpec.of_draft(agent)
    raise NotPublished("The agent has not been published yet.")


async def version_users(session: AsyncSession, tenant_id: uuid.UUID, kind: str, target_id: uuid.UUID) -> list[str]:
    """The enabled versions that use a model, knowledge base or agent (`core.references`, wired at start)."""
    found = await VersionRepository(session, tenant_id).users_of(kind, target_id)
    return [f"agent {name!r} version {number}" for name, number in found]


# --- comparing ------------------------------------------------------------------------------------------------

_TEXT_FIELDS = ("description", "instructions.duty", "instructions.constraints", "greeting")


def compare(before: AgentConfig, after: AgentConfig) -> list[FieldChange]:
    """The fields that differ, in the form's order: texts with a unified diff, tools by name, lists as sets."""
    old, new = _flatten(before), _flatten(after)
    changes = []
    for key in list(dict.fromkeys([*old, *new])):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        lines = None
        if key in _TEXT_FIELDS and isinstance(a, str) and isinstance(b, str):
            lines = list(difflib.unified_diff(a.splitlines(), b.splitlines(), "before", "after", lineterm="", n=2))
        changes.append(FieldChange(field=key, before=a, after=b, lines=lines))
    return changes


def _flatten(config: AgentConfig) -> dict[str, Any]:
    data = config.model_dump(mode="json")
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key == "instructions":
            flat["instructions.duty"] = value["duty"]
            flat["instructions.constraints"] = value["constraints"]
            flat["instructions.examples"] = value["examples"]
        elif key == "tools":
            for tool in value:
                flat[f"tools.{tool['name']}"] = tool["settings"]
        elif key == "sub_agents":  # absent: None; present but never published: "unpublished"
            for pin in value:
                flat[f"sub_agents.{pin['agent_id']}"] = pin["version"] if pin["version"] is not None else "unpublished"
        elif key == "skills":  # by id: a version's pinned version, a draft's "newest"
            for use in value:
                flat[f"skills.{use['skill_id']}"] = use["version"] if use["version"] is not None else "newest"
        elif key == "knowledge_base_ids":
            flat[key] = sorted(value)
        elif key == "tool_schemas":
            for tool in value:
                flat[f"tool_schemas.{tool['name']}"] = tool
        else:
            flat[key] = value
    return flat


def _read(version: AgentVersion, agent: Agent) -> VersionRead:
    return VersionRead(
        agent_id=version.agent_id,
        number=version.number,
        note=version.note,
        disabled=version.disabled,
        published=version.number == agent.published_version,
        config=AgentConfig.model_validate(version.config),
        created_by=version.created_by,
        created_at=version.created_at,
    )


def _error(loc: list[Any], msg: str) -> dict[str, Any]:
    return {"loc": ["body", *map(str, loc)], "msg": msg, "type": "cannot_publish"}
