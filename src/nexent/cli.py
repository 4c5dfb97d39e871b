"""The `nexent` command line: serve, worker, migrate and operator commands."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import gc
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
import uvicorn
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector

from nexent.core.db import downgrade, migrate
from nexent.core.logging import configure_logging
from nexent.core.metrics import MetricsServer
from nexent.core.tracing import configure_tracing
from nexent.engines.container import Engines, build_engines
from nexent.jobs.handlers import PURGE_JOBS
from nexent.jobs.queue import build_queue
from nexent.jobs.registry import load_job_modules
from nexent.jobs.repository import JobRepository
from nexent.jobs.schemas import JobInfo
from nexent.settings import Service, Settings, get_settings

app = typer.Typer(help="Nexent: a self-hosted AI agent platform.", no_args_is_help=True)
admin = typer.Typer(help="Operator commands.", no_args_is_help=True)
app.add_typer(admin, name="admin")

logger = logging.getLogger("nexent.cli")

T = TypeVar("T")


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


@app.command()
def serve(
    service: Annotated[
        Service | None, typer.Option(help="Run one service on its own port instead of all of them on 5010.")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Listen address (default NEXENT_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default: the service's port).")] = None,
) -> None:
    """Start the platform: every service in one process (embedded shape), or one service."""
    settings = _settings()
    listen_port = port or settings.port_for(service)
    listen_host = host or settings.host
    typer.echo(f"Nexent {'embedded' if service is None else service.value} on http://{listen_host}:{listen_port}")
    # A server allocates many short-lived objects per request and per streamed token: with the default first
    # generation threshold (700) the collector ran so often that it cost 10-20% of the CPU of an agent run.
    gc.set_threshold(50_000, 50, 100)
    server = uvicorn.Server(server_config(settings, service, listen_host, listen_port))
    server.run()
    if not server.started:
        raise typer.Exit(3)  # uvicorn's exit status for a server that could not start


def server_config(settings: Settings, service: Service | None, host: str, port: int) -> uvicorn.Config:
    """How `serve` runs the app of `service` (all of them when None) in uvicorn."""
    from nexent.server import create_app

    return uvicorn.Config(
        create_app(settings, service=service),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        # Forwarded headers are read by the app, from NEXENT_TRUSTED_PROXIES only (uvicorn's own reading trusts
        # FORWARDED_ALLOW_IPS, 127.0.0.1 by default).
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Jobs run at once (default NEXENT_QUEUE_WORKERS).")] = None,
) -> None:
    """Run background jobs: a Celery worker when NEXENT_QUEUE_BACKEND=celery, else a local worker pool."""
    settings = _settings()
    if concurrency is not None:
        settings = settings.model_copy(update={"queue_workers": concurrency})
    load_job_modules(settings.job_modules)
    # Before the engines (SQL statements may be traced) and before Celery forks its pool (the children inherit it).
    configure_tracing("worker", sql=settings.trace_sql)
    if settings.queue_backend == "celery":
        _celery_worker(settings)
    else:
        asyncio.run(_local_worker(settings))


def _celery_worker(settings: Settings) -> None:
    from nexent.jobs.queue.celery import create_celery

    registry = _multiprocess_metrics() if settings.worker_metrics_port else None
    # The reaper re-sends jobs whose message was lost or whose worker died; it needs an event loop of its own.
    # Its engines start before Celery forks the pool: a fork while that thread is halfway through importing a
    # module (lancedb, say) leaves the children a partly initialised module they can never import.
    started: concurrent.futures.Future[None] = concurrent.futures.Future()
    reaper = _reap_forever(settings, started, registry)
    threading.Thread(target=asyncio.run, args=(reaper,), daemon=True, name="reaper").start()
    started.result(timeout=120)
    celery = create_celery(settings)
    celery.worker_main(
        [
            "worker",
            f"--concurrency={max(settings.queue_workers, 1)}",
            f"--loglevel={settings.log_level}",
            f"--queues={settings.celery_queue}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


def _multiprocess_metrics() -> CollectorRegistry:
    """Celery runs jobs in forked child processes: their metrics go to files in a directory of this worker
    (Prometheus' multiprocess mode, switched on before any child is forked or any labelled metric is used), and
    the registry served here adds them up."""
    directory = tempfile.mkdtemp(prefix="nexent-worker-metrics-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    prometheus_values.ValueClass = prometheus_values.get_value_class()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


async def _reap_forever(
    settings: Settings, started: concurrent.futures.Future[None], registry: CollectorRegistry | None
) -> None:
    engines = build_engines(settings, queue=build_queue, consume_jobs=True)
    try:
        await engines.start()
    except BaseException as exc:
        started.set_exception(exc)
        raise
    if registry is not None:
        await _serve_metrics(settings, registry)
    started.set_result(None)
    await asyncio.Event().wait()


async def _local_worker(settings: Settings) -> None:
    engines = build_engines(settings, queue=build_queue, consume_jobs=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await engines.start()
    metrics = await _serve_metrics(settings)
    typer.echo(f"Nexent worker: {settings.queue_workers} local workers")
    try:
        await stop.wait()
    finally:
        if metrics is not None:
            await metrics.close()
        await engines.close()


async def _serve_metrics(settings: Settings, registry: CollectorRegistry = REGISTRY) -> MetricsServer | None:
    """The worker's `/metrics` on NEXENT_WORKER_METRICS_PORT (0: none). A port in use is logged, not fatal: the
    jobs matter more than their metrics."""
    if not settings.worker_metrics_port:
        return None
    tokens = [t.get_secret_value() for t in (settings.metrics_token, settings.admin_token) if t is not None]
    server = MetricsServer(settings.host, settings.worker_metrics_port, tokens=tokens, registry=registry)
    try:
        await server.start()
    except OSError as exc:
        await server.close()
        logger.warning("worker metrics not served", extra={"port": settings.worker_metrics_port, "error": str(exc)})
        return None
    logger.info("worker metrics served", extra={"port": settings.worker_metrics_port})
    return server


@app.command("migrate")
def migrate_command(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    downgrade_to: Annotated[
        str | None, typer.Option(help="Revert to this revision instead ('base' drops every table).")
    ] = None,
) -> None:
    """Bring the database schema up to date (or revert it)."""
    settings = _settings()
    if downgrade_to is not None:
        downgrade(settings.resolved_database_url, downgrade_to)
        typer.echo(f"Database reverted to revision {downgrade_to}.")
        return
    migrate(settings.resolved_database_url, revision)
    typer.echo(f"Database at revision {revision}.")


def _run(func: Callable[[Engines], Awaitable[T]]) -> T:
    """Run an operator action with this process's engines (no workers)."""
    from nexent.wiring import wire

    wire()

    async def main() -> T:
        engines = build_engines(_settings(), queue=build_queue, consume_jobs=False)
        await engines.start()
        try:
            return await func(engines)
        finally:
            await engines.close()

    return asyncio.run(main())


@admin.command("create-tenant")
def create_tenant(
    name: Annotated[str, typer.Argument(help="Display name.")],
    slug: Annotated[str | None, typer.Option(help="URL-safe identifier; derived from the name if omitted.")] = None,
) -> None:
    """Create a tenant and print it as JSON."""
    from pydantic import ValidationError

    from nexent.identity.schemas import TenantCreate
    from nexent.identity.services.tenants import TenantService

    try:
        data = TenantCreate(name=name, slug=slug)
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None

    async def action(engines: Engines) -> str:
        async with engines.sessions() as session, session.begin():
            return (await TenantService(session, engines.settings).create(data)).model_dump_json()

    typer.echo(_run(action))


@admin.command("list-tenants")
def list_tenants(limit: Annotated[int, typer.Option(min=1, max=200)] = 50) -> None:
    """List tenants as JSON."""
    from nexent.core.pagination import PageParams
    from nexent.identity.services.tenants import TenantService

    async def action(engines: Engines) -> str:
        async with engines.sessions() as session:
            page = await TenantService(session, engines.settings).list(
                PageParams(limit=limit, offset=0), status=None, query=None
            )
        return page.model_dump_json(indent=2)

    typer.echo(_run(action))


@admin.command("tenant-private-endpoints")
def tenant_private_endpoints(
    tenant_id: Annotated[uuid.UUID, typer.Argument(help="The tenant's id.")],
    entries: Annotated[
        list[str] | None,
        typer.Argument(help="Host names, IP addresses, CIDR networks or '*'; none clears the tenant's list."),
    ] = None,
) -> None:
    """Set the private hosts and networks a tenant's model endpoints may use (besides
    NEXENT_PRIVATE_ENDPOINTS_ALLOW) and print the tenant as JSON."""
    from pydantic import ValidationError

    from nexent.identity.schemas import TenantUpdate
    from nexent.identity.services.tenants import TenantService

    try:
        data = TenantUpdate(private_endpoints=entries or [])
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None

    async def action(engines: Engines) -> str:
        async with engines.sessions() as session, session.begin():
            tenant = await TenantService(session, engines.settings, process=engines.process).update(tenant_id, data)
            return tenant.model_dump_json()

    typer.echo(_run(action))


@admin.command("set-password")
def set_password(
    email: Annotated[str, typer.Argument(help="The user's email.")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="The new password.")
    ],
) -> None:
    """Set a user's password (for a locked-out user) and end all their sessions."""
    from nexent.identity.passwords import hash_password
    from nexent.identity.repository import RefreshTokenRepository, UserRepository

    if not 8 <= len(password) <= 256:
        raise typer.BadParameter("the password needs 8 to 256 characters")

    async def action(engines: Engines) -> str:
        async with engines.sessions() as session, session.begin():
            user = await UserRepository(session).get_by_email(email)
            if user is None:
                raise typer.BadParameter(f"no user {email!r}")
            user.password_hash = await hash_password(password)
            await RefreshTokenRepository(session).revoke_all(user.id)
        return f"Password of {email} changed; their sessions are ended."

    typer.echo(_run(action))


