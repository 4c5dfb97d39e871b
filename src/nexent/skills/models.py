"""Skills: a folder with a `SKILL.md` (instructions an agent loads on demand) and its scripts and reference files,
kept as immutable numbered versions. The rows hold the metadata; the files live in object storage under
`skills/<tenant>/<skill>/<version>/` (see `service.storage_key`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nexent.core.db import Base, IdMixin, TimestampMixin, utcnow


class Skill(IdMixin, TimestampMixin, Base):
    """A skill of a tenant: its name and description are those of its newest version's `SKILL.md`."""

    __tablename__ = "skills"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_skills_tenant_name"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    latest_version: Mapped[int] = mapped_column(default=1)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)


class SkillVersion(IdMixin, Base):
    """One immutable version of a skill: its manifest, its instructions and the list of its files."""

    __tablename__ = "skill_versions"
    __table_args__ = (UniqueConstraint("skill_id", "number", name="uq_skill_versions_skill_number"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    skill_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    # The front matter's other fields: `allowed_tools`, `network`, and `extra` (whatever else it holds).
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    body: Mapped[str] = mapped_column(Text, default="")
    # [{"path": ..., "size": ...}] by path.
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    total_bytes: Mapped[int] = mapped_column(default=0)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
