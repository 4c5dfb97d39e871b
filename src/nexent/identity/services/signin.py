"""Sign-in sessions: registration, password sign-in, token refresh and rotation, sign-out, tenant switching,
and the signed-in user's own account."""

from __future__ import annotations

import math
import time
import uuid
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.context import current_request
from nexent.core.db import utcnow
from nexent.core.errors import AppError, Conflict, Forbidden, NotFound, Unauthorized
from nexent.engines.container import Engines
from nexent.identity.auth import Caller
from nexent.identity.models import Invitation, Membership, MemberStatus, RefreshToken, Role, Tenant, TenantStatus, User
from nexent.identity.passwords import hash_password, verify_password
from nexent.identity.repository import (
    AuditRepository,
    GroupRepository,
    MembershipRepository,
    RefreshTokenRepository,
    TenantRepository,
    UserRepository,
    consume_invitation,
    find_invitation_by_code_hash,
)
from nexent.identity.schemas import (
    LoginRequest,
    MeRead,
    PasswordChange,
    RegisterRequest,
    TenantBrief,
    TokenPair,
    UserRead,
)
from nexent.identity.services.audit import audit_event, record
from nexent.identity.services.tenants import TenantNotFound, TenantService
from nexent.identity.tokens import REFRESH_TOKEN_PREFIX, AccessClaims, hash_secret, issue_access_token, new_secret


class EmailTaken(Conflict):
    code = "email_taken"


class TooManyAttempts(AppError):
    status, code = 429, "too_many_attempts"


def client_address() -> str | None:
    """The address of the request's client: the connection's, or the one a trusted proxy forwarded."""
    request = current_request()
    return request.client_ip if request else None


def tenant_brief(tenant: Tenant, role: str) -> TenantBrief:
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
        address = client_address()
        if address is not None:
            await self._limit(
                f"register:ip:{address}",
                self.settings.register_max_attempts,
                self.settings.register_window_seconds,
                "Too many sign-ups from this address; wait and try again.",
            )
        email = data.email.lower()
        if await self.users.get_by_email(email) is not None:
            raise EmailTaken("An account with this email exists; sign in instead.")
        invitation = await self.usable_invitation(data.invitation_code, email) if data.invitation_code else None
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

    async def usable_invitation(self, code: str, email: str) -> Invitation:
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
        """Count the attempt per email from this address, per address, and per email from everywhere (a slower
        brake); refuse past a limit until its window ends. An attacker guessing one user's password from elsewhere
        uses up their own pair's attempts, not the user's."""
        settings = self.settings
        address = client_address() or "unknown"
        detail = "Too many sign-in attempts; wait a few minutes and try again."
        await self._limit(
            f"login:pair:{address}:{email}", settings.login_max_attempts, settings.login_window_seconds, detail
        )
        await self._limit(
            f"login:ip:{address}", settings.login_address_max_attempts, settings.login_window_seconds, detail
        )
        await self._limit(
            f"login:email:{email}", settings.login_email_max_attempts, settings.login_email_window_seconds, detail
        )

    async def _limit(self, key: str, limit: int, window: int, detail: str) -> None:
        """Count one hit on `key` in the current fixed window; past `limit`, a 429 saying when the window ends."""
        if await self.engines.bus.hit(key, window_seconds=window) > limit:
            retry_after = max(1, math.ceil(window - time.time() % window))
            raise TooManyAttempts(detail, headers={"Retry-After": str(retry_after)})

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
            tenant=tenant_brief(tenant, role),
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Trade a refresh token for a new pair. Each refresh token works once: presenting a used one again
        means it was stolen, so the whole session (its family) is ended. Except within
        `refresh_grace_seconds` of its rotation, while its session is still live: two tabs of one browser that
        refreshed with the same token at once both get a pair of the session (the later one a new token of the
        same family; the successor of the first stays valid)."""
        token = await self.tokens.find_by_hash(hash_secret(refresh_token))
        if token is None:
            raise Unauthorized("Invalid refresh token.", code="invalid_refresh_token")
        rotated_now = token.revoked_at is None and await self.tokens.revoke(token.id)
        if not rotated_now and not await self._within_grace(token):
            # Committed now: the family must stay revoked although this request fails. In the request's own
            # transaction: after a lost race it already holds SQLite's write lock, which another session would wait
            # for until the busy timeout.
            await self.tokens.revoke_family(token.family_id)
            await self.session.commit()
            raise Unauthorized("This refresh token was already used; sign in again.", code="refresh_token_reused")
        if token.expires_at <= utcnow():
            raise Unauthorized("This session has expired; sign in again.", code="refresh_token_expired")
        user = await self.users.get(token.user_id)
        tenant, role = await self._active_membership(token.user_id, token.tenant_id)
        assert user is not None
        return await self.issue(user, tenant, role, family_id=token.family_id)

    async def _within_grace(self, token: RefreshToken) -> bool:
        """Whether `token`, already rotated, was rotated less than the grace window ago and its session is still
        live (not ended by a sign-out, a tenant switch or a detected reuse). Read as committed now: a refresh
        that lost the race for the same token waited (PostgreSQL's row lock, SQLite's write lock) until the
        winner's rotation and successor were committed."""
        grace = self.settings.refresh_grace_seconds
        if grace <= 0:
            return False
        revoked_at = await self.tokens.revoked_at(token.id)
        if revoked_at is None or utcnow() - revoked_at >= timedelta(seconds=grace):
            return False
        return await self.tokens.family_is_live(token.family_id)

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
            tenant_brief(tenant, membership.role)
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
