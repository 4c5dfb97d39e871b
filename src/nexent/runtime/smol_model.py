"""A smolagents 1.26 `Model` over the platform's async streaming chat client.

The agent loop is synchronous and runs in a worker thread; the client (`ChatModel.stream(messages, tools=, **params)
-> AsyncIterator[ChatChunk]`, e.g. `nexent.providers.pool.RoutedModel`) is async and lives on the server's event
loop. `generate` (what the platform's agents call, `stream_outputs=False`) reads the whole stream on that loop,
hands each delta to the delta sink there, and returns the reply to the agent thread in one piece: no thread switch
per token. `generate_stream` (for agents with `stream_outputs=True`) instead puts each chunk in a `queue.Queue`
that the worker thread reads. Cancellation: a `CancelFlag` (a `threading.Event` that also calls back) cancels the
loop-side task (which closes the HTTP stream) and raises `RunCancelled` in the agent thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import json
import queue
import threading
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from smolagents.models import (
    ChatMessage,
    ChatMessageStreamDelta,
    ChatMessageToolCall,
    ChatMessageToolCallFunction,
    ChatMessageToolCallStreamDelta,
    MessageRole,
    Model,
    agglomerate_stream_deltas,
    get_tool_json_schema,
    parse_json_if_needed,
)
from smolagents.monitoring import TokenUsage
from smolagents.tools import Tool

from nexent.core import tracing


class RunCancelled(BaseException):
    """Raised in the agent thread when the run is stopped.

    A BaseException (like smolagents' own FinalAnswerException) so that smolagents' `except Exception` blocks
    (which would wrap it into AgentGenerationError / AgentToolExecutionError and, for tools, feed it back to the
    model as an observation) let it through untouched.
    """


@dataclass
class PlatformStreamDelta(ChatMessageStreamDelta):
    """`ChatMessageStreamDelta` plus what smolagents has no field for. smolagents ignores the extra fields
    (agglomerate_stream_deltas reads content/tool_calls/token_usage only) and yields the object as is."""

    reasoning: str | None = None
    phase: str = "action"  # "action" or "planning" (planning calls use stop_sequences=["<end_plan>"])


_DONE = object()


class CancelFlag(threading.Event):
    """A `threading.Event` that also runs callbacks when set, so a waiting model call is cancelled at once
    instead of polling the flag."""

    def __init__(self) -> None:
        super().__init__()
        self._callbacks: list[Callable[[], Any]] = []
        self._callbacks_lock = threading.Lock()

    def set(self) -> None:
        super().set()
        with self._callbacks_lock:
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_set(self, callback: Callable[[], Any]) -> Callable[[], None]:
        """Run `callback` when the flag is set (now, if it already is); returns a function that forgets it."""
        with self._callbacks_lock:
            if not self.is_set():
                self._callbacks.append(callback)

                def forget() -> None:
                    with self._callbacks_lock:
                        if callback in self._callbacks:
                            self._callbacks.remove(callback)

                return forget
        callback()
        return lambda: None


# Side channel for deltas when the agent does NOT stream (stream_outputs=False, and provide_final_answer after
# max_steps, which always calls generate()): generate() hands each delta to this callable as it arrives.
current_delta_sink: contextvars.ContextVar[Callable[[ChatMessageStreamDelta], None] | None] = contextvars.ContextVar(
    "current_delta_sink", default=None
)


def _add_images(wire: list[dict[str, Any]], images: list[str]) -> None:
    """The images as content parts of the first user message (the task), after its text."""
    for message in wire:
        if message["role"] == "user":
            text = message["content"] if isinstance(message["content"], str) else str(message["content"] or "")
            parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
            parts.extend({"type": "image_url", "image_url": {"url": url}} for url in images)
            message["content"] = parts
            return


def tool_spec(tool: Tool) -> dict[str, Any]:
    """OpenAI function-tool spec: the original JSON schema for tools built from one (see tools_factory), else
    smolagents' own conversion (final_answer, managed agents, hand-written tools)."""
    schema = getattr(tool, "parameters_schema", None)
    if schema is not None:
        return {
            "type": "function",
            "function": {"name": tool.name, "description": tool.description, "parameters": schema},
        }
    spec: dict[str, Any] = get_tool_json_schema(tool)
    return spec


class _StopTrimmer:
    """Cuts streamed text at the first stop sequence, for servers that ignore `stop` (or models that reject it).
    It holds back only a tail of the text that could be the start of a stop sequence, so ordinary text goes out
    as soon as it arrives (holding back a fixed len(longest stop)-1 characters delayed the first token by
    several chunks)."""

    def __init__(self, stops: list[str] | None) -> None:
        self.stops = [s for s in (stops or []) if s]
        self.buffer = ""
        self.stopped = False

    def _held(self, text: str) -> int:
        """Length of the longest tail of `text` that is a proper prefix of a stop sequence."""
        longest = 0
        for stop in self.stops:
            window = text[-(len(stop) - 1) :] if len(stop) > 1 else ""
            if stop[0] not in window:
                continue  # the usual case: no tail can start this stop sequence
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest

    def feed(self, text: str) -> str:
        if self.stopped or not text:
            return ""
        if not self.stops:
            return text
        self.buffer += text
        cut = -1
        for stop in self.stops:
            found = self.buffer.find(stop)
            if found >= 0 and (cut < 0 or found < cut):
                cut = found
        if cut >= 0:
            out, self.buffer, self.stopped = self.buffer[:cut], "", True
            return out
        keep = self._held(self.buffer)
        out, self.buffer = self.buffer[: len(self.buffer) - keep], self.buffer[len(self.buffer) - keep :]
        return out

    def flush(self) -> str:
        out, self.buffer = ("" if self.stopped else self.buffer), ""
        return out


class AsyncClientModel(Model):
    """smolagents Model over an async `ChatModel` (anything with `stream(messages, tools=, **params)`).

    Implements the 1.26 surface used by ToolCallingAgent/CodeAgent: `generate`, `generate_stream`, `model_id`,
    `supports_stop_parameter` (inherited: by model_id; override with `send_stop=`), `parse_tool_calls` (plain
    text becomes the final answer) and `__call__` (inherited, = generate).
    """

    def __init__(
        self,
        client: Any,
        loop: asyncio.AbstractEventLoop,
        *,
        model_id: str,
        cancel: threading.Event | None = None,
        tool_choice: str | dict[str, Any] | None = "auto",
        send_stop: bool | None = None,
        plain_text_is_final_answer: bool = True,
        poll: float = 0.1,
        **params: Any,  # temperature, max_tokens, ... sent with every call
    ) -> None:
        # flatten_messages_as_text: message content as plain strings (smolagents otherwise sends
        # [{"type":"text","text":...}] lists, which several OpenAI-compatible servers reject for system/assistant).
        super().__init__(model_id=model_id, flatten_messages_as_text=True, **params)
        self.client = client
        self.loop = loop
        self.cancel = cancel or CancelFlag()
        self.tool_choice = tool_choice
        self.send_stop = send_stop
        self.plain_text_is_final_answer = plain_text_is_final_answer
        self.poll = poll
        self._usage_lock = threading.Lock()
        self.input_tokens = 0
        self.output_tokens = 0
        self.calls = 0
        self._local = threading.local()  # tool names of this thread's last call (for parse_tool_calls)
        # Whether the model takes images (a `vlm`, or an LLM configured so), and the images of the run's message
        # (data URLs), sent with the first user message (the task) of every call.
        self.accepts_images = False
        self.images: list[str] = []

    @property
    def supports_stop_parameter(self) -> bool:
        return super().supports_stop_parameter if self.send_stop is None else self.send_stop

    @property
    def token_usage(self) -> TokenUsage:
        """Every call of this model (all agents sharing it, sub-agents and provide_final_answer included)."""
        with self._usage_lock:
            return TokenUsage(input_tokens=self.input_tokens, output_tokens=self.output_tokens)

    # --- the bridge -----------------------------------------------------------------------------------------

    def _request(
        self,
        messages: Any,
        stop_sequences: list[str] | None,
        response_format: dict[str, str] | None,
        tools_to_call_from: list[Tool] | None,
        **kwargs: Any,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, dict[str, Any]]:
        kw = self._prepare_completion_kwargs(
            messages=messages,
            stop_sequences=stop_sequences,
            response_format=response_format,
            tools_to_call_from=None,  # tools are converted below (tool_spec), not by get_tool_json_schema only
            **kwargs,
        )
        wire = [{"role": MessageRole(m["role"]).value, "content": m["content"]} for m in kw.pop("messages")]
        if self.images:
            _add_images(wire, self.images)
        tools = [tool_spec(t) for t in tools_to_call_from] if tools_to_call_from else None
        if tools and self.tool_choice is not None:
            kw.setdefault("tool_choice", self.tool_choice)
        self._local.tool_names = {t.name for t in tools_to_call_from or []}
        return wire, tools, kw

    def _stream_chunks(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, params: dict[str, Any]
    ) -> Generator[Any]:
        """The client's ChatChunks, read in this (worker) thread from a pump running on the server's loop."""
        if self.cancel.is_set():
            raise RunCancelled("stopped before the model call")
        chunks: queue.Queue[Any] = queue.Queue()

        async def pump() -> None:
            try:
                async for chunk in self.client.stream(messages, tools=tools, **params):
                    chunks.put(chunk)
            except asyncio.CancelledError:
                raise  # we cancelled it (stop, or the reader went away): nobody reads the queue any more
            except Exception as exc:
                chunks.put(exc)
            finally:
                chunks.put(_DONE)

        future: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(tracing.bind(pump()), self.loop)
        try:
            while True:
                try:
                    item = chunks.get(timeout=self.poll)
                except queue.Empty:
                    item = None
                if self.cancel.is_set():
                    raise RunCancelled("stopped while the model was answering")
                if item is None:
                    continue
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not future.done():
                future.cancel()  # cancels the task on the loop: httpx closes the stream, the pool reports usage

    def _deltas(self, chunk: Any, trimmer: _StopTrimmer, phase: str) -> list[PlatformStreamDelta]:
        """The smolagents deltas of one client chunk (usage counted here, exactly once per call)."""
        deltas: list[PlatformStreamDelta] = []
        text = trimmer.feed(chunk.content)
        calls = [
            ChatMessageToolCallStreamDelta(
                index=d.index,
                id=d.id,
                type="function" if d.id else None,
                function=ChatMessageToolCallFunction(name=d.name or "", arguments=d.arguments or ""),
            )
            for d in chunk.tool_calls
        ]
        if text or chunk.reasoning or calls:
            deltas.append(
                PlatformStreamDelta(
                    content=text or None, tool_calls=calls or None, reasoning=chunk.reasoning or None, phase=phase
                )
            )
        if chunk.usage is not None:
            # Exactly once per call: agglomerate_stream_deltas *sums* token_usage over deltas.
            with self._usage_lock:
                self.input_tokens += chunk.usage.prompt_tokens
                self.output_tokens += chunk.usage.completion_tokens
            deltas.append(
                PlatformStreamDelta(
                    content="",
                    token_usage=TokenUsage(
                        input_tokens=chunk.usage.prompt_tokens, output_tokens=chunk.usage.completion_tokens
                    ),
                    phase=phase,
                )
            )
        return deltas

    @staticmethod
    def _phase(stop_sequences: list[str] | None) -> str:
        return "planning" if stop_sequences and "<end_plan>" in stop_sequences else "action"

    def generate_stream(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, str] | None = None,
        tools_to_call_from: list[Tool] | None = None,
        **kwargs: Any,
    ) -> Generator[ChatMessageStreamDelta]:
        wire, tools, params = self._request(messages, stop_sequences, response_format, tools_to_call_from, **kwargs)
        phase = self._phase(stop_sequences)
        trimmer = _StopTrimmer(stop_sequences)
        with self._usage_lock:
            self.calls += 1
        for chunk in self._stream_chunks(wire, tools, params):
            yield from self._deltas(chunk, trimmer, phase)
        if rest := trimmer.flush():
            yield PlatformStreamDelta(content=rest, phase=phase)

    async def _read_reply(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        params: dict[str, Any],
        stop_sequences: list[str] | None,
        sink: Callable[[ChatMessageStreamDelta], None] | None,
    ) -> list[PlatformStreamDelta]:
        """On the server's loop: the whole reply as deltas, each handed to `sink` as it arrives."""
        phase = self._phase(stop_sequences)
        trimmer = _StopTrimmer(stop_sequences)
        deltas: list[PlatformStreamDelta] = []
        async for chunk in self.client.stream(messages, tools=tools, **params):
            for delta in self._deltas(chunk, trimmer, phase):
                deltas.append(delta)
                if sink is not None:
                    sink(delta)
        if rest := trimmer.flush():
            delta = PlatformStreamDelta(content=rest, phase=phase)
            deltas.append(delta)
            if sink is not None:
                sink(delta)
        return deltas

    def _wait(self, future: concurrent.futures.Future[list[PlatformStreamDelta]]) -> list[PlatformStreamDelta]:
        """Block this (agent) thread until the loop-side call ends; a stop cancels it."""
        forget = self.cancel.on_set(future.cancel) if isinstance(self.cancel, CancelFlag) else None
        try:
            while True:
                try:
                    return future.result(timeout=None if forget else self.poll)
                except concurrent.futures.TimeoutError:
                    if self.cancel.is_set():
                        raise RunCancelled("stopped while the model was answering") from None
                except concurrent.futures.CancelledError:
                    raise RunCancelled("stopped while the model was answering") from None
        finally:
            if forget is not None:
                forget()
            if not future.done():
                future.cancel()  # cancels the task on the loop: httpx closes the stream, the pool reports usage

    def generate(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, str] | None = None,
        tools_to_call_from: list[Tool] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        wire, tools, params = self._request(messages, stop_sequences, response_format, tools_to_call_from, **kwargs)
        if self.cancel.is_set():
            raise RunCancelled("stopped before the model call")
        with self._usage_lock:
            self.calls += 1
        sink = current_delta_sink.get()
        future = asyncio.run_coroutine_threadsafe(
            tracing.bind(self._read_reply(wire, tools, params, stop_sequences, sink)), self.loop
        )
        deltas = self._wait(future)
        message = agglomerate_stream_deltas(deltas)
        message.tool_calls = message.tool_calls or None
        message.raw = {"reasoning": "".join(d.reasoning or "" for d in deltas)}
        return message

    # --- the plain-text trap ------------------------------------------------------------------------------------

    def parse_tool_calls(self, message: ChatMessage) -> ChatMessage:
        """Called by ToolCallingAgent._step_stream only when the reply has no native tool call. smolagents' own
        version looks for a JSON blob {"name":..., "arguments":...} in the text and otherwise raises, which the
        agent turns into AgentParsingError and a retry, until max_steps. Here: a JSON blob naming a tool of this
        call is still honoured; any other non-empty text becomes a `final_answer` call with the text as answer."""
        if message.tool_calls or not self.plain_text_is_final_answer:
            return super().parse_tool_calls(message)
        text = message.content if isinstance(message.content, str) else str(message.content or "")
        known: set[str] = getattr(self._local, "tool_names", set())
        try:
            parsed = super().parse_tool_calls(ChatMessage(role=MessageRole.ASSISTANT, content=text))
            if parsed.tool_calls and all(c.function.name in known for c in parsed.tool_calls):
                message.role, message.tool_calls = MessageRole.ASSISTANT, parsed.tool_calls
                return message
        except Exception:  # not a tool call written as text: the text is the answer
            parsed = None
        if not text.strip():
            raise ValueError("The model returned neither text nor a tool call.")  # -> AgentParsingError, retry
        message.role = MessageRole.ASSISTANT
        message.tool_calls = [
            ChatMessageToolCall(
                id=f"text_answer_{uuid.uuid4().hex[:8]}",
                type="function",
                function=ChatMessageToolCallFunction(name="final_answer", arguments={"answer": text.strip()}),
            )
        ]
        return message


