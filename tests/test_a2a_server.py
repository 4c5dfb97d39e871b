"""Our published agents as A2A agents, through the official `a2a-sdk` client over real HTTP (JSON-RPC and HTTP+JSON):
the card, send, stream, get, list, cancel (the run stops), resubscribe, multi-turn through `contextId`, API keys
(wrong, missing, limited to another agent, another tenant's), agents not served (404), public exposure. One server
and one scripted model server for the module."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, cast

import httpx
import pytest
import uvicorn
from a2a.client import Client, ClientConfig, create_client
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskState,
)
from a2a.utils.errors import TaskNotCancelableError, TaskNotFoundError

from nexent.providers import pool
from nexent.server import create_app
from nexent.settings import Service, Settings
from tests.conftest import make_settings, wait_until
from tests.support.identity import bearer, register
from tests.support.model_server import ChatReply, RecordedRequest, RunningModelServer, run_model_server

JSONRPC, HTTP_JSON = "JSONRPC", "HTTP+JSON"


@dataclass
class World:
    base_url: str
    llm: RunningModelServer
    settings: Settings
    token: str  # A's owner
    key: str  # A's owner's key: every agent of A
    limited_key: str  # limited to `public`
    other_key: str  # B's owner's key
    helper: str  # A, published, exposed to API keys
    public: str  # A, published, exposed publicly
    unexposed: str  # A, published, not exposed
    unpublished: str  # A, exposed to API keys, never published
    other: str  # B, published, exposed to API keys


async def expect(response: Any, status: int) -> Any:
    response = await response
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def agent(http: httpx.AsyncClient, token: str, model_id: str, name: str, exposure: str, publish: bool) -> str:
    body = {"name": name, "description": f"{name} answers questions.", "model_id": model_id, "max_steps": 2}
    created = await expect(http.post("/api/agents", json=body, headers=bearer(token)), 201)
    if publish:
        await expect(http.post(f"/api/agents/{created['id']}/publish", json={}, headers=bearer(token)), 201)
    changed = await expect(
        http.patch(f"/api/agents/{created['id']}", json={"a2a_exposure": exposure}, headers=bearer(token)), 200
    )
    assert changed["a2a_exposure"] == exposure
    return str(created["id"])


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory, llm: RunningModelServer) -> AsyncIterator[World]:
    settings = make_settings(tmp_path_factory.mktemp("a2a"), builtin_models=False, a2a_public_rate_per_minute=1000)
    app = create_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=1))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not serving.done(), "the app did not start"
        await asyncio.sleep(0.01)
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            owner = await register(http, "a2a-owner@example.com")
            token = owner["access_token"]
            model = {"name": "Scripted", "kind": "llm", "model": "scripted", "base_url": llm.base_url}
            model_id = (await expect(http.post("/api/models", json=model, headers=bearer(token)), 201))["id"]
            helper = await agent(http, token, model_id, "helper", "api_key", True)
            public = await agent(http, token, model_id, "open-helper", "public", True)
            unexposed = await agent(http, token, model_id, "private-helper", "off", True)
            unpublished = await agent(http, token, model_id, "draft-helper", "api_key", False)
            key = await expect(http.post("/api/api-keys", json={"name": "all"}, headers=bearer(token)), 201)
            limited = await expect(
                http.post("/api/api-keys", json={"name": "one", "agent_ids": [public]}, headers=bearer(token)), 201
            )
            other_owner = await register(http, "a2a-other@example.com")
            other_token = other_owner["access_token"]
            other_model_id = (await expect(http.post("/api/models", json=model, headers=bearer(other_token)), 201))[
                "id"
            ]
            other = await agent(http, other_token, other_model_id, "helper", "api_key", True)
            other_key = await expect(http.post("/api/api-keys", json={"name": "b"}, headers=bearer(other_token)), 201)
        yield World(
            base_url=base_url,
            llm=llm,
            settings=settings,
            token=token,
            key=key["secret"],
            limited_key=limited["secret"],
            other_key=other_key["secret"],
            helper=helper,
            public=public,
            unexposed=unexposed,
            unpublished=unpublished,
            other=other,
        )
    finally:
        server.should_exit = True
        await serving
        sock.close()


# Replies by the question they answer (the last user message ends with it): the conversation title jobs that end
# the runs of one test must not take the replies queued for the next, so nothing is queued.
SCRIPT: dict[str, ChatReply] = {}


def answer_by_question(request: RecordedRequest) -> ChatReply:
    asked = request.last_user_message
    for question, reply in SCRIPT.items():
        if asked.endswith(question):
            return reply
    return ChatReply.text("A title")


@pytest.fixture(autouse=True)
def _fresh(llm: RunningModelServer) -> None:
    llm.server.reset()
    SCRIPT.clear()
    llm.server.responder = answer_by_question
    pool._unhealthy_until.clear()


@asynccontextmanager
async def serving(settings: Settings, service: Service | None = None) -> AsyncIterator[str]:
    """Another process's app on the same database (`service`: a split-shape service); its base URL."""
    app = create_app(settings, service=service)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), "the app did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def connect(
    world: World, agent_id: str, key: str | None, binding: str = JSONRPC, streaming: bool = True
) -> Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    http = httpx.AsyncClient(headers=headers, timeout=30)
    config = ClientConfig(streaming=streaming, httpx_client=http, supported_protocol_bindings=[binding])
    return await create_client(f"{world.base_url}/a2a/{agent_id}", client_config=config)


