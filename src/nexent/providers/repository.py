"""Queries on model configurations, their endpoints and usage; always within one tenant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, select, update

from nexent.core.repository import TenantScopedRepository
from nexent.providers.models import ModelConfig, ModelEndpoint, UsageRecord


class ModelRepository(TenantScopedRepository[ModelConfig]):
    model = ModelConfig

    async def list_page(self, *, kind: str | None, limit: int, offset: int) -> tuple[list[ModelConfig], int]:
        conditions = [ModelConfig.kind == kind] if kind else []
        rows = await self.session.scalars(
            self.select()
            .where(*conditions)
            .order_by(ModelConfig.created_at, ModelConfig.id)
            .limit(limit)
            .offset(offset)
        )
        return list(rows), await self.count(*conditions)

    async def default_of(self, kind: str) -> ModelConfig | None:
        result: ModelConfig | None = await self.session.scalar(
            self.select().where(ModelConfig.kind == kind, ModelConfig.is_default.is_(True))
        )
        return result

    async def count_of_kind(self, kind: str) -> int:
        return await self.count(ModelConfig.kind == kind)

    async def clear_default(self, kind: str) -> None:
        await self.session.execute(
            update(ModelConfig)
            .where(ModelConfig.tenant_id == self.tenant_id, ModelConfig.kind == kind)
            .values(is_default=False)
        )

    async def first_of_kind(self, kind: str, *, except_id: uuid.UUID) -> ModelConfig | None:
        result: ModelConfig | None = await self.session.scalar(
            self.select().where(ModelConfig.kind == kind, ModelConfig.id != except_id).order_by(ModelConfig.created_at)
        )
        return result


class EndpointRepository(TenantScopedRepository[ModelEndpoint]):
    model = ModelEndpoint

    async def of_models(self, model_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[ModelEndpoint]]:
        endpoints: dict[uuid.UUID, list[ModelEndpoint]] = {model_id: [] for model_id in model_ids}
        if not model_ids:
            return endpoints
        rows = await self.session.scalars(
            self.select()
            .where(ModelEndpoint.model_config_id.in_(list(model_ids)))
            .order_by(ModelEndpoint.position, ModelEndpoint.created_at)
        )
        for endpoint in rows:
            endpoints[endpoint.model_config_id].append(endpoint)
        return endpoints

    async def replace(self, model_id: uuid.UUID, endpoints: list[ModelEndpoint]) -> None:
        await self.session.execute(
            delete(ModelEndpoint).where(
                ModelEndpoint.tenant_id == self.tenant_id, ModelEndpoint.model_config_id == model_id
            )
        )
        for position, endpoint in enumerate(endpoints):
            endpoint.position = position
            await self.add(endpoint)


class UsageRepository(TenantScopedRepository[UsageRecord]):
    model = UsageRecord

    async def summary(
        self, *, group_by: str, since: datetime | None, until: datetime | None, model_id: uuid.UUID | None
    ) -> list[dict[str, Any]]:
        key: Any = {
            "model": UsageRecord.model_config_id,
            "agent": UsageRecord.agent_id,
            "day": func.date(UsageRecord.created_at),
        }[group_by]
        conditions: list[Any] = [UsageRecord.tenant_id == self.tenant_id]
        if since is not None:
            conditions.append(UsageRecord.created_at >= since)
        if until is not None:
            conditions.append(UsageRecord.created_at < until)
        if model_id is not None:
            conditions.append(UsageRecord.model_config_id == model_id)
        rows = await self.session.execute(
            select(
                key.label("key"),
                func.count().label("calls"),
                func.sum(case((UsageRecord.ok.is_(False), 1), else_=0)).label("errors"),
                func.coalesce(func.sum(UsageRecord.prompt_tokens), 0).label("prompt_tokens"),
                func.coalesce(func.sum(UsageRecord.completion_tokens), 0).label("completion_tokens"),
                func.avg(UsageRecord.latency_ms).label("avg_latency_ms"),
                func.avg(UsageRecord.ttft_ms).label("avg_ttft_ms"),
            )
            .where(*conditions)
            .group_by(key)
            .order_by(key)
        )
        return [dict(row._mapping) for row in rows]
