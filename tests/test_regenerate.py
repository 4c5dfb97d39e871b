"""Regenerating a conversation's last answer over HTTP, on SQLite and PostgreSQL: the new answer replaces the old
one in the conversation and in what the model is sent, the old run stays readable, and every refusal is a problem
document (unknown or unreachable conversation, a run still going on, nothing to answer, a deleted agent)."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.jobs.registry import JobContext
from nexent.providers import pool
from nexent.runtime.jobs import TITLE_CONVERSATION, title_conversation
from nexent.runtime.models import Conversation
from nexent.runtime.service import RuntimeService
from tests.conftest import PostgresDatabases, make_settings, serve_in_process, wait_until
from tests.support.identity import bearer, invite_and_register
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server
from tests.test_http import assert_problem
from tests.test_runs import make_agent, new_owner, parse_sse, run


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture(autouse=True)
def _fresh(llm: RunningModelServer) -> Iterator[None]:
    llm.server.reset()
    pool._unhealthy_until.clear()
    numbers = itertools.count(1)

    def respond(request: Any) -> ChatReply:
        if "Write a title" in json.dumps(request.messages):
            return ChatReply.text("A title")
        return ChatReply.text(f"Answer {next(numbers)}")

    llm.server.responder = respond
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


@pytest.fixture
async def owner(client: httpx.AsyncClient, llm: RunningModelServer) -> dict[str, Any]:
    return await new_owner(client, llm, f"regen-{uuid.uuid4().hex[:6]}@example.com")


async def regenerate(client: httpx.AsyncClient, caller: dict[str, Any], conversation_id: str) -> httpx.Response:
    return await client.post(f"/api/conversations/{conversation_id}/regenerate", headers=bearer(caller["access_token"]))


def agent_prompts(llm: RunningModelServer) -> list[str]:
    """What agents sent the model, request by request (titles left out)."""
    sent = (json.dumps(r.messages) for r in llm.server.chat_requests)
    return [text for text in sent if "Write a title" not in text]


async def test_the_new_answer_replaces_the_last_one(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    headers = bearer(owner["access_token"])
    agent = await make_agent(client, owner)
    first, _ = await run(client, owner, agent["id"], "My name is Ada.")
    conversation_id = first.headers["x-conversation-id"]
    second, events = await run(client, owner, agent["id"], "What is my name?", conversation_id=conversation_id)
    assert events[-1]["data"]["answer"] == "Answer 2"
    old_run = second.headers["x-run-id"]

    response = await regenerate(client, owner, conversation_id)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-conversation-id"] == conversation_id
    new_run = response.headers["x-run-id"]
    assert new_run not in (old_run, first.headers["x-run-id"])
    events = parse_sse(response.text)
    assert events[0]["type"] == "run.started" and events[0]["data"]["conversation_id"] == conversation_id
    assert events[-1]["type"] == "run.completed" and events[-1]["data"]["answer"] == "Answer 3"

    # The model got the same question with the earlier turns, but not the answer being replaced.
    prompt = agent_prompts(llm)[-1]
    assert "What is my name?" in prompt and "My name is Ada." in prompt and "Answer 1" in prompt
    assert "Answer 2" not in prompt

    # The conversation shows the new answer in place of the old one.
    detail = (await client.get(f"/api/conversations/{conversation_id}", headers=headers)).json()
    assert [(m["role"], m["content"]) for m in detail["messages"]] == [
        ("user", "My name is Ada."),
        ("assistant", "Answer 1"),
        ("user", "What is my name?"),
        ("assistant", "Answer 3"),
    ]
    assert [m["run_id"] for m in detail["messages"][2:]] == [new_run, new_run]

    # The old run stays readable, with its answer and events.
    old = (await client.get(f"/api/runs/{old_run}", headers=headers)).json()
    assert old["status"] == "completed" and old["final_answer"] == "Answer 2"
    replay = await client.get(f"/api/runs/{old_run}/events", headers=headers)
    assert replay.status_code == 200 and "Answer 2" in replay.text
    runs = (await client.get("/api/runs", params={"conversation_id": conversation_id}, headers=headers)).json()
    assert runs["total"] == 3
    new = (await client.get(f"/api/runs/{new_run}", headers=headers)).json()
    assert new["input"] == "What is my name?" and new["final_answer"] == "Answer 3"

    # Again: each regeneration replaces the answer before it.
    again = await regenerate(client, owner, conversation_id)
    assert parse_sse(again.text)[-1]["data"]["answer"] == "Answer 4"
    assert "Answer 3" not in agent_prompts(llm)[-1] and "Answer 2" not in agent_prompts(llm)[-1]
    detail = (await client.get(f"/api/conversations/{conversation_id}", headers=headers)).json()
    assert [m["content"] for m in detail["messages"]] == ["My name is Ada.", "Answer 1", "What is my name?", "Answer 4"]
    # A conversation continued afterwards sees the regenerated answer as its history.
    await run(client, owner, agent["id"], "Thanks.", conversation_id=conversation_id)
    prompt = agent_prompts(llm)[-1]
    assert "Answer 4" in prompt and "Answer 3" not in prompt and "Answer 2" not in prompt


async def test_a_failed_last_run_can_be_answered_again(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    agent = await make_agent(client, owner, max_steps=2)
    llm.server.enqueue(ChatReply.error(500, "down"), ChatReply.error(500, "down"), ChatReply.error(500, "down"))
    first, events = await run(client, owner, agent["id"], "Hello?")
    assert events[-1]["type"] == "run.failed"
    llm.server.reset()
    llm.server.responder = lambda request: ChatReply.text("Hello, at last.")
    response = await regenerate(client, owner, first.headers["x-conversation-id"])
    assert parse_sse(response.text)[-1]["data"]["answer"] == "Hello, at last."
    detail = (
        await client.get(
            f"/api/conversations/{first.headers['x-conversation-id']}", headers=bearer(owner["access_token"])
        )
    ).json()
    assert [m["content"] for m in detail["messages"]] == ["Hello?", "Hello, at last."]


async def test_refusals(client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer) -> None:
    token = owner["access_token"]
    assert_problem(await regenerate(client, owner, str(uuid.uuid4())), 404, "conversation_not_found")
    assert_problem(await regenerate(client, owner, "not-a-uuid"), 422, "validation_error")
    anonymous = await client.post(f"/api/conversations/{uuid.uuid4()}/regenerate")
    assert anonymous.status_code == 401

    agent = await make_agent(client, owner)
    first, _ = await run(client, owner, agent["id"], "Hi")
    conversation_id = first.headers["x-conversation-id"]

    # Another member of the tenant does not reach the owner's conversation.
    member = await invite_and_register(client, token, f"member-{uuid.uuid4().hex[:6]}@example.com", role="admin")
    assert_problem(await regenerate(client, member, conversation_id), 404, "conversation_not_found")

    # An API key limited to another agent does not reach it; one limited to its agent regenerates it.
    other = await make_agent(client, owner)
    for agent_ids, expected in (([other["id"]], 404), ([agent["id"]], 200)):
        created = await client.post(
            "/api/api-keys", json={"name": "bot", "agent_ids": agent_ids}, headers=bearer(token)
        )
        key = {"access_token": created.json()["secret"]}
        answer = await regenerate(client, key, conversation_id)
        assert answer.status_code == expected, answer.text
    assert_problem(await regenerate(client, key, str(uuid.uuid4())), 404, "conversation_not_found")

    # While a run of the conversation is going on: 409, and nothing changes.
    llm.server.enqueue(ChatReply.text("Slow answer.").paced(delay=2.0))
    slow = asyncio.create_task(run(client, owner, agent["id"], "Take your time.", conversation_id=conversation_id))
    await llm.server.await_in_flight(1, timeout=10)

    async def recorded() -> bool:
        runs = await client.get("/api/runs", params={"conversation_id": conversation_id}, headers=bearer(token))
        return bool(runs.json()["total"] == 3)

    await wait_until(recorded, timeout=10, interval=0.02)
    busy = assert_problem(await regenerate(client, owner, conversation_id), 409, "conversation_busy")
    assert "still going on" in str(busy["detail"])
    await slow
    detail = (await client.get(f"/api/conversations/{conversation_id}", headers=bearer(token))).json()
    assert [m["content"] for m in detail["messages"]][-2:] == ["Take your time.", "Slow answer."]

    # The agent was deleted: its conversation cannot be answered again.
    assert (await client.delete(f"/api/agents/{agent['id']}", headers=bearer(token))).status_code == 204
    assert_problem(await regenerate(client, owner, conversation_id), 422, "conversation_of_another_agent")


async def test_two_regenerations_at_once_start_one_run(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    headers = bearer(owner["access_token"])
    agent = await make_agent(client, owner)
    first, _ = await run(client, owner, agent["id"], "Hi")
    conversation_id = first.headers["x-conversation-id"]
    llm.server.responder = lambda request: ChatReply.text("Again.").paced(delay=0.5)
    answers = await asyncio.gather(*(regenerate(client, owner, conversation_id) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 409, 409], [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert_problem(answer, 409, "conversation_busy")  # refused when read, or when its record was claimed
    runs = (await client.get("/api/runs", params={"conversation_id": conversation_id}, headers=headers)).json()
    assert runs["total"] == 2 and {r["status"] for r in runs["items"]} == {"completed"}
    detail = (await client.get(f"/api/conversations/{conversation_id}", headers=headers)).json()
    assert [m["content"] for m in detail["messages"]] == ["Hi", "Again."]


async def test_a_title_written_meanwhile_does_not_make_the_conversation_busy(
    server: serve_in_process,
    client: httpx.AsyncClient,
    owner: dict[str, Any],
    llm: RunningModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The model's title lands between regenerating's read of the conversation and its claim: it is no new run, so
    regenerating goes on (it answered 409 `conversation_busy` when the title write moved `updated_at`)."""
    headers = bearer(owner["access_token"])
    agent = await make_agent(client, owner)
    first, _ = await run(client, owner, agent["id"], "Hi")
    conversation_id = first.headers["x-conversation-id"]

    async def conversation() -> dict[str, Any]:
        detail: dict[str, Any] = (await client.get(f"/api/conversations/{conversation_id}", headers=headers)).json()
        return detail

    async def titled() -> bool:
        return bool((await conversation())["title"] == "A title")

    await wait_until(titled)
    started = (await client.get(f"/api/runs/{first.headers['x-run-id']}", headers=headers)).json()["created_at"]
    # The title is background work: the conversation was last updated when its run started.
    assert (await conversation())["updated_at"] == started

    def respond(request: Any) -> ChatReply:
        if "Write a title" in json.dumps(request.messages):
            return ChatReply.text("A better title")
        return ChatReply.text("Answer again")

    llm.server.responder = respond
    prepare = RuntimeService.prepare

    async def title_then_prepare(self: RuntimeService, *args: Any, **kwargs: Any) -> Any:
        # The real title job, run to its end between the read and the claim.
        context = JobContext(
            job_id=uuid.uuid4(),
            name=TITLE_CONVERSATION,
            payload={"conversation_id": conversation_id, "model_id": None},
            tenant_id=self.caller.tenant_id,
            attempt=1,
            engines=server.app.state.engines,
        )
        assert await title_conversation(context) == {"title": "A better title"}
        return await prepare(self, *args, **kwargs)

    monkeypatch.setattr(RuntimeService, "prepare", title_then_prepare)
    answer = await regenerate(client, owner, conversation_id)
    assert answer.status_code == 200, answer.text
    assert parse_sse(answer.text)[-1]["data"]["answer"] == "Answer again"
    detail = await conversation()
    assert detail["title"] == "A better title"
    assert [m["content"] for m in detail["messages"]] == ["Hi", "Answer again"]


async def test_a_conversation_without_a_message_has_nothing_to_regenerate(
    server: serve_in_process, client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    agent = await make_agent(client, owner)
    me = (await client.get("/api/me", headers=bearer(owner["access_token"]))).json()
    conversation_id = uuid.uuid4()
    async with server.app.state.engines.sessions() as session, session.begin():
        session.add(
            Conversation(
                id=conversation_id,
                tenant_id=uuid.UUID(me["tenant"]["id"]),
                user_id=uuid.UUID(me["user"]["id"]),
                agent_id=uuid.UUID(agent["id"]),
                title="Empty",
            )
        )
    problem = assert_problem(await regenerate(client, owner, str(conversation_id)), 409, "nothing_to_regenerate")
    assert problem["detail"]
