"""Runs: starting them, executing them off the request with bounded concurrency, stopping them, and keeping
every turn in its conversation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.agents.models import Agent
from nexent.agents.service import AgentNotFound, AgentService
from nexent.core.batch import Write, writer_for
from nexent.core.db import utcnow
from nexent.core.errors import AppError, NotFound
from nexent.core.pagination import Page, PageParams
from nexent.engines.bus.base import cancel_channel
from nexent.engines.container import Engines
from nexent.identity.auth import Caller
from nexent.providers.models import ModelConfig, ModelEndpoint, ModelKind
from nexent.providers.service import ProviderService
from nexent.providers.types import ProviderError
from nexent.runtime.activity import executing_run
from nexent.runtime.ending import end_elsewhere, end_run
from nexent.runtime.engine import (
    EngineBuilder,
    ModelSnapshot,
    abandon,
    compose_task,
    run_events,
    split_history,
    start_agent,
    summarize,
)
from nexent.runtime.event_types import (
    BaseRunEvent,
    Citation,
    RunCompleted,
    RunFailed,
    RunStarted,
    RunStopped,
    TerminalEvent,
    ToolCall,
)
from nexent.runtime.events import RunLog
from nexent.runtime.jobs import request_title
from nexent.runtime.models import FINISHED_RUN_STATUSES, Conversation, Message, Run, RunStatus
from nexent.runtime.owners import RunOwnership
from nexent.runtime.repository import ConversationRepository, MessageRepository, RunRepository
from nexent.runtime.schemas import ConversationDetail, ConversationRead, ConversationUpdate, MessageRead, RunRead

logger = logging.getLogger("nexent.runtime")

_TITLE_LENGTH = 60


class RunNotFound(NotFound):
    code = "run_not_found"


class ConversationNotFound(NotFound):
    code = "conversation_not_found"


class TooManyRuns(AppError):
    status, code = 429, "too_many_runs"


def cancel_key(run_id: uuid.UUID) -> str:
    return f"run:{run_id}"


# An agent with its model and the model's endpoints, in one query (built once; run with the tenant and agent ids).
_AGENT_WITH_MODEL = (
    select(Agent, ModelConfig, ModelEndpoint)
    .outerjoin(ModelConfig, (ModelConfig.id == Agent.model_id) & (ModelConfig.tenant_id == Agent.tenant_id))
    .outerjoin(
        ModelEndpoint,
        (ModelEndpoint.model_config_id == ModelConfig.id) & (ModelEndpoint.tenant_id == ModelConfig.tenant_id),
    )
    .where(Agent.tenant_id == bindparam("tenant_id"), Agent.id == bindparam("agent_id"))
    .order_by(ModelEndpoint.position, ModelEndpoint.created_at)
)


@dataclass(frozen=True)
class NewRun:
    """A run stored by `RuntimeService.start`, with what executing it needs from the request that started it."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    agent: Agent
    model: ModelSnapshot | None  # the agent's model with its endpoints (None: resolved, and reported, when it runs)
    message: str
    new_conversation: bool


