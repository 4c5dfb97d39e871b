"""Model providers against the scripted OpenAI-compatible server: configurations, checks, clients, usage."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from nexent.core.netpolicy import AddressPolicy
from nexent.providers import pool
from nexent.providers.models import ModelEndpoint, ModelKind
from nexent.providers.openai_compat import Endpoint, ModelConnections, env_proxy, proxy_hosts
from nexent.providers.pool import CallReport, RoutedModel
from nexent.providers.service import probe
from nexent.providers.types import ChatAccumulator, ErrorCode, ProviderError, complete
from tests.conftest import PostgresDatabases, make_settings, serve_in_process
from tests.support.identity import bearer, invite_and_register, register
from tests.support.model_server import ChatReply, RunningModelServer, ServiceReply, ToolCall, run_model_server
from tests.test_http import OPERATOR, assert_problem

USER = {"role": "user", "content": "Hello?"}


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture(scope="module")
def backup_llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture(autouse=True)
def _fresh_servers(llm: RunningModelServer, backup_llm: RunningModelServer) -> None:
    llm.server.reset()
    backup_llm.server.reset()
    llm.server.api_key = None
    pool._unhealthy_until.clear()  # endpoint health is process-wide; tests share the servers


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
async def owner(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer((await register(client, f"owner-{uuid.uuid4().hex[:6]}@example.com"))["access_token"])


async def add_model(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/models", json={"name": "Chat", "kind": "llm", "model": "gpt-test", **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def routed(*servers: RunningModelServer, **options: Any) -> RoutedModel:
    http = httpx.AsyncClient()
    return RoutedModel(
        model_id=uuid.uuid4(),
        model="gpt-test",
        endpoints=[Endpoint(http, s.base_url, None, timeout=options.pop("timeout", 5.0)) for s in servers],
        **options,
    )


# --- Configurations --------------------------------------------------------------------------------------------


async def test_model_crud_never_returns_keys(
    client: httpx.AsyncClient, owner: dict[str, str], llm: RunningModelServer
) -> None:
    created = await add_model(client, owner, base_url=llm.base_url + "/", api_key="sk-secret-123", context_window=8192)
    assert created["endpoints"] == [{"base_url": llm.base_url, "has_api_key": True}]
    assert created["is_default"] is True and created["check"]["status"] == "unknown"
    assert "sk-secret-123" not in str(created)

    app = client._transport.app  # type: ignore[attr-defined]
    async with app.state.engines.sessions() as session:
        stored = (await session.scalars(select(ModelEndpoint))).one()
    assert stored.api_key_encrypted and "sk-secret-123" not in stored.api_key_encrypted
    assert app.state.engines.keys.box.decrypt(stored.api_key_encrypted) == "sk-secret-123"

    # Re-sending an endpoint without its key keeps the key; a second endpoint is added.
    updated = await client.patch(
        f"/api/models/{created['id']}",
        json={"endpoints": [{"base_url": llm.base_url}, {"base_url": "http://127.0.0.1:9/v1", "api_key": "k2"}]},
        headers=owner,
    )
    assert [e["has_api_key"] for e in updated.json()["endpoints"]] == [True, True]
    listed = await client.get("/api/models", headers=owner)
    assert listed.json()["total"] == 1 and "sk-secret-123" not in listed.text and "k2" not in listed.text

    second = await add_model(client, owner, name="Other", base_url=llm.base_url)
    assert second["is_default"] is False
    await client.patch(f"/api/models/{second['id']}", json={"is_default": True}, headers=owner)
    first = (await client.get(f"/api/models/{created['id']}", headers=owner)).json()
    assert first["is_default"] is False
    assert (await client.delete(f"/api/models/{second['id']}", headers=owner)).status_code == 204
    assert (await client.get(f"/api/models/{created['id']}", headers=owner)).json()["is_default"] is True
    assert_problem(await client.get(f"/api/models/{second['id']}", headers=owner), 404, "model_not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "kind": "llm", "model": "m"},
        {"name": "x", "kind": "llm", "model": "m", "base_url": "ftp://host/v1"},
        {"name": "x", "kind": "sound", "model": "m", "base_url": "http://h/v1"},
        {"name": "x", "kind": "llm", "model": "m", "provider": "local", "base_url": "http://h/v1"},
        {
            "name": "x",
            "kind": "llm",
            "model": "m",
            "base_url": "http://h/v1",
            "endpoints": [{"base_url": "http://h/v1"}],
        },
        {"name": "x", "kind": "llm", "model": "m", "base_url": "http://h/v1", "max_concurrency": 0},
    ],
)
async def test_invalid_configurations_are_refused(
    client: httpx.AsyncClient, owner: dict[str, str], body: dict[str, Any]
) -> None:
    assert_problem(await client.post("/api/models", json=body, headers=owner), 422, "validation_error")


async def test_a_model_keeps_at_least_one_endpoint(
    client: httpx.AsyncClient, owner: dict[str, str], llm: RunningModelServer
) -> None:
    model = await add_model(client, owner, base_url=llm.base_url)
    emptied = await client.patch(f"/api/models/{model['id']}", json={"endpoints": []}, headers=owner)
    assert_problem(emptied, 400, "invalid_endpoints")
    checked = await client.post(f"/api/models/{model['id']}/check", headers=owner)
    assert checked.status_code == 200 and checked.json()["ok"], checked.text


async def test_only_admins_manage_models(client: httpx.AsyncClient, llm: RunningModelServer) -> None:
    owner = await register(client, "models-owner@example.com")
    developer = await invite_and_register(client, owner["access_token"], "models-dev@example.com", role="developer")
    await add_model(client, bearer(owner["access_token"]), base_url=llm.base_url)
    refused = await client.post(
        "/api/models",
        json={"name": "x", "kind": "llm", "model": "m", "base_url": llm.base_url},
        headers=bearer(developer["access_token"]),
    )
    assert_problem(refused, 403, "permission_denied")
    assert (await client.get("/api/models", headers=bearer(developer["access_token"]))).json()["total"] == 1


# --- The address policy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:11434/v1",  # loopback
        "http://localhost:11434/v1",  # a name that resolves to loopback
        "http://10.1.2.3/v1",  # a private network
        "http://100.64.0.1/v1",  # shared address space (carrier-grade NAT)
        "http://169.254.169.254/latest",  # link-local: cloud metadata
        "http://[2002:7f00:1::1]/v1",  # 6to4 around 127.0.0.1
        "http://[64:ff9b::a00:1]/v1",  # NAT64 around 10.0.0.1
        "http://[::ffff:127.0.0.1]/v1",  # IPv4-mapped loopback
    ],
)
async def test_private_endpoints_are_refused_unless_the_operator_allows_them(tmp_path: Path, base_url: str) -> None:
    settings = make_settings(tmp_path, builtin_models=False, private_endpoints_allow=[])
    async with serve_in_process(settings) as client:
        headers = bearer((await register(client, "strict@example.com"))["access_token"])
        model = {"name": "x", "kind": "llm", "model": "m", "base_url": base_url}
        refused = assert_problem(
            await client.post("/api/models", json=model, headers=headers), 400, "endpoint_not_allowed"
        )
        assert "NEXENT_PRIVATE_ENDPOINTS_ALLOW" in str(refused["detail"])
        check = {"kind": "llm", "model": "m", "base_url": base_url}
        assert_problem(await client.post("/api/models/check", json=check, headers=headers), 400, "endpoint_not_allowed")


async def test_a_model_saved_while_allowed_is_refused_at_connection_once_the_operator_withdraws_it(
    tmp_path: Path, llm: RunningModelServer
) -> None:
    """The policy applies to every connection, not only when a model is saved: chat (aiohttp) and embeddings
    (httpx) both. Only the operator sets a tenant's own list; a tenant admin may not."""
    settings = make_settings(tmp_path, builtin_models=False, private_endpoints_allow=[])
    async with serve_in_process(settings) as client:
        await register(client, "platform-admin@example.com")  # the first user is the platform's administrator
        pair = await register(client, "withdrawn@example.com")
        owner, tenant = bearer(pair["access_token"]), f"/api/admin/tenants/{pair['tenant']['id']}"
        assert_problem(
            await client.patch(tenant, json={"private_endpoints": ["127.0.0.1"]}, headers=owner),
            403,
            "permission_denied",
        )
        allowed = await client.patch(tenant, json={"private_endpoints": [" 127.0.0.1 ", "::1/128"]}, headers=OPERATOR)
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["private_endpoints"] == ["127.0.0.1", "::1"]
        assert_problem(
            await client.patch(tenant, json={"private_endpoints": ["not a host"]}, headers=OPERATOR),
            422,
            "validation_error",
        )

        chat = await add_model(client, owner, base_url=llm.base_url)
        embed = await add_model(client, owner, name="Embed", kind="embedding", model="emb", base_url=llm.base_url)
        for model in (chat, embed):
            assert (await client.post(f"/api/models/{model['id']}/check", headers=owner)).json()["ok"] is True
        seen = len(llm.server.requests)

        withdrawn = await client.patch(tenant, json={"private_endpoints": []}, headers=OPERATOR)
        assert withdrawn.json()["private_endpoints"] == []
        for model in (chat, embed):
            result = (await client.post(f"/api/models/{model['id']}/check", headers=owner)).json()
            assert result["ok"] is False and result["error"]["code"] == "endpoint_not_allowed", result
        assert len(llm.server.requests) == seen  # no connection was made


