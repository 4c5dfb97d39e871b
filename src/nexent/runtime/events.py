"""The event log of a run, and reading it as a stream that survives reconnects.

The process that executes a run is the only writer of its log. `RunLog.emit` numbers each event, publishes it on
the bus at once (live readers see tokens without delay) and stores it in the process's next shared batch (every
50 ms, one transaction for all runs); the terminal event is published only after everything before it is
stored. `follow` replays the stored events after a sequence number and then follows the bus, filling any gap from
the database, so a client that reconnects with `Last-Event-ID` misses nothing and sees nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from nexent.engines.container import Engines
from nexent.runtime.models import TERMINAL_EVENTS, RunEvent
from nexent.runtime.repository import RunEventRepository

logger = logging.getLogger("nexent.runtime")

FLUSH_INTERVAL_SECONDS = 0.05
_GAP_WAIT_SECONDS = 3.0


def channel(run_id: uuid.UUID) -> str:
    return f"run:{run_id}"


@dataclass(frozen=True)
class Event:
    seq: int
    type: str
    data: dict[str, Any]

    def to_message(self) -> dict[str, Any]:
        return {"seq": self.seq, "type": self.type, "data": self.data}


class EventWriter:
    """Stores the events of every run of this process in shared batches: one transaction every
    `FLUSH_INTERVAL_SECONDS` however many runs stream at once (SQLite has one writer; PostgreSQL likes fewer
    commits too)."""

    def __init__(self, engines: Engines) -> None:
        self.engines = engines
        self._pending: list[RunEvent] = []
        self._lock = asyncio.Lock()
        self._scheduled: asyncio.Task[None] | None = None

    def add(self, event: RunEvent) -> None:
        self._pending.append(event)
        if self._scheduled is None or self._scheduled.done():
            self._scheduled = asyncio.create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_INTERVAL_SECONDS)
        await self.flush()

    async def flush(self) -> None:
        """Store everything added so far (and whatever was added while waiting for the previous batch)."""
        async with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            try:
                async with self.engines.sessions() as session, session.begin():
                    session.add_all(batch)
            except Exception:
                logger.exception("could not store run events; they stay queued for the next batch")
                self._pending[:0] = [
                    RunEvent(tenant_id=e.tenant_id, run_id=e.run_id, seq=e.seq, type=e.type, data=e.data) for e in batch
                ]
                raise


_writers: weakref.WeakKeyDictionary[Engines, EventWriter] = weakref.WeakKeyDictionary()


def writer_for(engines: Engines) -> EventWriter:
    writer = _writers.get(engines)
    if writer is None:
        writer = _writers[engines] = EventWriter(engines)
    return writer


class RunLog:
    def __init__(self, engines: Engines, tenant_id: uuid.UUID, run_id: uuid.UUID, *, last_seq: int = 0) -> None:
        self.engines = engines
        self.tenant_id = tenant_id
        self.run_id = run_id
        self.seq = last_seq
        self.writer = writer_for(engines)

    async def emit(self, type_: str, data: dict[str, Any] | None = None) -> Event:
        self.seq += 1
        event = Event(self.seq, type_, data or {})
        self.writer.add(
            RunEvent(tenant_id=self.tenant_id, run_id=self.run_id, seq=event.seq, type=event.type, data=event.data)
        )
        if type_ in TERMINAL_EVENTS:
            await self.writer.flush()  # stored before anyone hears the run is over
        try:
            await self.engines.bus.publish(channel(self.run_id), event.to_message())
        except Exception:
            # Readers fall back to the stored log; losing the live copy delays them, it loses nothing.
            logger.warning("could not publish a run event", extra={"run_id": str(self.run_id)}, exc_info=True)
        return event

    async def flush(self) -> None:
        await self.writer.flush()

    async def close(self) -> None:
        await self.writer.flush()


async def stored_events(engines: Engines, tenant_id: uuid.UUID, run_id: uuid.UUID, after: int) -> list[Event]:
    async with engines.sessions() as session:
        rows = await RunEventRepository(session, tenant_id).after(run_id, after)
    return [Event(row.seq, row.type, row.data) for row in rows]


async def follow(
    engines: Engines, tenant_id: uuid.UUID, run_id: uuid.UUID, *, after: int = 0, heartbeat: float = 15.0
) -> AsyncIterator[Event | None]:
    """Events after `after`, stored then live, until the run's terminal event. Yields None as a heartbeat."""
    async with engines.bus.subscribe(channel(run_id)) as live:
        last = after
        for event in await stored_events(engines, tenant_id, run_id, last):
            yield event
            last = event.seq
            if event.type in TERMINAL_EVENTS:
                return
        while True:
            try:
                message = await asyncio.wait_for(anext(live), timeout=heartbeat)
            except TimeoutError:
                # Quiet for a while: check the store too, in case the live copy was lost.
                caught_up = await stored_events(engines, tenant_id, run_id, last)
                if not caught_up:
                    yield None
                for event in caught_up:
                    yield event
                    last = event.seq
                    if event.type in TERMINAL_EVENTS:
                        return
                continue
            seq = int(message["seq"])
            if seq <= last:
                continue
            if seq > last + 1:
                for event in await _fill_gap(engines, tenant_id, run_id, last, seq):
                    yield event
                    last = event.seq
            event = Event(seq, str(message["type"]), dict(message.get("data") or {}))
            yield event
            last = seq
            if event.type in TERMINAL_EVENTS:
                return


async def _fill_gap(engines: Engines, tenant_id: uuid.UUID, run_id: uuid.UUID, last: int, upto: int) -> list[Event]:
    """Stored events between `last` and `upto` (exclusive), waiting briefly for a batch still being written."""
    deadline = asyncio.get_running_loop().time() + _GAP_WAIT_SECONDS
    while True:
        events = [e for e in await stored_events(engines, tenant_id, run_id, last) if e.seq < upto]
        if len(events) == upto - last - 1 or asyncio.get_running_loop().time() > deadline:
            return events
        await asyncio.sleep(FLUSH_INTERVAL_SECONDS)
