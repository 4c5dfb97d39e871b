"""Memories (the source of truth; their vectors live in a per-tenant search index), the tenant's memory index, and
the switches that turn memory off per level and per agent."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from nexent.core.db import Base, IdMixin, TimestampMixin, utcnow


class MemoryLevel(StrEnum):
    TENANT = "tenant"  # every run of the tenant
    AGENT = "agent"  # every run of one agent
    USER = "user"  # every run of one user
    USER_AGENT = "user_agent"  # the runs of one user with one agent


PERSONAL_LEVELS = frozenset({MemoryLevel.USER, MemoryLevel.USER_AGENT})


class Memory(IdMixin, TimestampMixin, Base):
    """One fact. `user_id` is set for the personal levels, `agent_id` for `agent` and `user_agent`."""

    __tablename__ = "memories"
    __table_args__ = (Index("ix_memories_tenant_level_user", "tenant_id", "level", "user_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    level: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), default=None)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), default=None)
    text: Mapped[str] = mapped_column(Text)
    source_run_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    source_conversation_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    embedding_model_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)


class MemoryIndex(Base):
    """The tenant's memory index in the search engine, and the one being built while its memories are re-embedded
    with a new default embedding model (recall keeps using the current one meanwhile)."""

    __tablename__ = "memory_indexes"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    index_name: Mapped[str] = mapped_column(String(64))
    embedding_model_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    dimension: Mapped[int] = mapped_column()
    pending_index_name: Mapped[str | None] = mapped_column(String(64), default=None)
    pending_model_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    pending_dimension: Mapped[int | None] = mapped_column(default=None)
    reembed_token: Mapped[uuid.UUID | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MemoryUserSettings(Base):
    """A user's switches: levels turned off, and agents whose runs neither recall nor extract memories."""

    __tablename__ = "memory_user_settings"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    disabled_levels: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled_agent_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MemoryAgentSettings(Base):
    """An agent's switch, set by those who manage memory: off means no memory in any of its runs."""

    __tablename__ = "memory_agent_settings"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


__all__ = ["Memory", "MemoryAgentSettings", "MemoryIndex", "MemoryLevel", "MemoryUserSettings"]