async def test_connections_are_checked_where_they_are_made(llm: RunningModelServer) -> None:
    """Whatever was checked before, the pools refuse an address the policy does not permit: IP literals (which
    aiohttp does not resolve) and names alike, and let through what it permits."""
    public_only, loopback = AddressPolicy(), AddressPolicy.parse(["127.0.0.0/8"])
    by_name = llm.base_url.replace("127.0.0.1", "localhost")
    connections = ModelConnections()
    try:
        for base_url in (llm.base_url, by_name):
            endpoint = Endpoint(
                connections.http(public_only),
                base_url,
                None,
                timeout=5.0,
                chat=connections.chat(public_only),
                policy=public_only,
            )
            with pytest.raises(ProviderError) as chat_refused:
                await complete(RoutedModel(model_id=None, model="m", endpoints=[endpoint], max_retries=0), [USER])
            assert chat_refused.value.code == ErrorCode.NOT_ALLOWED
            with pytest.raises(ProviderError) as embed_refused:
                await endpoint.embed("emb", ["text"])
            assert embed_refused.value.code == ErrorCode.NOT_ALLOWED
        assert llm.server.requests == []

        endpoint = Endpoint(
            connections.http(loopback), by_name, None, timeout=5.0, chat=connections.chat(loopback), policy=loopback
        )
        llm.server.enqueue(ChatReply.text("hello"))
        result = await complete(RoutedModel(model_id=None, model="m", endpoints=[endpoint]), [USER])
        assert result.content == "hello"
        vectors, _ = await endpoint.embed("emb", ["text"])
        assert len(vectors[0]) == llm.server.embedding_dim
    finally:
        await connections.close()


