"""A logical model served by one or more endpoints: spreads calls over the healthy ones, fails over when one
errors, retries with backoff, and keeps the model's limits (concurrent calls per process, requests per minute
across processes through the event bus). Every call is reported, with its tokens and timings, to `on_usage`."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Span, SpanKind, StatusCode

from nexent.core import tracing
from nexent.engines.bus.base import EventBus
from nexent.providers.openai_compat import Endpoint
from nexent.providers.types import (
    REQUEST_BOUND,
    RETRYABLE,
    ChatChunk,
    ErrorCode,
    Message,
    ProviderError,
    ToolSpec,
    Usage,
)

UNHEALTHY_SECONDS = 30.0
_MAX_BACKOFF_SECONDS = 8.0
_RPM_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class CallReport:
    """What one call cost and how it went; written to the usage table and the metrics."""

    model_id: uuid.UUID | None
    operation: str  # chat, embed, rerank, transcribe
    usage: Usage
    latency_ms: float
    ttft_ms: float | None
    error: ErrorCode | None


UsageSink = Callable[[CallReport], Awaitable[None]]


async def report_call(
    sink: UsageSink | None,
    model_id: uuid.UUID | None,
    operation: str,
    usage: Usage,
    started: float,
    first: float | None,
    error: ErrorCode | None,
) -> None:
    """Hand one call's report to the sink; `started` and `first` are `time.perf_counter()` readings."""
    if sink is None:
        return
    await sink(
        CallReport(
            model_id=model_id,
            operation=operation,
            usage=usage,
            latency_ms=(time.perf_counter() - started) * 1000,
            ttft_ms=(first - started) * 1000 if first is not None else None,
            error=error,
        )
    )


# Process-wide state shared by every client of the same model.
_unhealthy_until: dict[str, float] = {}
_semaphores: dict[uuid.UUID, tuple[int, asyncio.Semaphore]] = {}
_rotation: dict[uuid.UUID | None, itertools.count[int]] = {}


def _semaphore(model_id: uuid.UUID, limit: int) -> asyncio.Semaphore:
    current = _semaphores.get(model_id)
    if current is None or current[0] != limit:
        current = _semaphores[model_id] = (limit, asyncio.Semaphore(limit))
    return current[1]


