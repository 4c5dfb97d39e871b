"""Stateless runs (`RuntimeService.start_stateless`, what the OpenAI-compatible API runs): the published version
runs with the caller's history as its context, and only the run's record is stored."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from nexent.core.errors import AppError
from nexent.identity.auth import Caller
from nexent.identity.models import Role
from nexent.identity.tokens import decode_access_token
from nexent.runtime.events import follow
from nexent.runtime.models import Conversation, Message
from nexent.runtime.service import RuntimeService
from tests.conftest import make_settings, serve_in_process
from tests.support.identity import bearer, register
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[serve_in_process]:
    server = serve_in_process(make_settings(tmp_path_factory.mktemp("stateless"), builtin_models=False))
    async with server:
        yield server


@pytest.fixture(scope="module")
async def owner(served: serve_in_process, llm: RunningModelServer) -> dict[str, Any]:
    client = served._client
    assert client is not None
    pair = await register(client, f"stateless-{uuid.uuid4().hex[:6]}@example.com")
    headers = bearer(pair["access_token"])
    body = {"name": "Scripted", "kind": "llm", "model": "scripted", "base_url": llm.base_url, "timeout_seconds": 10}
    model = await client.post("/api/models", json=body, headers=headers)
    assert model.status_code == 201, model.text
    agent = await client.post("/api/agents", json={"name": "Helper", "model_id": model.json()["id"]}, headers=headers)
    assert agent.status_code == 201, agent.text
    return {**pair, "agent_id": agent.json()["id"]}


def caller_of(served: serve_in_process, owner: dict[str, Any]) -> Caller:
    claims = decode_access_token(served.app.state.engines.keys.jwt_secret, owner["access_token"])
    return Caller(user_id=claims.user_id, tenant_id=claims.tenant_id, role=Role.OWNER)


async def stored_counts(served: serve_in_process) -> tuple[int, int]:
    async with served.app.state.engines.sessions() as session:
        conversations = await session.scalar(select(func.count()).select_from(Conversation))
        messages = await session.scalar(select(func.count()).select_from(Message))
    return int(conversations or 0), int(messages or 0)


async def run_stateless(
    served: serve_in_process, owner: dict[str, Any], message: str, history: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    engines, caller = served.app.state.engines, caller_of(served, owner)
    async with engines.sessions() as session:
        service = RuntimeService(session, engines, caller)
        run = await service.start_stateless(served.app.state.runs, uuid.UUID(owner["agent_id"]), message, history)
    assert run.conversation_id is None
    return [{"type": e.type, **e.data} async for e in follow(engines, caller.tenant_id, run.id, after=0) if e]


async def test_a_stateless_run_uses_the_given_history_and_stores_only_the_run(
    served: serve_in_process, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    client = served._client
    assert client is not None
    before = await stored_counts(served)
    llm.server.reset()
    llm.server.enqueue(ChatReply.text("Your name is Ada."))
    history = [("user", "My name is Ada."), ("assistant", "Nice to meet you, Ada.")]
    events = await run_stateless(served, owner, "What is my name?", history)
    assert events[0]["type"] == "run.started" and events[0]["conversation_id"] is None
    assert events[-1]["type"] == "run.completed" and events[-1]["answer"] == "Your name is Ada."
    # The model got the caller's history as the conversation so far, and no title was asked for.
    assert len(llm.server.chat_requests) == 1
    prompt = json.dumps(llm.server.chat_requests[0].messages)
    assert "My name is Ada." in prompt and "Nice to meet you, Ada." in prompt and "What is my name?" in prompt
    assert await stored_counts(served) == before
    runs = (await client.get("/api/runs", headers=bearer(owner["access_token"]))).json()["items"]
    stored = next(r for r in runs if r["input"] == "What is my name?")
    assert stored["status"] == "completed" and stored["final_answer"] == "Your name is Ada."
    assert stored["conversation_id"] is None


async def test_a_stateless_run_without_history_gets_the_message_alone(
    served: serve_in_process, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    llm.server.reset()
    llm.server.enqueue(ChatReply.text("Hello!"))
    events = await run_stateless(served, owner, "Hi there", [])
    assert events[-1]["type"] == "run.completed"
    assert "Hi there" in json.dumps(llm.server.chat_requests[0].messages[-1])
    assert "Conversation so far" not in json.dumps(llm.server.chat_requests[0].messages)


async def test_a_workspace_tool_in_a_stateless_run_says_there_is_no_conversation(
    served: serve_in_process, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    client = served._client
    assert client is not None
    headers = bearer(owner["access_token"])
    patched = await client.patch(
        f"/api/agents/{owner['agent_id']}", json={"tools": [{"name": "workspace_write"}]}, headers=headers
    )
    assert patched.status_code == 200, patched.text
    try:
        llm.server.reset()
        write = ChatReply.tool_call("workspace_write", {"path": "a.txt", "content": "x"})
        llm.server.enqueue(write, ChatReply.text("Ok"))
        events = await run_stateless(served, owner, "Save a file", [])
        result = next(e for e in events if e["type"] == "tool.result")
        assert "no workspace outside a conversation" in json.dumps(result)
        assert events[-1]["type"] == "run.completed"
    finally:
        await client.patch(f"/api/agents/{owner['agent_id']}", json={"tools": []}, headers=headers)


async def test_a_stateless_run_checks_access_as_a_run_does(served: serve_in_process, owner: dict[str, Any]) -> None:
    engines, caller = served.app.state.engines, caller_of(served, owner)
    async with engines.sessions() as session:
        with pytest.raises(AppError) as raised:
            await RuntimeService(session, engines, caller).start_stateless(
                served.app.state.runs, uuid.uuid4(), "Hi", []
            )
    assert raised.value.status == 404
    limited = Caller(
        user_id=caller.user_id,
        tenant_id=caller.tenant_id,
        role=Role.OWNER,
        api_key_id=uuid.uuid4(),
        allowed_agent_ids=frozenset({uuid.uuid4()}),
    )
    async with engines.sessions() as session:
        with pytest.raises(AppError) as raised:
            await RuntimeService(session, engines, limited).start_stateless(
                served.app.state.runs, uuid.UUID(owner["agent_id"]), "Hi", []
            )
    assert raised.value.status == 404
