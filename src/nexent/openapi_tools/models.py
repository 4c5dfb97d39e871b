"""A tenant's OpenAPI imports ("OpenAPI tool sources")."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nexent.core.db import Base, IdMixin, TimestampMixin


class OpenAPISource(IdMixin, TimestampMixin, Base):
    """One imported document: every operation it holds (`operations`, as `document.Operation.to_dict`), the ones
    chosen as tools (`selected`, by tool name), where calls go and how they authenticate. The credential is
    encrypted with the platform's secret box and never returned."""

    __tablename__ = "openapi_sources"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_openapi_sources_tenant_name"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(30))
    description: Mapped[str] = mapped_column(Text, default="")
    title: Mapped[str] = mapped_column(String(200))
    document_version: Mapped[str] = mapped_column(String(100), default="")
    base_url: Mapped[str] = mapped_column(String(2048))
    auth_kind: Mapped[str] = mapped_column(String(16), default="none")
    auth_location: Mapped[str] = mapped_column(String(16), default="header")
    auth_name: Mapped[str] = mapped_column(String(100), default="")
    secret_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    timeout_seconds: Mapped[float] = mapped_column(Float, default=20.0)
    max_response_bytes: Mapped[int] = mapped_column(default=200_000)
    operations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    selected: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
