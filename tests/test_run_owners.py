"""Runs of a process that dies: their owner's heartbeat stops, another process ends them with `run.failed`
(`worker_lost`) exactly once, and every stream of them ends. A real runtime process is killed in the distributed
shape (PostgreSQL, Redis); the sweep itself is also checked directly on both shapes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from nexent.core.batch import writer_for
from nexent.core.db import migrate_async, utcnow
from nexent.engines.container import Engines
from nexent.identity.models import Tenant
from nexent.runtime.events import RunLog, follow
from nexent.runtime.models import Run, RunEvent, RunOwner, RunStatus
from nexent.runtime.owners import LOST_CODE, RunOwnership
from nexent.settings import Service, Settings
from tests.conftest import (
    REDIS_URL,
    PostgresDatabases,
    free_port,
    make_settings,
    serve_in_process,
    started_engines,
    wait_for_port,
)
from tests.support.identity import bearer, register
from tests.support.model_server import ChatReply, run_model_server
from tests.test_runs import parse_sse


def distributed(tmp_path: Path, pg_url: str, redis_prefix: str, **overrides: Any) -> Settings:
    return make_settings(
        tmp_path,
        database_url=pg_url,
        bus_backend="redis",
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
        builtin_models=False,
        run_heartbeat_seconds=0.2,
        run_owner_lost_seconds=1.5,
        **overrides,
    )


@pytest.mark.slow
async def test_the_runs_of_a_killed_process_end_as_worker_lost(tmp_path: Path, pg_url: str, redis_prefix: str) -> None:
    settings = distributed(tmp_path, pg_url, redis_prefix)
    await migrate_async(pg_url)
    port = free_port()
    env = {
        **os.environ,
        "NEXENT_DATA_DIR": str(settings.data_dir),  # the same keys: tokens signed here are valid there
        "NEXENT_DATABASE_URL": pg_url,
        "NEXENT_BUS_BACKEND": "redis",
        "NEXENT_REDIS_URL": REDIS_URL,
        "NEXENT_REDIS_PREFIX": redis_prefix,
        "NEXENT_BUILTIN_MODELS": "false",
        "NEXENT_PRIVATE_ENDPOINTS_ALLOW": ",".join(settings.private_endpoints_allow),
        "NEXENT_LOG_LEVEL": "WARNING",
        "NEXENT_RUN_HEARTBEAT_SECONDS": "0.2",
        "NEXENT_RUN_OWNER_LOST_SECONDS": "1.5",
    }
    with run_model_server() as llm:
        async with serve_in_process(settings, Service.CONFIG) as config:
            owner = await register(config, f"owner-{uuid.uuid4().hex[:6]}@example.com")
            headers = bearer(owner["access_token"])
            model = await config.post(
                "/api/models",
                json={"name": "M", "kind": "llm", "model": "m", "base_url": llm.base_url},
                headers=headers,
            )
            agent = (
                await config.post("/api/agents", json={"name": "A", "model_id": model.json()["id"]}, headers=headers)
            ).json()
        # A slow answer: the run is still streaming when its process is killed.
        llm.server.enqueue(ChatReply.text("a slow answer " * 40).paced(chunk_delay=0.2, chunk_size=4))
        process = subprocess.Popen(
            [sys.executable, "-m", "nexent", "serve", "--service", "runtime", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await asyncio.to_thread(wait_for_port, port, 60)
            async with serve_in_process(settings, Service.RUNTIME) as survivor:
                seen = await _start_and_read_until_a_delta(port, agent["id"], headers)
                run_id, last_seq = seen
                # A reader of the run on the surviving process, following it live when the owner dies.
                follower = asyncio.create_task(
                    survivor.get(f"/api/runs/{run_id}/events?after={last_seq}", headers=headers)
                )
                await asyncio.sleep(0.3)
                process.send_signal(signal.SIGKILL)
                await asyncio.to_thread(process.wait)

                followed = parse_sse((await asyncio.wait_for(follower, timeout=60)).text)
                assert followed[-1]["type"] == "run.failed" and followed[-1]["data"]["code"] == LOST_CODE
                stored = (await survivor.get(f"/api/runs/{run_id}", headers=headers)).json()
                assert (stored["status"], stored["error_code"]) == ("failed", LOST_CODE)
                replay = parse_sse((await survivor.get(f"/api/runs/{run_id}/events", headers=headers)).text)
                terminal = [e for e in replay if e["type"] in ("run.completed", "run.failed", "run.stopped")]
                assert terminal == [replay[-1]] and [e["id"] for e in replay] == list(range(1, len(replay) + 1))
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


async def _start_and_read_until_a_delta(port: int, agent_id: str, headers: dict[str, str]) -> tuple[str, int]:
    """Start a run on the process at `port` and read its stream up to its first `message.delta`."""
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
        http.stream("POST", f"/api/agents/{agent_id}/runs", json={"message": "Hello"}, headers=headers) as response,
    ):
        assert response.status_code == 200
        last = 0
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                last = int(line[4:])
            if line == "event: message.delta":
                return response.headers["x-run-id"], last
    raise AssertionError("the run ended before its first delta")


# --- the sweep, on both shapes ----------------------------------------------------------------------------------


@pytest.fixture(params=["embedded", "distributed"])
async def engines(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases, redis_prefix: str
) -> AsyncIterator[Engines]:
    if request.param == "embedded":
        settings = make_settings(tmp_path, builtin_models=False, run_owner_lost_seconds=1.5)
    else:
        settings = distributed(tmp_path, await pg_databases.create(migrated=True), redis_prefix)
    started = await started_engines(settings, consume_jobs=False)
    yield started
    await writer_for(started).close()
    await started.close()


async def _owned_run(engines: Engines, tenant_id: uuid.UUID, owner_id: uuid.UUID, status: RunStatus) -> uuid.UUID:
    async with engines.sessions() as session, session.begin():
        run = Run(tenant_id=tenant_id, owner_id=owner_id, status=status)
        session.add(run)
        await session.flush()
        return run.id


async def test_the_sweep_ends_each_lost_run_once_and_leaves_the_others(engines: Engines) -> None:
    async with engines.sessions() as session, session.begin():
        tenant = Tenant(name="T", slug=f"t-{uuid.uuid4().hex[:8]}")
        session.add(tenant)
        dead, alive = RunOwner(heartbeat_at=utcnow() - timedelta(minutes=5)), RunOwner()
        session.add_all([dead, alive])
        await session.flush()
        tenant_id, dead_id, alive_id = tenant.id, dead.id, alive.id
    lost = await _owned_run(engines, tenant_id, dead_id, RunStatus.RUNNING)
    queued = await _owned_run(engines, tenant_id, dead_id, RunStatus.QUEUED)
    finished = await _owned_run(engines, tenant_id, dead_id, RunStatus.COMPLETED)
    healthy = await _owned_run(engines, tenant_id, alive_id, RunStatus.RUNNING)
    orphan = await _owned_run(engines, tenant_id, uuid.uuid4(), RunStatus.RUNNING)  # its owner record is gone
    log = RunLog(engines, tenant_id, lost)
    await log.emit("run.started")
    await log.emit("message.delta", {"text": "half an ans"})
    await log.close()
    reader = asyncio.create_task(_collect(follow(engines, tenant_id, lost)))

    # Two processes sweep at the same moment: each lost run is ended exactly once.
    first, second = RunOwnership(engines), RunOwnership(engines)
    ended = await asyncio.gather(first.sweep(), second.sweep())
    assert sum(ended) == 3

    events = await asyncio.wait_for(reader, timeout=10)
    assert [(e.seq, e.type) for e in events] == [(1, "run.started"), (2, "message.delta"), (3, "run.failed")]
    assert events[-1].data["code"] == LOST_CODE
    async with engines.sessions() as session:
        runs = {r.id: r for r in await session.scalars(select(Run).where(Run.tenant_id == tenant_id))}
        failures = list(await session.scalars(select(RunEvent).where(RunEvent.type == "run.failed")))
    assert {i for i, r in runs.items() if r.error_code == LOST_CODE} == {lost, queued, orphan}
    assert all(runs[i].status == RunStatus.FAILED and runs[i].finished_at for i in (lost, queued, orphan))
    assert runs[finished].status == RunStatus.COMPLETED and runs[healthy].status == RunStatus.RUNNING
    assert sorted(str(e.run_id) for e in failures) == sorted(str(i) for i in (lost, queued, orphan))
    assert await first.sweep() == 0  # nothing left


async def test_a_process_taken_for_lost_stops_its_runs(engines: Engines) -> None:
    stopped: list[bool] = []
    ownership = RunOwnership(engines, on_lost=lambda: stopped.append(True))
    await ownership.start()
    try:
        await ownership.beat()
        assert not stopped  # a fresh heartbeat
        async with engines.sessions() as session, session.begin():
            await session.execute(
                update(RunOwner).where(RunOwner.id == ownership.id).values(heartbeat_at=utcnow() - timedelta(minutes=5))
            )
        await ownership.beat()
        assert stopped == [True]
        async with engines.sessions() as session:
            record = await session.get(RunOwner, ownership.id)
        assert record is not None and record.heartbeat_at > utcnow() - timedelta(minutes=1)  # registered afresh
    finally:
        await ownership.close()
    async with engines.sessions() as session:
        assert await session.get(RunOwner, ownership.id) is None  # a clean stop removes the owner


async def _collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [event async for event in stream if event is not None]
