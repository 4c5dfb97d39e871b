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

from nexent.engines.queue.base import DatabaseJobs
from nexent.jobs.repository import JobRepository
from nexent.jobs.service import run_job, worker_name

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

    async def start(self) -> None:
        for index in range(self.workers):
            name = worker_name(f"local{index}")
            self._tasks.append(asyncio.create_task(self._work(name), name=f"nexent-job-worker-{index}"))

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
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=poll)

    async def _run_next(self, worker: str) -> bool:
        async with self.sessions() as session, session.begin():
            repo = JobRepository(session)
            await repo.fail_abandoned()
            candidates = await repo.claimable_ids(limit=self.workers + 1)
        for job_id in candidates:
            if await run_job(self.engines, job_id, worker=worker):
                return True
        return False

    async def health(self) -> None:
        if any(task.done() for task in self._tasks):
            raise RuntimeError("a job worker task has stopped")
