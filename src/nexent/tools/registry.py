"""A typed registry of tools that agents call.

A tool is a `ToolSpec`: a snake_case name, a description for the model, a pydantic model of its arguments (whose
JSON schema is the OpenAI function-tool `parameters`), a pydantic model of its per-agent settings and an async
`run(arguments, context)`. The registry's `execute` validates the arguments, enforces the context's deadline and
cancellation and turns every error the model can fix (`ToolError`, bad arguments, unknown tool) into a failed
`ToolResult` instead of an exception, so one bad call never kills a run. Tools stay framework-free: the agent
runtime wraps them for smolagents.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from nexent.core.errors import BadRequest
from nexent.engines.storage.base import ObjectStorage

if TYPE_CHECKING:
    from nexent.engines.container import Engines

__all__ = [
    "MAX_OUTPUT_CHARS",
    "Citation",
    "StrictArguments",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "ToolSettings",
    "ToolSettingsError",
    "ToolSpec",
    "UnknownTool",
    "all_tools",
    "default_registry",
    "execute",
    "get",
    "has",
    "openai_spec",
    "register",
    "run_bounded",
    "validate_settings",
]

logger = logging.getLogger("nexent.tools")

MAX_OUTPUT_CHARS = 100_000
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

A = TypeVar("A", bound=BaseModel)
S = TypeVar("S", bound=BaseModel)


class StrictArguments(BaseModel):
    """Base for argument models: unknown keys and type coercion are refused, like a JSON schema would."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ToolSettings(BaseModel):
    """Base for per-agent settings models: unknown keys are refused so typos surface."""

    model_config = ConfigDict(extra="forbid")


class ToolError(Exception):
    """An error the model caused and can read: bad arguments, a refused URL, a missing file."""

    def __init__(self, message: str, code: str = "tool_error") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class UnknownTool(BadRequest):
    code = "unknown_tool"


class ToolSettingsError(BadRequest):
    code = "invalid_tool_settings"


@dataclass(frozen=True)
class Citation:
    """A source the output relies on: a web page, a workspace file, a document chunk."""

    title: str
    url: str | None = None
    snippet: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ToolResult:
    """What a tool call gives back: text for the model, optional structured data and citations."""

    output: str
    ok: bool = True
    data: dict[str, Any] | None = None
    citations: list[Citation] = field(default_factory=list)
    error_code: str | None = None

    @classmethod
    def failure(cls, code: str, message: str) -> ToolResult:
        return cls(output=message, ok=False, error_code=code)

    def bounded(self, limit: int = MAX_OUTPUT_CHARS) -> ToolResult:
        """This result with `output` cut to `limit` characters (and a note saying so)."""
        if len(self.output) <= limit:
            return self
        note = f"\n[output truncated: {len(self.output) - limit} more characters]"
        return dataclasses.replace(self, output=self.output[:limit] + note)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "output": self.output,
            "data": self.data,
            "citations": [c.to_dict() for c in self.citations],
            "error_code": self.error_code,
        }


@dataclass(frozen=True)
class ToolContext:
    """What a tool may use besides its arguments. `settings` is the agent's validated settings for this tool
    (None: the tool's defaults); `deadline` is in `time.monotonic()` seconds; `engines` gives tools that need
    them (knowledge search) the database, search and model access of the process, scoped by `tenant_id`."""

    tenant_id: uuid.UUID
    storage: ObjectStorage
    conversation_id: uuid.UUID | None = None
    settings: BaseModel | None = None
    allow_private_network: bool = False
    cancel_event: asyncio.Event | None = None
    deadline: float | None = None
    engines: Engines | None = None
    user_id: uuid.UUID | None = None
    citation_offset: int = 0  # citations the run already numbered: a tool numbers its own from offset + 1
    # The run's event sink and the id of this call: a tool that runs an agent (a remote sub-agent) shows that
    # agent's events nested under the call (`parent_call_id`), as local sub-agents' are.
    emit: Callable[[Any], None] | None = None
    parent_call_id: str | None = None

    def settings_for(self, model: type[S]) -> S:
        """The settings as `model` (its defaults when none were given)."""
        if self.settings is None:
            return model()
        if not isinstance(self.settings, model):
            raise TypeError(f"tool settings are {type(self.settings).__name__}, not {model.__name__}")
        return self.settings

    def is_cancelled(self) -> bool:
        return self.cancel_event is not None and self.cancel_event.is_set()

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def timeout(self, cap: float) -> float:
        """`cap` seconds, or less if the deadline is nearer; raises `ToolError` when it has passed."""
        remaining = self.remaining()
        if remaining is None:
            return cap
        if remaining <= 0:
            raise ToolError("The tool ran out of time.", "timeout")
        return min(cap, remaining)

    def check(self) -> None:
        """Raise `ToolError` if the run was stopped or the deadline passed."""
        if self.is_cancelled():
            raise ToolError("The run was stopped.", "cancelled")
        self.timeout(1.0)


