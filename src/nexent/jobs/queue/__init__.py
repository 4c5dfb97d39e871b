"""The job queue engines: an in-process worker pool over the job table (embedded default) and Celery workers
(distributed). `build_queue` is the factory `nexent.engines.container.build_engines` takes."""

from __future__ import annotations

from nexent.engines.container import Engines
from nexent.engines.queue import JobQueue


def build_queue(engines: Engines, consume_jobs: bool) -> JobQueue:
    """The queue the settings choose. `consume_jobs=False`: one that only enqueues (no workers, no reaper)."""
    settings = engines.settings
    if settings.queue_backend == "celery":
        from nexent.jobs.queue.celery import CeleryQueue

        return CeleryQueue(engines, run_reaper=consume_jobs)
    from nexent.jobs.queue.local import LocalQueue

    return LocalQueue(engines, workers=settings.queue_workers if consume_jobs else 0)
