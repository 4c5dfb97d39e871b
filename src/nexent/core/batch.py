"""Writes grouped into shared transactions (group commit): every run of this process hands its rows (a new run, its
events, its end, the usage of its model calls) to one writer per process and database, which stores whatever has
accumulated in one transaction, on a database connection of its own.

Why: with hundreds of runs at once, a transaction per run and per event meant hundreds of small transactions a
second, each paying for a session, a connection, a commit and (on SQLite, one writer at a time) waiting for the
write lock. Rows are inserted with one multi-row statement per table. The writer's own connection matters too:
taking one from the shared pool meant queueing behind every request waiting for a connection, which held all the
runs of a burst back until the last of them had read what it needed. On SQLite the whole transaction runs on a
worker thread with a plain `sqlite3` connection (one hand-over between threads per batch, instead of several per
statement through aiosqlite); other databases get an async connection of their own.

`add` stores a write with the next batch (at most `FLUSH_INTERVAL_SECONDS` later); `store` stores it at once,
together with everything waiting, and returns after the commit. Batches are written one after the other, in
order. A batch that fails is retried write by write, so one bad write (say, an event of a run deleted meanwhile)
does not sink the others. Rows go in parents first: the order of the tables in the SQLAlchemy metadata
(`sorted_tables`), so any table can be written, in an order its foreign keys allow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection, CursorResult, Engine, Executable, Table, create_engine, event, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from nexent.core.db import Base, sqlite_pragmas
from nexent.core.db import create_engine as create_async_engine
from nexent.core.process import ProcessState

logger = logging.getLogger("nexent.batch")

FLUSH_INTERVAL_SECONDS = 0.05
_MAX_ATTEMPTS = 5

Row = dict[str, Any]
ModelRow = tuple[Any, Row]  # a model class and a row of its table


def table_of(model: Any) -> Table:
    table: Table = model.__table__
    return table


_table_order: dict[str, int] = {}


def table_order() -> dict[str, int]:
    """Each table's place, parents before children (foreign keys are checked statement by statement); computed
    again when models were imported since."""
    global _table_order
    if len(_table_order) != len(Base.metadata.tables):
        _table_order = {table.name: i for i, table in enumerate(Base.metadata.sorted_tables)}
    return _table_order


@dataclass
class Write:
    """Rows to insert and statements to execute, stored together (inserts first, then the statements in order).

    A write with a `claim` (a conditional UPDATE) is stored only if the claim changes a row: the claims of a batch
    run after its other writes, each write's rows and statements after its claim, and `claimed` says, once the
    write is stored, whether it won (the rows of the winners still go in with one statement per table)."""

    inserts: list[tuple[Table, Row]] = field(default_factory=list)
    statements: list[Executable] = field(default_factory=list)
    claim_statement: Executable | None = None
    claimed: bool | None = None

    def insert(self, model: Any, row: Row) -> Write:
        self.inserts.append((table_of(model), row))
        return self

    def execute(self, statement: Executable) -> Write:
        self.statements.append(statement)
        return self

    def claim(self, statement: Executable) -> Write:
        self.claim_statement = statement
        return self


@dataclass
class _Pending:
    write: Write
    done: asyncio.Future[None] | None  # set for `store`: the caller waits for the commit
    attempts: int = 0


class HasDatabase(Protocol):
    """What a writer is for: a process's engines (its database engine, and the state that keeps the writer)."""

    @property
    def db(self) -> AsyncEngine: ...

    @property
    def process(self) -> ProcessState: ...


