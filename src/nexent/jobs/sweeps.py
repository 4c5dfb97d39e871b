"""Periodic recovery that the processes consuming jobs run: domains register sweeps that find work stuck in a
non-terminal state past a deadline (a document whose job is gone, say) and start it again, with
`@job_sweep("name")` in the modules every worker imports (`jobs/registry.py`). The same beat samples the queue's
depth for `nexent_jobs_queue_depth`.

Sweeps run in every consuming process at once, so each must claim what it resumes with a conditional update.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from nexent.jobs.metrics import set_queue_depth
from nexent.jobs.repository import JobRepository

if TYPE_CHECKING:
    from nexent.engines.container import Engines

logger = logging.getLogger("nexent.jobs")

Sweep = Callable[["Engines"], Awaitable[int]]
"""Resumes stuck work; returns how many things it resumed."""

_sweeps: dict[str, Sweep] = {}


def job_sweep(name: str) -> Callable[[Sweep], Sweep]:
    """Register the decorated coroutine function as a sweep."""

    def register(func: Sweep) -> Sweep:
        existing = _sweeps.get(name)
        if existing is not None and existing is not func:
            raise ValueError(f"job sweep {name!r} is already registered")
        _sweeps[name] = func
        return func

    return register


async def sweep_once(engines: Engines) -> dict[str, int]:
    """Sample the queue's depth and run every sweep once; a failing sweep is logged and the others still run."""
    async with engines.sessions() as session:
        set_queue_depth(await JobRepository(session).unfinished_counts())
    resumed: dict[str, int] = {}
    for name, sweep in list(_sweeps.items()):
        try:
            resumed[name] = await sweep(engines)
        except Exception:
            logger.exception("job sweep failed; continuing", extra={"sweep": name})
            continue
        if resumed[name]:
            logger.warning("resumed stuck work", extra={"sweep": name, "count": resumed[name]})
    return resumed


async def sweep_forever(engines: Engines) -> None:
    """`sweep_once` every `job_sweep_seconds` (with jitter, so that several processes do not sweep in step)."""
    interval = engines.settings.job_sweep_seconds
    while True:
        await asyncio.sleep(interval * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not security
        try:
            await sweep_once(engines)
        except Exception:
            logger.exception("job sweep error; continuing")
