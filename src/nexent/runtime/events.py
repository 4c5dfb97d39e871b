"""The event log of a run, and reading it as a stream that survives reconnects.

The process that executes a run is the only writer of its log. `RunLog.emit` numbers each event, publishes it on
the bus at once (live readers see tokens without delay) and hands it to the process's batch writer (`core/batch.py`),
which stores it with the next shared batch (every 50 ms, one transaction for all runs); the terminal event is
stored, together with the run's final state, before it is published. `follow` replays the events after a
sequence number (from the log of a run this process is executing, else from the database) and then follows the
bus, filling any gap from the database, so a client that reconnects with `Last-Event-ID` misses nothing and sees
nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.exc import IntegrityError

from nexent.core.batch import FLUSH_INTERVAL_SECONDS, ModelRow, Write, writer_for
from nexent.core.db import utcnow
from nexent.engines.container import Engines
from nexent.runtime.event_types import AnyRunEvent, BaseRunEvent, parse_event
from nexent.runtime.models import AFTER_END_EVENTS, TERMINAL_EVENTS, RunEvent
from nexent.runtime.repository import RunEventRepository

logger = logging.getLogger("nexent.runtime")

_GAP_WAIT_SECONDS = 3.0

__all__ = ["FLUSH_INTERVAL_SECONDS", "Event", "RunLog", "follow", "parse_sse", "sse_frame", "stored_events"]


def channel(run_id: uuid.UUID) -> str:
    return f"run:{run_id}"


class Event:
    """One event of a run, numbered: its type and data (see `event_types`, whose models build it with `of`). Its
    data is encoded to JSON once, for the bus and every stream that sends it; readers pass the JSON on as it came,
    and only `typed` validates it again."""

    __slots__ = ("_data", "_json", "seq", "type")

    def __init__(self, seq: int, type: str, data: dict[str, Any] | None = None, *, encoded: str | None = None) -> None:
        self.seq = seq
        self.type = type
        self._data = data if data is not None or encoded is not None else {}
        self._json = encoded

    @classmethod
    def of(cls, seq: int, event: BaseRunEvent) -> Event:
        """The typed `event` as event number `seq` (its data serialised once, here)."""
        return cls(seq, event.type, event.wire_data())

    @property
    def typed(self) -> AnyRunEvent:
        """The event as its typed model (validated now: for consumers that want types, not on the hot path)."""
        return parse_event(self.type, self.data)

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = dict(json.loads(self._json or "{}"))
        return self._data

    @property
    def json(self) -> str:
        """The data as JSON text (non-ASCII characters as they are)."""
        if self._json is None:
            self._json = json.dumps(self._data, ensure_ascii=False)
        return self._json

    def to_message(self) -> dict[str, Any]:
        # The data travels encoded: a flat message is cheap to copy (the in-process bus copies it per reader).
        return {"seq": self.seq, "type": self.type, "json": self.json}

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Event:
        if "json" in message:
            return cls(int(message["seq"]), str(message["type"]), encoded=str(message["json"]))
        return cls(int(message["seq"]), str(message["type"]), dict(message.get("data") or {}))

    def __repr__(self) -> str:
        return f"Event({self.seq}, {self.type!r}, {self.data!r})"


def sse_frame(event: Event) -> str:
    """The event as one Server-Sent Events frame: `id: <seq>`, `event: <type>`, `data: <JSON>`."""
    return f"id: {event.seq}\nevent: {event.type}\ndata: {event.json}\n\n"


def parse_sse(frame: str) -> tuple[int, AnyRunEvent]:
    """An SSE frame of a run's stream back as its sequence number and typed event (what a client does)."""
    fields: dict[str, str] = {}
    for line in frame.strip("\n").split("\n"):
        name, _, value = line.partition(":")
        fields[name] = fields[name] + "\n" + value.removeprefix(" ") if name in fields else value.removeprefix(" ")
    return int(fields["id"]), parse_event(fields["event"], json.loads(fields["data"]))


# Runs this process is executing, by run id: their events so far, for readers in this process.
class LiveRuns(dict[uuid.UUID, "RunLog"]):
    """The logs of the runs this process executes (a part of its `ProcessState`)."""

    async def close(self) -> None:
        self.clear()


def _live_logs(engines: Engines) -> LiveRuns:
    return engines.process.part(LiveRuns, LiveRuns)


