"""smolagents 1.26 stream -> platform events, sub-agent (managed agent) events nested under the parent call id,
and an async runner that drives an agent in a worker thread.

Events (typed, `event_types`): message.delta, thinking.delta, tool.call, tool.result, code, step.completed,
run.completed (+ run.stopped / run.failed; agent.completed ends a sub-agent). Every event carries `agent` (name)
and `parent_call_id` (None at top level; the id of the parent's tool call / code step for a sub-agent's events).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import jinja2
import smolagents.agents
from smolagents.agents import (
    ActionOutput,
    CodeAgent,
    ToolCallingAgent,
    ToolOutput,
)
from smolagents.default_tools import FinalAnswerTool
from smolagents.memory import ActionStep, FinalAnswerStep, PlanningStep, ToolCall
from smolagents.models import ChatMessageStreamDelta
from smolagents.monitoring import AgentLogger, LogLevel, TokenUsage
from smolagents.utils import AgentMaxStepsError, AgentParsingError, truncate_content

from nexent.runtime import event_types
from nexent.runtime.smol_model import FinalAnswerArgsStreamer, PlatformStreamDelta, RunCancelled, current_delta_sink

Emit = Callable[[event_types.BaseRunEvent], None]

# The platform's event sink and the id of the tool call being executed, seen by nested (sub-)agents.
# ToolCallingAgent runs parallel tool calls in a ThreadPoolExecutor with copy_context(), so both propagate.
current_sink: contextvars.ContextVar[Emit | None] = contextvars.ContextVar("current_sink", default=None)
current_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_call_id", default=None)


@functools.lru_cache(maxsize=256)
def _compiled_template(template: str) -> jinja2.Template:
    compiled: jinja2.Template = jinja2.Template(template, undefined=jinja2.StrictUndefined)
    return compiled


def populate_template(template: str, variables: dict[str, Any]) -> str:
    """smolagents' `populate_template`, with each template compiled once per process: 1.26 compiles the Jinja
    source at every call (2-7 ms of CPU under the GIL each time, several times per run)."""
    try:
        return _compiled_template(template).render(**variables)
    except Exception as e:
        raise Exception(f"Error during jinja template rendering: {type(e).__name__}: {e}") from e


# Every prompt smolagents renders (system prompt, planning, managed-agent task and report, final-answer summary)
# goes through this module-level function; rendering is unchanged, only compiling is cached.
smolagents.agents.populate_template = populate_template


@functools.cache
def final_answer_tool() -> FinalAnswerTool:
    """smolagents adds a new `FinalAnswerTool()` to every agent, validated at each instantiation (inspect,
    typing: a noticeable part of building an agent); it keeps no state, so every agent of the process shares one."""
    return FinalAnswerTool()


@functools.cache
def silent_logger() -> AgentLogger:
    """verbosity_level=LogLevel.OFF silences AgentLogger.log, but stream_outputs=True also draws a rich `Live`
    on logger.console regardless of the level: give the logger a quiet console too. One for every agent of the
    process (it keeps no state, and building a rich Console per agent costs)."""
    from rich.console import Console

    return AgentLogger(level=LogLevel.OFF, console=Console(quiet=True))


def _usage(u: TokenUsage | None) -> event_types.Usage | None:
    return None if u is None else event_types.Usage(input_tokens=u.input_tokens, output_tokens=u.output_tokens)


class EventMapper:
    """Feed it every item of `agent.run(task, stream=True)`; it emits platform events."""

    def __init__(
        self,
        emit: Emit,
        *,
        agent: str,
        parent_call_id: str | None = None,
        code_agent: bool = False,
        usage: Callable[[], TokenUsage] | None = None,
        memory_owner: Any = None,
        nested: bool = False,
    ) -> None:
        self.emit_raw = emit
        self.nested = nested  # a sub-agent: its end is "agent.completed" (run.completed is the run's terminal event)
        self.agent = agent
        self.parent_call_id = parent_call_id
        self.code_agent = code_agent
        self.usage = usage
        self.owner = memory_owner
        self.last_step: ActionStep | None = None
        self._reset_step()

    def _reset_step(self) -> None:
        self.call_names: dict[int, str] = {}  # streamed tool call index -> name
        self.answer_streams: dict[int, FinalAnswerArgsStreamer] = {}
        self.pending: dict[str, str] = {}  # call id -> name, awaiting a result
        self.streamed_answer = False

    def emit(self, event: event_types.BaseRunEvent) -> None:
        self.emit_raw(event)

    def feed(self, ev: Any) -> None:
        E = event_types
        a, p = self.agent, self.parent_call_id
        if isinstance(ev, ChatMessageStreamDelta):
            self._delta(ev)
        elif isinstance(ev, ToolCall):
            if ev.name == "final_answer":
                return
            if self.code_agent and ev.name == "python_interpreter":
                self.emit(E.Code(agent=a, parent_call_id=p, call_id=ev.id, code=ev.arguments))
            else:
                self.emit(E.ToolCall(agent=a, parent_call_id=p, call_id=ev.id, name=ev.name, arguments=ev.arguments))
            self.pending[ev.id] = ev.name
        elif isinstance(ev, ToolOutput):
            if ev.is_final_answer:
                return
            self.pending.pop(ev.id, None)
            self.emit(
                E.ToolResult(
                    agent=a, parent_call_id=p, call_id=ev.id, name=ev.tool_call.name, output=ev.observation, error=None
                )
            )
        elif isinstance(ev, ActionOutput):
            pass  # the step's result; ActionStep (next) carries it with observations
        elif isinstance(ev, ActionStep):
            if ev is self.last_step:
                return  # 1.26 yields the last ActionStep twice when max_steps is reached (_run_stream)
            self.last_step = ev
            for call_id, name in list(self.pending.items()):
                # CodeAgent: no ToolOutput exists, the logs/result are the step's observations.
                # ToolCallingAgent: a tool that raised has no ToolOutput either; the error is on the step.
                error = str(ev.error) if ev.error else None
                self.emit(
                    E.ToolResult(
                        agent=a, parent_call_id=p, call_id=call_id, name=name, output=ev.observations, error=error
                    )
                )
            self.emit(
                E.StepCompleted(
                    agent=a,
                    parent_call_id=p,
                    kind="action",
                    step=ev.step_number,
                    usage=_usage(ev.token_usage),
                    error=f"{type(ev.error).__name__}: {ev.error}" if ev.error else None,
                    is_final_answer=ev.is_final_answer,
                    duration=ev.timing.duration,
                )
            )
            self._reset_step()
        elif isinstance(ev, PlanningStep):
            self.emit(
                E.StepCompleted(agent=a, parent_call_id=p, kind="planning", plan=ev.plan, usage=_usage(ev.token_usage))
            )
            self._reset_step()
        elif isinstance(ev, FinalAnswerStep):
            state: Literal["success", "max_steps"] = "success"
            if self.owner is not None:
                steps = self.owner.memory.steps
                if steps and isinstance(getattr(steps[-1], "error", None), AgentMaxStepsError):
                    state = "max_steps"
            answer = ev.output if isinstance(ev.output, (str, int, float, bool, type(None))) else str(ev.output)
            usage = _usage(self.usage()) if self.usage else None
            end = E.AgentCompleted if self.nested else E.RunCompleted
            self.emit(end(agent=a, parent_call_id=p, answer=answer, state=state, usage=usage))

    def _delta(self, ev: ChatMessageStreamDelta) -> None:
        E = event_types
        a, p = self.agent, self.parent_call_id
        planning = isinstance(ev, PlatformStreamDelta) and ev.phase == "planning"
        if isinstance(ev, PlatformStreamDelta) and ev.reasoning:
            self.emit(E.ThinkingDelta(agent=a, parent_call_id=p, text=ev.reasoning))
        if ev.content:
            if planning:
                self.emit(E.ThinkingDelta(agent=a, parent_call_id=p, text=ev.content, kind="plan"))
            else:
                self.emit(E.MessageDelta(agent=a, parent_call_id=p, text=ev.content))
        for call in ev.tool_calls or []:
            index = call.index or 0
            if call.function and call.function.name:
                self.call_names[index] = call.function.name
            if self.call_names.get(index) == "final_answer" and call.function and call.function.arguments:
                streamer = self.answer_streams.setdefault(index, FinalAnswerArgsStreamer())
                if text := streamer.feed(call.function.arguments):
                    self.emit(E.MessageDelta(agent=a, parent_call_id=p, text=text, final=True))


# --- sub-agent nesting -----------------------------------------------------------------------------------------


class _StreamingManaged:
    """Managed-agent entry point (`MultiStepAgent.__call__`, what the parent calls as a tool) that runs the
    sub-agent with stream=True and forwards its events, nested under the parent's current call id."""

    def initialize_system_prompt(self: Any) -> str:
        # smolagents renders the system prompt when the agent is built and again at every run; a platform agent
        # is built for one run and its tools and instructions do not change in between.
        cached: str | None = self.__dict__.get("_platform_system_prompt")
        if cached is None:
            cached = self.__dict__["_platform_system_prompt"] = super().initialize_system_prompt()  # type: ignore[misc]
        return cached

    def __call__(self: Any, task: str, **kwargs: Any) -> Any:
        sink = current_sink.get()
        if sink is None:
            return super().__call__(task, **kwargs)  # type: ignore[misc]
        full_task = populate_template(
            self.prompt_templates["managed_agent"]["task"], variables=dict(name=self.name, task=task)
        )
        mapper = EventMapper(
            sink,
            agent=self.name,
            parent_call_id=current_call_id.get(),
            code_agent=isinstance(self, CodeAgent),
            usage=lambda: _memory_usage(self),
            memory_owner=self,
            nested=True,
        )
        report = None
        call_token = current_call_id.set(None)
        delta_token = current_delta_sink.set(mapper.feed)  # deltas of generate() (stream_outputs=False)
        try:
            for ev in self.run(full_task, stream=True, **kwargs):
                mapper.feed(ev)
                if isinstance(ev, FinalAnswerStep):
                    report = ev.output
        finally:
            current_delta_sink.reset(delta_token)
            current_call_id.reset(call_token)
        answer = populate_template(
            self.prompt_templates["managed_agent"]["report"], variables=dict(name=self.name, final_answer=report)
        )
        if self.provide_run_summary:
            answer += "\n\nFor more detail, find below a summary of this agent's work:\n<summary_of_work>\n"
            for message in self.write_memory_to_messages(summary_mode=True):
                answer += "\n" + truncate_content(str(message.content)) + "\n---"
            answer += "\n</summary_of_work>"
        return answer