class RunManager:
    """Executes runs as tasks of this process: at most `max_concurrent_runs` at once, at most
    `max_concurrent_runs_per_tenant` of one tenant, and a bounded queue of waiting runs (429 beyond)."""

    def __init__(self, engines: Engines) -> None:
        self.engines = engines
        settings = engines.settings
        self._slots = asyncio.Semaphore(settings.max_concurrent_runs)
        self._tenant_slots: dict[uuid.UUID, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.max_concurrent_runs_per_tenant)
        )
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._capacity = settings.max_concurrent_runs + settings.max_queued_runs
        # This process as the owner of its runs: a heartbeat, and the end of runs whose process died.
        self.ownership = RunOwnership(engines, on_lost=self._abandon_all)

    @property
    def owner_id(self) -> uuid.UUID:
        return self.ownership.id

    async def start(self) -> None:
        """Register as a run owner (before accepting runs) and start the heartbeat and the sweep."""
        await self.ownership.start()

    def _abandon_all(self) -> None:
        """Other processes took this one for lost and ended its runs: stop executing them."""
        for task in list(self._tasks.values()):
            task.cancel()

    def check_capacity(self) -> None:
        if len(self._tasks) >= self._capacity:
            raise TooManyRuns(
                "The platform is running as many agents as it can; try again shortly.", headers={"Retry-After": "5"}
            )

    def submit(self, caller: Caller, run: NewRun, *, stored: asyncio.Future[None] | None = None) -> None:
        """Execute `run`; `stored` is the commit of its record when that is still going on (see `execute_run`)."""
        self.check_capacity()
        task = asyncio.create_task(self._guarded(caller, run, stored), name=f"nexent-run-{run.id}")
        self._tasks[run.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run.id, None))

    async def recover_interrupted(self) -> int:
        """End the runs a previous life of this process left unfinished (embedded shape: no other process could
        be executing them). Their followers get `run.failed` with `interrupted`, and nothing waits forever."""
        async with self.engines.sessions() as session:
            stale = [(run.tenant_id, run.id) for run in await RunRepository.unfinished_everywhere(session)]
        ended = 0
        for tenant_id, run_id in stale:
            event = RunFailed(code="interrupted", message="The platform restarted during the run.")
            message = "The platform restarted while this run was going."
            fields = {"error_code": "interrupted", "error_message": message}
            ended += await end_elsewhere(self.engines, tenant_id, run_id, event, **fields) is not None
        if ended:
            logger.warning("ended runs interrupted by a restart", extra={"count": ended})
        return ended

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(BaseException):  # shutting down; each run logs its own end
                await task
        await writer_for(self.engines).close()
        await self.ownership.close()

    async def _guarded(self, caller: Caller, run: NewRun, stored: asyncio.Future[None] | None) -> None:
        async with self._slots, self._tenant_slots[caller.tenant_id]:
            with executing_run():
                try:
                    await execute_run(self.engines, caller, run, stored)
                except Exception:
                    logger.exception("a run failed unexpectedly", extra={"run_id": str(run.id)})


@dataclass
class RunOutcome:
    """What a run's events leave for its end: the top-level tool calls and the citations kept with the answer,
    the agent's terminal event (None until it came), and whether the run has ended already."""

    model_id: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)
    terminal: TerminalEvent | None = None
    ended: bool = False


