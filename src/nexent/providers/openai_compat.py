"""Calls to one OpenAI-compatible endpoint (OpenAI, DeepSeek, Qwen/DashScope, SiliconFlow, Ollama, vLLM, ...):
chat completions (streamed), embeddings and rerank, with every failure turned into a classified
`ProviderError`. Retries and failover across endpoints live in `pool.py`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from nexent.providers.types import (
    ChatChunk,
    ErrorCode,
    Message,
    ProviderError,
    ToolCallDelta,
    ToolSpec,
    Usage,
)

_CONTEXT_HINTS = ("context length", "context_length", "maximum context", "too many tokens", "prompt is too long")


class Endpoint:
    """One server of a model: a base URL (ending before `/chat/completions`) and an optional API key."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, api_key: str | None, *, timeout: float) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = httpx.Timeout(timeout, connect=min(10.0, timeout))

    def __repr__(self) -> str:
        return f"Endpoint({self.base_url!r})"  # never the key

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    async def stream_chat(
        self, model: str, messages: list[Message], tools: list[ToolSpec] | None, params: dict[str, Any]
    ) -> AsyncIterator[ChatChunk]:
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            **params,
        }
        if tools:
            body["tools"] = tools
        try:
            async with self.http.stream(
                "POST", f"{self.base_url}/chat/completions", json=body, headers=self._headers(), timeout=self.timeout
            ) as response:
                if response.status_code >= 400:
                    raise classify_status(response.status_code, await response.aread(), response.headers)
                if "text/event-stream" not in response.headers.get("content-type", ""):
                    # Some servers ignore `stream`; accept a whole completion too.
                    yield _chunk_from_completion(_json(await response.aread()))
                    return
                async for chunk in _parse_sse(response):
                    yield chunk
        except httpx.TimeoutException:
            raise ProviderError(
                ErrorCode.TIMEOUT, f"The model at {self.base_url} did not answer in time; retry or raise the timeout."
            ) from None
        except httpx.TransportError as exc:
            raise ProviderError(
                ErrorCode.NETWORK,
                f"Could not reach {self.base_url} ({type(exc).__name__}); check the base URL and that the server runs.",
            ) from None

    async def embed(self, model: str, texts: list[str]) -> tuple[list[list[float]], Usage]:
        data = await self._post_json("/embeddings", {"model": model, "input": texts})
        try:
            items = sorted(data["data"], key=lambda item: item["index"])
            vectors = [[float(x) for x in item["embedding"]] for item in items]
        except (KeyError, TypeError, ValueError):
            raise ProviderError(ErrorCode.BAD_RESPONSE, "The embedding answer is not in the expected shape.") from None
        if len(vectors) != len(texts):
            raise ProviderError(ErrorCode.BAD_RESPONSE, f"Asked for {len(texts)} embeddings, got {len(vectors)}.")
        usage = data.get("usage") or {}
        return vectors, Usage(prompt_tokens=int(usage.get("prompt_tokens", 0) or 0))

    async def rerank(self, model: str, query: str, documents: list[str], top_n: int | None) -> list[tuple[int, float]]:
        body: dict[str, Any] = {"model": model, "query": query, "documents": documents}
        if top_n is not None:
            body["top_n"] = top_n
        data = await self._post_json("/rerank", body)
        try:
            results = [(int(item["index"]), float(item["relevance_score"])) for item in data["results"]]
        except (KeyError, TypeError, ValueError):
            raise ProviderError(ErrorCode.BAD_RESPONSE, "The rerank answer is not in the expected shape.") from None
        if any(not 0 <= index < len(documents) for index, _ in results):
            raise ProviderError(ErrorCode.BAD_RESPONSE, "The rerank answer refers to documents that were not sent.")
        return sorted(results, key=lambda pair: pair[1], reverse=True)

    async def _post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self.http.post(
                f"{self.base_url}{path}", json=body, headers=self._headers(), timeout=self.timeout
            )
        except httpx.TimeoutException:
            raise ProviderError(ErrorCode.TIMEOUT, f"The model at {self.base_url} did not answer in time.") from None
        except httpx.TransportError as exc:
            raise ProviderError(
                ErrorCode.NETWORK, f"Could not reach {self.base_url} ({type(exc).__name__}); check the base URL."
            ) from None
        if response.status_code >= 400:
            raise classify_status(response.status_code, response.content, response.headers)
        return _json(response.content)


