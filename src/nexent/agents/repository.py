"""Agent queries, always within one tenant."""

from __future__ import annotations

import functools
import uuid

from sqlalchemy import Select, bindparam, func, select

from nexent.agents.models import Agent
from nexent.core.repository import TenantScopedRepository
from nexent.providers.models import ModelConfig, ModelEndpoint


@functools.cache
def _with_model() -> Select[Agent, ModelConfig, ModelEndpoint]:
    """An agent with its model and the model's endpoints in one round trip: starting a run reads them all, and one
    query instead of three measurably lowered the CPU per run (commit 62ee28c). Built once, on first use: the
    foreign-key columns get their types only once every table is mapped."""
    return (
        select(Agent, ModelConfig, ModelEndpoint)
        .outerjoin(ModelConfig, (ModelConfig.id == Agent.model_id) & (ModelConfig.tenant_id == Agent.tenant_id))
        .outerjoin(
            ModelEndpoint,
            (ModelEndpoint.model_config_id == ModelConfig.id) & (ModelEndpoint.tenant_id == ModelConfig.tenant_id),
        )
        .where(Agent.tenant_id == bindparam("tenant_id"), Agent.id == bindparam("agent_id"))
        .order_by(ModelEndpoint.position, ModelEndpoint.created_at)
    )


class AgentRepository(TenantScopedRepository[Agent]):
    model = Agent

    async def with_model(self, agent_id: uuid.UUID) -> tuple[Agent, ModelConfig | None, list[ModelEndpoint]] | None:
        """The agent, its model (None when it names none or the model is gone) and the model's endpoints in order."""
        rows = (await self.session.execute(_with_model(), {"tenant_id": self.tenant_id, "agent_id": agent_id})).all()
        if not rows:
            return None
        return rows[0][0], rows[0][1], [endpoint for _, _, endpoint in rows if endpoint is not None]

    async def name_taken(self, name: str, *, except_id: uuid.UUID | None = None) -> bool:
        conditions = [func.lower(Agent.name) == name.lower()]
        if except_id is not None:
            conditions.append(Agent.id != except_id)
        return await self.count(*conditions) > 0

    async def sub_agent_graph(self) -> dict[uuid.UUID, list[uuid.UUID]]:
        """Every agent of the tenant and the sub-agents it calls."""
        rows = await self.session.execute(self.select().with_only_columns(Agent.id, Agent.sub_agent_ids))
        return {agent_id: [uuid.UUID(s) for s in subs or []] for agent_id, subs in rows}
