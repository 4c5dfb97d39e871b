"""Request and response shapes of runs and conversations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from nexent.agents.schemas import VersionRef
from nexent.runtime.event_types import Usage
from nexent.runtime.models import AttachmentKind, RunStatus

MAX_ATTACHMENTS = 10


class AttachmentRead(BaseModel):
    """A file attached to a chat message (`conversation_id` and `message_id` None until a run sends it)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    content_type: str = Field(description="The type it is downloaded with.")
    kind: AttachmentKind
    format: str = Field(description="The knowledge format it was read as (`pdf`, `docx`, `png`, ...).")
    size: int = Field(description="Bytes.")
    conversation_id: uuid.UUID | None
    message_id: uuid.UUID | None
    created_at: datetime


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    conversation_id: uuid.UUID | None = Field(default=None, description="Continue this conversation; else a new one.")
    version: VersionRef | None = Field(
        default=None,
        description="The agent's version to run, or `draft` (for those who may edit it). Default: the published "
        "version; the draft for editors while the agent has none.",
    )
    attachment_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=MAX_ATTACHMENTS,
        description="Files uploaded with `POST /api/attachments` that this message carries (not sent before).",
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
    attachments: list[AttachmentRead] = Field(default_factory=list, description="Files a user message carries.")


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


class ToolCallTiming(BaseModel):
    """A tool call of a run's timeline: from its `tool.call` (or `code`) event to its `tool.result`."""

    call_id: str
    kind: Literal["tool", "code"] = Field(description="`code`: a code agent's code step.")
    name: str
    arguments: Any = None
    output: Any = None
    error: str | None = None
    started_at: datetime
    finished_at: datetime | None = Field(default=None, description="None: no result yet.")
    duration: float | None = Field(default=None, description="Seconds from the call to its result.")


class ModelCallTiming(BaseModel):
    """The model call that opens a step: from the step's start until the model asked for its first tool call (or,
    without one, the step's end), with the step's tokens."""

    started_at: datetime
    finished_at: datetime
    duration: float = Field(description="Seconds.")
    usage: Usage | None = None


class TimelineStep(BaseModel):
    """A step of one agent of the run (`agent` and `parent_call_id` as in the run's events)."""

    agent: str | None
    parent_call_id: str | None
    kind: Literal["action", "planning"]
    step: int | None
    started_at: datetime
    finished_at: datetime
    duration: float = Field(description="Seconds.")
    usage: Usage | None = None
    error: str | None = None
    is_final_answer: bool | None = None
    model_call: ModelCallTiming
    tool_calls: list[ToolCallTiming]


class RunTimeline(BaseModel):
    """Where a run's time went: its steps in the order they ended, each with its model call and tool calls."""

    run_id: uuid.UUID
    started_at: datetime | None
    finished_at: datetime | None = Field(description="None: the run is still going on.")
    steps: list[TimelineStep]
    open_tool_calls: list[ToolCallTiming] = Field(description="Calls of steps still under way.")
