"""The event log of a run, and reading it as a stream that survives reconnects.

The process that executes a run is the only writer of its log. `RunLog.emit` numbers each event, publishes it on
the bus at once (live readers see tokens without delay) and stores it: deltas are written in small batches, every
other event at once, and the terminal event only after everything before it is stored. `follow` replays the
stored events after a sequence number and then follows the bus, filling any gap from the database, so a client
that reconnects with `Last-Event-ID` misses nothing and sees nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from nexent.engines.container import Engines
from nexent.runtime.models import TERMINAL_EVENTS, RunEvent
from nexent.runtime.repository import RunEventRepository

logger = logging.getLogger("nexent.runtime")

FLUSH_INTERVAL_SECONDS = 0.05
_GAP_WAIT_SECONDS = 3.0
_DELTA_TYPES = frozenset({"message.delta", "thinking.delta"})


def channel(run_id: uuid.UUID) -> str:
    return f"run:{run_id}"


@dataclass(frozen=True)
class Event:
    seq: int
    type: str
    data: dict[str, Any]

    def to_message(self) -> dict[str, Any]:
        return {"seq": self.seq, "type": self.type, "data": self.data}


class RunLog:
    def __init__(self, engines: Engines, tenant_id: uuid.UUID, run_id: uuid.UUID, *, last_seq: int = 0) -> None:
        self.engines = engines
        self.tenant_id = tenant_id
        self.run_id = run_id
        self.seq = last_seq
        self._pending: list[Event] = []
        self._lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None

    async def emit(self, type_: str, data: dict[str, Any] | None = None) -> Event:
        self.seq += 1
        event = Event(self.seq, type_, data or {})
        self._pending.append(event)
        if type_ in TERMINAL_EVENTS:
            await self.flush()  # stored before anyone hears the run is over
        elif type_ not in _DELTA_TYPES:
            await self.flush()
        elif self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon())
        try:
            await self.engines.bus.publish(channel(self.run_id), event.to_message())
        except Exception:
            # Readers fall back to the stored log; losing the live copy delays them, it loses nothing.
            logger.warning("could not publish a run event", extra={"run_id": str(self.run_id)}, exc_info=True)
        return event

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_INTERVAL_SECONDS)
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            async with self.engines.sessions() as session, session.begin():
                session.add_all(
                    RunEvent(tenant_id=self.tenant_id, run_id=self.run_id, seq=e.seq, type=e.type, data=e.data)
                    for e in batch
                )

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()


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
