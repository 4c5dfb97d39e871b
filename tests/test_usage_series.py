"""Model usage as a time series (`GET /api/usage/series`) on SQLite and PostgreSQL: buckets by hour or day over a
validated window, filters by model and agent, and latency average, nearest-rank p95 and maximum computed in SQL."""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.engines.container import Engines
from nexent.providers.models import UsageRecord
from tests.conftest import PostgresDatabases, make_settings, serve_in_process
from tests.support.identity import bearer, invite_and_register, register
from tests.test_http import assert_problem

DAY = datetime(2026, 3, 1, tzinfo=UTC)
MODEL_A, MODEL_B, AGENT = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


class World:
    def __init__(self, client: httpx.AsyncClient, engines: Engines) -> None:
        self.client, self.engines = client, engines


@pytest.fixture(params=["sqlite", "postgres"])
async def world(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases
) -> AsyncIterator[World]:
    overrides: dict[str, Any] = (
        {"database_url": await pg_databases.create(migrated=True)} if request.param == "postgres" else {}
    )
    served = serve_in_process(make_settings(tmp_path, builtin_models=False, **overrides))
    async with served as http:
        yield World(http, served.app.state.engines)


def tenant_of(token: str) -> uuid.UUID:
    payload = token.split(".")[1]
    return uuid.UUID(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["tid"])


async def new_owner(world: World) -> dict[str, Any]:
    pair = await register(world.client, f"usage-{uuid.uuid4().hex[:6]}@example.com")
    return {**pair, "headers": bearer(pair["access_token"]), "tenant_id": tenant_of(pair["access_token"])}


async def record(world: World, tenant_id: uuid.UUID, at: datetime, latency: float, **fields: Any) -> None:
    values: dict[str, Any] = {"model_config_id": MODEL_A, "kind": "llm", "operation": "chat", "ok": True}
    values.update(fields)
    async with world.engines.sessions() as session:
        session.add(UsageRecord(id=uuid.uuid4(), tenant_id=tenant_id, created_at=at, latency_ms=latency, **values))
        await session.commit()


