"""The only queries on remote agents, each limited to one tenant."""

from __future__ import annotations

import uuid

from nexent.a2a_client.models import RemoteAgent
from nexent.core.repository import TenantScopedRepository


class RemoteAgentRepository(TenantScopedRepository[RemoteAgent]):
    model = RemoteAgent

    async def page(self, limit: int, offset: int) -> tuple[list[RemoteAgent], int]:
        rows = await self.session.scalars(self.select().order_by(RemoteAgent.name).limit(limit).offset(offset))
        return list(rows), await self.count()

    async def enabled(self) -> list[RemoteAgent]:
        rows = await self.session.scalars(self.select().where(RemoteAgent.enabled.is_(True)).order_by(RemoteAgent.name))
        return list(rows)

    async def name_taken(self, name: str, *, except_id: uuid.UUID | None = None) -> bool:
        query = self.select().where(RemoteAgent.name == name)
        if except_id is not None:
            query = query.where(RemoteAgent.id != except_id)
        return await self.session.scalar(query.limit(1)) is not None
