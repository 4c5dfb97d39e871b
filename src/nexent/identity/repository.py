"""Identity queries. Tenant-owned rows go through `TenantScopedRepository`; users, tenants and credential
lookups (a secret's hash finds its row before the tenant is known) are the only unscoped queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, and_, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.db import utcnow
from nexent.core.repository import TenantScopedRepository
from nexent.identity.models import (
    ApiKey,
    AuditEvent,
    Group,
    GroupMember,
    Invitation,
    Membership,
    MemberStatus,
    RefreshToken,
    ResourceShare,
    SharePermission,
    Tenant,
    User,
)


class TenantRepository:
    """Tenants are the root of tenancy: reached by the operator, or by id from a verified credential."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, tenant: Tenant) -> Tenant:
        self.session.add(tenant)
        await self.session.flush()
        return tenant

    async def get(self, tenant_id: uuid.UUID) -> Tenant | None:
        return await self.session.get(Tenant, tenant_id)

    async def private_endpoints(self, tenant_id: uuid.UUID) -> list[str]:
        """The tenant's own allow list of private model endpoints (empty when there is no such tenant)."""
        entries = await self.session.scalar(select(Tenant.private_endpoints).where(Tenant.id == tenant_id))
        return list(entries or [])

    async def skills_network(self, tenant_id: uuid.UUID) -> bool:
        """Whether the tenant lets its skills' scripts use the network (false when there is no such tenant)."""
        return bool(await self.session.scalar(select(Tenant.skills_network).where(Tenant.id == tenant_id)))

    async def get_by_slug(self, slug: str) -> Tenant | None:
        result: Tenant | None = await self.session.scalar(select(Tenant).where(Tenant.slug == slug))
        return result

    async def slug_exists(self, slug: str) -> bool:
        return await self.session.scalar(select(func.count()).where(Tenant.slug == slug)) != 0

    async def list_page(
        self, *, status: str | None, query: str | None, limit: int, offset: int
    ) -> tuple[list[Tenant], int]:
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


