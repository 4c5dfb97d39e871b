"""Invitations: codes that make their holder a member with a role and groups."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.db import utcnow
from nexent.core.errors import Forbidden, NotFound
from nexent.core.pagination import Page, PageParams
from nexent.engines.container import Engines
from nexent.identity.auth import Caller
from nexent.identity.models import Invitation, Role
from nexent.identity.permissions import outranks_or_equals
from nexent.identity.repository import GroupRepository, InvitationRepository, UserRepository
from nexent.identity.schemas import InvitationCreate, InvitationCreated, InvitationRead, TenantBrief
from nexent.identity.services.audit import record
from nexent.identity.services.groups import GroupNotFound
from nexent.identity.services.signin import AuthService, tenant_brief
from nexent.identity.tokens import INVITATION_PREFIX, new_secret


class InvitationNotFound(NotFound):
    code = "invitation_not_found"


def _invitation(invitation: Invitation) -> InvitationRead:
    return InvitationRead(
        id=invitation.id,
        code_prefix=invitation.code_prefix,
        role=Role(invitation.role),
        group_ids=[uuid.UUID(g) for g in invitation.group_ids],
        email=invitation.email,
        max_uses=invitation.max_uses,
        uses=invitation.uses,
        expires_at=invitation.expires_at,
        revoked=invitation.revoked_at is not None,
        created_at=invitation.created_at,
    )


class InvitationService:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller
        self.invitations = InvitationRepository(session, caller.tenant_id)

    async def create(self, data: InvitationCreate) -> InvitationCreated:
        if not outranks_or_equals(self.caller.role, data.role):
            raise Forbidden("You cannot invite someone above your own role.", code="permission_denied")
        missing = set(data.group_ids) - await GroupRepository(self.session, self.caller.tenant_id).existing_ids(
            data.group_ids
        )
        if missing:
            raise GroupNotFound(f"No group {sorted(map(str, missing))[0]} in this tenant.")
        code = new_secret(INVITATION_PREFIX)
        invitation = await self.invitations.add(
            Invitation(
                tenant_id=self.caller.tenant_id,
                code_hash=code.hash,
                code_prefix=code.display_prefix,
                role=data.role,
                group_ids=[str(g) for g in data.group_ids],
                email=data.email.lower() if data.email else None,
                max_uses=data.max_uses,
                expires_at=utcnow() + timedelta(hours=data.expires_in_hours),
                created_by=self.caller.user_id,
            )
        )
        await record(self.session, self.caller, "invitation.created", "invitation", invitation.id, role=data.role.value)
        return InvitationCreated(**_invitation(invitation).model_dump(), code=code.value)

    async def list(self, page: PageParams) -> Page[InvitationRead]:
        rows, total = await self.invitations.list_page(limit=page.limit, offset=page.offset)
        return Page[InvitationRead](
            items=[_invitation(i) for i in rows], total=total, limit=page.limit, offset=page.offset
        )

    async def revoke(self, invitation_id: uuid.UUID) -> None:
        invitation = await self.invitations.get(invitation_id)
        if invitation is None:
            raise InvitationNotFound(f"No invitation {invitation_id} in this tenant.")
        if invitation.revoked_at is None:
            invitation.revoked_at = utcnow()
            await record(self.session, self.caller, "invitation.revoked", "invitation", invitation.id)


async def accept_invitation(session: AsyncSession, engines: Engines, caller: Caller, code: str) -> TenantBrief:
    """A signed-in user joins another tenant with an invitation code."""
    auth = AuthService(session, engines)
    user = await UserRepository(session).get(caller.user_id)
    assert user is not None
    invitation = await auth.usable_invitation(code, user.email)
    tenant, role = await auth.join_by_invitation(user, invitation)
    return tenant_brief(tenant, role)
