"""Running one job attempt: claim, call the handler under a renewed lease, record the outcome.

Both queue engines call `run_job`; they differ only in how a worker learns that a job is waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any

from nexent.core import tracing
from nexent.core.logging import describe_database_error, is_database_error
from nexent.jobs.metrics import JOBS_STARTED, observe_finished
from nexent.jobs.models import JobStatus
from nexent.jobs.registry import JobContext, PermanentJobError, get_handler
from nexent.jobs.repository import JobRepository
from nexent.jobs.schemas import JobInfo

if TYPE_CHECKING:
    from nexent.engines.container import Engines

logger = logging.getLogger("nexent.jobs")

_MAX_ERROR_LENGTH = 4000
_MAX_RETRY_DELAY_SECONDS = 300.0


def worker_name(suffix: str = "") -> str:
    """An id for this worker that is unique across hosts and processes."""
    return f"{socket.gethostname()}:{os.getpid()}:{suffix or uuid.uuid4().hex[:8]}"


def retry_delay(attempt: int) -> float:
    """Exponential backoff between attempts: 1 s, 2 s, 4 s, ... capped at five minutes."""
    return float(min(2 ** (attempt - 1), _MAX_RETRY_DELAY_SECONDS))


async def get_job(engines: Engines, job_id: uuid.UUID) -> JobInfo | None:
    """A job's state, or None when there is no such job."""
    async with engines.sessions() as session:
        job = await JobRepository(session).get(job_id)
        return JobInfo.model_validate(job) if job else None


async def unfinished_payloads(engines: Engines, name: str) -> list[dict[str, Any]]:
    """The payloads of the jobs called `name` still queued or running (for sweeps: is some job on it?)."""
    async with engines.sessions() as session:
        return await JobRepository(session).unfinished_payloads(name)


async def run_job(engines: Engines, job_id: uuid.UUID, *, worker: str) -> bool:
    """Run one attempt of the job if it can be claimed. Returns whether this worker ran it."""
    lease = engines.settings.job_lease_seconds
    async with engines.sessions() as session, session.begin():
        repo = JobRepository(session)
        if not await repo.claim(job_id, worker=worker, lease_seconds=lease):
            return False
        job = await repo.get(job_id)
        assert job is not None
        payload = dict(job.payload)
        parent = payload.pop(tracing.TRACE_KEY, None)  # the trace of whoever queued it (`tracing.with_trace`)
        context = JobContext(
            job_id=job.id,
            name=job.name,
            payload=payload,
            tenant_id=job.tenant_id,
            attempt=job.attempts,
            engines=engines,
            max_attempts=job.max_attempts,
        )
        max_attempts = job.max_attempts

    log_extra = {"job_id": str(job_id), "job": context.name, "attempt": context.attempt}
    handler = get_handler(context.name)
    if handler is None:
        await _record(engines, job_id, worker, JobStatus.FAILED, None, f"No handler for job {context.name!r}.")
        logger.error("job has no handler", extra=log_extra)
        return True

    JOBS_STARTED.labels(context.name).inc()
    started = time.perf_counter()
    outcome = "failed"
    renewer = asyncio.create_task(_renew_lease(engines, job_id, worker, lease))
    attributes = {"nexent.job.id": str(job_id), "nexent.job.name": context.name, "nexent.job.attempt": context.attempt}
    job_span = tracing.span(f"job {context.name}", attributes, parent=parent if isinstance(parent, dict) else None)
    try:
        with job_span:
            result = await handler(context)
    except PermanentJobError as exc:
        await _record(engines, job_id, worker, JobStatus.FAILED, None, _describe(exc))
        logger.warning("job failed permanently", extra=log_extra)
    except Exception as exc:
        if context.attempt < max_attempts:
            async with engines.sessions() as session, session.begin():
                await JobRepository(session).retry_later(
                    job_id, worker=worker, error=_describe(exc), delay_seconds=retry_delay(context.attempt)
                )
            outcome = "retried"
            logger.warning("job attempt failed; will retry", extra=log_extra, exc_info=exc)
        else:
            await _record(engines, job_id, worker, JobStatus.FAILED, None, _describe(exc))
            logger.error("job failed after its last attempt", extra=log_extra, exc_info=exc)
    else:
        await _record(engines, job_id, worker, JobStatus.SUCCEEDED, result, None)
        outcome = "succeeded"
        logger.info("job succeeded", extra=log_extra)
    finally:
        observe_finished(context.name, outcome, time.perf_counter() - started)
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
    return True


async def _record(
    engines: Engines,
    job_id: uuid.UUID,
    worker: str,
    status: JobStatus,
    result: dict[str, object] | None,
    error: str | None,
) -> None:
    async with engines.sessions() as session, session.begin():
        recorded = await JobRepository(session).finish(job_id, worker=worker, status=status, result=result, error=error)
    if not recorded:
        logger.warning("job outcome not recorded: the lease was lost to another worker", extra={"job_id": str(job_id)})


async def _renew_lease(engines: Engines, job_id: uuid.UUID, worker: str, lease: float) -> None:
    while True:
        await asyncio.sleep(lease / 3)
        try:
            async with engines.sessions() as session, session.begin():
                await JobRepository(session).renew_lease(job_id, worker=worker, lease_seconds=lease)
        except Exception:
            logger.warning("could not renew a job lease", extra={"job_id": str(job_id)}, exc_info=True)


def _describe(exc: BaseException) -> str:
    if is_database_error(exc):  # its message may quote the values of its statement
        return describe_database_error(exc)[:_MAX_ERROR_LENGTH]
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:_MAX_ERROR_LENGTH]
