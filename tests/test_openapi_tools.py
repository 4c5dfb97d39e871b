"""Tools imported from OpenAPI documents, over HTTP: previewing a document (YAML and JSON), refusing bad ones with
422s that say what is wrong, saving an import with an API key (encrypted, never returned), the catalog listing its
tools, an agent (driven by the scripted model server) calling a real small HTTP API started here, the API's errors
reaching the run as tool errors, editing and deleting imports, and published versions keeping their tools."""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.providers import pool
from tests.conftest import make_settings, serve_in_process
from tests.support.identity import bearer, invite_and_register
from tests.support.inventory_api import API_KEY, Inventory, document, serve_inventory
from tests.support.model_server import ChatReply, RecordedRequest, RunningModelServer, run_model_server
from tests.test_http import assert_problem
from tests.test_runs import make_agent, new_owner, run


@pytest.fixture(scope="module")
def inventory() -> Iterator[Inventory]:
    with serve_inventory() as served:
        yield served


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture(autouse=True)
def _fresh(llm: RunningModelServer, inventory: Inventory) -> None:
    llm.server.reset()
    pool._unhealthy_until.clear()
    llm.server.responder = None
    inventory.requests.clear()


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    tmp = tmp_path_factory.mktemp("openapi-tools")
    async with serve_in_process(make_settings(tmp, builtin_models=False)) as http:
        yield http, tmp / "data" / "nexent.db"


@pytest.fixture
def client(served: tuple[httpx.AsyncClient, Path]) -> httpx.AsyncClient:
    return served[0]


@pytest.fixture
async def owner(client: httpx.AsyncClient, llm: RunningModelServer) -> dict[str, Any]:
    return await new_owner(client, llm, f"openapi-{uuid.uuid4().hex[:6]}@example.com")


def script(llm: RunningModelServer, *replies: ChatReply) -> None:
    """The model's replies to the agent, in order; conversation titles (written in the background) get their own."""
    queue = list(replies)

    def respond(request: RecordedRequest) -> ChatReply:
        if "Write a title" in json.dumps(request.messages) or not queue:
            return ChatReply.text("A title")
        return queue.pop(0)

    llm.server.responder = respond


def auth(owner: dict[str, Any]) -> dict[str, str]:
    return bearer(owner["access_token"])


async def create_import(
    client: httpx.AsyncClient, owner: dict[str, Any], inventory: Inventory, **extra: Any
) -> dict[str, Any]:
    body = {
        "name": "inventory",
        "document": document(inventory.base_url),
        "auth": {"kind": "api_key", "location": "header", "name": "X-Api-Key", "secret": API_KEY},
        **extra,
    }
    response = await client.post("/api/openapi-tools", json=body, headers=auth(owner))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# --- Preview ------------------------------------------------------------------------------------------------------


