"""Event bus conformance: in-process and Redis. For Redis, publisher and subscriber are separate instances
(separate connections), as two processes would be."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from nexent.engines.bus.base import EventBus, LockTimeout, Message, cancel_channel
from nexent.engines.bus.local import LocalBus
from nexent.engines.bus.redis import RedisBus
from tests.conftest import REDIS_URL


@dataclass
class BusPair:
    """Two views of one bus: `a` and `b` are different processes' instances (the same one for local)."""

    a: EventBus
    b: EventBus
    distributed: bool


@pytest.fixture(params=["local", "redis"])
async def buses(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[BusPair]:
    if request.param == "local":
        bus = LocalBus()
        await bus.start()
        yield BusPair(bus, bus, distributed=False)
        await bus.close()
        return
    a, b = RedisBus(REDIS_URL, prefix=redis_prefix), RedisBus(REDIS_URL, prefix=redis_prefix)
    await a.start()
    await b.start()
    yield BusPair(a, b, distributed=True)
    await a.close()
    await b.close()


async def take(messages: AsyncIterator[Message], count: int, timeout: float = 5.0) -> list[Message]:
    async def collect() -> list[Message]:
        return [await anext(messages) for _ in range(count)]

    return await asyncio.wait_for(collect(), timeout)


async def nothing_arrives(messages: AsyncIterator[Message], wait: float = 0.3) -> bool:
    try:
        await asyncio.wait_for(anext(messages), wait)
    except TimeoutError:
        return True
    return False


async def test_messages_arrive_in_order(buses: BusPair) -> None:
    async with buses.b.subscribe("run:1") as messages:
        for seq in range(50):
            await buses.a.publish("run:1", {"seq": seq, "text": "héllo"})
        received = await take(messages, 50)
    assert received == [{"seq": seq, "text": "héllo"} for seq in range(50)]


async def test_every_subscriber_gets_every_message_and_channels_are_separate(buses: BusPair) -> None:
    async with (
        buses.b.subscribe("room") as first,
        buses.b.subscribe("room") as second,
        buses.a.subscribe("other") as other,
    ):
        await buses.a.publish("room", {"n": 1})
        assert await take(first, 1) == [{"n": 1}]
        assert await take(second, 1) == [{"n": 1}]
        assert await nothing_arrives(other)


async def test_no_delivery_before_subscribe_or_after_leaving(buses: BusPair) -> None:
    await buses.a.publish("late", {"n": 0})
    async with buses.b.subscribe("late") as messages:
        await buses.a.publish("late", {"n": 1})
        assert await take(messages, 1) == [{"n": 1}]
    async with buses.b.subscribe("late") as messages:
        assert await nothing_arrives(messages)
        await buses.a.publish("late", {"n": 2})
        assert await take(messages, 1) == [{"n": 2}]


async def test_subscribers_do_not_share_mutations(buses: BusPair) -> None:
    async with buses.b.subscribe("c") as first, buses.b.subscribe("c") as second:
        await buses.a.publish("c", {"items": [1]})
        (got,) = await take(first, 1)
        got["items"].append(2)
        assert await take(second, 1) == [{"items": [1]}]


async def test_cancel_is_seen_everywhere(buses: BusPair) -> None:
    assert await buses.b.is_cancelled("run-7") is False
    async with buses.b.subscribe(cancel_channel("run-7")) as signals:
        await buses.a.request_cancel("run-7")
        assert await take(signals, 1) == [{"type": "cancel", "key": "run-7"}]
    assert await buses.b.is_cancelled("run-7") is True
    assert await buses.b.is_cancelled("run-8") is False


async def test_cancel_flag_expires(buses: BusPair) -> None:
    await buses.a.request_cancel("short", ttl_seconds=0.2)
    assert await buses.b.is_cancelled("short") is True
    await asyncio.sleep(0.4)
    assert await buses.b.is_cancelled("short") is False


async def test_lock_excludes_other_holders(buses: BusPair) -> None:
    order: list[str] = []

    async def hold(bus: EventBus, name: str) -> None:
        async with bus.lock("resource", wait_seconds=5):
            order.append(f"{name} in")
            await asyncio.sleep(0.2)
            order.append(f"{name} out")

    await asyncio.gather(hold(buses.a, "a"), hold(buses.b, "b"))
    assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])


async def test_lock_wait_times_out_with_a_clear_error(buses: BusPair) -> None:
    async with buses.a.lock("busy"):
        with pytest.raises(LockTimeout) as caught:
            async with buses.b.lock("busy", wait_seconds=0.2):
                pytest.fail("acquired a held lock")
    assert caught.value.code == "lock_timeout"
    async with buses.b.lock("busy", wait_seconds=0.2):
        pass  # free again once released


async def test_lock_of_a_dead_holder_expires(buses: BusPair) -> None:
    if not buses.distributed:
        pytest.skip("in one process the holder cannot die and leave its lock behind")
    holder = buses.a.lock("orphan", ttl_seconds=0.3)
    await holder.__aenter__()  # never released, as if the process died
    async with buses.b.lock("orphan", wait_seconds=2):
        pass


async def test_hit_counts_per_key_within_a_window(buses: BusPair) -> None:
    counts = [await buses.a.hit("login:alice", window_seconds=60) for _ in range(3)]
    assert counts[-1] - counts[0] == 2
    assert await buses.b.hit("login:bob", window_seconds=60) == 1


async def test_hit_window_resets(buses: BusPair) -> None:
    await buses.a.hit("burst", window_seconds=0.5)
    await asyncio.sleep(0.6)
    assert await buses.b.hit("burst", window_seconds=0.5) == 1


async def test_health(buses: BusPair) -> None:
    await buses.a.health()
