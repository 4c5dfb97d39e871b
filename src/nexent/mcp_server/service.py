"""What the platform's MCP server offers a caller (an API key): the published agents the key may use, each as a tool
that runs the agent statelessly, and a search over the knowledge bases the key's member may read."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from nexent.agents.service import AgentService
from nexent.engines.container import Engines
from nexent.identity.auth import Caller
from nexent.knowledge.schemas import SearchIn, SearchResult
from nexent.knowledge.service import KnowledgeService
from nexent.runtime.events import follow
from nexent.runtime.execution import NewRun, RunManager, cancel_key
from nexent.runtime.service import RuntimeService

KB_SEARCH_TOOL = "knowledge_base_search"
# Tools a caller is offered at most (agents by name); a key limited to some agents sees only those.
MAX_AGENT_TOOLS = 200
# Knowledge bases named in the search tool's description at most (it searches all of them).
_NAMED_BASES = 20
_TOOL_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class AgentTool:
    """A published agent as an MCP tool."""

    name: str
    agent_id: uuid.UUID
    title: str
    description: str


@dataclass(frozen=True)
class SearchScope:
    """The knowledge bases the search tool covers, by name, with what each holds."""

    bases: list[tuple[str, str]]


@dataclass(frozen=True)
class RunAnswer:
    """How an agent's run ended: its answer, or why it has none."""

    run_id: uuid.UUID
    answer: str | None
    error: str | None


def tool_name(agent_name: str, agent_id: uuid.UUID, taken: set[str]) -> str:
    """An MCP tool name (letters, digits, `_`, `-`, `.`; at most 64 characters) from the agent's name; the agent's id
    is added when two names would read alike (names are unique per tenant, their tool forms need not be)."""
    name = _TOOL_NAME_CHARS.sub("_", agent_name).strip("_")[:64] or "agent"
    if name in taken or name == KB_SEARCH_TOOL:
        name = f"{name[:55]}_{agent_id.hex[:8]}"
    return name


class McpService:
    """The MCP server's work for one caller, in one database session."""

    def __init__(self, session: AsyncSession, engines: Engines, caller: Caller) -> None:
        self.session = session
        self.engines = engines
        self.caller = caller

    async def agent_tools(self) -> list[AgentTool]:
        """The published agents the caller may use, as tools (their published description)."""
        service = AgentService(self.session, self.caller)
        agents = await service.published_usable(limit=MAX_AGENT_TOOLS)
        configs = await service.versions.published_configs([agent.id for agent in agents])
        taken: set[str] = set()
        tools = []
        for agent in agents:
            config = configs.get(agent.id)
            if config is None:  # unpublished since
                continue
            name = tool_name(agent.name, agent.id, taken)
            taken.add(name)
            about = config.description or f"The agent {config.display_name or agent.name}."
            title = config.display_name or agent.name
            tools.append(AgentTool(name=name, agent_id=agent.id, title=title, description=about))
        return tools

    async def search_scope(self) -> SearchScope:
        bases = await KnowledgeService(self.session, self.engines, self.caller).readable()
        return SearchScope(bases=[(kb.name, kb.description or kb.summary or "") for kb in bases])

    async def search(self, query: str, top_k: int) -> SearchResult:
        """Search every knowledge base the caller may read (bm25 and vectors, as the search route's default)."""
        knowledge = KnowledgeService(self.session, self.engines, self.caller)
        bases = await knowledge.readable()
        return await knowledge.search_bases(bases, SearchIn(query=query, top_k=top_k))

    async def start_run(self, manager: RunManager, agent_id: uuid.UUID, message: str) -> NewRun:
        """Start a stateless run of the agent's published version (no conversation is stored)."""
        return await RuntimeService(self.session, self.engines, self.caller).start_stateless(
            manager, agent_id, message, ()
        )


def search_description(scope: SearchScope) -> str:
    named = "; ".join(f"{name}: {about}" if about else name for name, about in scope.bases[:_NAMED_BASES])
    more = f" (and {len(scope.bases) - _NAMED_BASES} more)" if len(scope.bases) > _NAMED_BASES else ""
    return f"Search the knowledge bases you may read for passages relevant to a query. Knowledge bases: {named}{more}."


async def answer_of(
    engines: Engines, caller: Caller, run: NewRun, on_text: Callable[[str], Awaitable[None]]
) -> RunAnswer:
    """Follow the run to its end, passing the top-level agent's answer text to `on_text` as it streams; the run is
    stopped when the caller goes away (the task is cancelled)."""
    finished = False
    try:
        async for event in follow(engines, caller.tenant_id, run.id):
            if event is None:
                continue
            data = event.data
            if event.type == "message.delta" and data.get("parent_call_id") is None:  # not a sub-agent's
                await on_text(str(data.get("text", "")))
            elif event.type == "run.completed":
                finished = True
                answer = data.get("answer")
                return RunAnswer(run.id, "" if answer is None else str(answer), None)
            elif event.type == "run.failed":
                finished = True
                message = data.get("message") or data.get("error") or data.get("code") or "The run failed."
                return RunAnswer(run.id, None, str(message))
            elif event.type == "run.stopped":
                finished = True
                return RunAnswer(run.id, None, "The run was stopped.")
        finished = True
        return RunAnswer(run.id, None, "The run ended without an answer.")
    finally:
        if not finished:
            await engines.bus.request_cancel(cancel_key(run.id))
