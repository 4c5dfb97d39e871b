"""The scripted loopback model server behaves like an OpenAI-compatible API, as plain httpx sees it."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.model_server import (
    ChatReply,
    ModelServer,
    RecordedRequest,
    RunningModelServer,
    ServiceReply,
    ToolCall,
    embed_text,
    rerank_score,
    run_model_server,
)

USER = [{"role": "user", "content": "what is the weather in Paris"}]


@pytest.fixture(scope="module")
def running() -> Iterator[RunningModelServer]:
    with run_model_server(ModelServer(chunk_size=4, embedding_dim=32)) as served:
        yield served


@pytest.fixture
def llm(running: RunningModelServer) -> Iterator[ModelServer]:
    running.server.reset()
    yield running.server
    running.server.reset()


@pytest.fixture
def client(running: RunningModelServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.base_url, timeout=10) as http:
        yield http


def chat(client: httpx.Client, messages: list[dict[str, Any]] = USER, **extra: Any) -> httpx.Response:
    return client.post("/chat/completions", json={"model": "test-chat", "messages": messages, **extra})


def stream_chunks(client: httpx.Client, messages: list[dict[str, Any]] = USER, **extra: Any) -> list[dict[str, Any]]:
    """Run a streamed chat request and return its parsed chunks; asserts the stream ends with [DONE]."""
    body = {"model": "test-chat", "messages": messages, "stream": True, **extra}
    chunks: list[dict[str, Any]] = []
    with client.stream("POST", "/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        payloads = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]"
    for payload in payloads[:-1]:
        chunks.append(json.loads(payload))
    return chunks


def deltas(chunks: list[dict[str, Any]], key: str) -> str:
    return "".join(c["choices"][0]["delta"].get(key) or "" for c in chunks if c["choices"])


# --- chat completions -----------------------------------------------------------------------------------------


def test_models_are_listed(llm: ModelServer, client: httpx.Client, running: RunningModelServer) -> None:
    body = client.get("/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["test-chat", "test-embed", "test-rerank"]
    assert running.base_url == f"http://127.0.0.1:{running.port}/v1"
    assert httpx.get(f"{running.url}/models").status_code == 200


def test_echo_is_the_default_reply(llm: ModelServer, client: httpx.Client) -> None:
    body = chat(client).json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "test-chat"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "echo: what is the weather in Paris", "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 6, "completion_tokens": 7, "total_tokens": 13}


def test_scripted_text_with_reasoning(llm: ModelServer, client: httpx.Client) -> None:
    llm.enqueue(ChatReply.text("It is sunny.", reasoning="Check the forecast."))
    message = chat(client).json()["choices"][0]["message"]
    assert message["content"] == "It is sunny."
    assert message["reasoning_content"] == "Check the forecast."
    assert "tool_calls" not in message
    assert chat(client).json()["choices"][0]["message"]["content"].startswith("echo: ")
    assert llm.pending() == 0


def test_streamed_text_reassembles(llm: ModelServer, client: httpx.Client) -> None:
    llm.enqueue(ChatReply.text("The quick brown fox jumps."))
    chunks = stream_chunks(client)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    pieces = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert all(0 < len(p) <= 4 for p in pieces)
    assert deltas(chunks, "content") == "The quick brown fox jumps."
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all("usage" not in c for c in chunks)


def test_streamed_reasoning_deltas_come_before_content(llm: ModelServer, client: httpx.Client) -> None:
    llm.enqueue(ChatReply.text("Answer.", reasoning="Think step by step.").paced(chunk_size=3))
    chunks = stream_chunks(client)
    assert deltas(chunks, "reasoning_content") == "Think step by step."
    assert deltas(chunks, "content") == "Answer."
    kinds = [k for c in chunks[1:-1] for k in c["choices"][0]["delta"]]
    assert kinds.index("content") > max(i for i, k in enumerate(kinds) if k == "reasoning_content")


def test_streamed_tool_calls_reassemble(llm: ModelServer, client: httpx.Client) -> None:
    llm.enqueue(
        ChatReply.tools(
            ToolCall("get_weather", {"city": "Paris", "unit": "celsius"}),
            ToolCall("get_time", {"tz": "Europe/Paris"}, id="call_fixed"),
        )
    )
    chunks = stream_chunks(client)
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk["choices"][0]["delta"].get("tool_calls") or []:
            call = calls.setdefault(delta["index"], {"id": "", "name": "", "arguments": ""})
            if "id" in delta:
                assert delta["type"] == "function"
                call["id"] = delta["id"]
                call["name"] += delta["function"]["name"]
            call["arguments"] += delta["function"].get("arguments", "")
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert json.loads(calls[1]["arguments"]) == {"tz": "Europe/Paris"}
    assert calls[0]["id"].startswith("call_")
    assert calls[1]["id"] == "call_fixed"
    argument_deltas = sum(1 for c in chunks for d in c["choices"][0]["delta"].get("tool_calls") or [] if "id" not in d)
    assert argument_deltas > 2
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_call_without_streaming(llm: ModelServer, client: httpx.Client) -> None:
    llm.enqueue(ChatReply.tool_call("search", {"q": "nexent"}), ChatReply.tool_call("broken", "{not json"))
    choice = chat(client).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["function"] == {"name": "search", "arguments": '{"q": "nexent"}'}
    raw = chat(client).json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert raw == "{not json"


def test_usage_chunk_when_asked(llm: ModelServer, client: httpx.Client) -> None:
    llm.enqueue(ChatReply.text("one two three"))
    chunks = stream_chunks(client, stream_options={"include_usage": True})
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9}
    llm.enqueue(ChatReply(content="x", prompt_tokens=100, completion_tokens=7))
    assert chat(client).json()["usage"] == {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107}


def test_per_model_queue_goes_before_the_global_one(llm: ModelServer, client: httpx.Client) -> None:
    llm.enqueue(ChatReply.text("global 1"), ChatReply.text("global 2"))
    llm.enqueue(ChatReply.text("for b"), model="b")
    post = client.post
    assert post("/chat/completions", json={"model": "a", "messages": USER}).json()["model"] == "a"
    answer_b = post("/chat/completions", json={"model": "b", "messages": USER}).json()
    assert answer_b["choices"][0]["message"]["content"] == "for b"
    answer_b = post("/chat/completions", json={"model": "b", "messages": USER}).json()
    assert answer_b["choices"][0]["message"]["content"] == "global 2"


def test_responder_answers_when_nothing_is_queued(llm: ModelServer, client: httpx.Client) -> None:
    llm.responder = lambda request: ChatReply.text(f"{len(request.messages)} messages")
    try:
        assert chat(client).json()["choices"][0]["message"]["content"] == "1 messages"
    finally:
        llm.responder = None


# --- failures -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_scripted_http_errors(llm: ModelServer, client: httpx.Client, stream: bool) -> None:
    llm.enqueue(
        ChatReply.error(429, "Rate limit reached", headers={"Retry-After": "2"}),
        ChatReply.error(500),
        ChatReply.error(400, "bad tools", error_type="invalid_request_error", code="bad_tools"),
    )
    limited = chat(client, stream=stream)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.json() == {
        "error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}
    }
    failed = chat(client, stream=stream)
    assert failed.status_code == 500
    assert failed.json()["error"]["type"] == "server_error"
    assert failed.json()["error"]["message"]
    bad = chat(client, stream=stream).json()["error"]
    assert (bad["message"], bad["type"], bad["code"]) == ("bad tools", "invalid_request_error", "bad_tools")


def test_malformed_bodies(llm: ModelServer, client: httpx.Client) -> None:
    llm.enqueue(ChatReply.invalid_json(), ChatReply.missing_choices(), ChatReply.raw("oops", status=502))
    invalid = chat(client)
    assert invalid.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        invalid.json()
    missing = chat(client).json()
    assert missing["object"] == "chat.completion"
    assert "choices" not in missing
    raw = chat(client)
    assert (raw.status_code, raw.text) == (502, "oops")


def test_malformed_stream_events(llm: ModelServer, client: httpx.Client) -> None:
    llm.enqueue(ChatReply.invalid_json(), ChatReply.missing_choices())
    body = {"model": "test-chat", "messages": USER, "stream": True}
    with client.stream("POST", "/chat/completions", json=body) as response:
        payloads = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]"
    with pytest.raises(json.JSONDecodeError):
        [json.loads(p) for p in payloads[:-1]]
    [only] = stream_chunks(client)
    assert "choices" not in only


def test_dropped_connections_are_transport_errors(llm: ModelServer, client: httpx.Client) -> None:
    llm.enqueue(ChatReply.dropped(), ChatReply.dropped(after_chunks=1), ChatReply.dropped(after_chunks=2))
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        chat(client)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        chat(client)
    received: list[str] = []
    body = {"model": "test-chat", "messages": USER, "stream": True}

    def read_stream() -> None:
        with client.stream("POST", "/chat/completions", json=body) as response:
            assert response.status_code == 200
            received.extend(line for line in response.iter_lines() if line.startswith("data: "))

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        read_stream()
    assert len(received) == 2
    assert "[DONE]" not in received
    assert chat(client).status_code == 200
    assert len(llm.chat_requests) == 4


def test_delays_are_honoured(llm: ModelServer, client: httpx.Client) -> None:
    llm.enqueue(ChatReply.text("late").paced(delay=0.3))
    started = time.monotonic()
    assert chat(client).status_code == 200
    assert time.monotonic() - started >= 0.28

    llm.enqueue(ChatReply.text("abcdefgh").paced(delay=0.2, chunk_delay=0.1, chunk_size=2))
    body = {"model": "test-chat", "messages": USER, "stream": True}
    started = time.monotonic()
    with client.stream("POST", "/chat/completions", json=body) as response:
        first_byte = time.monotonic() - started
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    total = time.monotonic() - started
    assert first_byte >= 0.18
    assert len(lines) == 7  # role, four content pieces, finish, [DONE]
    assert total >= 0.2 + 6 * 0.1 - 0.05
    assert total < 5


# --- embeddings -----------------------------------------------------------------------------------------------


def test_embeddings_are_deterministic_and_normalized(llm: ModelServer, client: httpx.Client) -> None:
    texts = ["cats purr softly", "cats purr loudly", "stock markets fell"]
    body = client.post("/embeddings", json={"model": "test-embed", "input": texts}).json()
    assert body["object"] == "list"
    assert body["model"] == "test-embed"
    assert body["usage"] == {"prompt_tokens": 9, "total_tokens": 9}
    vectors = [item["embedding"] for item in body["data"]]
    assert [item["index"] for item in body["data"]] == [0, 1, 2]
    assert all(len(v) == 32 for v in vectors)
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-9) for v in vectors)
    again = client.post("/embeddings", json={"model": "test-embed", "input": texts[0]}).json()
    assert again["data"][0]["embedding"] == vectors[0] == embed_text(texts[0], 32)

    def cosine(a: list[float], b: list[float]) -> float:
        return math.fsum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])


def test_embeddings_dimensions_and_base64(llm: ModelServer, client: httpx.Client) -> None:
    sized = client.post("/embeddings", json={"model": "e", "input": "hello", "dimensions": 8}).json()
    assert len(sized["data"][0]["embedding"]) == 8
    encoded = client.post("/embeddings", json={"model": "e", "input": "hello", "encoding_format": "base64"}).json()
    decoded = struct.unpack("<32f", base64.b64decode(encoded["data"][0]["embedding"]))
    assert all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(decoded, embed_text("hello", 32), strict=True))
    assert client.post("/embeddings", json={"model": "e", "input": []}).status_code == 400


def test_embedding_failures(llm: ModelServer, client: httpx.Client) -> None:
    llm.enqueue_embeddings(
        ServiceReply.error(503, "overloaded"),
        ServiceReply.invalid_json(),
        ServiceReply.missing_data(),
        ServiceReply.dropped(),
        ServiceReply.ok(delay=0.25),
    )
    request = {"model": "test-embed", "input": "x"}
    failed = client.post("/embeddings", json=request)
    assert failed.status_code == 503
    assert failed.json()["error"]["message"] == "overloaded"
    with pytest.raises(json.JSONDecodeError):
        client.post("/embeddings", json=request).json()
    assert "data" not in client.post("/embeddings", json=request).json()
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post("/embeddings", json=request)
    started = time.monotonic()
    assert len(client.post("/embeddings", json=request).json()["data"]) == 1
    assert time.monotonic() - started >= 0.23


# --- rerank ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank"])
def test_rerank_orders_by_word_overlap(
    llm: ModelServer, running: RunningModelServer, client: httpx.Client, path: str
) -> None:
    documents = ["fish swim", "the cat sat", "a cat sat on the mat", {"text": "mat"}]
    request = {"model": "test-rerank", "query": "cat on mat", "documents": documents}
    body = client.post(f"{running.url}{path}", json=request).json()
    results = body["results"]
    assert [r["index"] for r in results] == [2, 1, 3, 0]
    assert [r["relevance_score"] for r in results] == sorted((r["relevance_score"] for r in results), reverse=True)
    assert results[0]["relevance_score"] == 1.0 == rerank_score("cat on mat", "a cat sat on the mat")
    assert results[-1]["relevance_score"] == 0.0
    assert body["usage"]["total_tokens"] > 0
    top = client.post(f"{running.url}{path}", json={**request, "top_n": 2, "return_documents": True}).json()["results"]
    assert [(r["index"], r["document"]["text"]) for r in top] == [(2, "a cat sat on the mat"), (1, "the cat sat")]


def test_rerank_failures(llm: ModelServer, client: httpx.Client) -> None:
    llm.enqueue_rerank(ServiceReply.error(429), ServiceReply.missing_data())
    request = {"model": "test-rerank", "query": "q", "documents": ["q"]}
    assert client.post("/rerank", json=request).status_code == 429
    assert "results" not in client.post("/rerank", json=request).json()
    assert client.post("/rerank", json={"model": "test-rerank", "query": "q"}).status_code == 400


# --- authentication, validation, recording --------------------------------------------------------------------


def test_api_key_is_checked() -> None:
    with run_model_server(api_key="sk-test") as served, httpx.Client(base_url=served.base_url) as http:
        payload = {"model": "m", "messages": USER}
        missing = http.post("/chat/completions", json=payload)
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "invalid_api_key"
        wrong = http.post("/embeddings", json={"model": "e", "input": "x"}, headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 401
        assert http.get("/models").status_code == 401
        good = http.post("/chat/completions", json=payload, headers={"Authorization": "Bearer sk-test"})
        assert good.status_code == 200
        assert [r.header("Authorization") for r in served.server.chat_requests] == [None, "Bearer sk-test"]


def test_bad_requests_and_unknown_models(llm: ModelServer, client: httpx.Client) -> None:
    assert client.post("/chat/completions", json={"model": "m"}).status_code == 400
    assert client.post("/chat/completions", json={"messages": USER}).status_code == 400
    llm.reject_unknown_models = True
    try:
        unknown = client.post("/chat/completions", json={"model": "nope", "messages": USER})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "model_not_found"
        assert chat(client).status_code == 200
    finally:
        llm.reject_unknown_models = False


def test_requests_are_recorded(llm: ModelServer, client: httpx.Client) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    before = time.monotonic()
    stream_chunks(client, tools=tools, stream_options={"include_usage": True})
    client.post("/embeddings", json={"model": "test-embed", "input": "x"}, headers={"X-Trace": "abc"})
    [record] = llm.chat_requests
    assert isinstance(record, RecordedRequest)
    assert (record.method, record.path, record.model) == ("POST", "/v1/chat/completions", "test-chat")
    assert record.messages == USER
    assert record.tools == tools
    assert record.stream is True
    assert record.stream_options == {"include_usage": True}
    assert record.last_user_message == "what is the weather in Paris"
    assert record.header("content-type") == "application/json"
    assert before <= record.received_at <= time.monotonic()
    assert llm.last_request().header("x-trace") == "abc"
    assert llm.last_request("/embeddings").json == {"model": "test-embed", "input": "x"}
    assert [r.seq for r in llm.requests] == [0, 1]


def test_wait_for_requests_from_another_thread(llm: ModelServer, running: RunningModelServer) -> None:
    sender = threading.Thread(target=lambda: httpx.get(f"{running.base_url}/models"))
    sender.start()
    [seen] = llm.wait_for_requests(1, path="/models", timeout=5)
    sender.join()
    assert seen.method == "GET"
    with pytest.raises(TimeoutError):
        llm.wait_for_requests(2, timeout=0.05)


# --- concurrency ----------------------------------------------------------------------------------------------


async def test_in_flight_requests_are_counted(llm: ModelServer, running: RunningModelServer) -> None:
    llm.pause()
    async with httpx.AsyncClient(base_url=running.base_url, timeout=10) as http:
        payload = {"model": "test-chat", "messages": USER}
        tasks = [asyncio.create_task(http.post("/chat/completions", json=payload)) for _ in range(5)]
        await llm.await_in_flight(5)
        await llm.await_requests(5, path="/chat/completions")
        assert llm.in_flight == 5
        llm.resume()
        responses = await asyncio.gather(*tasks)
    assert all(r.status_code == 200 for r in responses)
    assert llm.max_in_flight == 5
    assert llm.in_flight == 0


async def test_max_in_flight_reflects_a_client_limit(llm: ModelServer, running: RunningModelServer) -> None:
    for _ in range(6):
        llm.enqueue(ChatReply.text("slow stream").paced(chunk_delay=0.02))
    limit = asyncio.Semaphore(2)

    async def one(http: httpx.AsyncClient) -> str:
        async with limit:
            body = {"model": "test-chat", "messages": USER, "stream": True}
            async with http.stream("POST", "/chat/completions", json=body) as response:
                return "".join([line async for line in response.aiter_lines()])

    async with httpx.AsyncClient(base_url=running.base_url, timeout=10) as http:
        streams = await asyncio.gather(*(one(http) for _ in range(6)))
    assert all(s.endswith("data: [DONE]") for s in streams)
    assert llm.max_in_flight == 2
    assert llm.pending() == 0
