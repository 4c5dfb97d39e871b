"""Tool sources: a tenant's tools beyond the built-in ones (its MCP servers' tools, tools imported from OpenAPI
documents).

The built-in tools live in the registry (`nexent.tools.registry`), the same for every tenant. A *tool source* is
a kind of tenant-owned provider of tools (`mcp`, `openapi`); the domain that owns it registers it here through the
wiring (`provide_tool_source`), so that agents and runtime reach its tools without importing it. A source lists a
tenant's tools (`ExternalTool`: name, description, JSON-schema parameters, where it comes from) and calls one.

Naming: a tenant tool is called `<source name>__<tool name>` (`external_name`): the source's name (an MCP server's,
unique per tenant and kind, `SOURCE_NAME_RE`), two underscores, and the tool's own name with every character
outside `[A-Za-z0-9_]` replaced by `_` (cut, with a short digest of the original, past 64 characters in all). The
result is a valid OpenAI function name and Python identifier (smolagents' code agents call tools as functions),
and never clashes with a built-in tool, whose names have no double underscore. Two sources of different kinds with
the same name would clash: the catalog keeps the first (MCP before OpenAPI) and logs the other.

`execute` runs a call from a model: it checks the tool's schema and validates the arguments against it
(`jsonschema`), enforces the context's deadline and turns every failure into a failed `ToolResult`, like
`ToolRegistry.execute` does for built-in tools.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import jsonschema
from jsonschema.exceptions import SchemaError
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.tools.registry import ToolContext, ToolError, ToolResult, run_bounded

__all__ = [
    "SOURCE_NAME_RE",
    "TOOL_NAME_RE",
    "ExternalTool",
    "SourceKind",
    "SourceRef",
    "ToolSource",
    "execute",
    "external_name",
    "provide_tool_source",
    "schema_problem",
    "tenant_tools",
]

logger = logging.getLogger("nexent.tools")

SOURCE_NAME_RE = re.compile(r"^(?=.{1,30}$)[a-z](?:[a-z0-9]|_[a-z0-9])*$")
"""A source's name: lowercase letters, digits and single underscores, 1 to 30 characters, starting with a letter."""
TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""An OpenAI function name; `external_name` gives a subset of these (no `-`)."""
_MAX_NAME = 64
SEPARATOR = "__"


class SourceKind(StrEnum):
    BUILTIN = "builtin"
    MCP = "mcp"
    OPENAPI = "openapi"
    A2A = "a2a"  # a remote agent, called as a sub-agent


@dataclass(frozen=True)
class SourceRef:
    """Where a tool comes from: its kind, and for a tenant's source its id and name."""

    kind: str
    id: uuid.UUID | None = None
    name: str = "builtin"


