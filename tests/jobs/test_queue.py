"""Job queue conformance: the same behaviour from the in-process pool (SQLite and PostgreSQL), from separate
`nexent worker` processes in local mode, and from Celery workers on Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nexent.engines.container import Engines
from nexent.engines.queue import QueuedJob
from nexent.jobs.queue.base import UnknownJob
from nexent.jobs.schemas import JobInfo
from nexent.jobs.service import get_job
from nexent.settings import Settings
from tests.conftest import REDIS_URL, REPO_ROOT, PostgresDatabases, make_settings, started_engines, wait_until


@contextmanager
def worker_process(env: dict[str, str], log_path: Path, concurrency: int = 2) -> Iterator[subprocess.Popen[bytes]]:
    """`nexent worker` in its own process group, logging to `log_path`; stopped with SIGTERM (SIGKILL after 20 s)."""
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "nexent", "worker", "--concurrency", str(concurrency)],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield worker
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
                    worker.wait()


@dataclass
class QueueHarness:
    """A producer (engines that only enqueue) and a consumer that can be started, stopped and killed."""

    settings: Settings
    producer: Engines
    in_process: bool
    consumer_engines: Engines | None = None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log_dir: Path | None = None

    async def start_consumer(self) -> None:
        if self.in_process:
            self.consumer_engines = await started_engines(self.settings, consume_jobs=True, migrate=False)
            return
        assert self.log_dir is not None
        log = (self.log_dir / f"worker-{len(self.processes)}.log").open("wb")
        env = {**os.environ, **settings_env(self.settings), "PYTHONPATH": str(REPO_ROOT)}
        self.processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "nexent", "worker", "--concurrency", "2"],
                env=env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    async def kill_consumer(self) -> None:
        """SIGKILL the worker process and its children, as a crash or an OOM kill would. An in-process pool is
        stopped mid-job instead (its tasks cancelled, nothing recorded), as a server restart does."""
        if self.consumer_engines is not None:
            await self.consumer_engines.close()
            self.consumer_engines = None
            return
        process = self.processes[-1]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    async def stop(self) -> None:
        if self.consumer_engines is not None:
            await self.consumer_engines.close()
            self.consumer_engines = None
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()

    async def finished(self, job_id: uuid.UUID, timeout: float = 30) -> JobInfo:
        async def done() -> JobInfo | None:
            info = await get_job(self.producer, job_id)
            return info if info and info.status in ("succeeded", "failed") else None

        result: JobInfo = await wait_until(done, timeout=timeout, interval=0.1)
        return result


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process the same settings."""
    env = {
        "NEXENT_DATA_DIR": str(settings.data_dir),
        "NEXENT_DATABASE_URL": settings.resolved_database_url,
        "NEXENT_QUEUE_BACKEND": settings.queue_backend,
        "NEXENT_JOB_MODULES": ",".join(settings.job_modules),
        "NEXENT_JOB_LEASE_SECONDS": str(settings.job_lease_seconds),
        "NEXENT_JOB_POLL_SECONDS": str(settings.job_poll_seconds),
        "NEXENT_LOG_LEVEL": "INFO",
        "NEXENT_REDIS_URL": settings.redis_url,
        "NEXENT_REDIS_PREFIX": settings.redis_prefix,
        "NEXENT_CELERY_QUEUE": settings.celery_queue,
        "NEXENT_STORAGE_DIR": str(settings.resolved_storage_dir),
        "NEXENT_PRIVATE_ENDPOINTS_ALLOW": ",".join(settings.private_endpoints_allow),
    }
    return env


QUEUE_SHAPES = [
    "local-inprocess-sqlite",
    "local-inprocess-postgres",
    "local-process-postgres",
    "celery-postgres",
]


@pytest.fixture(params=QUEUE_SHAPES)
async def harness(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases, redis_prefix: str
) -> AsyncIterator[QueueHarness]:
    shape: str = request.param
    overrides: dict[str, Any] = {
        "job_lease_seconds": 2.0,
        "redis_url": REDIS_URL,
        "redis_prefix": redis_prefix,
    }
    if shape.endswith("postgres"):
        overrides["database_url"] = await pg_databases.create(migrated=True)
    if shape.startswith("celery"):
        overrides["queue_backend"] = "celery"
        overrides["celery_queue"] = f"nexent-test-{uuid.uuid4().hex[:8]}"
    settings = make_settings(tmp_path, **overrides)
    producer = await started_engines(settings, consume_jobs=False)
    harness = QueueHarness(settings, producer, in_process="inprocess" in shape, log_dir=tmp_path)
    yield harness
    await harness.stop()
    await producer.close()


async def test_a_job_runs_and_records_its_result(harness: QueueHarness) -> None:
    await harness.start_consumer()
    job_id = await harness.producer.queue.enqueue("test.echo", {"text": "héllo", "n": [1, 2]})
    info = await harness.finished(job_id)
    assert info.status == "succeeded"
    assert info.result == {"echo": {"text": "héllo", "n": [1, 2]}, "attempt": 1}
    assert info.attempts == 1 and info.error is None
    assert info.started_at is not None and info.finished_at is not None


