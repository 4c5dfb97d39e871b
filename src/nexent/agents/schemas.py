"""Request and response shapes of agent drafts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from nexent.agents.models import AgentType
from nexent.core.schemas import Patch

AgentName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=80, pattern=r"^[^\x00-\x1f]+$"),
]
LongText = Annotated[str, StringConstraints(max_length=20_000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class Example(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    answer: Annotated[str, StringConstraints(min_length=1, max_length=8000)]


class Instructions(BaseModel):
    """What the agent is told: its duty, its limits, and example exchanges (few-shot)."""

    model_config = ConfigDict(extra="forbid")

    duty: LongText = ""
    constraints: LongText = ""
    examples: list[Example] = Field(default_factory=list, max_length=20)


class ToolUse(BaseModel):
    """A tool the agent may call, with its settings for this agent."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    settings: dict[str, Any] = Field(default_factory=dict)


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: AgentName
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    instructions: Instructions = Field(default_factory=Instructions)
    model_id: uuid.UUID | None = Field(default=None, description="An LLM of the tenant; default: the tenant default.")
    agent_type: AgentType = AgentType.TOOL_CALLING
    tools: list[ToolUse] = Field(default_factory=list, max_length=50)
    sub_agent_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)
    knowledge_base_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=20, description="Knowledge bases the agent searches (knowledge_base_search)."
    )
    max_steps: int = Field(default=10, ge=1, le=50)
    greeting: Annotated[str, StringConstraints(max_length=2000)] = ""
    example_questions: list[ShortText] = Field(default_factory=list, max_length=10)


class AgentUpdate(Patch):
    nullable = frozenset({"model_id", "instructions"})  # the tenant's default model; no instructions

    name: AgentName | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    instructions: Instructions | None = None
    model_id: uuid.UUID | None = None
    agent_type: AgentType | None = None
    tools: list[ToolUse] | None = Field(default=None, max_length=50)
    sub_agent_ids: list[uuid.UUID] | None = Field(default=None, max_length=20)
    knowledge_base_ids: list[uuid.UUID] | None = Field(default=None, max_length=20)
    max_steps: int | None = Field(default=None, ge=1, le=50)
    greeting: Annotated[str, StringConstraints(max_length=2000)] | None = None
    example_questions: list[ShortText] | None = Field(default=None, max_length=10)


class AgentRead(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    instructions: Instructions
    model_id: uuid.UUID | None
    agent_type: AgentType
    tools: list[ToolUse]
    sub_agent_ids: list[uuid.UUID]
    knowledge_base_ids: list[uuid.UUID]
    max_steps: int
    greeting: str
    example_questions: list[str]
    can_edit: bool = Field(description="Whether the caller may change this agent.")
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class ToolRead(BaseModel):
    """A tool an agent may be given, as the catalog describes it."""

    name: str = Field(description="What an agent's `tools` entry names.")
    description: str = Field(description="What the tool does (the model reads it too).")
    parameters: dict[str, Any] = Field(
        description="JSON schema of the arguments the model passes (the OpenAI function-tool `parameters`)."
    )
    settings_schema: dict[str, Any] = Field(
        description="JSON schema of the per-agent `settings` an agent's `tools` entry accepts."
    )
    managed_settings: list[str] = Field(
        description="Settings the platform fills in from the agent itself (e.g. `knowledge_base_ids` from the "
        "agent's knowledge bases); whatever an entry gives for them is replaced."
    )
