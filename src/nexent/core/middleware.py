"""ASGI middleware: request ids, access logs, Prometheus metrics and the request body limit.

Written as plain ASGI (not `BaseHTTPMiddleware`) so streamed responses such as SSE pass through untouched.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nexent.core.context import RequestInfo, reset_request, set_request
from nexent.core.errors import PROBLEM_CONTENT_TYPE, PayloadTooLarge, problem_body
from nexent.core.metrics import observe_error, observe_request

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access_logger = logging.getLogger("nexent.access")
error_logger = logging.getLogger("nexent.errors")


class RequestContextMiddleware:
    """Assign a request id, enforce the body limit, log the request and record metrics."""

    def __init__(
        self, app: ASGIApp, *, service: str, max_body_bytes: int, body_limits: Sequence[tuple[str, int]] = ()
    ) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        # Routes that take larger bodies (uploads): (path regular expression, limit in bytes).
        self.body_limits = [(re.compile(pattern), limit) for pattern, limit in body_limits]

    def _limit_for(self, path: str) -> int:
        for pattern, limit in self.body_limits:
            if pattern.fullmatch(path):
                return limit
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        client = scope.get("client")
        token = set_request(RequestInfo(request_id=request_id, client_ip=client[0] if client else None))
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        try:
            limit = self._limit_for(scope["path"]) if self.body_limits else self.max_body_bytes
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                detail = f"The request body exceeds the limit of {limit} bytes."
                await _send_problem(send_with_id, 413, "payload_too_large", detail)
                return
            await self.app(scope, _limited_receive(receive, limit), send_with_id)
        except Exception as exc:
            error_logger.exception("unhandled error", extra={"path": scope["path"]})
            observe_error("unhandled", type(exc).__name__)
            if response_started:
                raise
            await _send_problem(
                send_with_id, 500, "internal_error", "An unexpected error occurred; it has been logged."
            )
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            observe_request(self.service, scope["method"], route_path, status, elapsed)
            access_logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route_path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            reset_request(token)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            return candidate if _VALID_REQUEST_ID.match(candidate) else None
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _limited_receive(receive: Receive, limit: int) -> Receive:
    """Count body bytes as they arrive, for chunked uploads that declare no length."""
    received = 0

    async def wrapped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
        return message

    return wrapped


async def _send_problem(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps(problem_body(status, code, detail)).encode()
    headers = [(b"content-type", PROBLEM_CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
