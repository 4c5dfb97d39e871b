"""The tool catalog (`GET /api/tools`): what an agent's `tools` entries may name and which settings each accepts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.tools import registry
from tests.conftest import make_settings, serve_in_process
from tests.support.identity import bearer, invite_and_register, register
from tests.test_http import assert_problem

BUILT_IN = {
    "calculator",
    "current_time",
    "fetch_webpage",
    "knowledge_base_search",
    "workspace_list",
    "workspace_read",
    "workspace_write",
}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(make_settings(tmp_path, builtin_models=False)) as http:
        yield http


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> dict[str, Any]:
    return await register(client, f"tools-{uuid.uuid4().hex[:6]}@example.com")


async def catalog(client: httpx.AsyncClient, token: str) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/tools", headers=bearer(token))
    assert response.status_code == 200, response.text
    tools: list[dict[str, Any]] = response.json()
    assert [t["name"] for t in tools] == sorted(t["name"] for t in tools)
    return {tool["name"]: tool for tool in tools}


async def test_every_tool_with_its_arguments_and_settings_schema(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    tools = await catalog(client, owner["access_token"])
    assert set(tools) >= BUILT_IN
    assert set(tools) == {tool.name for tool in registry.all_tools()}
    for tool in tools.values():
        assert set(tool) == {"name", "description", "parameters", "settings_schema", "managed_settings", "source"}
        assert tool["source"] == {"kind": "builtin", "id": None, "name": "builtin"}
        assert tool["description"].strip()
        assert tool["parameters"]["type"] == "object" and "properties" in tool["parameters"]
        assert tool["settings_schema"]["type"] == "object"
        assert tool["settings_schema"]["additionalProperties"] is False  # unknown settings are refused

    calculator = tools["calculator"]
    assert calculator["parameters"]["required"] == ["expression"]
    assert calculator["settings_schema"].get("properties", {}) == {} and calculator["managed_settings"] == []

    fetch = tools["fetch_webpage"]["settings_schema"]["properties"]
    assert fetch["max_chars"]["default"] == 20_000 and fetch["max_chars"]["minimum"] == 100
    assert "allowed_domains" in fetch

    search = tools["knowledge_base_search"]
    assert search["parameters"]["required"] == ["query"]
    settings = search["settings_schema"]["properties"]
    assert set(settings) == {"knowledge_base_ids", "top_k", "mode"}
    assert settings["mode"]["enum"] == ["hybrid", "bm25", "vector"] and settings["top_k"]["default"] == 5
    assert search["managed_settings"] == ["knowledge_base_ids"]


async def test_what_the_catalog_describes_is_what_agents_accept(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    token = owner["access_token"]
    tools = await catalog(client, token)
    entries = [{"name": "fetch_webpage", "settings": {"max_chars": 500, "allowed_domains": ["example.com"]}}]
    entries.append({"name": "knowledge_base_search", "settings": {"top_k": 3, "mode": "bm25"}})
    entries += [{"name": name, "settings": {}} for name in sorted(tools) if name not in {e["name"] for e in entries}]
    created = await client.post("/api/agents", json={"name": "All tools", "tools": entries}, headers=bearer(token))
    assert created.status_code == 201, created.text
    # Values outside the schema's bounds are refused, as the schema says.
    bad = await client.post(
        "/api/agents",
        json={"name": "Bad", "tools": [{"name": "fetch_webpage", "settings": {"max_chars": 99}}]},
        headers=bearer(token),
    )
    assert_problem(bad, 422, "invalid_agent")


async def test_any_member_may_read_it_but_not_api_keys_or_strangers(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    member = await invite_and_register(
        client, owner["access_token"], f"m-{uuid.uuid4().hex[:6]}@example.com", role="user"
    )
    assert set(await catalog(client, member["access_token"])) >= BUILT_IN
    key = (await client.post("/api/api-keys", json={"name": "k"}, headers=bearer(owner["access_token"]))).json()
    assert_problem(await client.get("/api/tools", headers=bearer(key["secret"])), 403, "api_key_not_allowed")
    assert_problem(await client.get("/api/tools"), 401, "unauthorized")
    assert_problem(await client.get("/api/tools", headers=bearer("not-a-token")), 401, "invalid_token")
    assert_problem(await client.post("/api/tools", headers=bearer(owner["access_token"])), 405, "method_not_allowed")
