"""The OpenAI-compatible API (`/v1`) through the official `openai` package, against the scripted model server:
models, completions (whole and streamed, with usage), multi-turn, errors in OpenAI's shape, 429s, idempotent
retries, stored conversations on request. One app for the module."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import openai
import pytest
from openai import AsyncOpenAI

from tests.conftest import make_settings, serve_in_process, wait_until
from tests.support.identity import bearer, register
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server


@dataclass
class Tenant:
    app: Any
    http: httpx.AsyncClient
    token: str
    keys: dict[str, str]  # name -> secret

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)

    def openai(self, key: str = "all", **options: Any) -> AsyncOpenAI:
        """An OpenAI client on the app (ASGI transport), with the key `key` (a name of `keys`, or a secret)."""
        secret = self.keys.get(key, key)
        return AsyncOpenAI(
            api_key=secret,
            base_url="http://testserver/v1",
            # The official client on its own HTTP library (httpx2), over ASGI to the module's app.
            http_client=httpx2.AsyncClient(transport=httpx2.ASGITransport(app=self.app)),
            max_retries=options.pop("max_retries", 0),
            **options,
        )

    async def runs(self) -> list[dict[str, Any]]:
        listed = await self.http.get("/api/runs?limit=200", headers=self.headers)
        assert listed.status_code == 200, listed.text
        items: list[dict[str, Any]] = listed.json()["items"]
        return items


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture(autouse=True)
def _fresh(llm: RunningModelServer) -> None:
    llm.server.reset()


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[serve_in_process]:
    server = serve_in_process(make_settings(tmp_path_factory.mktemp("openai"), builtin_models=False))
    async with server:
        yield server


async def new_tenant(served: serve_in_process, llm: RunningModelServer, agents: dict[str, bool]) -> Tenant:
    """A tenant with an LLM on the scripted server, the agents named (published or not), and API keys."""
    http = served._client
    assert http is not None
    pair = await register(http, f"openai-{uuid.uuid4().hex[:8]}@example.com")
    headers = bearer(pair["access_token"])
    body = {"name": "Scripted", "kind": "llm", "model": "scripted", "base_url": llm.base_url, "timeout_seconds": 10}
    model = await http.post("/api/models", json=body, headers=headers)
    assert model.status_code == 201, model.text
    ids = {}
    for name, published in agents.items():
        agent = await http.post("/api/agents", json={"name": name, "model_id": model.json()["id"]}, headers=headers)
        assert agent.status_code == 201, agent.text
        ids[name] = agent.json()["id"]
        if published:
            done = await http.post(f"/api/agents/{ids[name]}/publish", json={"note": ""}, headers=headers)
            assert done.status_code in (200, 201), done.text
    tenant = Tenant(served.app, http, pair["access_token"], {})
    key_specs: dict[str, dict[str, Any]] = {
        "all": {},
        "limited": {"agent_ids": [ids[name] for name in list(agents)[-1:]]},
        "rate": {"rate_limit_per_minute": 2},
        "quota": {"daily_quota": 1},
    }
    for name, spec in key_specs.items():
        created = await http.post("/api/api-keys", json={"name": name, **spec}, headers=headers)
        assert created.status_code == 201, created.text
        tenant.keys[name] = created.json()["secret"]
        if name == "rate":
            assert created.json()["rate_limit_per_minute"] == 2
    return tenant


@pytest.fixture(scope="module")
async def tenant(served: serve_in_process, llm: RunningModelServer) -> Tenant:
    return await new_tenant(served, llm, {"helpdesk": True, "drafty": False, "other": True})


def agent_requests(llm: RunningModelServer) -> list[Any]:
    return [r for r in llm.server.chat_requests if "Write a title" not in json.dumps(r.messages)]


async def test_models_are_the_published_agents_the_key_may_use(tenant: Tenant) -> None:
    models = await tenant.openai().models.list()
    assert [m.id for m in models.data] == ["helpdesk", "other"]
    assert all(m.object == "model" and m.owned_by == "nexent" and m.created > 0 for m in models.data)
    assert [m.id for m in (await tenant.openai("limited").models.list()).data] == ["other"]
    assert (await tenant.openai().models.retrieve("helpdesk")).id == "helpdesk"
    with pytest.raises(openai.NotFoundError) as raised:
        await tenant.openai().models.retrieve("drafty")
    assert raised.value.code == "model_not_found"


async def test_a_completion_answers_in_openais_shape(tenant: Tenant, llm: RunningModelServer) -> None:
    llm.server.enqueue(ChatReply.text("Hello from the helpdesk."))
    answer = await tenant.openai().chat.completions.create(
        model="helpdesk", messages=[{"role": "user", "content": "Hello?"}], temperature=0.2, max_tokens=50
    )
    assert answer.object == "chat.completion" and answer.model == "helpdesk" and answer.id.startswith("chatcmpl-")
    assert len(answer.choices) == 1
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == "Hello from the helpdesk."
    assert choice.finish_reason == "stop" and choice.index == 0
    assert answer.usage is not None and answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    # The agent's run: stored on its own, without a conversation.
    run_id = str(uuid.UUID(answer.id.removeprefix("chatcmpl-")))
    run = next(r for r in await tenant.runs() if r["id"] == run_id)
    assert run["conversation_id"] is None and run["final_answer"] == "Hello from the helpdesk."
    conversations = await tenant.http.get("/api/conversations", headers=tenant.headers)
    assert conversations.json()["items"] == []


async def test_a_streamed_completion_with_usage(tenant: Tenant, llm: RunningModelServer) -> None:
    llm.server.enqueue(ChatReply.text("One two three four five."))
    stream = await tenant.openai().chat.completions.create(
        model="helpdesk",
        messages=[{"role": "user", "content": "Count to five."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.object == "chat.completion.chunk" and c.model == "helpdesk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "One two three four five."
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason is not None]
    assert [c.choices[0].finish_reason for c in finishing] == ["stop"]
    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.total_tokens > 0
    # Without include_usage: no usage chunk.
    llm.server.enqueue(ChatReply.text("Done."))
    plain = await tenant.openai().chat.completions.create(
        model="helpdesk", messages=[{"role": "user", "content": "Finish."}], stream=True
    )
    chunks = [chunk async for chunk in plain]
    assert all(c.choices for c in chunks) and chunks[-1].choices[0].finish_reason == "stop"


async def test_multi_turn_through_the_messages_array(tenant: Tenant, llm: RunningModelServer) -> None:
    llm.server.enqueue(ChatReply.text("Your name is Ada."))
    answer = await tenant.openai().chat.completions.create(
        model="helpdesk",
        messages=[
            {"role": "system", "content": "Answer in one short sentence."},
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Nice to meet you, Ada."},
            {"role": "user", "content": [{"type": "text", "text": "What is my name?"}]},
        ],
    )
    assert answer.choices[0].message.content == "Your name is Ada."
    prompt = json.dumps(agent_requests(llm)[0].messages)
    for said in ("Answer in one short sentence.", "My name is Ada.", "Nice to meet you, Ada.", "What is my name?"):
        assert said in prompt
    assert "Instructions from the calling application" in prompt


async def test_errors_are_in_openais_shape(tenant: Tenant) -> None:
    messages: Any = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.AuthenticationError) as unauthorized:
        await tenant.openai("nxk_not-a-key").chat.completions.create(model="helpdesk", messages=messages)
    assert unauthorized.value.status_code == 401 and unauthorized.value.code == "invalid_api_key"
    body: Any = unauthorized.value.body
    assert set(body) == {"message", "type", "param", "code"} and body["type"] == "invalid_request_error"
    for key, model in (("all", "no-such-agent"), ("all", "drafty"), ("limited", "helpdesk")):
        with pytest.raises(openai.NotFoundError) as missing:
            await tenant.openai(key).chat.completions.create(model=model, messages=messages)
        assert missing.value.code == "model_not_found" and missing.value.param == "model", (key, model)
    refused: list[tuple[dict[str, Any], str | None, str]] = [
        ({"messages": [{"role": "assistant", "content": "Hi"}]}, "messages[0].role", "invalid_messages"),
        ({"messages": [{"role": "user", "content": "  "}]}, "messages[0].content", "invalid_messages"),
        ({"messages": messages, "n": 2}, "n", "unsupported_parameter"),
        (
            {"messages": messages, "tools": [{"type": "function", "function": {"name": "f"}}]},
            "tools",
            "unsupported_parameter",
        ),
        (
            {"messages": messages, "response_format": {"type": "json_object"}},
            "response_format",
            "unsupported_parameter",
        ),
        ({"messages": messages, "extra_body": {"bogus": 1}}, "bogus", "unrecognized_argument"),
        ({"messages": []}, "messages", "invalid_value"),
        ({"messages": [{"role": "wizard", "content": "Hi"}]}, "messages[0].role", "invalid_value"),
    ]
    for arguments, param, code in refused:
        with pytest.raises(openai.BadRequestError) as bad:
            await tenant.openai().chat.completions.create(model="helpdesk", **arguments)
        assert (bad.value.status_code, bad.value.code, bad.value.param) == (400, code, param), arguments
        assert bad.value.type == "invalid_request_error"
    # Invalid JSON, and a path under /v1 that does not exist: OpenAI's shape too.
    raw = await tenant.http.post(
        "/v1/chat/completions", content=b"{", headers={**bearer(tenant.keys["all"]), "Content-Type": "application/json"}
    )
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "invalid_json"
    assert (await tenant.http.get("/v1/nothing-here", headers=bearer(tenant.keys["all"]))).json()["error"]["code"] == (
        "not_found"
    )
    # The rest of the API keeps problem documents.
    problem = await tenant.http.get("/api/agents", headers=bearer("nxk_not-a-key"))
    assert problem.status_code == 401 and problem.headers["content-type"] == "application/problem+json"


async def test_a_failing_run_is_a_server_error(tenant: Tenant, llm: RunningModelServer) -> None:
    llm.server.enqueue(ChatReply.error(400, "The model refuses."))
    with pytest.raises(openai.InternalServerError) as failed:
        await tenant.openai().chat.completions.create(model="helpdesk", messages=[{"role": "user", "content": "Hi"}])
    assert failed.value.status_code == 500 and failed.value.type == "server_error"
    assert failed.value.code == "agent_failed"
    llm.server.enqueue(ChatReply.error(400, "The model refuses."))
    stream = await tenant.openai().chat.completions.create(
        model="helpdesk", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    with pytest.raises(openai.APIError) as broken:
        async for _ in stream:
            pass
    assert "refuses" in broken.value.message or broken.value.code == "agent_failed"


async def test_rate_limits_and_quotas_answer_429_with_retry_after(tenant: Tenant) -> None:
    client = tenant.openai("rate")
    # Two requests a minute (a fixed clock minute: five requests meet the limit even across a minute's end).
    outcomes: list[openai.RateLimitError | None] = []
    for _ in range(5):
        try:
            await client.models.list()
            outcomes.append(None)
        except openai.RateLimitError as exc:
            outcomes.append(exc)
    limited = [e for e in outcomes if e is not None]
    assert limited and limited[0].code == "rate_limit_exceeded" and limited[0].type == "requests"
    assert 1 <= int(limited[0].response.headers["retry-after"]) <= 60
    quota = tenant.openai("quota")
    await quota.models.list()
    with pytest.raises(openai.RateLimitError) as exhausted:
        await quota.models.list()
    assert exhausted.value.code == "insufficient_quota" and exhausted.value.type == "insufficient_quota"
    assert int(exhausted.value.response.headers["retry-after"]) > 0


async def test_an_idempotent_retry_runs_once(tenant: Tenant, llm: RunningModelServer) -> None:
    client = tenant.openai()
    key = {"Idempotency-Key": f"retry-{uuid.uuid4()}"}
    messages: Any = [{"role": "user", "content": "Book the meeting room."}]
    llm.server.enqueue(ChatReply.text("Booked.").paced(delay=0.3))
    before = len(await tenant.runs())
    # The retry comes while the first is still running: both get the one run's answer.
    first, second = await asyncio.gather(
        client.chat.completions.with_raw_response.create(model="helpdesk", messages=messages, extra_headers=key),
        client.chat.completions.with_raw_response.create(model="helpdesk", messages=messages, extra_headers=key),
    )
    one, two = first.parse(), second.parse()
    assert one.id == two.id and one.choices[0].message.content == two.choices[0].message.content == "Booked."
    assert {first.headers.get("idempotent-replayed"), second.headers.get("idempotent-replayed")} == {None, "true"}
    # Streamed this time: the same run's answer, replayed.
    stream = await client.chat.completions.create(
        model="helpdesk", messages=messages, extra_headers=key, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert {c.id for c in chunks} == {one.id}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Booked."
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == one.usage.total_tokens  # type: ignore[union-attr]
    assert len(agent_requests(llm)) == 1
    assert len(await tenant.runs()) == before + 1
    # The same key with another body: refused.
    with pytest.raises(openai.UnprocessableEntityError) as reused:
        await client.chat.completions.create(
            model="helpdesk", messages=[{"role": "user", "content": "Cancel it."}], extra_headers=key
        )
    assert reused.value.code == "idempotency_key_reused"
    # Another key owner with the same key: a request of its own.
    llm.server.enqueue(ChatReply.text("Booked again."))
    other = await tenant.openai("limited").chat.completions.with_raw_response.create(
        model="other", messages=messages, extra_headers=key
    )
    assert other.parse().id != one.id and other.headers.get("idempotent-replayed") is None


async def test_a_conversation_is_stored_when_asked_for(tenant: Tenant, llm: RunningModelServer) -> None:
    client = tenant.openai()
    llm.server.enqueue(ChatReply.text("Hello, Grace."))
    first = await client.chat.completions.with_raw_response.create(
        model="helpdesk",
        messages=[{"role": "user", "content": "I am Grace."}],
        extra_headers={"X-Nexent-Conversation": "new"},
    )
    conversation_id = first.headers["x-nexent-conversation-id"]

    async def titled() -> bool:  # the new conversation's title is written by the model (here: an echo)
        return any("Write a title" in json.dumps(r.messages) for r in llm.server.chat_requests)

    await wait_until(titled, timeout=20)
    llm.server.enqueue(ChatReply.text("Grace."))
    second = await client.chat.completions.with_raw_response.create(
        model="helpdesk",
        messages=[
            {"role": "user", "content": "I am Grace."},
            {"role": "assistant", "content": "Hello, Grace."},
            {"role": "user", "content": "Who am I?"},
        ],
        extra_headers={"X-Nexent-Conversation": conversation_id},
    )
    assert second.headers["x-nexent-conversation-id"] == conversation_id
    assert second.parse().choices[0].message.content == "Grace."
    detail = await tenant.http.get(f"/api/conversations/{conversation_id}", headers=tenant.headers)
    assert [(m["role"], m["content"]) for m in detail.json()["messages"]] == [
        ("user", "I am Grace."),
        ("assistant", "Hello, Grace."),
        ("user", "Who am I?"),
        ("assistant", "Grace."),
    ]
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(
            model="helpdesk",
            messages=[{"role": "user", "content": "Hi"}],
            extra_headers={"X-Nexent-Conversation": "yesterday"},
        )
    assert bad.value.code == "invalid_conversation_header"
    with pytest.raises(openai.NotFoundError) as missing:
        await client.chat.completions.create(
            model="helpdesk",
            messages=[{"role": "user", "content": "Hi"}],
            extra_headers={"X-Nexent-Conversation": str(uuid.uuid4())},
        )
    assert missing.value.code == "conversation_not_found"


async def test_another_tenants_key_sees_none_of_its_agents(
    served: serve_in_process, tenant: Tenant, llm: RunningModelServer
) -> None:
    other = await new_tenant(served, llm, {"secret-agent": True})
    assert [m.id for m in (await other.openai().models.list()).data] == ["secret-agent"]
    with pytest.raises(openai.NotFoundError):
        await other.openai().chat.completions.create(model="helpdesk", messages=[{"role": "user", "content": "Hi"}])
    assert "secret-agent" not in [m.id for m in (await tenant.openai().models.list()).data]