async def test_preview_lists_each_operation_as_a_tool(
    client: httpx.AsyncClient, owner: dict[str, Any], inventory: Inventory
) -> None:
    response = await client.post(
        "/api/openapi-tools/preview", json={"document": document(inventory.base_url)}, headers=auth(owner)
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["title"] == "Inventory API" and preview["version"] == "2.1"
    assert preview["base_url"] == inventory.base_url
    ops = {op["tool_name"]: op for op in preview["operations"]}
    # Names from operationIds, snake_case and unique; one without an id is named by method and path.
    assert list(ops) == ["get_item_by_id", "list_items", "create_item", "get_item_by_id_2", "get_big", "upload"]
    one = ops["get_item_by_id"]
    assert (one["method"], one["path"]) == ("GET", "/items/{itemId}")
    assert one["description"] == "Read one item.\n\nIts name and how many are in stock."
    assert one["parameters"] == {
        "type": "object",
        "properties": {"itemId": {"type": "string", "description": "The item's id."}},
        "required": ["itemId"],
    }
    listed = ops["list_items"]["parameters"]
    assert listed["properties"]["limit"] == {"type": "integer", "minimum": 1, "maximum": 50}  # $ref resolved
    assert "required" not in listed
    create = ops["create_item"]["parameters"]
    assert create["required"] == ["body"]
    assert create["properties"]["x_trace"] == {"type": "string"}  # a Python identifier
    body = create["properties"]["body"]
    assert body["required"] == ["name"] and body["properties"]["parent"] == {}  # a cycle: open
    assert ops["upload"]["unsupported"] and "multipart/form-data" in ops["upload"]["unsupported"]
    assert [op["selected"] for op in preview["operations"]] == [True] * 5 + [False]

    as_json = await client.post(
        "/api/openapi-tools/preview",
        json={"document": {"openapi": "3.1.0", "info": {"title": "T"}, "paths": {"/ping": {"get": {}}}}},
        headers=auth(owner),
    )
    assert as_json.status_code == 200 and as_json.json()["operations"][0]["tool_name"] == "get_ping"
    assert as_json.json()["base_url"] is None


# References that fan out: each schema refers to the next eight times, 8^8 nodes once expanded.
FAN_OUT = json.dumps(
    {
        "openapi": "3.0.0",
        "paths": {"/a": {"post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/s/s0"}}}}}}},
        "s": {f"s{i}": {"properties": {p: {"$ref": f"#/s/s{i + 1}"} for p in "abcdefgh"}} for i in range(8)}
        | {"s8": {}},
    }
)
DEEP = (
    '{"openapi": "3.0.0", "paths": {"/a": {"get": {"parameters": [{"name": "x", "in": "query", "schema": '
    + '{"items": ' * 100
    + "{}"
    + "}" * 100
    + "}]}}}}"
)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("{not json", "not valid JSON"),
        ("a: [unclosed", "neither JSON nor valid YAML"),
        ('{"swagger": "2.0", "paths": {}}', "Swagger 2.0"),
        ('{"info": {}, "paths": {}}', "no `openapi: 3.x`"),
        ('{"openapi": "3.0.0", "info": {}, "paths": {}}', "no `paths`"),
        (
            '{"openapi": "3.0.0", "paths": {"/a": {"get": {"parameters": '
            '[{"$ref": "https://evil.example/p.json#/x"}]}}}}',
            "points outside the document",
        ),
        ('{"openapi": "3.0.0", "paths": {"/a": {"get": {"parameters": [{"$ref": "#/nope"}]}}}}', "points at nothing"),
        ("openapi: 3.0.0\nx: &a [1]\npaths: {/a: {get: {}}}\ny: *a\n", "aliases"),
        ('{"openapi": "3.0.0", "paths": {"/a/{id}": {"get": {}}}}', "does not define that parameter"),
        ('{"openapi": "3.0.0", "paths": {"a": {"get": {}}}}', "does not start with '/'"),
        ('{"openapi": "3.0.0", "paths": {"/a": {"summary": "no operations"}}}', "hold no operation"),
        ("[" + "1," * 1_100_000 + "1]", "larger than"),
        (FAN_OUT, "expand to more than"),
        (DEEP, "nested more than 64 levels"),
    ],
    ids=lambda v: v[:30] if isinstance(v, str) else v,
)
async def test_bad_documents_are_refused_with_what_is_wrong(
    client: httpx.AsyncClient, owner: dict[str, Any], text: str, says: str
) -> None:
    response = await client.post("/api/openapi-tools/preview", json={"document": text}, headers=auth(owner))
    assert_problem(response, 422, "invalid_openapi_document")
    assert says in response.json()["detail"]


# --- Import, catalog, runs -----------------------------------------------------------------------------------------


