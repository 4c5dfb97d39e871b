"""Base of every repository over tenant-owned rows: it is built with the caller's tenant and adds the tenant
condition to every query it runs, so a domain cannot forget it."""

from __future__ import annotations

import uuid
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession


class TenantOwned(Protocol):
    id: Any
    tenant_id: Any


M = TypeVar("M", bound=TenantOwned)


class TenantScopedRepository(Generic[M]):
    """Queries on `model`, limited to the rows of one tenant."""

    model: type[M]

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    @property
    def _tenant_column(self) -> Any:
        return self.model.tenant_id

    @property
    def _id_column(self) -> Any:
        return self.model.id

    def select(self) -> Select[Any]:
        """`SELECT model WHERE tenant_id = :tenant`; every read starts here."""
        return select(self.model).where(self._tenant_column == self.tenant_id)

    async def get(self, item_id: uuid.UUID) -> M | None:
        result: M | None = await self.session.scalar(self.select().where(self._id_column == item_id))
        return result

    async def get_checked(
        self, item_id: uuid.UUID, *, where: ColumnElement[bool], flag: ColumnElement[bool]
    ) -> tuple[M, bool] | None:
        """The row if it also meets `where`, and whether it meets `flag`, in one query (identity's `ResourceAccess`
        gives a shared resource's read and edit conditions in this form)."""
        row = (
            await self.session.execute(
                self.select().add_columns(flag.label("flag")).where(self._id_column == item_id, where)
            )
        ).first()
        return None if row is None else (row[0], bool(row[1]))

    async def page_checked(
        self,
        *,
        where: ColumnElement[bool],
        flag: ColumnElement[bool],
        name_contains: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[tuple[M, bool]], int]:
        """A page of the rows meeting `where` (and whose `name` contains `name_contains`), by name, each with whether
        it meets `flag`, and the total: `get_checked` for lists."""
        conditions: list[ColumnElement[bool]] = [where]
        name = self.model.name  # type: ignore[attr-defined]
        if name_contains:
            conditions.append(name.icontains(name_contains, autoescape=True))
        rows = await self.session.execute(
            self.select()
            .add_columns(flag.label("flag"))
            .where(*conditions)
            .order_by(name, self._id_column)
            .limit(limit)
            .offset(offset)
        )
        return [(row, bool(flagged)) for row, flagged in rows], await self.count(*conditions)

    async def count(self, *conditions: Any) -> int:
        query = select(func.count()).select_from(self.model).where(self._tenant_column == self.tenant_id, *conditions)
        return int(await self.session.scalar(query) or 0)

    async def add(self, item: M) -> M:
        if item.tenant_id is None:
            item.tenant_id = self.tenant_id
        if item.tenant_id != self.tenant_id:
            raise ValueError("refusing to write a row of another tenant")
        self.session.add(item)
        await self.session.flush()
        return item

    async def delete(self, item: M) -> None:
        if item.tenant_id != self.tenant_id:
            raise ValueError("refusing to delete a row of another tenant")
        await self.session.delete(item)
        await self.session.flush()
