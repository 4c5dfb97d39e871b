"""Our published agents as A2A agents (a2a-sdk 1.x): an agent's card, the caller an A2A request runs as, and the
executor that turns an A2A task into a run of the agent's published version (see docs/a2a.md).

- A task is a run: `SendMessage` starts one (in the conversation bound to the task's `contextId`), the run's
  streamed answer becomes artifact updates, its end the task's final status; `CancelTask` stops the run.
- Tasks are stored by the SDK's SQL task store in `a2a_tasks`, each under an owner string
  "<tenant>/<agent>/<caller scope>" (`owner_of`): every read the SDK makes is filtered by it, so a caller never
  reads another tenant's, another agent's or another caller's task.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from a2a.server.agent_execution.agent_executor import AgentExecutor
from a2a.server.agent_execution.context import RequestContext
from a2a.server.context import ServerCallContext
from a2a.server.events.event_queue import EventQueue
from a2a.server.tasks.database_task_store import DatabaseTaskStore
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentProvider,
    AgentSkill,
    HTTPAuthSecurityScheme,
    ListTasksRequest,
    ListTasksResponse,
    Part,
    SecurityRequirement,
    SecurityScheme,
    StringList,
    Task,
    TaskState,
    TaskStatus,
)
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.a2a_server.models import A2aTask
from nexent.agents.models import A2aExposure
from nexent.agents.service import A2aAgent
from nexent.core.errors import AppError
from nexent.engines.container import Engines
from nexent.identity.auth import Caller, delegated_caller
from nexent.runtime.events import follow
from nexent.runtime.execution import RunManager, cancel_key
from nexent.runtime.service import RuntimeService

PUBLIC_SCOPE = "public"
STATE_KEY = "nexent.a2a"
SECURITY_SCHEME = "apiKey"
_RUN_ID = "nexentRunId"  # camelCase, as every key of an A2A JSON document
_CONVERSATION_ID = "nexentConversationId"
MAX_MESSAGE_CHARS = 100_000  # as a run started over the API


@dataclass(frozen=True)
class A2aRequest:
    """What one A2A request carries into the SDK's handler: the exposed agent, the caller it runs as, the scope
    its tasks are stored under, and the process's engines and runs."""

    agent: A2aAgent
    caller: Caller
    scope: str
    engines: Engines
    runs: RunManager


async def public_caller(session: AsyncSession, agent: A2aAgent) -> Caller | None:
    """Who a public (credential-less) caller runs as: the agent's owner, with chat-only reach to this agent only.
    None when the agent has no owner any more (the owner's membership gone or inactive: 401)."""
    if agent.owner_id is None:
        return None
    return await delegated_caller(session, agent.owner_id, agent.tenant_id, frozenset({agent.agent_id}))


def caller_scope(caller: Caller, *, public: bool) -> str:
    """The scope tasks are stored and read under: the member behind an API key, or `public`."""
    return PUBLIC_SCOPE if public else f"user:{caller.user_id}"


def owner_of(context: ServerCallContext) -> str:
    """The owner string of the SDK's task store (every read and write is filtered by it)."""
    request: A2aRequest = context.state[STATE_KEY]
    return f"{request.agent.tenant_id}/{request.agent.agent_id}/{request.scope}"


class TaskStore(DatabaseTaskStore):
    """The SDK's SQL task store, owner-scoped (`owner_of`); a public caller lists only the tasks of a context it
    names (public callers share one scope per agent: the ids they were given are what they read by)."""

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        request: A2aRequest = context.state[STATE_KEY]
        if request.scope == PUBLIC_SCOPE and not params.context_id:
            return ListTasksResponse(next_page_token="", page_size=params.page_size, total_size=0)
        return await super().list(params, context)


# The SDK's task model, on our table: made once (each store of the SDK would declare it anew).
def task_store(engines: Engines) -> TaskStore:
    """The SDK's SQL task store on our database, in the table migration 0017 creates."""
    store = TaskStore(engines.db, create_table=False, owner_resolver=owner_of)
    store.task_model = A2aTask  # ours (made once), not one the store would declare anew
    return store


def agent_card(agent: A2aAgent, base_url: str) -> AgentCard:
    """The agent's card: its published name and description, a skill for what it does, one per tool and one for its
    knowledge, streaming (no push notifications), and the API-key scheme unless it is public."""
    config = agent.config
    title = config.display_name or config.name
    description = config.description or f"The agent {title}."
    tool_names = [t.name for t in config.tools]
    skills = [
        AgentSkill(
            id="chat",
            name=title,
            description=description,
            tags=["chat", *tool_names[:10]],
            examples=list(config.example_questions[:5]),
            input_modes=["text/plain"],
            output_modes=["text/plain"],
        )
    ]
    described = {s.name: s.description for s in config.tool_schemas}
    for name in tool_names:
        skills.append(
            AgentSkill(
                id=f"tool:{name}",
                name=name,
                description=described.get(name) or f"Uses the tool {name}.",
                tags=["tool"],
            )
        )
    if config.knowledge_base_ids:
        skills.append(
            AgentSkill(
                id="knowledge",
                name="Knowledge base search",
                description=f"Answers from {len(config.knowledge_base_ids)} knowledge base(s) it searches.",
                tags=["knowledge", "rag"],
            )
        )
    card = AgentCard(
        name=title,
        description=description,
        provider=AgentProvider(organization="Nexent", url=base_url.split("/a2a/", 1)[0] or base_url),
        version=str(agent.agent_id),
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=skills,
        supported_interfaces=[
            AgentInterface(protocol_binding="JSONRPC", protocol_version="1.0", url=base_url),
            AgentInterface(protocol_binding="HTTP+JSON", protocol_version="1.0", url=f"{base_url}/rest"),
        ],
    )
    if agent.exposure is A2aExposure.API_KEY:
        card.security_schemes[SECURITY_SCHEME].CopyFrom(
            SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="Bearer", bearer_format="nxk", description="A Nexent API key that may use this agent."
                )
            )
        )
        card.security_requirements.append(SecurityRequirement(schemes={SECURITY_SCHEME: StringList(list=[])}))
    return card


