"""Turning an agent draft into a running smolagents agent: its model (the provider client behind
`AsyncClientModel`), its tools (registry tools wrapped as smolagents `Tool`s), its sub-agents (managed agents,
whose events nest under the parent's call) and its instructions."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import importlib.resources
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from smolagents.monitoring import TokenUsage
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.agents.models import AgentType
from nexent.agents.versions import AgentSpec, VersionService
from nexent.engines.container import Engines
from nexent.identity.auth import Caller
from nexent.identity.services.tenants import tenant_skills_network
from nexent.knowledge.service import KnowledgeService
from nexent.knowledge.tool import NAME as KNOWLEDGE_TOOL
from nexent.providers.models import ModelConfig, ModelEndpoint, ModelKind
from nexent.providers.service import ProviderService
from nexent.providers.types import complete
from nexent.runtime import event_types
from nexent.runtime.sandbox import SandboxExecutor
from nexent.runtime.skills import RunSkills, ScriptRunner, script_runner, skills_instructions, skills_of
from nexent.runtime.smol_agents import (
    AgentStream,
    PlatformCodeAgent,
    PlatformToolCallingAgent,
    current_call_id,
    current_sink,
    final_answer_tool,
    silent_logger,
)
from nexent.runtime.smol_model import AsyncClientModel, CancelFlag
from nexent.runtime.smol_tools import make_tool
from nexent.tools import registry, sources
from nexent.tools.registry import ToolContext, ToolResult

MAX_SUB_AGENT_DEPTH = 3
TOOL_TIMEOUT_SECONDS = 120.0
# Room kept for the agent's own prompt, tools and answer when earlier turns are fed back (characters ~ tokens * 4).
_HISTORY_SHARE_OF_CONTEXT = 0.5
_DEFAULT_CONTEXT_TOKENS = 8192
# The tool that searches the conversation's index of its long attachments (the knowledge search tool's work, under
# its own name, so that an agent with knowledge bases has both).
ATTACHMENT_SEARCH_TOOL = "attached_documents_search"


@functools.cache
def _tool_calling_prompts() -> dict[str, Any]:
    """smolagents' prompt templates, parsed once per process (it would re-read the YAML for every agent)."""
    text = importlib.resources.files("smolagents.prompts").joinpath("toolcalling_agent.yaml").read_text()
    templates: dict[str, Any] = yaml.safe_load(text)
    return templates


@dataclass
class RunSetup:
    """Everything one run needs; built on the server's loop, used from the agent's worker thread."""

    agent: Any
    model: AsyncClientModel  # the top-level agent's
    cancel: threading.Event
    executors: list[SandboxExecutor]
    context_window: int | None = None  # of the agent's model, in tokens
    # Events tools raise beside the agent's own (citations), appended on the loop, sent after the next event.
    side_events: list[event_types.BaseRunEvent] = field(default_factory=list)
    # Every model of the run (sub-agents run on their own): the run's usage is theirs together.
    models: list[AsyncClientModel] = field(default_factory=list)
    # Gives the top-level agent the search tool over the conversation's index (its id, the files it holds).
    install_index: Callable[[uuid.UUID, list[str]], None] | None = None

    @property
    def token_usage(self) -> TokenUsage:
        models = self.models or [self.model]
        usages = [m.token_usage for m in models]
        return TokenUsage(
            input_tokens=sum(u.input_tokens for u in usages), output_tokens=sum(u.output_tokens for u in usages)
        )

    def cleanup(self) -> None:
        """Stop the code workers of the run's code agents (blocking: call from a thread)."""
        for executor in self.executors:
            executor.cleanup()


def _identifier(name: str, taken: set[str]) -> str:
    """A Python identifier from an agent name (smolagents calls sub-agents like tools)."""
    base = re.sub(r"\W+", "_", name.strip().lower()).strip("_") or "agent"
    if base[0].isdigit():
        base = f"agent_{base}"
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base}_{number}", number + 1
    taken.add(candidate)
    return candidate


