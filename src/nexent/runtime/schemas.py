"""Request and response shapes of runs and conversations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from nexent.agents.schemas import VersionRef
from nexent.runtime.models import RunStatus


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    conversation_id: uuid.UUID | None = Field(default=None, description="Continue this conversation; else a new one.")
    version: VersionRef | None = Field(
        default=None,
        description="The agent's version to run, or `draft` (for those who may edit it). Default: the published "
        "version; the draft for editors while the agent has none.",
    )


class RunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    agent_id: uuid.UUID | None
    agent_version: int | None = Field(description="The agent's version the run used; None: its draft.")
    conversation_id: uuid.UUID | None
    status: RunStatus
    input: str
    final_answer: str | None
    error_code: str | None
    error_message: str | None
    usage: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    role: str
    content: str
    run_id: uuid.UUID | None
    tool_calls: list[dict[str, Any]]
    citations: list[dict[str, Any]]
    usage: dict[str, Any]
    created_at: datetime


class ConversationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    agent_id: uuid.UUID | None
    title: str
    created_at: datetime
    updated_at: datetime


class ConversationDetail(ConversationRead):
    messages: list[MessageRead]


class ConversationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
