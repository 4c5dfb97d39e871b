"""A tenant's MCP servers and the log lines their connections wrote."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nexent.core.db import Base, IdMixin, TimestampMixin, utcnow


class Transport(StrEnum):
    HTTP = "http"  # streamable HTTP
    SSE = "sse"
    STDIO = "stdio"


class ServerStatus(StrEnum):
    """A server's health as the last check or call found it."""

    UNKNOWN = "unknown"  # never checked
    OK = "ok"
    UNREACHABLE = "unreachable"  # no connection: refused, no such host, the process could not start
    AUTH = "auth"  # the server refused the credentials (401/403), or wants some
    PROTOCOL = "protocol"  # it answered, but not MCP as we speak it
    TIMEOUT = "timeout"  # no answer in time
    CRASHED = "crashed"  # a local (stdio) server's process ended
    DISABLED = "disabled"  # stdio servers are not allowed in this process


class McpServer(IdMixin, TimestampMixin, Base):
    """An MCP server of a tenant: remote (`url`, streamable HTTP or SSE) or local (`command`, over stdio). Headers
    and environment variables are stored encrypted (`SecretBox`, a JSON object); only their names are readable."""

    __tablename__ = "mcp_servers"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_mcp_servers_tenant_name"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(30))
    description: Mapped[str] = mapped_column(Text, default="")
    transport: Mapped[str] = mapped_column(String(8))
    url: Mapped[str | None] = mapped_column(String(2000), default=None)
    command: Mapped[str | None] = mapped_column(Text, default=None)
    image: Mapped[str | None] = mapped_column(String(255), default=None)  # stdio in a container of this image
    headers_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    header_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    env_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    env_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    call_timeout_seconds: Mapped[float] = mapped_column(default=30.0)
    memory_mb: Mapped[int] = mapped_column(default=1024)
    cpu_seconds: Mapped[int] = mapped_column(default=600)
    max_open_files: Mapped[int] = mapped_column(default=256)
    # The tools as the last successful listing found them: [{name, remote_name, description, parameters, problem}]
    tools: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=ServerStatus.UNKNOWN)
    status_detail: Mapped[str | None] = mapped_column(Text, default=None)
    checked_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)


class McpServerLog(IdMixin, Base):
    """One line a server's connection wrote: its process's standard error (`stderr`), or what the platform did
    (`platform`: started, ended, restarting). The newest `NEXENT_MCP_LOG_LINES` are kept per server."""

    __tablename__ = "mcp_server_logs"
    __table_args__ = (Index("ix_mcp_server_logs_server", "server_id", "seq"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    server_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("mcp_servers.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)  # nanoseconds: orders the lines of one server
    at: Mapped[datetime] = mapped_column(default=utcnow)
    stream: Mapped[str] = mapped_column(String(10))
    line: Mapped[str] = mapped_column(Text)
