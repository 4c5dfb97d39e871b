"""Who is calling, as typed FastAPI dependencies.

- `CurrentCaller`: a signed-in user (bearer access token) or an API key, bound to one tenant.
- `UserCaller`: a signed-in user only (API keys may not manage anything).
- `RequirePermission(p)`: a caller whose role grants `p` (see `permissions.py`).
- `RequireOperator`: the platform operator (the `NEXENT_ADMIN_TOKEN`, or a platform administrator's token).

The role comes from the database on every request, so a role change or a deactivation applies at once.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nexent.core.db import utcnow
from nexent.core.errors import AppError, Forbidden, Unauthorized
from nexent.core.openapi import answers
from nexent.engines.deps import EnginesDep, SessionDep, SettingsDep
from nexent.identity.models import ApiKey, MemberStatus, Role, TenantStatus
from nexent.identity.permissions import API_KEY_PERMISSIONS, ROLE_PERMISSIONS, Permission
from nexent.identity.repository import MemberRow, find_api_key_by_hash, find_member, touch_api_key
from nexent.identity.tokens import API_KEY_PREFIX, InvalidAccessToken, decode_access_token, hash_secret

_bearer = HTTPBearer(auto_error=False, description="An access token or an API key.")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_TOUCH_INTERVAL = timedelta(minutes=1)
_DAY_SECONDS = 86_400
_MINUTE_SECONDS = 60


class QuotaExceeded(AppError):
    status, code = 429, "quota_exceeded"


class RateLimited(AppError):
    """An API key sent more requests this minute than its per-minute limit allows."""

    status, code = 429, "rate_limited"


@dataclass(frozen=True)
class Caller:
    """The authenticated principal of a request, within one tenant."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: Role
    is_platform_admin: bool = False
    api_key_id: uuid.UUID | None = None
    allowed_agent_ids: frozenset[uuid.UUID] | None = None

    @property
    def permissions(self) -> frozenset[Permission]:
        granted = ROLE_PERMISSIONS[self.role]
        return granted & API_KEY_PERMISSIONS if self.api_key_id else granted

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def may_use_agent(self, agent_id: uuid.UUID) -> bool:
        """API keys limited to some agents may use only those."""
        return self.allowed_agent_ids is None or agent_id in self.allowed_agent_ids


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@answers(401, 429)
async def get_caller(
    credentials: Credentials, session: SessionDep, engines: EnginesDep, settings: SettingsDep
) -> Caller:
    if credentials is None:
        raise Unauthorized("Send 'Authorization: Bearer <access token or API key>'.", headers=_CHALLENGE)
    secret = credentials.credentials
    if secret.startswith(API_KEY_PREFIX):
        return await _api_key_caller(secret, session, engines)
    try:
        claims = decode_access_token(engines.keys.jwt_secret, secret)
    except InvalidAccessToken as exc:
        code = "token_expired" if str(exc) == "expired" else "invalid_token"
        message = "The access token has expired; refresh it." if code == "token_expired" else "Invalid access token."
        raise Unauthorized(message, code=code, headers=_CHALLENGE) from None
    member = await _active_member(session, claims.user_id, claims.tenant_id)
    return Caller(
        user_id=member.user_id,
        tenant_id=member.tenant_id,
        role=Role(member.role),
        is_platform_admin=member.is_platform_admin,
    )


async def _active_member(session: SessionDep, user_id: uuid.UUID, tenant_id: uuid.UUID) -> MemberRow:
    """The user's membership in the tenant, if both are still active; else 401."""
    member = await find_member(session, user_id, tenant_id)
    if member is None:
        raise Unauthorized("The credentials no longer match a member.", code="invalid_token", headers=_CHALLENGE)
    if member.member_status != MemberStatus.ACTIVE:
        raise Unauthorized("This membership is deactivated.", code="member_deactivated", headers=_CHALLENGE)
    if member.tenant_status != TenantStatus.ACTIVE:
        raise Unauthorized("This tenant is disabled.", code="tenant_disabled", headers=_CHALLENGE)
    return member


async def _valid_api_key(session: SessionDep, secret: str) -> ApiKey:
    """The key of this secret, if it exists, is not revoked and has not expired; else 401."""
    key: ApiKey | None = await find_api_key_by_hash(session, hash_secret(secret))
    if key is None:
        raise Unauthorized("Invalid API key.", code="invalid_api_key", headers=_CHALLENGE)
    if key.revoked_at is not None:
        raise Unauthorized("This API key has been revoked.", code="api_key_revoked", headers=_CHALLENGE)
    if key.expires_at is not None and key.expires_at <= utcnow():
        raise Unauthorized("This API key has expired.", code="api_key_expired", headers=_CHALLENGE)
    return key