def capabilities_card() -> AgentCard:
    """The card the SDK's request handler checks capabilities against (the same for every agent)."""
    return AgentCard(
        name="Nexent agent",
        description="Capabilities every exposed agent has.",
        version="1",
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="chat", name="Chat", description="Answers messages.", tags=["chat"])],
        supported_interfaces=[AgentInterface(protocol_binding="JSONRPC", protocol_version="1.0", url="/")],
    )


class RunExecutor(AgentExecutor):
    """Executes an A2A task as a run of the exposed agent's published version."""

    def __init__(self, store: TaskStore) -> None:
        self.store = store

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        call = context.call_context
        message, task_id, context_id = context.message, context.task_id, context.context_id
        if call is None or message is None or not task_id or not context_id:
            return
        request: A2aRequest = call.state[STATE_KEY]
        updater = TaskUpdater(event_queue=event_queue, task_id=task_id, context_id=context_id)
        text = context.get_user_input() or ""
        conversation_id = await self._conversation_of(context_id, call)
        history = [message]
        if not text.strip() or len(text) > MAX_MESSAGE_CHARS:
            await event_queue.enqueue_event(
                Task(
                    id=task_id,
                    context_id=context_id,
                    status=TaskStatus(state=TaskState.TASK_STATE_REJECTED),
                    history=history,
                )
            )
            await updater.update_status(
                TaskState.TASK_STATE_REJECTED,
                updater.new_agent_message([Part(text=f"Send a text part of 1 to {MAX_MESSAGE_CHARS} characters.")]),
            )
            return
        try:
            async with request.engines.sessions() as session, session.begin():
                runtime = RuntimeService(session, request.engines, request.caller)
                run = await runtime.start(request.runs, request.agent.agent_id, text, conversation_id)
        except AppError as exc:  # at capacity, unpublished since, the conversation busy, ...
            await event_queue.enqueue_event(
                Task(
                    id=task_id,
                    context_id=context_id,
                    status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                    history=history,
                )
            )
            await updater.failed(updater.new_agent_message([Part(text=exc.detail)]))
            return
        metadata = {_RUN_ID: str(run.id), _CONVERSATION_ID: str(run.conversation_id or "")}
        await event_queue.enqueue_event(
            Task(
                id=task_id,
                context_id=context_id,
                status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                history=history,
                metadata=metadata,
            )
        )
        await updater.start_work()
        await self._follow(request, run.id, updater)

    async def _follow(self, request: A2aRequest, run_id: uuid.UUID, updater: TaskUpdater) -> None:
        """The run's events as the task's updates: the answer's text as chunks of one artifact, then its end."""
        artifact_id = f"answer-{run_id}"
        streamed = False
        finished = False
        try:
            async for event in follow(request.engines, request.caller.tenant_id, run_id):
                if event is None:
                    continue
                data = event.data
                if event.type == "message.delta" and data.get("parent_call_id") is None:
                    chunk = str(data.get("text", ""))
                    if chunk:
                        await updater.add_artifact(
                            [Part(text=chunk)], artifact_id=artifact_id, name="answer", append=streamed
                        )
                        streamed = True
                elif event.type == "run.completed":
                    finished = True
                    answer = "" if data.get("answer") is None else str(data.get("answer"))
                    if not streamed:
                        await updater.add_artifact([Part(text=answer)], artifact_id=artifact_id, name="answer")
                    await updater.complete(updater.new_agent_message([Part(text=answer)]))
                    return
                elif event.type == "run.failed":
                    finished = True
                    why = data.get("message") or data.get("error") or data.get("code") or "The run failed."
                    await updater.failed(updater.new_agent_message([Part(text=str(why))]))
                    return
                elif event.type == "run.stopped":
                    finished = True
                    await updater.cancel()
                    return
            finished = True
            await updater.failed(updater.new_agent_message([Part(text="The run ended without an answer.")]))
        finally:
            if not finished:  # the task was cancelled (CancelTask, shutdown): the run stops too
                await request.engines.bus.request_cancel(cancel_key(run_id))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        call, task = context.call_context, context.current_task
        if call is None or task is None:
            return
        request: A2aRequest = call.state[STATE_KEY]
        run_id = task.metadata[_RUN_ID] if _RUN_ID in task.metadata else None  # noqa: SIM401 (a Struct)
        if run_id:
            async with request.engines.sessions() as session:
                await RuntimeService(session, request.engines, request.caller).stop(uuid.UUID(str(run_id)))
        updater = TaskUpdater(event_queue=event_queue, task_id=task.id, context_id=task.context_id)
        await updater.cancel()

    async def _conversation_of(self, context_id: str, call: ServerCallContext) -> uuid.UUID | None:
        """The conversation an earlier task of this context (the caller's own) ran in: multi-turn."""
        page = await self.store.list(ListTasksRequest(context_id=context_id, page_size=1), call)
        for task in page.tasks:
            if _CONVERSATION_ID in task.metadata and (value := str(task.metadata[_CONVERSATION_ID])):
                return uuid.UUID(value)
        return None