def classify_status(status: int, body: bytes, headers: httpx.Headers) -> ProviderError:
    """Turn an HTTP error answer into a classified error with the provider's own message when it has one."""
    detail = _error_message(body)
    suffix = f": {detail}" if detail else ""
    if status in (401, 403):
        return ProviderError(ErrorCode.AUTH, f"The provider refused the API key ({status}){suffix}", status=status)
    if status == 404:
        return ProviderError(
            ErrorCode.NOT_FOUND,
            f"Model or endpoint not found (404); check the base URL and model name{suffix}",
            status=status,
        )
    if status == 429:
        return ProviderError(
            ErrorCode.RATE_LIMITED,
            f"The provider is rate limiting this key (429){suffix}",
            status=status,
            retry_after=_retry_after(headers),
        )
    if status in (400, 413, 422) and any(hint in detail.lower() for hint in _CONTEXT_HINTS):
        return ProviderError(
            ErrorCode.CONTEXT_LENGTH,
            f"The conversation is longer than the model's context window{suffix}",
            status=status,
        )
    if status >= 500:
        return ProviderError(ErrorCode.SERVER_ERROR, f"The provider failed ({status}){suffix}", status=status)
    return ProviderError(
        ErrorCode.INVALID_REQUEST, f"The provider rejected the request ({status}){suffix}", status=status
    )


def _error_message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace").strip()
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "")[:500]
    if isinstance(error, str):
        return error[:500]
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])[:500]
    return ""


def _retry_after(headers: httpx.Headers) -> float | None:
    try:
        return float(headers.get("retry-after", ""))
    except ValueError:
        return None


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise ProviderError(ErrorCode.BAD_RESPONSE, "The provider answered with something that is not JSON.") from None
    if not isinstance(data, dict):
        raise ProviderError(ErrorCode.BAD_RESPONSE, "The provider answered with JSON of an unexpected shape.")
    return data


async def _parse_sse(response: httpx.Response) -> AsyncIterator[ChatChunk]:
    """Read `data:` lines of a chat completion stream until `[DONE]`."""
    finished = False
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            finished = True
            break
        data = _json(payload.encode())
        if "error" in data:
            raise ProviderError(
                ErrorCode.SERVER_ERROR, f"The provider failed mid-answer: {_error_message(payload.encode())}"
            )
        chunk = _chunk_from_delta(data)
        if chunk is not None:
            yield chunk
    if not finished:
        raise ProviderError(ErrorCode.NETWORK, "The provider closed the stream before finishing the answer.")


def _usage(data: dict[str, Any]) -> Usage | None:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return None
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens", 0) or 0),
        completion_tokens=int(usage.get("completion_tokens", 0) or 0),
    )


def _chunk_from_delta(data: dict[str, Any]) -> ChatChunk | None:
    choices = data.get("choices")
    usage = _usage(data)
    if not isinstance(choices, list):
        raise ProviderError(ErrorCode.BAD_RESPONSE, "A streamed chunk has no choices.")
    if not choices:
        return ChatChunk(usage=usage) if usage else None
    choice = choices[0]
    delta = choice.get("delta") or {}
    calls = [
        ToolCallDelta(
            index=int(call.get("index", position)),
            id=call.get("id"),
            name=(call.get("function") or {}).get("name"),
            arguments=(call.get("function") or {}).get("arguments") or "",
        )
        for position, call in enumerate(delta.get("tool_calls") or [])
    ]
    return ChatChunk(
        content=delta.get("content") or "",
        reasoning=delta.get("reasoning_content") or delta.get("reasoning") or "",
        tool_calls=calls,
        finish_reason=choice.get("finish_reason"),
        usage=usage,
    )


def _chunk_from_completion(data: dict[str, Any]) -> ChatChunk:
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        raise ProviderError(ErrorCode.BAD_RESPONSE, "The completion answer has no message.") from None
    calls = [
        ToolCallDelta(
            index=position,
            id=call.get("id"),
            name=(call.get("function") or {}).get("name"),
            arguments=(call.get("function") or {}).get("arguments") or "",
        )
        for position, call in enumerate(message.get("tool_calls") or [])
    ]
    return ChatChunk(
        content=message.get("content") or "",
        reasoning=message.get("reasoning_content") or "",
        tool_calls=calls,
        finish_reason=choice.get("finish_reason"),
        usage=_usage(data),
    )