async def test_an_agent_calls_the_imported_api_with_its_key(
    served: tuple[httpx.AsyncClient, Path], owner: dict[str, Any], inventory: Inventory, llm: RunningModelServer
) -> None:
    client, database = served
    created = await create_import(client, owner, inventory, operations=["get_item_by_id", "create_item"])
    assert created["base_url"] == inventory.base_url  # from the document's server
    assert created["auth"] == {"kind": "api_key", "location": "header", "name": "X-Api-Key", "has_secret": True}
    assert [op["tool"] for op in created["operations"] if op["selected"]] == [
        "inventory__get_item_by_id",
        "inventory__create_item",
    ]
    # The key is never returned, and stored encrypted.
    for read in (created, (await client.get(f"/api/openapi-tools/{created['id']}", headers=auth(owner))).json()):
        assert API_KEY not in json.dumps(read)
    listed = await client.get("/api/openapi-tools", headers=auth(owner))
    assert API_KEY not in listed.text and listed.json()["total"] == 1
    with sqlite3.connect(database) as db:
        (stored,) = db.execute("SELECT secret_encrypted FROM openapi_sources WHERE name = 'inventory'").fetchone()
    assert stored and API_KEY not in stored

    catalog = (await client.get("/api/tools", headers=auth(owner))).json()
    tool = next(t for t in catalog if t["name"] == "inventory__get_item_by_id")
    assert tool["source"] == {"kind": "openapi", "id": created["id"], "name": "inventory"}
    assert tool["parameters"]["required"] == ["itemId"] and tool["description"].startswith("Read one item.")
    assert "inventory__list_items" not in {t["name"] for t in catalog}  # not chosen

    agent = await make_agent(
        client, owner, tools=[{"name": "inventory__get_item_by_id"}, {"name": "inventory__create_item"}]
    )
    script(
        llm,
        ChatReply.tool_call("inventory__get_item_by_id", {"itemId": "w 42/x"}),
        ChatReply.tool_call("inventory__create_item", {"body": {"name": "Gadget"}, "x_trace": "t-1"}),
        ChatReply.text("Widget w 42/x has 17 in stock; Gadget was added."),
    )
    response, events = await run(client, owner, agent["id"], "How many widgets are in stock?")
    assert response.status_code == 200 and events[-1]["type"] == "run.completed", events[-1]
    results = [e["data"] for e in events if e["type"] == "tool.result"]
    assert '"stock": 17' in results[0]["output"] and '"Widget w 42/x"' in results[0]["output"]
    assert '"created": {"name": "Gadget"}' in results[1]["output"] and '"trace": "t-1"' in results[1]["output"]
    # The API saw the key in its header, the path argument encoded, the body as JSON.
    first, second = inventory.requests
    assert first["method"] == "GET" and first["path"] == "/v1/items/w%2042%2Fx"
    assert first["headers"]["x-api-key"] == API_KEY
    assert second["method"] == "POST" and second["body"] == {"name": "Gadget"}
    assert second["headers"]["x-trace"] == "t-1" and second["headers"]["content-type"] == "application/json"
    # The model was offered the tools with their schemas; it never saw the key.
    offered = {t["function"]["name"]: t["function"] for t in llm.server.chat_requests[0].tools or []}
    assert offered["inventory__get_item_by_id"]["parameters"]["properties"]["itemId"]["type"] == "string"
    assert all(API_KEY not in json.dumps(r.messages) for r in llm.server.chat_requests)
    assert API_KEY not in response.text


async def test_api_errors_reach_the_run_as_tool_errors(
    client: httpx.AsyncClient, owner: dict[str, Any], inventory: Inventory, llm: RunningModelServer
) -> None:
    created = await create_import(client, owner, inventory, max_response_bytes=4096)
    agent = await make_agent(
        client,
        owner,
        tools=[{"name": f"inventory__{n}"} for n in ("get_item_by_id", "get_item_by_id_2", "get_big")],
        max_steps=6,
    )
    script(
        llm,
        ChatReply.tool_call("inventory__get_item_by_id", {"itemId": "missing"}),
        ChatReply.tool_call("inventory__get_item_by_id_2", {}),
        ChatReply.tool_call("inventory__get_big", {}),
        ChatReply.tool_call("inventory__get_item_by_id", {"itemId": 7}),
        ChatReply.text("Done."),
    )
    _, events = await run(client, owner, agent["id"], "Try everything.")
    assert events[-1]["type"] == "run.completed", events[-1]
    results = [e["data"] for e in events if e["type"] == "tool.result"]
    not_found, broken = (json.loads(r["output"]) for r in results[:2])
    big, bad_args = results[2]["output"], results[3]
    assert not_found["error"] == "http_error"
    assert "GET /items/{itemId} answered HTTP 404" in not_found["message"] and "no such item" in not_found["message"]
    assert broken["error"] == "http_error" and "HTTP 500" in broken["message"] and "on fire" in broken["message"]
    assert big.startswith("xxxx") and big.endswith("[response truncated at 4096 bytes]")
    assert bad_args["output"] is None and "itemId" in bad_args["error"]  # checked against the schema
    assert len(inventory.requests) == 3  # the bad arguments never reached the API

    # A wrong key: the API's 401 is the tool's error (and the new key is still not readable anywhere).
    wrong = "wrong-" + uuid.uuid4().hex
    patched = await client.patch(
        f"/api/openapi-tools/{created['id']}",
        json={"auth": {"kind": "api_key", "location": "header", "name": "X-Api-Key", "secret": wrong}},
        headers=auth(owner),
    )
    assert patched.status_code == 200 and wrong not in patched.text
    script(llm, ChatReply.tool_call("inventory__get_item_by_id", {"itemId": "1"}), ChatReply.text("No."))
    _, events = await run(client, owner, agent["id"], "Again.")
    failed = json.loads(next(e["data"]["output"] for e in events if e["type"] == "tool.result"))
    assert failed["error"] == "http_error" and "HTTP 401" in failed["message"]
    assert wrong not in json.dumps(events) and inventory.requests[-1]["headers"]["x-api-key"] == wrong