class BatchWriter:
    """One per process and database (see `writer_for`)."""

    def __init__(self, engines: HasDatabase) -> None:
        self.engines = engines
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._urgent = False
        self._task: asyncio.Task[None] | None = None
        self._sqlite: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None  # SQLite batches: a thread of their own, never queued
        self._async: AsyncEngine | None = None
        url = engines.db.url
        self._sqlite_file = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")

    async def close(self) -> None:
        """Store what is waiting and close the writer's connection (it opens again when needed)."""
        await self.flush()
        if self._async is not None:
            await self._async.dispose()
            self._async = None
        if self._sqlite is not None:
            self._sqlite.dispose()
            self._sqlite = None
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None

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
            self._task = asyncio.create_task(self._run(), name="nexent-batch-writer")

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
                logger.exception("the batch writer failed")

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            await self._transaction([item.write for item in batch])
        except Exception:
            if len(batch) > 1:
                logger.warning("a batch of writes failed; storing them one by one", exc_info=True)
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
                logger.exception("dropped a write that cannot be stored")
            else:
                logger.warning("could not store a write; it stays queued", exc_info=True)
                self._pending.insert(0, item)
            return
        if item.done is not None and not item.done.done():
            item.done.set_result(None)

    async def _transaction(self, writes: list[Write]) -> None:
        if not any(w.inserts or w.statements or w.claim_statement is not None for w in writes):
            return
        if self._sqlite_file:
            if self._thread is None:
                self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexent-batch-writer")
            await asyncio.get_running_loop().run_in_executor(self._thread, self._write_sqlite, writes)
            return
        if self._async is None:
            self._async = create_async_engine(self.engines.db.url.render_as_string(hide_password=False), pool_size=1)
        async with self._async.begin() as connection:
            for table, rows, statements in _parts([w for w in writes if w.claim_statement is None]):
                await _execute_async(connection, table, rows, statements)
            won = []
            for write in writes:
                if write.claim_statement is None:
                    continue
                if _claimed(write, await connection.execute(write.claim_statement)):
                    won.append(write)
            for table, rows, statements in _parts(won):
                await _execute_async(connection, table, rows, statements)

    def _write_sqlite(self, writes: list[Write]) -> None:
        """On a worker thread: the whole transaction, without going back to the event loop in between."""
        if self._sqlite is None:
            self._sqlite = _sqlite_engine(self.engines.db.url.database or "")
        with self._sqlite.begin() as connection:
            for table, rows, statements in _parts([w for w in writes if w.claim_statement is None]):
                _execute(connection, table, rows, statements)
            won = [
                w
                for w in writes
                if w.claim_statement is not None and _claimed(w, connection.execute(w.claim_statement))
            ]
            for table, rows, statements in _parts(won):
                _execute(connection, table, rows, statements)


Part = tuple[Table | None, list[Row], list[Executable]]


def _parts(writes: list[Write]) -> list[Part]:
    """The writes' rows, one multi-row insert per table (parents first), then their statements in order."""
    rows: dict[Table, list[Row]] = defaultdict(list)
    statements: list[Executable] = []
    for write in writes:
        for table, row in write.inserts:
            rows[table].append(row)
        statements.extend(write.statements)
    order = table_order()
    parts: list[Part] = [(t, rows[t], []) for t in sorted(rows, key=lambda t: order.get(t.name, len(order)))]
    if statements:
        parts.append((None, [], statements))
    return parts


def _execute(connection: Connection, table: Table | None, rows: list[Row], statements: list[Executable]) -> None:
    if table is not None:
        connection.execute(insert(table), rows)
    for statement in statements:
        connection.execute(statement)


async def _execute_async(
    connection: AsyncConnection, table: Table | None, rows: list[Row], statements: list[Executable]
) -> None:
    if table is not None:
        await connection.execute(insert(table), rows)
    for statement in statements:
        await connection.execute(statement)


def _claimed(write: Write, result: object) -> bool:
    write.claimed = isinstance(result, CursorResult) and result.rowcount > 0
    return write.claimed


def _sqlite_engine(path: str) -> Engine:
    """A plain (synchronous) SQLite engine on the platform's database file, set up as `core.db` sets up its own."""
    engine = create_engine(
        f"sqlite:///{path}", connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True
    )
    event.listen(engine, "connect", sqlite_pragmas)
    return engine


def writer_for(engines: HasDatabase) -> BatchWriter:
    """The process's writer (one per process and database, kept by its `ProcessState`)."""
    return engines.process.part(BatchWriter, lambda: BatchWriter(engines))
