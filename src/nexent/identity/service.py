"""Identity logic: tenants, sign-in sessions, members, groups and sharing, invitations, API keys, audit log."""

from __future__ import annotations

import re
import secrets
import unicodedata
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.context import current_request
from nexent.core.db import utcnow
from nexent.core.errors import AppError, BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from nexent.core.pagination import Page, PageParams
from nexent.engines.container import Engines
from nexent.identity.auth import Caller, Operator
from nexent.identity.hooks import tenant_created
from nexent.identity.models import (
    ApiKey,
    AuditEvent,
    Group,
    Invitation,
    Membership,
    MemberStatus,
    RefreshToken,
    ResourceShare,
    Role,
    SharePermission,
    Tenant,
    TenantStatus,
    User,
)
from nexent.identity.passwords import hash_password, verify_password
from nexent.identity.permissions import Permission, outranks_or_equals
from nexent.identity.repository import (
    ApiKeyRepository,
    AuditRepository,
    GroupRepository,
    InvitationRepository,
    MembershipRepository,
    RefreshTokenRepository,
    ShareRepository,
    TenantRepository,
    UserRepository,
    consume_invitation,
    find_invitation_by_code_hash,
    record_platform_audit,
)
from nexent.identity.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    AuditEventRead,
    GroupCreate,
    GroupRead,
    GroupUpdate,
    InvitationCreate,
    InvitationCreated,
    InvitationRead,
    LoginRequest,
    MemberRead,
    MemberUpdate,
    MeRead,
    PasswordChange,
    RegisterRequest,
    ShareRead,
    TenantBrief,
    TenantCreate,
    TenantRead,
    TenantUpdate,
    TokenPair,
    UserRead,
)
from nexent.identity.tokens import (
    API_KEY_PREFIX,
    INVITATION_PREFIX,
    REFRESH_TOKEN_PREFIX,
    AccessClaims,
    hash_secret,
    issue_access_token,
    new_secret,
)
from nexent.settings import Settings

# --- Errors ------------------------------------------------------------------------------------------------------


class TenantNotFound(NotFound):
    code = "tenant_not_found"


class SlugTaken(Conflict):
    code = "slug_taken"


class EmailTaken(Conflict):
    code = "email_taken"


class TooManyAttempts(AppError):
    status, code = 429, "too_many_attempts"


class MemberNotFound(NotFound):
    code = "member_not_found"


class GroupNotFound(NotFound):
    code = "group_not_found"


class InvitationNotFound(NotFound):
    code = "invitation_not_found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class LastOwner(Conflict):
    code = "last_owner"


# --- Audit -------------------------------------------------------------------------------------------------------


def audit_event(
    action: str,
    resource_type: str,
    resource_id: object | None,
    *,
    tenant_id: uuid.UUID | None,
    actor_user_id: uuid.UUID | None = None,
    actor_api_key_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """An audit event stamped with the request's id and client address."""
    request = current_request()
    return AuditEvent(
        tenant_id=tenant_id,
        actor_user_id=actor_user_id,
        actor_api_key_id=actor_api_key_id,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id) if resource_id is not None else None,
        details=details or {},
        ip=request.client_ip if request else None,
        request_id=request.request_id if request else None,
    )


async def record(
    session: AsyncSession, caller: Caller, action: str, resource_type: str, resource_id: object, **details: Any
) -> None:
    await AuditRepository(session, caller.tenant_id).add(
        audit_event(
            action,
            resource_type,
            resource_id,
            tenant_id=caller.tenant_id,
            actor_user_id=caller.user_id,
            actor_api_key_id=caller.api_key_id,
            details=details,
        )
    )


# --- Tenants (operator) -----------------------------------------------------------------------------------------


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


# --- Sign-in sessions ------------------------------------------------------------------------------------------


def _brief(tenant: Tenant, role: str) -> TenantBrief:
    return TenantBrief(id=tenant.id, name=tenant.name, slug=tenant.slug, role=Role(role))


