"""Access tokens (short-lived HS256 JWTs) and opaque secrets (refresh tokens, API keys, invitation codes).

Opaque secrets are random, shown once, and stored only as SHA-256 hashes: they carry 256 bits of entropy, so a
fast hash is enough and lets a key be found by its hash in one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from nexent.identity.models import Role

ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
_ALGORITHM = "HS256"
_ISSUER = "nexent"

API_KEY_PREFIX = "nxk_"
REFRESH_TOKEN_PREFIX = "nxr_"  # noqa: S105 - a prefix, not a secret
INVITATION_PREFIX = "nxi_"


class InvalidAccessToken(Exception):
    """The token is malformed, expired, or not signed by this platform."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: Role


def issue_access_token(secret: bytes, claims: AccessClaims, ttl: timedelta) -> str:
    now = datetime.now(UTC)
    payload = {
        "iss": _ISSUER,
        "typ": ACCESS_TOKEN_TYPE,
        "sub": str(claims.user_id),
        "tid": str(claims.tenant_id),
        "role": claims.role.value,
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(payload, secret, algorithm=_ALGORITHM)


def decode_access_token(secret: bytes, token: str) -> AccessClaims:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            issuer=_ISSUER,
            options={"require": ["exp", "iat", "sub", "tid", "role", "typ"]},
        )
        if payload["typ"] != ACCESS_TOKEN_TYPE:
            raise InvalidAccessToken("not an access token")
        return AccessClaims(uuid.UUID(payload["sub"]), uuid.UUID(payload["tid"]), Role(payload["role"]))
    except jwt.ExpiredSignatureError:
        raise InvalidAccessToken("expired") from None
    except (jwt.InvalidTokenError, ValueError, KeyError, TypeError):
        raise InvalidAccessToken("invalid") from None


@dataclass(frozen=True)
class OpaqueSecret:
    value: str  # shown to the user once
    hash: str  # stored
    display_prefix: str  # stored and shown in listings, to tell keys apart


def new_secret(prefix: str) -> OpaqueSecret:
    value = prefix + secrets.token_urlsafe(32)
    return OpaqueSecret(value=value, hash=hash_secret(value), display_prefix=value[: len(prefix) + 6])


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
