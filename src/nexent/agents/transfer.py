"""Import and export of agents: an agent with its sub-agents (each once) and tool settings as one JSON document
that names models and knowledge bases instead of the tenant's ids, and the document created again as drafts in
a tenant (the same or another), mapped onto that tenant's models and knowledge bases by name."""

from __future__ import annotations

import re
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.agents.models import Agent
from nexent.agents.repository import AgentRepository
from nexent.agents.schemas import (
    DOCUMENT_FORMAT,
    AgentConfig,
    AgentCreate,
    AgentDocument,
    AgentImport,
    AgentPreview,
    ExportedAgent,
    ExportedTool,
    ImportedAgent,
    ImportPreview,
    ImportResult,
    KnowledgeBaseMapping,
    KnowledgeBaseRef,
    ModelMapping,
    ModelRef,
    SkillMapping,
    ToolCheck,
    ToolUse,
)
from nexent.agents.service import RESOURCE, AgentNotFound, AgentService
from nexent.agents.versions import VersionService, draft_config
from nexent.core.db import utcnow
from nexent.core.errors import Conflict, Forbidden
from nexent.identity.auth import Caller
from nexent.identity.services.audit import record
from nexent.identity.services.sharing import Granted
from nexent.knowledge.service import KnowledgeBaseLabel, readable_knowledge_bases
from nexent.providers.models import ModelKind
from nexent.providers.service import ModelLabel, default_model_facts, model_labels
from nexent.skills.service import ids_by_name, names_of
from nexent.tools import registry, sources

_SECRET_PARTS = ("token", "secret", "password", "passwd")
_WORD_BREAK = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def _looks_secret(name: str) -> bool:
    """Whether a setting's name says token, secret or password, or ends a word with key (`api_key`, `apiKey`)."""
    lowered = name.lower()
    return any(part in lowered for part in _SECRET_PARTS) or any(
        word.lower().endswith("key") for word in _WORD_BREAK.split(name)
    )


