"""Job queue on Celery with a Redis broker (distributed shape).

The job table stays the source of truth: the broker message carries only the job id, and the worker claims the
job in the database before it runs it. A reaper re-sends jobs that no worker took in time or whose worker died,
so a lost message or a killed worker delays a job but never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery import Celery

from nexent.core.db import utcnow
from nexent.jobs.queue.base import DatabaseJobs
from nexent.jobs.repository import JobRepository
from nexent.jobs.sweeps import sweep_forever

if TYPE_CHECKING:
    from nexent.engines.container import Engines
    from nexent.settings import Settings

logger = logging.getLogger("nexent.jobs")

RUN_JOB_TASK = "nexent.run_job"


def create_celery(settings: Settings) -> Celery:
    """The Celery app both the enqueuing side and `nexent worker` use."""
    app = Celery("nexent", broker=settings.resolved_broker_url, include=["nexent.jobs.queue.celery_worker"])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=settings.celery_queue,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": max(3600, int(settings.job_lease_seconds * 4))},
        worker_hijack_root_logger=False,
        enable_utc=True,
    )
    return app


class CeleryQueue(DatabaseJobs):
    def __init__(self, engines: Engines, *, run_reaper: bool = True) -> None:
        super().__init__(engines.sessions)
        self.engines = engines
        self.celery = create_celery(engines.settings)
        self.run_reaper = run_reaper
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self.run_reaper:  # the reaper's processes also resume stuck work (`jobs/sweeps.py`)
            self._tasks.append(asyncio.create_task(self._reap_forever(), name="nexent-job-reaper"))
            self._tasks.append(asyncio.create_task(sweep_forever(self.engines), name="nexent-job-sweeper"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await asyncio.to_thread(self.celery.close)

    async def _dispatch(self, job_id: uuid.UUID, delay_seconds: float) -> None:
        await asyncio.to_thread(self._send, job_id, delay_seconds)

    def _send(self, job_id: uuid.UUID, delay_seconds: float) -> None:
        options: dict[str, Any] = {"countdown": delay_seconds} if delay_seconds > 0 else {}
        self.celery.send_task(RUN_JOB_TASK, args=[str(job_id)], **options)

    async def reap(self) -> int:
        """Fail jobs that died on their last attempt and re-send those no worker holds. Returns re-sent count."""
        lease = self.engines.settings.job_lease_seconds
        async with self.sessions() as session, session.begin():
            repo = JobRepository(session)
            await repo.fail_abandoned()
            stale = await repo.stale_ids(queued_before=utcnow() - timedelta(seconds=lease), limit=500)
        for job_id in stale:
            await self._dispatch(job_id, 0)
        if stale:
            logger.info("re-sent stale jobs", extra={"count": len(stale)})
        return len(stale)

    async def _reap_forever(self) -> None:
        interval = max(self.engines.settings.job_lease_seconds / 2, 0.5)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reap()
            except Exception:
                logger.exception("job reaper error; continuing")

    async def health(self) -> None:
        def check() -> None:
            with self.celery.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)

        await asyncio.to_thread(check)
