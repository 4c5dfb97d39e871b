"""In-process event bus (embedded default)."""

from __future__ import annotations

import asyncio
import copy
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from nexent.engines.bus.base import LockTimeout, Message, Subscription, cancel_channel


class LocalBus:
    """Everything lives in this process's memory; correct for one process, which is the embedded shape."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Message]]] = defaultdict(set)
        self._cancelled: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._windows: dict[str, tuple[int, int]] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._subscribers.clear()

    async def publish(self, channel: str, message: Message) -> None:
        for queue in list(self._subscribers.get(channel, ())):
            # Each subscriber gets its own copy, as it would over the network.
            queue.put_nowait(copy.deepcopy(message))

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        queue: asyncio.Queue[Message] = asyncio.Queue()
        self._subscribers[channel].add(queue)

        try:
            yield Subscription(queue)
        finally:
            self._subscribers[channel].discard(queue)
            if not self._subscribers[channel]:
                del self._subscribers[channel]

    async def request_cancel(self, key: str, *, ttl_seconds: float = 3600) -> None:
        self._cancelled[key] = time.monotonic() + ttl_seconds
        await self.publish(cancel_channel(key), {"type": "cancel", "key": key})

    async def is_cancelled(self, key: str) -> bool:
        expires = self._cancelled.get(key)
        if expires is None:
            return False
        if expires < time.monotonic():
            del self._cancelled[key]
            return False
        return True

    @asynccontextmanager
    async def lock(self, name: str, *, ttl_seconds: float = 30, wait_seconds: float = 10) -> AsyncIterator[None]:
        lock = self._locks[name]
        try:
            await asyncio.wait_for(lock.acquire(), timeout=wait_seconds)
        except TimeoutError:
            raise LockTimeout(f"Lock {name!r} is held elsewhere; try again shortly.") from None
        try:
            yield
        finally:
            lock.release()

    async def hit(self, key: str, *, window_seconds: float) -> int:
        window = int(time.time() // window_seconds)
        current_window, count = self._windows.get(key, (window, 0))
        count = count + 1 if current_window == window else 1
        self._windows[key] = (window, count)
        return count

    async def health(self) -> None:
        return None