def secret_settings(settings: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """The settings to leave out of an export: those the tool's JSON schema marks as secret (`writeOnly`, format
    `password`, `secret`) or whose name says key, token, secret or password."""
    properties: Mapping[str, Any] = schema.get("properties") or {}
    found = []
    for name in settings:
        field: Mapping[str, Any] = properties.get(name) or {}
        marked = field.get("writeOnly") is True or field.get("format") == "password" or bool(field.get("secret"))
        if marked or _looks_secret(name):
            found.append(name)
    return sorted(found)


def export_tool(tool: Mapping[str, Any]) -> ExportedTool:
    """A tool entry as exported: managed settings (filled in from the agent) and secrets left out."""
    name = str(tool.get("name"))
    settings = dict(tool.get("settings") or {})
    try:
        spec = registry.get(name)
        schema, managed = spec.settings_json_schema, set(spec.managed_settings)
    except registry.UnknownTool:
        schema, managed = {}, set()
    settings = {key: value for key, value in settings.items() if key not in managed}
    redacted = secret_settings(settings, schema)
    return ExportedTool(name=name, settings={k: v for k, v in settings.items() if k not in redacted}, redacted=redacted)


def attachment_name(name: str) -> str:
    """`Content-Disposition` for a document of agent `name` (an ASCII file name, and the name in UTF-8)."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "agent"
    encoded = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else _percent(c) for c in name)
    return (
        f'attachment; filename="{ascii_name}.nexent-agent.json"; '
        f"filename*=UTF-8''{encoded or 'agent'}.nexent-agent.json"
    )


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode())


def _renamed(base: str, number: int) -> str:
    suffix = f" ({number})"
    return base[: 80 - len(suffix)].rstrip() + suffix


class TransferService:
    """Export and import for one caller of one tenant."""

    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller
        self.agents = AgentService(session, caller)
        self.versions = VersionService(session, caller)
        self.repository = AgentRepository(session, caller.tenant_id)

    # --- export -------------------------------------------------------------------------------------------------

    async def export(self, granted: Granted[Agent], version: int | None) -> AgentDocument:
        """The agent (its draft, or its version `version`) and, once each, every sub-agent it reaches: a sub-agent
        as the caller sees it (its draft if they may edit it, else its published version; a version's sub-agents
        at the versions it pins)."""
        if version is None and not granted.can_edit:
            raise Forbidden(
                "Only those who may edit the agent export its draft; name a version.", code="permission_denied"
            )
        models = {model.id: model for model in await model_labels(self.session, self.caller.tenant_id)}
        refs: dict[tuple[uuid.UUID, int | None], str] = {(granted.resource.id, version): "a1"}
        queue: deque[tuple[Granted[Agent], int | None]] = deque([(granted, version)])
        exported: list[ExportedAgent] = []
        while queue:
            current, number = queue.popleft()
            config = await self._config(current, number)
            sub_refs = []
            for pin in config.sub_agents:
                sub = await self._reach_sub_agent(pin.agent_id)
                key = (pin.agent_id, pin.version if pin.version is not None else self._seen_version(sub))
                if key not in refs:
                    refs[key] = f"a{len(refs) + 1}"
                    queue.append((sub, key[1]))
                sub_refs.append(refs[key])
            bases = await readable_knowledge_bases(self.session, self.caller, config.knowledge_base_ids)
            skill_names = await names_of(self.session, self.caller.tenant_id, [s.skill_id for s in config.skills])
            item = _exported(refs[(current.resource.id, number)], current.resource, config, sub_refs, models, bases)
            item.skills = [
                use.name or skill_names[use.skill_id]
                for use in config.skills
                if use.name or use.skill_id in skill_names
            ]
            exported.append(item)
        try:
            return AgentDocument(
                format=DOCUMENT_FORMAT, format_version=1, exported_at=utcnow(), root="a1", agents=exported
            )
        except ValidationError as exc:  # e.g. more sub-agents than a document holds
            raise Conflict(
                f"This agent cannot be exported: {exc.errors()[0]['msg']}", code="agent_not_exportable"
            ) from None

    async def _config(self, granted: Granted[Agent], number: int | None) -> AgentConfig:
        if number is None:
            return draft_config(granted.resource)
        return (await self.versions.get(granted, number)).config

    async def _reach_sub_agent(self, agent_id: uuid.UUID) -> Granted[Agent]:
        try:
            return await self.agents.reach(agent_id)
        except AgentNotFound:
            raise Forbidden(
                "A sub-agent of this agent is not shared with you, so it cannot be exported.",
                code="permission_denied",
            ) from None

    @staticmethod
    def _seen_version(granted: Granted[Agent]) -> int | None:
        """What the caller sees of a sub-agent: its draft (None) if they may edit it, else its published version."""
        return None if granted.can_edit else granted.resource.published_version

    # --- import -------------------------------------------------------------------------------------------------

    async def preview(self, document: AgentImport) -> ImportPreview:
        """What importing the document would create, and how it maps onto this tenant; nothing is written."""
        agents, warnings = await self._plan(document)
        return ImportPreview(agents=agents, warnings=warnings)

    async def run_import(self, document: AgentImport) -> ImportResult:
        """Create every agent of the document as a draft, sub-agents first, in the request's transaction: a failure
        anywhere leaves none of them."""
        plan, warnings = await self._plan(document)
        by_ref = {agent.ref: agent for agent in document.agents}
        created: dict[str, uuid.UUID] = {}
        for step in plan:
            source = by_ref[step.ref]
            read = await self.agents.create(
                AgentCreate(
                    name=step.final_name,
                    display_name=source.display_name,
                    description=source.description,
                    instructions=source.instructions,
                    model_id=step.model.model_id,
                    agent_type=source.agent_type,
                    tools=_imported_tools(source.tools, step.tools),
                    sub_agent_ids=[created[ref] for ref in step.sub_agents],
                    knowledge_base_ids=[kb.knowledge_base_id for kb in step.knowledge_bases if kb.knowledge_base_id],
                    skill_ids=[skill.skill_id for skill in step.skills if skill.skill_id],
                    max_steps=source.max_steps,
                    greeting=source.greeting,
                    example_questions=source.example_questions,
                    min_pass_rate=source.min_pass_rate,
                )
            )
            created[step.ref] = read.id
        root_id = created[document.root]
        await record(self.session, self.caller, "agent.imported", RESOURCE, root_id, agents=len(created))
        return ImportResult(
            root_agent_id=root_id,
            agents=[ImportedAgent(ref=step.ref, id=created[step.ref], name=step.final_name) for step in plan],
            warnings=warnings,
        )

    async def _plan(self, document: AgentImport) -> tuple[list[AgentPreview], list[str]]:
        """Each agent of the document in creation order (sub-agents first), mapped onto this tenant."""
        warnings: list[str] = []
        names = await self._final_names(document, warnings)
        models = await model_labels(self.session, self.caller.tenant_id)
        bases = {kb.name.casefold(): kb for kb in await readable_knowledge_bases(self.session, self.caller)}
        # The tenant's own tools (MCP servers, OpenAPI imports) by name: a document may name them too.
        tenant_tools = {t.name for t in await sources.tenant_tools(self.session, self.caller.tenant_id)}
        skills = await ids_by_name(self.session, self.caller, {name for a in document.agents for name in a.skills})
        plan = []
        for agent in _creation_order(document):
            model = _map_model(agent.model, models)
            if model.status == "unmapped":
                assert agent.model is not None
                warnings.append(
                    f"{agent.name}: no {agent.model.kind} model named {agent.model.name!r} (or serving "
                    f"{agent.model.model!r}); it uses the tenant's default model."
                )
            knowledge = [_map_knowledge_base(kb, bases) for kb in agent.knowledge_bases]
            warnings += [
                f"{agent.name}: no knowledge base named {kb.name!r} that you may read; it is left out."
                for kb in knowledge
                if kb.status == "unmapped"
            ]
            skill_maps = [
                SkillMapping(name=name, status="mapped", skill_id=skills[name])
                if name in skills
                else SkillMapping(name=name, status="unmapped")
                for name in dict.fromkeys(agent.skills)
            ]
            warnings += [
                f"{agent.name}: no skill named {s.name!r} that you may read; it is left out."
                for s in skill_maps
                if s.status == "unmapped"
            ]
            tools = [_check_tool(tool.name, tool.settings, tenant_tools) for tool in agent.tools]
            warnings += [f"{agent.name}: tool {t.name!r} is left out: {t.message}" for t in tools if t.status != "ok"]
            warnings += [
                f"{agent.name}: tool {tool.name!r} lost its secret settings on export "
                f"({', '.join(tool.redacted)}); set them again."
                for tool, check in zip(agent.tools, tools, strict=True)
                if tool.redacted and check.status == "ok"
            ]
            plan.append(
                AgentPreview(
                    ref=agent.ref,
                    name=agent.name,
                    action="create",
                    final_name=names[agent.ref],
                    model=model,
                    knowledge_bases=knowledge,
                    skills=skill_maps,
                    tools=tools,
                    sub_agents=list(dict.fromkeys(agent.sub_agents)),
                )
            )
        if any(step.model.status != "mapped" for step in plan) and not await default_model_facts(
            self.session, self.caller.tenant_id, ModelKind.LLM
        ):
            warnings.append("This tenant has no default LLM: set one (or a model per agent) before running them.")
        return plan, warnings

    async def _final_names(self, document: AgentImport, warnings: list[str]) -> dict[str, str]:
        """Each agent's name here, in document order: its new name or its own, `name (2)` and so on when the name
        is taken in this tenant or by an agent before it in the document."""
        used: set[str] = set()
        names: dict[str, str] = {}
        for agent in document.agents:
            wanted = document.names.get(agent.ref, agent.name)
            name, number = wanted, 1
            while name.casefold() in used or await self.repository.name_taken(name):
                number += 1
                name = _renamed(wanted, number)
            if name != wanted:
                warnings.append(f"The name {wanted!r} is taken: that agent is imported as {name!r}.")
            used.add(name.casefold())
            names[agent.ref] = name
        return names


def _creation_order(document: AgentDocument) -> list[ExportedAgent]:
    """The document's agents with every sub-agent before the agents that use it (the document has no cycles)."""
    by_ref = {agent.ref: agent for agent in document.agents}
    ordered: dict[str, ExportedAgent] = {}

    def visit(agent: ExportedAgent) -> None:
        if agent.ref in ordered:
            return
        for sub in agent.sub_agents:
            visit(by_ref[sub])
        ordered[agent.ref] = agent

    for agent in document.agents:
        visit(agent)
    return list(ordered.values())


def _map_model(wanted: ModelRef | None, models: list[ModelLabel]) -> ModelMapping:
    """The tenant's model of that kind with that name (case-insensitive), else serving that model identifier."""
    if wanted is None:
        return ModelMapping(status="default", name=None)
    fitting = [model for model in models if model.kind == wanted.kind]
    found = next((m for m in fitting if m.name.casefold() == wanted.name.casefold()), None) or next(
        (m for m in fitting if m.model == wanted.model), None
    )
    if found is None:
        return ModelMapping(status="unmapped", name=wanted.name)
    return ModelMapping(status="mapped", model_id=found.id, name=wanted.name)


def _map_knowledge_base(wanted: KnowledgeBaseRef, bases: dict[str, KnowledgeBaseLabel]) -> KnowledgeBaseMapping:
    found = bases.get(wanted.name.casefold())
    if found is None:
        return KnowledgeBaseMapping(name=wanted.name, status="unmapped")
    return KnowledgeBaseMapping(name=wanted.name, status="mapped", knowledge_base_id=found.id)


def _check_tool(name: str, settings: dict[str, Any], tenant_tools: set[str]) -> ToolCheck:
    if not registry.has(name) and name in tenant_tools:
        if settings:
            return ToolCheck(name=name, status="invalid_settings", message=f"The tool {name!r} takes no settings.")
        return ToolCheck(name=name, status="ok")
    try:
        spec = registry.get(name)
        registry.validate_settings(name, _unmanaged(settings, spec.managed_settings))
    except registry.UnknownTool:
        return ToolCheck(name=name, status="unknown", message="No such tool here.")
    except registry.ToolSettingsError as exc:
        return ToolCheck(name=name, status="invalid_settings", message=exc.detail)
    return ToolCheck(name=name, status="ok")


def _imported_tools(tools: list[ExportedTool], checks: list[ToolCheck]) -> list[ToolUse]:
    """The tools that passed their checks, without the settings the platform fills in."""
    return [
        ToolUse(
            name=tool.name,
            settings=_unmanaged(tool.settings, registry.get(tool.name).managed_settings)
            if registry.has(tool.name)
            else {},
        )
        for tool, check in zip(tools, checks, strict=True)
        if check.status == "ok"
    ]


def _unmanaged(settings: dict[str, Any], managed: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in settings.items() if key not in managed}


def _exported(
    ref: str,
    agent: Agent,
    config: AgentConfig,
    sub_refs: list[str],
    models: dict[uuid.UUID, ModelLabel],
    bases: list[KnowledgeBaseLabel],
) -> ExportedAgent:
    model = models.get(config.model_id) if config.model_id is not None else None
    return ExportedAgent(
        ref=ref,
        name=config.name,
        display_name=config.display_name,
        description=config.description,
        instructions=config.instructions,
        agent_type=config.agent_type,
        tools=[export_tool(tool.model_dump()) for tool in config.tools],
        max_steps=config.max_steps,
        greeting=config.greeting,
        example_questions=config.example_questions,
        min_pass_rate=agent.min_pass_rate,
        model=(
            ModelRef(name=model.name, kind=model.kind, model=model.model)
            if model is not None and model.kind in (ModelKind.LLM, ModelKind.VLM)
            else None
        ),
        knowledge_bases=[KnowledgeBaseRef(name=kb.name, description=kb.description) for kb in bases],
        sub_agents=sub_refs,
    )
