"""A scripted OpenAI-compatible model server that tests run on loopback in place of a real LLM.

It is a real HTTP server (FastAPI served by uvicorn in a background thread), not a mock of any client. It serves
`GET /v1/models`, `POST /v1/chat/completions` (plain JSON and SSE streaming, with reasoning and tool call deltas),
`POST /v1/embeddings`, `POST /v1/rerank` and `POST /v1/audio/transcriptions` (it answers `transcription_text` and
records what it received in `transcriptions`) (every path also without the `/v1` prefix). Tests queue replies that
chat requests consume in order (per model, then global); with nothing queued the server echoes the last user
message (and describes the images it carried: content parts `image_url`, see `RecordedRequest.images`).
Every request is recorded, and the number of concurrent requests is tracked.

Typical use::

    with run_model_server(api_key="sk-test") as llm:
        llm.server.enqueue(
            ChatReply.text("Hello there", reasoning="The user greets me."),
            ChatReply.tool_call("get_weather", {"city": "Paris"}),
            ChatReply.error(429, "Slow down", headers={"Retry-After": "1"}),
            ChatReply.dropped(after_chunks=2),
        )
        llm.server.enqueue(ChatReply.text("only for model b").paced(delay=0.5, chunk_delay=0.01), model="b")
        ...  # point the client under test at llm.base_url (http://127.0.0.1:PORT/v1) with key "sk-test"
        assert llm.server.chat_requests[0].messages[-1]["content"] == "hi"
        assert llm.server.max_in_flight <= 4
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import hashlib
import json
import math
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal, cast

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

__all__ = [
    "DEFAULT_MODELS",
    "ChatReply",
    "ConnectionDropped",
    "ModelServer",
    "ReceivedImage",
    "RecordedRequest",
    "RunningModelServer",
    "ServiceReply",
    "ToolCall",
    "count_tokens",
    "embed_text",
    "error_body",
    "rerank_score",
    "run_model_server",
]

DEFAULT_MODELS = ("test-chat", "test-embed", "test-rerank")
CHAT_PATH = "/chat/completions"
EMBEDDINGS_PATH = "/embeddings"
RERANK_PATH = "/rerank"
TRANSCRIPTIONS_PATH = "/audio/transcriptions"
MODELS_PATH = "/models"
_TRANSPORT_KEY = "nexent.model_server.transport"
_WORD = re.compile(r"\w+")

ChatMalformed = Literal["invalid_json", "missing_choices"]
ServiceMalformed = Literal["invalid_json", "missing_data"]
DropPoint = Literal["before_response", "mid_body"]
Responder = Callable[["RecordedRequest"], "ChatReply"]


class ConnectionDropped(Exception):
    """Raised to drop a connection when the app runs without a real socket (e.g. over httpx.ASGITransport)."""


# --- deterministic helpers ------------------------------------------------------------------------------------


def count_tokens(text: str) -> int:
    """The server's token count: whitespace-separated words."""
    return len(text.split())


@functools.lru_cache(maxsize=8192)
def _word_vector(word: str, dim: int) -> tuple[float, ...]:
    values: list[float] = []
    block = 0
    while len(values) < dim:
        digest = hashlib.sha256(f"{block}:{word}".encode()).digest()
        values.extend(n / 2**31 - 1.0 for n in struct.unpack("<8I", digest))
        block += 1
    return tuple(values[:dim])


def embed_text(text: str, dim: int) -> list[float]:
    """A deterministic, L2-normalized embedding: the sum of hash-derived vectors of the text's lower-cased words.

    Texts that share words get similar vectors, so retrieval tests find documents sharing words with the query.
    """
    words = _WORD.findall(text.lower()) or [f"\x00{text}"]
    total = [0.0] * dim
    for word in words:
        for i, value in enumerate(_word_vector(word, dim)):
            total[i] += value
    norm = math.sqrt(sum(v * v for v in total)) or 1.0
    return [v / norm for v in total]


def rerank_score(query: str, document: str) -> float:
    """The rerank score: the share of the query's distinct lower-cased words that occur in the document."""
    query_words = set(_WORD.findall(query.lower()))
    if not query_words:
        return 0.0
    return len(query_words & set(_WORD.findall(document.lower()))) / len(query_words)