async def test_through_a_proxy_the_target_is_checked_before_each_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy (the operator's, here on loopback where nothing listens) resolves and connects, so the target's
    addresses are checked before the request; connecting to the proxy itself is never refused."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    env_proxy.cache_clear()
    proxy_hosts.cache_clear()
    connections = ModelConnections()
    try:
        codes = []
        for policy in (AddressPolicy(), AddressPolicy.parse(["10.0.0.0/8"])):
            base_url = "http://10.9.8.7/v1"
            http = connections.http(policy, env_proxy(base_url))
            endpoint = Endpoint(http, base_url, None, timeout=5.0, chat=connections.chat(policy), policy=policy)
            with pytest.raises(ProviderError) as embed_failed:
                await endpoint.embed("emb", ["text"])
            with pytest.raises(ProviderError) as chat_failed:
                await complete(RoutedModel(model_id=None, model="m", endpoints=[endpoint], max_retries=0), [USER])
            codes.extend([embed_failed.value.code, chat_failed.value.code])
        assert codes == [ErrorCode.NOT_ALLOWED] * 2 + [ErrorCode.NETWORK] * 2  # allowed: on to the (absent) proxy
    finally:
        await connections.close()
        env_proxy.cache_clear()
        proxy_hosts.cache_clear()


async def test_errors_of_private_endpoints_reflect_nothing_of_the_answer(
    client: httpx.AsyncClient, owner: dict[str, str], llm: RunningModelServer
) -> None:
    llm.server.enqueue(ChatReply.error(500, "internal detail: redis at 10.0.0.7 refused AUTH"))
    body = {"kind": "llm", "model": "gpt-test", "base_url": llm.base_url}
    failed = (await client.post("/api/models/check", json=body, headers=owner)).json()
    assert failed["error"]["code"] == "server_error" and "internal detail" not in failed["error"]["message"]

    llm.server.enqueue_embeddings(ServiceReply.error(404, "no such route on this admin port"))
    embed = {"kind": "embedding", "model": "emb", "base_url": llm.base_url}
    missing = (await client.post("/api/models/check", json=embed, headers=owner)).json()
    assert missing["error"]["code"] == "not_found" and "admin port" not in missing["error"]["message"]

    closed = await client.post("/api/models/check", json={**body, "base_url": "http://127.0.0.1:9/v1"}, headers=owner)
    assert closed.json()["error"]["message"] == (
        "Could not reach http://127.0.0.1:9/v1; check the base URL and that the server runs."
    )


@pytest.mark.parametrize("path", ["/api/models", "/api/models/check"])
async def test_credentials_in_the_base_url_are_refused(
    client: httpx.AsyncClient, owner: dict[str, str], llm: RunningModelServer, path: str
) -> None:
    with_key = {"name": "x", "kind": "llm", "model": "m", "api_key": "sk-test"}
    for base_url in (
        llm.base_url.replace("http://", "http://user:pass@"),
        llm.base_url.replace("http://", "http://u@"),
    ):
        body = with_key if path == "/api/models" else {k: v for k, v in with_key.items() if k != "name"}
        response = await client.post(path, json={**body, "base_url": base_url}, headers=owner)
        assert_problem(response, 422, "validation_error")
        assert "credentials" in response.text


# What no HTTP request can carry: a key with non-ASCII or control characters (the `Authorization` header), a base
# URL with control characters or a lone surrogate (the request line), a model name with control characters. Written
# as JSON text, because a lone surrogate (`\\ud941`) is valid JSON but no Python string json.dumps would write.
UNSENDABLE = [
    ("api_key", '"\\u00de\\ud941\\uddbf-\\u0013\\u0001"'),  # found by tests/test_fuzz.py: a 500
    ("api_key", '"sk-caf\\u00e9"'),
    ("api_key", '"sk-a\\nb"'),
    ("api_key", '"sk a"'),
    ("base_url", '"{base_url}/\\u00de\\u0013"'),
    ("base_url", '"{base_url}?x=\\u0001"'),
    ("base_url", '"{base_url}/a b"'),
    ("base_url", '"{base_url}/\\ud941"'),
    ("model", '"\\u00de\\ud941\\uddbf-\\u0013\\u0001"'),
    ("model", '"gpt\\u007f"'),
]


async def test_what_no_request_can_carry_is_refused(
    client: httpx.AsyncClient, owner: dict[str, str], llm: RunningModelServer
) -> None:
    json_headers = {**owner, "content-type": "application/json"}
    model = await add_model(client, owner, kind="rerank", base_url=llm.base_url)
    for field, value in UNSENDABLE:
        settings = {"kind": "rerank", "model": "m", "base_url": llm.base_url, "api_key": "sk-test"}
        encoded = {key: json.dumps(item) for key, item in settings.items()}
        encoded[field] = value.replace("{base_url}", llm.base_url)
        body = "{" + ", ".join(f'"{key}": {item}' for key, item in encoded.items()) + "}"
        checked = await client.post("/api/models/check", content=body, headers=json_headers)
        errors = assert_problem(checked, 422, "validation_error")["errors"]
        assert isinstance(errors, list)
        assert [error["loc"][-1] for error in errors] == [field], (body, errors)
        created = await client.post("/api/models", content='{"name": "x", ' + body[1:], headers=json_headers)
        assert_problem(created, 422, "validation_error")
        update = body.replace('"kind": "rerank", ', "")
        assert_problem(
            await client.patch(f"/api/models/{model['id']}", content=update, headers=json_headers),
            422,
            "validation_error",
        )
    assert llm.server.requests == [], "nothing was sent"


@pytest.mark.parametrize(("api_key", "base_url", "code"), [("sk-caf\u00e9", "", "auth"), (None, "/a b", "network")])
async def test_an_endpoint_stored_before_the_rules_fails_classified(
    llm: RunningModelServer, api_key: str | None, base_url: str, code: str
) -> None:
    async with httpx.AsyncClient() as http:
        endpoint = Endpoint(http, llm.base_url + base_url, api_key, timeout=5.0)
        model = RoutedModel(model_id=uuid.uuid4(), model="m", endpoints=[endpoint], max_retries=0)
        for call in (probe(model, ModelKind.LLM), probe(model, ModelKind.EMBEDDING), probe(model, ModelKind.RERANK)):
            result = await call
            assert result.error is not None and result.error.code == code, result
    assert llm.server.requests == []


# --- Checks ----------------------------------------------------------------------------------------------------


async def test_check_makes_a_real_call_and_stores_the_status(
    client: httpx.AsyncClient, owner: dict[str, str], llm: RunningModelServer
) -> None:
    model = await add_model(client, owner, base_url=llm.base_url, api_key="sk-right")
    llm.server.api_key = "sk-right"
    ok = (await client.post(f"/api/models/{model['id']}/check", headers=owner)).json()
    assert ok["ok"] is True and ok["error"] is None and ok["latency_ms"] > 0
    assert llm.server.last_request("/chat/completions").header("authorization") == "Bearer sk-right"
    stored = (await client.get(f"/api/models/{model['id']}", headers=owner)).json()["check"]
    assert stored["status"] == "ok" and stored["checked_at"] is not None

    llm.server.api_key = "sk-other"
    failed = (await client.post(f"/api/models/{model['id']}/check", headers=owner)).json()
    assert failed["ok"] is False and failed["error"]["code"] == "auth" and "API key" in failed["error"]["message"]
    stored = (await client.get(f"/api/models/{model['id']}", headers=owner)).json()["check"]
    assert stored["status"] == "error" and stored["error"]["code"] == "auth"


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (ChatReply.error(404, "The model does not exist"), "not_found"),
        (ChatReply.error(429, "Slow down"), "rate_limited"),
        (ChatReply.error(500, "Boom"), "server_error"),
        (ChatReply.error(400, "This model's maximum context length is 4096 tokens"), "context_length"),
        (ChatReply.invalid_json(), "bad_response"),
        (ChatReply.missing_choices(), "bad_response"),
        (ChatReply.dropped(), "network"),
        (ChatReply.dropped(after_chunks=2), "network"),
        (ChatReply.text("late").paced(delay=3.0), "timeout"),
    ],
)
async def test_unsaved_checks_classify_each_failure(
    client: httpx.AsyncClient, owner: dict[str, str], llm: RunningModelServer, reply: ChatReply, code: str
) -> None:
    llm.server.enqueue(reply)
    # Only the timeout case needs a short timeout; with 1 s for every case, a loaded machine turned a slow answer
    # into `timeout` before it could be classified as what it was.
    timeout = 1 if code == "timeout" else 30
    body = {"kind": "llm", "model": "gpt-test", "base_url": llm.base_url, "timeout_seconds": timeout}
    result = (await client.post("/api/models/check", json=body, headers=owner)).json()
    assert result["ok"] is False and result["error"]["code"] == code, result
    assert result["error"]["message"]


