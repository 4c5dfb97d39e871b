"""Calls to one OpenAI-compatible endpoint (OpenAI, DeepSeek, Qwen/DashScope, SiliconFlow, Ollama, vLLM, ...):
chat completions (streamed), embeddings and rerank, with every failure turned into a classified
`ProviderError`. Retries and failover across endpoints live in `pool.py`.

Streamed chat completions, the hot path of every agent run (a few dozen chunks a reply, hundreds of replies at
once), go through aiohttp, whose HTTP parser is compiled: read through httpx, httpcore, anyio and h11 (pure
Python), each chunk cost several times the CPU, a quarter of a run's CPU in all. Embeddings and rerank, one
request and one answer each, stay on httpx. Both keep the same behaviour: the model's timeout between bytes and
for the whole connection set-up, connections re-used while idle for at most 4 s, proxies from the environment,
no redirects, and every failure classified the same way.

Every connection is checked against an address policy (`core/netpolicy.py`) when it is made: public addresses,
and the private ones the operator allowed. The pools of `ModelConnections` are one per policy, so a connection one
tenant may use is never lent to a tenant that may not: aiohttp's connector checks the addresses it resolved
(`GuardedConnector`), httpx's transport connects only to addresses it checked (`GuardedBackend`). Through a proxy
the proxy connects, so the target's addresses are checked before each request instead. An error from an endpoint
on a private address says what kind of error it is and nothing else: no text of the answer, no detail of the
connection, which would let a tenant map the private network.
"""

from __future__ import annotations

import asyncio
import functools
import json
import urllib.request
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpcore
import httpx

from nexent.core.netpolicy import (
    AddressPolicy,
    AddressRefused,
    GuardedBackend,
    is_public_address,
    literal_address,
    resolve,
    resolve_checked,
)
from nexent.providers.types import (
    ChatChunk,
    ErrorCode,
    Message,
    ProviderError,
    ToolCallDelta,
    ToolSpec,
    Usage,
    api_key_problem,
    base_url_problem,
)

_CONTEXT_HINTS = ("context length", "context_length", "maximum context", "too many tokens", "prompt is too long")

# Idle connections are dropped after 4 s, before servers that close them after 5 s (uvicorn's default, vLLM among
# others) do: reusing a connection the server is closing at that moment fails the call.
KEEPALIVE_SECONDS = 4.0
_MAX_CONNECTIONS = 1000
_READ_BUFFER_BYTES = 1 << 20  # a server may send a whole reply as one SSE line


