"""Tenant queries. Tenants are the root of tenancy, so only the platform operator reaches this repository."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.identity.models import Tenant


class TenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, tenant: Tenant) -> Tenant:
        self.session.add(tenant)
        await self.session.flush()
        return tenant

    async def get(self, tenant_id: uuid.UUID) -> Tenant | None:
        return await self.session.get(Tenant, tenant_id)

    async def slug_exists(self, slug: str) -> bool:
        return await self.session.scalar(select(func.count()).where(Tenant.slug == slug)) != 0

    async def list(self, *, status: str | None, query: str | None, limit: int, offset: int) -> tuple[list[Tenant], int]:
        conditions = []
        if status:
            conditions.append(Tenant.status == status)
        if query:
            conditions.append(
                Tenant.name.icontains(query, autoescape=True) | Tenant.slug.icontains(query, autoescape=True)
            )
        total = await self.session.scalar(select(func.count()).select_from(Tenant).where(*conditions))
        rows = await self.session.scalars(
            select(Tenant).where(*conditions).order_by(Tenant.created_at, Tenant.id).limit(limit).offset(offset)
        )
        return list(rows), int(total or 0)
