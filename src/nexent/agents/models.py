"""Agents: the editable draft (what an agent is told, which model it thinks with, what it may use) and its
published versions, immutable snapshots of a draft that chat and the external APIs run."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nexent.core.db import Base, IdMixin, TimestampMixin, utcnow


class AgentType(StrEnum):
    TOOL_CALLING = "tool_calling"
    CODE = "code"


class A2aExposure(StrEnum):
    """Whether the agent's published version is served over A2A (`/a2a/{agent_id}`), and to whom."""

    OFF = "off"
    API_KEY = "api_key"
    PUBLIC = "public"


class Agent(IdMixin, TimestampMixin, Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_agents_tenant_name"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    display_name: Mapped[str] = mapped_column(String(120), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    duty: Mapped[str] = mapped_column(Text, default="")
    constraints: Mapped[str] = mapped_column(Text, default="")
    examples: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    model_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("model_configs.id", ondelete="SET NULL"), default=None
    )
    agent_type: Mapped[str] = mapped_column(String(16), default=AgentType.TOOL_CALLING)
    tools: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    sub_agent_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    knowledge_base_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Skills the agent may load on demand (ids; a published version pins each to its newest version then).
    skill_ids: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    max_steps: Mapped[int] = mapped_column(default=10)
    greeting: Mapped[str] = mapped_column(Text, default="")
    example_questions: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    # The number of the version chat and the external APIs run: the newest enabled one (None: never published).
    published_version: Mapped[int | None] = mapped_column(default=None)
    # Publishing needs an evaluation of the draft at least this good (0..1), when set.
    min_pass_rate: Mapped[float | None] = mapped_column(Float, default=None)  # FLOAT, as migration 0012 made it
    # Served over A2A: off, to API keys that may use it, or to anyone (see docs/a2a.md).
    a2a_exposure: Mapped[str] = mapped_column(String(16), default=A2aExposure.OFF, server_default=A2aExposure.OFF)


class AgentVersion(IdMixin, Base):
    """An immutable, numbered snapshot of an agent's draft (`config`: the draft's fields, the model resolved and
    sub-agents pinned to their own versions). Only `disabled` ever changes."""

    __tablename__ = "agent_versions"
    __table_args__ = (UniqueConstraint("agent_id", "number", name="uq_agent_versions_agent_number"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    number: Mapped[int]
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The model the version thinks with (also in `config`), as a column so that a run reads it in its first query.
    model_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    note: Mapped[str] = mapped_column(Text, default="")
    disabled: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentVersionRef(IdMixin, Base):
    """What a version depends on (a model, a knowledge base, a sub-agent), one row each: what deleting one of them
    asks (`agents.versions.users_of`)."""

    __tablename__ = "agent_version_refs"
    __table_args__ = (Index("ix_agent_version_refs_target", "tenant_id", "kind", "target_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agent_versions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    target_id: Mapped[uuid.UUID]
