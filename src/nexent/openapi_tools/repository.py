"""The only place that queries OpenAPI imports."""

from __future__ import annotations

from nexent.core.repository import TenantScopedRepository
from nexent.openapi_tools.models import OpenAPISource


class OpenAPISourceRepository(TenantScopedRepository[OpenAPISource]):
    model = OpenAPISource

    async def page(self, *, limit: int, offset: int) -> tuple[list[OpenAPISource], int]:
        rows = await self.session.scalars(
            self.select().order_by(OpenAPISource.name, OpenAPISource.id).limit(limit).offset(offset)
        )
        return list(rows), await self.count()

    async def all(self) -> list[OpenAPISource]:
        return list(await self.session.scalars(self.select().order_by(OpenAPISource.name)))

    async def by_name(self, name: str) -> OpenAPISource | None:
        found: OpenAPISource | None = await self.session.scalar(self.select().where(OpenAPISource.name == name))
        return found