class GuardedConnector(aiohttp.TCPConnector):
    """aiohttp's connector, refusing (`AddressRefused`) to connect to an address the policy does not permit. The
    check is on the addresses it is about to connect to, IP literals and cached DNS answers included, once per new
    connection; the proxies of the environment are the operator's and pass."""

    def __init__(self, policy: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy = policy

    async def _resolve_host(self, host: str, port: int, traces: Sequence[Any] | None = None) -> list[Any]:
        results = await super()._resolve_host(host, port, traces=traces)
        if self.policy.permits_host(host) or host in proxy_hosts():
            return results
        for result in results:
            address = literal_address(str(result["host"]))
            if address is None or not self.policy.permits(address, host):
                raise AddressRefused(host)
        return list(results)


def new_chat_session(policy: AddressPolicy | None = None) -> aiohttp.ClientSession:
    """A connection pool for streamed chat completions, on the running loop; checked against `policy` (None: not
    checked, for tests and scripts)."""
    connector = (
        aiohttp.TCPConnector(limit=_MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS)
        if policy is None
        else GuardedConnector(policy, limit=_MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS)
    )
    # Proxies from the environment are looked up once per endpoint (`env_proxy`): aiohttp's own `trust_env` reads
    # the environment and ~/.netrc on a worker thread at every request.
    return aiohttp.ClientSession(
        connector=connector, read_bufsize=_READ_BUFFER_BYTES, timeout=aiohttp.ClientTimeout(total=None)
    )


def _limits() -> httpx.Limits:
    # Idle connections are dropped before servers close them (see `KEEPALIVE_SECONDS`).
    return httpx.Limits(
        max_connections=_MAX_CONNECTIONS, max_keepalive_connections=200, keepalive_expiry=KEEPALIVE_SECONDS
    )


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a connection pool whose connections `GuardedBackend` checks."""

    def __init__(self, policy: AddressPolicy) -> None:
        super().__init__(trust_env=False)
        limits = _limits()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy),
        )


class ModelConnections:
    """The process's connection pools to model servers, a part of its `ProcessState` (`engines.process`), closed
    with it: httpx for embeddings and rerank, aiohttp for streamed chat (one session per event loop: a session
    belongs to the loop it was made on). Each address policy has pools of its own (most tenants share the
    platform's), and each proxy of the environment an httpx client."""

    def __init__(self) -> None:
        self._http: dict[AddressPolicy | str, httpx.AsyncClient] = {}
        self._chat: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[AddressPolicy, aiohttp.ClientSession]] = (
            weakref.WeakKeyDictionary()
        )
        self._chat_getters: dict[AddressPolicy, Callable[[], aiohttp.ClientSession]] = {}

    def http(self, policy: AddressPolicy, proxy: str | None = None) -> httpx.AsyncClient:
        """The httpx client for endpoints under `policy`, or for those reached through `proxy`."""
        key: AddressPolicy | str = policy if proxy is None else proxy
        client = self._http.get(key)
        if client is None or client.is_closed:
            if proxy is None:
                client = httpx.AsyncClient(transport=_GuardedTransport(policy), trust_env=False)
            else:
                client = httpx.AsyncClient(proxy=proxy, limits=_limits(), trust_env=False)
            self._http[key] = client
        return client

    def chat(self, policy: AddressPolicy) -> Callable[[], aiohttp.ClientSession]:
        """A getter of the chat session for endpoints under `policy` on the running loop."""
        getter = self._chat_getters.get(policy)
        if getter is None:
            getter = self._chat_getters[policy] = functools.partial(self._chat_session, policy)
        return getter

    def _chat_session(self, policy: AddressPolicy) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        sessions = self._chat.get(loop)
        if sessions is None:
            sessions = self._chat[loop] = {}
        session = sessions.get(policy)
        if session is None or session.closed:
            session = sessions[policy] = new_chat_session(policy)
        return session

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        owners, self._chat = dict(self._chat), weakref.WeakKeyDictionary()
        for owner, sessions in owners.items():
            if owner is loop:  # sessions of other (finished) loops cannot be closed from here
                for session in sessions.values():
                    await session.close()
        clients, self._http = list(self._http.values()), {}
        for client in clients:
            await client.aclose()


# Endpoints made without the process's pools (tests, scripts): one chat session per loop, never closed before the
# loop ends.
_chat_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)


def chat_session() -> aiohttp.ClientSession:
    """A chat connection pool on the running loop, for endpoints made without the process's pools."""
    loop = asyncio.get_running_loop()
    session = _chat_sessions.get(loop)
    if session is None or session.closed:
        session = _chat_sessions[loop] = new_chat_session()
    return session


@functools.lru_cache(maxsize=1)
def proxy_hosts() -> frozenset[str]:
    """The host names of the proxies in the environment (connections to them are not checked)."""
    proxies = urllib.request.getproxies_environment()
    return frozenset(
        urlsplit(proxy if "://" in proxy else f"http://{proxy}").hostname or ""
        for name, proxy in proxies.items()
        if name != "no" and proxy
    ) - {""}


