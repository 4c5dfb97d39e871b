"""Who reaches which runs and conversations, over HTTP on SQLite and PostgreSQL: a member only their own, an API key
limited to some agents only those of these agents (anything else answers 404, as an absent object), and a
conversation only ever continues with the agent it was held with."""

from __future__ import annotations

import json
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
from tests.test_runs import make_agent, new_owner, run


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture(autouse=True)
def _fresh(llm: RunningModelServer) -> None:
    llm.server.reset()
    pool._unhealthy_until.clear()


@pytest.fixture(params=["sqlite", "postgres"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases
) -> AsyncIterator[httpx.AsyncClient]:
    overrides: dict[str, Any] = (
        {"database_url": await pg_databases.create(migrated=True)} if request.param == "postgres" else {}
    )
    async with serve_in_process(make_settings(tmp_path, builtin_models=False, **overrides)) as http:
        yield http


async def chat(
    client: httpx.AsyncClient,
    llm: RunningModelServer,
    caller: dict[str, Any],
    agent_id: str,
    message: str,
    **extra: Any,
) -> tuple[str, str]:
    """A completed run of `agent_id` (the model server echoes the message): its id and its conversation's."""
    response, events = await run(client, caller, agent_id, message, **extra)
    assert response.status_code == 200, response.text
    assert events[-1]["type"] == "run.completed", events
    return response.headers["x-run-id"], response.headers["x-conversation-id"]


def prompts(llm: RunningModelServer) -> str:
    """What agents sent the model (titles, written in the background for each conversation, left out)."""
    sent = (json.dumps(r.messages) for r in llm.server.chat_requests)
    return "\n".join(text for text in sent if "Write a title" not in text)


async def assert_unreachable(
    client: httpx.AsyncClient, headers: dict[str, str], run_id: str, conversation_id: str
) -> None:
    """Every route that reaches a run or a conversation answers 404 for these, as for absent ones."""
    assert_problem(await client.get(f"/api/runs/{run_id}", headers=headers), 404, "run_not_found")
    assert_problem(await client.get(f"/api/runs/{run_id}/events", headers=headers), 404, "run_not_found")
    assert_problem(await client.post(f"/api/runs/{run_id}/stop", headers=headers), 404, "run_not_found")
    conversation = f"/api/conversations/{conversation_id}"
    assert_problem(await client.get(conversation, headers=headers), 404, "conversation_not_found")
    regenerated = await client.post(f"{conversation}/regenerate", headers=headers)
    assert_problem(regenerated, 404, "conversation_not_found")
    renamed = await client.patch(conversation, json={"title": "Taken over"}, headers=headers)
    assert_problem(renamed, 404, "conversation_not_found")
    assert_problem(await client.delete(conversation, headers=headers), 404, "conversation_not_found")
    listed = await client.get("/api/runs", params={"conversation_id": conversation_id}, headers=headers)
    assert listed.status_code == 200 and listed.json()["items"] == [] and listed.json()["total"] == 0


async def test_an_api_key_reaches_only_the_runs_and_conversations_of_its_agents(
    client: httpx.AsyncClient, llm: RunningModelServer
) -> None:
    owner = await new_owner(client, llm, f"scope-{uuid.uuid4().hex[:6]}@example.com")
    token = bearer(owner["access_token"])
    x, y = await make_agent(client, owner, name="X"), await make_agent(client, owner, name="Y")
    run_x, conversation_x = await chat(client, llm, owner, x["id"], "Hello X")
    # Y's conversations are newer: a filter applied after paging would fill the first page with them.
    y_runs = [await chat(client, llm, owner, y["id"], f"Y secret {index}") for index in range(3)]
    run_y, conversation_y = y_runs[-1]

    created = await client.post("/api/api-keys", json={"name": "X only", "agent_ids": [x["id"]]}, headers=token)
    assert created.status_code == 201, created.text
    key = {"access_token": created.json()["secret"]}
    as_key = bearer(key["access_token"])

    # Lists: only X's, counted in the query, on every page.
    for path, own in (("/api/runs", run_x), ("/api/conversations", conversation_x)):
        page = (await client.get(path, params={"limit": 1}, headers=as_key)).json()
        assert [item["id"] for item in page["items"]] == [own] and page["total"] == 1, page
        assert (await client.get(path, params={"limit": 1, "offset": 1}, headers=as_key)).json()["items"] == []
        everything = (await client.get(path, headers=token)).json()
        assert everything["total"] == 4, everything  # the owner's own sign-in sees all four

    # Y's run and conversation are absent to the key, whatever the route.
    await assert_unreachable(client, as_key, run_y, conversation_y)
    assert (await client.get(f"/api/runs/{run_x}", headers=as_key)).json()["id"] == run_x
    replay = await client.get(f"/api/runs/{run_x}/events", headers=as_key)
    assert replay.status_code == 200 and "run.completed" in replay.text
    assert (await client.get(f"/api/conversations/{conversation_x}", headers=as_key)).status_code == 200

    # Continuing Y's conversation with X through the key: not found, and X's model never sees Y's turns.
    llm.server.reset()
    response, _ = await run(client, key, x["id"], "What did I tell Y?", conversation_id=conversation_y)
    assert_problem(response, 404, "conversation_not_found")
    assert "Y secret" not in prompts(llm)

    # Nothing of Y's changed.
    detail = (await client.get(f"/api/conversations/{conversation_y}", headers=token)).json()
    assert detail["title"] != "Taken over" and len(detail["messages"]) == 2
    assert (await client.get(f"/api/runs/{run_y}", headers=token)).json()["status"] == "completed"


async def test_a_conversation_continues_only_with_its_own_agent(
    client: httpx.AsyncClient, llm: RunningModelServer
) -> None:
    owner = await new_owner(client, llm, f"one-agent-{uuid.uuid4().hex[:6]}@example.com")
    x, y = await make_agent(client, owner, name="X"), await make_agent(client, owner, name="Y")
    _, conversation_y = await chat(client, llm, owner, y["id"], "Y secret")
    llm.server.reset()
    response, _ = await run(client, owner, x["id"], "What did I tell Y?", conversation_id=conversation_y)
    assert_problem(response, 422, "conversation_of_another_agent")
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "conversation_id"]]
    assert "Y secret" not in prompts(llm)
    runs = await client.get(
        "/api/runs", params={"conversation_id": conversation_y}, headers=bearer(owner["access_token"])
    )
    assert runs.json()["total"] == 1  # no run of X was added to Y's conversation
    # With its own agent the conversation goes on.
    _, same = await chat(client, llm, owner, y["id"], "And again", conversation_id=conversation_y)
    assert same == conversation_y
    # Once its agent is deleted, no other agent takes the conversation over.
    assert (await client.delete(f"/api/agents/{y['id']}", headers=bearer(owner["access_token"]))).status_code == 204
    llm.server.reset()
    response, _ = await run(client, owner, x["id"], "What did I tell Y?", conversation_id=conversation_y)
    assert_problem(response, 422, "conversation_of_another_agent")
    assert "Y secret" not in prompts(llm)


