"""The Celery task that runs jobs; imported by `nexent worker` processes only.

Each worker process keeps one event loop and one set of engines for its whole life, so database connections
are reused across tasks.
"""

from __future__ import annotations

import asyncio
import uuid

from celery import shared_task

from nexent.engines.container import Engines, build_engines
from nexent.jobs.queue import build_queue
from nexent.jobs.queue.celery import RUN_JOB_TASK
from nexent.jobs.registry import load_job_modules
from nexent.jobs.service import run_job, worker_name
from nexent.settings import get_settings

_loop: asyncio.AbstractEventLoop | None = None
_engines: Engines | None = None


def _process_engines() -> tuple[asyncio.AbstractEventLoop, Engines]:
    global _loop, _engines
    if _loop is None:
        settings = get_settings()
        load_job_modules(settings.job_modules)
        _loop = asyncio.new_event_loop()
    if _engines is None:
        engines = build_engines(get_settings(), queue=build_queue, consume_jobs=False)
        try:
            _loop.run_until_complete(engines.start())
        except BaseException:
            _loop.run_until_complete(engines.close())  # the next task tries again with new engines
            raise
        _engines = engines
    return _loop, _engines


@shared_task(name=RUN_JOB_TASK)
def run_job_task(job_id: str) -> bool:
    """Run one attempt of the job, unless another worker holds it or it is finished."""
    loop, engines = _process_engines()
    return loop.run_until_complete(run_job(engines, uuid.UUID(job_id), worker=worker_name("celery")))