class RunExecution:
    """One run executing in this process: the agent's events logged as they come; whatever happens, the run ends
    with a terminal event (`ending.end_run`).

    `stored` is the commit of the run's record, when it is still going on: the agent starts (and calls its model)
    meanwhile, but no event is sent or stored before the record is. A run whose record could not be stored never
    existed: it is stopped quietly (the request that started it answers with the error)."""

    def __init__(
        self, engines: Engines, caller: Caller, run: NewRun, stored: asyncio.Future[None] | None = None
    ) -> None:
        self.engines = engines
        self.caller = caller
        self.run = run
        self.stored = stored
        self.log = RunLog(engines, caller.tenant_id, run.id)
        self.outcome = RunOutcome()

    async def execute(self) -> None:
        run = self.run
        try:
            await self._execute()
        except _NeverStored:
            logger.warning("a run's record could not be stored; it was not run", extra={"run_id": str(run.id)})
        except AppError as exc:
            if await _is_stored(self.stored):
                await self._fail(exc.code, exc.detail)
        except Exception as exc:
            logger.exception("run failed", extra={"run_id": str(run.id)})
            if await _is_stored(self.stored):
                await self._fail("internal_error", f"The run failed: {type(exc).__name__}.")
        else:
            if not self.outcome.ended:
                await self._end()
        finally:
            await self.log.close()

    async def _execute(self) -> None:
        engines, caller, run, log = self.engines, self.caller, self.run, self.log
        agent = run.agent
        async with engines.sessions() as session:
            history = [] if run.new_conversation else await _history(session, caller.tenant_id, run)
            builder = EngineBuilder(session, engines, caller, conversation_id=run.conversation_id)
            setup = await builder.build(agent, run.model)
        self.outcome.model_id = str(agent.model_id) if agent.model_id else None
        kept, omitted = split_history(run.message, history, setup.context_window)
        # Outside any transaction: a summary is a model call, and nothing should hold the database meanwhile.
        summary = await _summary(engines, caller, run.conversation_id, omitted, setup.model.client) if omitted else None
        task = compose_task(run.message, kept, summary)
        async with engines.bus.subscribe(cancel_channel(cancel_key(run.id))) as signals:
            watcher = asyncio.create_task(_watch_cancel(signals, setup.cancel))
            stream = start_agent(setup, task)  # its model call goes out while the record is being committed
            try:
                if not await _is_stored(self.stored):
                    raise _NeverStored
                stopped = await engines.bus.is_cancelled(cancel_key(run.id))
            except BaseException:
                watcher.cancel()
                await abandon(setup, stream)
                raise
            if stopped:
                watcher.cancel()
                await abandon(setup, stream)
                await end_run(log, RunStopped(reason="stopped before it started"))
                self.outcome.ended = True
                return
            # Stored with the next batch of events; a run that already ended keeps its state.
            running = update(Run).where(Run.id == run.id, Run.status == RunStatus.QUEUED)
            writer_for(engines).add(Write().execute(running.values(status=RunStatus.RUNNING, started_at=utcnow())))
            started = RunStarted(run_id=str(run.id), agent_id=str(agent.id), conversation_id=str(run.conversation_id))
            try:
                await log.emit(started)
                async for event in run_events(setup, stream):
                    await self._record(event)
            finally:
                watcher.cancel()

    async def _record(self, event: BaseRunEvent) -> None:
        outcome = self.outcome
        if isinstance(event, RunCompleted | RunFailed | RunStopped):
            outcome.terminal = event  # stored by _end with the final state of the run
            return
        stored = await self.log.emit(event)
        if isinstance(event, ToolCall) and event.parent_call_id is None:
            outcome.tool_calls.append({"id": event.call_id, "name": event.name, "arguments": stored.data["arguments"]})
        elif isinstance(event, Citation):
            outcome.citations.append(stored.data)

    async def _end(self) -> None:
        caller, run, outcome = self.caller, self.run, self.outcome
        terminal = outcome.terminal or RunFailed(error="The agent ended without an answer.")
        usage = terminal.usage.model_dump() if terminal.usage is not None else {}
        if isinstance(terminal, RunCompleted):
            answer = str(terminal.answer or "")
            message = message_row(
                caller.tenant_id,
                run.conversation_id,
                run.id,
                "assistant",
                answer,
                utcnow(),
                tool_calls=outcome.tool_calls,
                citations=outcome.citations,
                usage=usage,
            )
            ended = await end_run(
                self.log, terminal, then=[insert(Message).values(message)], final_answer=answer, usage=usage
            )
            if ended is not None and run.new_conversation:
                request_title(self.engines, caller.tenant_id, run.conversation_id, outcome.model_id)
        elif isinstance(terminal, RunStopped):
            await end_run(self.log, terminal, usage=usage)
        else:
            error = terminal.error or "The run failed."
            failed = terminal.model_copy(update={"code": "agent_failed", "message": error})
            await end_run(self.log, failed, error_code="agent_failed", error_message=error, usage=usage)

    async def _fail(self, code: str, message: str) -> None:
        await end_run(self.log, RunFailed(code=code, message=message), error_code=code, error_message=message)


async def execute_run(
    engines: Engines, caller: Caller, run: NewRun, stored: asyncio.Future[None] | None = None
) -> None:
    """Execute `run` in this process (see `RunExecution`)."""
    await RunExecution(engines, caller, run, stored).execute()


class _NeverStored(Exception):
    pass


async def _is_stored(stored: asyncio.Future[None] | None) -> bool:
    if stored is None:
        return True
    try:
        await stored
    except Exception:
        return False
    return True


async def _summary(
    engines: Engines, caller: Caller, conversation_id: uuid.UUID | None, omitted: list[tuple[str, str]], client: Any
) -> str | None:
    """The summary of the turns that no longer fit, reused while the same turns are left out."""
    if conversation_id is None:
        return None
    async with engines.sessions() as session:
        conversation = await ConversationRepository(session, caller.tenant_id).get(conversation_id)
        if conversation is not None and conversation.summary and conversation.summarized_messages == len(omitted):
            return conversation.summary
    try:
        summary = await summarize(client, omitted)
    except ProviderError:
        logger.warning("could not summarise earlier turns", extra={"conversation_id": str(conversation_id)})
        return None
    async with engines.sessions() as session, session.begin():
        conversation = await ConversationRepository(session, caller.tenant_id).get(conversation_id)
        if conversation is not None:
            conversation.summary, conversation.summarized_messages = summary, len(omitted)
    return summary