async def test_a_job_can_use_the_workers_engines(harness: QueueHarness) -> None:
    await harness.start_consumer()
    job_id = await harness.producer.queue.enqueue("test.store", {"key": "jobs/out.txt", "text": "written by a job"})
    assert (await harness.finished(job_id)).status == "succeeded"
    assert await harness.producer.storage.get("jobs/out.txt") == b"written by a job"


async def test_a_job_committed_but_never_dispatched_still_runs(harness: QueueHarness) -> None:
    """`add` in the caller's transaction, then no `dispatch`, as when the process dies right after the commit:
    the polling workers (local) or the reaper (Celery) find the job in the table."""
    await harness.start_consumer()
    async with harness.producer.sessions() as session, session.begin():
        job = await harness.producer.queue.add(session, "test.echo", {"undispatched": True})
    info = await harness.finished(job.id)
    assert info.status == "succeeded" and info.result == {"echo": {"undispatched": True}, "attempt": 1}


async def test_a_job_added_in_a_rolled_back_transaction_never_exists(harness: QueueHarness) -> None:
    added: list[QueuedJob] = []

    async def add_then_fail() -> None:
        async with harness.producer.sessions() as session, session.begin():
            added.append(await harness.producer.queue.add(session, "test.echo"))
            raise LookupError("the caller's transaction fails after adding the job")

    with pytest.raises(LookupError):
        await add_then_fail()
    assert await get_job(harness.producer, added[0].id) is None


async def test_a_job_queued_while_no_worker_runs_waits_for_one(harness: QueueHarness) -> None:
    job_id = await harness.producer.queue.enqueue("test.echo", {"waited": True})
    info = await get_job(harness.producer, job_id)
    assert info is not None and info.status == "queued"
    await harness.start_consumer()
    assert (await harness.finished(job_id)).status == "succeeded"


async def test_a_failed_attempt_is_retried(harness: QueueHarness) -> None:
    await harness.start_consumer()
    job_id = await harness.producer.queue.enqueue("test.fail_once")
    info = await harness.finished(job_id)
    assert (info.status, info.attempts, info.result) == ("succeeded", 2, {"attempt": 2})


async def test_a_job_fails_after_its_last_attempt_with_the_error(harness: QueueHarness) -> None:
    await harness.start_consumer()
    job_id = await harness.producer.queue.enqueue("test.always_fail", max_attempts=2)
    info = await harness.finished(job_id)
    assert (info.status, info.attempts) == ("failed", 2)
    assert info.error == "RuntimeError: attempt 2 failed"


async def test_a_permanent_error_is_not_retried(harness: QueueHarness) -> None:
    await harness.start_consumer()
    job_id = await harness.producer.queue.enqueue("test.permanent", max_attempts=5)
    info = await harness.finished(job_id)
    assert (info.status, info.attempts) == ("failed", 1)
    assert info.error == "PermanentJobError: the payload can never work"


async def test_a_delayed_job_does_not_start_early(harness: QueueHarness) -> None:
    await harness.start_consumer()
    job_id = await harness.producer.queue.enqueue("test.echo", delay_seconds=1.5)
    info = await harness.finished(job_id)
    assert info.status == "succeeded"
    assert info.started_at is not None
    assert (info.started_at - info.created_at).total_seconds() >= 1.4


async def test_many_jobs_each_run_exactly_once(harness: QueueHarness) -> None:
    await harness.start_consumer()
    ids = [await harness.producer.queue.enqueue("test.echo", {"i": i}) for i in range(20)]
    infos = [await harness.finished(job_id) for job_id in ids]
    assert [info.result["echo"]["i"] for info in infos if info.result] == list(range(20))
    assert all(info.attempts == 1 for info in infos)


async def test_unknown_job_names_are_refused_at_enqueue(harness: QueueHarness) -> None:
    with pytest.raises(UnknownJob):
        await harness.producer.queue.enqueue("test.no_such_job")
    assert await get_job(harness.producer, uuid.uuid4()) is None


async def test_a_killed_or_restarted_worker_loses_no_job(harness: QueueHarness, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    await harness.start_consumer()
    job_id = await harness.producer.queue.enqueue("test.slow_first", {"marker": str(marker)})

    async def started() -> bool:
        return marker.exists()

    await wait_until(started, timeout=30)
    await harness.kill_consumer()
    info = await get_job(harness.producer, job_id)
    assert info is not None and info.status == "running"

    await harness.start_consumer()
    info = await harness.finished(job_id, timeout=60)
    assert (info.status, info.attempts, info.result) == ("succeeded", 2, {"attempt": 2})


async def test_queue_health(harness: QueueHarness) -> None:
    await harness.producer.queue.health()
