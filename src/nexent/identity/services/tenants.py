"""Tenants, created and managed by the operator (and by sign-up); a new tenant runs identity's tenant-created
hooks (`identity/hooks.py`)."""

from __future__ import annotations

import re
import secrets
import time
import unicodedata
import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.errors import Conflict, NotFound
from nexent.core.netpolicy import AddressPolicy
from nexent.core.pagination import Page, PageParams
from nexent.core.process import ProcessState
from nexent.identity.auth import Caller, Operator
from nexent.identity.hooks import tenant_created
from nexent.identity.models import Tenant, TenantStatus
from nexent.identity.repository import TenantRepository, record_platform_audit
from nexent.identity.schemas import TenantCreate, TenantRead, TenantSettingsUpdate, TenantUpdate
from nexent.identity.services.audit import audit_event, record
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


class TenantEndpointPolicies:
    """A part of the process state (`engines.process`): each tenant's own allow list of private model endpoints,
    read from the database at most every `TTL_SECONDS` (a model call must not cost a query more). A change made
    here applies at once in this process and within `TTL_SECONDS` in the others."""

    TTL_SECONDS = 5.0

    def __init__(self) -> None:
        self._policies: dict[uuid.UUID, tuple[float, AddressPolicy]] = {}

    async def get(self, session: AsyncSession, tenant_id: uuid.UUID) -> AddressPolicy:
        now = time.monotonic()
        cached = self._policies.get(tenant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        entries = await TenantRepository(session).private_endpoints(tenant_id)
        try:
            policy = AddressPolicy.parse(entries)
        except ValueError:  # stored through the API, so parsed once already; never widen on a bad entry
            policy = AddressPolicy()
        self._policies[tenant_id] = (now + self.TTL_SECONDS, policy)
        return policy

    def forget(self, tenant_id: uuid.UUID) -> None:
        self._policies.pop(tenant_id, None)

    async def close(self) -> None:
        self._policies.clear()


async def tenant_endpoint_policy(session: AsyncSession, process: ProcessState, tenant_id: uuid.UUID) -> AddressPolicy:
    """The private hosts and networks that the operator allowed this tenant's model endpoints (besides the
    platform's list)."""
    return await process.part(TenantEndpointPolicies, TenantEndpointPolicies).get(session, tenant_id)


async def tenant_skills_network(session: AsyncSession, tenant_id: uuid.UUID) -> bool:
    """Whether the tenant's owners and admins let the scripts of its skills use the network (one of the three
    conditions, docs/skills.md)."""
    return await TenantRepository(session).skills_network(tenant_id)


class OwnTenantService:
    """A tenant's own settings, read by its members and changed by its owners and admins."""

    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller
        self.repository = TenantRepository(session)

    async def get(self) -> TenantRead:
        return TenantRead.model_validate(await self._get())

    async def _get(self) -> Tenant:
        tenant = await self.repository.get(self.caller.tenant_id)
        if tenant is None:  # the caller's credential named it: deleted meanwhile
            raise TenantNotFound(f"No tenant {self.caller.tenant_id}.")
        return tenant

    async def update(self, data: TenantSettingsUpdate) -> TenantRead:
        tenant = await self._get()
        changes = {
            field: value
            for field, value in data.model_dump(exclude_none=True).items()
            if getattr(tenant, field) != value
        }
        for field, value in changes.items():
            setattr(tenant, field, value)
        await self.session.flush()
        if changes:
            await record(self.session, self.caller, "tenant.settings_updated", "tenant", tenant.id, **changes)
        return TenantRead.model_validate(tenant)


class TenantService:
    def __init__(
        self,
        session: AsyncSession,
        settings: Settings,
        operator: Operator | None = None,
        *,
        process: ProcessState | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.repository = TenantRepository(session)
        self.operator = operator
        self.process = process  # to drop a cached allow list the operator changes

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
        if data.private_endpoints is not None and self.process is not None:
            found = self.process.find(TenantEndpointPolicies)
            if found is not None:
                found.forget(tenant.id)
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
