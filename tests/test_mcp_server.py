"""The platform's MCP server at /mcp, through FastMCP's own client over real HTTP: the tools an API key is offered
(its tenant's published agents it may use, the knowledge base search), agent calls with their answer streamed as
progress, failures as tool errors, bad keys, the connection URL (key in the path, in no log line), the Host/Origin
guard. One server and one model server for the module."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import TextContent

from nexent.providers import pool
from nexent.server import create_app
from nexent.settings import Service, Settings
from tests.conftest import make_settings, wait_until
from tests.support.identity import bearer, register
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server

# The test's own HTTP clients log the URLs they call: the server's logs are what must hold no key.
CLIENT_LOGGERS = ("httpx", "httpx2", "httpcore", "mcp.client", "fastmcp.client")


class Captured(logging.Handler):
    """Every log record of the server side of the process, formatted (with its arguments), to look for secrets in."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in CLIENT_LOGGERS or record.name.startswith(CLIENT_LOGGERS[3:]):
            return
        self.lines.append(f"{record.name} {record.getMessage()} {vars(record)}")


@dataclass
class World:
    base_url: str
    llm: RunningModelServer
    logs: Captured
    token: str  # A's owner's access token
    settings: Settings
    key: str  # A's owner's key: every published agent of A
    limited_key: str  # limited to `weather`
    revoked_key: str
    other_key: str  # B's owner's key
    weather: str  # tool names
    travel: str
    draft_name: str
    other_name: str
    phrase: str  # in A's indexed document


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


