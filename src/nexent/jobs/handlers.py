"""The platform's own maintenance jobs."""

from __future__ import annotations

from datetime import timedelta

from nexent.core.db import utcnow
from nexent.jobs.registry import JobContext, JobResult, PermanentJobError, job_handler
from nexent.jobs.repository import JobRepository

PURGE_JOBS = "maintenance.purge_jobs"


@job_handler(PURGE_JOBS)
async def purge_finished_jobs(ctx: JobContext) -> JobResult:
    """Delete finished jobs older than `older_than_days` (default 30)."""
    days = ctx.payload.get("older_than_days", 30)
    if not isinstance(days, int | float) or isinstance(days, bool) or days < 0:
        raise PermanentJobError("older_than_days must be a non-negative number")
    async with ctx.engines.sessions() as session, session.begin():
        deleted = await JobRepository(session).delete_finished_before(utcnow() - timedelta(days=days))
    return {"deleted": deleted}
