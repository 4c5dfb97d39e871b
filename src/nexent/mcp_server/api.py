"""The platform's MCP server at `/mcp` (streamable HTTP, FastMCP): each published agent an API key may use is a
tool, plus `knowledge_base_search` over the knowledge bases the key's member may read (see docs/mcp.md).

- Authentication: `Authorization: Bearer <API key>`, checked by identity as for every other route; or, for clients
  that cannot send headers, the key in the path (`/mcp/k/<key>`): `UrlKeyMiddleware`, outermost, moves it into the
  header and rewrites the path to `/mcp` before anything (our request log, uvicorn's access log) reads the path.
- DNS rebinding: FastMCP's Host/Origin guard, strict, with loopback and the configured public host names allowed.
- The tool list is per caller: `CallerTools` lists them from the request's caller on every `tools/list`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastmcp import FastMCP
from fastmcp.server.dependencies import get_context, get_http_request
from fastmcp.server.providers import Provider
from fastmcp.tools import Tool, ToolResult
from mcp.types import TextContent, ToolAnnotations
from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from nexent.core.errors import AppError, problem_response
from nexent.engines.container import Engines
from nexent.identity.auth import Caller, api_key_caller
from nexent.identity.schemas import MCP_KEY_PATH
from nexent.mcp_server.service import (
    KB_SEARCH_TOOL,
    McpService,
    answer_of,
    search_description,
)
from nexent.runtime.execution import RunManager
from nexent.settings import Service, Settings

MCP_PATH = "/mcp"
MAX_MESSAGE_CHARS = 100_000  # as a run started over the API
_STATE_KEY = "nexent.mcp"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_INSTRUCTIONS = (
    "Nexent's published agents, one tool each: send the agent a message and get its answer (streamed as progress "
    "notifications when you send a progress token). Each call is a new conversation: put what the agent needs in "
    "the message."
)


@dataclass(frozen=True)
class McpRequest:
    """What a request to `/mcp` carries into its tool calls: the caller and the process's engines and runs."""

    caller: Caller
    engines: Engines
    runs: RunManager


def _current() -> McpRequest:
    state: McpRequest = get_http_request().scope["state"][_STATE_KEY]
    return state


def _current_or_none() -> McpRequest | None:
    """The request's caller, or None outside a request to `/mcp` (FastMCP lists components at start-up too)."""
    try:
        return _current()
    except (RuntimeError, KeyError):
        return None


def _error(message: str) -> ToolResult:
    return ToolResult(content=[TextContent(type="text", text=message)], is_error=True)


class AgentTool(Tool):
    """A published agent: runs its published version on `message`, statelessly."""

    agent_id: uuid.UUID
    _PARAMETERS: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "message": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_MESSAGE_CHARS,
                "description": "What to ask the agent (each call is a new conversation).",
            }
        },
        "required": ["message"],
        "additionalProperties": False,
    }

    async def run(self, arguments: dict[str, Any]) -> ToolResult:
        message = arguments.get("message")
        if not isinstance(message, str) or not message.strip() or len(message) > MAX_MESSAGE_CHARS:
            return _error(f"`message` must be a non-empty string of at most {MAX_MESSAGE_CHARS} characters.")
        request = _current()
        context = get_context()
        try:
            async with request.engines.sessions() as session, session.begin():
                service = McpService(session, request.engines, request.caller)
                run = await service.start_run(request.runs, self.agent_id, message)
        except AppError as exc:  # not published any more, at capacity, ...: the client's model reads why
            return _error(exc.detail)
        sent = 0

        async def progress(text: str) -> None:
            nonlocal sent
            sent += 1
            await context.report_progress(sent, None, text)

        outcome = await answer_of(request.engines, request.caller, run, progress)
        if outcome.error is not None:
            return _error(outcome.error)
        return ToolResult(
            content=[TextContent(type="text", text=outcome.answer or "")], meta={"nexent/run_id": str(run.id)}
        )


class SearchTool(Tool):
    """Search over every knowledge base the caller may read."""

    _PARAMETERS: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 1, "maxLength": 2000, "description": "What to look for."},
            "top_k": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5, "description": "Passages."},
        },
        "required": ["query"],
        "additionalProperties": False,
    }

    async def run(self, arguments: dict[str, Any]) -> ToolResult:
        query, top_k = arguments.get("query"), arguments.get("top_k", 5)
        if not isinstance(query, str) or not query.strip() or len(query) > 2000:
            return _error("`query` must be a non-empty string of at most 2000 characters.")
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= 50:
            return _error("`top_k` must be an integer from 1 to 50.")
        request = _current()
        try:
            async with request.engines.sessions() as session, session.begin():
                result = await McpService(session, request.engines, request.caller).search(query, top_k)
        except AppError as exc:
            return _error(exc.detail)
        hits = [
            {
                "text": hit.text,
                "file_name": hit.file_name,
                "page": hit.page,
                "knowledge_base_id": str(hit.knowledge_base_id),
                "document_id": str(hit.document_id),
                "score": hit.score,
            }
            for hit in result.hits
        ]
        text = "\n\n".join(f"[{n}] {h['file_name']}: {h['text']}" for n, h in enumerate(hits, 1)) or "No passages."
        return ToolResult(content=[TextContent(type="text", text=text)], structured_content={"hits": hits})