def _pieces(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def _message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    texts = [_content_text(message.get("content"))]
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            texts.extend(str(function.get(key) or "") for key in ("name", "arguments"))
    return " ".join(texts)


def _default_error(status: int) -> tuple[str, str | None]:
    if status == 401:
        return "invalid_request_error", "invalid_api_key"
    if status == 404:
        return "invalid_request_error", "model_not_found"
    if status == 429:
        return "requests", "rate_limit_exceeded"
    if status >= 500:
        return "server_error", None
    return "invalid_request_error", None


def error_body(status: int, message: str | None = None, error_type: str | None = None, code: str | None = None) -> Any:
    """An OpenAI-style error body, `{"error": {"message", "type", "param", "code"}}`."""
    default_type, default_code = _default_error(status)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {
        "error": {
            "message": message if message is not None else f"{phrase} (scripted)",
            "type": error_type if error_type is not None else default_type,
            "param": None,
            "code": code if code is not None else default_code,
        }
    }


# --- scripts --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model makes; `arguments` is a mapping (sent as JSON) or a raw string (sent as is)."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def arguments_json(self) -> str:
        """The arguments as the wire carries them."""
        return self.arguments if isinstance(self.arguments, str) else json.dumps(dict(self.arguments))


@dataclass(frozen=True)
class ChatReply:
    """One scripted chat completion: text, reasoning, tool calls, an error, a malformed body or a dropped connection.

    Pacing: `delay` (seconds before the first byte), `chunk_delay` (between stream chunks; a non-streamed reply
    waits as long as its stream would have) and `chunk_size` (characters per content/argument delta); `None`
    takes the server's default.
    """

    content: str | None = None
    reasoning: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    status: int = 200
    error_message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    malformed: ChatMalformed | None = None
    raw_body: str | None = None
    raw_events: tuple[str, ...] | None = None
    media_type: str = "application/json"
    drop: DropPoint | None = None
    drop_after_chunks: int = 2
    delay: float | None = None
    chunk_delay: float | None = None
    chunk_size: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, content: str, *, reasoning: str | None = None, finish_reason: str = "stop") -> ChatReply:
        """A plain answer, optionally preceded by reasoning (`reasoning_content`)."""
        return cls(content=content, reasoning=reasoning, finish_reason=finish_reason)

    @classmethod
    def tool_call(
        cls,
        name: str,
        arguments: Mapping[str, Any] | str | None = None,
        *,
        id: str | None = None,
        content: str | None = None,
        reasoning: str | None = None,
    ) -> ChatReply:
        """A single tool call (finish_reason `tool_calls`)."""
        call = ToolCall(name, arguments if arguments is not None else {}, id)
        return cls.tools(call, content=content, reasoning=reasoning)

    @classmethod
    def tools(cls, *calls: ToolCall, content: str | None = None, reasoning: str | None = None) -> ChatReply:
        """Several parallel tool calls (finish_reason `tool_calls`)."""
        return cls(content=content, reasoning=reasoning, tool_calls=calls, finish_reason="tool_calls")

    @classmethod
    def error(
        cls,
        status: int,
        message: str | None = None,
        *,
        error_type: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ChatReply:
        """An HTTP error with an OpenAI-style JSON error body (also for streaming requests)."""
        return cls(
            status=status,
            error_message=message,
            error_type=error_type,
            error_code=code,
            headers=dict(headers or {}),
        )

    @classmethod
    def invalid_json(cls) -> ChatReply:
        """A 200 whose body (or, streamed, one SSE event) is not valid JSON."""
        return cls(malformed="invalid_json")

    @classmethod
    def missing_choices(cls) -> ChatReply:
        """A 200 with valid JSON lacking `choices` (streamed: a chunk without `choices`)."""
        return cls(malformed="missing_choices")

    @classmethod
    def raw(cls, body: str, *, status: int = 200, media_type: str = "application/json") -> ChatReply:
        """Send `body` verbatim, whatever the request asked for."""
        return cls(raw_body=body, status=status, media_type=media_type)

    @classmethod
    def raw_stream(cls, *pieces: str, media_type: str = "text/event-stream") -> ChatReply:
        """Stream `pieces` verbatim, each sent on its own (paced by `chunk_delay`): line breaks of any kind,
        comments, lines cut across reads, whatever the request asked for."""
        return cls(raw_events=pieces, media_type=media_type)

    @classmethod
    def dropped(cls, *, after_chunks: int | None = None, content: str = "this answer is cut short") -> ChatReply:
        """Close the connection: before any response (`after_chunks=None`) or after that many SSE events.

        A non-streamed request with `after_chunks` set gets the headers and half of the body first.
        """
        if after_chunks is None:
            return cls(content=content, drop="before_response")
        return cls(content=content, drop="mid_body", drop_after_chunks=after_chunks)

    def paced(
        self, *, delay: float | None = None, chunk_delay: float | None = None, chunk_size: int | None = None
    ) -> ChatReply:
        """A copy with the given pacing (unset values are kept)."""
        return dataclasses.replace(
            self,
            delay=self.delay if delay is None else delay,
            chunk_delay=self.chunk_delay if chunk_delay is None else chunk_delay,
            chunk_size=self.chunk_size if chunk_size is None else chunk_size,
        )


@dataclass(frozen=True)
class ServiceReply:
    """One scripted embeddings or rerank outcome: normal (maybe delayed), an error, malformed or dropped."""

    status: int = 200
    error_message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    malformed: ServiceMalformed | None = None
    drop: bool = False
    delay: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def ok(cls, *, delay: float = 0.0) -> ServiceReply:
        """The normal result, after `delay` seconds."""
        return cls(delay=delay)

    @classmethod
    def error(
        cls,
        status: int,
        message: str | None = None,
        *,
        error_type: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> ServiceReply:
        """An HTTP error with an OpenAI-style JSON error body."""
        return cls(
            status=status,
            error_message=message,
            error_type=error_type,
            error_code=code,
            headers=dict(headers or {}),
            delay=delay,
        )

    @classmethod
    def invalid_json(cls) -> ServiceReply:
        """A 200 whose body is not valid JSON."""
        return cls(malformed="invalid_json")

    @classmethod
    def missing_data(cls) -> ServiceReply:
        """A 200 with valid JSON lacking `data` (embeddings) or `results` (rerank)."""
        return cls(malformed="missing_data")

    @classmethod
    def dropped(cls) -> ServiceReply:
        """Close the connection before any response."""
        return cls(drop=True)


# --- recording ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedImage:
    """An image a chat request carried: its URL's media type and, for a data URL, its bytes."""

    url: str
    media_type: str | None
    data: bytes

    @classmethod
    def of(cls, url: str) -> ReceivedImage:
        if url.startswith("data:") and "," in url:
            header, payload = url[5:].split(",", 1)
            media_type = header.split(";", 1)[0] or None
            try:
                data = base64.b64decode(payload) if header.endswith(";base64") else payload.encode()
            except ValueError:
                data = b""
            return cls(url=url[:64], media_type=media_type, data=data)
        return cls(url=url, media_type=None, data=b"")

    def describe(self) -> str:
        return f"{self.media_type or 'url'} {len(self.data)} bytes sha256:{hashlib.sha256(self.data).hexdigest()[:12]}"


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server received it; `headers` has lower-case names, `body` is the parsed JSON or None."""

    seq: int
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw_body: bytes
    received_at: float
    received_at_wall: float

    @property
    def json(self) -> dict[str, Any]:
        """The body if it is a JSON object, else `{}`."""
        return cast(dict[str, Any], self.body) if isinstance(self.body, dict) else {}

    @property
    def model(self) -> str | None:
        value = self.json.get("model")
        return value if isinstance(value, str) else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        value = self.json.get("messages")
        return cast(list[dict[str, Any]], value) if isinstance(value, list) else []

    @property
    def tools(self) -> list[dict[str, Any]] | None:
        value = self.json.get("tools")
        return cast(list[dict[str, Any]], value) if isinstance(value, list) else None

    @property
    def stream(self) -> bool:
        return self.json.get("stream") is True

    @property
    def stream_options(self) -> dict[str, Any] | None:
        value = self.json.get("stream_options")
        return cast(dict[str, Any], value) if isinstance(value, dict) else None

    @property
    def last_user_message(self) -> str:
        """The text of the last `user` message ("" when there is none)."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _content_text(message.get("content"))
        return ""

    @property
    def images(self) -> list[ReceivedImage]:
        """The images of every message (content parts `image_url`, data URLs decoded), in order."""
        found: list[ReceivedImage] = []
        for message in self.messages:
            content = message.get("content")
            if not isinstance(content, list):
                continue
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    url = (part.get("image_url") or {}).get("url", "")
                    found.append(ReceivedImage.of(str(url)))
        return found

    def header(self, name: str) -> str | None:
        """A header by case-insensitive name."""
        return self.headers.get(name.lower())


# --- the server -----------------------------------------------------------------------------------------------


class ModelServer:
    """The server's script and state, and its FastAPI `.app`; thread-safe between the server and test threads.

    `responder(request) -> ChatReply`, when set, answers chat requests that find no queued reply; it runs on the
    server's thread. Attributes (`api_key`, `models`, `embedding_dim`, pacing defaults) may be changed at any time.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        embedding_dim: int = 64,
        chunk_size: int = 8,
        chunk_delay: float = 0.0,
        first_byte_delay: float = 0.0,
        reject_unknown_models: bool = False,
        responder: Responder | None = None,
    ) -> None:
        self.api_key = api_key
        self.models = list(models)
        self.embedding_dim = embedding_dim
        self.chunk_size = chunk_size
        self.chunk_delay = chunk_delay
        self.first_byte_delay = first_byte_delay
        self.reject_unknown_models = reject_unknown_models
        self.responder = responder
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._chat: dict[str | None, deque[ChatReply]] = {}
        self._embeddings: deque[ServiceReply] = deque()
        self._rerank: deque[ServiceReply] = deque()
        self._requests: list[RecordedRequest] = []
        self.transcription_text = "Scripted transcription."
        self.transcriptions: list[dict[str, Any]] = []  # model, file_name, content_type, size of each recording
        self._in_flight = 0
        self._max_in_flight = 0
        self._ids = 0
        self._released = threading.Event()
        self._released.set()
        self.app = self._build_app()

    # --- scripting --------------------------------------------------------------------------------------------

    def enqueue(self, *replies: ChatReply, model: str | None = None) -> None:
        """Queue chat replies, consumed in order by requests for `model` (or by any request when `model` is None).

        A request takes from its model's queue first, then from the global queue, then asks `responder`, then echoes.
        """
        with self._lock:
            self._chat.setdefault(model, deque()).extend(replies)

    def enqueue_embeddings(self, *replies: ServiceReply) -> None:
        """Queue outcomes for embeddings requests (normal results when the queue is empty)."""
        with self._lock:
            self._embeddings.extend(replies)

    def enqueue_rerank(self, *replies: ServiceReply) -> None:
        """Queue outcomes for rerank requests (normal results when the queue is empty)."""
        with self._lock:
            self._rerank.extend(replies)

    def pending(self) -> int:
        """How many queued replies (chat, embeddings and rerank) are still unconsumed."""
        with self._lock:
            return sum(len(q) for q in self._chat.values()) + len(self._embeddings) + len(self._rerank)

    def pause(self) -> None:
        """Hold every request after it is recorded (and counted in flight) until `resume`."""
        self._released.clear()

    def resume(self) -> None:
        """Let held requests go on."""
        self._released.set()

    def reset(self) -> None:
        """Forget queued replies, recordings and the in-flight maximum; resume if paused."""
        with self._lock:
            self._chat.clear()
            self._embeddings.clear()
            self._rerank.clear()
            self._requests.clear()
            self.transcriptions.clear()
            self.transcription_text = "Scripted transcription."
            self._max_in_flight = self._in_flight
        self.resume()

    # --- recordings -------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every recorded request, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """Recorded requests whose path is `path` or ends with it (e.g. "/chat/completions")."""
        return [r for r in self.requests if r.path == path or r.path.endswith(path)]

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return self.requests_to(CHAT_PATH)

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        return self.requests_to(EMBEDDINGS_PATH)

    @property
    def rerank_requests(self) -> list[RecordedRequest]:
        return self.requests_to(RERANK_PATH)

    def last_request(self, path: str | None = None) -> RecordedRequest:
        """The latest request (to `path`, if given); AssertionError when there is none."""
        found = self.requests if path is None else self.requests_to(path)
        assert found, f"no request to {path or 'any path'} was recorded"
        return found[-1]

    @property
    def in_flight(self) -> int:
        """Requests being served right now (a streamed response counts until its last byte)."""
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most requests served at once since start (or `reset`)."""
        with self._lock:
            return self._max_in_flight

    def wait_for_requests(self, count: int, *, path: str | None = None, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until `count` requests (to `path`) were recorded; don't call it on the loop the client runs on."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._matching(path)) >= count, timeout):
                raise TimeoutError(f"{len(self._matching(path))} of {count} requests arrived within {timeout}s")
            return self._matching(path)

    def wait_for_in_flight(self, count: int, *, timeout: float = 5.0) -> None:
        """Block until at least `count` requests are in flight; don't call it on the loop the client runs on."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._in_flight >= count, timeout):
                raise TimeoutError(f"{self._in_flight} of {count} requests in flight after {timeout}s")

    async def await_requests(
        self, count: int, *, path: str | None = None, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """`wait_for_requests` for async tests (polls without blocking the event loop)."""
        deadline = time.monotonic() + timeout
        while len(found := self._matching(path)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} requests arrived within {timeout}s")
            await asyncio.sleep(0.005)
        return found

    async def await_in_flight(self, count: int, *, timeout: float = 5.0) -> None:
        """`wait_for_in_flight` for async tests (polls without blocking the event loop)."""
        deadline = time.monotonic() + timeout
        while self.in_flight < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.in_flight} of {count} requests in flight after {timeout}s")
            await asyncio.sleep(0.005)

    def _matching(self, path: str | None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path or r.path.endswith(path)]

    # --- ASGI -------------------------------------------------------------------------------------------------

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app as served: `.app` wrapped to count in-flight requests and expose the socket for drops."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None and hasattr(transport, "abort"):
            scope = {**scope, _TRANSPORT_KEY: transport}
        with self._changed:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._changed.notify_all()
        try:
            await self.app(scope, receive, send)
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="nexent test model server", openapi_url=None, docs_url=None, redoc_url=None)
        for prefix in ("/v1", ""):
            app.add_api_route(prefix + MODELS_PATH, self._list_models, methods=["GET"])
            app.add_api_route(prefix + CHAT_PATH, self._chat_completions, methods=["POST"])
            app.add_api_route(prefix + EMBEDDINGS_PATH, self._create_embeddings, methods=["POST"])
            app.add_api_route(prefix + RERANK_PATH, self._rerank_documents, methods=["POST"])
            app.add_api_route(prefix + TRANSCRIPTIONS_PATH, self._transcribe, methods=["POST"])
        return app

    async def _begin(self, request: Request) -> tuple[RecordedRequest, Response | None]:
        """Record the request, check the API key, then wait while paused."""
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._changed:
            record = RecordedRequest(
                seq=len(self._requests),
                method=request.method,
                path=request.url.path,
                query=dict(request.query_params),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                raw_body=raw,
                received_at=time.monotonic(),
                received_at_wall=time.time(),
            )
            self._requests.append(record)
            self._changed.notify_all()
        if self.api_key is not None and record.header("authorization") != f"Bearer {self.api_key}":
            return record, self._error(401, "Incorrect API key provided.", None, None, {})
        while not self._released.is_set():
            await asyncio.sleep(0.005)
        return record, None

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._ids += 1
            return f"{prefix}{self._ids}"

    @staticmethod
    def _error(
        status: int, message: str | None, error_type: str | None, code: str | None, headers: Mapping[str, str]
    ) -> JSONResponse:
        return JSONResponse(error_body(status, message, error_type, code), status_code=status, headers=dict(headers))

    @staticmethod
    async def _drop(request: Request) -> None:
        """Abort the connection (after flushing what was written), so that the client sees a transport error."""
        transport = request.scope.get(_TRANSPORT_KEY)
        if transport is None:
            raise ConnectionDropped("scripted dropped connection")
        deadline = time.monotonic() + 2.0
        while transport.get_write_buffer_size() > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        transport.abort()
        for _ in range(5):
            await asyncio.sleep(0)

    def _check_model(self, model: Any) -> Response | None:
        if not isinstance(model, str) or not model:
            return self._error(400, "you must provide a model parameter", None, None, {})
        if self.reject_unknown_models and model not in self.models:
            return self._error(404, f"The model `{model}` does not exist.", None, None, {})
        return None

    # --- endpoints --------------------------------------------------------------------------------------------

    async def _list_models(self, request: Request) -> Response:
        _, denied = await self._begin(request)
        if denied is not None:
            return denied
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "nexent-test"} for m in self.models]
        return JSONResponse({"object": "list", "data": data})

    def _next_chat_reply(self, record: RecordedRequest) -> ChatReply:
        with self._lock:
            for key in (record.model, None):
                queue = self._chat.get(key)
                if queue:
                    return queue.popleft()
        if self.responder is not None:
            return self.responder(record)
        images = record.images
        seen = f" [images: {'; '.join(i.describe() for i in images)}]" if images else ""
        return ChatReply.text(f"echo: {record.last_user_message}{seen}")

    async def _chat_completions(self, request: Request) -> Response:
        record, denied = await self._begin(request)
        if denied is not None:
            return denied
        body = record.json
        if not isinstance(body.get("messages"), list):
            return self._error(400, "'messages' is a required property", None, None, {})
        if (bad_model := self._check_model(body.get("model"))) is not None:
            return bad_model
        reply = self._next_chat_reply(record)
        delay = self.first_byte_delay if reply.delay is None else reply.delay
        chunk_delay = self.chunk_delay if reply.chunk_delay is None else reply.chunk_delay
        chunk_size = self.chunk_size if reply.chunk_size is None else reply.chunk_size
        if delay > 0:
            await asyncio.sleep(delay)
        if reply.drop == "before_response":
            await self._drop(request)
            return Response(status_code=500)
        headers = dict(reply.headers)
        if reply.raw_body is not None:
            return Response(reply.raw_body, status_code=reply.status, media_type=reply.media_type, headers=headers)
        if reply.raw_events is not None:
            return StreamingResponse(
                self._paced_events(request, reply.raw_events, chunk_delay, None),
                status_code=reply.status,
                media_type=reply.media_type,
                headers=headers,
            )
        if reply.status >= 400:
            return self._error(reply.status, reply.error_message, reply.error_type, reply.error_code, headers)

        model = cast(str, body["model"])
        completion_id = self._next_id("chatcmpl-")
        created = int(time.time())
        calls = [(call, call.id or self._next_id("call_")) for call in reply.tool_calls]
        content = reply.content
        if content is None and not calls:
            content = ""
        finish_reason = reply.finish_reason or ("tool_calls" if calls else "stop")
        prompt_tokens = reply.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = sum(count_tokens(_message_text(m)) for m in record.messages)
        completion_tokens = reply.completion_tokens
        if completion_tokens is None:
            texts = [content or "", reply.reasoning or ""]
            texts += [f"{call.name} {call.arguments_json()}" for call, _ in calls]
            completion_tokens = sum(count_tokens(t) for t in texts)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        base = {"id": completion_id, "created": created, "model": model, "system_fingerprint": None}

        stream_options = record.stream_options or {}
        include_usage = record.stream and stream_options.get("include_usage") is True
        chunks: list[dict[str, Any]] = []

        def add_chunk(delta: dict[str, Any], finish: str | None = None) -> None:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            chunk: dict[str, Any] = {**base, "object": "chat.completion.chunk", "choices": [choice]}
            if include_usage:
                chunk["usage"] = None
            chunks.append(chunk)

        add_chunk({"role": "assistant", "content": ""})
        for piece in _pieces(reply.reasoning or "", chunk_size):
            add_chunk({"reasoning_content": piece})
        for piece in _pieces(content or "", chunk_size):
            add_chunk({"content": piece})
        for index, (call, call_id) in enumerate(calls):
            function = {"name": call.name, "arguments": ""}
            add_chunk({"tool_calls": [{"index": index, "id": call_id, "type": "function", "function": function}]})
            for piece in _pieces(call.arguments_json(), chunk_size):
                add_chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        add_chunk({}, finish_reason)
        if include_usage:
            chunks.append({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})

        if record.stream:
            events = [f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n" for chunk in chunks]
            if reply.malformed == "invalid_json":
                events = [*events[:1], f'data: {{"id": "{completion_id}", "choices": [{{"delta": \n\n']
            elif reply.malformed == "missing_choices":
                events = [f"data: {json.dumps({**base, 'object': 'chat.completion.chunk'})}\n\n"]
            events.append("data: [DONE]\n\n")
            drop_after = min(max(reply.drop_after_chunks, 0), len(events) - 1) if reply.drop == "mid_body" else None
            return StreamingResponse(
                self._paced_events(request, events, chunk_delay, drop_after),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", **headers},
            )

        if chunk_delay > 0:
            await asyncio.sleep(chunk_delay * (len(chunks) - 1))
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        if reply.reasoning is not None:
            message["reasoning_content"] = reply.reasoning
        if calls:
            message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments_json()}}
                for call, call_id in calls
            ]
        completion: dict[str, Any] = {
            **base,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": usage,
        }
        if reply.malformed == "invalid_json":
            return Response(f'{{"id": "{completion_id}", "choices": [', media_type="application/json", headers=headers)
        if reply.malformed == "missing_choices":
            del completion["choices"]
        encoded = json.dumps(completion).encode()
        if reply.drop == "mid_body":
            half = encoded[: len(encoded) // 2]
            return StreamingResponse(
                self._paced_events(request, [half], 0.0, 1),
                media_type="application/json",
                headers={**headers, "Content-Length": str(len(encoded))},
            )
        return Response(encoded, media_type="application/json", headers=headers)

    async def _paced_events(
        self, request: Request, events: Sequence[str | bytes], chunk_delay: float, drop_after: int | None
    ) -> AsyncIterator[str | bytes]:
        for index, event in enumerate(events):
            if drop_after is not None and index >= drop_after:
                await self._drop(request)
                return
            if index > 0 and chunk_delay > 0:
                await asyncio.sleep(chunk_delay)
            yield event
        if drop_after is not None:
            await self._drop(request)

    async def _service_outcome(
        self, request: Request, queue: deque[ServiceReply]
    ) -> tuple[RecordedRequest, ServiceReply, Response | None]:
        record, denied = await self._begin(request)
        if denied is not None:
            return record, ServiceReply(), denied
        if (bad_model := self._check_model(record.json.get("model"))) is not None:
            return record, ServiceReply(), bad_model
        with self._lock:
            reply = queue.popleft() if queue else ServiceReply()
        if reply.delay > 0:
            await asyncio.sleep(reply.delay)
        if reply.drop:
            await self._drop(request)
            return record, reply, Response(status_code=500)
        if reply.status >= 400:
            error = self._error(reply.status, reply.error_message, reply.error_type, reply.error_code, reply.headers)
            return record, reply, error
        if reply.malformed == "invalid_json":
            return record, reply, Response('{"object": "list", "data": [', media_type="application/json")
        return record, reply, None

    async def _create_embeddings(self, request: Request) -> Response:
        record, reply, early = await self._service_outcome(request, self._embeddings)
        if early is not None:
            return early
        raw_input = record.json.get("input")
        inputs: list[Any]
        single_tokens = isinstance(raw_input, list) and bool(raw_input) and all(isinstance(i, int) for i in raw_input)
        if isinstance(raw_input, str) or single_tokens:
            inputs = [raw_input]
        elif isinstance(raw_input, list) and raw_input:
            inputs = raw_input
        else:
            return self._error(400, "'input' must be a non-empty string or array", None, None, {})
        texts: list[str] = []
        for item in inputs:
            if isinstance(item, str):
                texts.append(item)
            elif isinstance(item, list) and all(isinstance(i, int) for i in item):
                texts.append(" ".join(str(i) for i in item))
            else:
                return self._error(400, "'input' items must be strings or token arrays", None, None, {})
        dimensions = record.json.get("dimensions")
        dim = dimensions if isinstance(dimensions, int) and dimensions > 0 else self.embedding_dim
        as_base64 = record.json.get("encoding_format") == "base64"
        data: list[dict[str, Any]] = []
        for index, text in enumerate(texts):
            vector = embed_text(text, dim)
            encoded: Any = vector
            if as_base64:
                encoded = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(count_tokens(t) for t in texts)
        result: dict[str, Any] = {
            "object": "list",
            "data": data,
            "model": record.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        if reply.malformed == "missing_data":
            del result["data"]
        return JSONResponse(result, headers=dict(reply.headers))

    async def _transcribe(self, request: Request) -> Response:
        """Speech to text: the scripted `transcription_text` for any multipart recording (`file` and `model`)."""
        _, early = await self._begin(request)
        if early is not None:
            return early
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return self._error(400, "'file' (a recording) is required", None, None, {})
        data = await upload.read()
        with self._lock:
            self.transcriptions.append(
                {
                    "model": form.get("model"),
                    "file_name": upload.filename,
                    "content_type": upload.content_type,
                    "size": len(data),
                }
            )
        return JSONResponse({"text": self.transcription_text})

    async def _rerank_documents(self, request: Request) -> Response:
        record, reply, early = await self._service_outcome(request, self._rerank)
        if early is not None:
            return early
        query = record.json.get("query")
        documents = record.json.get("documents")
        if not isinstance(query, str) or not isinstance(documents, list):
            return self._error(400, "'query' (string) and 'documents' (array) are required", None, None, {})
        texts: list[str] = []
        for document in documents:
            text = document.get("text") if isinstance(document, dict) else document
            if not isinstance(text, str):
                return self._error(400, "'documents' items must be strings or {text} objects", None, None, {})
            texts.append(text)
        scored = sorted(((i, rerank_score(query, t)) for i, t in enumerate(texts)), key=lambda s: (-s[1], s[0]))
        top_n = record.json.get("top_n")
        if isinstance(top_n, int) and top_n >= 0:
            scored = scored[:top_n]
        with_documents = record.json.get("return_documents") is True
        results: list[dict[str, Any]] = []
        for index, score in scored:
            result: dict[str, Any] = {"index": index, "relevance_score": score}
            if with_documents:
                result["document"] = {"text": texts[index]}
            results.append(result)
        tokens = count_tokens(query) + sum(count_tokens(t) for t in texts)
        body: dict[str, Any] = {
            "id": self._next_id("rerank-"),
            "model": record.model,
            "results": results,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        if reply.malformed == "missing_data":
            del body["results"]
        return JSONResponse(body, headers=dict(reply.headers))


# --- serving --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunningModelServer:
    """A `ModelServer` served on loopback by `run_model_server`; `.server` is its script and state."""

    server: ModelServer
    host: str
    port: int
    uvicorn_server: uvicorn.Server = field(repr=False)

    @property
    def url(self) -> str:
        """The origin, `http://127.0.0.1:PORT`."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, `http://127.0.0.1:PORT/v1`."""
        return f"{self.url}/v1"


@contextmanager
def run_model_server(
    server: ModelServer | None = None,
    *,
    api_key: str | None = None,
    embedding_dim: int | None = None,
    host: str = "127.0.0.1",
    startup_timeout: float = 10.0,
) -> Iterator[RunningModelServer]:
    """Serve `server` (or a new `ModelServer(api_key=..., embedding_dim=...)`) on a free loopback port.

    It runs in a background thread and stops on exit (requests still running get 2 seconds, then are cancelled).
    """
    if server is None:
        server = ModelServer(api_key=api_key, embedding_dim=embedding_dim or 64)
    elif api_key is not None or embedding_dim is not None:
        raise ValueError("pass api_key and embedding_dim to ModelServer when passing a server")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        server.asgi,
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="asyncio",
        interface="asgi3",
        proxy_headers=False,
        timeout_graceful_shutdown=2,
    )
    uv_server = uvicorn.Server(config)
    thread = threading.Thread(
        target=uv_server.run, kwargs={"sockets": [sock]}, name=f"model-server-{port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not uv_server.started:
            if not thread.is_alive():
                raise RuntimeError("the test model server failed to start")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the test model server did not start within {startup_timeout}s")
            time.sleep(0.01)
        yield RunningModelServer(server=server, host=host, port=port, uvicorn_server=uv_server)
    finally:
        server.resume()
        uv_server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():
            uv_server.force_exit = True
            thread.join(timeout=5)
        sock.close()
