"""Agent drafts: what an agent is told, which model it thinks with, and what it may use."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nexent.core.db import Base, IdMixin, TimestampMixin


class AgentType(StrEnum):
    TOOL_CALLING = "tool_calling"
    CODE = "code"


class Agent(IdMixin, TimestampMixin, Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_agents_tenant_name"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
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
    max_steps: Mapped[int] = mapped_column(default=10)
    greeting: Mapped[str] = mapped_column(Text, default="")
    example_questions: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