async def test_unreachable_servers_are_network_errors(client: httpx.AsyncClient, owner: dict[str, str]) -> None:
    body = {"kind": "llm", "model": "m", "base_url": "http://127.0.0.1:9/v1"}
    result = (await client.post("/api/models/check", json=body, headers=owner)).json()
    assert result["error"]["code"] == "network" and "127.0.0.1:9" in result["error"]["message"]


async def test_embedding_and_rerank_checks(
    client: httpx.AsyncClient, owner: dict[str, str], llm: RunningModelServer
) -> None:
    embedding = await add_model(client, owner, name="Embed", kind="embedding", model="emb", base_url=llm.base_url)
    checked = (await client.post(f"/api/models/{embedding['id']}/check", headers=owner)).json()
    assert checked["ok"] is True and checked["dimension"] == llm.server.embedding_dim
    assert (await client.get(f"/api/models/{embedding['id']}", headers=owner)).json()[
        "dimension"
    ] == llm.server.embedding_dim

    rerank = {"kind": "rerank", "model": "rr", "base_url": llm.base_url}
    assert (await client.post("/api/models/check", json=rerank, headers=owner)).json()["ok"] is True
    llm.server.enqueue_rerank(ServiceReply.missing_data())
    broken = (await client.post("/api/models/check", json=rerank, headers=owner)).json()
    assert broken["error"]["code"] == "bad_response"


