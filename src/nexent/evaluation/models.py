"""An agent's test cases and the evaluations that run them."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from nexent.core.db import Base, IdMixin, TimestampMixin, utcnow


class EvaluationStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


UNFINISHED_EVALUATIONS = (EvaluationStatus.QUEUED.value, EvaluationStatus.RUNNING.value)


class EvaluationCase(IdMixin, TimestampMixin, Base):
    """One question of an agent's test set with the checks its answer must pass."""

    __tablename__ = "evaluation_cases"
    __table_args__ = (Index("ix_evaluation_cases_agent", "tenant_id", "agent_id", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    question: Mapped[str] = mapped_column(Text)
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    expected_facts: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)


class Evaluation(IdMixin, Base):
    """One run of an agent's test set against its draft (`version` None) or a version. The cases are copied in when
    it starts (editing the test set later does not change it); `results` grows as cases finish."""

    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_agent", "tenant_id", "agent_id", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    version: Mapped[int | None] = mapped_column(default=None)
    # `agents.versions.fingerprint` of what was evaluated: the publish gate accepts only the draft it was taken of.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=EvaluationStatus.QUEUED.value)
    cases: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    passed: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    pass_rate: Mapped[float | None] = mapped_column(Float, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # Refreshed by the process running it; an unfinished evaluation whose heartbeat stopped is failed by readers.
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