async def test_bearer_and_query_keys_are_sent(
    client: httpx.AsyncClient,
    owner: dict[str, Any],
    inventory: Inventory,
    llm: RunningModelServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    created = await create_import(
        client, owner, inventory, auth={"kind": "bearer", "secret": "tok-123"}, operations=["list_items"]
    )
    agent = await make_agent(client, owner, tools=[{"name": "inventory__list_items"}])
    script(
        llm,
        ChatReply.tool_call("inventory__list_items", {"tag": ["red", "blue"], "limit": 5}),
        ChatReply.text("Listed."),
    )
    await run(client, owner, agent["id"], "List.")
    seen = inventory.requests[-1]
    assert seen["headers"]["authorization"] == "Bearer tok-123"
    assert seen["query"] == {"tag": ["red", "blue"], "limit": ["5"]}

    await client.patch(
        f"/api/openapi-tools/{created['id']}",
        json={"auth": {"kind": "api_key", "location": "query", "name": "key", "secret": "q-secret"}},
        headers=auth(owner),
    )
    script(
        llm,
        ChatReply.tool_call("inventory__list_items", {"key": "from-the-model"}),
        ChatReply.text("Listed."),
    )
    _, events = await run(client, owner, agent["id"], "List again.")
    # `key` is no argument of the tool: the model cannot send (nor replace) the credential.
    refused = next(e["data"] for e in events if e["type"] == "tool.result")
    assert refused["output"] is None and "key" in refused["error"]
    script(llm, ChatReply.tool_call("inventory__list_items", {}), ChatReply.text("Ok."))
    _, events = await run(client, owner, agent["id"], "List once more.")
    assert inventory.requests[-1]["query"] == {"key": ["q-secret"]}
    assert "authorization" not in inventory.requests[-1]["headers"]
    assert "q-secret" not in json.dumps(events)
    # httpx logs each request: the key in the query is not in the line.
    request_lines = [r.getMessage() for r in caplog.records if r.name == "httpx" and "/v1/items" in r.getMessage()]
    assert request_lines and not any("q-secret" in line or "tok-123" in line for line in request_lines)
    assert "q-secret" not in caplog.text


# --- Changing and deleting -----------------------------------------------------------------------------------------


async def test_imports_are_checked_changed_and_deleted(
    client: httpx.AsyncClient, owner: dict[str, Any], inventory: Inventory, llm: RunningModelServer
) -> None:
    h = auth(owner)
    doc = document(inventory.base_url)
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"name": "Bad Name"}, 422, "validation_error", "name"),
        ({"name": "a__b"}, 422, "validation_error", "name"),
        ({"operations": ["nope"]}, 422, "invalid_openapi_import", "no operation whose tool name is 'nope'"),
        ({"operations": ["upload"]}, 422, "invalid_openapi_import", "only JSON bodies"),
        ({"operations": []}, 422, "invalid_openapi_import", "at least one"),
        ({"base_url": "ftp://example.com"}, 422, "invalid_openapi_import", "http or https"),
        ({"base_url": "https://u:p@example.com"}, 422, "invalid_openapi_import", "credentials"),
        ({"base_url": "http://10.1.2.3/api"}, 422, "base_url_not_allowed", "private"),
        ({"auth": {"kind": "bearer"}}, 422, "invalid_openapi_import", "needs its `secret`"),
        ({"auth": {"kind": "api_key", "secret": "s"}}, 422, "validation_error", "name"),
        ({"auth": {"kind": "api_key", "name": "Host", "secret": "s"}}, 422, "validation_error", "Host"),
        ({"timeout_seconds": 0}, 422, "validation_error", "timeout_seconds"),
    ]
    for extra, status, code, says in cases:
        response = await client.post("/api/openapi-tools", json={"name": "inv", "document": doc, **extra}, headers=h)
        assert_problem(response, status, code)
        assert says in json.dumps(response.json()), (extra, response.json())
    relative = '{"openapi": "3.0.0", "servers": [{"url": "/api"}], "paths": {"/a": {"get": {}}}}'
    response = await client.post("/api/openapi-tools", json={"name": "rel", "document": relative}, headers=h)
    assert_problem(response, 422, "invalid_openapi_import")
    assert "base_url" in response.json()["detail"]

    created = await create_import(client, owner, inventory, description="Stock levels")
    again = await client.post("/api/openapi-tools", json={"name": "inventory", "document": doc}, headers=h)
    assert_problem(again, 409, "openapi_source_name_taken")

    # Rename, choose other operations, keep the key (a secret left out is kept).
    patched = await client.patch(
        f"/api/openapi-tools/{created['id']}",
        json={
            "name": "stock",
            "operations": ["list_items"],
            "auth": {"kind": "api_key", "name": "X-Api-Key"},
            "timeout_seconds": 5,
        },
        headers=h,
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["name"] == "stock" and body["auth"]["has_secret"] and body["timeout_seconds"] == 5
    assert [op["tool"] for op in body["operations"] if op["selected"]] == ["stock__list_items"]
    names = {t["name"] for t in (await client.get("/api/tools", headers=h)).json()}
    assert "stock__list_items" in names and not any(n.startswith("inventory__") for n in names)
    # An agent's draft may name only tools that exist now.
    refused = await client.post(
        "/api/agents", json={"name": "Old tools", "tools": [{"name": "inventory__list_items"}]}, headers=h
    )
    assert_problem(refused, 422, "invalid_agent")

    # A new document replaces the operations.
    replaced = await client.patch(
        f"/api/openapi-tools/{created['id']}",
        json={"document": {"openapi": "3.0.0", "info": {"title": "Two"}, "paths": {"/ping": {"get": {}}}}},
        headers=h,
    )
    assert replaced.status_code == 200 and replaced.json()["title"] == "Two"
    assert [op["tool"] for op in replaced.json()["operations"]] == ["stock__get_ping"]
    bad = await client.patch(f"/api/openapi-tools/{created['id']}", json={"document": "swagger: '2.0'"}, headers=h)
    assert_problem(bad, 422, "invalid_openapi_document")

    # A published version keeps the tool: the import cannot be deleted while the version uses it.
    agent = await make_agent(client, owner, tools=[{"name": "stock__get_ping"}])
    published = await client.post(f"/api/agents/{agent['id']}/publish", json={"note": "v1"}, headers=h)
    assert published.status_code == 201, published.text
    in_use = await client.delete(f"/api/openapi-tools/{created['id']}", headers=h)
    assert_problem(in_use, 409, "tool_source_in_use")
    await client.delete(f"/api/agents/{agent['id']}", headers=h)
    gone = await client.delete(f"/api/openapi-tools/{created['id']}", headers=h)
    assert gone.status_code == 204, gone.text
    assert_problem(await client.get(f"/api/openapi-tools/{created['id']}", headers=h), 404, "openapi_source_not_found")
    assert (await client.get("/api/openapi-tools", headers=h)).json()["total"] == 0


async def test_only_tool_managers_may_import(
    client: httpx.AsyncClient, owner: dict[str, Any], inventory: Inventory
) -> None:
    user = await invite_and_register(
        client, owner["access_token"], f"user-{uuid.uuid4().hex[:6]}@example.com", role="user"
    )
    response = await client.get("/api/openapi-tools", headers=bearer(user["access_token"]))
    assert_problem(response, 403, "permission_denied")