# --- Clients ---------------------------------------------------------------------------------------------------


async def test_streaming_text_reasoning_and_usage(llm: RunningModelServer) -> None:
    llm.server.enqueue(ChatReply.text("The answer is 42.", reasoning="Think, then answer."))
    model = routed(llm)
    chunks = [chunk async for chunk in model.stream([{"role": "user", "content": "Question?"}])]
    assert len([c for c in chunks if c.content]) > 1  # really streamed
    accumulator = ChatAccumulator()
    for chunk in chunks:
        accumulator.add(chunk)
    result = accumulator.result()
    assert (result.content, result.reasoning, result.finish_reason) == (
        "The answer is 42.",
        "Think, then answer.",
        "stop",
    )
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    sent = llm.server.last_request("/chat/completions")
    assert sent is not None and sent.stream is True and sent.stream_options == {"include_usage": True}


async def test_any_line_breaks_and_lines_cut_across_reads(llm: RunningModelServer) -> None:
    def event(delta: dict[str, Any], **extra: Any) -> str:
        return "data: " + json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": None}], **extra})

    big = "x" * 300_000  # one line longer than any read buffer
    first = event({"content": "Hello"})
    llm.server.enqueue(
        ChatReply.raw_stream(
            ": a comment\r\n\r\n",
            first[:25],  # the rest of the line comes with the next read
            first[25:] + "\r\n\r\n",
            event({"content": ", "}) + "\r\r" + event({"reasoning_content": "hm"}) + "\n\n",
            event({"content": big}) + "\n\n",
            "event: ignored\n" + event({}, usage={"prompt_tokens": 3, "completion_tokens": 5}) + "\n\n",
            "data: [DONE]",  # the last line without its line break
        ).paced(chunk_delay=0.02)
    )
    result = await complete(routed(llm), [{"role": "user", "content": "x"}])
    assert (result.content, result.reasoning) == ("Hello, " + big, "hm")
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (3, 5)

    # Without `[DONE]` the answer is incomplete, even when the last line holds a chunk.
    llm.server.enqueue(ChatReply.raw_stream(event({"content": "cut"}) + "\n\n", event({"content": " short"})))
    with pytest.raises(ProviderError) as caught:
        await complete(routed(llm), [{"role": "user", "content": "x"}])
    assert caught.value.code is ErrorCode.NETWORK


