"""The only module that queries memory's tables; every query is limited to the caller's tenant."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.repository import TenantScopedRepository
from nexent.memory.models import (
    PERSONAL_LEVELS,
    Memory,
    MemoryAgentSettings,
    MemoryIndex,
    MemoryLevel,
    MemoryUserSettings,
)


def readable_by(user_id: uuid.UUID) -> ColumnElement[bool]:
    """The memories a member reads: their own personal ones, and the tenant's and agents' (never another user's)."""
    return or_(
        and_(Memory.level.in_([level.value for level in PERSONAL_LEVELS]), Memory.user_id == user_id),
        Memory.level.in_([MemoryLevel.TENANT.value, MemoryLevel.AGENT.value]),
    )


def editable_by(user_id: uuid.UUID, *, manager: bool) -> ColumnElement[bool]:
    """The memories a member changes: their own, and (managers) the tenant's and agents'."""
    own = and_(Memory.level.in_([level.value for level in PERSONAL_LEVELS]), Memory.user_id == user_id)
    shared = Memory.level.in_([MemoryLevel.TENANT.value, MemoryLevel.AGENT.value]) if manager else false()
    return or_(own, shared)


class MemoryRepository(TenantScopedRepository[Memory]):
    model = Memory

    async def get_checked_memory(
        self, memory_id: uuid.UUID, *, where: ColumnElement[bool], flag: ColumnElement[bool]
    ) -> tuple[Memory, bool] | None:
        return await self.get_checked(memory_id, where=where, flag=flag)

    async def page(
        self,
        *,
        where: ColumnElement[bool],
        flag: ColumnElement[bool],
        level: MemoryLevel | None,
        agent_id: uuid.UUID | None,
        ids: Collection[uuid.UUID] | None,
        limit: int,
        offset: int,
    ) -> tuple[list[tuple[Memory, bool]], int]:
        conditions: list[ColumnElement[bool]] = [where]
        if level is not None:
            conditions.append(Memory.level == level.value)
        if agent_id is not None:
            conditions.append(Memory.agent_id == agent_id)
        if ids is not None:
            conditions.append(Memory.id.in_(list(ids)) if ids else false())
        query = (
            self.select()
            .add_columns(flag.label("flag"))
            .where(*conditions)
            .order_by(Memory.updated_at.desc(), Memory.id)
        )
        if ids is None:
            query = query.limit(limit).offset(offset)
        rows = await self.session.execute(query)
        return [(row, bool(flagged)) for row, flagged in rows], await self.count(*conditions)

    async def of_ids(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Memory]:
        if not ids:
            return {}
        rows = await self.session.scalars(self.select().where(Memory.id.in_(list(ids))))
        return {row.id: row for row in rows}

    async def all_ids_after(self, after: uuid.UUID | None, limit: int) -> Sequence[Memory]:
        """The tenant's memories by id, `limit` at a time (re-embedding)."""
        query = self.select().order_by(Memory.id).limit(limit)
        if after is not None:
            query = query.where(Memory.id > after)
        return list(await self.session.scalars(query))

    async def mark_model(self, model_id: uuid.UUID | None) -> None:
        """Every memory of the tenant is now embedded with `model_id` (after a re-embedding)."""
        await self.session.execute(
            update(Memory).where(Memory.tenant_id == self.tenant_id).values(embedding_model_id=model_id)
        )

    async def count_all(self) -> int:
        return await self.count(true())


class MemorySettingsRepository:
    """The switches and the index record of one tenant."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def index(self, *, for_update: bool = False) -> MemoryIndex | None:
        query = select(MemoryIndex).where(MemoryIndex.tenant_id == self.tenant_id)
        if for_update:
            query = query.with_for_update()
        result: MemoryIndex | None = await self.session.scalar(query)
        return result

    async def add_index(self, index: MemoryIndex) -> None:
        if index.tenant_id != self.tenant_id:
            raise ValueError("refusing to write a row of another tenant")
        self.session.add(index)
        await self.session.flush()

    async def user_settings(self, user_id: uuid.UUID) -> MemoryUserSettings | None:
        result: MemoryUserSettings | None = await self.session.scalar(
            select(MemoryUserSettings).where(
                MemoryUserSettings.tenant_id == self.tenant_id, MemoryUserSettings.user_id == user_id
            )
        )
        return result

    async def user_settings_or_new(self, user_id: uuid.UUID) -> MemoryUserSettings:
        found = await self.user_settings(user_id)
        if found is None:
            found = MemoryUserSettings(
                tenant_id=self.tenant_id, user_id=user_id, disabled_levels=[], disabled_agent_ids=[]
            )
            self.session.add(found)
        return found

    async def agent_setting(self, agent_id: uuid.UUID) -> MemoryAgentSettings | None:
        result: MemoryAgentSettings | None = await self.session.scalar(
            select(MemoryAgentSettings).where(
                MemoryAgentSettings.tenant_id == self.tenant_id, MemoryAgentSettings.agent_id == agent_id
            )
        )
        return result

    async def agents_turned_off(self) -> list[uuid.UUID]:
        rows = await self.session.scalars(
            select(MemoryAgentSettings.agent_id).where(
                MemoryAgentSettings.tenant_id == self.tenant_id, MemoryAgentSettings.enabled.is_(False)
            )
        )
        return list(rows)

    async def set_agent(self, agent_id: uuid.UUID, enabled: bool) -> MemoryAgentSettings:
        found = await self.agent_setting(agent_id)
        if found is None:
            found = MemoryAgentSettings(tenant_id=self.tenant_id, agent_id=agent_id, enabled=enabled)
            self.session.add(found)
        found.enabled = enabled
        await self.session.flush()
        return found

    async def switches(
        self, user_id: uuid.UUID, agent_id: uuid.UUID | None
    ) -> tuple[MemoryIndex | None, MemoryUserSettings | None, bool]:
        """For a run, in one query: the tenant's index, the user's switches and whether the agent's memory is on."""
        agent_on: ColumnElement[Any] = (
            select(MemoryAgentSettings.enabled)
            .where(MemoryAgentSettings.tenant_id == self.tenant_id, MemoryAgentSettings.agent_id == agent_id)
            .limit(1)
            .scalar_subquery()
            if agent_id is not None
            else true()
        )
        query = (
            select(MemoryIndex, MemoryUserSettings, agent_on.label("agent_on"))
            .select_from(MemoryIndex)
            .outerjoin(
                MemoryUserSettings,
                and_(MemoryUserSettings.tenant_id == MemoryIndex.tenant_id, MemoryUserSettings.user_id == user_id),
            )
            .where(MemoryIndex.tenant_id == self.tenant_id)
        )
        row = (await self.session.execute(query)).first()
        if row is None:  # no memory index yet: nothing to recall
            return None, None, True
        index, settings, on = row
        return index, settings, on is None or bool(on)