class FinalAnswerArgsStreamer:
    """Streams the `answer` of a final_answer tool call while its JSON arguments arrive in pieces:
    feed(args_piece) -> newly decoded answer text."""

    def __init__(self) -> None:
        self.raw = ""
        self.sent = 0

    def feed(self, piece: str) -> str:
        self.raw += piece
        marker = self.raw.find('"answer"')
        if marker < 0:
            return ""
        colon = self.raw.find(":", marker + 8)
        quote = self.raw.find('"', colon + 1) if colon >= 0 else -1
        if quote < 0 or self.raw[colon + 1 : quote].strip():
            return ""  # not a JSON string (e.g. a number) or not there yet
        body, out, i = self.raw[quote + 1 :], [], 0
        while i < len(body):
            ch = body[i]
            if ch == '"':
                break
            if ch == "\\":
                size = 2
                if body[i + 1 : i + 2] == "u":
                    size = 6
                    if body[i + 2 : i + 4].lower() in ("d8", "d9", "da", "db"):
                        size = 12  # a high surrogate: decode it with its low half
                escape = body[i : i + size]
                if len(escape) < size:
                    break  # incomplete escape: wait for more
                out.append(json.loads(f'"{escape}"'))
                i += size
                continue
            out.append(ch)
            i += 1
        text = "".join(out)
        new, self.sent = text[self.sent :], len(text)
        return new


__all__ = [
    "AsyncClientModel",
    "CancelFlag",
    "FinalAnswerArgsStreamer",
    "PlatformStreamDelta",
    "RunCancelled",
    "current_delta_sink",
    "parse_json_if_needed",
    "tool_spec",
]
