"""Executing runs in this process: the run manager (bounded concurrency, a queue, this process as the owner of its
runs) and one run's execution, from building its agent to its end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update

from nexent.agents.versions import AgentSpec
from nexent.core import tracing
from nexent.core.batch import ModelRow, Write, writer_for
from nexent.core.db import utcnow
from nexent.core.errors import AppError
from nexent.core.metrics import observe_error
from nexent.engines.bus.base import cancel_channel
from nexent.engines.container import Engines
from nexent.identity.auth import Caller
from nexent.memory.jobs import extraction_payload
from nexent.memory.service import Recall, recall, remembered_section
from nexent.runtime import metrics
from nexent.runtime.activity import executing_run
from nexent.runtime.attachments import AttachmentRef, prepare_attachments
from nexent.runtime.builder import (
    AgentBuilder,
    ModelSnapshot,
    Turn,
    abandon,
    compose_task,
    run_events,
    split_history,
    start_agent,
)
from nexent.runtime.conversations import history, message_row, summary_of
from nexent.runtime.ending import end_elsewhere, end_run, status_of
from nexent.runtime.event_types import (
    BaseRunEvent,
    Citation,
    MemoryRecalled,
    RememberedFact,
    RunCompleted,
    RunFailed,
    RunStarted,
    RunStopped,
    TerminalEvent,
    ToolCall,
)
from nexent.runtime.events import Event, RunLog
from nexent.runtime.jobs import request_memory, request_title
from nexent.runtime.models import Message, Run, RunStatus
from nexent.runtime.owners import RunOwnership
from nexent.runtime.repository import RunRepository

logger = logging.getLogger("nexent.runtime")


class TooManyRuns(AppError):
    status, code = 429, "too_many_runs"


def cancel_key(run_id: uuid.UUID) -> str:
    return f"run:{run_id}"


@dataclass(frozen=True)
class NewRun:
    """A run stored by `RuntimeService.start`, with what executing it needs from the request that started it."""

    id: uuid.UUID
    conversation_id: uuid.UUID | None  # None: a stateless run (`RuntimeService.start_stateless`)
    agent: AgentSpec  # its draft or one of its versions
    model: ModelSnapshot | None  # the agent's model with its endpoints (None: resolved, and reported, when it runs)
    message: str
    new_conversation: bool
    # Messages of the conversation this run replaces (a regenerated last turn): never fed back to the model. They
    # are deleted with the run's record, which may still be on its way when the run reads the earlier turns.
    replaced_messages: frozenset[uuid.UUID] = frozenset()
    # The conversation so far of a stateless run (no conversation is read or written): given by the caller.
    history: tuple[Turn, ...] = ()
    # The files the user's message carries, prepared before the agent starts (`runtime.attachments`).
    attachments: tuple[AttachmentRef, ...] = ()


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
        """Execute `run`; `stored` is the commit of its record when that is still going on (see `RunExecution`)."""
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
        await writer_for(self.engines).flush()  # the ends of the runs just cancelled
        await self.ownership.close()

    async def _guarded(self, caller: Caller, run: NewRun, stored: asyncio.Future[None] | None) -> None:
        handed_over = time.monotonic()
        metrics.QUEUED.inc()
        queued = True
        try:
            async with self._slots, self._tenant_slots[caller.tenant_id]:
                metrics.QUEUED.dec()
                queued = False
                metrics.EXECUTING.inc()
                try:
                    with executing_run():
                        await RunExecution(self.engines, caller, run, stored, handed_over=handed_over).execute()
                except Exception:
                    logger.exception("a run failed unexpectedly", extra={"run_id": str(run.id)})
                finally:
                    metrics.EXECUTING.dec()
        finally:
            if queued:
                metrics.QUEUED.dec()


@dataclass
class RunOutcome:
    """What a run's events leave for its end: the top-level tool calls and the citations kept with the answer,
    the agent's terminal event (None until it came), and whether the run has ended already."""

    model_id: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)
    terminal: TerminalEvent | None = None
    ended: bool = False
    extract_memory: bool = False  # the turn may be extracted into memories (memory is on for this run)
    status: str | None = None  # how it ended: a run status, or "ended_elsewhere" (another end came first)