def p95(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


async def series(world: World, owner: dict[str, Any], **params: str) -> dict[str, Any]:
    response = await world.client.get("/api/usage/series", params=params, headers=owner["headers"])
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def seed(world: World, tenant_id: uuid.UUID) -> list[float]:
    """20 calls at 10:xx (2 failed, agent AGENT), 1 at 12:xx (model B), 1 at 09:59:59, 1 at 13:00 exactly."""
    latencies = [float(10 * (i + 1)) for i in range(20)]
    for i, latency in enumerate(latencies):
        await record(
            world,
            tenant_id,
            DAY + timedelta(hours=10, minutes=i),
            latency,
            agent_id=AGENT,
            ok=i not in (3, 7),
            error_code=None if i not in (3, 7) else "timeout",
            prompt_tokens=5,
            completion_tokens=7,
            ttft_ms=4.0 if i < 10 else None,
        )
    await record(world, tenant_id, DAY + timedelta(hours=12, minutes=5), 50.0, model_config_id=MODEL_B)
    await record(world, tenant_id, DAY + timedelta(hours=9, minutes=59, seconds=59), 999.0)
    await record(world, tenant_id, DAY + timedelta(hours=13), 1234.0)
    return latencies


async def test_hourly_buckets_with_tokens_errors_and_latency(world: World) -> None:
    owner = await new_owner(world)
    latencies = await seed(world, owner["tenant_id"])
    stranger = await new_owner(world)
    await record(world, stranger["tenant_id"], DAY + timedelta(hours=10, minutes=30), 5.0, agent_id=AGENT)

    body = await series(world, owner, interval="hour", **{"from": "2026-03-01T10:30:00Z", "to": "2026-03-01T13:00:00Z"})
    assert (body["interval"], body["start"], body["end"]) == ("hour", "2026-03-01T10:00:00Z", "2026-03-01T13:00:00Z")
    assert body["model_id"] is None and body["agent_id"] is None
    ten, eleven, noon = body["buckets"]
    assert [b["start"] for b in body["buckets"]] == [f"2026-03-01T{h}:00:00Z" for h in (10, 11, 12)]
    assert (ten["calls"], ten["errors"], ten["prompt_tokens"], ten["completion_tokens"]) == (20, 2, 100, 140)
    assert ten["avg_latency_ms"] == pytest.approx(sum(latencies) / 20)
    assert (ten["p95_latency_ms"], ten["max_latency_ms"], ten["avg_ttft_ms"]) == (p95(latencies), 200.0, 4.0)
    assert ten["p95_latency_ms"] == 190.0
    assert eleven == {
        "start": "2026-03-01T11:00:00Z",
        "calls": 0,
        "errors": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "avg_latency_ms": None,
        "p95_latency_ms": None,
        "max_latency_ms": None,
        "avg_ttft_ms": None,
    }
    assert (noon["calls"], noon["p95_latency_ms"], noon["max_latency_ms"], noon["avg_ttft_ms"]) == (1, 50.0, 50.0, None)

    # The same window given in another time zone; filters by model and by agent.
    shifted = await series(
        world, owner, interval="hour", **{"from": "2026-03-01T12:30:00+02:00", "to": "2026-03-01T15:00:00+02:00"}
    )
    assert shifted["buckets"] == body["buckets"]
    window = {"from": "2026-03-01T10:00:00Z", "to": "2026-03-01T13:00:00Z"}
    only_b = await series(world, owner, model_id=str(MODEL_B), **window)
    assert [b["calls"] for b in only_b["buckets"]] == [0, 0, 1] and only_b["model_id"] == str(MODEL_B)
    only_agent = await series(world, owner, agent_id=str(AGENT), **window)
    assert [b["calls"] for b in only_agent["buckets"]] == [20, 0, 0] and only_agent["agent_id"] == str(AGENT)
    both = await series(world, owner, agent_id=str(AGENT), model_id=str(MODEL_B), **window)
    assert [b["calls"] for b in both["buckets"]] == [0, 0, 0]
    # Another tenant sees only its own call.
    theirs = await series(world, stranger, **window)
    assert [b["calls"] for b in theirs["buckets"]] == [1, 0, 0]
    assert theirs["buckets"][0]["max_latency_ms"] == 5.0


async def test_daily_buckets_and_the_default_window(world: World) -> None:
    owner = await new_owner(world)
    latencies = await seed(world, owner["tenant_id"])
    body = await series(world, owner, interval="day", **{"from": "2026-03-01T08:00:00Z", "to": "2026-03-03T00:00:00Z"})
    assert body["start"] == "2026-03-01T00:00:00Z"
    first, second = body["buckets"]
    every = [*latencies, 50.0, 999.0, 1234.0]
    assert (first["calls"], first["errors"], first["max_latency_ms"]) == (23, 2, 1234.0)
    assert first["p95_latency_ms"] == p95(every) == 999.0
    assert second["calls"] == 0 and second["start"] == "2026-03-02T00:00:00Z"

    recent = await series(world, owner)
    assert recent["interval"] == "hour" and len(recent["buckets"]) in (24, 25)
    assert sum(b["calls"] for b in recent["buckets"]) == 0
    end = datetime.fromisoformat(recent["end"])
    assert abs(end - datetime.now(UTC)) < timedelta(minutes=5)
    monthly = await series(world, owner, interval="day")
    assert len(monthly["buckets"]) in (30, 31)
    # The grouped summary still answers as before.
    by_agent = (await world.client.get("/api/usage?group_by=agent", headers=owner["headers"])).json()
    assert {row["key"]: row["calls"] for row in by_agent} == {str(AGENT): 20, "None": 3}


async def test_windows_are_validated_and_bounded(world: World) -> None:
    owner = await new_owner(world)

    async def get(**params: str) -> httpx.Response:
        return await world.client.get("/api/usage/series", params=params, headers=owner["headers"])

    widest = await get(**{"from": "2026-01-01T00:00:00Z", "to": "2026-02-11T16:00:00Z"})  # exactly 1,000 hours
    assert widest.status_code == 200 and len(widest.json()["buckets"]) == 1000
    too_many = await get(**{"from": "2026-01-01T00:00:00Z", "to": "2026-02-11T16:00:01Z"})
    problem = assert_problem(too_many, 422, "invalid_usage_window")
    assert problem["errors"] == [{"loc": ["query", "from"], "msg": problem["detail"], "type": "invalid_usage_window"}]
    assert (
        await get(interval="day", **{"from": "2026-01-01T00:00:00Z", "to": "2026-02-11T16:00:01Z"})
    ).status_code == 200
    reversed_window = await get(**{"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"})
    assert_problem(reversed_window, 422, "invalid_usage_window")
    assert_problem(
        await get(**{"from": "2026-03-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}), 422, "invalid_usage_window"
    )
    assert_problem(await get(**{"to": "0001-01-01T00:30:00Z"}), 422, "invalid_usage_window")
    assert_problem(
        await get(**{"from": "0001-01-01T00:00:00+01:00", "to": "0001-01-02T00:00:00Z"}), 422, "invalid_usage_window"
    )
    assert_problem(
        await get(**{"from": "9999-12-31T23:00:00Z", "to": "9999-12-31T23:59:59-05:00"}), 422, "invalid_usage_window"
    )
    assert (await get(**{"from": "9999-12-31T22:00:00Z", "to": "9999-12-31T23:59:59Z"})).status_code == 200
    # The grouped summary too (a time before the year 1 in UTC was a 500, found by fuzzing).
    for window in ({"from": "0001-01-01T09:31:39.3+10:48"}, {"to": "9999-12-31T23:59:59-05:00"}):
        summary = await world.client.get("/api/usage", params=window, headers=owner["headers"])
        assert_problem(summary, 422, "invalid_usage_window")
    assert (
        await world.client.get("/api/usage", params={"from": "0001-01-01T00:00:00Z"}, headers=owner["headers"])
    ).status_code == 200
    for bad in (
        {"interval": "week"},
        {"from": "2026-03-01T00:00:00"},  # no time zone
        {"to": "yesterday"},
        {"agent_id": "not-a-uuid"},
        {"model_id": "1"},
    ):
        assert_problem(await get(**bad), 422, "validation_error")


async def test_only_those_who_manage_models_read_usage(world: World) -> None:
    owner = await new_owner(world)
    member = await invite_and_register(
        world.client, owner["access_token"], f"m-{uuid.uuid4().hex[:6]}@example.com", role="user"
    )
    denied = await world.client.get("/api/usage/series", headers=bearer(member["access_token"]))
    assert_problem(denied, 403, "permission_denied")
    key = (await world.client.post("/api/api-keys", json={"name": "k"}, headers=owner["headers"])).json()
    assert (await world.client.get("/api/usage/series", headers=bearer(key["secret"]))).status_code == 403
    assert_problem(await world.client.get("/api/usage/series"), 401, "unauthorized")
