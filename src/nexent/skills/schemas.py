"""What the skill routes take and answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nexent.skills.archive import MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS


class SkillFileEntry(BaseModel):
    path: str
    size: int


class SkillRead(BaseModel):
    """A skill as a list shows it: its newest version's name and description, and whether the caller may change it."""

    id: uuid.UUID
    name: str
    description: str
    latest_version: int
    can_edit: bool
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class SkillDetail(SkillRead):
    """One version of a skill in full: its manifest, instructions and file tree."""

    version: int
    allowed_tools: list[str]
    network: bool
    extra: dict[str, Any] = Field(description="The front matter's other fields, as written.")
    body: str
    files: list[SkillFileEntry]


class SkillVersionRead(BaseModel):
    number: int
    name: str
    description: str
    note: str
    files: int
    total_bytes: int
    created_by: uuid.UUID | None
    created_at: datetime


class SkillFileRead(BaseModel):
    path: str
    version: int
    size: int
    content: str


class SkillFileWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(max_length=10 * 1024 * 1024, description="The file's new text (UTF-8).")
    note: str = Field(default="", max_length=500, description="What changed, kept with the new version.")


class SkillUpdate(BaseModel):
    """A change of `SKILL.md`'s fields; the fields left out keep their value. It makes a new version."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS)
    description: str | None = Field(default=None, min_length=1, max_length=MAX_DESCRIPTION_CHARS)
    allowed_tools: list[str] | None = Field(default=None, max_length=100)
    network: bool | None = None
    body: str | None = Field(default=None, max_length=1024 * 1024)
    note: str = Field(default="", max_length=500)


class SkillGenerateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=4000, description="What the skill should teach an agent.")
    model_id: uuid.UUID | None = Field(default=None, description="An LLM of the tenant; default: the tenant's.")


class SkillPin(BaseModel):
    """A skill an agent version uses, pinned to the version it had at publishing."""

    skill_id: uuid.UUID
    name: str
    version: int


# --- a SKILL.md drafted by a model (`skills/generation.py`) --------------------------------------------------------


class BaseSkillDraftEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str


class SkillDraftDelta(BaseSkillDraftEvent):
    """Text of the SKILL.md as the model writes it."""

    type: Literal["skill.delta"] = "skill.delta"
    delta: str


class SkillDraftProblem(BaseModel):
    code: str
    message: str
    field: str | None = None


class SkillDraftCompleted(BaseSkillDraftEvent):
    """The whole draft: `content` is the SKILL.md to edit and save (nothing is stored); `name` and `description`
    are its front matter's when it parses, else `problem` says what the editor must fix first."""

    type: Literal["skill.completed"] = "skill.completed"
    content: str
    name: str | None = None
    description: str | None = None
    problem: SkillDraftProblem | None = None


class SkillDraftFailed(BaseSkillDraftEvent):
    """The model failed (`code`: the provider's error code, `timeout`, `internal_error`); `content` is what came."""

    type: Literal["skill.failed"] = "skill.failed"
    code: str
    message: str
    content: str


SKILL_DRAFT_EVENTS: dict[str, type[BaseSkillDraftEvent]] = {
    "skill.delta": SkillDraftDelta,
    "skill.completed": SkillDraftCompleted,
    "skill.failed": SkillDraftFailed,
}