class RoutedModel:
    """Chat, embedding, rerank or transcription calls to one logical model."""

    def __init__(
        self,
        *,
        model_id: uuid.UUID | None,
        model: str,
        endpoints: list[Endpoint],
        bus: EventBus | None = None,
        max_concurrency: int | None = None,
        requests_per_minute: int | None = None,
        max_retries: int = 2,
        on_usage: UsageSink | None = None,
        rate_window_seconds: float = _RPM_WINDOW_SECONDS,
        wait_for_rate: bool = True,
    ) -> None:
        if not endpoints:
            raise ValueError("a model needs at least one endpoint")
        self.model_id = model_id
        self.model = model
        self.endpoints = endpoints
        self.bus = bus
        self.max_concurrency = max_concurrency
        self.requests_per_minute = requests_per_minute
        self.max_retries = max_retries
        self.on_usage = on_usage
        self.rate_window_seconds = rate_window_seconds  # a minute; shorter only in tests
        # Calls over the per-minute limit wait for the next window; a model check answers at once instead (a check
        # that queued for a minute behind runs told the user nothing they could act on).
        self.wait_for_rate = wait_for_rate

    # --- routing ------------------------------------------------------------------------------------------------

    def _order(self) -> list[Endpoint]:
        """Healthy endpoints first, starting at the next in turn; unhealthy ones last, as a final resort."""
        counter = _rotation.setdefault(self.model_id, itertools.count())
        start = next(counter) % len(self.endpoints)
        turn = self.endpoints[start:] + self.endpoints[:start]
        now = time.monotonic()
        healthy = [e for e in turn if _unhealthy_until.get(e.base_url, 0) <= now]
        return healthy + [e for e in turn if e not in healthy]

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        await self._respect_rpm()
        if self.max_concurrency and self.model_id is not None:
            async with _semaphore(self.model_id, self.max_concurrency):
                yield
        else:
            yield

    async def _respect_rpm(self) -> None:
        if not (self.requests_per_minute and self.bus and self.model_id):
            return
        key = f"model-rpm:{self.model_id}"
        for _ in range(60):  # at most an hour of waiting
            window = self.rate_window_seconds
            if await self.bus.hit(key, window_seconds=window) <= self.requests_per_minute:
                return
            next_window = window - time.time() % window
            if not self.wait_for_rate:
                raise ProviderError(
                    ErrorCode.RATE_LIMITED,
                    f"The model's own limit of {self.requests_per_minute} requests per minute is reached; "
                    f"the next request fits in {next_window:.0f} s.",
                    retry_after=next_window,
                )
            # Over the limit: wait for the next window, when the count starts again.
            await asyncio.sleep(next_window + 0.01)
        raise ProviderError(ErrorCode.RATE_LIMITED, "The model's requests-per-minute limit keeps being exceeded.")

    async def _attempts(self) -> AsyncIterator[tuple[int, Endpoint]]:
        """Endpoints to try in order: fail over at once while untried ones remain, then back off and retry."""
        for attempt in range(self.max_retries + 1):
            yield attempt, self._order()[attempt % len(self.endpoints)]

    def _should_retry(self, error: ProviderError, attempt: int, endpoint: Endpoint) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if error.code in REQUEST_BOUND or attempt >= self.max_retries:
            return None
        _unhealthy_until[endpoint.base_url] = time.monotonic() + UNHEALTHY_SECONDS
        if len(self.endpoints) > 1 and attempt + 1 < len(self.endpoints):
            return 0.0  # another endpoint may serve it right away
        if error.code not in RETRYABLE:
            return None
        backoff = min(_MAX_BACKOFF_SECONDS, 0.5 * 2**attempt)
        return min(_MAX_BACKOFF_SECONDS, error.retry_after) if error.retry_after else backoff

    async def _report(
        self, operation: str, usage: Usage, started: float, ttft: float | None, error: ErrorCode | None
    ) -> None:
        await report_call(self.on_usage, self.model_id, operation, usage, started, ttft, error)

    def _span_attributes(self, operation: str) -> dict[str, Any]:
        return {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": self.model,
            "nexent.model.id": str(self.model_id) if self.model_id else None,
        }

    @staticmethod
    def _end_span(
        span: Span, usage: Usage, started: float, ttft: float | None, error: ErrorCode | None, attempts: int
    ) -> None:
        """The call's outcome on its span (OpenTelemetry's GenAI attribute names where there are some)."""
        if not span.is_recording():
            return
        span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
        span.set_attribute("nexent.model.attempts", attempts)
        if ttft is not None:
            span.set_attribute("nexent.model.time_to_first_token_ms", round((ttft - started) * 1000, 3))
        if error is not None:
            span.set_attribute("error.type", error.value)
            span.set_status(StatusCode.ERROR, error.value)
        span.end()

    @staticmethod
    def _retry_event(span: Span, attempt: int, error: ProviderError, wait: float) -> None:
        if span.is_recording():
            attributes = {"attempt": attempt + 1, "error.type": error.code.value, "wait_seconds": wait}
            span.add_event("retry", attributes)

    # --- calls --------------------------------------------------------------------------------------------------

    async def stream(
        self, messages: list[Message], *, tools: list[ToolSpec] | None = None, **params: Any
    ) -> AsyncIterator[ChatChunk]:
        """Stream a chat reply. Failover happens only before the first chunk: a reply is never spliced."""
        started = time.perf_counter()
        first: float | None = None
        usage = Usage()
        error: ErrorCode | None = None
        # Not made current: the generator's yields run in its consumer's context.
        span = tracing.start_span(f"chat {self.model}", self._span_attributes("chat"), kind=SpanKind.CLIENT)
        attempts = 0
        try:
            async with self._slot():
                async for attempt, endpoint in self._attempts():
                    attempts = attempt + 1
                    try:
                        async for chunk in endpoint.stream_chat(self.model, messages, tools, params):
                            if first is None:
                                first = time.perf_counter()
                            if chunk.usage:
                                usage = chunk.usage
                            yield chunk
                        return
                    except ProviderError as exc:
                        wait = None if first is not None else self._should_retry(exc, attempt, endpoint)
                        if wait is None:
                            raise
                        self._retry_event(span, attempt, exc, wait)
                        await asyncio.sleep(wait)
        except ProviderError as exc:
            error = exc.code
            raise
        finally:
            self._end_span(span, usage, started, first, error, attempts)
            await self._report("chat", usage, started, first, error)

    async def embed(self, texts: list[str], *, batch_size: int = 64) -> tuple[list[list[float]], Usage]:
        """Embeddings of `texts`, in batches, in order."""
        vectors: list[list[float]] = []
        total = Usage()
        for start in range(0, len(texts), batch_size):

            async def call(endpoint: Endpoint, chunk: list[str] = texts[start : start + batch_size]) -> Any:
                return await endpoint.embed(self.model, chunk)

            batch, usage = await self._call("embed", call)
            vectors.extend(batch)
            total.prompt_tokens += usage.prompt_tokens
        return vectors, total

    async def rerank(self, query: str, documents: list[str], top_n: int | None = None) -> list[tuple[int, float]]:
        result: list[tuple[int, float]] = await self._call(
            "rerank", lambda e: e.rerank(self.model, query, documents, top_n)
        )
        return result

    async def transcribe(self, audio: bytes, file_name: str, content_type: str) -> str:
        """Speech to text with this (`stt`) model."""
        text: str = await self._call("transcribe", lambda e: e.transcribe(self.model, audio, file_name, content_type))
        return text

    async def _call(self, operation: str, call: Callable[[Endpoint], Awaitable[Any]]) -> Any:
        started = time.perf_counter()
        error: ErrorCode | None = None
        usage = Usage()
        span = tracing.start_span(f"{operation} {self.model}", self._span_attributes(operation), kind=SpanKind.CLIENT)
        attempts = 0
        try:
            async with self._slot():
                async for attempt, endpoint in self._attempts():
                    attempts = attempt + 1
                    try:
                        result = await call(endpoint)
                    except ProviderError as exc:
                        wait = self._should_retry(exc, attempt, endpoint)
                        if wait is None:
                            raise
                        self._retry_event(span, attempt, exc, wait)
                        await asyncio.sleep(wait)
                        continue
                    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], Usage):
                        usage = result[1]
                    return result
            raise ProviderError(ErrorCode.SERVER_ERROR, "No endpoint answered.")  # pragma: no cover
        except ProviderError as exc:
            error = exc.code
            raise
        finally:
            self._end_span(span, usage, started, None, error, attempts)
            await self._report(operation, usage, started, None, error)
