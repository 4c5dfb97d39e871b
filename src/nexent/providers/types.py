"""What model clients take and give, whatever serves the model (a remote API or a built-in local model)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class ErrorCode(StrEnum):
    AUTH = "auth"
    NOT_FOUND = "not_found"
    NETWORK = "network"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    CONTEXT_LENGTH = "context_length"
    BAD_RESPONSE = "bad_response"
    INVALID_REQUEST = "invalid_request"
    SERVER_ERROR = "server_error"
    NOT_ALLOWED = "endpoint_not_allowed"  # the endpoint is on an address the address policy refuses


# Worth another try, on this endpoint after a pause or on another endpoint at once.
RETRYABLE = frozenset({ErrorCode.NETWORK, ErrorCode.TIMEOUT, ErrorCode.RATE_LIMITED, ErrorCode.SERVER_ERROR})
# The same request fails on every endpoint: do not fail over.
REQUEST_BOUND = frozenset({ErrorCode.CONTEXT_LENGTH, ErrorCode.INVALID_REQUEST})


class ProviderError(Exception):
    """A model call that failed, classified, with a message a user can act on."""

    def __init__(self, code: ErrorCode, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"ProviderError({self.code.value}, {self.message!r})"


# What a request line and an `Authorization: Bearer` header can carry. HTTP clients refuse anything else when they
# build the request (httpx: UnicodeEncodeError, InvalidURL; aiohttp: ValueError), so such a value is refused where it
# is entered, and an endpoint stored before that rule fails its calls with a classified error.
_UNSENDABLE_IN_URL = re.compile(r"[\x00-\x20\x7f]")
_SENDABLE_KEY = re.compile(r"[\x21-\x7e]*")


def base_url_problem(url: str) -> str | None:
    """Why a model server's base URL cannot be sent, or None."""
    if _UNSENDABLE_IN_URL.search(url):
        return "base_url must not contain spaces or control characters"
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        return "base_url is not valid Unicode text (it holds a lone surrogate)"
    return None


def api_key_problem(key: str) -> str | None:
    """Why an API key cannot be sent as a bearer token, or None."""
    if not _SENDABLE_KEY.fullmatch(key):
        return "api_key must be printable ASCII without spaces or control characters"
    return None


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it

    def parsed_arguments(self) -> Any:
        """The arguments as JSON; raises ProviderError(bad_response) when the model wrote invalid JSON."""
        try:
            return json.loads(self.arguments or "{}")
        except ValueError:
            raise ProviderError(
                ErrorCode.BAD_RESPONSE, f"The model wrote invalid JSON arguments for tool {self.name!r}."
            ) from None


@dataclass
class ToolCallDelta:
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class ChatChunk:
    """One streamed piece of a reply."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCallDelta] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None


@dataclass
class ChatResult:
    content: str
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)


class ChatAccumulator:
    """Builds the whole reply from streamed chunks (tool calls arrive in pieces, by index)."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, ToolCall] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None

    def add(self, chunk: ChatChunk) -> None:
        self.content.append(chunk.content)
        self.reasoning.append(chunk.reasoning)
        for delta in chunk.tool_calls:
            call = self.calls.setdefault(delta.index, ToolCall(id="", name="", arguments=""))
            call.id = delta.id or call.id
            call.name = delta.name or call.name
            call.arguments += delta.arguments
        self.finish_reason = chunk.finish_reason or self.finish_reason
        self.usage = chunk.usage or self.usage

    def result(self) -> ChatResult:
        calls = [self.calls[i] for i in sorted(self.calls)]
        for number, call in enumerate(calls):
            call.id = call.id or f"call_{number}"
        return ChatResult(
            content="".join(self.content),
            reasoning="".join(self.reasoning),
            tool_calls=calls,
            finish_reason=self.finish_reason,
            usage=self.usage or Usage(),
        )


Message = dict[str, Any]
ToolSpec = dict[
    str, Any
]  # OpenAI function-tool shape: {"type": "function", "function": {name, description, parameters}}


class ChatModel(Protocol):
    """A chat model, remote or local: streams a reply as chunks."""

    def stream(
        self, messages: list[Message], *, tools: list[ToolSpec] | None = None, **params: Any
    ) -> AsyncIterator[ChatChunk]: ...


async def complete(
    model: ChatModel, messages: list[Message], *, tools: list[ToolSpec] | None = None, **params: Any
) -> ChatResult:
    """The whole reply of a chat model."""
    accumulator = ChatAccumulator()
    async for chunk in model.stream(messages, tools=tools, **params):
        accumulator.add(chunk)
    return accumulator.result()


class EmbeddingModel(Protocol):
    async def embed(self, texts: list[str]) -> tuple[list[list[float]], Usage]: ...


class RerankModel(Protocol):
    async def rerank(self, query: str, documents: list[str], top_n: int | None = None) -> list[tuple[int, float]]: ...
