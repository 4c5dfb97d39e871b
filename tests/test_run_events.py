"""The run event log: ordered, gap-free replay after any sequence number, then live following, in one process
(SQLite, in-process bus) and across processes (PostgreSQL, Redis, separate writer and reader engines)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from nexent.core.batch import writer_for
from nexent.core.db import utcnow
from nexent.engines.container import Engines
from nexent.identity.models import Tenant
from nexent.runtime.events import Event, RunLog, channel, follow, stored_events
from nexent.runtime.models import Run, RunEvent
from nexent.server import create_app
from tests.conftest import REDIS_URL, PostgresDatabases, make_settings, started_engines
from tests.support.identity import PASSWORD


@dataclass
class Pair:
    writer: Engines
    reader: Engines


@pytest.fixture(params=["embedded", "distributed"])
async def pair(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases, redis_prefix: str
) -> AsyncIterator[Pair]:
    if request.param == "embedded":
        engines = await started_engines(make_settings(tmp_path, builtin_models=False), consume_jobs=False)
        yield Pair(engines, engines)
        await writer_for(engines).close()
        await engines.close()
        return
    pg_url = await pg_databases.create(migrated=True)
    settings = make_settings(
        tmp_path, database_url=pg_url, bus_backend="redis", redis_url=REDIS_URL, redis_prefix=redis_prefix
    )
    writer = await started_engines(settings, consume_jobs=False)
    reader = await started_engines(settings, consume_jobs=False, migrate=False)
    yield Pair(writer, reader)
    await writer_for(writer).close()  # the run writer's own connection
    await reader.close()
    await writer.close()


async def new_run(engines: Engines) -> tuple[uuid.UUID, uuid.UUID]:
    async with engines.sessions() as session, session.begin():
        tenant = Tenant(name="T", slug=f"t-{uuid.uuid4().hex[:8]}")
        session.add(tenant)
        await session.flush()
        run = Run(tenant_id=tenant.id)
        session.add(run)
        await session.flush()
        return tenant.id, run.id


async def collect(stream: AsyncIterator[Event | None], stop_after: int | None = None) -> list[Event]:
    events: list[Event] = []
    async for event in stream:
        if event is None:
            continue
        events.append(event)
        if stop_after is not None and len(events) == stop_after:
            break
    return events


async def produce(log: RunLog, deltas: int, pause: float = 0.0) -> None:
    await log.emit("run.started", {"agent": "a"})
    for index in range(deltas):
        await log.emit("message.delta", {"text": f"t{index} "})
        if pause:
            await asyncio.sleep(pause)
    await log.emit("run.completed", {"answer": "done"})
    await log.close()


async def test_replay_of_a_finished_run(pair: Pair) -> None:
    tenant_id, run_id = await new_run(pair.writer)
    await produce(RunLog(pair.writer, tenant_id, run_id), 40)
    everything = await collect(follow(pair.reader, tenant_id, run_id))
    assert [e.seq for e in everything] == list(range(1, 43))
    assert everything[0].type == "run.started" and everything[-1].data == {"answer": "done"}
    tail = await collect(follow(pair.reader, tenant_id, run_id, after=30))
    assert [e.seq for e in tail] == list(range(31, 43))


async def test_live_following_sees_every_event_once_in_order(pair: Pair) -> None:
    tenant_id, run_id = await new_run(pair.writer)
    reader = asyncio.create_task(collect(follow(pair.reader, tenant_id, run_id)))
    await asyncio.sleep(0.1)
    await produce(RunLog(pair.writer, tenant_id, run_id), 200, pause=0.001)
    events = await asyncio.wait_for(reader, timeout=30)
    assert [e.seq for e in events] == list(range(1, 203))
    assert "".join(e.data.get("text", "") for e in events) == "".join(f"t{i} " for i in range(200))


async def test_reconnecting_mid_run_loses_and_repeats_nothing(pair: Pair) -> None:
    tenant_id, run_id = await new_run(pair.writer)
    producer = asyncio.create_task(produce(RunLog(pair.writer, tenant_id, run_id), 300, pause=0.002))
    first = await collect(follow(pair.reader, tenant_id, run_id), stop_after=50)
    # The client went away after 50 events; it comes back later with Last-Event-ID 50.
    await asyncio.sleep(0.2)
    rest = await asyncio.wait_for(collect(follow(pair.reader, tenant_id, run_id, after=first[-1].seq)), timeout=30)
    await producer
    assert [e.seq for e in first + rest] == list(range(1, 303))


async def test_a_reader_of_a_lost_live_copy_still_finishes(pair: Pair) -> None:
    tenant_id, run_id = await new_run(pair.writer)
    log = RunLog(pair.writer, tenant_id, run_id)
    reader = asyncio.create_task(collect(follow(pair.reader, tenant_id, run_id, heartbeat=0.2)))
    await asyncio.sleep(0.1)
    await log.emit("run.started")
    # Store events without publishing them, as if the bus had dropped them.
    await log.flush()
    log.seq += 1
    from nexent.runtime.models import RunEvent

    async with pair.writer.sessions() as session, session.begin():
        session.add(RunEvent(tenant_id=tenant_id, run_id=run_id, seq=log.seq, type="run.completed", data={}))
    events = await asyncio.wait_for(reader, timeout=10)
    assert [e.type for e in events] == ["run.started", "run.completed"]


async def test_the_terminal_event_is_stored_with_the_runs_final_state(pair: Pair) -> None:
    from sqlalchemy import update

    from nexent.core.batch import Write
    from nexent.runtime.models import RunEvent

    tenant_id, run_id = await new_run(pair.writer)
    log = RunLog(pair.writer, tenant_id, run_id)
    await log.emit("run.started")
    ended = Write().execute(update(Run).where(Run.id == run_id).values(status="completed", final_answer="42"))
    await log.emit("run.completed", {"answer": "42"}, write=ended)
    # Nothing flushed by hand: the terminal event waited for its transaction, the events before it went first.
    async with pair.reader.sessions() as session:
        run = await session.get(Run, run_id)
        stored = (await session.execute(select(RunEvent.seq).where(RunEvent.run_id == run_id))).scalars().all()
    assert run is not None and (run.status, run.final_answer) == ("completed", "42")
    assert sorted(stored) == [1, 2]


async def test_a_write_that_cannot_be_stored_does_not_sink_the_others(pair: Pair) -> None:
    from sqlalchemy.exc import IntegrityError

    from nexent.core.batch import Write
    from nexent.runtime.models import RunEvent

    tenant_id, run_id = await new_run(pair.writer)
    writer = writer_for(pair.writer)

    def event(run: uuid.UUID, seq: int) -> Write:
        row = {"tenant_id": tenant_id, "run_id": run, "seq": seq, "type": "x", "data": {}, "created_at": utcnow()}
        return Write().insert(RunEvent, row)

    writer.add(event(run_id, 1))
    broken = asyncio.create_task(writer.store(event(uuid.uuid4(), 1)))  # no such run: a foreign key fails
    writer.add(event(run_id, 2))
    with pytest.raises(IntegrityError):
        await broken
    await writer.flush()
    assert [e.seq for e in await stored_events(pair.reader, tenant_id, run_id, 0)] == [1, 2]


async def test_readers_in_the_process_take_a_live_runs_events_from_memory(pair: Pair) -> None:
    tenant_id, run_id = await new_run(pair.writer)
    log = RunLog(pair.writer, tenant_id, run_id)
    for index in range(3):
        await log.emit("message.delta", {"text": str(index)})
    assert [e.seq for e in log.backlog(tenant_id, 1) or []] == [2, 3]
    assert log.backlog(uuid.uuid4(), 0) is None  # another tenant's reader reads the database (and finds nothing)
    resumed = RunLog(pair.writer, tenant_id, run_id, last_seq=3)  # a log taken over: earlier events are not here
    assert resumed.backlog(tenant_id, 0) is None and resumed.backlog(tenant_id, 3) == []
    reader = asyncio.create_task(collect(follow(pair.writer, tenant_id, run_id, after=1)))
    await asyncio.sleep(0.05)
    await resumed.emit("run.completed", {"answer": "012"})
    assert [e.seq for e in await asyncio.wait_for(reader, timeout=10)] == [2, 3, 4]


@pytest.fixture(params=["embedded", "distributed"])
async def served(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases, redis_prefix: str
) -> AsyncIterator[tuple[str, Engines]]:
    """The app over real HTTP (uvicorn in this event loop, so the test reaches its engines), and its engines."""
    overrides = (
        {}
        if request.param == "embedded"
        else {
            "database_url": await pg_databases.create(migrated=True),
            "bus_backend": "redis",
            "redis_url": REDIS_URL,
            "redis_prefix": redis_prefix,
        }
    )
    app = create_app(make_settings(tmp_path, builtin_models=False, **overrides))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not serving.done(), "the app did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", app.state.engines
    finally:
        server.should_exit = True
        await serving
        sock.close()


async def test_events_in_both_the_backlog_and_the_live_stream_reach_the_client_once(
    served: tuple[str, Engines],
) -> None:
    """The SSE route subscribes to the live events, then sends the stored backlog, then the live ones: an event
    published live that the backlog already held (published between the subscription and the backlog's read) must
    not reach the client twice. Here the live copies of events 2 and 3 are published after the client has them from
    the backlog, with the subscription certainly open (it opens before the backlog is read)."""
    base_url, engines = served
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        registered = await http.post("/api/auth/register", json={"email": "sse@example.com", "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        pair = registered.json()
        tenant_id, user_id = uuid.UUID(pair["tenant"]["id"]), uuid.UUID(pair["user"]["id"])
        stored = [
            Event(1, "run.started", {"run_id": "r", "agent_id": None, "conversation_id": None}),
            Event(2, "message.delta", {"agent": "main", "parent_call_id": None, "text": "Hello "}),
            Event(3, "message.delta", {"agent": "main", "parent_call_id": None, "text": "there"}),
        ]
        async with engines.sessions() as session, session.begin():
            run = Run(tenant_id=tenant_id, user_id=user_id, status="running")
            session.add(run)
            await session.flush()
            for event in stored:
                session.add(
                    RunEvent(tenant_id=tenant_id, run_id=run.id, seq=event.seq, type=event.type, data=event.data)
                )
        live = [*stored[1:], Event(4, "run.completed", {"answer": "Hello there"})]

        received: list[int] = []
        headers = {"Authorization": f"Bearer {pair['access_token']}"}
        async with http.stream("GET", f"/api/runs/{run.id}/events", headers=headers) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if not line.startswith("id: "):
                    continue
                received.append(int(line.removeprefix("id: ")))
                if received[-1] == 3:  # the backlog is out: the live copies follow, the duplicates first
                    for event in live:
                        await engines.bus.publish(channel(run.id), event.to_message())
    assert received == [1, 2, 3, 4]