@functools.lru_cache(maxsize=1024)
def env_proxy(url: str) -> str | None:
    """The proxy for `url` from HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY (any case), as httpx uses them."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


class Endpoint:
    """One server of a model: a base URL (ending before `/chat/completions`) and an optional API key."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float,
        chat: Callable[[], aiohttp.ClientSession] = chat_session,
        policy: AddressPolicy | None = None,
    ) -> None:
        self.http = http
        self.chat = chat  # the chat connection pool (the process's: `ModelConnections.chat(policy)`)
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        # The address policy the pools check; None: unchecked pools (tests and scripts).
        self.policy = policy
        self._private: bool | None = None  # whether the server is on a private address, once an error asks
        self.timeout = httpx.Timeout(timeout, connect=min(10.0, timeout))
        # The same limits for streamed chat: `timeout` between two reads and for getting a connection (from the
        # pool or a new one), at most 10 s of that for the TCP (and TLS) connection itself.
        self.chat_timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=min(10.0, timeout), sock_read=timeout
        )

    def __repr__(self) -> str:
        return f"Endpoint({self.base_url!r})"  # never the key

    def _sendable(self) -> None:
        """Refuse, classified, an endpoint that no request can carry: one stored before its schema refused it."""
        if base_url_problem(self.base_url):
            raise ProviderError(ErrorCode.NETWORK, "The base URL holds spaces or control characters; correct it.")
        if self.api_key and api_key_problem(self.api_key):
            raise ProviderError(
                ErrorCode.AUTH, "The API key holds characters an HTTP header cannot carry; enter it again."
            )

    def _headers(self) -> dict[str, str]:
        self._sendable()
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
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        proxy = env_proxy(self.base_url)
        try:
            if proxy is not None:
                await self._check_proxied_target()
            async with self.chat().post(
                f"{self.base_url}/chat/completions",
                data=payload,
                headers=self._headers(),
                timeout=self.chat_timeout,
                allow_redirects=False,
                proxy=proxy,
            ) as response:
                if response.status >= 400:
                    body_bytes = await response.read()
                    raise classify_status(
                        response.status, body_bytes, response.headers, reflect=not await self._is_private()
                    )
                if "text/event-stream" not in response.headers.get("Content-Type", ""):
                    # Some servers ignore `stream`; accept a whole completion too.
                    yield _chunk_from_completion(_json(await response.read()))
                    return
                async for chunk in _parse_sse(response.content):
                    yield chunk
        except TimeoutError:
            raise ProviderError(
                ErrorCode.TIMEOUT, f"The model at {self.base_url} did not answer in time; retry or raise the timeout."
            ) from None
        except AddressRefused:
            raise self._refused() from None
        except aiohttp.ClientError as exc:
            if _refused_connection(exc):
                raise self._refused() from None
            detail = "" if await self._is_private() else f" ({type(exc).__name__})"
            raise ProviderError(
                ErrorCode.NETWORK,
                f"Could not reach {self.base_url}{detail}; check the base URL and that the server runs.",
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

    async def transcribe(self, model: str, audio: bytes, file_name: str, content_type: str) -> str:
        """Speech to text (`/audio/transcriptions`, multipart): the recording's text."""
        data = await self._post_json(
            "/audio/transcriptions",
            form={"model": model, "response_format": "json"},
            files={"file": (file_name, audio, content_type)},
        )
        text = data.get("text")
        if not isinstance(text, str):
            raise ProviderError(ErrorCode.BAD_RESPONSE, "The transcription answer has no text.")
        return text

    async def _post_json(
        self,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        form: dict[str, str] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> dict[str, Any]:
        """POST a JSON body (or a multipart form with files) and read a JSON answer."""
        headers = self._headers()
        if files is not None:
            headers.pop("Content-Type")  # httpx sets the multipart boundary
        try:
            if env_proxy(self.base_url) is not None:
                await self._check_proxied_target()
            if files is not None:
                response = await self.http.post(
                    f"{self.base_url}{path}", data=form, files=files, headers=headers, timeout=self.timeout
                )
            else:
                response = await self.http.post(
                    f"{self.base_url}{path}", json=body, headers=headers, timeout=self.timeout
                )
        except AddressRefused:
            raise self._refused() from None
        except httpx.TimeoutException:
            raise ProviderError(ErrorCode.TIMEOUT, f"The model at {self.base_url} did not answer in time.") from None
        except httpx.TransportError as exc:
            detail = "" if await self._is_private() else f" ({type(exc).__name__})"
            raise ProviderError(
                ErrorCode.NETWORK, f"Could not reach {self.base_url}{detail}; check the base URL."
            ) from None
        if response.status_code >= 400:
            raise classify_status(
                response.status_code, response.content, response.headers, reflect=not await self._is_private()
            )
        return _json(response.content)

    # --- the address policy -------------------------------------------------------------------------------------

    def _host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.base_url)
        return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)

    async def _check_proxied_target(self) -> None:
        """Through a proxy, the proxy resolves and connects: check the target's addresses here (per request)."""
        if self.policy is None:
            return
        host, port = self._host_port()
        try:
            await resolve_checked(host, port, self.policy, dns_timeout=min(10.0, self.timeout.connect or 10.0))
        except AddressRefused:
            raise
        except OSError:
            pass  # the proxy reports a host it cannot reach

    async def _is_private(self) -> bool:
        """Whether the server is on an address that is not public (so its errors are reported without detail).
        Asked only on errors; a host that does not resolve counts as private."""
        if self._private is None:
            host, port = self._host_port()
            literal = literal_address(host)
            if literal is not None:
                self._private = not is_public_address(literal)
            else:
                try:
                    addresses = await resolve(host, port, dns_timeout=2.0)
                except OSError:
                    self._private = True
                else:
                    self._private = not all(is_public_address(address) for address in addresses)
        return self._private

    def _refused(self) -> ProviderError:
        return ProviderError(
            ErrorCode.NOT_ALLOWED,
            f"The endpoint {self.base_url} is on a private, loopback or reserved address, which is not allowed here; "
            "the platform operator can allow it (NEXENT_PRIVATE_ENDPOINTS_ALLOW).",
        )


