"""A tenant's remote agents: A2A agents known by the URL of their agent card, usable as sub-agents."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nexent.core.db import Base, IdMixin, TimestampMixin


class RemoteStatus(StrEnum):
    """A remote agent's health as the last check or call found it."""

    UNKNOWN = "unknown"  # never checked
    OK = "ok"
    UNREACHABLE = "unreachable"  # no connection: refused, no such host, an address the policy refuses
    AUTH = "auth"  # the agent refused the credentials (401/403), or wants some
    PROTOCOL = "protocol"  # it answered, but not A2A 1.0 (no valid card, no 1.0 interface, a nonsense answer)
    TIMEOUT = "timeout"  # no answer in time


class RemoteAgent(IdMixin, TimestampMixin, Base):
    """An A2A agent of a tenant. `card` is its agent card as last fetched and validated (JSON, camelCase as
    served); the credential (an API key or a bearer token, as the card declares) is stored encrypted
    (`SecretBox`, a JSON object of headers) and never returned."""

    __tablename__ = "remote_agents"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_remote_agents_tenant_name"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(30))
    card_url: Mapped[str] = mapped_column(String(2000))
    card: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    card_fetched_at: Mapped[datetime | None] = mapped_column(default=None)
    headers_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    header_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    timeout_seconds: Mapped[float] = mapped_column(default=120.0)
    status: Mapped[str] = mapped_column(String(16), default=RemoteStatus.UNKNOWN)
    status_detail: Mapped[str | None] = mapped_column(Text, default=None)
    checked_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
