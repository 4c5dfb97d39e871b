"""Memory API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from nexent.memory.models import MemoryLevel

MAX_MEMORY_CHARS = 2000

MemoryText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MEMORY_CHARS)]


class MemoryRead(BaseModel):
    id: uuid.UUID
    level: MemoryLevel
    agent_id: uuid.UUID | None
    user_id: uuid.UUID | None
    text: str
    source_run_id: uuid.UUID | None
    source_conversation_id: uuid.UUID | None
    embedding_model_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    can_edit: bool = Field(description="Whether the caller may change and delete it.")
    score: float | None = Field(default=None, description="Relevance to `q`, when the list was searched.")


class MemoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: MemoryLevel = MemoryLevel.USER
    agent_id: uuid.UUID | None = Field(default=None, description="Required for the `agent` and `user_agent` levels.")
    text: MemoryText


class MemoryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: MemoryText


class MemoryLevels(BaseModel):
    """Which levels the caller's runs recall from and extract into (true: on)."""

    model_config = ConfigDict(extra="forbid")

    tenant: bool = True
    agent: bool = True
    user: bool = True
    user_agent: bool = True


class MemorySettingsRead(BaseModel):
    enabled: bool = Field(description="Whether the platform has memory turned on at all (`NEXENT_MEMORY_ENABLED`).")
    levels: MemoryLevels
    disabled_agent_ids: list[uuid.UUID] = Field(description="Agents whose runs with this user use no memory.")
    agents_turned_off: list[uuid.UUID] = Field(description="Agents whose memory a manager turned off for everyone.")


class MemorySettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    levels: MemoryLevels | None = None
    disabled_agent_ids: list[uuid.UUID] | None = Field(default=None, max_length=1000)


class AgentMemorySetting(BaseModel):
    agent_id: uuid.UUID
    enabled: bool


class AgentMemorySettingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


class RecalledMemory(BaseModel):
    id: str
    level: MemoryLevel
    text: str
