"""Job handlers by name. Domains register handlers at import time with `@job_handler("name")`; worker
processes import the same modules, so a job enqueued anywhere runs anywhere."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nexent.engines.container import Engines

# Modules that define the platform's own handlers; `NEXENT_JOB_MODULES` adds more.
BUILTIN_JOB_MODULES = ("nexent.jobs.handlers", "nexent.runtime.jobs", "nexent.knowledge.jobs", "nexent.memory.jobs")


@dataclass(frozen=True)
class JobContext:
    """What a handler gets: its job, the attempt number (1-based) of `max_attempts`, and the process's engines."""

    job_id: uuid.UUID
    name: str
    payload: dict[str, Any]
    tenant_id: uuid.UUID | None
    attempt: int
    engines: Engines
    max_attempts: int = 1

    @property
    def last_attempt(self) -> bool:
        """Whether a failure now fails the job for good."""
        return self.attempt >= self.max_attempts


JobResult = dict[str, Any] | None
JobHandler = Callable[[JobContext], Awaitable[JobResult]]


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help (bad input, missing data): the job fails at once."""


_handlers: dict[str, JobHandler] = {}


def job_handler(name: str) -> Callable[[JobHandler], JobHandler]:
    """Register the decorated coroutine function as the handler of jobs called `name`."""

    def register(func: JobHandler) -> JobHandler:
        existing = _handlers.get(name)
        if existing is not None and existing is not func:
            raise ValueError(f"job handler {name!r} is already registered")
        _handlers[name] = func
        return func

    return register


def get_handler(name: str) -> JobHandler | None:
    return _handlers.get(name)


def load_job_modules(extra: Iterable[str] = ()) -> None:
    """Import the modules that register handlers."""
    for module in (*BUILTIN_JOB_MODULES, *extra):
        importlib.import_module(module)
