"""Agent drafts over HTTP: validation, sub-agent cycles, access through roles and group shares."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PostgresDatabases, make_settings, serve_in_process
from tests.support.identity import bearer, invite_and_register, register
from tests.test_http import assert_problem


@pytest.fixture(params=["sqlite", "postgres"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases
) -> AsyncIterator[httpx.AsyncClient]:
    overrides: dict[str, Any] = (
        {"database_url": await pg_databases.create(migrated=True)} if request.param == "postgres" else {}
    )
    async with serve_in_process(make_settings(tmp_path, builtin_models=False, **overrides)) as http:
        yield http


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> dict[str, Any]:
    return await register(client, f"agents-{uuid.uuid4().hex[:6]}@example.com")


async def create(client: httpx.AsyncClient, token: str, **body: Any) -> httpx.Response:
    return await client.post("/api/agents", json={"name": "Helper", **body}, headers=bearer(token))


async def add_llm(client: httpx.AsyncClient, token: str, kind: str = "llm") -> str:
    response = await client.post(
        "/api/models",
        json={"name": f"m-{kind}", "kind": kind, "model": "x", "base_url": "http://127.0.0.1:9/v1"},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def error_locs(response: httpx.Response) -> list[list[str]]:
    return [e["loc"] for e in response.json()["errors"]]


async def test_create_read_update_delete(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    token = owner["access_token"]
    model_id = await add_llm(client, token)
    created = await create(
        client,
        token,
        name="Research assistant",
        description="Finds and summarises papers.",
        instructions={
            "duty": "Answer questions about papers.",
            "constraints": "Cite your sources.",
            "examples": [{"question": "What is CRISPR?", "answer": "A gene editing method [1]."}],
        },
        model_id=model_id,
        tools=[{"name": "calculator"}, {"name": "current_time"}],
        max_steps=6,
        greeting="Hello! Ask me about papers.",
        example_questions=["What is new in protein folding?"],
    )
    assert created.status_code == 201, created.text
    agent = created.json()
    assert agent["instructions"]["examples"][0]["question"] == "What is CRISPR?"
    assert [t["name"] for t in agent["tools"]] == ["calculator", "current_time"]
    assert agent["agent_type"] == "tool_calling" and agent["can_edit"] is True

    updated = await client.patch(
        f"/api/agents/{agent['id']}", json={"max_steps": 12, "agent_type": "code"}, headers=bearer(token)
    )
    assert (updated.json()["max_steps"], updated.json()["agent_type"]) == (12, "code")
    assert updated.json()["instructions"]["duty"] == "Answer questions about papers."

    listed = (await client.get("/api/agents?q=research", headers=bearer(token))).json()
    assert [a["name"] for a in listed["items"]] == ["Research assistant"]
    assert (await client.delete(f"/api/agents/{agent['id']}", headers=bearer(token))).status_code == 204
    assert_problem(await client.get(f"/api/agents/{agent['id']}", headers=bearer(token)), 404, "agent_not_found")


async def test_null_clears_only_what_may_be_absent(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    token = owner["access_token"]
    model_id = await add_llm(client, token)
    agent = (await create(client, token, model_id=model_id, tools=[{"name": "calculator"}])).json()
    for field in ("tools", "name", "sub_agent_ids", "max_steps", "greeting"):
        refused = await client.patch(f"/api/agents/{agent['id']}", json={field: None}, headers=bearer(token))
        assert_problem(refused, 422, "validation_error")
        assert field in refused.json()["errors"][0]["msg"]
    # The model may be absent (the tenant's default), and so may the instructions.
    cleared = await client.patch(
        f"/api/agents/{agent['id']}", json={"model_id": None, "instructions": None}, headers=bearer(token)
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["model_id"] is None and cleared.json()["tools"] == [{"name": "calculator", "settings": {}}]


async def test_references_are_validated(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    token = owner["access_token"]
    embedding_id = await add_llm(client, token, kind="embedding")
    response = await create(
        client,
        token,
        model_id=embedding_id,
        tools=[{"name": "no_such_tool"}, {"name": "calculator"}, {"name": "calculator"}],
        sub_agent_ids=[str(uuid.uuid4())],
    )
    body = assert_problem(response, 422, "invalid_agent")
    assert error_locs(response) == [
        ["body", "model_id"],
        ["body", "tools", "0"],
        ["body", "tools", "2", "name"],
        ["body", "sub_agent_ids", "0"],
    ]
    assert "llm" in str(body["errors"])
    missing_model = await create(client, token, model_id=str(uuid.uuid4()))
    assert error_locs(missing_model) == [["body", "model_id"]]


async def test_tool_settings_are_validated(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    token = owner["access_token"]
    bad = await create(client, token, tools=[{"name": "fetch_webpage", "settings": {"max_chars": "lots"}}])
    assert error_locs(bad) == [["body", "tools", "0"]]
    good = await create(
        client, token, tools=[{"name": "fetch_webpage", "settings": {"allowed_domains": ["example.com"]}}]
    )
    assert good.status_code == 201, good.text


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "ok", "max_steps": 0},
        {"name": "ok", "max_steps": 51},
        {"name": "ok", "agent_type": "magic"},
        {"name": "ok", "instructions": {"duty": 3}},
        {"name": "ok", "tools": [{"settings": {}}]},
        {"name": "ok", "unknown": 1},
        {"name": "ok", "sub_agent_ids": ["not-a-uuid"]},
    ],
)
async def test_malformed_drafts_are_a_422(
    client: httpx.AsyncClient, owner: dict[str, Any], body: dict[str, Any]
) -> None:
    response = await client.post("/api/agents", json=body, headers=bearer(owner["access_token"]))
    assert_problem(response, 422, "validation_error")


async def test_sub_agents_cannot_form_cycles(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    token = owner["access_token"]
    leaf = (await create(client, token, name="Leaf")).json()
    middle = (await create(client, token, name="Middle", sub_agent_ids=[leaf["id"]])).json()
    top = await create(client, token, name="Top", sub_agent_ids=[middle["id"]])
    assert top.status_code == 201

    cycle = await client.patch(
        f"/api/agents/{leaf['id']}", json={"sub_agent_ids": [top.json()["id"]]}, headers=bearer(token)
    )
    assert_problem(cycle, 422, "invalid_agent")
    assert "cycle" in str(cycle.json()["errors"])
    itself = await client.patch(
        f"/api/agents/{leaf['id']}", json={"sub_agent_ids": [leaf["id"]]}, headers=bearer(token)
    )
    assert "own sub-agent" in str(itself.json()["errors"])

    in_use = await client.delete(f"/api/agents/{leaf['id']}", headers=bearer(token))
    body = assert_problem(in_use, 409, "agent_in_use")
    assert body["used_by"] == [middle["id"]]


async def test_names_are_unique_per_tenant(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    token = owner["access_token"]
    assert (await create(client, token, name="Twin")).status_code == 201
    assert_problem(await create(client, token, name="twin"), 409, "agent_name_taken")
    other = await register(client, "other-tenant-agents@example.com")
    assert (await create(client, other["access_token"], name="Twin")).status_code == 201


async def test_users_see_shared_agents_and_edit_only_with_edit_rights(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    token = owner["access_token"]
    user = await invite_and_register(client, token, f"user-{uuid.uuid4().hex[:6]}@example.com", role="user")
    group = (await client.post("/api/groups", json={"name": "Readers"}, headers=bearer(token))).json()
    await client.put(f"/api/groups/{group['id']}/members/{user['user']['id']}", headers=bearer(token))
    shared = (await create(client, token, name="Shared", model_id=await add_llm(client, token))).json()
    hidden = (await create(client, token, name="Hidden")).json()

    user_headers = bearer(user["access_token"])
    assert (await client.get("/api/agents", headers=user_headers)).json()["total"] == 0
    assert_problem(await create(client, user["access_token"], name="Mine"), 403, "permission_denied")

    share = await client.put(
        f"/api/agents/{shared['id']}/shares/{group['id']}", json={"permission": "read"}, headers=bearer(token)
    )
    assert share.status_code == 200 and share.json()["permission"] == "read"
    # Those who may only read an agent see it once published, as published: not its draft.
    assert (await client.get("/api/agents", headers=user_headers)).json()["total"] == 0
    assert_problem(await client.get(f"/api/agents/{shared['id']}", headers=user_headers), 404, "agent_not_found")
    published = await client.post(f"/api/agents/{shared['id']}/publish", json={}, headers=bearer(token))
    assert published.status_code == 201, published.text
    draft_change = {"greeting": "Draft greeting"}
    assert (await client.patch(f"/api/agents/{shared['id']}", json=draft_change, headers=bearer(token))).is_success
    visible = (await client.get("/api/agents", headers=user_headers)).json()
    assert [a["name"] for a in visible["items"]] == ["Shared"] and visible["items"][0]["can_edit"] is False
    assert visible["items"][0]["greeting"] == "" and visible["items"][0]["published_version"] == 1
    seen = (await client.get(f"/api/agents/{shared['id']}", headers=user_headers)).json()
    assert seen["greeting"] == "" and seen["model_id"] == published.json()["config"]["model_id"]
    assert (await client.get(f"/api/agents/{shared['id']}", headers=bearer(token))).json()[
        "greeting"
    ] == "Draft greeting"
    assert_problem(await client.get(f"/api/agents/{hidden['id']}", headers=user_headers), 404, "agent_not_found")
    refused = await client.patch(f"/api/agents/{shared['id']}", json={"greeting": "hi"}, headers=user_headers)
    assert_problem(refused, 403, "permission_denied")

    await client.put(
        f"/api/agents/{shared['id']}/shares/{group['id']}", json={"permission": "edit"}, headers=bearer(token)
    )
    allowed = await client.patch(f"/api/agents/{shared['id']}", json={"greeting": "hi"}, headers=user_headers)
    assert allowed.status_code == 200 and allowed.json()["greeting"] == "hi"
    assert_problem(await client.delete(f"/api/agents/{shared['id']}", headers=user_headers), 403, "permission_denied")
    shares = (await client.get(f"/api/agents/{shared['id']}/shares", headers=bearer(token))).json()
    assert [(s["group_id"], s["permission"]) for s in shares] == [(group["id"], "edit")]

    assert (
        await client.delete(f"/api/agents/{shared['id']}/shares/{group['id']}", headers=bearer(token))
    ).status_code == 204
    assert (await client.get("/api/agents", headers=user_headers)).json()["total"] == 0


async def test_api_keys_cannot_edit_agents(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    key = (await client.post("/api/api-keys", json={"name": "k"}, headers=bearer(owner["access_token"]))).json()
    assert_problem(await create(client, key["secret"]), 403, "api_key_not_allowed")