async def _watch_cancel(signals: Any, cancel: Any) -> None:
    await anext(signals)
    cancel.set()


async def _history(session: AsyncSession, tenant_id: uuid.UUID, run: NewRun) -> list[tuple[str, str]]:
    messages = await MessageRepository(session, tenant_id).of_conversation(run.conversation_id)
    return [(m.role, m.content) for m in messages if m.run_id != run.id and m.content]


def message_row(
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    run_id: uuid.UUID,
    role: str,
    content: str,
    now: datetime,
    **extra: Any,
) -> dict[str, Any]:
    """A `messages` row with every column (rows of one batch are inserted with one statement)."""
    return {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "conversation_id": conversation_id,
        "run_id": run_id,
        "role": role,
        "content": content,
        "tool_calls": extra.get("tool_calls", []),
        "citations": extra.get("citations", []),
        "usage": extra.get("usage", {}),
        "created_at": now,
    }


class RuntimeService:
    """What a caller does with runs and conversations; a caller sees only their own."""

    def __init__(self, session: AsyncSession, engines: Engines, caller: Caller) -> None:
        self.session = session
        self.engines = engines
        self.caller = caller
        self.runs = RunRepository(session, caller.tenant_id)
        self.conversations = ConversationRepository(session, caller.tenant_id)
        self.messages = MessageRepository(session, caller.tenant_id)

    async def start(
        self, manager: RunManager, agent_id: uuid.UUID, message: str, conversation_id: uuid.UUID | None
    ) -> NewRun:
        """Start a run: its record (the user's message and a queued run, with the conversation) is committed
        by the process's run writer while the run already builds its agent and calls the model; this returns once
        the record is stored (raising if it could not be: the run then stops without a trace)."""
        run, record = await self.prepare(manager, agent_id, message, conversation_id)
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        manager.submit(self.caller, run, stored=stored)
        commit = asyncio.ensure_future(writer_for(self.engines).store(record))
        commit.add_done_callback(lambda done: _settle(stored, done))
        # Shielded: a client that goes away now does not undo the commit (the run goes on, as it would later).
        await asyncio.shield(commit)
        return run

    async def prepare(
        self, manager: RunManager, agent_id: uuid.UUID, message: str, conversation_id: uuid.UUID | None
    ) -> tuple[NewRun, Write]:
        """Read what a new run needs and build its record (not stored yet)."""
        manager.check_capacity()
        # Loaded here, in the request's session: the run then needs no database read to start.
        agent, model = await self._agent_and_model(agent_id)
        tenant_id, now = self.caller.tenant_id, utcnow()
        new_conversation = conversation_id is None
        write = Write()
        if conversation_id is not None:
            conversation = await self._conversation(conversation_id)
            write.execute(update(Conversation).where(Conversation.id == conversation.id).values(updated_at=now))
        else:
            conversation_id = uuid.uuid4()
            write.insert(
                Conversation,
                {
                    "id": conversation_id,
                    "tenant_id": tenant_id,
                    "user_id": self.caller.user_id,
                    "agent_id": agent.id,
                    "title": _title(message),
                    "summary": None,
                    "summarized_messages": 0,
                    "created_at": now,
                    "updated_at": now,
                },
            )
        run_id = uuid.uuid4()
        write.insert(
            Run,
            {
                "id": run_id,
                "tenant_id": tenant_id,
                "agent_id": agent.id,
                "conversation_id": conversation_id,
                "user_id": self.caller.user_id,
                "status": RunStatus.QUEUED.value,
                "input": message,
                "final_answer": None,
                "error_code": None,
                "error_message": None,
                "usage": {},
                "created_at": now,
                "started_at": None,
                "finished_at": None,
                "owner_id": manager.owner_id,
            },
        )
        write.insert(Message, message_row(tenant_id, conversation_id, run_id, "user", message, now))
        # The reads are done: the request's connection goes back to the pool while the run starts.
        await self.session.commit()
        run = NewRun(
            id=run_id,
            conversation_id=conversation_id,
            agent=agent,
            model=model,
            message=message,
            new_conversation=new_conversation,
        )
        return run, write

    async def _agent_and_model(self, agent_id: uuid.UUID) -> tuple[Agent, ModelSnapshot | None]:
        """The agent, if the caller may use it (as `AgentService.get_record`), and its model with endpoints (the
        tenant's default model when the agent names none; None when there is no such model: the run reports it).
        A caller who sees every agent of the tenant gets both in one query."""
        agents = AgentService(self.session, self.caller)
        providers = ProviderService(self.session, self.engines, self.caller)
        if not agents.sees_all:  # shared agents only: the access check is a query of its own
            agent = await agents.get_record(agent_id)
            return agent, await providers.config_with_endpoints(agent.model_id, ModelKind.LLM)
        if not self.caller.may_use_agent(agent_id):
            raise AgentNotFound(f"No agent {agent_id} in this tenant.")
        params = {"tenant_id": self.caller.tenant_id, "agent_id": agent_id}
        rows = (await self.session.execute(_AGENT_WITH_MODEL, params)).all()
        if not rows:
            raise AgentNotFound(f"No agent {agent_id} in this tenant.")
        agent, config = rows[0][0], rows[0][1]
        if config is not None:
            return agent, (config, [endpoint for _, _, endpoint in rows if endpoint is not None])
        if agent.model_id is None:
            return agent, await providers.config_with_endpoints(None, ModelKind.LLM)
        return agent, None

    async def _run(self, run_id: uuid.UUID) -> Run:
        run = await self.runs.get(run_id)
        if run is None or run.user_id != self.caller.user_id:
            raise RunNotFound(f"No run {run_id} of yours.")
        return run

    async def list_runs(
        self, page: PageParams, *, conversation_id: uuid.UUID | None, status: RunStatus | None
    ) -> Page[RunRead]:
        rows, total = await self.runs.list_page(
            user_id=self.caller.user_id,
            conversation_id=conversation_id,
            status=status,
            limit=page.limit,
            offset=page.offset,
        )
        return Page[RunRead](
            items=[RunRead.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset
        )

    async def get(self, run_id: uuid.UUID) -> RunRead:
        return RunRead.model_validate(await self._run(run_id))

    async def stop(self, run_id: uuid.UUID) -> RunRead:
        """Ask the process executing the run to stop it; it ends with `run.stopped` within about a second."""
        run = await self._run(run_id)
        if run.status not in FINISHED_RUN_STATUSES:
            await self.engines.bus.request_cancel(cancel_key(run.id))
        return RunRead.model_validate(run)

    async def _conversation(self, conversation_id: uuid.UUID) -> Conversation:
        conversation = await self.conversations.get(conversation_id)
        if conversation is None or conversation.user_id != self.caller.user_id:
            raise ConversationNotFound(f"No conversation {conversation_id} of yours.")
        return conversation

    async def list_conversations(self, page: PageParams) -> Page[ConversationRead]:
        rows, total = await self.conversations.list_page(
            user_id=self.caller.user_id, limit=page.limit, offset=page.offset
        )
        return Page[ConversationRead](
            items=[ConversationRead.model_validate(c) for c in rows], total=total, limit=page.limit, offset=page.offset
        )

    async def conversation(self, conversation_id: uuid.UUID) -> ConversationDetail:
        conversation = await self._conversation(conversation_id)
        messages = await self.messages.of_conversation(conversation.id)
        return ConversationDetail(
            **ConversationRead.model_validate(conversation).model_dump(),
            messages=[MessageRead.model_validate(m) for m in messages],
        )

    async def rename(self, conversation_id: uuid.UUID, data: ConversationUpdate) -> ConversationRead:
        conversation = await self._conversation(conversation_id)
        conversation.title = data.title
        conversation.updated_at = utcnow()
        await self.session.flush()
        return ConversationRead.model_validate(conversation)

    async def delete_conversation(self, conversation_id: uuid.UUID) -> None:
        conversation = await self._conversation(conversation_id)
        await self.conversations.delete(conversation)


def _settle(future: asyncio.Future[None], done: asyncio.Future[None]) -> None:
    if future.done():
        return
    if done.cancelled():
        future.cancel()
    elif (error := done.exception()) is not None:
        future.set_exception(error)
    else:
        future.set_result(None)


def _title(message: str) -> str:
    line = " ".join(message.split())
    return line if len(line) <= _TITLE_LENGTH else line[: _TITLE_LENGTH - 1].rstrip() + "…"
