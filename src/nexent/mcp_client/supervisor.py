"""This process's MCP connections (`engines.process`): one `Connection` per server, made on first use, replaced
when the server is edited, closed (local processes stopped) when the process stops.

Owner of local (stdio) servers: every process that uses a server holds its own connection, so the processes that
execute runs (the embedded app; the `runtime` service in the split shape) start a server's child process the first
time one of their runs calls it, and keep it while they live. A check from the API (`POST /{id}/check`) runs in
the process that serves it. Their logs go to the database, so any process can read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

from nexent.engines.container import Engines
from nexent.mcp_client.connection import Connection, Limits, ServerConfig
from nexent.mcp_client.repository import McpLogRepository

logger = logging.getLogger("nexent.mcp_client")


class McpConnections:
    """The connections of this process, by server."""

    def __init__(self, engines: Engines, *, local_allowed: bool) -> None:
        self.engines = engines
        self.local_allowed = local_allowed
        settings = engines.settings
        self.limits = Limits(
            list_timeout=settings.mcp_list_timeout_seconds,
            breaker_failures=settings.mcp_breaker_failures,
            breaker_reset_seconds=settings.mcp_breaker_reset_seconds,
            restart_backoff_max=settings.mcp_restart_backoff_max_seconds,
            work_dir=settings.resolved_mcp_dir,
        )
        self._connections: dict[uuid.UUID, Connection] = {}
        self._retired: set[asyncio.Task[None]] = set()

    def get(self, config: ServerConfig) -> Connection:
        """The connection of a server as configured now (a new one, the old one closed, after an edit)."""
        found = self._connections.get(config.id)
        if found is not None and found.config.version == config.version:
            return found
        connection = self._connections[config.id] = Connection(
            config, self.limits, self._sink, local_allowed=self.local_allowed
        )
        if found is not None:
            self._retire(found)
        return connection

    def find(self, server_id: uuid.UUID) -> Connection | None:
        return self._connections.get(server_id)

    def drop(self, server_id: uuid.UUID) -> None:
        """Close a deleted server's connection (its process stops)."""
        found = self._connections.pop(server_id, None)
        if found is not None:
            self._retire(found)

    def _retire(self, connection: Connection) -> None:
        task = asyncio.create_task(connection.close())
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    async def _sink(self, config: ServerConfig, stream: str, lines: list[str]) -> None:
        """Store log lines (never failing the operation that wrote them)."""
        base = time.time_ns()
        try:
            async with self.engines.sessions() as session, session.begin():
                await McpLogRepository(session, config.tenant_id).add(
                    config.id,
                    stream,
                    [(base + index, line) for index, line in enumerate(lines)],
                    keep=self.engines.settings.mcp_log_lines,
                )
        except Exception:  # a deleted server, a closing database: the lines are lost, the call is not
            logger.warning("could not store MCP server log lines", extra={"server": str(config.id)})

    async def close(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            with contextlib.suppress(Exception):
                await connection.close()
        for task in list(self._retired):
            with contextlib.suppress(Exception):
                await task


def connections(engines: Engines) -> McpConnections:
    """This process's connections; local servers allowed only where `NEXENT_MCP_STDIO` is true unless
    `configure` said the process is the embedded app."""
    return engines.process.part(
        McpConnections, lambda: McpConnections(engines, local_allowed=engines.settings.mcp_stdio is True)
    )


def configure(engines: Engines, *, embedded: bool) -> McpConnections:
    """Make this process's connections at start: local servers follow `NEXENT_MCP_STDIO`, by default allowed in the
    embedded app only."""
    setting = engines.settings.mcp_stdio
    allowed = embedded if setting is None else setting
    return engines.process.part(McpConnections, lambda: McpConnections(engines, local_allowed=allowed))
