"""Memory over HTTP, on SQLite with LanceDB and on PostgreSQL with Milvus (Lite), with the scripted model server as
the LLM and the embedding model: members' own memories and the tenant's and agents' (permissions, 403/404), search,
switches per level and per agent; recall before a run (`memory.recalled`, the model sees it), extraction after it
(ADD, UPDATE instead of a duplicate, malformed output changes nothing, `memory.saved`), and no memory crossing users
or tenants."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.providers import pool
from tests.conftest import PostgresDatabases, make_settings, serve_in_process, wait_until
from tests.support.identity import bearer, invite_and_register
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server
from tests.test_http import assert_problem
from tests.test_runs import make_agent, new_owner, parse_sse, run


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
    # PostgreSQL with Milvus (Milvus Lite), the distributed shape's engines; SQLite with LanceDB, the embedded one.
    overrides: dict[str, Any] = (
        {
            "database_url": await pg_databases.create(migrated=True),
            "search_backend": "milvus",
            "milvus_uri": str(tmp_path / "milvus.db"),
        }
        if request.param == "postgres"
        else {}
    )
    served = serve_in_process(make_settings(tmp_path, builtin_models=False, memory_enabled=True, **overrides))
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
    assert_problem(unknown, 404, "agent_not_found")


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
    assert_problem(bad, 404, "agent_not_found")

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


# --- recall and extraction through real runs --------------------------------------------------------------------


class Scripted:
    """The model's side of memory: each extraction prompt answers with `facts` (or `extraction`, raw text), each
    decision prompt with `decide(prompt)`; agent turns answer `Noted.`."""

    def __init__(self, llm: RunningModelServer) -> None:
        self.facts: list[dict[str, str]] = []
        self.extraction: str | None = None
        self.decide: Any = None
        llm.server.responder = self.respond

    def respond(self, request: Any) -> ChatReply:
        text = json.dumps(request.messages)
        if "Read the conversation turn below" in text:
            return ChatReply.text(self.extraction or json.dumps({"facts": self.facts}))
        if "New facts were learned" in text:
            prompt = request.messages[-1]["content"]
            return ChatReply.text(self.decide(prompt) if self.decide else '{"decisions": []}')
        if "Write a title" in text:
            return ChatReply.text("A title")
        return ChatReply.text("Noted.")


def agent_prompts(llm: RunningModelServer) -> list[str]:
    """What agents sent the model (memory's own prompts and titles left out)."""
    prompts = [json.dumps(r.messages) for r in llm.server.chat_requests]
    return [p for p in prompts if "long-term memory of an assistant" not in p and "Write a title" not in p]


def extraction_prompts(llm: RunningModelServer) -> list[str]:
    return [
        json.dumps(r.messages)
        for r in llm.server.chat_requests
        if "Read the conversation turn" in json.dumps(r.messages)
    ]


async def share(
    client: httpx.AsyncClient, owner: dict[str, Any], agent: dict[str, Any], members: list[dict[str, Any]]
) -> None:
    """Publish `agent` and share it with a group of `members`, so that they may run it."""
    group = (
        await client.post("/api/groups", json={"name": f"G {uuid.uuid4().hex[:6]}"}, headers=owner["headers"])
    ).json()
    for someone in members:
        added = await client.put(f"/api/groups/{group['id']}/members/{someone['user_id']}", headers=owner["headers"])
        assert added.status_code < 300, added.text
    shared = await client.put(
        f"/api/agents/{agent['id']}/shares/{group['id']}", json={"permission": "read"}, headers=owner["headers"]
    )
    assert shared.status_code == 200, shared.text
    assert (await client.post(f"/api/agents/{agent['id']}/publish", headers=owner["headers"])).status_code == 201


async def recalled(events: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for e in events if e["type"] == "memory.recalled" for m in e["data"]["memories"]]


async def test_a_fact_stated_in_one_conversation_is_recalled_in_the_next(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    scripted = Scripted(llm)
    scripted.facts = [{"text": "The user's dog is called Rex.", "level": "user"}]
    agent = await make_agent(client, owner)
    response, events = await run(client, owner, agent["id"], "My dog is called Rex.")
    assert events[-1]["type"] == "run.completed" and not await recalled(events)
    saved = await wait_until(lambda: memories(client, owner))
    assert [m["text"] for m in saved] == ["The user's dog is called Rex."]
    assert saved[0]["source_run_id"] == response.headers["x-run-id"] and saved[0]["level"] == "user"

    # The run's log gets memory.saved after its end; a stream that follows from there gets it and ends.
    run_id, last = response.headers["x-run-id"], events[-1]["id"]

    async def saved_event() -> list[dict[str, Any]]:
        replay = await client.get(f"/api/runs/{run_id}/events", params={"after": last}, headers=owner["headers"])
        return [e for e in parse_sse(replay.text) if e["type"] == "memory.saved"]

    (event,) = await wait_until(saved_event)
    assert event["id"] == last + 1
    assert event["data"] == {
        "added": [{"id": saved[0]["id"], "level": "user", "text": saved[0]["text"]}],
        "updated": [],
    }

    scripted.facts = []
    _, events = await run(client, owner, agent["id"], "What is my dog called?")
    assert [e["type"] for e in events[:2]] == ["run.started", "memory.recalled"]
    assert await recalled(events) == ["The user's dog is called Rex."]
    assert events[1]["data"]["memories"][0] == {"id": saved[0]["id"], "level": "user", "text": saved[0]["text"]}
    last_prompt = agent_prompts(llm)[-1]
    assert "What you remember" in last_prompt and "The user's dog is called Rex." in last_prompt


async def test_a_changed_fact_updates_the_memory_instead_of_adding_one(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    scripted = Scripted(llm)
    agent = await make_agent(client, owner)
    old = await remember(client, owner, "The user lives in Paris.")
    scripted.facts = [{"text": "The user lives in Berlin.", "level": "user"}]

    def decide(prompt: str) -> str:
        match = re.search(r"memory ([0-9a-f-]{36}): The user lives in Paris\.", prompt)
        assert match, prompt
        return json.dumps(
            {
                "decisions": [
                    {"fact": 0, "action": "UPDATE", "memory_id": match.group(1), "text": "The user lives in Berlin."}
                ]
            }
        )

    scripted.decide = decide
    await run(client, owner, agent["id"], "I moved to Berlin last month.")

    async def moved() -> list[dict[str, Any]]:
        items = await memories(client, owner)
        return items if any("Berlin" in m["text"] for m in items) else []

    items = await wait_until(moved)
    assert [(m["id"], m["text"]) for m in items] == [(old["id"], "The user lives in Berlin.")]

    # The same fact again: the model says it is known, nothing changes.
    scripted.decide = lambda prompt: '{"decisions": [{"fact": 0, "action": "NONE"}]}'
    before = len(extraction_prompts(llm))
    await run(client, owner, agent["id"], "Remember, I live in Berlin.")
    await wait_until(lambda: _count_at_least(llm, before + 1))
    await asyncio.sleep(0.5)
    assert [(m["id"], m["text"]) for m in await memories(client, owner)] == [(old["id"], "The user lives in Berlin.")]


async def _count_at_least(llm: RunningModelServer, n: int) -> bool:
    return len(extraction_prompts(llm)) >= n


async def test_malformed_model_output_leaves_memories_unchanged(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    scripted = Scripted(llm)
    agent = await make_agent(client, owner)
    kept = await remember(client, owner, "The user drinks tea.")
    for extraction, decide in (
        ("Sure! The user now drinks coffee.", None),  # no JSON at all
        ('{"facts": "coffee"}', None),  # JSON of another shape
        (json.dumps({"facts": [{"text": "The user drinks coffee."}]}), "UPDATE everything"),  # decisions not JSON
        (json.dumps({"facts": [{"text": "The user drinks coffee."}]}), '{"decisions": 3}'),
    ):
        scripted.extraction = extraction
        scripted.decide = (lambda prompt, d=decide: d) if decide else None
        before = len(extraction_prompts(llm))
        _, events = await run(client, owner, agent["id"], "I switched to coffee.")
        assert events[-1]["type"] == "run.completed"
        await wait_until(lambda b=before: _count_at_least(llm, b + 1))
        await asyncio.sleep(0.5)
        assert [(m["id"], m["text"]) for m in await memories(client, owner)] == [(kept["id"], "The user drinks tea.")]


async def test_opt_out_per_level_and_per_agent(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    scripted = Scripted(llm)
    agent = await make_agent(client, owner)
    user = await member(client, owner)
    await share(client, owner, agent, [user])
    await remember(client, user, "The user's name is Ada.")
    await remember(client, user, "With this agent the user writes Rust.", level="user_agent", agent_id=agent["id"])
    await remember(client, owner, "The company is called Acme.", level="tenant")

    async def texts(who: dict[str, Any], message: str = "Tell me about my name, Rust and the company.") -> set[str]:
        _, events = await run(client, who, agent["id"], message)
        assert events and events[-1]["type"] == "run.completed", events
        return set(await recalled(events))

    everything = {"The user's name is Ada.", "With this agent the user writes Rust.", "The company is called Acme."}
    assert await texts(user) == everything

    await client.put("/api/memory/settings", json={"levels": {"user": False}}, headers=user["headers"])
    assert await texts(user) == everything - {"The user's name is Ada."}
    await client.put(
        "/api/memory/settings",
        json={"levels": {"user": True, "tenant": False, "user_agent": False}},
        headers=user["headers"],
    )
    assert await texts(user) == {"The user's name is Ada."}

    # The extraction jobs of the three runs above are done before the model is given a fact to extract (a job
    # still queued would take it).
    for _ in range(300):
        if len(extraction_prompts(llm)) >= 3:
            break
        await asyncio.sleep(0.1)
    assert len(extraction_prompts(llm)) == 3

    # Personal levels off: nothing recalled from them and nothing extracted.
    scripted.facts = [{"text": "The user likes jazz.", "level": "user"}]
    await client.put(
        "/api/memory/settings",
        json={"levels": {"user": False, "user_agent": False, "tenant": True}},
        headers=user["headers"],
    )
    before = len(extraction_prompts(llm))
    assert await texts(user, "I like jazz.") == {"The company is called Acme."}
    await asyncio.sleep(1.0)
    assert len(extraction_prompts(llm)) == before

    # The user turns this agent off: no memory at all in its runs.
    await client.put(
        "/api/memory/settings",
        json={"levels": {"user": True, "user_agent": True, "tenant": True}, "disabled_agent_ids": [agent["id"]]},
        headers=user["headers"],
    )
    assert await texts(user) == set()
    await asyncio.sleep(1.0)
    assert len(extraction_prompts(llm)) == before
    await client.put("/api/memory/settings", json={"disabled_agent_ids": []}, headers=user["headers"])
    assert await texts(user) == everything

    # A manager turns the agent's memory off: for everyone.
    await client.put(f"/api/memory/agents/{agent['id']}", json={"enabled": False}, headers=owner["headers"])
    assert await texts(user) == set()
    assert await texts(owner) == set()
    await asyncio.sleep(1.0)
    assert len(extraction_prompts(llm)) == before


async def test_no_memory_crosses_users_or_tenants(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    Scripted(llm)
    agent = await make_agent(client, owner)
    alice = await member(client, owner)
    bob = await member(client, owner)
    await share(client, owner, agent, [alice, bob])
    secret = "The user's locker code is 4417."
    await remember(client, alice, secret)
    await remember(
        client, alice, "With this agent the user's locker code is 4417.", level="user_agent", agent_id=agent["id"]
    )
    other = await memory_owner(client, llm)
    other_agent = await make_agent(client, other)
    await remember(client, owner, "The tenant's locker code is 9000.", level="tenant")

    question = "What is my locker code?"
    _, events = await run(client, alice, agent["id"], question)
    assert secret in await recalled(events)
    _, events = await run(client, bob, agent["id"], question)
    assert await recalled(events) == ["The tenant's locker code is 9000."]
    _, events = await run(client, other, other_agent["id"], question, version="draft")
    assert await recalled(events) == []
    assert not any("4417" in p for p in agent_prompts(llm)[1:])
    assert not any("9000" in p for p in agent_prompts(llm)[2:])
    # Lists and searches: Bob and the other tenant see none of Alice's memories.
    assert [m["text"] for m in await memories(client, bob, q="locker code")] == ["The tenant's locker code is 9000."]
    assert await memories(client, other, q="locker code") == []


async def test_a_new_default_embedding_model_re_embeds_every_memory(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    Scripted(llm)
    agent = await make_agent(client, owner)
    first = await remember(client, owner, "The user's car is a blue Volvo.")
    second = await remember(client, owner, "The user's favourite food is ramen.")
    new_model = await client.post(
        "/api/models",
        json={"name": "Embedder 2", "kind": "embedding", "model": "scripted-embedding-2", "base_url": llm.base_url},
        headers=owner["headers"],
    )
    assert new_model.status_code == 201, new_model.text
    model_id = new_model.json()["id"]
    made_default = await client.patch(f"/api/models/{model_id}", json={"is_default": True}, headers=owner["headers"])
    assert made_default.status_code == 200, made_default.text
    # The next write notices the new default model: a new index is built in the background, every memory in it.
    third = await remember(client, owner, "The user's bike is red.")

    async def re_embedded() -> bool:
        items = await memories(client, owner)
        return len(items) == 3 and all(m["embedding_model_id"] == model_id for m in items)

    await wait_until(re_embedded)
    requested = [
        json.dumps(r.json) for r in llm.server.embedding_requests if r.json.get("model") == "scripted-embedding-2"
    ]
    assert any("blue Volvo" in r for r in requested) and any("ramen" in r for r in requested)
    _, events = await run(client, owner, agent["id"], "What car do I drive?")
    assert "The user's car is a blue Volvo." in await recalled(events)
    assert {first["id"], second["id"], third["id"]} == {m["id"] for m in await memories(client, owner, q="car")}
