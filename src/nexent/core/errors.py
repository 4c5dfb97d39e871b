"""Errors as RFC 9457 problem documents.

Services raise `AppError` subclasses; the handlers registered by `install_error_handlers` turn them, FastAPI's
validation errors and Starlette's HTTP errors into `application/problem+json` answers with
`type`, `title`, `status`, `detail`, `code`, the request id and, when tracing is on, the trace id (`trace_id`).
Bad input is always a 4xx, never a 500; unexpected errors become a 500 problem in `RequestContextMiddleware`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from nexent.core.context import current_request_id
from nexent.core.metrics import observe_error
from nexent.core.tracing import current_trace_id

logger = logging.getLogger("nexent.errors")

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://nexent.dev/problems/"

_CODE_BY_STATUS: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class AppError(Exception):
    """An error with a status, a stable machine-readable `code` and a human `detail`."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra or {}
        self.headers = headers or {}


class BadRequest(AppError):
    status, code = 400, "bad_request"


class Unauthorized(AppError):
    status, code = 401, "unauthorized"


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not_found"


class Conflict(AppError):
    status, code = 409, "conflict"


class PayloadTooLarge(AppError):
    status, code = 413, "payload_too_large"


def problem_body(status: int, code: str, detail: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """An RFC 9457 problem document, with the current request id and trace id (`trace_id`, when traced); counted
    in `nexent_errors_total` (source `http`)."""
    observe_error("http", code)
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": _title(status),
        "status": status,
        "detail": detail,
        "code": code,
    }
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    trace_id = current_trace_id()
    if trace_id:
        body["trace_id"] = trace_id
    if extra:
        body.update(extra)
    return body


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Build an RFC 9457 problem document response."""
    return JSONResponse(
        problem_body(status, code, detail, extra),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_CONTENT_TYPE,
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Reduce pydantic's errors to what a client needs; never echo the raw input back."""
    return [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": err.get("msg", ""),
            "type": err.get("type"),
        }
        for err in errors
    ]


async def _app_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_response(exc.status, exc.code, exc.detail, extra=exc.extra, headers=exc.headers)


async def _validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc.errors())
    if any(err["loc"][:1] == ["path"] for err in errors):
        # `PATCH /api/models/check` reaches `PATCH /api/models/{model_id}` with the id "check"; the path names a
        # resource of its own that has no PATCH: 405, not an invalid id.
        literal = _allowed_methods(request, literal_only=True)
        if literal:
            return _method_not_allowed(literal)
    if any(err["type"] == "json_invalid" for err in errors):
        return problem_response(400, "invalid_json", "The request body is not valid JSON.", extra={"errors": errors})
    return problem_response(422, "validation_error", "The request is not valid.", extra={"errors": errors})


async def _http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, AppError):
        # FastAPI wraps errors raised while reading the body (such as the body limit) in a plain 400.
        return await _app_error_handler(request, exc.__cause__)
    if exc.status_code == 405:
        return _method_not_allowed(_allowed_methods(request) or set((exc.headers or {}).get("Allow", "").split(", ")))
    code = _CODE_BY_STATUS.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such resource or route."
    return problem_response(exc.status_code, code, detail, headers=dict(exc.headers or {}))


def _allowed_methods(request: Request, *, literal_only: bool = False) -> set[str]:
    """Every method some route answers at the request's path (Starlette names only the first route's). A path
    that a route without parameters matches (`/api/invitations/accept`) is that route's alone, though it fits a
    route with parameters too (`/api/invitations/{invitation_id}`)."""
    literal: set[str] = set()
    templated: set[str] = set()
    for context in iter_route_contexts(request.app.routes):
        regex = getattr(context, "path_regex", None)
        if regex is not None and regex.match(request.url.path):
            methods = literal if "{" not in (context.path_format or "{") else templated
            methods |= context.methods or set()
    return literal if literal or literal_only else templated


def _method_not_allowed(methods: set[str]) -> JSONResponse:
    allow = ", ".join(sorted(methods))
    return problem_response(405, "method_not_allowed", f"This path answers {allow} only.", headers={"Allow": allow})


async def _integrity_error_handler(_: Request, exc: Exception) -> JSONResponse:
    # Services check uniqueness before writing; two requests that pass the check at once meet the constraint here.
    logger.info("write refused by a database constraint: %s", type(getattr(exc, "orig", exc)).__name__)
    return problem_response(409, "conflict", "The change conflicts with a concurrent one or with existing data; retry.")


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem-document handlers on an app."""
    app.add_exception_handler(AppError, _app_error_handler)
    app.add_exception_handler(IntegrityError, _integrity_error_handler)
    app.add_exception_handler(StaleDataError, _integrity_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