def ask(text: str, context_id: str | None = None, *, immediately: bool = False) -> SendMessageRequest:
    message = Message(role=Role.ROLE_USER, parts=[Part(text=text)], message_id=str(uuid.uuid4()))
    if context_id:
        message.context_id = context_id
    return SendMessageRequest(message=message, configuration=SendMessageConfiguration(return_immediately=immediately))


async def final_task(events: AsyncIterator[StreamResponse]) -> tuple[Task | None, list[StreamResponse]]:
    seen: list[StreamResponse] = []
    task: Task | None = None
    async for event in events:
        seen.append(event)
        if event.HasField("task"):
            task = event.task
    return task, seen


def answer_of(task: Task) -> str:
    return "".join(part.text for artifact in task.artifacts for part in artifact.parts)


async def test_the_card_describes_the_agent_and_how_to_authenticate(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        card = await expect(http.get(f"/a2a/{world.helper}/.well-known/agent-card.json"), 200)
        assert card["name"] == "helper"
        assert card["description"] == "helper answers questions."
        assert card["capabilities"]["streaming"] is True
        assert not card["capabilities"].get("pushNotifications")
        assert {i["protocolBinding"] for i in card["supportedInterfaces"]} == {JSONRPC, HTTP_JSON}
        assert card["supportedInterfaces"][0]["url"] == f"{world.base_url}/a2a/{world.helper}"
        assert card["skills"][0]["id"] == "chat"
        assert card["securitySchemes"]["apiKey"]["httpAuthSecurityScheme"]["scheme"] == "Bearer"
        public = await expect(http.get(f"/a2a/{world.public}/.well-known/agent-card.json"), 200)
        assert "securitySchemes" not in public
        # Not exposed, never published, another name: no card, as for an unknown agent.
        for absent in (world.unexposed, world.unpublished, str(uuid.uuid4()), "not-an-id"):
            problem = await expect(http.get(f"/a2a/{absent}/.well-known/agent-card.json"), 404)
            assert problem["code"] == "agent_not_found"


@pytest.mark.parametrize("binding", [JSONRPC, HTTP_JSON])
async def test_send_get_and_list_a_task(world: World, binding: str) -> None:
    SCRIPT["Capital of France?"] = ChatReply.text("Paris is the capital of France.")
    async with await connect(world, world.helper, world.key, binding, streaming=False) as client:
        task, _ = await final_task(client.send_message(ask("Capital of France?")))
        assert task is not None
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert answer_of(task) == "Paris is the capital of France."
        fetched = await client.get_task(GetTaskRequest(id=task.id))
        assert fetched.status.state == TaskState.TASK_STATE_COMPLETED
        assert answer_of(fetched) == "Paris is the capital of France."
        listed = await client.list_tasks(ListTasksRequest(context_id=task.context_id))
        assert [t.id for t in listed.tasks] == [task.id]
    asked = [r.last_user_message for r in world.llm.server.requests_to("/chat/completions")]
    assert any(message.endswith("Capital of France?") for message in asked), asked


@pytest.mark.parametrize("binding", [JSONRPC, HTTP_JSON])
async def test_a_streamed_answer_arrives_as_artifact_updates(world: World, binding: str) -> None:
    answer = "Sunny all week, with a light breeze in the afternoons."
    SCRIPT["Weather?"] = ChatReply.text(answer).paced(chunk_size=8, chunk_delay=0.02)
    async with await connect(world, world.helper, world.key, binding) as client:
        task, events = await final_task(client.send_message(ask("Weather?")))
    chunks = [part.text for e in events if e.HasField("artifact_update") for part in e.artifact_update.artifact.parts]
    states = [e.status_update.status.state for e in events if e.HasField("status_update")]
    assert len(chunks) > 1 and "".join(chunks) == answer
    assert states[0] == TaskState.TASK_STATE_WORKING and states[-1] == TaskState.TASK_STATE_COMPLETED
    assert task is not None  # the task as it started, then its updates
    async with await connect(world, world.helper, world.key, binding) as client:
        stored = await client.get_task(GetTaskRequest(id=task.id))
    assert stored.status.state == TaskState.TASK_STATE_COMPLETED and answer_of(stored) == answer


async def test_multi_turn_through_the_context_id_continues_the_conversation(world: World) -> None:
    SCRIPT["My name is Ada."] = ChatReply.text("Noted: your name is Ada.")
    SCRIPT["What is my name?"] = ChatReply.text("Your name is Ada.")
    async with await connect(world, world.helper, world.key, streaming=False) as client:
        first, _ = await final_task(client.send_message(ask("My name is Ada.")))
        assert first is not None
        second, _ = await final_task(client.send_message(ask("What is my name?", first.context_id)))
        assert second is not None and second.context_id == first.context_id and second.id != first.id
        assert answer_of(second) == "Your name is Ada."
        listed = await client.list_tasks(ListTasksRequest(context_id=first.context_id))
        assert {t.id for t in listed.tasks} == {first.id, second.id}
    last = next(r for r in world.llm.server.chat_requests if r.last_user_message.endswith("What is my name?"))
    said = [str(m.get("content")) for m in last.messages]
    assert any("My name is Ada." in s for s in said) and any("Noted: your name is Ada." in s for s in said), said


async def run_status(world: World, run_id: str) -> str:
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        run = await expect(http.get(f"/api/runs/{run_id}", headers=bearer(world.token)), 200)
    return str(run["status"])


async def test_cancel_stops_the_run(world: World) -> None:
    SCRIPT["Talk for a long time."] = ChatReply.text("word " * 400).paced(chunk_size=5, chunk_delay=0.05)
    async with await connect(world, world.helper, world.key) as client:
        stream = cast(AsyncGenerator[StreamResponse], client.send_message(ask("Talk for a long time.")))
        task_id = ""
        async for event in stream:
            if event.HasField("artifact_update"):
                task_id = event.artifact_update.task_id
                break
        assert task_id
        await stream.aclose()
        canceled = await client.cancel_task(CancelTaskRequest(id=task_id))
        assert canceled.status.state == TaskState.TASK_STATE_CANCELED
        run_id = str(canceled.metadata["nexentRunId"])

        async def stopped() -> bool:
            return await run_status(world, run_id) == "stopped"

        await wait_until(stopped, timeout=20)
        fetched = await client.get_task(GetTaskRequest(id=task_id))
        assert fetched.status.state == TaskState.TASK_STATE_CANCELED
        with pytest.raises(TaskNotCancelableError):  # a finished task cannot be canceled
            await client.cancel_task(CancelTaskRequest(id=task_id))


async def test_resubscribing_follows_a_running_task_to_its_end(world: World) -> None:
    answer = "Here is a slow but complete answer."
    SCRIPT["Slowly, please."] = ChatReply.text(answer).paced(delay=0.3, chunk_size=4, chunk_delay=0.03)
    async with await connect(world, world.helper, world.key, streaming=False) as client:
        started, _ = await final_task(client.send_message(ask("Slowly, please.", immediately=True)))
        assert started is not None and started.status.state != TaskState.TASK_STATE_COMPLETED
    async with await connect(world, world.helper, world.key) as client:
        _, events = await final_task(client.subscribe(SubscribeToTaskRequest(id=started.id)))
        states = [e.status_update.status.state for e in events if e.HasField("status_update")]
        assert states and states[-1] == TaskState.TASK_STATE_COMPLETED
        fetched = await client.get_task(GetTaskRequest(id=started.id))
        assert answer_of(fetched) == answer


async def test_keys_missing_wrong_or_limited_to_another_agent_are_refused(world: World) -> None:
    url = f"{world.base_url}/a2a/{world.helper}/"
    body = {"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}}
    async with httpx.AsyncClient() as http:
        problem = await expect(http.post(url, json=body), 401)
        assert problem["code"] == "unauthorized"
        problem = await expect(http.post(url, json=body, headers=bearer("nxk_wrong")), 401)
        assert problem["code"] == "invalid_api_key"
        problem = await expect(http.post(url, json=body, headers=bearer(world.limited_key)), 404)
        assert problem["code"] == "agent_not_found"
        problem = await expect(http.post(url, json=body, headers=bearer(world.other_key)), 404)
        assert problem["code"] == "agent_not_found"
        # Over HTTP+JSON the same.
        problem = await expect(http.get(f"{world.base_url}/a2a/{world.helper}/rest/tasks"), 401)
        assert problem["code"] == "unauthorized"
        for absent in (world.unexposed, world.unpublished):
            problem = await expect(
                http.post(f"{world.base_url}/a2a/{absent}", json=body, headers=bearer(world.key)), 404
            )
            assert problem["code"] == "agent_not_found"


async def test_another_tenants_or_callers_task_ids_are_not_found(world: World) -> None:
    SCRIPT["Hello"] = ChatReply.text("Mine.")
    async with await connect(world, world.helper, world.key, streaming=False) as client:
        mine, _ = await final_task(client.send_message(ask("Hello")))
    assert mine is not None
    async with await connect(world, world.other, world.other_key, streaming=False) as client:
        with pytest.raises(TaskNotFoundError):
            await client.get_task(GetTaskRequest(id=mine.id))
        with pytest.raises(TaskNotFoundError):
            await client.cancel_task(CancelTaskRequest(id=mine.id))  # not found
        listed = await client.list_tasks(ListTasksRequest(context_id=mine.context_id))
        assert list(listed.tasks) == []
    # The same key on another agent of the tenant: not that agent's task.
    async with await connect(world, world.public, world.key, streaming=False) as client:
        with pytest.raises(TaskNotFoundError):
            await client.get_task(GetTaskRequest(id=mine.id))
    # A public caller of that agent neither.
    async with await connect(world, world.public, None, streaming=False) as client:
        with pytest.raises(TaskNotFoundError):
            await client.get_task(GetTaskRequest(id=mine.id))


async def test_a_public_agent_answers_without_credentials(world: World) -> None:
    SCRIPT["Hi?"] = ChatReply.text("Open to all.")
    async with await connect(world, world.public, None, HTTP_JSON, streaming=False) as client:
        task, _ = await final_task(client.send_message(ask("Hi?")))
        assert task is not None
        assert answer_of(task) == "Open to all.", str(task.status)
        fetched = await client.get_task(GetTaskRequest(id=task.id))  # its ids are what a public caller reads by
        assert fetched.id == task.id
        assert [t.id for t in (await client.list_tasks(ListTasksRequest(context_id=task.context_id))).tasks] == [
            task.id
        ]
        assert list((await client.list_tasks(ListTasksRequest())).tasks) == []  # no context: nothing listed
    # A key's tasks of the same agent are not a public caller's.
    async with await connect(world, world.public, world.limited_key, streaming=False) as client:
        with pytest.raises(TaskNotFoundError):
            await client.get_task(GetTaskRequest(id=task.id))


async def test_tasks_survive_a_restart_and_the_northbound_service_serves_them(world: World) -> None:
    SCRIPT["Remember this task."] = ChatReply.text("Remembered.")
    async with await connect(world, world.helper, world.key, streaming=False) as client:
        task, _ = await final_task(client.send_message(ask("Remember this task.")))
    assert task is not None
    # A fresh process (nothing in memory of the task): the split shape's northbound service, on the same database,
    # with a public rate limit of 2 requests a minute.
    settings = world.settings.model_copy(update={"a2a_public_rate_per_minute": 2})
    async with serving(settings, Service.NORTHBOUND) as base_url:
        later = replace(world, base_url=base_url)
        async with await connect(later, world.helper, world.key, streaming=False) as client:
            stored = await client.get_task(GetTaskRequest(id=task.id))
        assert stored.status.state == TaskState.TASK_STATE_COMPLETED and answer_of(stored) == "Remembered."
        card = f"{base_url}/a2a/{world.public}/.well-known/agent-card.json"
        async with httpx.AsyncClient() as http:  # public callers: limited per client address (the card is free)
            assert (await http.get(card)).status_code == 200
            rpc = {"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}}
            headers = {"A2A-Version": "1.0"}
            for _ in range(2):
                assert (
                    await http.post(f"{base_url}/a2a/{world.public}/", json=rpc, headers=headers)
                ).status_code == 200
            refused = await http.post(f"{base_url}/a2a/{world.public}/", json=rpc, headers=headers)
            assert refused.status_code == 429, refused.text
            assert refused.json()["code"] == "rate_limited" and refused.headers["retry-after"]
