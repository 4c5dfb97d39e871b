"""Background job queue protocol and the database-backed part both engines share."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from nexent.core.db import utcnow
from nexent.jobs.registry import get_handler
from nexent.jobs.repository import JobRepository
from nexent.jobs.schemas import JobInfo


class UnknownJob(ValueError):
    """Enqueued a job name that no handler is registered for."""


class JobQueue(Protocol):
    """Durable background work. A job's state lives in the database, so it survives restarts and crashed
    workers: `enqueue` returns once the job is stored, and some worker runs it, retrying failures."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def enqueue(
        self,
        name: str,
        payload: dict[str, Any] | None = None,
        *,
        tenant_id: uuid.UUID | None = None,
        max_attempts: int = 3,
        delay_seconds: float = 0,
    ) -> uuid.UUID: ...
    async def get(self, job_id: uuid.UUID) -> JobInfo | None: ...
    async def health(self) -> None: ...


class DatabaseJobs(ABC):
    """Storing and reading jobs; subclasses decide how workers hear about new ones (`_dispatch`)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def enqueue(
        self,
        name: str,
        payload: dict[str, Any] | None = None,
        *,
        tenant_id: uuid.UUID | None = None,
        max_attempts: int = 3,
        delay_seconds: float = 0,
    ) -> uuid.UUID:
        if get_handler(name) is None:
            raise UnknownJob(f"no job handler is registered for {name!r}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        async with self.sessions() as session, session.begin():
            job = await JobRepository(session).add(
                name,
                payload or {},
                tenant_id=tenant_id,
                max_attempts=max_attempts,
                run_after=utcnow() + timedelta(seconds=delay_seconds),
            )
            job_id = job.id
        await self._dispatch(job_id, delay_seconds)
        return job_id

    async def get(self, job_id: uuid.UUID) -> JobInfo | None:
        async with self.sessions() as session:
            job = await JobRepository(session).get(job_id)
            return JobInfo.model_validate(job) if job else None

    @abstractmethod
    async def _dispatch(self, job_id: uuid.UUID, delay_seconds: float) -> None:
        """Tell workers that the stored job is waiting."""