@dataclass(frozen=True)
class ToolSpec(Generic[A, S]):
    """One tool. `arguments` and `settings_schema` are pydantic models; `run` gets validated arguments and a
    context whose `settings` is an instance of `settings_schema`. `managed_settings` names the settings the
    platform fills in itself (from the agent's draft), which editors need not set."""

    name: str
    description: str
    arguments: type[A]
    settings_schema: type[S]
    run: Callable[[A, ToolContext], Awaitable[ToolResult]]
    managed_settings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"tool name {self.name!r} is not snake_case (at most 64 characters)")
        if not self.description.strip():
            raise ValueError(f"tool {self.name!r} needs a description")
        unknown = set(self.managed_settings) - set(self.settings_schema.model_fields)
        if unknown:
            raise ValueError(f"tool {self.name!r} manages settings it does not have: {sorted(unknown)}")

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the arguments (an object schema, OpenAI function-tool compatible)."""
        schema = _clean_schema(self.arguments.model_json_schema())
        schema.setdefault("properties", {})
        return schema

    @property
    def settings_json_schema(self) -> dict[str, Any]:
        """The JSON schema of the per-agent settings (for forms in the UI)."""
        return _clean_schema(self.settings_schema.model_json_schema())

    def openai_spec(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class ToolRegistry:
    """Tools by name."""

    def __init__(self) -> None:
        self._tools: dict[str, ToolSpec[Any, Any]] = {}

    def register(self, tool: ToolSpec[Any, Any]) -> ToolSpec[Any, Any]:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> ToolSpec[Any, Any]:
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownTool(f"No tool named {name!r}.") from None

    def has(self, name: str) -> bool:
        return name in self._tools

    def all_tools(self) -> list[ToolSpec[Any, Any]]:
        return sorted(self._tools.values(), key=lambda tool: tool.name)

    def openai_spec(self, name: str) -> dict[str, Any]:
        return self.get(name).openai_spec()

    def validate_settings(self, name: str, raw: Mapping[str, Any] | None) -> BaseModel:
        """Per-agent settings for tool `name`, validated; raises `UnknownTool` or `ToolSettingsError` (4xx)."""
        model: type[BaseModel] = self.get(name).settings_schema
        try:
            return model.model_validate(dict(raw or {}))
        except ValidationError as exc:
            raise ToolSettingsError(
                f"Invalid settings for tool {name!r}: {format_validation_error(exc)}",
                extra={"tool": name},
            ) from None

    async def execute(self, name: str, arguments: Any, context: ToolContext) -> ToolResult:
        """Run a tool call from a model. Never raises for the model's mistakes: they come back with `ok=False`."""
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self._tools)) or "none"
            return ToolResult.failure("unknown_tool", f"No tool named {name!r}. Available tools: {known}.")
        if not isinstance(arguments, dict):
            return ToolResult.failure("invalid_arguments", f"Arguments for {name} must be a JSON object.")
        try:
            parsed = tool.arguments.model_validate(arguments)
        except ValidationError as exc:
            return ToolResult.failure(
                "invalid_arguments", f"Invalid arguments for {name}: {format_validation_error(exc)}"
            )
        if context.settings is None:
            context = dataclasses.replace(context, settings=tool.settings_schema())
        elif not isinstance(context.settings, tool.settings_schema):
            wanted = tool.settings_schema.__name__
            raise TypeError(f"settings for {name} must be {wanted}, not {type(context.settings).__name__}")
        try:
            context.check()
            result = await run_bounded(tool.run(parsed, context), context)
        except ToolError as exc:
            return ToolResult.failure(exc.code, exc.message)
        except Exception:
            logger.exception("tool %s failed", name)
            return ToolResult.failure("tool_failed", f"The tool {name} failed unexpectedly.")
        return result.bounded()


async def run_bounded(call: Awaitable[ToolResult], context: ToolContext) -> ToolResult:
    """Await `call`, giving up with `ToolError` when the deadline passes or the run is stopped."""
    task = asyncio.ensure_future(call)
    waiters: set[asyncio.Future[Any]] = {task}
    stop: asyncio.Future[Any] | None = None
    if context.cancel_event is not None:
        stop = asyncio.ensure_future(context.cancel_event.wait())
        waiters.add(stop)
    try:
        done, _ = await asyncio.wait(waiters, timeout=context.remaining(), return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        if stop is not None and stop in done:
            raise ToolError("The run was stopped.", "cancelled")
        raise ToolError("The tool ran out of time.", "timeout")
    finally:
        for waiter in waiters:
            if not waiter.done():
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await waiter


def format_validation_error(exc: ValidationError) -> str:
    """A short message naming each bad field, without echoing the input back."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False)[:10]:
        loc = ".".join(str(part) for part in error.get("loc", ())) or "(arguments)"
        parts.append(f"{loc}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's generated `title`s, which only add noise to the model's prompt."""

    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if key == "title" and isinstance(value, str):
                    continue
                if key in ("properties", "$defs", "patternProperties") and isinstance(value, dict):
                    out[key] = {name: clean(sub) for name, sub in value.items()}
                else:
                    out[key] = clean(value)
            return out
        if isinstance(node, list):
            return [clean(item) for item in node]
        return node

    result: dict[str, Any] = clean(schema)
    return result


default_registry = ToolRegistry()


def register(tool: ToolSpec[Any, Any]) -> ToolSpec[Any, Any]:
    """Add a tool to the default registry."""
    return default_registry.register(tool)


def get(name: str) -> ToolSpec[Any, Any]:
    """A tool of the default registry; raises `UnknownTool`."""
    return default_registry.get(name)


def has(name: str) -> bool:
    """Whether the default registry has a tool named `name` (a built-in tool)."""
    return default_registry.has(name)


def all_tools() -> list[ToolSpec[Any, Any]]:
    """The default registry's tools, by name."""
    return default_registry.all_tools()


def openai_spec(name: str) -> dict[str, Any]:
    """`{"type": "function", "function": {name, description, parameters}}` for a tool."""
    return default_registry.openai_spec(name)


def validate_settings(name: str, raw: Mapping[str, Any] | None) -> BaseModel:
    """Validated per-agent settings for a tool; raises `UnknownTool` or `ToolSettingsError`."""
    return default_registry.validate_settings(name, raw)


async def execute(name: str, arguments: Any, context: ToolContext) -> ToolResult:
    """Run a tool of the default registry (see `ToolRegistry.execute`)."""
    return await default_registry.execute(name, arguments, context)
