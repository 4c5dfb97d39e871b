"""OpenID Connect single sign-on (authorization code flow with PKCE), on authlib.

`begin` sends the browser to the identity provider with a fresh state, nonce and PKCE verifier, which travel in an
encrypted, short-lived cookie; `complete` checks them, trades the code for tokens, verifies the ID token against
the provider's keys, and signs the user in: found by subject, else linked by verified email, else created. The
role comes from a claim through `NEXENT_OIDC_ROLE_MAP`.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, cast

import httpx
import httpx2
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet, KeySetSerialization
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.crypto import SecretDecryptionError
from nexent.core.errors import AppError, Conflict, Forbidden, NotFound
from nexent.engines.container import Engines
from nexent.identity.models import Membership, MemberStatus, Role, Tenant, TenantStatus, User
from nexent.identity.permissions import outranks_or_equals
from nexent.identity.repository import AuditRepository, MembershipRepository, TenantRepository, UserRepository
from nexent.identity.schemas import TokenPair
from nexent.identity.services.audit import audit_event
from nexent.identity.services.signin import AuthService
from nexent.identity.services.tenants import TenantService
from nexent.settings import Settings

STATE_COOKIE = "nexent_oidc"
COOKIE_PATH = "/api/auth/oidc"
STATE_TTL_SECONDS = 600
_METADATA_TTL_SECONDS = 300
_HTTP_TIMEOUT_SECONDS = 10.0


class SsoDisabled(NotFound):
    code = "sso_disabled"


class SsoFailed(AppError):
    status, code = 400, "sso_failed"


class SsoUnavailable(AppError):
    status, code = 502, "sso_provider_unavailable"


@dataclass(frozen=True)
class Redirect:
    url: str
    cookie: str


@dataclass
class _Cached:
    metadata: dict[str, Any]
    jwks: dict[str, Any]
    fetched_at: float


_cache: dict[str, _Cached] = {}


async def _provider(settings: Settings, *, refresh: bool = False) -> _Cached:
    """Discovery document and signing keys, cached for a few minutes per issuer."""
    issuer = (settings.oidc_issuer or "").rstrip("/")
    cached = _cache.get(issuer)
    if cached and not refresh and time.monotonic() - cached.fetched_at < _METADATA_TTL_SECONDS:
        return cached
    try:
        async with httpx.AsyncClient(timeout=_HTTP_TIMEOUT_SECONDS) as http:
            metadata = (await http.get(f"{issuer}/.well-known/openid-configuration")).raise_for_status().json()
            jwks = (await http.get(metadata["jwks_uri"])).raise_for_status().json()
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise SsoUnavailable(f"The identity provider did not answer ({type(exc).__name__}).") from None
    if str(metadata.get("issuer", "")).rstrip("/") != issuer:
        raise SsoUnavailable("The identity provider's discovery document names another issuer.")
    _cache[issuer] = cached = _Cached(metadata, jwks, time.monotonic())
    return cached


def _client(settings: Settings, redirect_uri: str) -> AsyncOAuth2Client:
    if not settings.oidc_enabled:
        raise SsoDisabled("Single sign-on is not configured on this platform.")
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
    return AsyncOAuth2Client(
        client_id=settings.oidc_client_id,
        client_secret=secret,
        scope=settings.oidc_scopes,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=_HTTP_TIMEOUT_SECONDS,
    )


async def begin(engines: Engines, redirect_uri: str, next_path: str | None = None) -> Redirect:
    """The provider's authorization URL and the encrypted state cookie that must come back with the code (with
    `next_path`, the page of this site the callback sends the browser back to)."""
    settings = engines.settings
    client = _client(settings, redirect_uri)
    provider = await _provider(settings)
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(
        provider.metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    await client.aclose()
    cookie = engines.keys.box.encrypt(
        json.dumps(
            {
                "state": state,
                "nonce": nonce,
                "verifier": verifier,
                "exp": time.time() + STATE_TTL_SECONDS,
                "next": next_path,
            }
        )
    )
    return Redirect(url=url, cookie=cookie)


async def complete(
    session: AsyncSession, engines: Engines, *, redirect_uri: str, code: str, state: str, cookie: str | None
) -> TokenPair:
    """Finish the flow and sign the user in."""
    settings = engines.settings
    client = _client(settings, redirect_uri)
    expected = _read_state(engines, cookie)
    if not secrets.compare_digest(state, expected["state"]):
        raise SsoFailed("The sign-in answer does not match the request; start again.")
    provider = await _provider(settings)
    try:
        token = await client.fetch_token(
            provider.metadata["token_endpoint"], code=code, code_verifier=expected["verifier"]
        )
    except AuthlibBaseError as exc:
        raise SsoFailed(f"The identity provider refused the sign-in: {exc.error}.") from None
    except (httpx2.HTTPError, OSError, ValueError) as exc:
        raise SsoUnavailable(f"The identity provider did not answer ({type(exc).__name__}).") from None
    finally:
        await client.aclose()
    if "id_token" not in token:
        raise SsoFailed("The identity provider sent no ID token.")
    claims = await _verify_id_token(settings, str(token["id_token"]), expected["nonce"])
    return await _sign_in(session, engines, claims)


def next_of(engines: Engines, cookie: str | None) -> str | None:
    """The page the sign-in started with `next` returns to, from its state cookie (None without one, or when the
    cookie is missing or not ours). Read even once the state has expired: the cookie is ours (encrypted), and the
    browser then learns of the failure on that page."""
    if not cookie:
        return None
    try:
        data = json.loads(engines.keys.box.decrypt(cookie))
    except (SecretDecryptionError, ValueError):
        return None
    next_path = data.get("next") if isinstance(data, dict) else None
    return next_path if isinstance(next_path, str) else None


def _read_state(engines: Engines, cookie: str | None) -> dict[str, Any]:
    if not cookie:
        raise SsoFailed("The sign-in session is missing (cookies off, or another browser); start again.")
    try:
        data: dict[str, Any] = json.loads(engines.keys.box.decrypt(cookie))
    except (SecretDecryptionError, ValueError):
        raise SsoFailed("The sign-in session is not valid; start again.") from None
    if float(data.get("exp", 0)) < time.time():
        raise SsoFailed("The sign-in took too long; start again.")
    return data


async def _verify_id_token(settings: Settings, id_token: str, nonce: str) -> dict[str, Any]:
    """Check the ID token's signature against the provider's keys, and its issuer, audience, expiry and nonce."""
    registry = jwt.JWTClaimsRegistry(
        leeway=60,
        iss={"essential": True, "value": settings.oidc_issuer or ""},
        aud={"essential": True, "value": settings.oidc_client_id or ""},
        sub={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    for refresh in (False, True):  # the provider may have rotated its keys since they were cached
        provider = await _provider(settings, refresh=refresh)
        try:
            keys = KeySet.import_key_set(cast(KeySetSerialization, provider.jwks))
            token = jwt.decode(id_token, keys, algorithms=["RS256", "ES256", "PS256"])
        except (InvalidKeyIdError, BadSignatureError):
            if refresh:
                raise SsoFailed("The ID token is signed with an unknown key.") from None
            continue
        except JoseError as exc:
            raise SsoFailed(f"The ID token is not valid ({exc.error}).") from None
        try:
            registry.validate(token.claims)
        except JoseError as exc:
            raise SsoFailed(f"The ID token is not valid ({exc.error}: {exc.description}).") from None
        return dict(token.claims)
    raise SsoFailed("The ID token is not valid.")


def mapped_role(settings: Settings, claims: dict[str, Any]) -> Role:
    """The most powerful role that a value of the role claim maps to, else the default role."""
    value = claims.get(settings.oidc_role_claim)
    values = [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)] if value else []
    roles = [
        Role(settings.oidc_role_map[v]) for v in values if settings.oidc_role_map.get(v) in Role.__members__.values()
    ]
    best = Role(settings.oidc_default_role)
    for role in roles:
        if outranks_or_equals(role, best):
            best = role
    return best


async def _sign_in(session: AsyncSession, engines: Engines, claims: dict[str, Any]) -> TokenPair:
    settings = engines.settings
    users = UserRepository(session)
    subject = f"{settings.oidc_issuer}|{claims['sub']}"
    email = str(claims.get("email") or "").lower()
    role = mapped_role(settings, claims)

    user = await users.get_by_oidc_subject(subject)
    created = False
    if user is None and email:
        user = await users.get_by_email(email)
        if user is not None:
            if claims.get("email_verified") is not True:
                raise Conflict("An account with this email exists; sign in with its password.", code="email_taken")
            user.oidc_subject = subject  # link the existing account
    if user is None:
        if not email:
            raise SsoFailed("The identity provider sent no email address.")
        first_user = await users.count() == 0
        name = str(claims.get("name") or email.split("@", 1)[0])[:120]
        user = await users.add(User(email=email, display_name=name, oidc_subject=subject, is_platform_admin=first_user))
        created = True

    auth = AuthService(session, engines)
    if settings.oidc_tenant:
        tenant, role = await _join_sso_tenant(session, settings.oidc_tenant, user, role)
    elif created:
        tenant = await TenantService(session, settings).create_tenant(f"{user.display_name}'s workspace")
        role = Role.OWNER
        session.add(Membership(tenant_id=tenant.id, user_id=user.id, role=role))
        await session.flush()
    else:
        tenant, role = await auth._pick_tenant(user, None)
    await AuditRepository(session, tenant.id).add(
        audit_event(
            "user.registered" if created else "user.login",
            "user",
            user.id,
            tenant_id=tenant.id,
            actor_user_id=user.id,
            details={"method": "oidc", "role": role.value},
        )
    )
    return await auth.issue(user, tenant, role)


async def _join_sso_tenant(session: AsyncSession, slug: str, user: User, role: Role) -> tuple[Tenant, Role]:
    """Single-sign-on users belong to one configured tenant; their role follows the provider at each sign-in."""
    tenant = await TenantRepository(session).get_by_slug(slug)
    if tenant is None or tenant.status != TenantStatus.ACTIVE:
        raise SsoUnavailable(f"The single-sign-on tenant {slug!r} does not exist or is disabled.")
    members = MembershipRepository(session, tenant.id)
    membership = await members.of_user(user.id)
    if membership is None:
        await members.add(Membership(tenant_id=tenant.id, user_id=user.id, role=role))
        return tenant, role
    if membership.status != MemberStatus.ACTIVE:
        raise Forbidden("This membership is deactivated.", code="member_deactivated")
    last_owner = membership.role == Role.OWNER and await members.count_active_owners() <= 1
    if membership.role != role and not last_owner:
        membership.role = role
        await session.flush()
    return tenant, Role(membership.role)
