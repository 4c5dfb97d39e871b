"""Tenants' MCP servers used by agents: real FastMCP servers over streamable HTTP, SSE and stdio (a child process
the platform supervises), the scripted model server deciding to call their tools, and what goes wrong: a server
that hangs (timeout, then the breaker), one that crashes mid-call (restart with backoff, logs), a tool whose schema
is not one, a result that contradicts its schema, a token that is missing."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from nexent.core.db import create_engine
from nexent.engines.storage.local import LocalStorage
from nexent.mcp_client.connection import Breaker, McpFailure, docker_available
from nexent.mcp_client.models import ServerStatus
from nexent.settings import Service, Settings
from nexent.tools import sources
from nexent.tools.registry import ToolContext, ToolResult
from nexent.tools.sources import TOOL_NAME_RE, external_name
from tests.conftest import make_settings, serve_in_process, wait_until
from tests.support import mcp_servers
from tests.support.identity import bearer, invite_and_register, register
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server
from tests.test_http import assert_problem
from tests.test_runs import parse_sse

STDIO_COMMAND = f"{sys.executable} {mcp_servers.SCRIPT} stdio"
PLATFORM_SECRET = "NEXENT_TEST_PLATFORM_SECRET"


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture(scope="module")
def remote() -> Iterator[dict[str, mcp_servers.McpProcess]]:
    http, sse, auth = mcp_servers.serve_many([("http", None), ("sse", None), ("http", "tok-123")])
    served = {"http": http, "sse": sse, "auth": auth}
    try:
        yield served
    finally:
        for process in served.values():
            process.stop()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(
        tmp_path_factory.mktemp("mcp"),
        builtin_models=False,
        mcp_list_timeout_seconds=20,
        mcp_breaker_failures=2,
        mcp_breaker_reset_seconds=600,
        mcp_restart_backoff_max_seconds=0.5,
        mcp_log_lines=50,
    )


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    os.environ[PLATFORM_SECRET] = "must-not-reach-servers"  # the platform's environment, not the servers'
    try:
        async with serve_in_process(settings) as http:
            yield http
    finally:
        os.environ.pop(PLATFORM_SECRET, None)


@pytest.fixture(scope="module")
async def owner(client: httpx.AsyncClient, llm: RunningModelServer) -> dict[str, Any]:
    pair = await register(client, f"mcp-{uuid.uuid4().hex[:6]}@example.com")
    model = await client.post(
        "/api/models",
        json={"name": "Scripted", "kind": "llm", "model": "scripted", "base_url": llm.base_url, "timeout_seconds": 10},
        headers=bearer(pair["access_token"]),
    )
    assert model.status_code == 201, model.text
    return {**pair, "model_id": model.json()["id"], "headers": bearer(pair["access_token"])}


async def add_server(client: httpx.AsyncClient, owner: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = await client.post("/api/mcp-servers", json=body, headers=owner["headers"])
    assert response.status_code == 201, response.text
    server: dict[str, Any] = response.json()
    return server


async def check(client: httpx.AsyncClient, owner: dict[str, Any], server_id: str) -> dict[str, Any]:
    response = await client.post(f"/api/mcp-servers/{server_id}/check", headers=owner["headers"])
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture(scope="module")
async def web(client: httpx.AsyncClient, owner: dict[str, Any], remote: dict[str, mcp_servers.McpProcess]) -> str:
    """A streamable HTTP server, checked (its tools stored), with a secret header."""
    server = await add_server(
        client,
        owner,
        name="web",
        transport="http",
        url=remote["http"].url,
        headers={"X-Api-Key": "header-secret-value"},
        call_timeout_seconds=2,
    )
    assert (await check(client, owner, server["id"]))["status"] == "ok"
    return str(server["id"])


@pytest.fixture(scope="module")
async def local(client: httpx.AsyncClient, owner: dict[str, Any]) -> str:
    """A stdio server: a child process of the app, under limits, with its own folder and environment."""
    server = await add_server(
        client, owner, name="local", transport="stdio", command=STDIO_COMMAND, env={"SERVER_TOKEN": "env-secret"}
    )
    result = await check(client, owner, server["id"])
    assert result["status"] == "ok", result
    return str(server["id"])


async def run_agent(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer, tools: list[str], *calls: Any
) -> list[dict[str, Any]]:
    """Run a new agent with `tools` whose model calls `calls` ((name, arguments) each) and then answers."""
    agent = await client.post(
        "/api/agents",
        json={
            "name": f"Agent {uuid.uuid4().hex[:6]}",
            "model_id": owner["model_id"],
            "tools": [{"name": t} for t in tools],
        },
        headers=owner["headers"],
    )
    assert agent.status_code == 201, agent.text
    llm.server.reset()
    llm.server.enqueue(*(ChatReply.tool_call(name, args) for name, args in calls), ChatReply.text("Done."))
    llm.server.enqueue(ChatReply.text('"Title"'))  # the conversation's title
    response = await client.post(
        f"/api/agents/{agent.json()['id']}/runs", json={"message": "Go"}, headers=owner["headers"]
    )
    assert response.status_code == 200, response.text
    events = parse_sse(response.text)
    assert events[-1]["type"] == "run.completed", events[-1]

    async def titled() -> bool:  # the title comes from a background job: let it take its reply before the next run
        return any("Write a title" in json.dumps(r.messages) for r in llm.server.chat_requests)

    await wait_until(titled, timeout=30)
    return [e["data"] for e in events if e["type"] == "tool.result"]


def error_of(result: dict[str, Any]) -> str:
    return str(json.loads(result["output"])["error"])


# --- tests ------------------------------------------------------------------------------------------------------


async def test_an_agent_uses_tools_over_http_and_stdio(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer, web: str, local: str
) -> None:
    catalog = {t["name"]: t for t in (await client.get("/api/tools", headers=owner["headers"])).json()}
    assert catalog["web__add"]["source"] == {"kind": "mcp", "id": web, "name": "web"}
    assert catalog["web__add"]["parameters"]["properties"] == {"a": {"type": "integer"}, "b": {"type": "integer"}}
    assert catalog["local__echo"]["source"]["kind"] == "mcp" and catalog["calculator"]["source"]["kind"] == "builtin"
    results = await run_agent(
        client,
        owner,
        llm,
        ["web__add", "local__echo", "local__env_secret"],
        ("web__add", {"a": 2, "b": 3}),
        ("local__echo", {"text": "hi"}),
        ("local__env_secret", {}),
    )
    assert [r["output"] for r in results] == ["5", "echo: hi", "clean"]
    # The model was offered the tools with their schemas and read their results.
    offered = {t["function"]["name"]: t["function"] for t in llm.server.chat_requests[0].tools or []}
    assert offered["web__add"]["parameters"]["required"] == ["a", "b"]
    assert "echo: hi" in json.dumps(llm.server.chat_requests[3].messages)


async def test_sse_servers_and_a_missing_token(
    client: httpx.AsyncClient, owner: dict[str, Any], remote: dict[str, mcp_servers.McpProcess]
) -> None:
    sse = await add_server(client, owner, name="events", transport="sse", url=remote["sse"].url)
    result = await check(client, owner, sse["id"])
    assert result["status"] == "ok" and "events__add" in {t["name"] for t in result["tools"]}

    guarded = await add_server(client, owner, name="guarded", transport="http", url=remote["auth"].url)
    result = await check(client, owner, guarded["id"])
    assert (result["status"], result["tools"]) == ("auth", [])
    assert "401" in result["detail"]
    listed = (await client.get(f"/api/mcp-servers/{guarded['id']}", headers=owner["headers"])).json()
    assert listed["status"] == "auth" and listed["checked_at"] is not None

    wrong = await client.patch(f"/api/mcp-servers/{guarded['id']}", json={"token": "nope"}, headers=owner["headers"])
    assert wrong.json()["header_names"] == ["Authorization"]
    assert (await check(client, owner, guarded["id"]))["status"] == "auth"
    await client.patch(f"/api/mcp-servers/{guarded['id']}", json={"token": "tok-123"}, headers=owner["headers"])
    assert (await check(client, owner, guarded["id"]))["status"] == "ok"


async def test_secrets_are_encrypted_at_rest_and_never_returned(
    client: httpx.AsyncClient, owner: dict[str, Any], settings: Settings, web: str, local: str
) -> None:
    read = await client.get(f"/api/mcp-servers/{web}", headers=owner["headers"])
    assert read.json()["header_names"] == ["X-Api-Key"] and "header-secret-value" not in read.text
    listed = await client.get("/api/mcp-servers", headers=owner["headers"])
    assert "env-secret" not in listed.text and "header-secret-value" not in listed.text
    assert {s["name"]: s["env_names"] for s in listed.json()["items"]}["local"] == ["SERVER_TOKEN"]
    engine = create_engine(settings.resolved_database_url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT headers_encrypted, env_encrypted FROM mcp_servers"))).all()
    finally:
        await engine.dispose()
    stored = json.dumps([list(row) for row in rows])
    assert "header-secret-value" not in stored and "env-secret" not in stored and "tok-123" not in stored
    assert all(value is None or value.startswith("v1:") for row in rows for value in row)


async def test_a_hung_server_times_out_then_the_breaker_fails_fast(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer, remote: dict[str, mcp_servers.McpProcess]
) -> None:
    slow = await add_server(
        client, owner, name="slow", transport="http", url=remote["http"].url, call_timeout_seconds=1
    )
    assert (await check(client, owner, slow["id"]))["status"] == "ok"
    results = await run_agent(
        client,
        owner,
        llm,
        ["slow__hang", "slow__add"],
        ("slow__hang", {"seconds": 60}),
        ("slow__hang", {"seconds": 60}),
        ("slow__add", {"a": 1, "b": 1}),
    )
    assert [error_of(r) for r in results] == ["mcp_timeout", "mcp_timeout", "mcp_circuit_open"]
    assert "not calling it again" in json.loads(results[2]["output"])["message"]
    server = (await client.get(f"/api/mcp-servers/{slow['id']}", headers=owner["headers"])).json()
    assert server["status"] == "timeout"
    # A check is not held back by the breaker; finding the server answering, it closes it.
    assert (await check(client, owner, slow["id"]))["status"] == "ok"
    results = await run_agent(client, owner, llm, ["slow__add"], ("slow__add", {"a": 1, "b": 1}))
    assert results[0]["output"] == "2"


async def test_a_crashing_stdio_server_is_restarted_with_backoff_and_its_logs_kept(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer, local: str
) -> None:
    results = await run_agent(client, owner, llm, ["local__crash"], ("local__crash", {}))
    assert error_of(results[0]) == "mcp_crashed"
    assert "ended with code 3" in json.loads(results[0]["output"])["message"]

    async def restarted() -> list[str]:
        logs = await client.get(f"/api/mcp-servers/{local}/logs", headers=owner["headers"])
        lines = [f"{line['stream']}: {line['line']}" for line in logs.json()]
        return lines if any(line.startswith("platform: restarted") for line in lines) else []

    lines = await wait_until(restarted, timeout=30)
    assert "stderr: test server: crashing on purpose" in lines
    assert any(line.startswith("platform: the process ended with code 3; restart 1 in 0.5 s") for line in lines)
    assert lines.index("stderr: test server: crashing on purpose") < lines.index(
        next(line for line in lines if line.startswith("platform: restarted"))
    )
    results = await run_agent(client, owner, llm, ["local__add"], ("local__add", {"a": 20, "b": 22}))
    assert results[0]["output"] == "42"


async def test_a_wrong_schema_or_a_lying_result_is_a_tool_error(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer, local: str
) -> None:
    tools = {
        t["remote_name"]: t
        for t in (await client.get(f"/api/mcp-servers/{local}/tools", headers=owner["headers"])).json()
    }
    assert "not a valid JSON schema" in tools["broken"]["problem"] and tools["add"]["problem"] is None
    results = await run_agent(
        client,
        owner,
        llm,
        ["local__broken", "local__liar", "local__add"],
        ("local__broken", {"x": "y"}),
        ("local__liar", {}),
        ("local__add", {"a": "two", "b": 2}),
        ("local__add", {"a": 1, "b": 2}),
    )
    assert [error_of(r) for r in results[:2]] == ["invalid_tool_schema", "mcp_invalid_result"]
    assert "not a valid JSON schema" in json.loads(results[0]["output"])["message"]
    assert "'not a number' is not of type 'integer'" in json.loads(results[1]["output"])["message"]
    # Arguments that do not fit the schema never reach the server (smolagents refuses this one first).
    assert results[2]["output"] is None and "should be 'integer'" in results[2]["error"]
    assert results[3]["output"] == "3"


async def test_arguments_are_validated_against_the_schema_before_the_call(tmp_path: Path) -> None:
    """`tools.sources.execute`: the JSON schema (not only the types smolagents checks) decides, before the source
    is asked; a source that raises becomes a failed result."""
    calls: list[dict[str, Any]] = []

    class Recorder:
        kind = "recorder"

        async def list_tools(self, session: Any, tenant_id: uuid.UUID) -> list[sources.ExternalTool]:
            return []

        async def call(self, tool: sources.ExternalTool, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
            calls.append(arguments)
            if arguments.get("n") == 13:
                raise RuntimeError("unlucky")
            return ToolResult(output=f"got {arguments['n']}")

    sources.provide_tool_source(Recorder())
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 20}},
        "required": ["n"],
    }
    tool = sources.ExternalTool("rec__n", "A number.", schema, sources.SourceRef("recorder", None, "rec"), "n")
    context = ToolContext(tenant_id=uuid.uuid4(), storage=LocalStorage(tmp_path))
    too_big = await sources.execute(tool, {"n": 99}, context)
    assert (too_big.ok, too_big.error_code) == (False, "invalid_arguments") and "n: 99 is greater" in too_big.output
    assert (await sources.execute(tool, {}, context)).error_code == "invalid_arguments"
    assert (await sources.execute(tool, {"n": 13}, context)).error_code == "tool_failed"
    assert (await sources.execute(tool, {"n": 7}, context)).output == "got 7"
    assert calls == [{"n": 13}, {"n": 7}]


async def test_published_versions_keep_their_tools_schemas(
    client: httpx.AsyncClient, owner: dict[str, Any], web: str
) -> None:
    agent = await client.post(
        "/api/agents",
        json={"name": f"Pinned {uuid.uuid4().hex[:6]}", "model_id": owner["model_id"], "tools": [{"name": "web__add"}]},
        headers=owner["headers"],
    )
    published = await client.post(f"/api/agents/{agent.json()['id']}/publish", json={}, headers=owner["headers"])
    assert published.status_code == 201, published.text
    (snapshot,) = published.json()["config"]["tool_schemas"]
    assert snapshot["name"] == "web__add" and snapshot["remote_name"] == "add"
    assert snapshot["source"] == {"kind": "mcp", "id": web, "name": "web"}
    assert snapshot["parameters"]["required"] == ["a", "b"]
    # An exported agent naming the tenant's MCP tool imports with it.
    document = await client.get(f"/api/agents/{agent.json()['id']}/export", headers=owner["headers"])
    assert document.status_code == 200, document.text
    preview = await client.post("/api/agents/import/preview", json=document.json(), headers=owner["headers"])
    assert preview.json()["agents"][0]["tools"] == [{"name": "web__add", "status": "ok", "message": None}]
    # Its server cannot go while the version uses it.
    refused = await client.delete(f"/api/mcp-servers/{web}", headers=owner["headers"])
    assert_problem(refused, 409, "tool_source_in_use")


async def test_bad_requests(client: httpx.AsyncClient, owner: dict[str, Any], web: str) -> None:
    headers = owner["headers"]
    for body in (
        {"name": "Bad-Name", "transport": "http", "url": "http://127.0.0.1:9/mcp"},
        {"name": "a__b", "transport": "http", "url": "http://127.0.0.1:9/mcp"},
        {"name": "ok", "transport": "stdio"},
        {"name": "ok", "transport": "stdio", "command": "python -m x", "headers": {"A": "b"}},
        {"name": "ok", "transport": "http", "url": "ftp://example.com/mcp"},
        {"name": "ok", "transport": "http", "url": "http://127.0.0.1:9/mcp", "env": {"A": "b"}},
        {"name": "ok", "transport": "http", "url": "http://127.0.0.1:9/mcp", "headers": {"Bad Header": "x"}},
        {"name": "ok", "transport": "stdio", "command": "python -m x", "env": {"NEXENT_JWT_SECRET": "x"}},
        {"name": "ok", "transport": "stdio", "command": "python 'unclosed"},
        {"name": "ok", "transport": "http", "url": "http://127.0.0.1:9/mcp", "call_timeout_seconds": 0},
        {"name": "ok", "transport": "carrier-pigeon", "url": "http://127.0.0.1:9/mcp"},
    ):
        assert_problem(await client.post("/api/mcp-servers", json=body, headers=headers), 422, "validation_error")
    private = {"name": "intranet", "transport": "http", "url": "http://10.255.0.1/mcp"}
    assert_problem(await client.post("/api/mcp-servers", json=private, headers=headers), 400, "mcp_url_not_allowed")
    taken = {"name": "web", "transport": "http", "url": "http://127.0.0.1:9/mcp"}
    assert_problem(await client.post("/api/mcp-servers", json=taken, headers=headers), 409, "mcp_server_name_taken")
    missing = uuid.uuid4()
    assert_problem(await client.get(f"/api/mcp-servers/{missing}", headers=headers), 404, "mcp_server_not_found")
    assert_problem(await client.post(f"/api/mcp-servers/{missing}/check", headers=headers), 404, "mcp_server_not_found")
    assert_problem(
        await client.patch(f"/api/mcp-servers/{web}", json={"command": "python -m x"}, headers=headers),
        400,
        "bad_request",
    )
    assert_problem(
        await client.patch(f"/api/mcp-servers/{web}", json={"url": None}, headers=headers), 422, "validation_error"
    )
    # Agents name only tools their tenant has.
    agent = await client.post(
        "/api/agents",
        json={"name": f"Unknown {uuid.uuid4().hex[:6]}", "tools": [{"name": "nowhere__tool"}]},
        headers=headers,
    )
    problem = assert_problem(agent, 422, "invalid_agent")
    assert "No tool named 'nowhere__tool'" in json.dumps(problem["errors"])
    with_settings = await client.post(
        "/api/agents",
        json={"name": f"Set {uuid.uuid4().hex[:6]}", "tools": [{"name": "web__add", "settings": {"x": 1}}]},
        headers=headers,
    )
    assert_problem(with_settings, 422, "invalid_agent")


async def test_who_may_add_local_servers(client: httpx.AsyncClient, owner: dict[str, Any], tmp_path: Path) -> None:
    developer = await invite_and_register(
        client, owner["access_token"], f"dev-{uuid.uuid4().hex[:6]}@example.com", role="developer"
    )
    body = {"name": "devlocal", "transport": "stdio", "command": STDIO_COMMAND}
    refused = await client.post("/api/mcp-servers", json=body, headers=bearer(developer["access_token"]))
    assert_problem(refused, 403, "permission_denied")
    remote = {"name": "devremote", "transport": "http", "url": "http://127.0.0.1:9/mcp"}
    assert (
        await client.post("/api/mcp-servers", json=remote, headers=bearer(developer["access_token"]))
    ).status_code == 201
    # The split shape's config service: local servers are off unless the operator allows them.
    async with serve_in_process(make_settings(tmp_path), service=Service.CONFIG) as config:
        pair = await register(config, "split-owner@example.com")
        refused = await config.post("/api/mcp-servers", json=body, headers=bearer(pair["access_token"]))
        assert_problem(refused, 403, "local_mcp_disabled")
    async with serve_in_process(make_settings(tmp_path / "on", mcp_stdio=True), service=Service.CONFIG) as config:
        pair = await register(config, "split-owner@example.com")
        allowed = await config.post("/api/mcp-servers", json=body, headers=bearer(pair["access_token"]))
        assert allowed.status_code == 201, allowed.text


async def test_a_container_runner_needs_a_docker_engine(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    if await docker_available():
        pytest.skip("a Docker engine answers here: see the next test")
    body = {"name": "boxed", "transport": "stdio", "image": "python:3.11-slim", "command": "python -m server"}
    refused = await client.post("/api/mcp-servers", json=body, headers=owner["headers"])
    assert_problem(refused, 400, "container_runner_unavailable")


async def test_a_local_server_runs_in_a_container_where_docker_answers(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    """Needs a Docker engine and, in NEXENT_TEST_MCP_IMAGE, an image whose default command serves
    `tests/support/mcp_servers.py stdio` (fastmcp installed)."""
    if not await docker_available():
        pytest.skip("no Docker engine answers here (docker info)")
    image = os.environ.get("NEXENT_TEST_MCP_IMAGE")
    if not image:
        pytest.skip("NEXENT_TEST_MCP_IMAGE names no image of the test server")
    server = await add_server(client, owner, name="boxed", transport="stdio", image=image)
    assert (await check(client, owner, server["id"]))["status"] == "ok"
    results = await run_agent(
        client,
        owner,
        llm,
        ["boxed__add", "boxed__env_secret"],
        ("boxed__add", {"a": 2, "b": 3}),
        ("boxed__env_secret", {}),
    )
    assert [r["output"] for r in results] == ["5", "clean"]


def test_tool_names_are_function_names() -> None:
    for server, tool in [("web", "add"), ("a", "files/read.v2"), ("s" * 30, "x" * 80), ("web", "名前")]:
        name = external_name(server, tool)
        assert TOOL_NAME_RE.match(name) and name.isidentifier() and name.startswith(f"{server}__"), name
    assert external_name("s" * 30, "x" * 80) != external_name("s" * 30, "x" * 79 + "y")


def test_the_breaker_opens_half_opens_and_closes() -> None:
    breaker = Breaker(threshold=2, reset_seconds=0)
    failure = McpFailure(ServerStatus.TIMEOUT, "slow")
    breaker.failure(failure)
    breaker.admit()  # one failure: still closed
    breaker.failure(failure)
    assert breaker.state == "half_open"  # reset after 0 s: one trial goes through
    breaker.admit()
    with pytest.raises(McpFailure) as refused:
        breaker.admit()  # a second call while the trial runs
    assert refused.value.code == "mcp_circuit_open"
    breaker.success()
    assert breaker.state == "closed"
    slow = Breaker(threshold=1, reset_seconds=600)
    slow.failure(failure)
    with pytest.raises(McpFailure):
        slow.admit()
