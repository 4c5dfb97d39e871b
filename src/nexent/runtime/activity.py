"""How many runs this process is executing, so that the runtime's background work can wait for a quiet moment
instead of competing with runs for the CPU and the database."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

_executing = 0


def executing_runs() -> int:
    return _executing


@contextlib.contextmanager
def executing_run() -> Iterator[None]:
    global _executing
    _executing += 1
    try:
        yield
    finally:
        _executing -= 1


async def quiet(max_wait: float, *, poll: float = 0.25) -> None:
    """Return once no run executes in this process, or after `max_wait` seconds."""
    deadline = time.monotonic() + max_wait
    # Polling (a few times a second, only while runs execute): an asyncio.Event would be bound to one loop.
    while _executing and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(poll)
