"""The database-backed part both queue engines share: jobs are rows of the job table, written in the caller's
transaction; the engines differ only in how workers hear about them (`_dispatch`)."""

from __future__ import annotations

import logging
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from nexent.core.tracing import with_trace
from nexent.engines.queue import QueuedJob
from nexent.jobs.metrics import JOBS_ENQUEUED
from nexent.jobs.registry import get_handler
from nexent.jobs.repository import JobRepository

logger = logging.getLogger("nexent.jobs")

# Test-only: a process with this variable set exits (status 70) right after a commit that stored jobs and before
# it dispatches them, as a crash at that moment would (tests/jobs/test_no_lost_jobs.py).
EXIT_BEFORE_DISPATCH_ENV = "NEXENT_TEST_EXIT_BEFORE_DISPATCH"


class UnknownJob(ValueError):
    """Enqueued a job name that no handler is registered for."""


class DatabaseJobs(ABC):
    """Storing jobs; subclasses decide how workers hear about new ones (`_dispatch`)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def add(
        self,
        session: AsyncSession,
        name: str,
        payload: dict[str, Any] | None = None,
        *,
        tenant_id: uuid.UUID | None = None,
        max_attempts: int = 3,
        delay_seconds: float = 0,
    ) -> QueuedJob:
        if get_handler(name) is None:
            raise UnknownJob(f"no job handler is registered for {name!r}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        job = await JobRepository(session).add(
            name,
            with_trace(payload or {}),  # the job's spans join the caller's trace, in whichever process runs it
            tenant_id=tenant_id,
            max_attempts=max_attempts,
            delay_seconds=delay_seconds,
        )
        return QueuedJob(job.id, name, delay_seconds)

    async def dispatch(self, jobs: Sequence[QueuedJob]) -> None:
        if not jobs:
            return
        if os.environ.get(EXIT_BEFORE_DISPATCH_ENV):
            logger.warning("exiting before dispatch (test hook)", extra={"jobs": len(jobs)})
            os._exit(70)
        for job in jobs:
            JOBS_ENQUEUED.labels(job.name).inc()  # committed by now: a rolled back job is never counted
            await self._dispatch(job.id, job.delay_seconds)

    async def enqueue(
        self,
        name: str,
        payload: dict[str, Any] | None = None,
        *,
        tenant_id: uuid.UUID | None = None,
        max_attempts: int = 3,
        delay_seconds: float = 0,
    ) -> uuid.UUID:
        async with self.sessions() as session, session.begin():
            job = await self.add(
                session, name, payload, tenant_id=tenant_id, max_attempts=max_attempts, delay_seconds=delay_seconds
            )
        await self.dispatch([job])
        return job.id

    @abstractmethod
    async def _dispatch(self, job_id: uuid.UUID, delay_seconds: float) -> None:
        """Tell workers that the stored job is waiting."""