def _memory_usage(agent: Any) -> TokenUsage:
    total_in = total_out = 0
    for step in agent.memory.steps:
        if isinstance(step, (ActionStep, PlanningStep)) and step.token_usage:
            total_in += step.token_usage.input_tokens
            total_out += step.token_usage.output_tokens
    return TokenUsage(input_tokens=total_in, output_tokens=total_out)


class PlatformToolCallingAgent(_StreamingManaged, ToolCallingAgent):
    """Makes the id of the tool call being executed visible (contextvar) to what the tool runs: a sub-agent.

    execute_tool_call(tool_name, arguments) gets no call id in 1.26; process_tool_calls yields each ToolCall
    before executing it, and passes the very same `arguments` object on, so the id is found by object identity.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._call_ids: dict[int, str] = {}
        self._call_ids_lock = threading.Lock()

    def process_tool_calls(self, chat_message: Any, memory_step: Any) -> Any:
        for ev in super().process_tool_calls(chat_message, memory_step):
            if isinstance(ev, ToolCall):
                with self._call_ids_lock:
                    self._call_ids[id(ev.arguments)] = ev.id
            yield ev

    def execute_tool_call(self, tool_name: str, arguments: Any) -> Any:
        with self._call_ids_lock:
            call_id = self._call_ids.pop(id(arguments), None)
        token = current_call_id.set(call_id)
        try:
            return super().execute_tool_call(tool_name, arguments)
        finally:
            current_call_id.reset(token)


class PlatformCodeAgent(_StreamingManaged, CodeAgent):
    """Code steps: the code's call id (ToolCall "python_interpreter", id "call_<n>") is the parent id of
    sub-agents and tools called from that code. Tools/sub-agents must be called in this thread for the contextvar
    to be seen: true for SubprocessExecutor (RPC loop runs here); LocalPythonExecutor runs code in a fresh
    ThreadPoolExecutor thread for its timeout (no context copy) unless executor_kwargs={"timeout_seconds": None}."""

    plain_text_is_final_answer = True

    def _step_stream(self, memory_step: Any) -> Any:
        try:
            for ev in super()._step_stream(memory_step):
                if isinstance(ev, ToolCall):
                    current_call_id.set(ev.id)
                yield ev
        except AgentParsingError:
            # The CodeAgent twin of the plain-text trap: a reply without a code block is a parsing error and a
            # retry. Take text without any code tag as the final answer (CodeAgent appended the closing tag).
            text = (memory_step.model_output or "").strip()
            opening, closing = self.code_block_tags
            text = text[: -len(closing)].strip() if text.endswith(closing) else text
            if not (self.plain_text_is_final_answer and text and opening not in text and "```" not in text):
                raise
            memory_step.action_output = text
            yield ActionOutput(output=text, is_final_answer=True)


# --- running in a worker thread -----------------------------------------------------------------------------------

_NOTHING = object()
_DELTA_EVENTS = (event_types.MessageDelta, event_types.ThinkingDelta)
# Deltas of one stream go out at most this often (the first at once): every event costs the same work whatever its
# length (its log row, the bus, each reader's write), and a model sends a chunk every few milliseconds.
DELTA_INTERVAL_SECONDS = 0.025


def _same_stream(first: event_types.DeltaEvent, second: event_types.DeltaEvent) -> bool:
    """Two deltas that may be sent as one: same type, agent, nesting and flags; only the text differs."""
    return (
        type(first) is type(second)
        and first.agent == second.agent
        and first.parent_call_id == second.parent_call_id
        and getattr(first, "kind", None) == getattr(second, "kind", None)
        and getattr(first, "final", None) == getattr(second, "final", None)
    )


# Agent loops block their thread while they wait for the model: each running agent needs a thread of its own
# (the default executor has only a handful). The run manager bounds how many run at once.
_agent_threads = ThreadPoolExecutor(max_workers=1024, thread_name_prefix="nexent-agent")


class AgentStream:
    """`agent` running in a worker thread from the moment this is created (its model call goes out while the
    caller finishes its own work); `events()` yields its platform events on this loop. Leaving `events()` early,
    or `close()`, stops the run."""

    def __init__(
        self, agent: Any, task: str, *, model: Any, cancel: threading.Event | None = None, **run_kwargs: Any
    ) -> None:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()
        queue: asyncio.Queue[event_types.BaseRunEvent | None] = asyncio.Queue()
        self._queue = queue
        self._cancel = cancel or getattr(model, "cancel", None) or threading.Event()

        def emit(event: event_types.BaseRunEvent | None) -> None:
            # Deltas come from the loop itself (the model's reply is read there); the agent thread's events come
            # through call_soon_threadsafe, which keeps them in order with all the thread asked the loop before.
            if threading.get_ident() == loop_thread:
                queue.put_nowait(event)
            else:
                loop.call_soon_threadsafe(queue.put_nowait, event)

        def work() -> None:
            current_sink.set(emit)
            mapper = EventMapper(
                emit,
                agent=agent.name or "main",
                code_agent=isinstance(agent, CodeAgent),
                usage=lambda: model.token_usage,
                memory_owner=agent,
            )
            current_delta_sink.set(mapper.feed)
            try:
                for ev in agent.run(task, stream=True, **run_kwargs):
                    mapper.feed(ev)
            except RunCancelled as exc:
                usage = _usage(model.token_usage)
                emit(event_types.RunStopped(agent=mapper.agent, reason=str(exc), usage=usage))
            except Exception as exc:
                cause = exc.__cause__ or exc
                error, usage = f"{type(cause).__name__}: {cause}", _usage(model.token_usage)
                if "interrupted" in str(exc):
                    emit(event_types.RunStopped(agent=mapper.agent, error=error, usage=usage))
                else:
                    emit(event_types.RunFailed(agent=mapper.agent, error=error, usage=usage))
            finally:
                emit(None)

        self._worker = loop.run_in_executor(_agent_threads, contextvars.copy_context().run, work)

    async def events(self) -> AsyncGenerator[event_types.BaseRunEvent]:
        queue = self._queue
        loop = asyncio.get_running_loop()
        sent: dict[tuple[Any, ...], float] = {}  # when the last delta of each stream went out
        finished = False
        try:
            carried: event_types.BaseRunEvent | object | None = _NOTHING
            while True:
                event = await queue.get() if carried is _NOTHING else carried
                carried = _NOTHING
                if event is None:
                    break
                assert isinstance(event, event_types.BaseRunEvent)
                if isinstance(event, _DELTA_EVENTS):
                    # The first delta of a stream goes out at once; later ones at most every DELTA_INTERVAL
                    # seconds, each with the text that arrived meanwhile (what follows a delta waits as long).
                    stream = (event.type, event.agent, event.parent_call_id)
                    wait = sent.get(stream, -DELTA_INTERVAL_SECONDS) + DELTA_INTERVAL_SECONDS - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    sent[stream] = loop.time()
                    # Deltas that queued up while this consumer waited go out as one event: the same text, with
                    # less work per token.
                    while not queue.empty():
                        following = queue.get_nowait()
                        if not isinstance(following, _DELTA_EVENTS) or not _same_stream(event, following):
                            carried = following
                            break
                        event = event.model_copy(update={"text": event.text + following.text})
                yield event
            finished = True
        finally:
            if not finished:
                self._cancel.set()  # the consumer went away (closed/cancelled): stop at the next token/step
            await self._worker

    async def close(self) -> None:
        """Stop the run without reading its events; returns once the agent thread is done."""
        self._cancel.set()
        await self._worker


async def stream_run(
    agent: Any, task: str, *, model: Any, cancel: threading.Event | None = None, **run_kwargs: Any
) -> AsyncIterator[event_types.BaseRunEvent]:
    """Run `agent` in a worker thread, yield platform events on this loop. Closing the iterator stops the run."""
    events = AgentStream(agent, task, model=model, cancel=cancel, **run_kwargs).events()
    try:
        async for event in events:
            yield event
    finally:
        await events.aclose()
