"""The runtime's writes, grouped: every run of this process hands its rows (a new run, its events, its end) to one
writer per process, which stores whatever has accumulated in one transaction (group commit).

Why: with hundreds of runs at once, a transaction per run and per event meant hundreds of small transactions a
second, each paying for a session, a connection, a commit and (on SQLite, one writer at a time) waiting for the
write lock while holding the event loop's attention. Rows are inserted with one multi-row statement per table.

`add` stores a write with the next batch (at most `FLUSH_INTERVAL_SECONDS` later); `store` stores it at once,
together with everything waiting, and returns after the commit. Batches are written one after the other, in
order. A batch that fails is retried write by write, so one bad write (say, an event of a run deleted meanwhile)
does not sink the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Executable, Table, insert
from sqlalchemy.exc import IntegrityError

from nexent.engines.container import Engines
from nexent.runtime.models import Conversation, Message, Run, RunEvent

logger = logging.getLogger("nexent.runtime")

FLUSH_INTERVAL_SECONDS = 0.05
_MAX_ATTEMPTS = 5

Row = dict[str, Any]


def table_of(model: Any) -> Table:
    table: Table = model.__table__
    return table


# Parents before children (foreign keys are checked statement by statement).
_TABLE_ORDER: dict[str, int] = {table_of(m).name: i for i, m in enumerate((Conversation, Run, Message, RunEvent))}


@dataclass
class Write:
    """Rows to insert and statements to execute, stored together (inserts first, then the statements in order)."""

    inserts: list[tuple[Table, Row]] = field(default_factory=list)
    statements: list[Executable] = field(default_factory=list)

    def insert(self, model: Any, row: Row) -> Write:
        self.inserts.append((table_of(model), row))
        return self

    def execute(self, statement: Executable) -> Write:
        self.statements.append(statement)
        return self


@dataclass
class _Pending:
    write: Write
    done: asyncio.Future[None] | None  # set for `store`: the caller waits for the commit
    attempts: int = 0


class BatchWriter:
    """One per process and database (see `writer_for`)."""

    def __init__(self, engines: Engines) -> None:
        self.engines = engines
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._urgent = False
        self._task: asyncio.Task[None] | None = None

    def add(self, write: Write) -> None:
        """Store `write` with the next batch."""
        self._pending.append(_Pending(write, None))
        self._start()

    async def store(self, write: Write) -> None:
        """Store `write` now (with whatever is waiting); raises if it could not be stored."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(write, done))
        self._urgent = True
        self._wake.set()
        self._start()
        await done

    async def flush(self) -> None:
        """Return once everything added so far is stored (or has failed for good)."""
        await self.store(Write())

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="nexent-run-writer")

    async def _run(self) -> None:
        while self._pending:
            if not self._urgent:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=FLUSH_INTERVAL_SECONDS)
            batch, self._pending, self._urgent = self._pending, [], False
            try:
                await self._write(batch)
            except Exception:  # pragma: no cover - _write settles every item itself
                logger.exception("the run writer failed")

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            await self._transaction([item.write for item in batch])
        except Exception:
            if len(batch) > 1:
                logger.warning("a batch of run writes failed; storing them one by one", exc_info=True)
            for item in batch:
                await self._write_alone(item)
            return
        for item in batch:
            if item.done is not None and not item.done.done():
                item.done.set_result(None)

    async def _write_alone(self, item: _Pending) -> None:
        try:
            await self._transaction([item.write])
        except Exception as exc:
            item.attempts += 1
            if item.done is not None:
                if not item.done.done():
                    item.done.set_exception(exc)
            elif isinstance(exc, IntegrityError) or item.attempts >= _MAX_ATTEMPTS:
                logger.exception("dropped a run write that cannot be stored")
            else:
                logger.warning("could not store a run write; it stays queued", exc_info=True)
                self._pending.insert(0, item)
            return
        if item.done is not None and not item.done.done():
            item.done.set_result(None)

    async def _transaction(self, writes: list[Write]) -> None:
        rows: dict[Table, list[Row]] = defaultdict(list)
        statements: list[Executable] = []
        for write in writes:
            for table, row in write.inserts:
                rows[table].append(row)
            statements.extend(write.statements)
        if not rows and not statements:
            return
        async with self.engines.db.begin() as connection:
            for table in sorted(rows, key=lambda t: _TABLE_ORDER.get(t.name, len(_TABLE_ORDER))):
                await connection.execute(insert(table), rows[table])
            for statement in statements:
                await connection.execute(statement)


_writers: weakref.WeakKeyDictionary[Engines, BatchWriter] = weakref.WeakKeyDictionary()


def writer_for(engines: Engines) -> BatchWriter:
    writer = _writers.get(engines)
    if writer is None:
        writer = _writers[engines] = BatchWriter(engines)
    return writer
