"""Members of a tenant: roles, deactivation, removal (a tenant always keeps an active owner)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.errors import Conflict, Forbidden, NotFound
from nexent.core.pagination import Page, PageParams
from nexent.identity.auth import Caller
from nexent.identity.models import Membership, MemberStatus, Role, User
from nexent.identity.permissions import outranks_or_equals
from nexent.identity.repository import (
    ApiKeyRepository,
    GroupRepository,
    MembershipRepository,
    RefreshTokenRepository,
    UserRepository,
)
from nexent.identity.schemas import MemberRead, MemberUpdate
from nexent.identity.services.audit import record


class MemberNotFound(NotFound):
    code = "member_not_found"


class LastOwner(Conflict):
    code = "last_owner"


class MemberService:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller
        self.members = MembershipRepository(session, caller.tenant_id)

    async def list(self, page: PageParams) -> Page[MemberRead]:
        rows, total = await self.members.list_with_users(limit=page.limit, offset=page.offset)
        return Page[MemberRead](
            items=[_member(m, u) for m, u in rows], total=total, limit=page.limit, offset=page.offset
        )

    async def _get(self, user_id: uuid.UUID) -> tuple[Membership, User]:
        membership = await self.members.of_user(user_id)
        user = await UserRepository(self.session).get(user_id) if membership else None
        if membership is None or user is None:
            raise MemberNotFound(f"No member {user_id} in this tenant.")
        return membership, user

    async def get(self, user_id: uuid.UUID) -> MemberRead:
        return _member(*await self._get(user_id))

    def _check_may_manage(self, target_role: Role, new_role: Role | None = None) -> None:
        """Only owners touch owners or make owners; nobody manages a role above their own."""
        if not outranks_or_equals(self.caller.role, target_role) or (
            new_role is not None and not outranks_or_equals(self.caller.role, new_role)
        ):
            raise Forbidden("You cannot manage members above your own role.", code="permission_denied")

    async def _ensure_an_owner_remains(self, membership: Membership) -> None:
        active_owner = membership.role == Role.OWNER and membership.status == MemberStatus.ACTIVE
        if active_owner and await self.members.count_active_owners() <= 1:
            raise LastOwner("A tenant needs at least one active owner; make someone else owner first.")

    async def update(self, user_id: uuid.UUID, data: MemberUpdate) -> MemberRead:
        membership, user = await self._get(user_id)
        self._check_may_manage(Role(membership.role), data.role)
        demoting = data.role is not None and data.role != Role.OWNER
        if demoting or data.status == MemberStatus.DEACTIVATED:
            await self._ensure_an_owner_remains(membership)
        changes = data.model_dump(exclude_none=True, mode="json")
        for field, value in changes.items():
            setattr(membership, field, value)
        if data.status == MemberStatus.DEACTIVATED:
            await RefreshTokenRepository(self.session).revoke_all(user_id, tenant_id=self.caller.tenant_id)
        await self.session.flush()
        await record(self.session, self.caller, "member.updated", "member", user_id, **changes)
        return _member(membership, user)

    async def remove(self, user_id: uuid.UUID) -> None:
        membership, _ = await self._get(user_id)
        self._check_may_manage(Role(membership.role))
        await self._ensure_an_owner_remains(membership)
        await GroupRepository(self.session, self.caller.tenant_id).remove_user_everywhere(user_id)
        await ApiKeyRepository(self.session, self.caller.tenant_id).revoke_all_of_user(user_id)
        await RefreshTokenRepository(self.session).revoke_all(user_id, tenant_id=self.caller.tenant_id)
        await self.members.delete(membership)
        await record(self.session, self.caller, "member.removed", "member", user_id, role=membership.role)


def _member(membership: Membership, user: User) -> MemberRead:
    return MemberRead(
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=Role(membership.role),
        status=MemberStatus(membership.status),
        joined_at=membership.created_at,
    )
