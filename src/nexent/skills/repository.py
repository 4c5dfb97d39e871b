"""Skill queries, always within one tenant."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import ColumnElement, func, select

from nexent.core.repository import TenantScopedRepository
from nexent.skills.models import Skill, SkillVersion


class SkillRepository(TenantScopedRepository[Skill]):
    model = Skill

    async def name_taken(self, name: str, *, except_id: uuid.UUID | None = None) -> bool:
        conditions = [func.lower(Skill.name) == name.lower()]
        if except_id is not None:
            conditions.append(Skill.id != except_id)
        return await self.count(*conditions) > 0

    async def matching(self, skill_ids: Collection[uuid.UUID], where: ColumnElement[bool]) -> list[Skill]:
        """Those of `skill_ids` that are skills of this tenant meeting `where`."""
        if not skill_ids:
            return []
        rows = await self.session.scalars(self.select().where(Skill.id.in_(sorted(set(skill_ids))), where))
        return list(rows)

    async def by_names(self, names: Collection[str], where: ColumnElement[bool]) -> list[Skill]:
        if not names:
            return []
        rows = await self.session.scalars(self.select().where(Skill.name.in_(sorted(set(names))), where))
        return list(rows)


class SkillVersionRepository(TenantScopedRepository[SkillVersion]):
    model = SkillVersion

    async def of_skill(self, skill_id: uuid.UUID) -> list[SkillVersion]:
        """Every version of the skill, newest first."""
        rows = await self.session.scalars(
            self.select().where(SkillVersion.skill_id == skill_id).order_by(SkillVersion.number.desc())
        )
        return list(rows)

    async def number(self, skill_id: uuid.UUID, number: int) -> SkillVersion | None:
        found: SkillVersion | None = await self.session.scalar(
            self.select().where(SkillVersion.skill_id == skill_id, SkillVersion.number == number)
        )
        return found

    async def pinned(self, pins: Collection[tuple[uuid.UUID, int]]) -> list[SkillVersion]:
        """The versions named by (skill, number) pairs that exist in this tenant."""
        if not pins:
            return []
        skill_ids = sorted({skill_id for skill_id, _ in pins})
        rows = await self.session.scalars(self.select().where(SkillVersion.skill_id.in_(skill_ids)))
        wanted = set(pins)
        return [row for row in rows if (row.skill_id, row.number) in wanted]

    async def last_number(self, skill_id: uuid.UUID) -> int:
        query = select(func.max(SkillVersion.number)).where(
            SkillVersion.tenant_id == self.tenant_id, SkillVersion.skill_id == skill_id
        )
        return int(await self.session.scalar(query) or 0)
