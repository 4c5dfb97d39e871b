"""A tenant's MCP servers: adding, changing and removing them, checking their health and tools, reading their logs,
and their tools as a tool source of the registry (`McpToolSource`, wired in `nexent.wiring`)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import mcp_types
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.db import utcnow
from nexent.core.errors import AppError, BadRequest, Conflict, Forbidden, NotFound
from nexent.core.netpolicy import AddressRefused, resolve_checked
from nexent.core.pagination import Page, PageParams
from nexent.core.references import refuse_if_used
from nexent.engines.container import Engines
from nexent.identity.auth import Caller
from nexent.identity.permissions import Permission
from nexent.identity.services.audit import record
from nexent.identity.services.tenants import tenant_endpoint_policy
from nexent.mcp_client.connection import McpFailure, ServerConfig, docker_available
from nexent.mcp_client.models import McpServer, ServerStatus, Transport
from nexent.mcp_client.repository import McpLogRepository, McpServerRepository
from nexent.mcp_client.schemas import (
    LogLine,
    McpCheckResult,
    McpServerCreate,
    McpServerRead,
    McpServerUpdate,
    McpToolRead,
)
from nexent.mcp_client.supervisor import connections
from nexent.tools.registry import ToolContext, ToolError, ToolResult
from nexent.tools.sources import ExternalTool, SourceKind, SourceRef, external_name, schema_problem

RESOURCE = "mcp_server"
MAX_TOOLS = 200  # per server: more is a server listing everything it could do, not a toolbox


class McpServerNotFound(NotFound):
    code = "mcp_server_not_found"


class LocalServersDisabled(AppError):
    status, code = 403, "local_mcp_disabled"


class McpUrlNotAllowed(BadRequest):
    code = "mcp_url_not_allowed"


class ContainerRunnerUnavailable(BadRequest):
    code = "container_runner_unavailable"


class McpServerService:
    """The MCP servers of the caller's tenant."""

    def __init__(self, session: AsyncSession, engines: Engines, caller: Caller) -> None:
        self.session = session
        self.engines = engines
        self.caller = caller
        self.servers = McpServerRepository(session, caller.tenant_id)
        self.logs = McpLogRepository(session, caller.tenant_id)

    # --- reading ------------------------------------------------------------------------------------------------

    async def page(self, params: PageParams) -> Page[McpServerRead]:
        rows, total = await self.servers.page(params.limit, params.offset)
        return Page(items=[_read(r) for r in rows], total=total, limit=params.limit, offset=params.offset)

    async def get(self, server_id: uuid.UUID) -> McpServerRead:
        return _read(await self._server(server_id))

    async def tools(self, server_id: uuid.UUID) -> list[McpToolRead]:
        """The tools as the last check found them."""
        return [McpToolRead.model_validate(t) for t in (await self._server(server_id)).tools]

    async def log_lines(self, server_id: uuid.UUID, limit: int) -> list[LogLine]:
        server = await self._server(server_id)
        return [LogLine(at=r.at, stream=r.stream, line=r.line) for r in await self.logs.newest(server.id, limit)]

    async def _server(self, server_id: uuid.UUID) -> McpServer:
        server = await self.servers.get(server_id)
        if server is None:
            raise McpServerNotFound(f"No MCP server {server_id} in this tenant.")
        return server

    # --- writing ------------------------------------------------------------------------------------------------

    async def create(self, data: McpServerCreate) -> McpServerRead:
        if data.transport == Transport.STDIO:
            self._require_local()
            if data.image:
                await _require_docker()
        else:
            assert data.url is not None
            await self._check_url(data.url)
        if await self.servers.name_taken(data.name):
            raise Conflict(f"An MCP server named {data.name!r} exists.", code="mcp_server_name_taken")
        headers = {k: v.get_secret_value() for k, v in data.headers.items()}
        if data.token is not None and data.token.get_secret_value():
            headers["Authorization"] = f"Bearer {data.token.get_secret_value()}"
        server = McpServer(
            tenant_id=self.caller.tenant_id,
            name=data.name,
            description=data.description,
            transport=data.transport,
            url=data.url,
            command=data.command,
            image=data.image,
            enabled=data.enabled,
            call_timeout_seconds=data.call_timeout_seconds,
            memory_mb=data.memory_mb,
            cpu_seconds=data.cpu_seconds,
            max_open_files=data.max_open_files,
            created_by=self.caller.user_id,
        )
        self._set_headers(server, headers)
        self._set_env(server, {k: v.get_secret_value() for k, v in data.env.items()})
        await self._add(server)
        await record(self.session, self.caller, "mcp_server.created", RESOURCE, server.id, name=server.name)
        return _read(server)

    async def update(self, server_id: uuid.UUID, data: McpServerUpdate) -> McpServerRead:
        server = await self._server(server_id)
        fields = data.model_fields_set
        local = server.transport == Transport.STDIO
        if local:
            self._require_local()  # whoever changes a local server decides what runs on the host
            if fields & {"url", "headers", "token"}:
                raise BadRequest("A stdio server takes a command and env, not a url, headers or a token.")
        elif fields & {"command", "env", "image"}:
            raise BadRequest("A remote server takes a url, headers or a token, not a command, env or image.")
        if data.image is not None and data.image != server.image:
            await _require_docker()
            server.image = data.image
        if data.name is not None and data.name != server.name:
            if await self.servers.name_taken(data.name, except_id=server.id):
                raise Conflict(f"An MCP server named {data.name!r} exists.", code="mcp_server_name_taken")
            server.name = data.name
        if data.url is not None and data.url != server.url:
            await self._check_url(data.url)
            server.url = data.url
        for name in ("description", "command", "enabled", "call_timeout_seconds", "memory_mb", "cpu_seconds"):
            if name in fields:
                setattr(server, name, getattr(data, name))
        if "max_open_files" in fields:
            server.max_open_files = data.max_open_files  # type: ignore[assignment]
        if data.headers is not None or data.token is not None:
            headers = (
                {k: v.get_secret_value() for k, v in data.headers.items()}
                if data.headers is not None
                else self._secrets(server.headers_encrypted)
            )
            if data.token is not None:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                if data.token.get_secret_value():
                    headers["Authorization"] = f"Bearer {data.token.get_secret_value()}"
            self._set_headers(server, headers)
        if data.env is not None:
            self._set_env(server, {k: v.get_secret_value() for k, v in data.env.items()})
        server.status, server.status_detail = ServerStatus.UNKNOWN, None
        server.updated_at = utcnow()
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError:
            raise Conflict(f"An MCP server named {server.name!r} exists.", code="mcp_server_name_taken") from None
        if "name" in fields:  # the tools' names carry the server's
            server.tools = _renamed(server.tools, server.name)
            await self.session.flush()
        await record(self.session, self.caller, "mcp_server.updated", RESOURCE, server.id, fields=sorted(fields))
        return _read(server)

    async def delete(self, server_id: uuid.UUID) -> None:
        server = await self._server(server_id)
        await refuse_if_used(self.session, self.caller.tenant_id, "tool_source", server.id)
        await self.servers.delete(server)
        connections(self.engines).drop(server.id)
        await record(self.session, self.caller, "mcp_server.deleted", RESOURCE, server.id, name=server.name)

    async def check(self, server_id: uuid.UUID) -> McpCheckResult:
        """Connect, list the tools (within `NEXENT_MCP_LIST_TIMEOUT_SECONDS`), store them and the status."""
        server = await self._server(server_id)
        connection = connections(self.engines).get(config_of(self.engines, server))
        started = time.perf_counter()
        try:
            listed = await connection.list_tools()
        except McpFailure as failure:
            server.status, server.status_detail = failure.status, failure.message
        else:
            server.tools = _tools(server.name, listed)
            server.status, server.status_detail = ServerStatus.OK, None
        latency = (time.perf_counter() - started) * 1000
        server.checked_at = utcnow()
        await self.session.flush()
        return McpCheckResult(
            status=ServerStatus(server.status),
            detail=server.status_detail,
            latency_ms=round(latency, 1),
            tools=[McpToolRead.model_validate(t) for t in server.tools],
        )

    # --- helpers ------------------------------------------------------------------------------------------------

    def _require_local(self) -> None:
        if not connections(self.engines).local_allowed:
            raise LocalServersDisabled(
                "Local (stdio) MCP servers are not allowed on this platform; the operator allows them with "
                "NEXENT_MCP_STDIO=true."
            )
        if not self.caller.can(Permission.RUN_LOCAL_TOOLS):
            raise Forbidden(
                f"Your role ({self.caller.role}) may not add or change local MCP servers, which run commands on "
                f"the host ({Permission.RUN_LOCAL_TOOLS}).",
                code="permission_denied",
            )

    async def _check_url(self, url: str) -> None:
        """A remote server must be on a public address, or a private one the operator allowed (as for models)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        policy = self.engines.private_endpoints | await tenant_endpoint_policy(
            self.session, self.engines.process, self.caller.tenant_id
        )
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            await resolve_checked(host, port, policy, dns_timeout=10.0)
        except AddressRefused:
            raise McpUrlNotAllowed(
                f"The host {host} is on a private, loopback or reserved address, which is not allowed here; the "
                "platform operator can allow it (NEXENT_PRIVATE_ENDPOINTS_ALLOW)."
            ) from None
        except (OSError, ValueError):
            raise McpUrlNotAllowed(f"The host {host!r} of the URL does not resolve.") from None

    async def _add(self, server: McpServer) -> None:
        try:
            async with self.session.begin_nested():
                await self.servers.add(server)
        except IntegrityError:
            raise Conflict(f"An MCP server named {server.name!r} exists.", code="mcp_server_name_taken") from None

    def _secrets(self, encrypted: str | None) -> dict[str, str]:
        return _decrypt(self.engines, encrypted)

    def _set_headers(self, server: McpServer, headers: dict[str, str]) -> None:
        server.headers_encrypted = self.engines.keys.box.encrypt(json.dumps(headers)) if headers else None
        server.header_names = sorted(headers)

    def _set_env(self, server: McpServer, env: dict[str, str]) -> None:
        server.env_encrypted = self.engines.keys.box.encrypt(json.dumps(env)) if env else None
        server.env_names = sorted(env)


async def _require_docker() -> None:
    if not await docker_available():
        raise ContainerRunnerUnavailable(
            "No Docker engine answers here (`docker info`), so servers cannot run in containers; leave `image` out "
            "to run the command as a process."
        )


def _decrypt(engines: Engines, encrypted: str | None) -> dict[str, str]:
    if not encrypted:
        return {}
    data = json.loads(engines.keys.box.decrypt(encrypted))
    return {str(k): str(v) for k, v in data.items()}


def config_of(engines: Engines, server: McpServer) -> ServerConfig:
    """What a connection needs of a server, its secrets decrypted (kept in memory only). Its `version` changes
    with what connecting depends on, not with the status a check or call writes."""
    relevant = [
        server.name,
        server.transport,
        server.url,
        server.command,
        server.image,
        server.headers_encrypted,
        server.env_encrypted,
        server.call_timeout_seconds,
        server.memory_mb,
        server.cpu_seconds,
        server.max_open_files,
    ]
    return ServerConfig(
        id=server.id,
        tenant_id=server.tenant_id,
        name=server.name,
        transport=server.transport,
        url=server.url,
        command=server.command,
        image=server.image,
        headers=_decrypt(engines, server.headers_encrypted),
        env=_decrypt(engines, server.env_encrypted),
        call_timeout=server.call_timeout_seconds,
        memory_mb=server.memory_mb,
        cpu_seconds=server.cpu_seconds,
        max_open_files=server.max_open_files,
        version=hashlib.sha256(json.dumps(relevant, default=str).encode()).hexdigest(),
    )


def _tools(server_name: str, listed: list[mcp_types.Tool]) -> list[dict[str, Any]]:
    """The listed tools as stored: agent-facing names (unique), schemas and what is wrong with them."""
    tools: list[dict[str, Any]] = []
    taken: set[str] = set()
    for tool in listed[:MAX_TOOLS]:
        name = external_name(server_name, tool.name)
        if name in taken:  # two names that differ only in characters a function name cannot have
            name = external_name(server_name, f"{tool.name}.{len(taken)}")
        taken.add(name)
        parameters = tool.input_schema if isinstance(tool.input_schema, dict) else {}
        tools.append(
            {
                "name": name,
                "remote_name": tool.name,
                "description": (tool.description or tool.title or tool.name)[:4000],
                "parameters": parameters,
                "problem": schema_problem(parameters),
            }
        )
    return tools


def _renamed(tools: list[dict[str, Any]], server_name: str) -> list[dict[str, Any]]:
    return [{**t, "name": external_name(server_name, str(t["remote_name"]))} for t in tools]


def _read(server: McpServer) -> McpServerRead:
    return McpServerRead(
        id=server.id,
        name=server.name,
        description=server.description,
        transport=Transport(server.transport),
        url=server.url,
        command=server.command,
        image=server.image,
        header_names=list(server.header_names),
        env_names=list(server.env_names),
        enabled=server.enabled,
        call_timeout_seconds=server.call_timeout_seconds,
        memory_mb=server.memory_mb,
        cpu_seconds=server.cpu_seconds,
        max_open_files=server.max_open_files,
        status=ServerStatus(server.status),
        status_detail=server.status_detail,
        checked_at=server.checked_at,
        tool_count=len(server.tools),
        created_at=server.created_at,
        updated_at=server.updated_at,
    )


# --- the tool source ----------------------------------------------------------------------------------------------


class McpToolSource:
    """The tenant's MCP servers' tools for agents (`nexent.tools.sources`): listed from what the last check
    stored, called through this process's connections."""

    kind = SourceKind.MCP.value

    async def list_tools(self, session: AsyncSession, tenant_id: uuid.UUID) -> list[ExternalTool]:
        found: list[ExternalTool] = []
        for server in await McpServerRepository(session, tenant_id).enabled():
            source = SourceRef(kind=self.kind, id=server.id, name=server.name)
            found.extend(
                ExternalTool(
                    name=str(t["name"]),
                    description=str(t.get("description") or ""),
                    parameters=dict(t.get("parameters") or {}),
                    source=source,
                    remote_name=str(t["remote_name"]),
                )
                for t in server.tools
            )
        return found

    async def call(self, tool: ExternalTool, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        engines = context.engines
        if engines is None or tool.source.id is None:
            raise ToolError(f"The tool {tool.name} cannot be called here.", "unknown_tool")
        async with engines.sessions() as session:
            server = await McpServerRepository(session, context.tenant_id).get(tool.source.id)
            if server is None or not server.enabled:
                connections(engines).drop(tool.source.id)  # its process (if local) stops here too
                raise ToolError(f"The MCP server of {tool.name} was removed or disabled.", "mcp_server_gone")
            config = config_of(engines, server)
        connection = connections(engines).get(config)
        timeout = context.timeout(config.call_timeout)
        try:
            result = await connection.call(tool.remote_name, arguments, timeout)
        except McpFailure as failure:
            await _note_status(engines, context.tenant_id, config.id, failure.status, failure.message)
            raise ToolError(f"MCP server {config.name}: {failure.message}", failure.code) from None
        return tool_result(tool, result)


async def _note_status(
    engines: Engines, tenant_id: uuid.UUID, server_id: uuid.UUID, status: ServerStatus, detail: str | None
) -> None:
    """Remember what a run found (the server list shows it), without failing the call."""
    try:
        async with engines.sessions() as session, session.begin():
            server = await McpServerRepository(session, tenant_id).get(server_id)
            if server is not None and (server.status, server.status_detail) != (status, detail):
                server.status, server.status_detail, server.checked_at = status, detail, utcnow()
    except Exception:  # noqa: S110 - only a note; the call's own error is what matters
        pass


def tool_result(tool: ExternalTool, result: mcp_types.CallToolResult) -> ToolResult:
    """An MCP call's result for the model: its text content; structured content as data (and as text when there is
    no text); `is_error` as a tool error."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        elif isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
            parts.append(f"[{block.type}: {block.mime_type}]")
        elif isinstance(block, mcp_types.EmbeddedResource):
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(text if isinstance(text, str) else f"[resource: {resource.uri}]")
        else:
            parts.append(f"[{getattr(block, 'type', 'content')}]")
    output = "\n".join(parts)
    structured = result.structured_content
    if not output and structured is not None:
        output = json.dumps(structured, ensure_ascii=False, default=str)
    if result.is_error:
        raise ToolError(f"The tool {tool.name} reported an error: {output[:4000] or 'no details'}", "mcp_tool_error")
    return ToolResult(output=output, data={"structured": structured} if structured is not None else None)