class CallerTools(Provider):
    """The request's caller's tools, read on each listing (a key sees its agents only, another tenant's never)."""

    async def _list_tools(self) -> Sequence[Tool]:
        request = _current_or_none()
        if request is None:
            return []
        async with request.engines.sessions() as session:
            service = McpService(session, request.engines, request.caller)
            agents = await service.agent_tools()
            scope = await service.search_scope()
        read_only = ToolAnnotations(readOnlyHint=True, openWorldHint=False)
        tools: list[Tool] = [
            AgentTool(
                name=agent.name,
                title=agent.title,
                description=agent.description,
                parameters=AgentTool._PARAMETERS,
                agent_id=agent.agent_id,
                annotations=ToolAnnotations(title=agent.title, openWorldHint=True),
            )
            for agent in agents
        ]
        if scope.bases:
            tools.append(
                SearchTool(
                    name=KB_SEARCH_TOOL,
                    title="Knowledge base search",
                    description=search_description(scope),
                    parameters=SearchTool._PARAMETERS,
                    annotations=read_only,
                )
            )
        return tools


class McpEndpoint:
    """`/mcp`: the API key checked by identity (a problem document with its code otherwise), then FastMCP."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parent = scope["app"]  # the platform's app, whose lifespan holds the engines and the run manager
        engines: Engines = parent.state.engines
        scheme, _, secret = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            detail = "Send an API key as 'Authorization: Bearer <key>', or use the key's MCP connection URL."
            await problem_response(401, "unauthorized", detail, headers=_CHALLENGE)(scope, receive, send)
            return
        try:
            async with engines.sessions() as session, session.begin():
                caller = await api_key_caller(secret.strip(), session, engines)
        except AppError as exc:
            await problem_response(exc.status, exc.code, exc.detail, headers=exc.headers)(scope, receive, send)
            return
        scope.setdefault("state", {})[_STATE_KEY] = McpRequest(caller, engines, parent.state.runs)
        await self.app(scope, receive, send)


class UrlKeyMiddleware:
    """`/mcp/k/<key>` is `/mcp` with `Authorization: Bearer <key>`: rewritten in place, in the scope every later
    reader shares (our request log, uvicorn's access log, error reports), so that the key is in no log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(MCP_KEY_PATH):
            secret = scope["path"][len(MCP_KEY_PATH) :].removesuffix("/")  # some clients add a slash
            scope["path"], scope["raw_path"] = MCP_PATH, MCP_PATH.encode()
            scope["headers"] = [
                *((name, value) for name, value in scope["headers"] if name != b"authorization"),
                (b"authorization", b"Bearer " + secret.encode("latin-1", "replace")),
            ]
        await self.app(scope, receive, send)


def allowed_hosts(settings: Settings) -> list[str]:
    """Host names `/mcp` answers to: loopback, `NEXENT_MCP_ALLOWED_HOSTS`, and those of the public URLs."""
    hosts = ["127.0.0.1", "localhost", "::1", *settings.mcp_allowed_hosts]
    for url in (settings.public_url, settings.service_urls.get(Service.MCP)):
        if url and (host := urlsplit(url).hostname):
            hosts.append(host)
    return list(dict.fromkeys(hosts))


def allowed_origins(settings: Settings) -> list[str]:
    """Browser origins `/mcp` accepts besides its own: the public URLs' and `NEXENT_CORS_ORIGINS`."""
    origins = list(settings.cors_origins)
    for url in (settings.public_url, settings.service_urls.get(Service.MCP)):
        if url and (parts := urlsplit(url)).hostname:
            origins.append(f"{parts.scheme}://{parts.netloc}")
    return list(dict.fromkeys(origins))


def mount(app: FastAPI, settings: Settings) -> Callable[[], AbstractAsyncContextManager[None]]:
    """Serve the MCP server at `/mcp` in `app` (mount before any catch-all route); returns its lifespan, which the
    app's lifespan enters once the engines and the run manager are up."""
    server = FastMCP("Nexent", instructions=_INSTRUCTIONS, providers=[CallerTools()])
    http = server.http_app(
        path=MCP_PATH,
        host_origin_protection=True,
        allowed_hosts=allowed_hosts(settings),
        allowed_origins=allowed_origins(settings),
    )
    app.router.routes.append(Route(MCP_PATH, McpEndpoint(http), include_in_schema=False))

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        # FastMCP's session manager holds a task group, which must be left by the task that entered it: a task of
        # its own, as the app's lifespan may start and end in different tasks (as test fixtures do).
        started, stop = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            async with http.router.lifespan_context(http):
                started.set()
                await stop.wait()

        holder = asyncio.create_task(hold(), name="mcp-sessions")
        waiting = asyncio.create_task(started.wait())
        await asyncio.wait({holder, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if holder.done():
            holder.result()  # its start-up error
        try:
            yield
        finally:
            stop.set()
            await holder

    return lifespan
