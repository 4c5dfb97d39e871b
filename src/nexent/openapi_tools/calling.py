"""Calling one imported operation over HTTP, through the platform's outbound address policy.

The arguments (already checked against the operation's JSON schema) are placed where the document says: path
segments (percent-encoded), query parameters, headers, the JSON body. The source's credential is added last (a
bearer token, or an API key in a header or the query), so no argument can replace it. The connection goes through
`netpolicy.GuardedBackend`: a host on a private address is refused unless the operator allowed it. The answer is
read up to a size bound; a status outside 2xx becomes a `ToolError` that the model reads. Messages never hold the
credential nor the full URL (a query key would be in it).
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpcore
import httpx

from nexent.core.netpolicy import AddressPolicy, AddressRefused, GuardedBackend
from nexent.openapi_tools.document import Operation
from nexent.tools.registry import ToolError, ToolResult

__all__ = ["Credential", "call_operation", "client_for"]

USER_AGENT = "Nexent-OpenAPI-Tool/1.0"
_ERROR_EXCERPT = 500
_SENDING: ContextVar[bool] = ContextVar("openapi_tool_sending", default=False)


class _DropQuery(logging.Filter):
    """httpx logs each request's full URL at INFO; during a call of ours the query (an API key may be in it)
    is left out of that line."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if _SENDING.get() and isinstance(args, tuple) and len(args) > 1 and isinstance(args[1], httpx.URL):
            record.args = (args[0], args[1].copy_with(query=None), *args[2:])
        return True


logging.getLogger("httpx").addFilter(_DropQuery())


@dataclass(frozen=True)
class Credential:
    """How calls authenticate: `kind` is `none`, `bearer` or `api_key` (then `location` `header` or `query` and
    `name`). `secret` is the decrypted token; it lives only in memory, for the call."""

    kind: str = "none"
    location: str = "header"
    name: str = ""
    secret: str = field(default="", repr=False)


class _Transport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: AddressPolicy) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=8,
            network_backend=GuardedBackend(policy),
        )


def client_for(policy: AddressPolicy) -> httpx.AsyncClient:
    """An httpx client whose connections obey `policy`; it follows no redirects and reads no proxy settings."""
    return httpx.AsyncClient(transport=_Transport(policy), trust_env=False, follow_redirects=False)


def _header_value(name: str, value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, dict | list) else str(value)
    if "\r" in text or "\n" in text:
        raise ToolError(f"The header argument {name} holds a line break.", "invalid_arguments")
    return text


def _query_values(value: Any) -> list[str]:
    if isinstance(value, list):
        return [item if isinstance(item, str) else json.dumps(item) for item in value]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, dict):
        return [json.dumps(value)]
    return [str(value)]


def build_request(
    operation: Operation, base_url: str, arguments: dict[str, Any], credential: Credential
) -> tuple[str, str, list[tuple[str, str | int | float | bool | None]], dict[str, str], Any]:
    """Method, URL, query, headers and JSON body (or None) of one call."""
    path = operation.path
    query: list[tuple[str, str | int | float | bool | None]] = []
    headers = {"user-agent": USER_AGENT, "accept": "application/json, text/plain;q=0.9, */*;q=0.5"}
    body: Any = None
    for argument, value in arguments.items():
        place = operation.places.get(argument)
        if place is None or value is None:
            continue
        if place.location == "path":
            segment = value if isinstance(value, str) else json.dumps(value)
            path = path.replace("{" + place.name + "}", quote(segment, safe=""))
        elif place.location == "query":
            query.extend((place.name, item) for item in _query_values(value))
        elif place.location == "header":
            headers[place.name.lower()] = _header_value(place.name, value)
        else:
            body = value
    if credential.kind == "bearer":
        headers["authorization"] = f"Bearer {credential.secret}"
    elif credential.kind == "api_key" and credential.location == "header":
        headers[credential.name.lower()] = credential.secret
    elif credential.kind == "api_key":
        query = [(k, v) for k, v in query if k != credential.name]
        query.append((credential.name, credential.secret))
    return operation.method, base_url.rstrip("/") + path, query, headers, body


async def call_operation(
    client: httpx.AsyncClient,
    operation: Operation,
    base_url: str,
    arguments: dict[str, Any],
    credential: Credential,
    *,
    timeout: float,  # noqa: ASYNC109 (a per-call HTTP timeout, given to httpx)
    max_response_bytes: int,
) -> ToolResult:
    """Send one call and give its answer to the model; raises `ToolError` for what the model should read."""
    method, url, query, headers, body = build_request(operation, base_url, arguments, credential)
    what = f"{operation.method} {operation.path}"
    request = client.build_request(
        method,
        url,
        params=query,
        headers=headers,
        json=body if body is not None else None,
        timeout=httpx.Timeout(timeout),
    )
    sending = _SENDING.set(True)
    try:
        response = await client.send(request, stream=True)
    except AddressRefused as exc:
        raise ToolError(
            f"{exc.host} is on a private, loopback or reserved address, which the platform does not call; the "
            "operator can allow it (NEXENT_PRIVATE_ENDPOINTS_ALLOW).",
            "url_refused",
        ) from None
    except httpx.TimeoutException:
        raise ToolError(f"{what} did not answer within {timeout:g} s.", "timeout") from None
    except httpx.HTTPError as exc:
        raise ToolError(f"{what} could not be reached ({type(exc).__name__}).", "network_error") from None
    finally:
        _SENDING.reset(sending)
    try:
        chunks: list[bytes] = []
        size = 0
        truncated = False
        try:
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > max_response_bytes:
                    truncated = True
                    break
        except httpx.TimeoutException:
            raise ToolError(f"{what} did not finish its answer within {timeout:g} s.", "timeout") from None
        except httpx.HTTPError as exc:
            raise ToolError(f"{what} broke off its answer ({type(exc).__name__}).", "network_error") from None
    finally:
        await response.aclose()
    data = b"".join(chunks)[:max_response_bytes]
    text = data.decode(response.encoding or "utf-8", errors="replace")
    status = response.status_code
    if not 200 <= status < 300:
        excerpt = text[:_ERROR_EXCERPT].strip()
        reason = response.reason_phrase or ""
        message = f"{what} answered HTTP {status} {reason}".rstrip() + (f": {excerpt}" if excerpt else ".")
        raise ToolError(message, "http_error")
    if truncated:
        text += f"\n[response truncated at {max_response_bytes} bytes]"
    return ToolResult(output=text or f"{what} answered HTTP {status} with no body.", data={"status": status})
