"""Prometheus metrics: request counts and latency by service, route and status, errors by class; the exposition, and
the small `/metrics` server of processes without an app (`nexent worker`)."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

HTTP_REQUESTS = Counter(
    "nexent_http_requests_total",
    "HTTP requests handled, by service, method, route template and status.",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "nexent_http_request_duration_seconds",
    "Time to handle an HTTP request (until the handler returned), by service, method and route template.",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

ERRORS = Counter(
    "nexent_errors_total",
    "Errors by where they were met (`http`: a problem document answered; `run`: a run that failed; `unhandled`: an "
    "exception no handler expected) and their class (the problem's or the run's stable `code`, or the exception's "
    "type).",
    ["source", "code"],
)


def observe_error(source: str, code: str) -> None:
    """Count one error; `code` is a stable code or a class name, never free text (the label set stays bounded)."""
    ERRORS.labels(source, code[:64]).inc()


def observe_request(service: str, method: str, route: str, status: int, seconds: float) -> None:
    """Record one handled request."""
    HTTP_REQUESTS.labels(service, method, route, str(status)).inc()
    HTTP_LATENCY.labels(service, method, route).observe(seconds)


def render_metrics(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


class MetricsServer:
    """`GET /metrics` on its own port, for processes that serve no app. Like the apps' route it answers only a
    bearer token of `tokens` (NEXENT_METRICS_TOKEN, NEXENT_ADMIN_TOKEN): 403 without one configured, 401 else."""

    def __init__(self, host: str, port: int, *, tokens: Sequence[str], registry: CollectorRegistry = REGISTRY) -> None:
        self.host, self.port = host, port
        self.tokens = [t.encode() for t in tokens]
        self.registry = registry
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        if not self.tokens:
            return web.json_response({"code": "metrics_disabled"}, status=403)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not any(hmac.compare_digest(token.encode(), t) for t in self.tokens):
            return web.json_response({"code": "unauthorized"}, status=401)
        payload, content_type = render_metrics(self.registry)
        return web.Response(body=payload, headers={"Content-Type": content_type})
