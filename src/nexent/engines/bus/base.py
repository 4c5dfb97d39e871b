"""Event bus protocol: publish/subscribe, cancel signals, named locks and rate-limit counters."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from nexent.core.errors import AppError

Message = dict[str, Any]


class Subscription:
    """Messages of one subscriber. Cancelling a wait (a timeout, a closed client) loses nothing: the next
    `anext` resumes with the next message."""

    def __init__(self, queue: asyncio.Queue[Message]) -> None:
        self._queue = queue

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        return await self._queue.get()


class LockTimeout(AppError):
    status, code = 409, "lock_timeout"


class EventBus(Protocol):
    """How processes tell each other things. Messages are JSON objects; a subscriber receives the messages
    published on its channel after `subscribe` returned, in order, at most once."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, channel: str, message: Message) -> None: ...
    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Subscription]: ...
    async def request_cancel(self, key: str, *, ttl_seconds: float = 3600) -> None:
        """Raise the cancel flag for `key` and publish `{"type": "cancel"}` on `cancel_channel(key)`."""
        ...

    async def is_cancelled(self, key: str) -> bool: ...
    def lock(
        self, name: str, *, ttl_seconds: float = 30, wait_seconds: float = 10
    ) -> AbstractAsyncContextManager[None]:
        """Hold a named lock across processes; raise `LockTimeout` after `wait_seconds`. The lock expires
        after `ttl_seconds` if its holder dies."""
        ...

    async def hit(self, key: str, *, window_seconds: float) -> int:
        """Count one hit on `key` in the current fixed window and return the window's count."""
        ...

    async def health(self) -> None: ...


def cancel_channel(key: str) -> str:
    return f"cancel:{key}"
