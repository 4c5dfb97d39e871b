"""Memory over HTTP, on SQLite and PostgreSQL, with the scripted model server as the LLM and the embedding model:
members' own memories and the tenant's and agents' (permissions, 403/404), search, switches per level and per
agent; recall before a run (`memory.recalled`, the model sees it), extraction after it (ADD, UPDATE instead of a
duplicate, malformed output changes nothing, `memory.saved`), and no memory crossing users or tenants."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.providers import pool
from tests.conftest import PostgresDatabases, make_settings, serve_in_process
from tests.support.identity import bearer, invite_and_register
from tests.support.model_server import RunningModelServer, run_model_server
from tests.test_http import assert_problem
from tests.test_runs import make_agent, new_owner


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server(embedding_dim=64) as served:
        yield served


@pytest.fixture(autouse=True)
def _fresh(llm: RunningModelServer) -> Iterator[None]:
    llm.server.reset()
    pool._unhealthy_until.clear()
    yield
    llm.server.responder = None


@pytest.fixture(params=["sqlite", "postgres"])
async def server(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases
) -> AsyncIterator[serve_in_process]:
    overrides: dict[str, Any] = (
        {"database_url": await pg_databases.create(migrated=True)} if request.param == "postgres" else {}
    )
    served = serve_in_process(make_settings(tmp_path, builtin_models=False, **overrides))
    async with served:
        yield served


@pytest.fixture
def client(server: serve_in_process) -> httpx.AsyncClient:
    assert server._client is not None
    return server._client


async def memory_owner(client: httpx.AsyncClient, llm: RunningModelServer) -> dict[str, Any]:
    """A tenant owner with the scripted LLM and the scripted embedding model (the tenant's defaults)."""
    owner = await new_owner(client, llm, f"mem-{uuid.uuid4().hex[:6]}@example.com")
    response = await client.post(
        "/api/models",
        json={"name": "Embedder", "kind": "embedding", "model": "scripted-embedding", "base_url": llm.base_url},
        headers=bearer(owner["access_token"]),
    )
    assert response.status_code == 201, response.text
    return {**owner, "headers": bearer(owner["access_token"])}


async def member(client: httpx.AsyncClient, owner: dict[str, Any], role: str = "user") -> dict[str, Any]:
    pair = await invite_and_register(
        client, owner["access_token"], f"{role}-{uuid.uuid4().hex[:6]}@example.com", role=role
    )
    me = await client.get("/api/me", headers=bearer(pair["access_token"]))
    return {**pair, "headers": bearer(pair["access_token"]), "user_id": me.json()["user"]["id"]}


@pytest.fixture
async def owner(client: httpx.AsyncClient, llm: RunningModelServer) -> dict[str, Any]:
    return await memory_owner(client, llm)


async def remember(client: httpx.AsyncClient, caller: dict[str, Any], text: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/memories", json={"text": text, **body}, headers=caller["headers"])
    assert response.status_code == 201, response.text
    memory: dict[str, Any] = response.json()
    return memory


async def memories(client: httpx.AsyncClient, caller: dict[str, Any], **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/memories", params=params, headers=caller["headers"])
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# --- store and API ----------------------------------------------------------------------------------------------


async def test_members_keep_edit_and_delete_their_own_memories(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    alice = await member(client, owner)
    bob = await member(client, owner)
    mine = await remember(client, alice, "The user's favourite colour is green.")
    assert mine["level"] == "user" and mine["user_id"] == alice["user_id"] and mine["can_edit"]
    await remember(client, alice, "The user keeps bees in the garden.")
    await remember(client, bob, "The user plays the cello.")

    listed = await memories(client, alice)
    assert {m["text"] for m in listed} == {
        "The user's favourite colour is green.",
        "The user keeps bees in the garden.",
    }
    found = await memories(client, alice, q="what colour do I like")
    assert found[0]["id"] == mine["id"] and found[0]["score"] is not None
    # Bob's search ranks his own memories only.
    assert {m["text"] for m in await memories(client, bob, q="colour bees")} == {"The user plays the cello."}

    changed = await client.patch(
        f"/api/memories/{mine['id']}", json={"text": "The user's favourite colour is blue."}, headers=alice["headers"]
    )
    assert changed.status_code == 200 and changed.json()["text"] == "The user's favourite colour is blue."
    assert (await memories(client, alice, q="blue"))[0]["id"] == mine["id"]

    # Another member: as if it did not exist, whatever their role.
    for other in (bob, owner):
        assert_problem(
            await client.get(f"/api/memories/{mine['id']}", headers=other["headers"]), 404, "memory_not_found"
        )
        patched = await client.patch(f"/api/memories/{mine['id']}", json={"text": "x"}, headers=other["headers"])
        assert_problem(patched, 404, "memory_not_found")
        deleted = await client.delete(f"/api/memories/{mine['id']}", headers=other["headers"])
        assert_problem(deleted, 404, "memory_not_found")

    assert (await client.delete(f"/api/memories/{mine['id']}", headers=alice["headers"])).status_code == 204
    assert_problem(await client.get(f"/api/memories/{mine['id']}", headers=alice["headers"]), 404, "memory_not_found")
    assert [m["text"] for m in await memories(client, alice, q="colour")] == ["The user keeps bees in the garden."]


async def test_admins_manage_tenant_and_agent_memories(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    agent = await make_agent(client, owner)
    user = await member(client, owner)
    admin = await member(client, owner, role="admin")
    refused = await client.post(
        "/api/memories", json={"text": "Office hours are 9 to 5.", "level": "tenant"}, headers=user["headers"]
    )
    assert_problem(refused, 403, "permission_denied")
    tenant_fact = await remember(client, admin, "Office hours are 9 to 5.", level="tenant")
    agent_fact = await remember(client, owner, "Answer in French.", level="agent", agent_id=agent["id"])
    assert tenant_fact["user_id"] is None and agent_fact["agent_id"] == agent["id"]

    # Members read them, and may not change them.
    seen = {m["id"]: m for m in await memories(client, user)}
    assert seen[tenant_fact["id"]]["can_edit"] is False
    patched = await client.patch(f"/api/memories/{tenant_fact['id']}", json={"text": "x"}, headers=user["headers"])
    assert_problem(patched, 403, "permission_denied")
    deleted = await client.delete(f"/api/memories/{agent_fact['id']}", headers=user["headers"])
    assert_problem(deleted, 403, "permission_denied")
    assert [m["id"] for m in await memories(client, user, level="agent", agent_id=agent["id"])] == [agent_fact["id"]]
    ok = await client.patch(
        f"/api/memories/{agent_fact['id']}", json={"text": "Answer in German."}, headers=admin["headers"]
    )
    assert ok.status_code == 200

    bad_scope = await client.post("/api/memories", json={"text": "x", "level": "agent"}, headers=owner["headers"])
    assert_problem(bad_scope, 422, "invalid_memory_scope")
    unknown = await client.post(
        "/api/memories",
        json={"text": "x", "level": "user_agent", "agent_id": str(uuid.uuid4())},
        headers=owner["headers"],
    )
    assert_problem(unknown, 422, "unknown_agent")


async def test_settings_per_level_and_per_agent(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    agent = await make_agent(client, owner)
    user = await member(client, owner)
    got = await client.get("/api/memory/settings", headers=user["headers"])
    assert got.status_code == 200
    assert got.json()["levels"] == {"tenant": True, "agent": True, "user": True, "user_agent": True}
    put = await client.put(
        "/api/memory/settings",
        json={"levels": {"user": False}, "disabled_agent_ids": [agent["id"]]},
        headers=user["headers"],
    )
    assert put.status_code == 200, put.text
    assert put.json()["levels"]["user"] is False and put.json()["disabled_agent_ids"] == [agent["id"]]
    bad = await client.put(
        "/api/memory/settings", json={"disabled_agent_ids": [str(uuid.uuid4())]}, headers=user["headers"]
    )
    assert_problem(bad, 422, "unknown_agent")

    switch = f"/api/memory/agents/{agent['id']}"
    assert_problem(await client.put(switch, json={"enabled": False}, headers=user["headers"]), 403, "permission_denied")
    assert (await client.put(switch, json={"enabled": False}, headers=owner["headers"])).json() == {
        "agent_id": agent["id"],
        "enabled": False,
    }
    assert (await client.get(switch, headers=owner["headers"])).json()["enabled"] is False
    assert (await client.get("/api/memory/settings", headers=user["headers"])).json()["agents_turned_off"] == [
        agent["id"]
    ]
