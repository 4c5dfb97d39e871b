"""Per-request context shared by logging, errors, metrics and the audit log."""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestInfo:
    request_id: str
    client_ip: str | None


_request: ContextVar[RequestInfo | None] = ContextVar("nexent_request", default=None)


def current_request() -> RequestInfo | None:
    return _request.get()


def current_request_id() -> str | None:
    """The id of the request being handled, if any."""
    info = _request.get()
    return info.request_id if info else None


def set_request(info: RequestInfo | None) -> Token[RequestInfo | None]:
    return _request.set(info)


def reset_request(token: Token[RequestInfo | None]) -> None:
    _request.reset(token)