def test_proxies_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "proxy.internal:3128")
    monkeypatch.setenv("no_proxy", "127.0.0.1,.local")
    env_proxy.cache_clear()
    try:
        assert env_proxy("https://api.example.com/v1") == "http://proxy.internal:3128"
        assert env_proxy("http://api.example.com/v1") is None  # no HTTP_PROXY
        assert env_proxy("https://127.0.0.1:8000/v1") is None and env_proxy("https://vllm.local/v1") is None
    finally:
        env_proxy.cache_clear()


async def test_tool_calls_are_assembled(llm: RunningModelServer) -> None:
    llm.server.enqueue(
        ChatReply.tools(ToolCall("search", {"query": "weather in Paris", "top_k": 3}), ToolCall("clock", {}))
    )
    tools = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
    result = await complete(routed(llm), [{"role": "user", "content": "Weather?"}], tools=tools)
    assert [c.name for c in result.tool_calls] == ["search", "clock"]
    assert result.tool_calls[0].parsed_arguments() == {"query": "weather in Paris", "top_k": 3}
    assert result.tool_calls[0].id and result.finish_reason == "tool_calls"
    assert llm.server.last_request("/chat/completions").tools == tools

    llm.server.enqueue(ChatReply.tools(ToolCall("search", '{"query": ')))
    broken = await complete(routed(llm), [{"role": "user", "content": "x"}])
    with pytest.raises(ProviderError) as caught:
        broken.tool_calls[0].parsed_arguments()
    assert caught.value.code is ErrorCode.BAD_RESPONSE


