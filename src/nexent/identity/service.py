"""Tenant administration by the platform operator."""

from __future__ import annotations

import re
import secrets
import unicodedata
import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.errors import Conflict, NotFound
from nexent.core.pagination import Page, PageParams
from nexent.identity.models import Tenant, TenantStatus
from nexent.identity.repository import TenantRepository
from nexent.identity.schemas import TenantCreate, TenantRead, TenantUpdate


class TenantNotFound(NotFound):
    code = "tenant_not_found"


class SlugTaken(Conflict):
    code = "slug_taken"


def slugify(name: str) -> str:
    """A URL-safe slug from a display name; names with no latin letters or digits get a random one."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:50].strip("-")
    if len(slug) < 3:
        slug = f"tenant-{secrets.token_hex(4)}"
    return slug


class TenantService:
    def __init__(self, session: AsyncSession) -> None:
        self.repository = TenantRepository(session)
        self.session = session

    async def create(self, data: TenantCreate) -> TenantRead:
        slug = data.slug or await self._free_slug(slugify(data.name))
        if data.slug and await self.repository.slug_exists(slug):
            raise SlugTaken(f"The slug {slug!r} is already used by another tenant.")
        try:
            async with self.session.begin_nested():
                tenant = await self.repository.add(Tenant(name=data.name, slug=slug, status=TenantStatus.ACTIVE))
        except IntegrityError:
            raise SlugTaken(f"The slug {slug!r} is already used by another tenant.") from None
        return TenantRead.model_validate(tenant)

    async def _free_slug(self, base: str) -> str:
        slug = base
        while await self.repository.slug_exists(slug):
            slug = f"{base}-{secrets.token_hex(2)}"
        return slug

    async def get(self, tenant_id: uuid.UUID) -> TenantRead:
        return TenantRead.model_validate(await self._get(tenant_id))

    async def _get(self, tenant_id: uuid.UUID) -> Tenant:
        tenant = await self.repository.get(tenant_id)
        if tenant is None:
            raise TenantNotFound(f"No tenant {tenant_id}.")
        return tenant

    async def list(self, page: PageParams, *, status: TenantStatus | None, query: str | None) -> Page[TenantRead]:
        tenants, total = await self.repository.list(status=status, query=query, limit=page.limit, offset=page.offset)
        return Page[TenantRead](
            items=[TenantRead.model_validate(t) for t in tenants],
            total=total,
            limit=page.limit,
            offset=page.offset,
        )

    async def update(self, tenant_id: uuid.UUID, data: TenantUpdate) -> TenantRead:
        tenant = await self._get(tenant_id)
        if data.name is not None:
            tenant.name = data.name
        if data.status is not None:
            tenant.status = data.status
        await self.session.flush()
        return TenantRead.model_validate(tenant)
