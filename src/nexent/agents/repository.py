"""Agent queries, always within one tenant."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, func

from nexent.agents.models import Agent
from nexent.core.repository import TenantScopedRepository


class AgentRepository(TenantScopedRepository[Agent]):
    model = Agent

    async def list_page(
        self,
        *,
        readable: ColumnElement[bool],
        editable: ColumnElement[bool],
        query: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[tuple[Agent, bool]], int]:
        """A page of the agents meeting `readable`, each with whether it meets `editable` (the caller's rights, from
        identity's `ResourceAccess`)."""
        conditions: list[ColumnElement[bool]] = [readable]
        if query:
            conditions.append(Agent.name.icontains(query, autoescape=True))
        rows = await self.session.execute(
            self.select()
            .add_columns(editable.label("can_edit"))
            .where(*conditions)
            .order_by(Agent.name, Agent.id)
            .limit(limit)
            .offset(offset)
        )
        return [(agent, bool(can_edit)) for agent, can_edit in rows], await self.count(*conditions)

    async def name_taken(self, name: str, *, except_id: uuid.UUID | None = None) -> bool:
        conditions = [func.lower(Agent.name) == name.lower()]
        if except_id is not None:
            conditions.append(Agent.id != except_id)
        return await self.count(*conditions) > 0

    async def sub_agent_graph(self) -> dict[uuid.UUID, list[uuid.UUID]]:
        """Every agent of the tenant and the sub-agents it calls."""
        rows = await self.session.execute(self.select().with_only_columns(Agent.id, Agent.sub_agent_ids))
        return {agent_id: [uuid.UUID(s) for s in subs or []] for agent_id, subs in rows}
