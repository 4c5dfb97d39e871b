"""One function ends every run (`ending.end_run`): the first end wins, in the run's state and in its log, on SQLite
and on PostgreSQL; a later end (the run's own, a lost-run sweep, a restart) writes and publishes nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from nexent.core.batch import writer_for
from nexent.engines.container import Engines
from nexent.identity.models import Tenant
from nexent.runtime.ending import end_elsewhere, end_run
from nexent.runtime.event_types import MessageDelta, RunCompleted, RunFailed, RunStopped
from nexent.runtime.events import RunLog, follow
from nexent.runtime.models import Run, RunEvent, RunStatus
from tests.conftest import PostgresDatabases, make_settings, started_engines
from tests.test_run_owners import distributed


@pytest.fixture(params=["embedded", "distributed"])
async def engines(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases, redis_prefix: str
) -> AsyncIterator[Engines]:
    if request.param == "embedded":
        settings = make_settings(tmp_path, builtin_models=False)
    else:
        settings = distributed(tmp_path, await pg_databases.create(migrated=True), redis_prefix)
    started = await started_engines(settings, consume_jobs=False)
    yield started
    await writer_for(started).close()
    await started.close()


async def _run(engines: Engines) -> tuple[uuid.UUID, uuid.UUID]:
    async with engines.sessions() as session, session.begin():
        tenant = Tenant(name="T", slug=f"t-{uuid.uuid4().hex[:8]}")
        session.add(tenant)
        await session.flush()
        run = Run(tenant_id=tenant.id, status=RunStatus.RUNNING)
        session.add(run)
        await session.flush()
        return tenant.id, run.id


async def test_the_first_end_of_a_run_wins(engines: Engines) -> None:
    tenant_id, run_id = await _run(engines)
    log = RunLog(engines, tenant_id, run_id)
    await log.emit(MessageDelta(agent=None, parent_call_id=None, text="half"))
    await log.flush()
    reader = asyncio.create_task(_types(engines, tenant_id, run_id))

    lost = RunFailed(code="worker_lost", message="gone")
    first = await end_elsewhere(engines, tenant_id, run_id, lost, error_code="worker_lost", error_message="gone")
    assert first is not None and first.seq == 2
    # The run's own end comes too late, as does another sweep: neither is stored or published.
    assert await end_run(log, RunCompleted(agent=None, answer="late", usage=None), final_answer="late") is None
    again = await end_elsewhere(engines, tenant_id, run_id, lost, error_code="worker_lost", error_message="gone")
    assert again is None
    assert await end_run(RunLog(engines, tenant_id, run_id, last_seq=2), RunStopped(reason="stop")) is None

    assert await asyncio.wait_for(reader, timeout=10) == ["message.delta", "run.failed"]
    async with engines.sessions() as session:
        run = await session.get(Run, run_id)
        stored = list(await session.scalars(select(RunEvent).where(RunEvent.run_id == run_id).order_by(RunEvent.seq)))
    assert run is not None and (run.status, run.error_code, run.final_answer) == (RunStatus.FAILED, "worker_lost", None)
    assert [(e.seq, e.type, e.data) for e in stored] == [
        (1, "message.delta", {"agent": None, "parent_call_id": None, "text": "half"}),
        (2, "run.failed", {"code": "worker_lost", "message": "gone"}),
    ]


async def _types(engines: Engines, tenant_id: uuid.UUID, run_id: uuid.UUID) -> list[str]:
    return [event.type async for event in follow(engines, tenant_id, run_id) if event is not None]