class UserRepository:
    """Users exist across tenants; a tenant sees them only through its memberships."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        result: User | None = await self.session.scalar(select(User).where(func.lower(User.email) == email.lower()))
        return result

    async def get_by_oidc_subject(self, subject: str) -> User | None:
        result: User | None = await self.session.scalar(select(User).where(User.oidc_subject == subject))
        return result

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(User)) or 0)

    async def memberships_of(self, user_id: uuid.UUID) -> list[tuple[Membership, Tenant]]:
        rows = await self.session.execute(
            select(Membership, Tenant)
            .join(Tenant, Tenant.id == Membership.tenant_id)
            .where(Membership.user_id == user_id)
            .order_by(Membership.created_at)
        )
        return [(membership, tenant) for membership, tenant in rows]


class MembershipRepository(TenantScopedRepository[Membership]):
    model = Membership

    async def of_user(self, user_id: uuid.UUID) -> Membership | None:
        result: Membership | None = await self.session.scalar(self.select().where(Membership.user_id == user_id))
        return result

    async def list_with_users(self, *, limit: int, offset: int) -> tuple[list[tuple[Membership, User]], int]:
        rows = await self.session.execute(
            self.select()
            .add_columns(User)
            .join(User, User.id == Membership.user_id)
            .order_by(Membership.created_at, Membership.id)
            .limit(limit)
            .offset(offset)
        )
        return [(membership, user) for membership, user in rows], await self.count()

    async def count_active_owners(self) -> int:
        return await self.count(Membership.role == "owner", Membership.status == MemberStatus.ACTIVE)


class GroupRepository(TenantScopedRepository[Group]):
    model = Group

    async def list_page(self, *, limit: int, offset: int) -> tuple[list[Group], int]:
        rows = await self.session.scalars(self.select().order_by(Group.name, Group.id).limit(limit).offset(offset))
        return list(rows), await self.count()

    async def name_taken(self, name: str, *, except_id: uuid.UUID | None = None) -> bool:
        conditions = [func.lower(Group.name) == name.lower()]
        if except_id is not None:
            conditions.append(Group.id != except_id)
        return await self.count(*conditions) > 0

    async def existing_ids(self, group_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        if not group_ids:
            return set()
        rows = await self.session.scalars(
            select(Group.id).where(Group.tenant_id == self.tenant_id, Group.id.in_(list(group_ids)))
        )
        return set(rows)

    async def member_ids(self, group_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        members: dict[uuid.UUID, list[uuid.UUID]] = {group_id: [] for group_id in group_ids}
        if not group_ids:
            return members
        rows = await self.session.execute(
            select(GroupMember.group_id, GroupMember.user_id)
            .where(GroupMember.tenant_id == self.tenant_id, GroupMember.group_id.in_(list(group_ids)))
            .order_by(GroupMember.created_at)
        )
        for group_id, user_id in rows:
            members[group_id].append(user_id)
        return members

    async def add_member(self, group_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        exists = await self.session.scalar(
            select(func.count()).where(
                GroupMember.tenant_id == self.tenant_id,
                GroupMember.group_id == group_id,
                GroupMember.user_id == user_id,
            )
        )
        if exists:
            return False
        self.session.add(GroupMember(group_id=group_id, user_id=user_id, tenant_id=self.tenant_id))
        await self.session.flush()
        return True

    async def remove_member(self, group_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        result = await self.session.execute(
            delete(GroupMember).where(
                GroupMember.tenant_id == self.tenant_id,
                GroupMember.group_id == group_id,
                GroupMember.user_id == user_id,
            )
        )
        return bool(getattr(result, "rowcount", 0))

    async def remove_user_everywhere(self, user_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(GroupMember).where(GroupMember.tenant_id == self.tenant_id, GroupMember.user_id == user_id)
        )


class ShareRepository(TenantScopedRepository[ResourceShare]):
    model = ResourceShare

    async def for_resource(self, resource_type: str, resource_id: uuid.UUID) -> list[ResourceShare]:
        rows = await self.session.scalars(
            self.select()
            .where(ResourceShare.resource_type == resource_type, ResourceShare.resource_id == resource_id)
            .order_by(ResourceShare.created_at)
        )
        return list(rows)

    async def find(self, resource_type: str, resource_id: uuid.UUID, group_id: uuid.UUID) -> ResourceShare | None:
        result: ResourceShare | None = await self.session.scalar(
            self.select().where(
                ResourceShare.resource_type == resource_type,
                ResourceShare.resource_id == resource_id,
                ResourceShare.group_id == group_id,
            )
        )
        return result

    def shared_with_user(self, resource_type: str, user_id: uuid.UUID, *, edit: bool = False) -> Select[Any]:
        """`SELECT resource_id` of the resources of `resource_type` shared with any group of `user_id` (with edit
        rights, when `edit`): a subquery for the resource domain's own query."""
        query = (
            select(ResourceShare.resource_id)
            .join(
                GroupMember,
                and_(GroupMember.group_id == ResourceShare.group_id, GroupMember.tenant_id == self.tenant_id),
            )
            .where(
                ResourceShare.tenant_id == self.tenant_id,
                ResourceShare.resource_type == resource_type,
                GroupMember.user_id == user_id,
            )
        )
        if edit:
            query = query.where(ResourceShare.permission == SharePermission.EDIT)
        return query

    def readable(
        self, resource_type: str, id_column: SQLColumnExpression[uuid.UUID], user_id: uuid.UUID
    ) -> ColumnElement[bool]:
        """The condition on a resource's query (`id_column` is its id) that keeps the rows shared with a group of
        `user_id`, to read or to edit."""
        return id_column.in_(self.shared_with_user(resource_type, user_id))

    def editable(
        self, resource_type: str, id_column: SQLColumnExpression[uuid.UUID], user_id: uuid.UUID
    ) -> ColumnElement[bool]:
        """The condition that keeps the rows shared with a group of `user_id` with edit rights."""
        return id_column.in_(self.shared_with_user(resource_type, user_id, edit=True))


class InvitationRepository(TenantScopedRepository[Invitation]):
    model = Invitation

    async def list_page(self, *, limit: int, offset: int) -> tuple[list[Invitation], int]:
        rows = await self.session.scalars(
            self.select().order_by(Invitation.created_at.desc(), Invitation.id).limit(limit).offset(offset)
        )
        return list(rows), await self.count()


async def find_invitation_by_code_hash(session: AsyncSession, code_hash: str) -> Invitation | None:
    """Credential lookup: the code itself proves the right to see this invitation."""
    result: Invitation | None = await session.scalar(select(Invitation).where(Invitation.code_hash == code_hash))
    return result


async def consume_invitation(session: AsyncSession, invitation_id: uuid.UUID) -> bool:
    """Count one use, atomically, unless it is used up, revoked or expired."""
    result = await session.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation_id,
            Invitation.uses < Invitation.max_uses,
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > utcnow(),
        )
        .values(uses=Invitation.uses + 1)
    )
    return bool(getattr(result, "rowcount", 0))