class RunExecution:
    """One run executing in this process: the agent's events logged as they come; whatever happens, the run ends
    with a terminal event (`ending.end_run`).

    `stored` is the commit of the run's record, when it is still going on: the agent starts (and calls its model)
    meanwhile, but no event is sent or stored before the record is. A run whose record could not be stored never
    existed: it is stopped quietly (the request that started it answers with the error)."""

    def __init__(
        self,
        engines: Engines,
        caller: Caller,
        run: NewRun,
        stored: asyncio.Future[None] | None = None,
        *,
        handed_over: float | None = None,
    ) -> None:
        self.engines = engines
        self.caller = caller
        self.run = run
        self.stored = stored
        self.log = RunLog(engines, caller.tenant_id, run.id)
        self.outcome = RunOutcome()
        # When the run manager got the run (`time.monotonic()`): the run's clock starts.
        self.handed_over = time.monotonic() if handed_over is None else handed_over
        self.first_event = False
        self.started = False  # `run.started` sent

    async def execute(self) -> None:
        run = self.run
        attributes = {
            "nexent.run.id": str(run.id),
            "nexent.agent.id": str(run.agent.id),
            "nexent.agent.version": run.agent.version,
            "nexent.tenant.id": str(self.caller.tenant_id),
            "nexent.run.queued_seconds": round(time.monotonic() - self.handed_over, 6),
        }
        with tracing.span("run", attributes) as span:
            await self._traced_execute()
            if self.outcome.status is not None:
                span.set_attribute("nexent.run.status", self.outcome.status)

    async def _traced_execute(self) -> None:
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
            if self.outcome.status is not None:
                metrics.RUNS_FINISHED.labels(self.outcome.status).inc()
                metrics.AGENT_RUNS.labels(str(run.agent.id), self.outcome.status).inc()
                metrics.RUN_DURATION.labels(self.outcome.status).observe(time.monotonic() - self.handed_over)

    async def _execute(self) -> None:
        engines, caller, run = self.engines, self.caller, self.run
        agent = run.agent
        # Memory is searched while the history is read and the agent built (its own session).
        recalling = asyncio.create_task(recall(engines, caller, agent.id, run.message))
        try:
            async with engines.sessions() as session:
                turns, setup = await self._prepare(session)
            self.outcome.model_id = str(agent.model_id) if agent.model_id else None
            message = await self._with_attachments(setup)
            kept, omitted = split_history(message, turns, setup.context_window)
            # Outside any transaction: a summary is a model call, and nothing should hold the database meanwhile.
            client = setup.model.client
            summary = (
                await summary_of(engines, caller.tenant_id, run.conversation_id, omitted, client) if omitted else None
            )
            remembered: Recall = await recalling
        finally:
            recalling.cancel()  # done already, unless the run failed before it was needed
        self.outcome.extract_memory = remembered.extract and run.conversation_id is not None
        memory = remembered_section(remembered.memories) if remembered.memories else None
        task = compose_task(message, kept, summary, memory)
        await self._run_agent(setup, task, remembered)

    async def _with_attachments(self, setup: Any) -> str:
        """The user's message with what the agent gets from its attachments (their images go to the model).
        Their preparation streams as events, so the run is stored and started first."""
        run = self.run
        if not run.attachments:
            return run.message
        try:
            if not await _is_stored(self.stored):
                raise _NeverStored
            await self._started()
            prepared = await prepare_attachments(
                self.engines,
                self.caller,
                run.attachments,
                accepts_images=setup.model.accepts_images,
                context_window=setup.context_window,
                emit=self.log.emit,
                conversation_id=run.conversation_id,
            )
        except BaseException:
            await asyncio.to_thread(setup.cleanup)
            raise
        setup.model.images = prepared.images
        if prepared.index is not None and setup.install_index is not None:
            setup.install_index(*prepared.index)
        return prepared.task(run.message)

    async def _started(self) -> None:
        """Send `run.started` (once)."""
        if self.started:
            return
        self.started = True
        run = self.run
        await self.log.emit(
            RunStarted(
                run_id=str(run.id),
                agent_id=str(run.agent.id),
                agent_version=run.agent.version,
                conversation_id=str(run.conversation_id) if run.conversation_id is not None else None,
                trace_id=tracing.current_trace_id(),
            )
        )
        metrics.RUNS_STARTED.inc()

    async def _prepare(self, session: Any) -> tuple[list[Turn], Any]:
        """The earlier turns fed back to the model, and the agent built."""
        caller, run = self.caller, self.run
        turns: list[Turn]
        if run.conversation_id is None:
            turns = list(run.history)
        elif run.new_conversation:
            turns = []
        else:
            turns = await history(
                session, caller.tenant_id, run.conversation_id, run.id, leave_out=run.replaced_messages
            )
        builder = AgentBuilder(session, self.engines, caller, conversation_id=run.conversation_id)
        return turns, await builder.build(run.agent, run.model)

    async def _run_agent(self, setup: Any, task: str, remembered: Recall) -> None:
        engines, run, log = self.engines, self.run, self.log
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
                await self._finish(RunStopped(reason="stopped before it started"))
                self.outcome.ended = True
                return
            # Stored with the next batch of events; a run that already ended keeps its state.
            running = update(Run).where(Run.id == run.id, Run.status == RunStatus.QUEUED)
            writer_for(engines).add(Write().execute(running.values(status=RunStatus.RUNNING, started_at=utcnow())))
            try:
                await self._started()
                if remembered.memories:
                    facts = [RememberedFact(id=m.id, level=m.level.value, text=m.text) for m in remembered.memories]
                    await log.emit(MemoryRecalled(memories=facts))
                async for event in run_events(setup, stream):
                    await self._record(event)
            finally:
                watcher.cancel()

    async def _record(self, event: BaseRunEvent) -> None:
        outcome = self.outcome
        if not self.first_event:
            self.first_event = True
            metrics.RUN_FIRST_EVENT.observe(time.monotonic() - self.handed_over)
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
            if run.conversation_id is None:  # stateless: the run's record alone keeps the answer
                await self._finish(terminal, final_answer=answer, usage=usage)
                return
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
            ended = await self._finish(terminal, then=[(Message, message)], final_answer=answer, usage=usage)
            if ended is not None and run.new_conversation:
                request_title(self.engines, caller.tenant_id, run.conversation_id, outcome.model_id)
            if ended is not None and outcome.extract_memory:
                payload = extraction_payload(
                    user_id=caller.user_id,
                    agent_id=run.agent.id,
                    model_id=outcome.model_id,
                    run_id=run.id,
                    conversation_id=run.conversation_id,
                    message=run.message,
                    answer=answer,
                )
                request_memory(self.engines, caller.tenant_id, payload)
        elif isinstance(terminal, RunStopped):
            await self._finish(terminal, usage=usage)
        else:
            error = terminal.error or "The run failed."
            failed = terminal.model_copy(update={"code": "agent_failed", "message": error})
            await self._finish(failed, error_code="agent_failed", error_message=error, usage=usage)

    async def _fail(self, code: str, message: str) -> None:
        await self._finish(RunFailed(code=code, message=message), error_code=code, error_message=message)

    async def _finish(self, event: TerminalEvent, *, then: Sequence[ModelRow] = (), **fields: Any) -> Event | None:
        """End the run (`ending.end_run`), noting how it ended."""
        ended = await end_run(self.log, event, then=then, **fields)
        self.outcome.status = status_of(event).value if ended is not None else "ended_elsewhere"
        if ended is not None and isinstance(event, RunFailed):
            observe_error("run", event.code or "failed")  # errors by class, beside the problems of requests
        return ended


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


async def _watch_cancel(signals: Any, cancel: Any) -> None:
    await anext(signals)
    cancel.set()