def _refused_connection(exc: BaseException) -> bool:
    """Whether aiohttp failed because the connector refused the address (`AddressRefused`)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AddressRefused) or isinstance(getattr(seen, "os_error", None), AddressRefused):
            return True
        seen = seen.__cause__
    return False


def classify_status(status: int, body: bytes, headers: Mapping[str, str], *, reflect: bool = True) -> ProviderError:
    """Turn an HTTP error answer into a classified error with the provider's own message when it has one (unless
    `reflect` is off: a server on a private address)."""
    detail = _error_message(body)
    suffix = f": {detail}" if detail and reflect else ""
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


def _retry_after(headers: Mapping[str, str]) -> float | None:
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


_DONE = ChatChunk(finish_reason="[DONE]")  # the end of the stream (compared by identity)


async def _parse_sse(content: aiohttp.StreamReader) -> AsyncIterator[ChatChunk]:
    """Read `data:` lines of a chat completion stream until `[DONE]`: each read from the socket is split into
    lines at once (one read often holds several events); an unfinished last line waits for the next read."""
    rest = b""
    async for data in content.iter_any():
        if rest:
            data, rest = rest + data, b""
        end = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if end < len(data) - 1:
            data, rest = data[: end + 1], data[end + 1 :]
        for line in data.splitlines():
            item = _sse_item(line)
            if item is _DONE:
                return
            if item is not None:
                yield item
    if rest:  # a last line without its line break
        item = _sse_item(rest)
        if item is _DONE:
            return
        if item is not None:
            yield item
    raise ProviderError(ErrorCode.NETWORK, "The provider closed the stream before finishing the answer.")


def _sse_item(line: bytes) -> ChatChunk | None:
    """One line of the stream: a chunk, `_DONE` at `[DONE]`, or None (a comment, an empty line, a chunk without
    anything in it)."""
    if not line.startswith(b"data:"):
        return None
    payload = line[5:].strip()
    if payload == b"[DONE]":
        return _DONE
    data = _json(payload)
    if "error" in data:
        raise ProviderError(ErrorCode.SERVER_ERROR, f"The provider failed mid-answer: {_error_message(payload)}")
    return _chunk_from_delta(data)


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