async def expect(response: Any, status: int) -> Any:
    response = await response
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def publish(http: httpx.AsyncClient, token: str, model_id: str, name: str, description: str) -> None:
    body = {"name": name, "description": description, "model_id": model_id, "max_steps": 2}
    agent = await expect(http.post("/api/agents", json=body, headers=bearer(token)), 201)
    await expect(http.post(f"/api/agents/{agent['id']}/publish", json={}, headers=bearer(token)), 201)


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory, llm: RunningModelServer) -> AsyncIterator[World]:
    logs = Captured()
    root, access = logging.getLogger(), logging.getLogger("uvicorn.access")
    # As `nexent serve` has them off, other tests' uvicorn servers turn uvicorn's access log off for the process.
    was_disabled, was_propagating, old_level, old_access_level = (
        access.disabled,
        access.propagate,
        root.level,
        access.level,
    )
    access.disabled, access.propagate = False, True
    access.setLevel(logging.INFO)
    root.addHandler(logs)
    access.addHandler(logs)  # the model server's uvicorn gave the `uvicorn` logger a handler that does not propagate
    root.setLevel(logging.INFO)
    settings = make_settings(tmp_path_factory.mktemp("mcp"), builtin_models=False, log_level="INFO")
    app = create_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    # uvicorn's own access log on, as `uvicorn --factory nexent.server:app_factory` has it: the key must not be in it.
    config = uvicorn.Config(app, access_log=True, log_config=None, lifespan="on", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not serving.done(), "the app did not start"
        await asyncio.sleep(0.01)
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            owner = await register(http, "mcp-owner@example.com")
            token = owner["access_token"]
            model = {"name": "Scripted", "kind": "llm", "model": "scripted", "base_url": llm.base_url}
            model_id = (await expect(http.post("/api/models", json=model, headers=bearer(token)), 201))["id"]
            await publish(http, token, model_id, "Weather Bot", "Answers questions about the weather.")
            await publish(http, token, model_id, "travel-planner", "Plans trips.")
            draft = {"name": "Unpublished Draft", "model_id": model_id}
            await expect(http.post("/api/agents", json=draft, headers=bearer(token)), 201)
            agents = (await expect(http.get("/api/agents", headers=bearer(token)), 200))["items"]
            weather_id = next(a["id"] for a in agents if a["name"] == "Weather Bot")
            key = await expect(http.post("/api/api-keys", json={"name": "all"}, headers=bearer(token)), 201)
            limited = await expect(
                http.post("/api/api-keys", json={"name": "one", "agent_ids": [weather_id]}, headers=bearer(token)),
                201,
            )
            revoked = await expect(http.post("/api/api-keys", json={"name": "gone"}, headers=bearer(token)), 201)
            await expect(http.delete(f"/api/api-keys/{revoked['id']}", headers=bearer(token)), 204)

            # A knowledge base on the scripted server's embeddings, with one indexed document.
            embedder = {"name": "Embedder", "kind": "embedding", "model": "e", "base_url": llm.base_url}
            embedder_id = (await expect(http.post("/api/models", json=embedder, headers=bearer(token)), 201))["id"]
            kb_body = {"name": "Handbook", "description": "Company handbook", "embedding_model_id": embedder_id}
            kb = await expect(http.post("/api/knowledge-bases", json=kb_body, headers=bearer(token)), 201)
            phrase = "the quarterly offsite happens in Lisbon"
            files = [("file", ("offsite.txt", f"Notice: {phrase}.".encode(), "text/plain"))]
            uploaded = await expect(
                http.post(f"/api/knowledge-bases/{kb['id']}/documents", files=files, headers=bearer(token)), 201
            )
            document = uploaded["documents"][0]["document"]

            async def indexed() -> bool:
                url = f"/api/knowledge-bases/{kb['id']}/documents/{document['id']}"
                current = await expect(http.get(url, headers=bearer(token)), 200)
                assert current["status"] != "failed", current
                return bool(current["status"] == "indexed")

            await wait_until(indexed, timeout=60)

            async def summarized() -> bool:  # the knowledge base's summary asks the LLM: done before the tests
                current = await expect(http.get(f"/api/knowledge-bases/{kb['id']}", headers=bearer(token)), 200)
                return bool(current["summary"])

            await wait_until(summarized, timeout=60)

            other = await register(http, "mcp-other@example.com")
            other_model = {**model, "name": "Other"}
            other_model_id = (
                await expect(http.post("/api/models", json=other_model, headers=bearer(other["access_token"])), 201)
            )["id"]
            await publish(http, other["access_token"], other_model_id, "Other Tenant Bot", "Not yours.")
            other_key = await expect(
                http.post("/api/api-keys", json={"name": "b"}, headers=bearer(other["access_token"])), 201
            )
        yield World(
            base_url=base_url,
            llm=llm,
            logs=logs,
            token=token,
            settings=settings,
            key=key["secret"],
            limited_key=limited["secret"],
            revoked_key=revoked["secret"],
            other_key=other_key["secret"],
            weather="Weather_Bot",
            travel="travel-planner",
            draft_name="Unpublished_Draft",
            other_name="Other_Tenant_Bot",
            phrase=phrase,
        )
    finally:
        server.should_exit = True
        await serving
        sock.close()
        root.removeHandler(logs)
        access.removeHandler(logs)
        root.setLevel(old_level)
        access.disabled, access.propagate = was_disabled, was_propagating
        access.setLevel(old_access_level)


@pytest.fixture(autouse=True)
def _fresh(llm: RunningModelServer) -> None:
    llm.server.reset()
    pool._unhealthy_until.clear()


def client(world: World, key: str) -> Client[Any]:
    return Client(StreamableHttpTransport(f"{world.base_url}/mcp", auth=key))


def text_of(result: Any) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


async def test_a_key_is_offered_its_tenants_published_agents_and_the_search(world: World) -> None:
    async with client(world, world.key) as mcp:
        tools = {tool.name: tool for tool in await mcp.list_tools()}
    assert set(tools) == {world.weather, world.travel, "knowledge_base_search"}
    weather = tools[world.weather]
    assert weather.description == "Answers questions about the weather."
    assert weather.input_schema["required"] == ["message"]
    assert "Handbook" in (tools["knowledge_base_search"].description or "")

    async with client(world, world.limited_key) as mcp:
        assert {tool.name for tool in await mcp.list_tools()} == {world.weather, "knowledge_base_search"}
        # A tool the key is not offered cannot be called either.
        with pytest.raises(ToolError, match="Unknown tool"):
            await mcp.call_tool(world.travel, {"message": "hi"})


async def test_another_tenants_key_never_sees_these_agents_nor_this_knowledge(world: World) -> None:
    async with client(world, world.other_key) as mcp:
        names = {tool.name for tool in await mcp.list_tools()}
        assert names == {world.other_name}
        with pytest.raises(ToolError, match="Unknown tool"):
            await mcp.call_tool(world.weather, {"message": "hi"})
        with pytest.raises(ToolError, match="Unknown tool"):
            await mcp.call_tool("knowledge_base_search", {"query": world.phrase})
    async with client(world, world.key) as mcp:
        assert world.other_name not in {tool.name for tool in await mcp.list_tools()}


async def test_an_agent_call_answers_and_streams_its_answer_as_progress(world: World) -> None:
    answer = "Sunny all week, with a light breeze in the afternoons."
    world.llm.server.enqueue(ChatReply.text(answer).paced(chunk_size=8, chunk_delay=0.02))
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async with client(world, world.key) as mcp:
        result = await mcp.call_tool(world.weather, {"message": "Weather in Oslo?"}, progress_handler=on_progress)
    assert not result.is_error
    assert text_of(result) == answer
    assert result.meta is not None and uuid.UUID(result.meta["nexent/run_id"])
    asked = [r.last_user_message for r in world.llm.server.requests_to("/chat/completions")]
    assert any(message.endswith("Weather in Oslo?") for message in asked), asked
    # The answer arrived in pieces before the result, in order, numbered upwards.
    assert len(progress) > 1
    assert "".join(message or "" for _, message in progress) == answer
    assert [value for value, _ in progress] == sorted({value for value, _ in progress})


async def test_a_failing_run_is_a_tool_error_with_its_message(world: World) -> None:
    world.llm.server.enqueue(ChatReply.error(400, "the model refuses this request"))
    async with client(world, world.key) as mcp:
        result = await mcp.call_tool(world.weather, {"message": "hello"}, raise_on_error=False)
        assert result.is_error
        assert "rejected the request (400)" in text_of(result)  # the run's own failure message
        bad = await mcp.call_tool(world.weather, {"message": ""}, raise_on_error=False)
        assert bad.is_error and "message" in text_of(bad)
        # The session goes on after both.
        world.llm.server.enqueue(ChatReply.text("still here"))
        assert text_of(await mcp.call_tool(world.weather, {"message": "again"})) == "still here"


async def test_a_call_the_client_gives_up_on_stops_its_run(world: World) -> None:
    world.llm.server.enqueue(ChatReply.text("far too late").paced(delay=10.0))
    async with client(world, world.key) as mcp:
        with pytest.raises(MCPError, match=r"[Tt]imed out"):
            await mcp.call_tool(world.weather, {"message": "take your time"}, timeout=1.0)

    async def stopped() -> bool:
        async with httpx.AsyncClient(base_url=world.base_url) as http:
            runs = (await http.get("/api/runs", headers=bearer(world.key))).json()["items"]
        latest = max(runs, key=lambda run: run["created_at"])
        assert latest["input"] == "take your time"
        return bool(latest["status"] == "stopped")

    await wait_until(stopped, timeout=20)


async def test_the_search_tool_finds_passages_of_readable_knowledge_bases(world: World) -> None:
    async with client(world, world.key) as mcp:
        result = await mcp.call_tool("knowledge_base_search", {"query": "Where is the quarterly offsite?"})
        assert world.phrase in text_of(result)
        assert result.structured_content is not None
        hit = result.structured_content["hits"][0]
        assert hit["file_name"] == "offsite.txt"
        bad = await mcp.call_tool("knowledge_base_search", {"query": " ", "top_k": 3}, raise_on_error=False)
        assert bad.is_error


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


@pytest.mark.parametrize(
    ("secret", "code"),
    [(None, "unauthorized"), ("nxk_wrong", "invalid_api_key"), ("an-access-token", "invalid_api_key")],
)
async def test_without_a_valid_key_mcp_answers_401(world: World, secret: str | None, code: str) -> None:
    headers = {**ACCEPT, **(bearer(secret) if secret else {})}
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        response = await http.post("/mcp", json=INITIALIZE, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_revoked_key_is_refused(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        response = await http.post("/mcp", json=INITIALIZE, headers={**ACCEPT, **bearer(world.revoked_key)})
        assert (response.status_code, response.json()["code"]) == (401, "api_key_revoked")
        by_url = await http.post(f"/mcp/k/{world.revoked_key}", json=INITIALIZE, headers=ACCEPT)
        assert (by_url.status_code, by_url.json()["code"]) == (401, "api_key_revoked")
    with pytest.raises(MCPError):
        async with client(world, world.revoked_key) as mcp:
            await mcp.list_tools()


async def test_a_keys_daily_quota_applies_to_mcp(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        key = await expect(
            http.post("/api/api-keys", json={"name": "quota", "daily_quota": 1}, headers=bearer(world.token)), 201
        )
        first = await http.post(key["mcp_url"], json=INITIALIZE, headers=ACCEPT)
        assert first.status_code == 200, first.text
        second = await http.post(key["mcp_url"], json=INITIALIZE, headers=ACCEPT)
    assert (second.status_code, second.json()["code"]) == (429, "quota_exceeded")
    assert int(second.headers["retry-after"]) > 0


async def test_the_connection_url_carries_the_key_and_no_log_line_does(world: World) -> None:
    world.logs.lines.clear()
    async with Client(f"{world.base_url}/mcp/k/{world.limited_key}/") as mcp:  # a trailing slash is the same URL
        assert {tool.name for tool in await mcp.list_tools()} == {world.weather, "knowledge_base_search"}
        world.llm.server.enqueue(ChatReply.text("Rain."))
        assert text_of(await mcp.call_tool(world.weather, {"message": "Weather?"})) == "Rain."
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        wrong = await http.post("/mcp/k/nxk_not-a-key-at-all-zzz", json=INITIALIZE, headers=ACCEPT)
        assert wrong.status_code == 401
        assert "nxk_not-a-key" not in wrong.text
        extra = await http.post(f"/mcp/k/{world.limited_key}/more", json=INITIALIZE, headers=ACCEPT)
        assert extra.status_code == 401
    logged = "\n".join(world.logs.lines)
    # The requests were logged (ours and uvicorn's access log), by the path without the key.
    assert '"POST /mcp HTTP/1.1" 200' in logged
    assert "'path': '/mcp'" in logged
    for secret in (world.limited_key, world.limited_key[4:], "nxk_not-a-key", "not-a-key-at-all"):
        assert secret not in logged


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "evil.example"}, 421),
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": "http://localhost:1"}, 200),
    ],
)
async def test_a_foreign_host_or_origin_is_refused(world: World, headers: dict[str, str], status: int) -> None:
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        response = await http.post("/mcp", json=INITIALIZE, headers={**ACCEPT, **bearer(world.key), **headers})
    assert response.status_code == status, response.text


