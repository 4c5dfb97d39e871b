"""The app factory: one ASGI app per service, or all services in one app for the embedded shape."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from nexent import __version__, webui
from nexent.a2a_client import api as a2a_client_api
from nexent.a2a_server import api as a2a_api
from nexent.agents import api as agents_api
from nexent.core.db import migrate_async
from nexent.core.errors import install_error_handlers
from nexent.core.logging import configure_logging
from nexent.core.middleware import REQUEST_ID_HEADER, RequestContextMiddleware
from nexent.core.openapi import document_errors
from nexent.core.text_input import refuse_nul
from nexent.core.tracing import configure_tracing, instrument_app
from nexent.engines import health
from nexent.engines.container import build_engines
from nexent.evaluation import api as evaluation_api
from nexent.evaluation.runner import close_evaluations, fail_interrupted
from nexent.identity import api as identity_api
from nexent.identity.auth import RequireMetricsReader
from nexent.jobs.queue import build_queue
from nexent.jobs.registry import load_job_modules
from nexent.knowledge import api as knowledge_api
from nexent.mcp_client import api as mcp_client_api
from nexent.mcp_client.supervisor import configure as configure_mcp
from nexent.mcp_server import api as mcp_api
from nexent.memory import api as memory_api
from nexent.northbound import api as northbound_api
from nexent.openapi_tools import api as openapi_tools_api
from nexent.providers import api as providers_api
from nexent.runtime import api as runtime_api
from nexent.runtime.execution import RunManager
from nexent.settings import Service, Settings, get_settings
from nexent.skills import api as skills_api
from nexent.wiring import wire

logger = logging.getLogger("nexent.server")

# Which domain routers each service serves. Later domains add their routers here.
SERVICE_ROUTERS: dict[Service, list[APIRouter]] = {
    Service.CONFIG: [
        *identity_api.routers,
        *providers_api.routers,
        *agents_api.routers,
        *knowledge_api.routers,
        *openapi_tools_api.routers,
        *mcp_client_api.routers,
        *a2a_client_api.routers,
        *skills_api.routers,
        *memory_api.routers,
    ],
    # Evaluations start runs: they live where runs execute.
    Service.RUNTIME: [*runtime_api.routers, *evaluation_api.routers],
    Service.MCP: [],  # the MCP server at /mcp: `mcp_api.mount`
    Service.NORTHBOUND: northbound_api.routers,
    Service.DATA_PROCESS: knowledge_api.ingest_routers,
}

# Schemas that routes of a service refer to by name only (see `NexentApp`).
SERVICE_SCHEMAS: dict[Service, dict[str, dict[str, Any]]] = {
    Service.CONFIG: {**agents_api.schemas, **skills_api.schemas},
    Service.RUNTIME: {**runtime_api.schemas, **agents_api.schemas},  # an agent's improvement streams from runtime
    Service.NORTHBOUND: northbound_api.schemas,
}

# Processes of these services execute runs (each with its run manager, registered as a run owner).
_RUN_EXECUTORS = {Service.RUNTIME, Service.NORTHBOUND, Service.MCP}

# Processes of these services run background jobs (local worker pool, or the Celery reaper).
_JOB_CONSUMERS = {Service.DATA_PROCESS}


class NexentApp(FastAPI):
    """FastAPI, with the schemas its routes refer to by name only (a run's events) and every error status each route
    can answer (`core.openapi.document_errors`) in its OpenAPI document."""

    def __init__(self, *, extra_schemas: dict[str, dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.extra_schemas = extra_schemas

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            document = super().openapi()
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for name, extra in self.extra_schemas.items():
                if components.setdefault(name, extra) != extra:
                    raise RuntimeError(f"Two schemas named {name} in the OpenAPI document.")
            document_errors(self, document)
            northbound_api.document_openai_errors(document)
        return super().openapi()


def create_app(settings: Settings | None = None, *, service: Service | None = None) -> FastAPI:
    """Build the app of one service, or of all of them (`service=None`, the embedded shape)."""
    settings = settings or get_settings()
    wire()
    services: Iterable[Service] = [service] if service else list(Service)
    embedded = service is None
    label = service.value if service else "embedded"
    configure_tracing(label, sql=settings.trace_sql)  # before any engine: SQL statements may be traced
    mcp_lifespan: Callable[[], AbstractAsyncContextManager[None]] | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        load_job_modules(settings.job_modules)
        if embedded and settings.auto_migrate:
            await migrate_async(settings.resolved_database_url)
        engines = build_engines(settings, queue=build_queue, consume_jobs=embedded or service in _JOB_CONSUMERS)
        await engines.start()
        app.state.engines = engines
        # Local MCP servers: allowed by default in the embedded app only (NEXENT_MCP_STDIO decides elsewhere).
        configure_mcp(engines, embedded=embedded)
        app.state.runs = RunManager(engines)
        # The services that execute runs register as their owner (northbound and mcp run the agents they offer).
        if embedded or service in _RUN_EXECUTORS:
            await app.state.runs.start()
        if embedded:
            await app.state.runs.recover_interrupted()
            await fail_interrupted(engines)
        logger.info("service started", extra={"service": label, "version": __version__})
        try:
            async with mcp_lifespan() if mcp_lifespan else nullcontext():
                yield
        finally:
            await close_evaluations(engines)  # before the run manager: no evaluation starts a run on a closed one
            await app.state.runs.close()
            # What the process held for its runs and requests (the batch writer stores what is waiting, the model
            # connection pools close).
            await engines.process.close()
            await engines.close()

    extra_schemas = {name: schema for svc in services for name, schema in SERVICE_SCHEMAS.get(svc, {}).items()}
    app = NexentApp(
        extra_schemas=extra_schemas,
        title="Nexent" if embedded else f"Nexent {label}",
        version=__version__,
        lifespan=lifespan,
        # Checked before each route's own dependencies: no NUL character in text reaches a service.
        dependencies=[Depends(refuse_nul)],
        # Swagger UI loads its assets from a CDN, which a self-hosted, offline install cannot reach.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    if embedded or service is Service.NORTHBOUND:
        northbound_api.openai_errors(app)  # `/v1` answers errors in OpenAI's shape
    app.include_router(health.router)
    app.add_api_route(
        "/metrics",
        health.metrics_response,
        methods=["GET"],
        summary="Prometheus metrics (bearer: NEXENT_METRICS_TOKEN, or the operator).",
        tags=["operations"],
        dependencies=[RequireMetricsReader],
        response_class=Response,
        responses={
            200: {"description": "Prometheus' text format.", "content": {"text/plain": {"schema": {"type": "string"}}}}
        },
    )
    for svc in services:
        for router in SERVICE_ROUTERS[svc]:
            app.include_router(router)
    if embedded or service is Service.MCP:
        mcp_lifespan = mcp_api.mount(app, settings)
    if embedded or service is Service.NORTHBOUND:
        a2a_api.mount(app, settings)  # our published agents as A2A agents, at /a2a/{agent_id}
    if embedded or service is Service.CONFIG:
        app.include_router(webui.config_router(settings, SERVICE_ROUTERS))
        # The web UI after every route, so that it never shadows one; the status page while it is not built.
        if not webui.mount_ui(app, settings.web_dir or webui.default_web_dir(), settings):
            app.add_api_route("/", _home, include_in_schema=False, response_class=HTMLResponse)

    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=[REQUEST_ID_HEADER],
    )
    app.add_middleware(
        RequestContextMiddleware,
        service=label,
        max_body_bytes=settings.max_body_bytes,
        body_limits=[
            (knowledge_api.UPLOAD_PATH, settings.knowledge_max_upload_bytes),
            # One file and its multipart framing: the file itself is checked against the limit by the route.
            (runtime_api.ATTACHMENT_UPLOAD_PATH, settings.knowledge_max_file_bytes + 64 * 1024),
        ],
    )
    if embedded or service is Service.MCP:
        # Outside the request log: the key of an MCP connection URL leaves the path before any log reads it.
        app.add_middleware(mcp_api.UrlKeyMiddleware)
    if settings.trusted_proxies:
        # Outermost: the client address every request is throttled, logged and audited by is the one a trusted
        # proxy forwarded, else the connection's own. The server itself reads no forwarded header (see `cli.serve`).
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    instrument_app(app)  # outermost: the request's span is current in every middleware, log line and problem
    return app


async def _home() -> HTMLResponse:
    page = resources.files("nexent").joinpath("static/index.html").read_text(encoding="utf-8")
    return HTMLResponse(page.replace("{{version}}", __version__))


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory nexent.server:app_factory --no-proxy-headers` (embedded shape): the app
    reads forwarded headers itself, from NEXENT_TRUSTED_PROXIES only."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
