"""Prometheus metrics of background jobs: enqueued, started and finished by job name and outcome, attempt
durations, and the depth of the queue (sampled by the processes that consume jobs)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram

JOBS_ENQUEUED = Counter(
    "nexent_jobs_enqueued_total", "Jobs committed and dispatched to the workers by this process, by job name.", ["job"]
)
JOBS_STARTED = Counter("nexent_jobs_started_total", "Job attempts a worker claimed and started, by job name.", ["job"])
JOBS_FINISHED = Counter(
    "nexent_jobs_finished_total",
    "Job attempts that ended, by job name and outcome (succeeded, retried, failed).",
    ["job", "outcome"],
)
JOB_DURATION = Histogram(
    "nexent_job_duration_seconds",
    "Duration of one job attempt, by job name and outcome.",
    ["job", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
QUEUE_DEPTH = Gauge(
    "nexent_jobs_queue_depth",
    "Jobs not finished, by job name and status (queued, running), as last sampled by this process.",
    ["job", "status"],
    multiprocess_mode="mostrecent",  # Celery workers: the reaper's sample, not one series per process
)


def observe_finished(job: str, outcome: str, seconds: float) -> None:
    """Record the end of one attempt."""
    JOBS_FINISHED.labels(job, outcome).inc()
    JOB_DURATION.labels(job, outcome).observe(seconds)


def set_queue_depth(depth: Mapping[tuple[str, str], int]) -> None:
    """Replace the sampled depth: `{(job, status): count}`; label sets no longer present drop to zero."""
    for job, status in _sampled - set(depth):
        QUEUE_DEPTH.labels(job, status).set(0)
    for (job, status), count in depth.items():
        QUEUE_DEPTH.labels(job, status).set(count)
    _sampled.update(depth)


_sampled: set[tuple[str, str]] = set()
