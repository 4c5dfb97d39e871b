"""Reading an OpenAPI 3.x document into tool operations.

`parse_document` takes the text (JSON or YAML) or an already-parsed mapping and checks it: its size, that it is
OpenAPI 3.x, that every `$ref` is local (`#/...`; a remote reference is never fetched). `operations` turns each
path operation into an `Operation`: a snake_case tool name from its `operationId`, unique in the document; a
description from its summary and description; one JSON schema for the arguments that merges the path, query and
header parameters with the JSON request body (under `body`); and where each argument goes in the HTTP request.
Everything that is wrong raises `InvalidDocument` with a message that names the place (422).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from nexent.core.errors import AppError

__all__ = [
    "HTTP_METHODS",
    "MAX_DOCUMENT_BYTES",
    "MAX_OPERATIONS",
    "ArgumentPlace",
    "InvalidDocument",
    "Operation",
    "ParsedDocument",
    "operations",
    "parse_document",
    "sanitize_name",
]

MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
MAX_OPERATIONS = 300
MAX_NAME_LENGTH = 48  # leaves room for the source's prefix in a 64-character tool name
MAX_DESCRIPTION = 1024
MAX_REF_DEPTH = 24
MAX_NESTING = 64
MAX_EXPANDED_NODES = 200_000
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# Headers that the platform sets itself (or that would change how the request travels): never an argument.
_RESERVED_HEADERS = frozenset(
    {"authorization", "host", "content-length", "content-type", "transfer-encoding", "connection", "cookie", "accept"}
)
_JSON_TYPES = re.compile(r"^application/([a-z0-9.+-]*\+)?json$")


class InvalidDocument(AppError):
    """The OpenAPI document cannot be imported; `detail` says what and where."""

    status, code = 422, "invalid_openapi_document"


@dataclass(frozen=True)
class ArgumentPlace:
    """Where an argument goes in the request: `path`, `query`, `header` or `body`, under its name there."""

    location: str
    name: str


@dataclass(frozen=True)
class Operation:
    """One operation of the document as a tool: what the model sees and how to call it."""

    tool_name: str
    operation_id: str | None
    method: str
    path: str
    summary: str | None
    description: str
    parameters: dict[str, Any]
    places: dict[str, ArgumentPlace]
    unsupported: str | None = None  # why it cannot be a tool (a form body, say); None when it can

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool_name": self.tool_name,
            "operation_id": self.operation_id,
            "method": self.method,
            "path": self.path,
            "summary": self.summary,
            "description": self.description,
            "parameters": self.parameters,
            "places": {k: {"location": v.location, "name": v.name} for k, v in self.places.items()},
            "unsupported": self.unsupported,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Operation:
        return cls(
            tool_name=str(data["tool_name"]),
            operation_id=data.get("operation_id"),
            method=str(data["method"]),
            path=str(data["path"]),
            summary=data.get("summary"),
            description=str(data["description"]),
            parameters=dict(data["parameters"]),
            places={k: ArgumentPlace(str(v["location"]), str(v["name"])) for k, v in data["places"].items()},
            unsupported=data.get("unsupported"),
        )


@dataclass(frozen=True)
class ParsedDocument:
    """A checked document: its title, version, the base URL its first server names (when absolute) and the raw
    mapping."""

    title: str
    version: str
    base_url: str | None
    raw: dict[str, Any] = field(repr=False)


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: they let a small document expand without bound."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not accepted", event.start_mark)
        return super().compose_node(parent, index)


def _load_text(text: str) -> Any:
    if len(text.encode("utf-8")) > MAX_DOCUMENT_BYTES:
        raise InvalidDocument(f"The document is larger than {MAX_DOCUMENT_BYTES // 1024} KiB.")
    stripped = text.lstrip()
    if not stripped:
        raise InvalidDocument("The document is empty.")
    if stripped.startswith(("{", "[")):
        try:
            return json.loads(text)
        except RecursionError:
            raise InvalidDocument(f"The document is nested more than {MAX_NESTING} levels deep.") from None
        except json.JSONDecodeError as exc:
            raise InvalidDocument(f"The document is not valid JSON: {exc.msg} (line {exc.lineno}).") from None
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader without aliases)
    except RecursionError:
        raise InvalidDocument(f"The document is nested more than {MAX_NESTING} levels deep.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot be read"
        raise InvalidDocument(f"The document is neither JSON nor valid YAML: {problem}{where}.") from None


def parse_document(source: str | Mapping[str, Any]) -> ParsedDocument:
    """Check a document (text or mapping); raises `InvalidDocument`."""
    if isinstance(source, str):
        loaded = _load_text(source)
    else:
        loaded = source
        try:
            size = len(json.dumps(loaded, default=str))
        except RecursionError:
            raise InvalidDocument(f"The document is nested more than {MAX_NESTING} levels deep.") from None
        if size > MAX_DOCUMENT_BYTES:
            raise InvalidDocument(f"The document is larger than {MAX_DOCUMENT_BYTES // 1024} KiB.")
    if not isinstance(loaded, Mapping):
        raise InvalidDocument("The document must be an object with `openapi`, `info` and `paths`.")
    raw = dict(loaded)
    version = raw.get("openapi")
    if not isinstance(version, str) or not re.match(r"^3\.\d+(\.\d+)?", version):
        if "swagger" in raw:
            raise InvalidDocument(
                f"This is a Swagger {raw.get('swagger')} document; only OpenAPI 3.x documents can be imported."
            )
        raise InvalidDocument("The document has no `openapi: 3.x` field; only OpenAPI 3.x documents can be imported.")
    paths = raw.get("paths")
    if not isinstance(paths, Mapping) or not paths:
        raise InvalidDocument("The document has no `paths`: there is no operation to import.")
    _check_refs(raw, "#")
    info = raw.get("info") if isinstance(raw.get("info"), Mapping) else {}
    assert isinstance(info, Mapping)
    title = str(info.get("title") or "OpenAPI").strip()[:200] or "OpenAPI"
    return ParsedDocument(title=title, version=str(info.get("version") or ""), base_url=_server_url(raw), raw=raw)


def _check_refs(node: Any, where: str) -> None:
    """Refuse any `$ref` that is not a pointer into this document."""
    stack: list[tuple[Any, str]] = [(node, where)]
    while stack:
        item, place = stack.pop()
        if isinstance(item, Mapping):
            ref = item.get("$ref")
            if ref is not None and (not isinstance(ref, str) or not ref.startswith("#")):
                raise InvalidDocument(
                    f"The reference {str(ref)[:200]!r} at {place} points outside the document; remote references "
                    "are not fetched. Bundle the document into one file first."
                )
            stack.extend((value, f"{place}/{_escape(str(key))}") for key, value in item.items())
        elif isinstance(item, list):
            stack.extend((value, f"{place}/{i}") for i, value in enumerate(item))


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _server_url(raw: Mapping[str, Any]) -> str | None:
    servers = raw.get("servers")
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], Mapping):
        return None
    url = servers[0].get("url")
    if not isinstance(url, str):
        return None
    variables = servers[0].get("variables") if isinstance(servers[0].get("variables"), Mapping) else {}
    assert isinstance(variables, Mapping)

    def substitute(match: re.Match[str]) -> str:
        spec = variables.get(match.group(1))
        return str(spec.get("default", "")) if isinstance(spec, Mapping) else match.group(0)

    url = re.sub(r"\{([^}]+)\}", substitute, url)
    return url.rstrip("/") if re.match(r"^https?://[^/{}]+", url) else None


def _pointer(raw: Mapping[str, Any], ref: str) -> Any:
    node: Any = raw
    for part in ref.removeprefix("#").split("/")[1:]:
        key = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            raise InvalidDocument(f"The reference {ref!r} points at nothing in the document.")
    return node


class _Resolver:
    """Replaces local `$ref`s by what they point at. A cycle (a recursive schema) or a chain deeper than
    `MAX_REF_DEPTH` ends in an open schema `{}`; nesting deeper than `MAX_NESTING` or an expansion past
    `MAX_EXPANDED_NODES` for the whole document (references that fan out, like YAML's "billion laughs") is
    refused."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.budget = MAX_EXPANDED_NODES

    def resolve(self, node: Any, seen: tuple[str, ...] = (), depth: int = 0) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise InvalidDocument(
                f"The document's references expand to more than {MAX_EXPANDED_NODES} schema nodes; simplify it."
            )
        if depth > MAX_NESTING:
            raise InvalidDocument(f"The document is nested more than {MAX_NESTING} levels deep.")
        if isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if ref in seen or len(seen) >= MAX_REF_DEPTH:
                    return {}
                target = self.resolve(_pointer(self.raw, ref), (*seen, ref), depth + 1)
                siblings = {k: v for k, v in node.items() if k != "$ref"}
                if siblings and isinstance(target, Mapping):
                    return {**target, **{k: self.resolve(v, seen, depth + 1) for k, v in siblings.items()}}
                return target
            return {k: self.resolve(v, seen, depth + 1) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(item, seen, depth + 1) for item in node]
        return node


def sanitize_name(text: str) -> str:
    """A snake_case name from an operationId (`getPetById` -> `get_pet_by_id`), at most `MAX_NAME_LENGTH`
    characters, starting with a letter."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", spaced)
    name = re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")
    name = re.sub(r"_+", "_", name)
    if not name or not name[0].isalpha():
        name = f"op_{name}".rstrip("_")
    return name[:MAX_NAME_LENGTH].rstrip("_")


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        suffix = f"_{n}"
        candidate = name[: MAX_NAME_LENGTH - len(suffix)].rstrip("_") + suffix
        n += 1
    taken.add(candidate)
    return candidate


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _param_schema(param: Mapping[str, Any]) -> dict[str, Any]:
    schema = param.get("schema")
    if not isinstance(schema, Mapping):
        content = param.get("content")
        if isinstance(content, Mapping) and content:
            first = next(iter(content.values()))
            schema = first.get("schema") if isinstance(first, Mapping) else None
    result = dict(schema) if isinstance(schema, Mapping) else {"type": "string"}
    description = _text(param.get("description"))
    if description and "description" not in result:
        result["description"] = description[:MAX_DESCRIPTION]
    return result


def _json_body(resolver: _Resolver, operation: Mapping[str, Any]) -> tuple[dict[str, Any] | None, bool, str | None]:
    """The JSON body's schema, whether it is required, and why the body cannot be sent (non-JSON only)."""
    body = resolver.resolve(operation.get("requestBody"))
    if not isinstance(body, Mapping):
        return None, False, None
    content = body.get("content")
    if not isinstance(content, Mapping) or not content:
        return None, False, None
    for media_type, spec in content.items():
        if _JSON_TYPES.match(str(media_type).split(";")[0].strip().lower()):
            schema = spec.get("schema") if isinstance(spec, Mapping) else None
            result = dict(schema) if isinstance(schema, Mapping) else {}
            description = _text(body.get("description"))
            if description and "description" not in result:
                result["description"] = description[:MAX_DESCRIPTION]
            return result, bool(body.get("required")), None
    kinds = ", ".join(sorted(str(k) for k in content))
    if body.get("required"):
        return None, False, f"its request body is {kinds}; only JSON bodies can be sent"
    return None, False, None


def operations(document: ParsedDocument) -> list[Operation]:
    """Every operation of the document, in document order; those that cannot be tools carry `unsupported`."""
    raw = document.raw
    resolver = _Resolver(raw)
    found: list[Operation] = []
    taken: set[str] = set()
    paths = raw["paths"]
    for path, item in paths.items():
        if not isinstance(path, str) or not path.startswith("/"):
            raise InvalidDocument(f"The path {str(path)[:100]!r} does not start with '/'.")
        item = resolver.resolve(item)
        if not isinstance(item, Mapping):
            raise InvalidDocument(f"The path {path} is not an object.")
        shared_raw = item.get("parameters")
        shared: list[Any] = shared_raw if isinstance(shared_raw, list) else []
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            if not isinstance(operation, Mapping):
                raise InvalidDocument(f"The operation {method.upper()} {path} is not an object.")
            if len(found) >= MAX_OPERATIONS:
                raise InvalidDocument(f"The document has more than {MAX_OPERATIONS} operations.")
            found.append(_operation(resolver, path, method, operation, shared, taken))
    if not found:
        raise InvalidDocument("The document's `paths` hold no operation.")
    return found


def _operation(
    resolver: _Resolver,
    path: str,
    method: str,
    operation: Mapping[str, Any],
    shared: list[Any],
    taken: set[str],
) -> Operation:
    where = f"{method.upper()} {path}"
    operation_id = _text(operation.get("operationId"))
    base = sanitize_name(operation_id or f"{method}_{path}")
    tool_name = _unique(base, taken)
    summary = _text(operation.get("summary"))
    described = "\n\n".join(t for t in (summary, _text(operation.get("description"))) if t)
    description = (described or where)[:MAX_DESCRIPTION]

    merged: dict[tuple[str, str], Mapping[str, Any]] = {}
    for entry in [*shared, *(operation.get("parameters") or [])]:
        param = resolver.resolve(entry)
        if not isinstance(param, Mapping) or not isinstance(param.get("name"), str) or "in" not in param:
            raise InvalidDocument(f"A parameter of {where} has no `name` or `in`.")
        merged[(str(param["in"]), str(param["name"]))] = param
    properties: dict[str, Any] = {}
    required: list[str] = []
    places: dict[str, ArgumentPlace] = {}
    unsupported: str | None = None
    for (location, name), param in merged.items():
        if location == "cookie" or (location == "header" and name.lower() in _RESERVED_HEADERS):
            if param.get("required"):
                unsupported = f"it needs the {location} parameter {name!r}, which the platform does not send"
            continue
        if location not in ("path", "query", "header"):
            raise InvalidDocument(f"The parameter {name!r} of {where} is in {location!r}, which OpenAPI does not know.")
        argument = sanitize_name(name) if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", name) else name
        if argument in properties:
            argument = f"{location}_{argument}"
        properties[argument] = resolver.resolve(_param_schema(param))
        places[argument] = ArgumentPlace(location, name)
        if location == "path" or param.get("required"):
            required.append(argument)
    for location, name in merged:
        if location == "path" and "{" + name + "}" not in path:
            raise InvalidDocument(f"The path parameter {name!r} of {where} is not in the path.")
    for name in re.findall(r"\{([^}]+)\}", path):
        if ("path", name) not in merged:
            raise InvalidDocument(f"The path {path} names {{{name}}}, but {where} does not define that parameter.")
    body, body_required, body_problem = _json_body(resolver, operation)
    unsupported = unsupported or body_problem
    if body is not None:
        argument = "body" if "body" not in properties else "request_body"
        properties[argument] = resolver.resolve(body)
        places[argument] = ArgumentPlace("body", "")
        if body_required:
            required.append(argument)
    parameters: dict[str, Any] = {"type": "object", "properties": copy.deepcopy(properties)}
    if required:
        parameters["required"] = required
    return Operation(
        tool_name=tool_name,
        operation_id=operation_id,
        method=method.upper(),
        path=path,
        summary=summary,
        description=description,
        parameters=parameters,
        places=places,
        unsupported=unsupported,
    )
