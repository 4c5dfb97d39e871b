"""The app's OpenAPI document: schemas that routes refer to only by name (the events of a stream), and every error
status each operation can answer, documented as a problem document.

Which errors an operation answers comes from three places, so that no route has to repeat what it inherits:
- its dependencies: `answers(401, 429)` on a dependency (signing in, a permission check) marks every route that
  uses it, however deep in the dependency tree;
- its shape: path parameters name something that may not exist (404); a body may be too large (413), malformed
  (400: not JSON, broken multipart) or invalid (422), as may query parameters (422); every operation that changes
  something may meet a concurrent change (409);
- the route itself, for what only its service knows: `responses=problems(409, 503)`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field

from nexent.core.errors import PROBLEM_CONTENT_TYPE

REF_TEMPLATE = "#/components/schemas/{model}"
_PROBLEM_REF = {"$ref": REF_TEMPLATE.format(model="Problem")}
_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEPENDENCY_ERRORS: dict[Callable[..., Any], frozenset[int]] = {}

F = TypeVar("F", bound=Callable[..., Any])


class ProblemError(BaseModel):
    """One invalid part of a request."""

    loc: list[str]
    msg: str
    type: str | None = None


class Problem(BaseModel):
    """An RFC 9457 problem document: every error the API answers has this shape."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A URI naming the kind of problem; its last segment is `code`.")
    title: str = Field(description="The HTTP status phrase.")
    status: int
    detail: str = Field(description="What went wrong, for a person.")
    code: str = Field(description="What went wrong, for a program: stable, snake_case.")
    request_id: str | None = Field(default=None, description="The request's id, as in the X-Request-ID header.")
    trace_id: str | None = Field(
        default=None, description="The request's OpenTelemetry trace (32 hex digits), when tracing is on."
    )
    errors: list[ProblemError] | None = Field(default=None, description="The invalid parts (400 and 422).")


def openapi_schemas(*models: type[BaseModel]) -> dict[str, dict[str, Any]]:
    """Each model's JSON schema as an OpenAPI component, with every model it refers to."""
    components: dict[str, dict[str, Any]] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE, mode="serialization")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    return components


def event_stream_schemas(
    frame: str,
    events: Mapping[str, type[BaseModel]],
    components: dict[str, dict[str, Any]],
    *,
    description: str,
    id_description: str,
) -> dict[str, dict[str, Any]]:
    """`components` (the events' schemas) plus, for a Server-Sent Events stream, the component `frame`: one of a
    frame per event type (`id`, `event: <type>`, `data`: the event's JSON without its `type`, as `<Event>Data`)."""
    frames: list[dict[str, Any]] = []
    for event_type, model in events.items():
        data = copy.deepcopy(components[model.__name__])
        data["properties"].pop("type")
        data["required"] = [name for name in data.get("required", []) if name != "type"]
        data["title"] = f"{model.__name__}Data"
        components[f"{model.__name__}Data"] = data
        frames.append(
            {
                "type": "object",
                "required": ["id", "event", "data"],
                "properties": {
                    "id": {"type": "string", "pattern": "^[0-9]+$", "description": id_description},
                    "event": {"const": event_type},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": {"$ref": f"#/components/schemas/{model.__name__}Data"},
                    },
                },
            }
        )
    components[frame] = {"title": frame, "description": description, "oneOf": frames}
    return components


def answers(*statuses: int) -> Callable[[F], F]:
    """Declare the error statuses a dependency may answer, for every route that depends on it."""

    def mark(dependency: F) -> F:
        _DEPENDENCY_ERRORS[dependency] = _DEPENDENCY_ERRORS.get(dependency, frozenset()) | frozenset(statuses)
        return dependency

    return mark


def problems(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route's own error statuses (`problems(409, s503="Search is down.")`)."""
    found = {int(key.removeprefix("s")): text for key, text in descriptions.items()}
    return {status: {"description": found.get(status) or _phrase(status)} for status in {*statuses, *found}}


def document_errors(app: FastAPI, document: dict[str, Any]) -> None:
    """Add every error status each route can answer to `document`, as problem documents (in place)."""
    document.setdefault("components", {}).setdefault("schemas", {}).update(openapi_schemas(Problem))
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema or context.path_format is None:
            continue
        operations = document.get("paths", {}).get(context.path_format, {})
        for method in context.methods or ():
            operation = operations.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in sorted(_error_statuses(route, method) | _declared_errors(responses)):
                existing = responses.get(str(status), {})
                description = existing.get("description")
                if not description or description == "Validation Error":
                    description = _phrase(status)
                responses[str(status)] = {
                    "description": description,
                    "content": {PROBLEM_CONTENT_TYPE: {"schema": _PROBLEM_REF}},
                }
    schemas = document["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def _error_statuses(route: APIRoute, method: str) -> set[int]:
    statuses: set[int] = set()
    dependant = route.dependant
    for dependency in _walk(dependant):
        if dependency.call is not None:
            statuses |= _DEPENDENCY_ERRORS.get(dependency.call, frozenset())
    params = list(_walk(dependant))
    if any(d.path_params for d in params):
        statuses.add(404)
    if any(d.query_params or d.header_params or d.path_params for d in params):
        statuses.add(422)
    if route.body_field is not None:
        statuses |= {400, 413, 422}
    if method in _CHANGING_METHODS:
        statuses.add(409)
    return statuses


def _declared_errors(responses: dict[str, Any]) -> set[int]:
    return {int(code) for code in responses if code.isdigit() and int(code) >= 400}


def _walk(dependant: Dependant) -> Iterable[Dependant]:
    yield dependant
    for child in dependant.dependencies:
        yield from _walk(child)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