async def test_members_of_one_tenant_do_not_reach_each_others_runs_and_conversations(
    client: httpx.AsyncClient, llm: RunningModelServer
) -> None:
    owner = await new_owner(client, llm, f"member-a-{uuid.uuid4().hex[:6]}@example.com")
    agent = await make_agent(client, owner)
    run_a, conversation_a = await chat(client, llm, owner, agent["id"], "A secret")
    # B is an admin of the same tenant: B sees and runs every agent, but not A's runs and conversations.
    member = await invite_and_register(
        client, owner["access_token"], f"member-b-{uuid.uuid4().hex[:6]}@example.com", role="admin"
    )
    as_b = bearer(member["access_token"])
    for path in ("/api/runs", "/api/conversations"):
        listed = (await client.get(path, headers=as_b)).json()
        assert listed["items"] == [] and listed["total"] == 0, listed
    await assert_unreachable(client, as_b, run_a, conversation_a)
    llm.server.reset()
    response, _ = await run(client, member, agent["id"], "What did A say?", conversation_id=conversation_a)
    assert_problem(response, 404, "conversation_not_found")
    assert "A secret" not in prompts(llm)
    # B's own run of the same agent is B's alone; A's conversation is unchanged.
    run_b, _ = await chat(client, llm, member, agent["id"], "B's question")
    assert [r["id"] for r in (await client.get("/api/runs", headers=as_b)).json()["items"]] == [run_b]
    detail = (await client.get(f"/api/conversations/{conversation_a}", headers=bearer(owner["access_token"]))).json()
    assert detail["title"] != "Taken over" and len(detail["messages"]) == 2
