"""Who executes which run, and what happens to the runs of a process that dies.

Every process that executes runs registers itself as a `RunOwner` when it starts and refreshes its heartbeat every
`run_heartbeat_seconds`; the runs it starts carry its id (`runs.owner_id`). On the same beat it looks for runs
still queued or running whose owner has been silent for `run_owner_lost_seconds` (or no longer exists) and ends
each of them: the run becomes `failed` with the code `worker_lost`, a `run.failed` event is appended to its log
and published on the bus, so that every follower, in any process, gets its terminal event. Without this, the runs
of a process that was killed (or whose machine went away) stayed `running` forever in the distributed shape, and
their streams never ended.

Ending a lost run is claimed with a conditional update (`WHERE status IN (queued, running)`) in the same
transaction as its terminal event, so that several processes sweeping at once end it exactly once. A process that
finds it has itself been taken for lost (it was stalled for longer than `run_owner_lost_seconds`) stops the runs
it still executes: they have been ended already, and the run's final state is never overwritten (see `ending`).
A process that stops cleanly removes its owner record, so that the runs it leaves behind are ended at the next
sweep of another process (or when the embedded platform starts again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.engine import CursorResult

from nexent.core.db import utcnow
from nexent.engines.container import Engines
from nexent.runtime.ending import end_elsewhere
from nexent.runtime.event_types import RunFailed
from nexent.runtime.models import Run, RunOwner, RunStatus

logger = logging.getLogger("nexent.runtime")

LOST_CODE = "worker_lost"
LOST_MESSAGE = "The process executing this run stopped; the run was ended without an answer."
_UNFINISHED = [RunStatus.QUEUED.value, RunStatus.RUNNING.value]
_SWEEP_BATCH = 200
_FORGET_AFTER_LOST = 10  # owner records silent for this many `lost` periods, with no unfinished run, are deleted


class RunOwnership:
    """This process as the owner of the runs it executes: its heartbeat, and the sweep of lost owners' runs."""

    def __init__(self, engines: Engines, *, on_lost: Callable[[], None] | None = None) -> None:
        self.engines = engines
        self.id = uuid.uuid4()
        self.heartbeat_seconds = engines.settings.run_heartbeat_seconds
        self.lost_seconds = engines.settings.run_owner_lost_seconds
        self.on_lost = on_lost
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Register this process (before it accepts any run) and start beating."""
        await self._register()
        self._task = asyncio.create_task(self._beat_forever(), name="nexent-run-owner")

    async def close(self) -> None:
        """Stop beating and remove this owner: runs it leaves unfinished are ended by the next sweep elsewhere."""
        if self._task is None:  # never registered
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        try:
            async with self.engines.sessions() as session, session.begin():
                await session.execute(delete(RunOwner).where(RunOwner.id == self.id))
        except Exception:
            logger.warning("could not remove this process's run owner record", exc_info=True)

    async def _register(self) -> None:
        now = utcnow()
        async with self.engines.sessions() as session, session.begin():
            await session.execute(
                insert(RunOwner).values(
                    id=self.id, host=socket.gethostname()[:255], pid=os.getpid(), started_at=now, heartbeat_at=now
                )
            )

    async def _beat_forever(self) -> None:
        while True:
            # Spread out, so that processes started together do not all sweep at the same moment.
            await asyncio.sleep(self.heartbeat_seconds * random.uniform(0.8, 1.2))  # noqa: S311 - not a secret
            try:
                await self.beat()
            except Exception:
                logger.warning("could not write this process's heartbeat", exc_info=True)
            try:
                await self.sweep()
            except Exception:
                logger.warning("could not look for runs of lost processes", exc_info=True)

    async def beat(self) -> None:
        """Refresh the heartbeat. A heartbeat found older than `lost_seconds` (or gone) means other processes may
        have ended this process's runs already: they are stopped here, and the owner starts afresh."""
        now = utcnow()
        fresh = RunOwner.heartbeat_at >= now - timedelta(seconds=self.lost_seconds)
        async with self.engines.sessions() as session, session.begin():
            result = await session.execute(
                update(RunOwner).where(RunOwner.id == self.id, fresh).values(heartbeat_at=now)
            )
            alive = _rowcount(result) == 1
            if not alive:
                await session.execute(delete(RunOwner).where(RunOwner.id == self.id))
        if alive:
            return
        logger.error("this process was taken for lost (no heartbeat for too long); its runs were ended elsewhere")
        if self.on_lost is not None:
            self.on_lost()
        await self._register()

    async def sweep(self) -> int:
        """End the unfinished runs of lost owners; returns how many this process ended."""
        now = utcnow()
        cutoff = now - timedelta(seconds=self.lost_seconds)
        owner_alive = exists().where(RunOwner.id == Run.owner_id, RunOwner.heartbeat_at >= cutoff)
        query = (
            select(Run.tenant_id, Run.id)
            .where(Run.status.in_(_UNFINISHED), Run.owner_id.is_not(None), Run.owner_id != self.id, ~owner_alive)
            .limit(_SWEEP_BATCH)
        )
        async with self.engines.sessions() as session:
            lost = (await session.execute(query)).all()
        ended = 0
        for tenant_id, run_id in lost:
            try:
                ended += await self.end_lost_run(tenant_id, run_id)
            except Exception:
                logger.warning("could not end a run of a lost process", extra={"run_id": str(run_id)}, exc_info=True)
        if ended:
            logger.warning("ended runs of lost processes", extra={"count": ended})
        await self._forget_old_owners(now)
        return ended

    async def end_lost_run(self, tenant_id: uuid.UUID, run_id: uuid.UUID) -> bool:
        """End one run as `worker_lost`, unless it has ended meanwhile (or another process ended it first)."""
        event = RunFailed(code=LOST_CODE, message=LOST_MESSAGE)
        fields = {"error_code": LOST_CODE, "error_message": LOST_MESSAGE}
        return await end_elsewhere(self.engines, tenant_id, run_id, event, **fields) is not None

    async def _forget_old_owners(self, now: datetime) -> None:
        long_ago = now - timedelta(seconds=self.lost_seconds * _FORGET_AFTER_LOST)
        owns_unfinished = exists().where(Run.owner_id == RunOwner.id, Run.status.in_(_UNFINISHED))
        async with self.engines.sessions() as session, session.begin():
            await session.execute(
                delete(RunOwner).where(RunOwner.heartbeat_at < long_ago, RunOwner.id != self.id, ~owns_unfinished)
            )


def _rowcount(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0
