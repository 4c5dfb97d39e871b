"""Tenants, created and managed by the operator (and by sign-up); a new tenant runs identity's tenant-created
hooks (`identity/hooks.py`)."""

from __future__ import annotations

import re
import secrets
import unicodedata
import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.errors import Conflict, NotFound
from nexent.core.pagination import Page, PageParams
from nexent.identity.auth import Operator
from nexent.identity.hooks import tenant_created
from nexent.identity.models import Tenant, TenantStatus
from nexent.identity.repository import TenantRepository, record_platform_audit
from nexent.identity.schemas import TenantCreate, TenantRead, TenantUpdate
from nexent.identity.services.audit import audit_event
from nexent.settings import Settings


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
    def __init__(self, session: AsyncSession, settings: Settings, operator: Operator | None = None) -> None:
        self.session = session
        self.settings = settings
        self.repository = TenantRepository(session)
        self.operator = operator

    async def create(self, data: TenantCreate) -> TenantRead:
        tenant = await self.create_tenant(data.name, data.slug)
        await self._audit("tenant.created", tenant, name=tenant.name, slug=tenant.slug)
        return TenantRead.model_validate(tenant)

    async def create_tenant(self, name: str, slug: str | None = None) -> Tenant:
        """Insert a tenant with a free slug (derived from the name unless given)."""
        chosen = slug or await self._free_slug(slugify(name))
        if slug and await self.repository.slug_exists(slug):
            raise SlugTaken(f"The slug {slug!r} is already used by another tenant.")
        try:
            async with self.session.begin_nested():
                tenant = await self.repository.add(Tenant(name=name, slug=chosen, status=TenantStatus.ACTIVE))
        except IntegrityError:
            raise SlugTaken(f"The slug {chosen!r} is already used by another tenant.") from None
        await tenant_created(self.session, self.settings, tenant.id)
        return tenant

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
        tenants, total = await self.repository.list_page(
            status=status, query=query, limit=page.limit, offset=page.offset
        )
        return Page[TenantRead](
            items=[TenantRead.model_validate(t) for t in tenants], total=total, limit=page.limit, offset=page.offset
        )

    async def update(self, tenant_id: uuid.UUID, data: TenantUpdate) -> TenantRead:
        tenant = await self._get(tenant_id)
        changes = data.model_dump(exclude_none=True)
        for field, value in changes.items():
            setattr(tenant, field, value)
        await self.session.flush()
        await self._audit("tenant.updated", tenant, **changes)
        return TenantRead.model_validate(tenant)

    async def _audit(self, action: str, tenant: Tenant, **details: Any) -> None:
        await record_platform_audit(
            self.session,
            audit_event(
                action,
                "tenant",
                tenant.id,
                tenant_id=tenant.id,
                actor_user_id=self.operator.user_id if self.operator else None,
                details={**details, "by": "operator"},
            ),
        )