class RunLog:
    def __init__(self, engines: Engines, tenant_id: uuid.UUID, run_id: uuid.UUID, *, last_seq: int = 0) -> None:
        self.engines = engines
        self.tenant_id = tenant_id
        self.run_id = run_id
        self.seq = last_seq
        self.writer = writer_for(engines)
        self._first_seq = last_seq  # events up to this one are in the database only
        self._events: list[Event] = []
        _live_logs(engines)[run_id] = self

    def backlog(self, tenant_id: uuid.UUID, after: int) -> list[Event] | None:
        """The events after `after` if this log has them all, else None (read the database)."""
        if tenant_id != self.tenant_id or after < self._first_seq:
            return None
        return self._events[after - self._first_seq :]

    async def emit(
        self, event_: BaseRunEvent | str, data: dict[str, Any] | None = None, *, write: Write | None = None
    ) -> Event:
        """Log and publish one event (a typed event; a type and raw data only in tests of the log itself); `write`
        is stored in the same transaction."""
        self.seq += 1
        event = Event.of(self.seq, event_) if isinstance(event_, BaseRunEvent) else Event(self.seq, event_, data or {})
        type_ = event.type
        row = {
            "tenant_id": self.tenant_id,
            "run_id": self.run_id,
            "seq": event.seq,
            "type": event.type,
            "data": event.data,
            "created_at": utcnow(),
        }
        stored = (write or Write()).insert(RunEvent, row)
        if type_ in TERMINAL_EVENTS:
            await self.writer.store(stored)  # stored before anyone hears the run is over
        else:
            self.writer.add(stored)
        self._events.append(event)
        try:
            await self.engines.bus.publish(channel(self.run_id), event.to_message())
        except Exception:
            # Readers fall back to the stored log; losing the live copy delays them, it loses nothing.
            logger.warning("could not publish a run event", extra={"run_id": str(self.run_id)}, exc_info=True)
        if type_ in TERMINAL_EVENTS:
            self._forget()
        return event

    async def end(self, event: BaseRunEvent, claim: Executable, then: Sequence[ModelRow] = ()) -> Event | None:
        """Store the terminal `event` if `claim` (the conditional update of the run's final state, see
        `ending.end_run`) changes the run, with the rows `then`, in one transaction; publish it once stored. None
        when the claim failed: the run had ended already, and its end stays as it is."""
        event_ = Event.of(self.seq + 1, event)
        row = {
            "tenant_id": self.tenant_id,
            "run_id": self.run_id,
            "seq": event_.seq,
            "type": event_.type,
            "data": event_.data,
            "created_at": utcnow(),
        }
        write = Write().claim(claim).insert(RunEvent, row)
        for model, extra in then:
            write.insert(model, extra)
        try:
            await self.writer.store(write)  # stored before anyone hears the run is over
        finally:
            self._forget()
        if not write.claimed:
            return None
        self.seq = event_.seq
        self._events.append(event_)
        try:
            await self.engines.bus.publish(channel(self.run_id), event_.to_message())
        except Exception:
            # Followers find it in the store at their next quiet check.
            logger.warning("could not publish the end of a run", extra={"run_id": str(self.run_id)}, exc_info=True)
        return event_

    def _forget(self) -> None:
        logs = _live_logs(self.engines)
        if logs.get(self.run_id) is self:
            del logs[self.run_id]

    async def flush(self) -> None:
        await self.writer.flush()

    async def close(self) -> None:
        self._forget()
        await self.writer.flush()


async def append_after_end(
    engines: Engines, tenant_id: uuid.UUID, run_id: uuid.UUID, event: BaseRunEvent
) -> Event | None:
    """Add `event` after the end of a run that has ended (memory's `memory.saved`): stored at the end of its log,
    then published, so a stream still following the run gets it and a replay finds it. None when the run has no
    log (deleted)."""
    for _ in range(3):  # another such event may take the same number at once: take the next one
        try:
            async with engines.sessions() as session, session.begin():
                last = await RunEventRepository(session, tenant_id).last_seq(run_id)
                if last == 0:
                    return None
                stored = Event.of(last + 1, event)
                session.add(
                    RunEvent(
                        tenant_id=tenant_id,
                        run_id=run_id,
                        seq=stored.seq,
                        type=stored.type,
                        data=stored.data,
                        created_at=utcnow(),
                    )
                )
        except IntegrityError:
            continue
        try:
            await engines.bus.publish(channel(run_id), stored.to_message())
        except Exception:
            logger.warning("could not publish an event after a run's end", extra={"run_id": str(run_id)}, exc_info=True)
        return stored
    return None


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
        # A run this process executes has its events in memory: no database read to start following it.
        log = _live_logs(engines).get(run_id)
        backlog = log.backlog(tenant_id, last) if log is not None else None
        if backlog is None:
            backlog = await stored_events(engines, tenant_id, run_id, last)
        ended = False
        for event in backlog:
            yield event
            last = event.seq
            # Events written after the end (memory.saved) come with the replay of an ended run.
            ended = ended or event.type in TERMINAL_EVENTS or event.type in AFTER_END_EVENTS
        if ended:
            return
        while True:
            try:
                # A timeout scope, not `wait_for`: that wraps every wait in a task of its own (one per event and
                # reader). A cancelled wait loses nothing (see `Subscription`).
                async with asyncio.timeout(heartbeat):
                    message = await anext(live)
            except TimeoutError:
                # Quiet for a while: check the store too, in case the live copy was lost.
                caught_up = await stored_events(engines, tenant_id, run_id, last)
                if not caught_up:
                    yield None
                for event in caught_up:
                    yield event
                    last = event.seq
                    if event.type in TERMINAL_EVENTS or event.type in AFTER_END_EVENTS:
                        return
                continue
            seq = int(message["seq"])
            if seq <= last:
                continue
            if seq > last + 1:
                for event in await _fill_gap(engines, tenant_id, run_id, last, seq):
                    yield event
                    last = event.seq
            event = Event.from_message(message)
            yield event
            last = seq
            if event.type in TERMINAL_EVENTS or event.type in AFTER_END_EVENTS:
                return


async def _fill_gap(engines: Engines, tenant_id: uuid.UUID, run_id: uuid.UUID, last: int, upto: int) -> list[Event]:
    """Stored events between `last` and `upto` (exclusive), waiting briefly for a batch still being written."""
    deadline = asyncio.get_running_loop().time() + _GAP_WAIT_SECONDS
    while True:
        events = [e for e in await stored_events(engines, tenant_id, run_id, last) if e.seq < upto]
        if len(events) == upto - last - 1 or asyncio.get_running_loop().time() > deadline:
            return events
        await asyncio.sleep(FLUSH_INTERVAL_SECONDS)
