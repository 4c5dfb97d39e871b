"""The job queue as the process's engines hold it: a protocol only.

The implementations (an in-process worker pool, Celery) live in `nexent.jobs.queue`, since they run the jobs
domain's table and handlers; the container gets one from the factory its caller passes to `build_engines`, so
`nexent.engines` imports no domain.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class QueuedJob:
    """A job written in a caller's transaction, to be dispatched once that transaction is committed."""

    id: uuid.UUID
    name: str
    delay_seconds: float = 0


class JobQueue(Protocol):
    """Durable background work. A job's state lives in the database, so it survives restarts and crashed
    workers; some worker runs it, retrying failures.

    `add` writes a job in the caller's transaction (with the rows it works on), `dispatch` tells workers after the
    commit; a job whose dispatch never happened (the process died in between) is found in the table by the
    workers' polling (local) or the reaper (Celery). `enqueue` does both in a transaction of its own."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def add(
        self,
        session: AsyncSession,
        name: str,
        payload: dict[str, Any] | None = None,
        *,
        tenant_id: uuid.UUID | None = None,
        max_attempts: int = 3,
        delay_seconds: float = 0,
    ) -> QueuedJob: ...
    async def dispatch(self, jobs: Sequence[QueuedJob]) -> None: ...
    async def enqueue(
        self,
        name: str,
        payload: dict[str, Any] | None = None,
        *,
        tenant_id: uuid.UUID | None = None,
        max_attempts: int = 3,
        delay_seconds: float = 0,
    ) -> uuid.UUID: ...
    async def health(self) -> None: ...
