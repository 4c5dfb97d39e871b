"""OpenTelemetry traces: set up once per process from the standard `OTEL_*` variables, and the few helpers the
domains use for their own spans and for carrying a trace across threads and through the job queue.

Tracing is on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, or when
`OTEL_TRACES_EXPORTER` names `otlp` or `console`; `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it
off. Off, the SDK is not even imported: the helpers answer at once (no span objects, no exporter thread). On, spans
go over OTLP HTTP/protobuf (`OTEL_EXPORTER_OTLP_*`) through a batch processor (`OTEL_BSP_*`), sampled as
`OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG` say; the service is named by `OTEL_SERVICE_NAME`, else
`nexent-<service>`. FastAPI, httpx and Celery are traced by OpenTelemetry's own instrumentation; SQL statements
too when asked (`trace_sql`: a span per statement is costly).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind

logger = logging.getLogger("nexent.tracing")

T = TypeVar("T")

# The key of a job's payload that carries the trace context of the code that queued it (W3C `traceparent`).
TRACE_KEY = "_trace"
TRACER_NAME = "nexent"
# Paths that no trace is made for: probes and scrapes would drown the traces that matter.
EXCLUDED_URLS = "/healthz,/readyz,/metrics"

_lock = threading.Lock()
_provider: Any = None  # the SDK's TracerProvider, once configured


def tracing_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the `OTEL_*` variables ask for traces."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()}
    if "none" in exporters:
        return False
    if exporters & {"otlp", "console"}:
        return True
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def tracing_enabled() -> bool:
    """Whether this process exports traces."""
    return _provider is not None


def configure_tracing(service: str, *, sql: bool = False) -> bool:
    """Set up tracing for this process if the environment asks for it (once; later calls only answer whether it
    is on). Call it before the database engines are made, so that `sql` can trace their statements."""
    global _provider
    if _provider is not None:
        return True
    if not tracing_requested():
        return False
    with _lock:
        if _provider is not None:
            return True
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

        attributes: dict[str, str] = {}
        if not os.environ.get("OTEL_SERVICE_NAME") and "service.name=" not in os.environ.get(
            "OTEL_RESOURCE_ATTRIBUTES", ""
        ):
            attributes[SERVICE_NAME] = f"nexent-{service}"
        provider = TracerProvider(resource=Resource.create(attributes))  # the sampler comes from OTEL_TRACES_SAMPLER
        names = {e.strip().lower() for e in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if e.strip()}
        exporters: list[SpanExporter] = []
        if "console" in names:
            exporters.append(ConsoleSpanExporter())
        if "otlp" in names or not exporters:
            exporters.append(OTLPSpanExporter())
        for exporter in exporters:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _instrument_libraries(sql)
        _provider = provider
    logger.info("tracing on", extra={"service": service, "sql": sql})
    return True


def _instrument_libraries(sql: bool) -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument()
    CeleryInstrumentor().instrument()  # type: ignore[no-untyped-call]
    if sql:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        SQLAlchemyInstrumentor().instrument(enable_commenter=False)


def instrument_app(app: Any) -> None:
    """Trace the app's requests (a server span each, outermost, so that logs and problem documents of the request
    carry its trace id). Nothing when tracing is off."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # No span per ASGI message: an SSE stream sends one per event, which would triple a run's spans.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=EXCLUDED_URLS, tracer_provider=_provider, exclude_spans=["receive", "send"]
    )


def shutdown_tracing() -> None:
    """Export what is waiting and stop the exporter (at the end of a process, or of a test)."""
    global _provider
    with _lock:
        if _provider is not None:
            _provider.shutdown()
        # The API allows one provider per process: later spans go nowhere.
        _provider = None


def current_trace_id() -> str | None:
    """The id of the trace the caller is in (32 hex digits), or None."""
    if _provider is None:
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def current_span_ids() -> tuple[str, str] | None:
    """The trace and span ids of the current span, for log lines."""
    if _provider is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


@contextmanager
def span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: Mapping[str, str] | None = None,
) -> Iterator[Span]:
    """A span, current while the block runs; an exception ends it with an error status. `parent`: a carrier
    (`carrier()`) to continue a trace begun elsewhere. Off, it yields the invalid span and does nothing."""
    if _provider is None:
        yield trace.INVALID_SPAN
        return
    context = propagate.extract(dict(parent)) if parent else None
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(name, context=context, kind=kind, attributes=_clean(attributes)) as current:
        yield current


def start_span(name: str, attributes: Mapping[str, Any] | None = None, *, kind: SpanKind = SpanKind.CLIENT) -> Span:
    """A span under the current one that the caller ends (`span.end()`), not made current: for work that spans
    the yields of an async generator, where attaching a context would leak into the consumer."""
    if _provider is None:
        return trace.INVALID_SPAN
    return trace.get_tracer(TRACER_NAME).start_span(name, kind=kind, attributes=_clean(attributes))


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`), empty when there is none."""
    if _provider is None:
        return {}
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


def with_trace(payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` with the current trace context under `TRACE_KEY` (unless it has one): a job's spans then join
    the trace of the request or run that queued it, in whichever process runs it."""
    if _provider is None or TRACE_KEY in payload:
        return payload
    headers = carrier()
    return {**payload, TRACE_KEY: headers} if headers else payload


def bind(work: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
    """`work`, to be run elsewhere (on the event loop, from an agent's thread), inside the caller's trace context."""
    if _provider is None:
        return work
    captured = otel_context.get_current()

    async def run() -> T:
        token = otel_context.attach(captured)
        try:
            return await work
        finally:
            otel_context.detach(token)

    return run()


def _clean(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Attributes without the None values (which OpenTelemetry refuses)."""
    if not attributes:
        return None
    return {k: v for k, v in attributes.items() if v is not None}