async def test_the_mcp_service_alone_serves_the_tools_and_executes_their_runs(world: World) -> None:
    """The split shape: an `mcp` service process (here beside the embedded app, on its database) lists the key's
    tools and runs the agent itself."""
    app = create_app(world.settings, service=Service.MCP)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not serving.done(), "the mcp service did not start"
        await asyncio.sleep(0.01)
    try:
        world.llm.server.enqueue(ChatReply.text("Answered by the mcp service."))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp/k/{world.limited_key}"
        async with Client(url) as mcp:
            assert {tool.name for tool in await mcp.list_tools()} == {world.weather, "knowledge_base_search"}
            result = await mcp.call_tool(world.weather, {"message": "Who answers?"})
        assert text_of(result) == "Answered by the mcp service."
        run_id = result.meta["nexent/run_id"] if result.meta else None

        async def completed() -> bool:  # stored by the mcp process's writer, read through the embedded app
            async with httpx.AsyncClient(base_url=world.base_url) as http:
                run = await http.get(f"/api/runs/{run_id}", headers=bearer(world.limited_key))
            return bool(run.json()["status"] == "completed")

        await wait_until(completed, timeout=20)
        # Its own app has no REST routes of the other services.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}") as http:
            assert (await http.get("/api/agents", headers=bearer(world.key))).status_code == 404
    finally:
        server.should_exit = True
        await serving
        sock.close()


def test_tool_names_are_valid_and_distinct() -> None:
    from nexent.mcp_server.service import tool_name

    first, second = uuid.uuid4(), uuid.uuid4()
    assert tool_name("Weather Bot (v2)!", first, set()) == "Weather_Bot_v2"
    assert tool_name("Weather Bot v2", second, {"Weather_Bot_v2"}) == f"Weather_Bot_v2_{second.hex[:8]}"
    assert tool_name("天气", first, set()) == "agent"
    assert tool_name("knowledge_base_search", first, set()) == f"knowledge_base_search_{first.hex[:8]}"


def test_allowed_hosts_come_from_settings(tmp_path: Path) -> None:
    from nexent.mcp_server.api import allowed_hosts, allowed_origins

    settings = make_settings(
        tmp_path,
        public_url="https://nexent.example.com/app",
        mcp_allowed_hosts="mcp.example.com, *.internal.example",
        cors_origins="https://ui.example.com",
    )
    assert allowed_hosts(settings) == [
        "127.0.0.1",
        "localhost",
        "::1",
        "mcp.example.com",
        "*.internal.example",
        "nexent.example.com",
    ]
    assert allowed_origins(settings) == ["https://ui.example.com", "https://nexent.example.com"]
