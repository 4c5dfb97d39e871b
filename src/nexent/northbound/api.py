"""The OpenAI-compatible API under `/v1`: `GET /v1/models`, `GET /v1/models/{model}` and
`POST /v1/chat/completions`. Its errors are OpenAI's `{"error": {message, type, param, code}}` (`openai_errors`
turns the app's problem documents into them for `/v1` paths); the rest of the API keeps problem documents."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, cast

from fastapi import APIRouter, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from nexent.core.errors import AppError
from nexent.core.openapi import openapi_schemas, problems
from nexent.engines.deps import EnginesDep, SessionDep
from nexent.identity.auth import Caller, RequirePermission
from nexent.identity.permissions import Permission
from nexent.northbound.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ErrorResponse,
    Model,
    ModelList,
)
from nexent.northbound.service import Completion, NorthboundService
from nexent.runtime.execution import RunManager

PREFIX = "/v1"
CONVERSATION_HEADER = "X-Nexent-Conversation"
CONVERSATION_ID_HEADER = "X-Nexent-Conversation-Id"
RUN_ID_HEADER = "X-Nexent-Run-Id"
REPLAYED_HEADER = "Idempotent-Replayed"

router = APIRouter(prefix=PREFIX, tags=["openai"])
Client = Annotated[Caller, RequirePermission(Permission.CHAT)]


@router.get("/models", summary="The published agents this key may use, as OpenAI models (id: the agent's name).")
async def list_models(caller: Client, session: SessionDep, engines: EnginesDep) -> ModelList:
    return await NorthboundService(session, engines, caller).models()


@router.get("/models/{model}", summary="One model (a published agent this key may use).")
async def get_model(model: str, caller: Client, session: SessionDep, engines: EnginesDep) -> Model:
    return await NorthboundService(session, engines, caller).model(model)


_COMPLETION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The answer (`stream: false`), or its chunks as Server-Sent Events (`stream: true`): "
        "`data: <ChatCompletionChunk>` frames, then `data: [DONE]`.",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ChatCompletion"}},
            "text/event-stream": {"schema": {"$ref": "#/components/schemas/ChatCompletionChunk"}},
        },
    },
    **problems(
        s400="A parameter the platform cannot honour (`unsupported_parameter`), bad messages (`invalid_messages`), "
        "or a bad request.",
        s404="No published agent of this name that the key may use (`model_not_found`).",
        s409="The first request with this `Idempotency-Key` is still starting (`idempotency_key_in_use`).",
        s422="The `Idempotency-Key` was used with another body (`idempotency_key_reused`).",
        s429="The key's per-minute limit (`rate_limit_exceeded`) or daily quota (`insufficient_quota`), or the "
        "platform's capacity (`too_many_runs`); `Retry-After` says when to retry.",
        s500="The agent's run failed (`agent_failed`, ...).",
    ),
}


@router.post(
    "/chat/completions",
    summary="Have a published agent answer a conversation (OpenAI's Chat Completions).",
    response_class=Response,
    responses=_COMPLETION_RESPONSES,
)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    caller: Client,
    session: SessionDep,
    engines: EnginesDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="A retry with the same key (within 24 h, same key owner, same body) gets the first answer.",
        ),
    ] = None,
    conversation: Annotated[
        str | None,
        Header(
            alias=CONVERSATION_HEADER,
            max_length=64,
            description="`new` to store the exchange as a new conversation, or a conversation id to continue one; "
            "without it nothing but the run is stored.",
        ),
    ] = None,
) -> Response:
    service = NorthboundService(session, engines, caller)
    completion = await service.start(
        run_manager(request), body, idempotency_key=idempotency_key, conversation=conversation
    )
    headers = _headers(completion)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = service.chunks(completion, include_usage=include_usage)
        return StreamingResponse(
            chunks,
            media_type="text/event-stream",
            headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    answer = await service.answer(completion)
    return JSONResponse(answer.model_dump(mode="json"), headers=headers)


def run_manager(request: Request) -> RunManager:
    manager: RunManager = request.app.state.runs
    return manager


def _headers(completion: Completion) -> dict[str, str]:
    headers = {RUN_ID_HEADER: str(completion.run_id)}
    if completion.conversation_id is not None:
        headers[CONVERSATION_ID_HEADER] = str(completion.conversation_id)
    if completion.replayed:
        headers[REPLAYED_HEADER] = "true"
    return headers


routers = [router]
schemas = openapi_schemas(ChatCompletion, ChatCompletionChunk, ErrorResponse)


# --- errors in OpenAI's shape -------------------------------------------------------------------------------------

# OpenAI's `type` and `code` for the platform's codes that OpenAI clients know by another name.
_OPENAI_CODES = {
    "rate_limited": ("requests", "rate_limit_exceeded"),
    "quota_exceeded": ("insufficient_quota", "insufficient_quota"),
}
_WITHOUT_PARAM = {"json_invalid", "missing"}

Handler = Callable[[Request, Exception], Awaitable[Response]]


def is_openai_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def openai_errors(app: FastAPI) -> None:
    """Answer errors of `/v1` paths in OpenAI's shape: the app's handlers (`core.errors`) build the problem
    document, which this turns into `{"error": {...}}` with the same status and headers (a body that fails
    validation is a 400 there, as OpenAI answers it)."""
    for kind in (AppError, RequestValidationError, StarletteHTTPException):
        original = cast(Handler, app.exception_handlers[kind])
        app.add_exception_handler(kind, _translating(original))


def _translating(original: Handler) -> Handler:
    async def handler(request: Request, exc: Exception) -> Response:
        response = await original(request, exc)
        if not is_openai_path(request.url.path):
            return response
        return openai_error(response)

    return handler


def openai_error(response: Response) -> JSONResponse:
    problem: dict[str, Any] = json.loads(bytes(response.body))
    status, code = response.status_code, str(problem.get("code") or "error")
    message, param = str(problem.get("detail") or ""), problem.get("param")
    errors = problem.get("errors") or []
    if code == "validation_error" and errors:
        first = errors[0]
        loc = [part for part in first.get("loc", []) if part not in ("body", "header", "query", "path")]
        param = _param_name(loc) if first.get("type") not in _WITHOUT_PARAM or loc else None
        if first.get("type") == "extra_forbidden":
            message, code = f"Unrecognized request argument supplied: {param}", "unrecognized_argument"
        else:
            message, code = f"Invalid value for '{param}': {first.get('msg', '')}", "invalid_value"
        status = 400
    kind, code = _OPENAI_CODES.get(code, (_type_of(status), code))
    headers = {k: v for k, v in response.headers.items() if k.lower() in ("retry-after", "www-authenticate", "allow")}
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _param_name(loc: list[Any]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if str(part).isdigit() else (f".{part}" if name else str(part))
    return name


def _type_of(status: int) -> str:
    if status == 401:
        return "invalid_request_error"  # as OpenAI answers a bad key
    if status == 403:
        return "permission_error"
    if status == 429:
        return "requests"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def document_openai_errors(document: dict[str, Any]) -> None:
    """In the OpenAPI document, the errors of `/v1` operations are OpenAI's error object, not problems."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    for path, operations in document.get("paths", {}).items():
        if not is_openai_path(path):
            continue
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = error
