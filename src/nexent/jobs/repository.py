"""Queries on the job table. Claims are a conditional UPDATE, so two workers never run the same attempt, on
SQLite and PostgreSQL alike."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from nexent.core.db import utcnow
from nexent.jobs.models import FINISHED_STATUSES, Job, JobStatus


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Queued and due, or running under an expired lease (its worker died)."""
    return or_(
        and_(Job.status == JobStatus.QUEUED, Job.run_after <= now),
        and_(Job.status == JobStatus.RUNNING, Job.lease_expires_at < now, Job.attempts < Job.max_attempts),
    )


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        name: str,
        payload: dict[str, Any],
        *,
        tenant_id: uuid.UUID | None,
        max_attempts: int,
        delay_seconds: float,
    ) -> Job:
        """A queued job, due `delay_seconds` after the moment it is created (both stamped from one clock reading)."""
        now = utcnow()
        job = Job(
            name=name,
            payload=payload,
            tenant_id=tenant_id,
            max_attempts=max_attempts,
            created_at=now,
            run_after=now + timedelta(seconds=delay_seconds),
            status=JobStatus.QUEUED,
        )
        self.session.add(job)
        await self.session.flush()
        return job

    async def get(self, job_id: uuid.UUID) -> Job | None:
        return await self.session.get(Job, job_id, populate_existing=True)

    async def claimable_ids(self, limit: int) -> list[uuid.UUID]:
        now = utcnow()
        rows = await self.session.scalars(select(Job.id).where(_claimable(now)).order_by(Job.run_after).limit(limit))
        return list(rows)

    async def claim(self, job_id: uuid.UUID, *, worker: str, lease_seconds: float) -> bool:
        """Take the job for one attempt; False when another worker has it or it is not due."""
        now = utcnow()
        result = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, _claimable(now))
            .values(
                status=JobStatus.RUNNING,
                worker=worker,
                attempts=Job.attempts + 1,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                started_at=now,
            )
        )
        return _rowcount(result) == 1

    async def renew_lease(self, job_id: uuid.UUID, *, worker: str, lease_seconds: float) -> bool:
        result = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.worker == worker, Job.status == JobStatus.RUNNING)
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        )
        return _rowcount(result) == 1

    async def finish(
        self,
        job_id: uuid.UUID,
        *,
        worker: str,
        status: JobStatus,
        result: dict[str, Any] | None,
        error: str | None,
    ) -> bool:
        """Record the attempt's outcome, if this worker still holds the job."""
        outcome = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.worker == worker, Job.status == JobStatus.RUNNING)
            .values(status=status, result=result, error=error, finished_at=utcnow(), lease_expires_at=None)
        )
        return _rowcount(outcome) == 1

    async def retry_later(self, job_id: uuid.UUID, *, worker: str, error: str, delay_seconds: float) -> bool:
        outcome = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.worker == worker, Job.status == JobStatus.RUNNING)
            .values(
                status=JobStatus.QUEUED,
                error=error,
                lease_expires_at=None,
                run_after=utcnow() + timedelta(seconds=delay_seconds),
            )
        )
        return _rowcount(outcome) == 1

    async def fail_abandoned(self) -> int:
        """Fail jobs whose worker died on their last allowed attempt."""
        outcome = await self.session.execute(
            update(Job)
            .where(
                Job.status == JobStatus.RUNNING,
                Job.lease_expires_at < utcnow(),
                Job.attempts >= Job.max_attempts,
            )
            .values(
                status=JobStatus.FAILED,
                error="The worker stopped during the last allowed attempt.",
                finished_at=utcnow(),
                lease_expires_at=None,
            )
        )
        return _rowcount(outcome)

    async def stale_ids(self, *, queued_before: datetime, limit: int) -> list[uuid.UUID]:
        """Jobs that no worker has taken in time: queued long ago, or running under an expired lease."""
        now = utcnow()
        rows = await self.session.scalars(
            select(Job.id)
            .where(
                or_(
                    and_(Job.status == JobStatus.QUEUED, Job.run_after <= queued_before),
                    and_(
                        Job.status == JobStatus.RUNNING,
                        Job.lease_expires_at < now,
                        Job.attempts < Job.max_attempts,
                    ),
                )
            )
            .order_by(Job.run_after)
            .limit(limit)
        )
        return list(rows)

    async def unfinished_counts(self) -> dict[tuple[str, str], int]:
        """Jobs queued or running, by (name, status)."""
        rows = await self.session.execute(
            select(Job.name, Job.status, func.count())
            .where(Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
            .group_by(Job.name, Job.status)
        )
        return {(name, status): int(count) for name, status, count in rows}

    async def unfinished_payloads(self, name: str) -> list[dict[str, Any]]:
        """The payloads of the jobs called `name` that are queued or running."""
        rows = await self.session.scalars(
            select(Job.payload).where(Job.name == name, Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
        )
        return list(rows)

    async def delete_finished_before(self, before: datetime) -> int:
        outcome = await self.session.execute(
            delete(Job).where(Job.status.in_(list(FINISHED_STATUSES)), Job.finished_at < before)
        )
        return _rowcount(outcome)

    async def list_recent(self, *, status: str | None, limit: int) -> list[Job]:
        query = select(Job).order_by(Job.created_at.desc()).limit(limit)
        if status:
            query = query.where(Job.status == status)
        return list(await self.session.scalars(query))


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
