"""MCP server routes: `/api/mcp-servers` (the tenant's servers, their health, tools and logs)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from nexent.core.openapi import problems
from nexent.core.pagination import Page, PageParamsDep
from nexent.engines.deps import EnginesDep, SessionDep
from nexent.identity.auth import Caller, RequirePermission
from nexent.identity.permissions import Permission
from nexent.mcp_client.schemas import (
    LogLine,
    McpCheckResult,
    McpServerCreate,
    McpServerRead,
    McpServerUpdate,
    McpToolRead,
)
from nexent.mcp_client.service import McpServerService

router = APIRouter(prefix="/api/mcp-servers", tags=["mcp-servers"])
ManageTools = Annotated[Caller, RequirePermission(Permission.MANAGE_TOOLS)]
ServerId = Annotated[uuid.UUID, Path(description="The server's id.")]

_LOCAL = (
    "Local (stdio) servers are not allowed here (`local_mcp_disabled`), or the caller's role may not add them "
    "(`permission_denied`)."
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add an MCP server: remote by URL (streamable HTTP or SSE) or local by command line (stdio).",
    responses=problems(
        s400="The URL is on an address that is not allowed (`mcp_url_not_allowed`).",
        s403=_LOCAL,
        s409="The name is taken (`mcp_server_name_taken`).",
    ),
)
async def create_server(
    body: McpServerCreate, caller: ManageTools, session: SessionDep, engines: EnginesDep
) -> McpServerRead:
    return await McpServerService(session, engines, caller).create(body)


@router.get("", summary="The tenant's MCP servers (header values and environment values are never returned).")
async def list_servers(
    caller: ManageTools, session: SessionDep, engines: EnginesDep, page: PageParamsDep
) -> Page[McpServerRead]:
    return await McpServerService(session, engines, caller).page(page)


@router.get("/{server_id}", summary="One MCP server.", responses=problems(404))
async def get_server(
    server_id: ServerId, caller: ManageTools, session: SessionDep, engines: EnginesDep
) -> McpServerRead:
    return await McpServerService(session, engines, caller).get(server_id)


@router.patch(
    "/{server_id}",
    summary="Change an MCP server; `headers` and `env` replace the whole set, `token` the Authorization header.",
    responses=problems(
        404,
        s400="A field that does not fit the server's transport, or a URL that is not allowed.",
        s403=_LOCAL,
        s409="The name is taken (`mcp_server_name_taken`).",
    ),
)
async def update_server(
    server_id: ServerId, body: McpServerUpdate, caller: ManageTools, session: SessionDep, engines: EnginesDep
) -> McpServerRead:
    return await McpServerService(session, engines, caller).update(server_id, body)


@router.delete(
    "/{server_id}",
    status_code=204,
    response_class=Response,
    summary="Remove an MCP server (a local server's process stops).",
    responses=problems(404, s409="A published agent version uses its tools (`tool_source_in_use`)."),
)
async def delete_server(server_id: ServerId, caller: ManageTools, session: SessionDep, engines: EnginesDep) -> None:
    await McpServerService(session, engines, caller).delete(server_id)


@router.post(
    "/{server_id}/check",
    summary="Connect and list the server's tools (with a timeout); the status and the tools are stored.",
    responses=problems(404),
)
async def check_server(
    server_id: ServerId, caller: ManageTools, session: SessionDep, engines: EnginesDep
) -> McpCheckResult:
    return await McpServerService(session, engines, caller).check(server_id)


@router.get(
    "/{server_id}/tools",
    summary="The server's tools as the last check found them, with any problem of their schemas.",
    responses=problems(404),
)
async def server_tools(
    server_id: ServerId, caller: ManageTools, session: SessionDep, engines: EnginesDep
) -> list[McpToolRead]:
    return await McpServerService(session, engines, caller).tools(server_id)


@router.get(
    "/{server_id}/logs",
    summary="The newest log lines of the server: a local server's standard error, and its starts, ends and restarts.",
    responses=problems(404),
)
async def server_logs(
    server_id: ServerId,
    caller: ManageTools,
    session: SessionDep,
    engines: EnginesDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Lines, newest last.")] = 200,
) -> list[LogLine]:
    return await McpServerService(session, engines, caller).log_lines(server_id, limit)


routers = [router]
