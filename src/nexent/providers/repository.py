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

    async def everything(self) -> list[ModelConfig]:
        """Every model of the tenant, oldest first."""
        rows = await self.session.scalars(self.select().order_by(ModelConfig.created_at, ModelConfig.id))
        return list(rows)

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

    async def series(
        self,
        *,
        interval: str,
        since: datetime,
        until: datetime,
        model_id: uuid.UUID | None,
        agent_id: uuid.UUID | None,
    ) -> list[dict[str, Any]]:
        """Sums per UTC hour or day (`bucket`: 'YYYY-MM-DD HH:00:00'), only buckets with calls. The p95 latency is
        the nearest-rank 95th percentile, found with window functions so that SQLite and PostgreSQL agree."""
        bucket = _bucket_start(self.session.get_bind().dialect.name, interval, UsageRecord.created_at)
        conditions: list[Any] = [
            UsageRecord.tenant_id == self.tenant_id,
            UsageRecord.created_at >= since,
            UsageRecord.created_at < until,
        ]
        if model_id is not None:
            conditions.append(UsageRecord.model_config_id == model_id)
        if agent_id is not None:
            conditions.append(UsageRecord.agent_id == agent_id)
        ranked = (
            select(
                bucket.label("bucket"),
                UsageRecord.ok,
                UsageRecord.prompt_tokens,
                UsageRecord.completion_tokens,
                UsageRecord.latency_ms,
                UsageRecord.ttft_ms,
                func.row_number().over(partition_by=bucket, order_by=UsageRecord.latency_ms).label("latency_rank"),
                func.count().over(partition_by=bucket).label("bucket_calls"),
            )
            .where(*conditions)
            .subquery()
        )
        r = ranked.c
        # Nearest rank: the smallest rank k with k >= 0.95 n, in integers (no division, no ceil: SQLite has neither).
        at_p95 = case((r.latency_rank * 100 >= r.bucket_calls * 95, r.latency_ms))
        rows = await self.session.execute(
            select(
                r.bucket,
                func.count().label("calls"),
                func.sum(case((r.ok.is_(False), 1), else_=0)).label("errors"),
                func.coalesce(func.sum(r.prompt_tokens), 0).label("prompt_tokens"),
                func.coalesce(func.sum(r.completion_tokens), 0).label("completion_tokens"),
                func.avg(r.latency_ms).label("avg_latency_ms"),
                func.min(at_p95).label("p95_latency_ms"),
                func.max(r.latency_ms).label("max_latency_ms"),
                func.avg(r.ttft_ms).label("avg_ttft_ms"),
            )
            .group_by(r.bucket)
            .order_by(r.bucket)
        )
        return [dict(row._mapping) for row in rows]


def _bucket_start(dialect: str, interval: str, column: Any) -> Any:
    """The UTC hour or day a timestamp falls in, as text 'YYYY-MM-DD HH:00:00' on either engine."""
    if dialect == "postgresql":
        pattern = "YYYY-MM-DD HH24:00:00" if interval == "hour" else "YYYY-MM-DD 00:00:00"
        return func.to_char(func.timezone("UTC", column), pattern)
    # SQLite keeps UTC timestamps as naive ISO text.
    return func.strftime("%Y-%m-%d %H:00:00" if interval == "hour" else "%Y-%m-%d 00:00:00", column)
