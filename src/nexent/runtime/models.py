"""Runs and their event logs; conversations and their messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nexent.core.db import Base, IdMixin, TimestampMixin, utcnow


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"


FINISHED_RUN_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.STOPPED})
TERMINAL_EVENTS = frozenset({"run.completed", "run.failed", "run.stopped"})
# Events written after a run ended (memory's extraction): a stream that replays them ends after them too.
AFTER_END_EVENTS = frozenset({"memory.saved"})


class Conversation(IdMixin, TimestampMixin, Base):
    """A multi-turn chat of one user with one agent."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_tenant_user", "tenant_id", "user_id", "updated_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), default=None)
    title: Mapped[str] = mapped_column(String(200), default="")
    summary: Mapped[str | None] = mapped_column(Text, default=None)
    summarized_messages: Mapped[int] = mapped_column(default=0)


class Message(IdMixin, Base):
    """One turn of a conversation: the user's message or the agent's answer with its tool calls and citations."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_created", "conversation_id", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    tool_calls: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    usage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RunOwner(IdMixin, Base):
    """A process that executes runs. It refreshes `heartbeat_at` while it lives; the runs it started name it as
    their owner, so that other processes can end them when it dies (see `runtime/owners.py`)."""

    __tablename__ = "run_owners"

    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(IdMixin, Base):
    """One execution of an agent on one message; lives on when the client that started it goes away."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_tenant_created", "tenant_id", "created_at"), Index("ix_runs_status", "status"))

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), default=None)
    # The agent's version the run used (None: its draft).
    agent_version: Mapped[int | None] = mapped_column(default=None)
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), default=None
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.QUEUED)
    input: Mapped[str] = mapped_column(Text, default="")
    final_answer: Mapped[str | None] = mapped_column(Text, default=None)
    error_code: Mapped[str | None] = mapped_column(String(40), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    usage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # The process executing the run (a `RunOwner`; no foreign key: owners come and go, runs stay).
    owner_id: Mapped[uuid.UUID | None] = mapped_column(default=None)


class RunEvent(Base):
    """The append-only log of a run: `seq` counts from 1 without gaps, so a client resumes after the last it saw."""

    __tablename__ = "run_events"
    __table_args__ = (UniqueConstraint("run_id", "seq", name="uq_run_events_run_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    seq: Mapped[int]
    type: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AttachmentKind(StrEnum):
    DOCUMENT = "document"
    IMAGE = "image"


class Attachment(IdMixin, Base):
    """A file a user attached to a chat message: uploaded first (`conversation_id` None), then bound to the user
    message of the run that sent it. Its bytes are in object storage (`storage_key`); it goes with the conversation."""

    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_tenant_conversation", "tenant_id", "conversation_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), default=None
    )
    # The user message that carries it (no foreign key: the message is written by the run's batch).
    message_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(32))
    size: Mapped[int]
    storage_key: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