@dataclass(frozen=True)
class ExternalTool:
    """A tenant's tool as agents see it. `remote_name` is its name at the source (an MCP tool's own name)."""

    name: str
    description: str
    parameters: dict[str, Any]
    source: SourceRef
    remote_name: str
    extra: dict[str, Any] = field(default_factory=dict)  # what the source needs to call it (an OpenAPI operation)

    def snapshot(self) -> dict[str, Any]:
        """What a published version keeps of the tool (JSON)."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "remote_name": self.remote_name,
            "source": {
                "kind": self.source.kind,
                "id": str(self.source.id) if self.source.id else None,
                "name": self.source.name,
            },
            "extra": self.extra,
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> ExternalTool:
        source = data.get("source") or {}
        return cls(
            name=str(data["name"]),
            description=str(data.get("description") or ""),
            parameters=dict(data.get("parameters") or {}),
            source=SourceRef(
                kind=str(source.get("kind") or ""),
                id=uuid.UUID(source["id"]) if source.get("id") else None,
                name=str(source.get("name") or ""),
            ),
            remote_name=str(data.get("remote_name") or data["name"]),
            extra=dict(data.get("extra") or {}),
        )

    def openai_spec(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


class ToolSource(Protocol):
    """A kind of tenant-owned tool provider, registered by its domain through the wiring."""

    kind: str

    async def list_tools(self, session: AsyncSession, tenant_id: uuid.UUID) -> list[ExternalTool]:
        """The tenant's tools of this kind, from what the platform stored (fast: no network)."""
        ...

    async def call(self, tool: ExternalTool, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        """Call the tool; raise `ToolError` for failures the model should read."""
        ...


_sources: dict[str, ToolSource] = {}


def provide_tool_source(source: ToolSource) -> ToolSource:
    """Register the source of a kind (the last one provided for a kind answers)."""
    _sources[source.kind] = source
    return source


def external_name(source_name: str, tool_name: str) -> str:
    """`<source>__<tool>`, valid as an OpenAI function name and a Python identifier (see the module's docstring)."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", tool_name) or "tool"
    room = _MAX_NAME - len(source_name) - len(SEPARATOR)
    if len(safe) > room:
        digest = hashlib.sha256(tool_name.encode()).hexdigest()[:8]
        safe = f"{safe[: room - 9]}_{digest}"
    return f"{source_name}{SEPARATOR}{safe}"


async def tenant_tools(session: AsyncSession, tenant_id: uuid.UUID) -> list[ExternalTool]:
    """Every tool of the tenant's sources, by name (a name offered twice: the first source's)."""
    found: dict[str, ExternalTool] = {}
    for kind in (SourceKind.MCP, SourceKind.OPENAPI, *sorted(set(_sources) - {SourceKind.MCP, SourceKind.OPENAPI})):
        source = _sources.get(kind)
        if source is None:
            continue
        for tool in await source.list_tools(session, tenant_id):
            if tool.name in found:
                logger.warning("two tool sources offer the same tool name", extra={"tool": tool.name})
                continue
            found[tool.name] = tool
    return sorted(found.values(), key=lambda t: t.name)


def schema_problem(schema: Any) -> str | None:
    """Why `schema` cannot be a tool's parameters (None: it can): a JSON schema of an object."""
    if not isinstance(schema, dict):
        return "the parameters are not a JSON object"
    try:
        jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
    except SchemaError as exc:
        return f"the parameters are not a valid JSON schema ({exc.message[:200]})"
    if schema.get("type", "object") != "object":
        return "the parameters' schema does not describe an object"
    return None


async def execute(tool: ExternalTool, arguments: Any, context: ToolContext) -> ToolResult:
    """Run a tenant tool's call from a model. Never raises for what the model or the source got wrong: a bad
    schema, bad arguments, a failing or slow source come back with `ok=False`."""
    source = _sources.get(tool.source.kind)
    if source is None:
        return ToolResult.failure("unknown_tool", f"The tool {tool.name} is not available in this process.")
    problem = schema_problem(tool.parameters)
    if problem is not None:
        return ToolResult.failure(
            "invalid_tool_schema", f"The tool {tool.name} cannot be used: its source declares it wrongly ({problem})."
        )
    if not isinstance(arguments, dict):
        return ToolResult.failure("invalid_arguments", f"Arguments for {tool.name} must be a JSON object.")
    validator = jsonschema.validators.validator_for(tool.parameters, default=jsonschema.Draft202012Validator)
    errors = sorted(validator(tool.parameters).iter_errors(arguments), key=lambda e: list(e.path))[:5]
    if errors:
        described = "; ".join(f"{'.'.join(map(str, e.path)) or '(arguments)'}: {e.message[:200]}" for e in errors)
        return ToolResult.failure("invalid_arguments", f"Invalid arguments for {tool.name}: {described}")
    try:
        context.check()
        result = await run_bounded(source.call(tool, arguments, context), context)
    except ToolError as exc:
        return ToolResult.failure(exc.code, exc.message)
    except Exception:
        logger.exception("tool failed", extra={"tool": tool.name, "source": tool.source.kind})
        return ToolResult.failure("tool_failed", f"The tool {tool.name} failed unexpectedly.")
    return result.bounded()
