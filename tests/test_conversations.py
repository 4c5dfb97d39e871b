"""The conversation list over HTTP, on SQLite and PostgreSQL: searching titles (`?q=`), paging, and nobody else's
conversation ever found."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PostgresDatabases, make_settings, serve_in_process, wait_until
from tests.support.identity import bearer, invite_and_register, register
from tests.support.model_server import RunningModelServer, run_model_server
from tests.test_http import assert_problem


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:  # nothing queued: it echoes the message (and the title job's prompt)
        yield served


@pytest.fixture(params=["sqlite", "postgres"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases
) -> AsyncIterator[httpx.AsyncClient]:
    overrides: dict[str, Any] = (
        {"database_url": await pg_databases.create(migrated=True)} if request.param == "postgres" else {}
    )
    async with serve_in_process(make_settings(tmp_path, builtin_models=False, **overrides)) as http:
        yield http


async def agent_of(client: httpx.AsyncClient, llm: RunningModelServer, token: str) -> str:
    """An agent on the scripted model, in the caller's tenant (the tenant's first model, added when it has none)."""
    headers = bearer(token)
    models = (await client.get("/api/models", headers=headers)).json()["items"]
    if not models:
        body = {"name": "Scripted", "kind": "llm", "model": "scripted", "base_url": llm.base_url, "is_default": True}
        created = await client.post("/api/models", json=body, headers=headers)
        assert created.status_code == 201, created.text
        models = [created.json()]
    agent = await client.post(
        "/api/agents", json={"name": f"Agent {uuid.uuid4().hex[:6]}", "model_id": models[0]["id"]}, headers=headers
    )
    assert agent.status_code == 201, agent.text
    return str(agent.json()["id"])


async def converse(client: httpx.AsyncClient, token: str, agent_id: str, title: str) -> str:
    """A new conversation (one run), renamed to `title` once the model has written its own title (a rename while the
    title job runs could be overwritten by it)."""
    headers = bearer(token)
    response = await client.post(f"/api/agents/{agent_id}/runs", json={"message": "Hello"}, headers=headers)
    assert response.status_code == 200, response.text
    conversation_id = response.headers["x-conversation-id"]

    async def titled() -> bool:
        detail = await client.get(f"/api/conversations/{conversation_id}", headers=headers)
        return bool(detail.json()["title"] != "Hello")

    await wait_until(titled, timeout=20, interval=0.05)
    renamed = await client.patch(f"/api/conversations/{conversation_id}", json={"title": title}, headers=headers)
    assert renamed.status_code == 200, renamed.text
    return conversation_id


async def titles(client: httpx.AsyncClient, token: str, **params: Any) -> tuple[list[str], int]:
    response = await client.get("/api/conversations", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    page = response.json()
    return [item["title"] for item in page["items"]], page["total"]


async def test_search_finds_titles_in_any_case_latest_first_in_pages(
    client: httpx.AsyncClient, llm: RunningModelServer
) -> None:
    owner = await register(client, f"search-{uuid.uuid4().hex[:6]}@example.com")
    token = owner["access_token"]
    agent_id = await agent_of(client, llm, token)
    for title in ("Budget review 2023", "Travel plans", "Q3 BUDGET draft", "Sale: 100%_off", "Garden budget ideas"):
        await converse(client, token, agent_id, title)

    assert await titles(client, token, q="budget") == (
        ["Garden budget ideas", "Q3 BUDGET draft", "Budget review 2023"],
        3,
    )
    assert await titles(client, token, q="  Budget ") == await titles(client, token, q="budget")
    # Paging through the matches, as through the whole list.
    assert await titles(client, token, q="budget", limit=2) == (["Garden budget ideas", "Q3 BUDGET draft"], 3)
    assert await titles(client, token, q="budget", limit=2, offset=2) == (["Budget review 2023"], 3)
    # LIKE's wildcards are plain characters.
    assert await titles(client, token, q="%") == (["Sale: 100%_off"], 1)
    assert await titles(client, token, q="_") == (["Sale: 100%_off"], 1)
    assert await titles(client, token, q="no such words") == ([], 0)
    # No words, or none given: every conversation.
    assert (await titles(client, token, q=""))[1] == 5
    assert (await titles(client, token))[1] == 5
    assert_problem(
        await client.get("/api/conversations", params={"q": "x" * 201}, headers=bearer(token)), 422, "validation_error"
    )


async def test_search_never_finds_another_users_conversation(
    client: httpx.AsyncClient, llm: RunningModelServer
) -> None:
    owner = await register(client, f"owner-{uuid.uuid4().hex[:6]}@example.com")
    colleague = await invite_and_register(
        client, owner["access_token"], f"colleague-{uuid.uuid4().hex[:6]}@example.com", role="admin"
    )
    stranger = await register(client, f"stranger-{uuid.uuid4().hex[:6]}@example.com")
    shared_agent = await agent_of(client, llm, owner["access_token"])
    await converse(client, owner["access_token"], shared_agent, "Merger plans of the owner")
    # A member of the same tenant and someone of another tenant, with titles that share the words.
    await converse(client, colleague["access_token"], shared_agent, "Merger plans of the colleague")
    await converse(client, stranger["access_token"], await agent_of(client, llm, stranger["access_token"]), "Merger")

    assert await titles(client, owner["access_token"], q="merger") == (["Merger plans of the owner"], 1)
    assert await titles(client, colleague["access_token"], q="merger") == (["Merger plans of the colleague"], 1)
    assert await titles(client, stranger["access_token"], q="merger plans") == ([], 0)
    assert await titles(client, stranger["access_token"], q="owner") == ([], 0)