async def test_failover_to_a_healthy_endpoint(llm: RunningModelServer, backup_llm: RunningModelServer) -> None:
    llm.server.enqueue(ChatReply.error(503, "overloaded"), ChatReply.dropped())
    model = routed(llm, backup_llm)
    first = await complete(model, [{"role": "user", "content": "one"}])
    second = await complete(model, [{"role": "user", "content": "two"}])
    assert {first.content, second.content} == {"echo: one", "echo: two"}
    assert len(backup_llm.server.chat_requests) >= 1


async def test_calls_are_spread_over_endpoints(llm: RunningModelServer, backup_llm: RunningModelServer) -> None:
    model = routed(llm, backup_llm)
    for index in range(6):
        await complete(model, [{"role": "user", "content": f"n{index}"}])
    assert len(llm.server.chat_requests) == 3 and len(backup_llm.server.chat_requests) == 3


async def test_retries_with_backoff_then_succeeds(llm: RunningModelServer) -> None:
    llm.server.enqueue(ChatReply.error(429, "slow down", headers={"Retry-After": "0.2"}), ChatReply.text("fine"))
    result = await complete(routed(llm), [{"role": "user", "content": "x"}])
    assert result.content == "fine" and len(llm.server.chat_requests) == 2


async def test_request_errors_are_not_retried(llm: RunningModelServer, backup_llm: RunningModelServer) -> None:
    llm.server.enqueue(ChatReply.error(400, "maximum context length exceeded"))
    with pytest.raises(ProviderError) as caught:
        await complete(routed(llm, backup_llm), [{"role": "user", "content": "x"}])
    assert caught.value.code is ErrorCode.CONTEXT_LENGTH
    assert len(backup_llm.server.chat_requests) == 0


async def test_a_broken_stream_is_not_spliced_with_another_answer(
    llm: RunningModelServer, backup_llm: RunningModelServer
) -> None:
    llm.server.enqueue(ChatReply.dropped(after_chunks=3))
    received: list[str] = []

    async def consume() -> None:
        async for chunk in routed(llm, backup_llm).stream([{"role": "user", "content": "x"}]):
            received.append(chunk.content)

    with pytest.raises(ProviderError) as caught:
        await consume()
    assert caught.value.code is ErrorCode.NETWORK and received
    assert len(backup_llm.server.chat_requests) == 0


async def test_concurrency_limit(llm: RunningModelServer) -> None:
    for _ in range(6):
        llm.server.enqueue(ChatReply.text("ok").paced(delay=0.2))
    model = routed(llm, max_concurrency=2)
    await asyncio.gather(*(complete(model, [{"role": "user", "content": "x"}]) for _ in range(6)))
    assert llm.server.max_in_flight == 2