def instructions_of(agent: AgentSpec) -> str:
    parts = []
    if agent.duty.strip():
        parts.append(f"Your duty:\n{agent.duty.strip()}")
    if agent.constraints.strip():
        parts.append(f"Constraints you must respect:\n{agent.constraints.strip()}")
    if agent.examples:
        shots = "\n\n".join(f"Question: {e['question']}\nAnswer: {e['answer']}" for e in agent.examples)
        parts.append(f"Examples of good answers:\n{shots}")
    return "\n\n".join(parts)


Turn = tuple[str, str]  # (role, content)
ModelSnapshot = tuple[ModelConfig, list[ModelEndpoint]]  # a model configuration with its endpoints


def split_history(message: str, history: list[Turn], context_tokens: int | None) -> tuple[list[Turn], list[Turn]]:
    """The latest earlier turns that fit in half the context window (kept), and the older ones (omitted)."""
    budget = int((context_tokens or _DEFAULT_CONTEXT_TOKENS) * 4 * _HISTORY_SHARE_OF_CONTEXT) - len(message)
    kept = 0
    for role, content in reversed(history):
        cost = len(content) + len(role) + 2
        if cost > budget:
            break
        budget -= cost
        kept += 1
    cut = len(history) - kept
    return history[cut:], history[:cut]


# How earlier turns are labelled; `system` turns are a calling application's instructions (the OpenAI-compatible
# API's system messages), which do not replace the agent's own.
_SPEAKERS = {"user": "User", "system": "Instructions from the calling application"}


def compose_task(message: str, kept: list[Turn], summary: str | None, remembered: str | None = None) -> str:
    """The task smolagents gets: what the agent remembers (memory), a summary of older turns, the recent turns, then
    the user's message."""
    if not kept and not summary:
        return f"{remembered}\n\nThe user now says:\n{message}" if remembered else message
    parts = [f"{remembered}\n", "Conversation so far:"] if remembered else ["Conversation so far:"]
    if summary:
        parts.append(f"(Summary of the earlier part: {summary})")
    parts.extend(f"{_SPEAKERS.get(role, 'Assistant')}: {content}" for role, content in kept)
    return "\n".join(parts) + f"\n\nThe user now says:\n{message}"


_SUMMARY_PROMPT = (
    "Summarise the conversation below in at most 150 words for the assistant that continues it. Keep names, "
    "facts, numbers, decisions and open questions; leave out pleasantries.\n\n"
)


async def summarize(client: Any, turns: list[Turn]) -> str:
    """A short summary of earlier turns, written by the agent's model (the newest 20,000 characters of them)."""
    text = "\n".join(f"{role}: {content}" for role, content in turns)[-20_000:]
    result = await complete(client, [{"role": "user", "content": _SUMMARY_PROMPT + text}], max_tokens=300)
    return " ".join(result.content.split())


