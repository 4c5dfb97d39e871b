"""In-process job queue (embedded default): a pool of asyncio workers over the job table.

Several processes may share one database (the server and `nexent worker`); claims are atomic, and a job whose
worker died is claimed again once its lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import TYPE_CHECKING

from nexent.jobs.queue.base import DatabaseJobs
from nexent.jobs.repository import JobRepository
from nexent.jobs.service import run_job, worker_name
from nexent.jobs.sweeps import sweep_forever

if TYPE_CHECKING:
    from nexent.engines.container import Engines

logger = logging.getLogger("nexent.jobs")


class LocalQueue(DatabaseJobs):
    def __init__(self, engines: Engines, *, workers: int) -> None:
        super().__init__(engines.sessions)
        self.engines = engines
        self.workers = workers
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._poller: str | None = None  # the idle worker that polls

    async def start(self) -> None:
        for index in range(self.workers):
            name = worker_name(f"local{index}")
            self._tasks.append(asyncio.create_task(self._work(name), name=f"nexent-job-worker-{index}"))
        if self.workers:  # a process that runs jobs also resumes stuck work (`jobs/sweeps.py`)
            self._tasks.append(asyncio.create_task(sweep_forever(self.engines), name="nexent-job-sweeper"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _dispatch(self, job_id: uuid.UUID, delay_seconds: float) -> None:
        self._wake.set()

    async def _work(self, worker: str) -> None:
        """Run jobs while there are any. Of the idle workers only one polls the table (for jobs of other processes
        and delayed ones); the others sleep until a job is enqueued here, or the poller finds more than it can
        take or takes a job itself (then another idle worker polls)."""
        poll = self.engines.settings.job_poll_seconds
        while True:
            try:
                ran = await self._run_next(worker)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("job worker error; continuing")
                ran = False
            if not ran:
                self._wake.clear()
                if self._poller in (None, worker):
                    self._poller = worker
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=poll)
                else:
                    await self._wake.wait()

    async def _run_next(self, worker: str) -> bool:
        async with self.sessions() as session, session.begin():
            repo = JobRepository(session)
            await repo.fail_abandoned()
            candidates = await repo.claimable_ids(limit=self.workers + 1)
        if len(candidates) > 1:
            self._wake.set()  # more work than this worker: wake the sleeping ones
        for job_id in candidates:
            if self._poller == worker:  # busy for a while: an idle worker polls instead
                self._poller = None
                self._wake.set()
            if await run_job(self.engines, job_id, worker=worker):
                return True
        return False

    async def health(self) -> None:
        if any(task.done() for task in self._tasks):
            raise RuntimeError("a job worker task has stopped")