async def test_requests_per_minute_wait_for_the_next_window(llm: RunningModelServer) -> None:
    from nexent.engines.bus.local import LocalBus

    model = routed(llm, bus=LocalBus(), requests_per_minute=2, rate_window_seconds=1.0)
    started = time.time()
    await asyncio.gather(*(complete(model, [{"role": "user", "content": f"r{i}"}]) for i in range(3)))
    finished = time.time()
    assert len(llm.server.chat_requests) == 3
    # Two fit in a window; the third had to wait for the next one.
    assert int(finished // 1.0) > int(started // 1.0)


async def test_a_check_over_the_limit_answers_at_once(llm: RunningModelServer) -> None:
    from nexent.engines.bus.local import LocalBus

    model = routed(
        llm, bus=LocalBus(), requests_per_minute=1, max_retries=0, wait_for_rate=False, rate_window_seconds=3600
    )
    assert (await probe(model, ModelKind.LLM)).ok
    started = time.monotonic()
    second = await probe(model, ModelKind.LLM)
    assert time.monotonic() - started < 5  # not a minute in the queue
    assert not second.ok and second.error is not None and second.error.code == "rate_limited"
    assert "1 requests per minute" in second.error.message and len(llm.server.chat_requests) == 1


async def test_embeddings_in_batches_keep_order(llm: RunningModelServer) -> None:
    texts = [f"document number {i}" for i in range(150)]
    vectors, usage = await routed(llm).embed(texts, batch_size=64)
    assert len(vectors) == 150 and len(llm.server.embedding_requests) == 3
    single, _ = await routed(llm).embed([texts[100]])
    assert single[0] == vectors[100] and usage.prompt_tokens > 0


async def test_rerank_orders_by_relevance(llm: RunningModelServer) -> None:
    ranked = await routed(llm).rerank("red apples", ["green pears", "red apples and more", "apples"], top_n=2)
    assert [index for index, _ in ranked][:2] == [1, 2]


async def test_every_call_is_reported(llm: RunningModelServer) -> None:
    reports: list[CallReport] = []

    async def sink(report: CallReport) -> None:
        reports.append(report)

    llm.server.enqueue(ChatReply.text("hello there"), ChatReply.error(401, "bad key"))
    model = routed(llm, on_usage=sink, max_retries=0)
    await complete(model, [{"role": "user", "content": "hi"}])
    with pytest.raises(ProviderError):
        await complete(model, [{"role": "user", "content": "hi"}])
    assert [r.error for r in reports] == [None, ErrorCode.AUTH]
    assert reports[0].usage.completion_tokens > 0 and reports[0].ttft_ms is not None and reports[0].latency_ms > 0


# --- Usage through the API -------------------------------------------------------------------------------------


async def test_usage_is_metered_by_model_and_exported(
    client: httpx.AsyncClient, owner: dict[str, str], llm: RunningModelServer
) -> None:
    model = await add_model(client, owner, base_url=llm.base_url)
    for _ in range(2):
        await client.post(f"/api/models/{model['id']}/check", headers=owner)
    rows = (await client.get("/api/usage?group_by=model", headers=owner)).json()
    assert len(rows) == 1
    row = rows[0]
    assert row["key"] == model["id"] and row["calls"] == 2 and row["errors"] == 0
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0 and row["avg_ttft_ms"] is not None
    by_day = (await client.get("/api/usage?group_by=day", headers=owner)).json()
    assert by_day[0]["calls"] == 2 and len(by_day[0]["key"]) == 10
    metrics = (await client.get("/metrics", headers=bearer("operator-secret"))).text
    assert f'nexent_model_tokens_total{{direction="completion",model="{model["id"]}"' in metrics
    naive = await client.get("/api/usage?from=2026-01-01T00:00:00", headers=owner)
    assert_problem(naive, 422, "validation_error")
