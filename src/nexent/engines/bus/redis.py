"""Event bus on Redis: pub/sub for messages, keys for cancel flags and counters, Redis locks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from nexent.engines.bus.base import LockTimeout, Message, Subscription, cancel_channel

logger = logging.getLogger("nexent.bus")


class RedisBus:
    """One pub/sub connection per process, shared by all local subscribers of all channels."""

    def __init__(self, url: str, *, prefix: str = "nexent:") -> None:
        self._redis: aioredis.Redis = aioredis.Redis.from_url(url, decode_responses=True)
        self._prefix = prefix
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._subscribers: dict[str, set[asyncio.Queue[Message]]] = defaultdict(set)
        self._confirmations: dict[str, asyncio.Event] = {}
        self._subscription_lock = asyncio.Lock()
        self._has_subscriptions = asyncio.Event()

    async def start(self) -> None:
        self._pubsub = self._redis.pubsub()
        self._reader = asyncio.create_task(self._read_forever(), name="nexent-redis-bus-reader")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            await self._pubsub.aclose()
        await self._redis.aclose()

    def _key(self, name: str) -> str:
        return self._prefix + name

    async def publish(self, channel: str, message: Message) -> None:
        await self._redis.publish(self._key("ch:" + channel), json.dumps(message))

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        pubsub = self._require_started()
        queue: asyncio.Queue[Message] = asyncio.Queue()
        redis_channel = self._key("ch:" + channel)
        async with self._subscription_lock:
            first = not self._subscribers[redis_channel]
            self._subscribers[redis_channel].add(queue)
            if first:
                confirmed = self._confirmations[redis_channel] = asyncio.Event()
                await pubsub.subscribe(redis_channel)
                self._has_subscriptions.set()
                await asyncio.wait_for(confirmed.wait(), timeout=10)

        try:
            yield Subscription(queue)
        finally:
            async with self._subscription_lock:
                self._subscribers[redis_channel].discard(queue)
                if not self._subscribers[redis_channel]:
                    del self._subscribers[redis_channel]
                    await pubsub.unsubscribe(redis_channel)

    def _require_started(self) -> PubSub:
        if self._pubsub is None:
            raise RuntimeError("RedisBus.start() was not called")
        return self._pubsub

    async def _read_forever(self) -> None:
        pubsub = self._require_started()
        while True:
            if not pubsub.subscribed:
                self._has_subscriptions.clear()
                await self._has_subscriptions.wait()
                continue
            try:
                raw = await pubsub.get_message(ignore_subscribe_messages=False, timeout=1.0)
            except (ConnectionError, OSError, aioredis.ConnectionError):
                logger.warning("redis pub/sub connection lost; reconnecting", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if raw is not None:
                self._dispatch(raw)

    def _dispatch(self, raw: dict[str, Any]) -> None:
        channel = str(raw.get("channel"))
        kind = raw.get("type")
        if kind == "subscribe":
            event = self._confirmations.pop(channel, None)
            if event is not None:
                event.set()
            return
        if kind != "message":
            return
        for queue in list(self._subscribers.get(channel, ())):
            # Decoded once per subscriber, so no two subscribers share (and mutate) one object.
            try:
                queue.put_nowait(json.loads(raw["data"]))
            except (TypeError, ValueError):
                logger.warning("dropped a malformed bus message", extra={"channel": channel})
                return

    async def request_cancel(self, key: str, *, ttl_seconds: float = 3600) -> None:
        await self._redis.set(self._key("cancel:" + key), "1", px=int(ttl_seconds * 1000))
        await self.publish(cancel_channel(key), {"type": "cancel", "key": key})

    async def is_cancelled(self, key: str) -> bool:
        return bool(await self._redis.exists(self._key("cancel:" + key)))

    @asynccontextmanager
    async def lock(self, name: str, *, ttl_seconds: float = 30, wait_seconds: float = 10) -> AsyncIterator[None]:
        lock = self._redis.lock(self._key("lock:" + name), timeout=ttl_seconds, blocking_timeout=wait_seconds)
        if not await lock.acquire():
            raise LockTimeout(f"Lock {name!r} is held elsewhere; try again shortly.")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # expired meanwhile: nothing left to release
                await lock.release()

    async def hit(self, key: str, *, window_seconds: float) -> int:
        window = int(time.time() // window_seconds)
        redis_key = self._key(f"rate:{key}:{window}")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(redis_key)
            pipe.pexpire(redis_key, int(window_seconds * 1000) + 1000)
            count, _ = await pipe.execute()
        return int(count)

    async def health(self) -> None:
        await self._redis.ping()
