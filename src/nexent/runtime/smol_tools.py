"""smolagents Tools built at run time from `{"name", "description", "parameters": <JSON schema>}` whose work is done
by an async executor on the server's event loop: `await executor(name, arguments: dict) -> Any`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import copy
import json
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from smolagents.tools import AUTHORIZED_TYPES, Tool

from nexent.core import tracing
from nexent.runtime.smol_model import RunCancelled

AsyncExecutor = Callable[[str, dict[str, Any]], Coroutine[Any, Any, Any]]


def _input_type(prop: dict[str, Any]) -> str | list[str]:
    """smolagents `inputs[...]["type"]`: one of AUTHORIZED_TYPES or a list of them; "any" when unknown."""
    kind = prop.get("type")
    if isinstance(kind, str) and kind in AUTHORIZED_TYPES:
        return kind
    if isinstance(kind, list) and kind and all(k in AUTHORIZED_TYPES for k in kind):
        return kind
    return "any"  # anyOf/oneOf/$ref/missing: validated by the executor, not by smolagents


def make_tool(
    spec: dict[str, Any],
    executor: AsyncExecutor,
    loop: asyncio.AbstractEventLoop,
    *,
    cancel: threading.Event | None = None,
    timeout: float | None = 120.0,
    output_type: str = "any",
    propagate: tuple[contextvars.ContextVar[Any], ...] = (),
) -> Tool:
    """A Tool instance for one JSON-schema tool spec, doing its work with `executor` on `loop`. The values the
    calling (agent) thread has for the `propagate` variables are set for the executor on the loop too."""
    key = json.dumps([spec, output_type], sort_keys=True, default=str)
    prototype = _prototypes.get(key)
    if prototype is None:
        # smolagents validates a Tool class's signature and inputs at every instantiation (inspect, typing):
        # once per spec and process here; each run gets a copy with its own executor.
        prototype = _tool_class(spec, output_type)()
        if len(_prototypes) >= _MAX_PROTOTYPES:
            _prototypes.pop(next(iter(_prototypes)))
        _prototypes[key] = prototype
    tool = copy.copy(prototype)
    tool.run_context = _RunContext(executor, loop, cancel, timeout, propagate)
    return tool


@dataclass(frozen=True)
class _RunContext:
    executor: AsyncExecutor
    loop: asyncio.AbstractEventLoop
    cancel: threading.Event | None
    timeout: float | None
    propagate: tuple[contextvars.ContextVar[Any], ...] = ()


async def _with_values(values: list[tuple[contextvars.ContextVar[Any], Any]], work: Any) -> Any:
    """Await `work` with the variables set (in the loop task's own context: nothing leaks out of it)."""
    for variable, value in values:
        variable.set(value)
    return await work


_prototypes: dict[str, Tool] = {}
_MAX_PROTOTYPES = 512


def _tool_class(spec: dict[str, Any], output_type: str) -> type[Tool]:
    schema = dict(spec.get("parameters") or {"type": "object", "properties": {}})
    properties: dict[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    inputs: dict[str, dict[str, Any]] = {}
    for key, prop in properties.items():
        entry: dict[str, Any] = {
            "type": _input_type(prop),
            "description": prop.get("description") or prop.get("title") or key,
        }
        if key not in required:
            entry["nullable"] = True  # smolagents: "not required" is spelled nullable (validate_tool_arguments)
        inputs[key] = entry
    order = list(properties)
    tool_name = spec["name"]

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        # A span per call, in the agent's thread; the executor's own work (an MCP or A2A request, a search) nests
        # under it on the loop (`tracing.bind`).
        with tracing.span(f"tool {tool_name}", {"nexent.tool.name": tool_name}):
            return call(self, *args, **kwargs)

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        run: _RunContext = self.run_context
        # Positional arguments happen in CodeAgent code (`search("x")`): map them onto the schema's order.
        arguments = {**dict(zip(order, args, strict=False)), **kwargs}
        arguments = {k: v for k, v in arguments.items() if v is not None or k in required}
        if run.cancel is not None and run.cancel.is_set():
            raise RunCancelled("stopped before the tool ran")
        work = run.executor(tool_name, arguments)
        if run.propagate:
            work = _with_values([(v, v.get(None)) for v in run.propagate], work)
        work = tracing.bind(work)
        future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(work, run.loop)
        try:
            waited = 0.0
            while not future.done():  # poll so that a stop request is seen while a slow tool runs
                concurrent.futures.wait([future], timeout=0.1)
                waited += 0.1
                if run.cancel is not None and run.cancel.is_set():
                    raise RunCancelled("stopped while a tool was running")
                if run.timeout is not None and waited >= run.timeout and not future.done():
                    raise TimeoutError(f"tool {tool_name} took longer than {run.timeout}s")
            return future.result()
        finally:
            if not future.done():
                future.cancel()  # cancels the executor's task on the loop

    attributes = {
        "name": tool_name,
        "description": spec.get("description") or tool_name,
        "inputs": inputs,
        "output_type": output_type,
        "parameters_schema": schema,  # sent to the model as is (adapter.tool_spec)
        "skip_forward_signature_validation": True,  # forward(*args, **kwargs) instead of one parameter per input
        "forward": forward,
    }
    return type(f"Tool_{tool_name}", (Tool,), attributes)  # Tool.__init_subclass__ validates after __init__