class AgentBuilder:
    """Builds the smolagents agent of a run from its draft: models, tools, sub-agents, instructions."""

    def __init__(self, session: AsyncSession, engines: Engines, caller: Caller, *, conversation_id: uuid.UUID | None):
        self.session = session
        self.engines = engines
        self.caller = caller
        self.conversation_id = conversation_id
        self.providers = ProviderService(session, engines, caller)
        self.versions = VersionService(session, caller)
        self.loop = asyncio.get_running_loop()
        self.cancel = CancelFlag()
        self.executors: list[SandboxExecutor] = []
        self.side_events: list[event_types.BaseRunEvent] = []
        self.citations = 0
        self.models: dict[uuid.UUID | None, tuple[AsyncClientModel, int | None]] = {}  # by the agents' model id
        self.skills_network = False  # whether skill scripts that ask for the network get it, read in build()

    async def build(self, agent: AgentSpec, model_config: ModelSnapshot | None = None) -> RunSetup:
        """The agent (its draft or a version) ready to run; `model_config` is the agent's model with its endpoints,
        when already loaded."""
        model, context_window = await self._model(agent, model_config)
        # The operator's master switch and the tenant's own: both must allow it (and the skill's SKILL.md ask).
        self.skills_network = self.engines.settings.skills_network and await tenant_skills_network(
            self.session, self.caller.tenant_id
        )
        smol_agent = await self._agent(agent, model, depth=0, names=set())

        def install_index(kb_id: uuid.UUID, files: list[str]) -> None:
            tool = self._attachment_search(kb_id, files)
            smol_agent.tools[tool.name] = tool

        if self.conversation_id is not None:  # a later turn keeps the conversation's index
            index = await KnowledgeService(self.session, self.engines, self.caller).conversation_index(
                self.conversation_id
            )
            if index is not None:
                install_index(*index)
        return RunSetup(
            agent=smol_agent,
            model=model,
            cancel=self.cancel,
            executors=self.executors,
            context_window=context_window,
            side_events=self.side_events,
            models=[m for m, _ in self.models.values()],
            install_index=install_index,
        )

    async def _model(self, agent: AgentSpec, loaded: ModelSnapshot | None) -> tuple[AsyncClientModel, int | None]:
        """The agent's model (one per model of the run: agents on the same model share it)."""
        built = self.models.get(agent.model_id)
        if built is None:
            built = self.models[agent.model_id] = await self._new_model(agent, loaded)
        return built

    async def _new_model(self, agent: AgentSpec, loaded: ModelSnapshot | None) -> tuple[AsyncClientModel, int | None]:
        if loaded is not None:
            config = loaded[0]
            client = await self.providers.client_for(config, loaded[1], agent_id=agent.id)
        else:
            client, config = await self.providers.client_and_config(agent.model_id, ModelKind.LLM, agent_id=agent.id)
        name = str(agent.model_id) if agent.model_id is not None else "default"
        model = AsyncClientModel(client, self.loop, model_id=name, cancel=self.cancel)
        model.accepts_images = config.kind == ModelKind.VLM or bool(config.accepts_images)
        return model, config.context_window

    async def _agent(self, agent: AgentSpec, model: AsyncClientModel, *, depth: int, names: set[str]) -> Any:
        managed = []
        if depth < MAX_SUB_AGENT_DEPTH:
            for sub_id, sub_version in agent.sub_agents:
                # A version's sub-agents run at their pinned versions; a draft's at their published ones. No share
                # checks: whoever may edit the calling agent chose them, and they run for every user of it.
                sub = await self.versions.sub_agent_spec(sub_id, sub_version)
                if sub is not None:
                    # A sub-agent thinks with its own model, not its parent's.
                    sub_model, _ = await self._model(sub, None)
                    managed.append(await self._agent(sub, sub_model, depth=depth + 1, names=names))
        skills = await skills_of(self.session, self.caller.tenant_id, agent.skills)
        skill_tools = RunSkills(skills, self.engines.storage, self.side_events.append, self._script_runner())
        common: dict[str, Any] = {
            "tools": [*await self._tools(agent), *skill_tools.tools(self.loop, self.cancel), final_answer_tool()],
            "model": model,
            "managed_agents": managed or None,
            "max_steps": agent.max_steps,
            "name": _identifier(agent.name, names) if depth else None,
            "description": (agent.description or f"The agent {agent.name}.") if depth else None,
            "instructions": "\n\n".join(p for p in (instructions_of(agent), skills_instructions(skills)) if p) or None,
            "logger": silent_logger(),
            "stream_outputs": False,
        }
        if agent.agent_type == AgentType.CODE:
            # Generated code runs in a separate, locked-down worker process; tools still run here.
            executor = SandboxExecutor(cancel=self.cancel, disk_mb=self.engines.settings.sandbox_disk_mb)
            self.executors.append(executor)
            return PlatformCodeAgent(
                executor=executor, additional_authorized_imports=list(executor.authorized_imports), **common
            )
        return PlatformToolCallingAgent(prompt_templates=copy.deepcopy(_tool_calling_prompts()), **common)

    def _script_runner(self) -> ScriptRunner:
        """How the run's skills run their scripts: in the sandbox's script mode (docs/skills.md)."""
        return functools.partial(
            script_runner,
            cancel=self.cancel,
            disk_mb=self.engines.settings.sandbox_disk_mb,
            network=self.skills_network,
        )

    async def _tool_entries(self, agent: AgentSpec) -> list[tuple[dict[str, Any], str | None]]:
        """The agent's tools with their settings, and the knowledge search tool when it has knowledge bases (its
        description then names them and says what each holds)."""
        entries: list[tuple[dict[str, Any], str | None]] = [(entry, None) for entry in agent.tools]
        if not agent.knowledge_base_ids:
            return entries
        ids = [uuid.UUID(k) for k in agent.knowledge_base_ids]
        bases = await KnowledgeService(self.session, self.engines, self.caller).attached(ids)
        described = (
            registry.get(KNOWLEDGE_TOOL).description
            + "\nKnowledge bases:\n"
            + "\n".join(
                f"- {kb.name}: {(kb.summary or kb.description or 'no description').strip()[:500]}" for kb in bases
            )
        )
        explicit = next((e for e, _ in entries if e.get("name") == KNOWLEDGE_TOOL), None)
        settings = {
            **(explicit.get("settings") or {} if explicit else {}),
            "knowledge_base_ids": agent.knowledge_base_ids,
        }
        entries = [(e, d) for e, d in entries if e.get("name") != KNOWLEDGE_TOOL]
        return [*entries, ({"name": KNOWLEDGE_TOOL, "settings": settings}, described)]

    async def _tools(self, agent: AgentSpec) -> list[Any]:
        """The agent's tools as smolagents tools: built-in ones from the registry, the tenant's (MCP, OpenAPI) from
        the version's snapshot, or for a draft as its sources offer them now."""
        built = []
        live: dict[str, sources.ExternalTool] | None = None
        for entry, description in await self._tool_entries(agent):
            name = str(entry["name"])
            if registry.has(name):
                built.append(self._tool(entry, description))
                continue
            tool = agent.tool_schemas.get(name)
            if tool is None and agent.version is None:
                if live is None:
                    live = {t.name: t for t in await sources.tenant_tools(self.session, self.caller.tenant_id)}
                tool = live.get(name)
            if tool is None:  # its source was removed since: the model reads why when it calls it
                tool = sources.ExternalTool(
                    name=name,
                    description="This tool is no longer available.",
                    parameters={"type": "object", "properties": {}},
                    source=sources.SourceRef(kind="missing", name="missing"),
                    remote_name=name,
                )
            built.append(self._external_tool(tool))
        return built

    def _external_tool(self, tool: sources.ExternalTool) -> Any:
        cancel_event = asyncio.Event()

        async def execute(tool_name: str, arguments: dict[str, Any]) -> str:
            # The sink and call id of the agent thread that called (see `make_tool`'s `propagate`): a remote agent
            # shows its answer as the nested events of this call.
            context = dataclasses.replace(
                self._context(None, cancel_event), emit=current_sink.get(), parent_call_id=current_call_id.get()
            )
            return self._answer(tool_name, await sources.execute(tool, arguments, context))

        # A wrong schema still reaches the model as it is (smolagents reads unknown types as "any");
        # `sources.execute` refuses the calls with a clear error.
        spec = tool.openai_spec()
        if not isinstance(spec["parameters"].get("properties", {}), dict):
            spec = {**spec, "parameters": {"type": "object", "properties": {}}}
        return make_tool(
            spec,
            execute,
            self.loop,
            cancel=self.cancel,
            timeout=TOOL_TIMEOUT_SECONDS,
            propagate=(current_sink, current_call_id),
        )

    def _context(self, settings: Any, cancel_event: asyncio.Event) -> ToolContext:
        if self.cancel.is_set():
            cancel_event.set()
        return ToolContext(
            tenant_id=self.caller.tenant_id,
            storage=self.engines.storage,
            conversation_id=self.conversation_id,
            settings=settings,
            allow_private_network=self.engines.settings.allow_private_fetch,
            cancel_event=cancel_event,
            deadline=time.monotonic() + TOOL_TIMEOUT_SECONDS,
            engines=self.engines,
            user_id=self.caller.user_id,
            citation_offset=self.citations,
        )

    def _answer(self, tool_name: str, result: ToolResult) -> str:
        """What the model reads of a result; its citations become events of the run."""
        self.citations += len(result.citations)
        self.side_events.extend(
            event_types.Citation(tool=tool_name, title=c.title, url=c.url, snippet=c.snippet, metadata=c.metadata)
            for c in result.citations
        )
        if result.ok:
            return result.output
        return json.dumps({"error": result.error_code, "message": result.output})

    def _tool(self, entry: dict[str, Any], description: str | None = None) -> Any:
        name = str(entry["name"])
        settings = registry.validate_settings(name, entry.get("settings") or {})
        cancel_event = asyncio.Event()

        async def execute(tool_name: str, arguments: dict[str, Any]) -> str:
            context = self._context(settings, cancel_event)
            return self._answer(tool_name, await registry.execute(tool_name, arguments, context))

        spec = registry.openai_spec(name)["function"]
        if description:
            spec = {**spec, "description": description}
        return make_tool(spec, execute, self.loop, cancel=self.cancel, timeout=TOOL_TIMEOUT_SECONDS)

    def _attachment_search(self, kb_id: uuid.UUID, files: list[str]) -> Any:
        """The search tool over the conversation's index, its description naming the files it holds."""
        settings = registry.validate_settings(KNOWLEDGE_TOOL, {"knowledge_base_ids": [str(kb_id)]})
        cancel_event = asyncio.Event()

        async def execute(tool_name: str, arguments: dict[str, Any]) -> str:
            context = self._context(settings, cancel_event)
            return self._answer(tool_name, await registry.execute(KNOWLEDGE_TOOL, arguments, context))

        named = ", ".join(files[:20]) + (f" and {len(files) - 20} more" if len(files) > 20 else "")
        spec = {
            **registry.openai_spec(KNOWLEDGE_TOOL)["function"],
            "name": ATTACHMENT_SEARCH_TOOL,
            "description": "Search the documents attached to this conversation that are too long to read whole ("
            + named
            + ") and return numbered passages with their source. Use it for questions about them, and cite the "
            "passages you use by number.",
        }
        return make_tool(spec, execute, self.loop, cancel=self.cancel, timeout=TOOL_TIMEOUT_SECONDS)


def start_agent(setup: RunSetup, task: str) -> AgentStream:
    """Start the agent on its worker thread now; read it with `run_events`, or stop it with `abandon`."""
    return AgentStream(setup.agent, task, model=setup, cancel=setup.cancel)


async def run_events(setup: RunSetup, stream: AgentStream) -> AsyncIterator[event_types.BaseRunEvent]:
    """The platform events of one run (see `smol_agents.EventMapper`), ending with its terminal event."""
    events = stream.events()
    try:
        async for event in events:
            if event.terminal:  # citations of the last tool calls come before the end
                for side in _drain(setup.side_events):
                    yield side
            yield event
            for side in _drain(setup.side_events):
                yield side
    finally:
        await events.aclose()
        await asyncio.to_thread(setup.cleanup)


def _drain(events: list[event_types.BaseRunEvent]) -> list[event_types.BaseRunEvent]:
    taken = events[:]
    events.clear()
    return taken


async def abandon(setup: RunSetup, stream: AgentStream) -> None:
    """Stop a started agent whose events nobody will read."""
    await stream.close()
    await asyncio.to_thread(setup.cleanup)