class ApiKeyRepository(TenantScopedRepository[ApiKey]):
    model = ApiKey

    async def list_page(self, *, user_id: uuid.UUID | None, limit: int, offset: int) -> tuple[list[ApiKey], int]:
        conditions = [ApiKey.user_id == user_id] if user_id else []
        rows = await self.session.scalars(
            self.select().where(*conditions).order_by(ApiKey.created_at.desc(), ApiKey.id).limit(limit).offset(offset)
        )
        return list(rows), await self.count(*conditions)

    async def revoke_all_of_user(self, user_id: uuid.UUID) -> None:
        await self.session.execute(
            update(ApiKey)
            .where(ApiKey.tenant_id == self.tenant_id, ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )


class MemberRow(NamedTuple):
    """What authenticating a request needs of a user's membership in a tenant (columns, not ORM objects)."""

    user_id: uuid.UUID
    is_platform_admin: bool
    tenant_id: uuid.UUID
    role: str
    member_status: str
    tenant_status: str


# Built once: this query runs on every authenticated request.
_MEMBER_QUERY = (
    select(User.id, User.is_platform_admin, Membership.tenant_id, Membership.role, Membership.status, Tenant.status)
    .join(Membership, Membership.user_id == User.id)
    .join(Tenant, Tenant.id == Membership.tenant_id)
    .where(User.id == bindparam("user_id"), Membership.tenant_id == bindparam("tenant_id"))
)


async def find_member(session: AsyncSession, user_id: uuid.UUID, tenant_id: uuid.UUID) -> MemberRow | None:
    """Credential lookup (run on every request): the user's membership in the tenant, with both statuses."""
    row = (await session.execute(_MEMBER_QUERY, {"user_id": user_id, "tenant_id": tenant_id})).first()
    return MemberRow(*row) if row else None


async def find_api_key_by_hash(session: AsyncSession, secret_hash: str) -> ApiKey | None:
    """Credential lookup: the secret itself proves the right to use this key."""
    result: ApiKey | None = await session.scalar(select(ApiKey).where(ApiKey.secret_hash == secret_hash))
    return result


async def touch_api_key(session: AsyncSession, key_id: uuid.UUID) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))


class RefreshTokenRepository:
    """Sessions of one user."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: RefreshToken) -> None:
        self.session.add(token)
        await self.session.flush()

    async def find_by_hash(self, token_hash: str) -> RefreshToken | None:
        result: RefreshToken | None = await self.session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash)
        )
        return result

    async def revoke(self, token_id: uuid.UUID) -> bool:
        """Revoke one token unless already revoked; False means someone else used it first."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        return bool(getattr(result, "rowcount", 0))

    async def revoked_at(self, token_id: uuid.UUID) -> datetime | None:
        """When the token was revoked, as committed now (not as this session first read it)."""
        result: datetime | None = await self.session.scalar(
            select(RefreshToken.revoked_at).where(RefreshToken.id == token_id)
        )
        return result

    async def family_is_live(self, family_id: uuid.UUID) -> bool:
        """Whether the session still has a usable token (it was neither ended nor has it expired)."""
        found = await self.session.scalar(
            select(RefreshToken.id)
            .where(
                RefreshToken.family_id == family_id,
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > utcnow(),
            )
            .limit(1)
        )
        return found is not None

    async def revoke_family(self, family_id: uuid.UUID) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )

    async def revoke_all(self, user_id: uuid.UUID, *, tenant_id: uuid.UUID | None = None) -> None:
        conditions = [RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)]
        if tenant_id is not None:
            conditions.append(RefreshToken.tenant_id == tenant_id)
        await self.session.execute(update(RefreshToken).where(*conditions).values(revoked_at=utcnow()))


class AuditRepository(TenantScopedRepository[AuditEvent]):
    model = AuditEvent

    async def list_page(
        self, *, action: str | None, resource_type: str | None, limit: int, offset: int
    ) -> tuple[list[AuditEvent], int]:
        conditions = []
        if action:
            conditions.append(AuditEvent.action == action)
        if resource_type:
            conditions.append(AuditEvent.resource_type == resource_type)
        rows = await self.session.scalars(
            self.select()
            .where(*conditions)
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id)
            .limit(limit)
            .offset(offset)
        )
        return list(rows), await self.count(*conditions)


async def record_platform_audit(session: AsyncSession, event: AuditEvent) -> None:
    """Audit events of the platform operator (no tenant, or about a tenant as a whole)."""
    session.add(event)
    await session.flush()