@admin.command("platform-admin")
def platform_admin(
    email: Annotated[str, typer.Argument(help="The user's email.")],
    revoke: Annotated[bool, typer.Option("--revoke", help="Take the right away instead.")] = False,
) -> None:
    """Give a user (or take away) the platform administrator's right to manage tenants."""
    from nexent.identity.repository import UserRepository

    async def action(engines: Engines) -> str:
        async with engines.sessions() as session, session.begin():
            user = await UserRepository(session).get_by_email(email)
            if user is None:
                raise typer.BadParameter(f"no user {email!r}")
            user.is_platform_admin = not revoke
        return f"{email} is {'no longer ' if revoke else ''}a platform administrator."

    typer.echo(_run(action))


@admin.command("jobs")
def list_jobs(
    status: Annotated[str | None, typer.Option(help="queued, running, succeeded or failed.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
) -> None:
    """Show recent background jobs as JSON."""

    async def action(engines: Engines) -> str:
        async with engines.sessions() as session:
            jobs = await JobRepository(session).list_recent(status=status, limit=limit)
            return json.dumps([JobInfo.model_validate(job).model_dump(mode="json") for job in jobs], indent=2)

    typer.echo(_run(action))


@admin.command("purge-jobs")
def purge_jobs(
    older_than_days: Annotated[int, typer.Option(min=0, help="Delete finished jobs older than this.")] = 30,
) -> None:
    """Queue the job that deletes old finished jobs; prints its id."""

    async def action(engines: Engines) -> str:
        load_job_modules(engines.settings.job_modules)
        return str(await engines.queue.enqueue(PURGE_JOBS, {"older_than_days": older_than_days}))

    typer.echo(_run(action))


@admin.command("backup")
def backup_command(
    file: Annotated[str, typer.Argument(help="The backup file to write (a .tar.gz archive).")],
) -> None:
    """Back up the whole deployment: every table's rows, every stored object and a manifest (docs/backups.md)."""
    from pathlib import Path

    from nexent.backup.archive import BackupError
    from nexent.backup.service import backup

    path = Path(file)
    if path.exists():
        typer.echo(f"{path} exists already; choose another name.", err=True)
        raise typer.Exit(2)

    async def action(engines: Engines) -> str:
        result = await backup(engines, path, progress=lambda line: typer.echo(line, err=True))
        return json.dumps(result.summary(), indent=2)

    try:
        typer.echo(_run(action))
    except BackupError as exc:
        typer.echo(f"Backup refused: {exc}", err=True)
        raise typer.Exit(2) from None


@admin.command("restore")
def restore_command(
    file: Annotated[str, typer.Argument(help="A backup written by `nexent admin backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace everything the target holds (by default it must be empty).")
    ] = False,
) -> None:
    """Restore a backup into this deployment (services stopped), migrate it to this version and rebuild the
    search indexes. Needs the NEXENT_SECRET_KEY of the deployment that wrote it."""
    from pathlib import Path

    from nexent.backup.archive import BackupError
    from nexent.backup.service import restore

    async def action(engines: Engines) -> tuple[str, bool]:
        result = await restore(engines, Path(file), force=force, progress=lambda line: typer.echo(line, err=True))
        return json.dumps(result.summary(), indent=2), not result.index_errors

    try:
        summary, complete = _run(action)
    except BackupError as exc:
        typer.echo(f"Restore refused: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(summary)
    if not complete:
        typer.echo("Some search indexes could not be rebuilt; fix the models, then run `nexent admin rebuild-search`.")
        raise typer.Exit(1)


@admin.command("rebuild-search")
def rebuild_search_command() -> None:
    """Build every knowledge and memory search index anew from the database (after a restore whose embedding
    models failed, or a lost index)."""
    from nexent.backup.service import RestoreResult, head_revision, rebuild_search

    async def action(engines: Engines) -> RestoreResult:
        head = head_revision(engines.settings.resolved_database_url)
        result = RestoreResult(head, head, {}, 0)
        await rebuild_search(engines, result)
        return result

    result = _run(action)
    typer.echo(
        json.dumps(
            {k: v for k, v in result.summary().items() if k in ("chunks_indexed", "memories_indexed", "index_errors")},
            indent=2,
        )
    )
    if result.index_errors:
        raise typer.Exit(1)


@admin.command("check")
def check() -> None:
    """Check that every configured engine answers; exits 1 if one does not."""
    results = _run(lambda engines: engines.readiness())
    typer.echo(json.dumps(results, indent=2))
    if any(value != "ok" for value in results.values()):
        raise typer.Exit(1)


@app.command("openapi")
def openapi_command(
    output: Annotated[str | None, typer.Option(help="Write to this file instead of standard output.")] = None,
) -> None:
    """Print the OpenAPI document of the embedded app (every service): the web UI's API types come from it."""
    from nexent.server import create_app

    document = json.dumps(create_app(get_settings()).openapi(), indent=1, sort_keys=True)
    if output is None:
        typer.echo(document)
    else:
        with open(output, "w", encoding="utf-8") as file:
            file.write(document + "\n")


def main() -> None:
    app()