async def _api_key_caller(secret: str, session: SessionDep, engines: EnginesDep) -> Caller:
    key = await _valid_api_key(session, secret)
    now = utcnow()
    member = await _active_member(session, key.user_id, key.tenant_id)
    # The minute's limit first: a request it refuses does not count against the day's quota.
    if key.rate_limit_per_minute is not None:
        sent = await engines.bus.hit(f"api-key-rate:{key.id}", window_seconds=_MINUTE_SECONDS)
        if sent > key.rate_limit_per_minute:
            seconds_left = _MINUTE_SECONDS - int(now.timestamp()) % _MINUTE_SECONDS
            raise RateLimited(
                f"This API key's limit of {key.rate_limit_per_minute} requests a minute is reached.",
                headers={"Retry-After": str(seconds_left)},
            )
    if key.daily_quota is not None:
        used = await engines.bus.hit(f"api-key-quota:{key.id}", window_seconds=_DAY_SECONDS)
        if used > key.daily_quota:
            seconds_left = _DAY_SECONDS - int(now.timestamp()) % _DAY_SECONDS
            raise QuotaExceeded(
                f"This API key's quota of {key.daily_quota} requests a day is used up.",
                headers={"Retry-After": str(seconds_left)},
            )
    if key.last_used_at is None or now - key.last_used_at > _TOUCH_INTERVAL:
        await touch_api_key(session, key.id)
    return Caller(
        user_id=member.user_id,
        tenant_id=key.tenant_id,
        role=Role(member.role),
        is_platform_admin=False,
        api_key_id=key.id,
        allowed_agent_ids=frozenset(uuid.UUID(a) for a in key.agent_ids) if key.agent_ids is not None else None,
    )


async def api_key_caller(secret: str, session: SessionDep, engines: EnginesDep) -> Caller:
    """The caller of an API key's secret, checked as for `CurrentCaller` (existence, revocation, expiry, the member
    and tenant still active, the daily quota): for surfaces that take API keys only (the MCP server). Raises 401
    `invalid_api_key` for anything that is not an API key."""
    if not secret.startswith(API_KEY_PREFIX):
        raise Unauthorized("Send an API key (nxk_...).", code="invalid_api_key", headers=_CHALLENGE)
    return await _api_key_caller(secret, session, engines)


# The `api_key_id` of callers acting for a member without a stored key (`delegated_caller`).
DELEGATED_KEY_ID = uuid.UUID(int=0)


async def delegated_caller(
    session: SessionDep, user_id: uuid.UUID, tenant_id: uuid.UUID, agent_ids: frozenset[uuid.UUID]
) -> Caller:
    """A caller acting for a member with an API key's reach (chat only, limited to `agent_ids`) but no key: the
    public A2A agents run as their owner so. The member and the tenant must be active (401 otherwise)."""
    member = await _active_member(session, user_id, tenant_id)
    return Caller(
        user_id=user_id,
        tenant_id=tenant_id,
        role=Role(member.role),
        api_key_id=DELEGATED_KEY_ID,
        allowed_agent_ids=agent_ids,
    )


CurrentCaller = Annotated[Caller, Depends(get_caller)]


@answers(403)
def require_user(caller: CurrentCaller) -> Caller:
    if caller.api_key_id is not None:
        raise Forbidden("API keys cannot do this; sign in as a user.", code="api_key_not_allowed")
    return caller


UserCaller = Annotated[Caller, Depends(require_user)]


def RequirePermission(permission: Permission) -> Any:
    """Dependency: a caller whose role grants `permission`; 403 `permission_denied` otherwise."""

    @answers(403)
    def dependency(caller: CurrentCaller) -> Caller:
        if not caller.can(permission):
            if caller.api_key_id is not None:
                raise Forbidden("API keys cannot do this; sign in as a user.", code="api_key_not_allowed")
            raise Forbidden(f"Your role ({caller.role}) does not allow this ({permission}).", code="permission_denied")
        return caller

    return Depends(dependency)


@dataclass(frozen=True)
class Operator:
    """The platform operator: the admin token's holder, or a platform administrator (`user_id`)."""

    user_id: uuid.UUID | None


@answers(401, 403)
async def require_operator(
    settings: SettingsDep, credentials: Credentials, session: SessionDep, engines: EnginesDep
) -> Operator:
    if credentials is None:
        raise Unauthorized("Send the operator token as 'Authorization: Bearer <token>'.", headers=_CHALLENGE)
    token = credentials.credentials
    if settings.admin_token is not None and hmac.compare_digest(
        token.encode(), settings.admin_token.get_secret_value().encode()
    ):
        return Operator(user_id=None)
    if token.startswith(API_KEY_PREFIX):
        await _valid_api_key(session, token)
        raise Forbidden("API keys cannot use the operator API.", code="api_key_not_allowed")
    try:
        claims = decode_access_token(engines.keys.jwt_secret, token)
    except InvalidAccessToken:
        if settings.admin_token is None:
            raise Forbidden(
                "The operator API needs NEXENT_ADMIN_TOKEN or a platform administrator's token.",
                code="operator_disabled",
            ) from None
        raise Unauthorized("The operator token is not valid.", code="invalid_token", headers=_CHALLENGE) from None
    member = await _active_member(session, claims.user_id, claims.tenant_id)
    if not member.is_platform_admin:
        raise Forbidden("Only platform administrators may do this.", code="permission_denied")
    return Operator(user_id=member.user_id)


RequireOperator = Annotated[Operator, Depends(require_operator)]


@answers(401, 403)
async def require_metrics_reader(
    settings: SettingsDep, credentials: Credentials, session: SessionDep, engines: EnginesDep
) -> None:
    """Prometheus with `NEXENT_METRICS_TOKEN`, or the operator (the metrics name tenants and models)."""
    if credentials is not None and settings.metrics_token is not None:
        expected = settings.metrics_token.get_secret_value().encode()
        if hmac.compare_digest(credentials.credentials.encode(), expected):
            return
    await require_operator(settings, credentials, session, engines)


RequireMetricsReader = Depends(require_metrics_reader)