class AuthService:
    """Registration, password sign-in, token refresh and rotation, sign-out, tenant switching."""

    def __init__(self, session: AsyncSession, engines: Engines) -> None:
        self.session = session
        self.engines = engines
        self.settings = engines.settings
        self.users = UserRepository(session)
        self.tokens = RefreshTokenRepository(session)

    async def register(self, data: RegisterRequest) -> TokenPair:
        email = data.email.lower()
        if await self.users.get_by_email(email) is not None:
            raise EmailTaken("An account with this email exists; sign in instead.")
        invitation = await self._usable_invitation(data.invitation_code, email) if data.invitation_code else None
        first_user = await self.users.count() == 0
        if invitation is None and not self.settings.open_signup and not first_user:
            raise Forbidden("Sign-up needs an invitation on this platform.", code="signup_closed")

        display_name = data.display_name or email.split("@", 1)[0]
        user = User(
            email=email,
            display_name=display_name,
            password_hash=await hash_password(data.password),
            is_platform_admin=first_user,
        )
        try:
            async with self.session.begin_nested():
                await self.users.add(user)
        except IntegrityError:
            raise EmailTaken("An account with this email exists; sign in instead.") from None

        if invitation is not None:
            tenant, role = await self.join_by_invitation(user, invitation)
        else:
            tenant = await TenantService(self.session, self.settings).create_tenant(
                data.tenant_name or f"{display_name}'s workspace"
            )
            role = Role.OWNER
            self.session.add(Membership(tenant_id=tenant.id, user_id=user.id, role=role))
            await self.session.flush()
        await AuditRepository(self.session, tenant.id).add(
            audit_event(
                "user.registered",
                "user",
                user.id,
                tenant_id=tenant.id,
                actor_user_id=user.id,
                details={"role": role.value, "platform_admin": first_user, "invited": invitation is not None},
            )
        )
        return await self.issue(user, tenant, role)

    async def _usable_invitation(self, code: str, email: str) -> Invitation:
        invitation = await find_invitation_by_code_hash(self.session, hash_secret(code))
        now = utcnow()
        if invitation is None or invitation.revoked_at is not None:
            raise NotFound("This invitation code is not valid.", code="invalid_invitation")
        if invitation.expires_at <= now:
            raise Conflict("This invitation has expired.", code="invitation_expired")
        if invitation.uses >= invitation.max_uses:
            raise Conflict("This invitation has been used up.", code="invitation_used_up")
        if invitation.email and invitation.email.lower() != email.lower():
            raise Forbidden("This invitation is for another email address.", code="invitation_email_mismatch")
        return invitation

    async def join_by_invitation(self, user: User, invitation: Invitation) -> tuple[Tenant, Role]:
        """Make `user` a member of the invitation's tenant with its role and groups."""
        tenant = await TenantRepository(self.session).get(invitation.tenant_id)
        if tenant is None or tenant.status != TenantStatus.ACTIVE:
            raise NotFound("This invitation code is not valid.", code="invalid_invitation")
        members = MembershipRepository(self.session, tenant.id)
        if await members.of_user(user.id) is not None:
            raise Conflict("You are already a member of this tenant.", code="already_member")
        if not await consume_invitation(self.session, invitation.id):
            raise Conflict("This invitation has been used up.", code="invitation_used_up")
        role = Role(invitation.role)
        await members.add(Membership(tenant_id=tenant.id, user_id=user.id, role=role))
        groups = GroupRepository(self.session, tenant.id)
        for group_id in await groups.existing_ids([uuid.UUID(g) for g in invitation.group_ids]):
            await groups.add_member(group_id, user.id)
        await AuditRepository(self.session, tenant.id).add(
            audit_event(
                "invitation.accepted",
                "invitation",
                invitation.id,
                tenant_id=tenant.id,
                actor_user_id=user.id,
                details={"role": role.value},
            )
        )
        return tenant, role

    async def login(self, data: LoginRequest) -> TokenPair:
        email = data.email.lower()
        await self._throttle(email)
        user = await self.users.get_by_email(email)
        if not await verify_password(user.password_hash if user else None, data.password) or user is None:
            raise Unauthorized("Wrong email or password.", code="invalid_credentials")
        tenant, role = await self._pick_tenant(user, data.tenant_id)
        await AuditRepository(self.session, tenant.id).add(
            audit_event("user.login", "user", user.id, tenant_id=tenant.id, actor_user_id=user.id)
        )
        return await self.issue(user, tenant, role)

    async def _throttle(self, email: str) -> None:
        """Count the attempt by email and by client address; refuse past the limit for the window."""
        request = current_request()
        keys = [f"login:email:{email}"]
        if request and request.client_ip:
            keys.append(f"login:ip:{request.client_ip}")
        window = self.settings.login_window_seconds
        for key in keys:
            if await self.engines.bus.hit(key, window_seconds=window) > self.settings.login_max_attempts:
                raise TooManyAttempts(
                    "Too many sign-in attempts; wait a few minutes and try again.",
                    headers={"Retry-After": str(window)},
                )

    async def _pick_tenant(self, user: User, wanted: uuid.UUID | None) -> tuple[Tenant, Role]:
        active = [
            (membership, tenant)
            for membership, tenant in await self.users.memberships_of(user.id)
            if membership.status == MemberStatus.ACTIVE and tenant.status == TenantStatus.ACTIVE
        ]
        if not active:
            raise Forbidden("This account has no active tenant membership.", code="no_active_membership")
        preferred = wanted or user.last_tenant_id
        for membership, tenant in active:
            if tenant.id == preferred:
                return tenant, Role(membership.role)
        if wanted is not None:
            raise TenantNotFound(f"You are not an active member of tenant {wanted}.")
        membership, tenant = active[0]
        return tenant, Role(membership.role)

    async def issue(self, user: User, tenant: Tenant, role: Role, *, family_id: uuid.UUID | None = None) -> TokenPair:
        """A new session: an access token and a refresh token for `user` in `tenant`."""
        refresh = new_secret(REFRESH_TOKEN_PREFIX)
        await self.tokens.add(
            RefreshToken(
                user_id=user.id,
                tenant_id=tenant.id,
                token_hash=refresh.hash,
                family_id=family_id or uuid.uuid4(),
                expires_at=utcnow() + timedelta(days=self.settings.refresh_token_days),
            )
        )
        user.last_tenant_id = tenant.id
        user.last_seen_at = utcnow()
        await self.session.flush()
        ttl = timedelta(minutes=self.settings.access_token_minutes)
        access = issue_access_token(self.engines.keys.jwt_secret, AccessClaims(user.id, tenant.id, role), ttl)
        return TokenPair(
            access_token=access,
            refresh_token=refresh.value,
            expires_in=int(ttl.total_seconds()),
            user=UserRead.model_validate(user),
            tenant=_brief(tenant, role),
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Trade a refresh token for a new pair. Each refresh token works once: presenting a used one again
        means it was stolen, so the whole session (its family) is ended."""
        token = await self.tokens.find_by_hash(hash_secret(refresh_token))
        if token is None:
            raise Unauthorized("Invalid refresh token.", code="invalid_refresh_token")
        if token.revoked_at is not None or not await self.tokens.revoke(token.id):
            # In a transaction of its own: the family must stay revoked although this request fails.
            async with self.engines.sessions() as session, session.begin():
                await RefreshTokenRepository(session).revoke_family(token.family_id)
            raise Unauthorized("This refresh token was already used; sign in again.", code="refresh_token_reused")
        if token.expires_at <= utcnow():
            raise Unauthorized("This session has expired; sign in again.", code="refresh_token_expired")
        user = await self.users.get(token.user_id)
        tenant, role = await self._active_membership(token.user_id, token.tenant_id)
        assert user is not None
        return await self.issue(user, tenant, role, family_id=token.family_id)

    async def _active_membership(self, user_id: uuid.UUID, tenant_id: uuid.UUID) -> tuple[Tenant, Role]:
        tenant = await TenantRepository(self.session).get(tenant_id)
        membership = await MembershipRepository(self.session, tenant_id).of_user(user_id)
        if tenant is None or membership is None:
            raise Unauthorized("You are no longer a member of this tenant.", code="invalid_refresh_token")
        if membership.status != MemberStatus.ACTIVE:
            raise Unauthorized("This membership is deactivated.", code="member_deactivated")
        if tenant.status != TenantStatus.ACTIVE:
            raise Unauthorized("This tenant is disabled.", code="tenant_disabled")
        return tenant, Role(membership.role)

    async def logout(self, refresh_token: str, *, everywhere: bool) -> None:
        token = await self.tokens.find_by_hash(hash_secret(refresh_token))
        if token is None:
            return  # signing out twice is not an error
        if everywhere:
            await self.tokens.revoke_all(token.user_id)
        else:
            await self.tokens.revoke_family(token.family_id)

    async def switch_tenant(self, caller: Caller, tenant_id: uuid.UUID, refresh_token: str) -> TokenPair:
        token = await self.tokens.find_by_hash(hash_secret(refresh_token))
        if token is None or token.user_id != caller.user_id or token.revoked_at is not None:
            raise Unauthorized("Invalid refresh token.", code="invalid_refresh_token")
        try:
            tenant, role = await self._active_membership(caller.user_id, tenant_id)
        except Unauthorized:
            raise TenantNotFound(f"You are not an active member of tenant {tenant_id}.") from None
        await self.tokens.revoke_family(token.family_id)
        user = await self.users.get(caller.user_id)
        assert user is not None
        return await self.issue(user, tenant, role)

    async def me(self, caller: Caller) -> MeRead:
        user = await self.users.get(caller.user_id)
        assert user is not None
        memberships = await self.users.memberships_of(user.id)
        tenants = [
            _brief(tenant, membership.role)
            for membership, tenant in memberships
            if membership.status == MemberStatus.ACTIVE and tenant.status == TenantStatus.ACTIVE
        ]
        current = next(t for t in tenants if t.id == caller.tenant_id)
        return MeRead(
            user=UserRead.model_validate(user),
            tenant=current,
            permissions=sorted(p.value for p in caller.permissions),
            tenants=tenants if caller.api_key_id is None else [current],
            api_key_id=caller.api_key_id,
        )

    async def update_me(self, caller: Caller, display_name: str) -> UserRead:
        user = await self.users.get(caller.user_id)
        assert user is not None
        user.display_name = display_name
        await self.session.flush()
        return UserRead.model_validate(user)

    async def change_password(self, caller: Caller, data: PasswordChange) -> None:
        user = await self.users.get(caller.user_id)
        assert user is not None
        if not await verify_password(user.password_hash, data.current_password):
            raise Forbidden("The current password is wrong.", code="invalid_credentials")
        user.password_hash = await hash_password(data.new_password)
        await self.tokens.revoke_all(user.id)
        await record(self.session, caller, "user.password_changed", "user", user.id)


# --- Members ---------------------------------------------------------------------------------------------------


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


# --- Groups and sharing ----------------------------------------------------------------------------------------


class GroupService:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller
        self.groups = GroupRepository(session, caller.tenant_id)

    async def _read(self, group: Group) -> GroupRead:
        members = await self.groups.member_ids([group.id])
        return GroupRead(
            id=group.id,
            name=group.name,
            description=group.description,
            member_ids=members[group.id],
            created_at=group.created_at,
        )

    async def _get(self, group_id: uuid.UUID) -> Group:
        group = await self.groups.get(group_id)
        if group is None:
            raise GroupNotFound(f"No group {group_id} in this tenant.")
        return group

    async def create(self, data: GroupCreate) -> GroupRead:
        if await self.groups.name_taken(data.name):
            raise Conflict(f"A group named {data.name!r} exists.", code="group_name_taken")
        group = await self.groups.add(
            Group(tenant_id=self.caller.tenant_id, name=data.name, description=data.description)
        )
        await record(self.session, self.caller, "group.created", "group", group.id, name=group.name)
        return await self._read(group)

    async def list(self, page: PageParams) -> Page[GroupRead]:
        groups, total = await self.groups.list_page(limit=page.limit, offset=page.offset)
        members = await self.groups.member_ids([g.id for g in groups])
        items = [
            GroupRead(
                id=g.id, name=g.name, description=g.description, member_ids=members[g.id], created_at=g.created_at
            )
            for g in groups
        ]
        return Page[GroupRead](items=items, total=total, limit=page.limit, offset=page.offset)

    async def get(self, group_id: uuid.UUID) -> GroupRead:
        return await self._read(await self._get(group_id))

    async def update(self, group_id: uuid.UUID, data: GroupUpdate) -> GroupRead:
        group = await self._get(group_id)
        if data.name is not None and await self.groups.name_taken(data.name, except_id=group.id):
            raise Conflict(f"A group named {data.name!r} exists.", code="group_name_taken")
        changes = data.model_dump(exclude_none=True)
        for field, value in changes.items():
            setattr(group, field, value)
        await self.session.flush()
        await record(self.session, self.caller, "group.updated", "group", group.id, **changes)
        return await self._read(group)

    async def delete(self, group_id: uuid.UUID) -> None:
        group = await self._get(group_id)
        await self.groups.delete(group)
        await record(self.session, self.caller, "group.deleted", "group", group_id, name=group.name)

    async def add_member(self, group_id: uuid.UUID, user_id: uuid.UUID) -> GroupRead:
        group = await self._get(group_id)
        if await MembershipRepository(self.session, self.caller.tenant_id).of_user(user_id) is None:
            raise MemberNotFound(f"No member {user_id} in this tenant.")
        if await self.groups.add_member(group.id, user_id):
            await record(self.session, self.caller, "group.member_added", "group", group.id, user_id=str(user_id))
        return await self._read(group)

    async def remove_member(self, group_id: uuid.UUID, user_id: uuid.UUID) -> GroupRead:
        group = await self._get(group_id)
        if not await self.groups.remove_member(group.id, user_id):
            raise MemberNotFound(f"User {user_id} is not in this group.")
        await record(self.session, self.caller, "group.member_removed", "group", group.id, user_id=str(user_id))
        return await self._read(group)


class ShareService:
    """Sharing of a tenant's resources to its groups. Resource domains call this from their own routes
    (`/api/<resources>/{id}/shares`) after checking that the resource exists in the caller's tenant."""

    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller
        self.shares = ShareRepository(session, caller.tenant_id)
        self.groups = GroupRepository(session, caller.tenant_id)

    async def share(
        self, resource_type: str, resource_id: uuid.UUID, group_id: uuid.UUID, permission: SharePermission
    ) -> ShareRead:
        if not await self.groups.existing_ids([group_id]):
            raise GroupNotFound(f"No group {group_id} in this tenant.")
        share = await self.shares.find(resource_type, resource_id, group_id)
        if share is None:
            share = await self.shares.add(
                ResourceShare(
                    tenant_id=self.caller.tenant_id,
                    resource_type=resource_type,
                    resource_id=resource_id,
                    group_id=group_id,
                    permission=permission,
                )
            )
        else:
            share.permission = permission
            await self.session.flush()
        await record(
            self.session,
            self.caller,
            "resource.shared",
            resource_type,
            resource_id,
            group_id=str(group_id),
            permission=permission.value,
        )
        return ShareRead.model_validate(share)

    async def unshare(self, resource_type: str, resource_id: uuid.UUID, group_id: uuid.UUID) -> None:
        share = await self.shares.find(resource_type, resource_id, group_id)
        if share is None:
            raise NotFound("This resource is not shared with that group.", code="share_not_found")
        await self.shares.delete(share)
        await record(self.session, self.caller, "resource.unshared", resource_type, resource_id, group_id=str(group_id))

    async def list(self, resource_type: str, resource_id: uuid.UUID) -> list[ShareRead]:
        return [ShareRead.model_validate(s) for s in await self.shares.for_resource(resource_type, resource_id)]

    async def access(self, resource_type: str, resource_id: uuid.UUID) -> SharePermission | None:
        """The caller's right on a resource through its groups: edit beats read; None when not shared."""
        group_ids = await self.groups.groups_of_user(self.caller.user_id)
        granted = await self.shares.permissions_for_groups(resource_type, resource_id, group_ids)
        if SharePermission.EDIT in granted:
            return SharePermission.EDIT
        return SharePermission.READ if granted else None

    async def shared_ids(self, resource_type: str, permission: SharePermission | None = None) -> set[uuid.UUID]:
        """Resources of a type that the caller's groups may at least read (or that they may edit, when
        `permission` is `edit`)."""
        group_ids = await self.groups.groups_of_user(self.caller.user_id)
        return await self.shares.resources_shared_with(resource_type, group_ids, permission)


# --- Invitations -----------------------------------------------------------------------------------------------


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
    invitation = await auth._usable_invitation(code, user.email)
    tenant, role = await auth.join_by_invitation(user, invitation)
    return _brief(tenant, role)


# --- API keys --------------------------------------------------------------------------------------------------


def _api_key(key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        user_id=key.user_id,
        agent_ids=[uuid.UUID(a) for a in key.agent_ids] if key.agent_ids is not None else None,
        daily_quota=key.daily_quota,
        expires_at=key.expires_at,
        revoked=key.revoked_at is not None,
        last_used_at=key.last_used_at,
        created_at=key.created_at,
    )


class ApiKeyService:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller
        self.keys = ApiKeyRepository(session, caller.tenant_id)
        self.sees_all = caller.can(Permission.MANAGE_ALL_API_KEYS)

    async def create(self, data: ApiKeyCreate) -> ApiKeyCreated:
        if data.expires_at is not None and data.expires_at <= utcnow():
            raise BadRequest("expires_at must be in the future.", code="invalid_expiry")
        secret = new_secret(API_KEY_PREFIX)
        key = await self.keys.add(
            ApiKey(
                tenant_id=self.caller.tenant_id,
                user_id=self.caller.user_id,
                name=data.name,
                prefix=secret.display_prefix,
                secret_hash=secret.hash,
                agent_ids=[str(a) for a in data.agent_ids] if data.agent_ids is not None else None,
                daily_quota=data.daily_quota,
                expires_at=data.expires_at,
            )
        )
        await record(self.session, self.caller, "api_key.created", "api_key", key.id, name=key.name)
        return ApiKeyCreated(**_api_key(key).model_dump(), secret=secret.value)

    async def list(self, page: PageParams) -> Page[ApiKeyRead]:
        user_filter = None if self.sees_all else self.caller.user_id
        rows, total = await self.keys.list_page(user_id=user_filter, limit=page.limit, offset=page.offset)
        return Page[ApiKeyRead](items=[_api_key(k) for k in rows], total=total, limit=page.limit, offset=page.offset)

    async def revoke(self, key_id: uuid.UUID) -> None:
        key = await self.keys.get(key_id)
        if key is None or (not self.sees_all and key.user_id != self.caller.user_id):
            raise ApiKeyNotFound(f"No API key {key_id} in this tenant.")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            await record(self.session, self.caller, "api_key.revoked", "api_key", key.id, name=key.name)


# --- Audit log -------------------------------------------------------------------------------------------------


class AuditService:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.events = AuditRepository(session, caller.tenant_id)

    async def list(self, page: PageParams, *, action: str | None, resource_type: str | None) -> Page[AuditEventRead]:
        rows, total = await self.events.list_page(
            action=action, resource_type=resource_type, limit=page.limit, offset=page.offset
        )
        return Page[AuditEventRead](
            items=[AuditEventRead.model_validate(e) for e in rows], total=total, limit=page.limit, offset=page.offset
        )
