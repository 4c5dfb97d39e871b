"""Request and response shapes of the identity domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

from nexent.core.netpolicy import AddressPolicy
from nexent.identity.models import MemberStatus, Role, SharePermission, TenantStatus

TenantName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")]
# Length limits on the raw password: long enough for passphrases, short enough that hashing can't be abused.
Password = Annotated[str, StringConstraints(min_length=8, max_length=256)]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- Tenants ---------------------------------------------------------------------------------------------------


class TenantCreate(Strict):
    name: TenantName
    slug: Slug | None = Field(
        default=None, description="URL-safe identifier (3-63 of a-z, 0-9, '-'); derived from the name if omitted."
    )


AllowEntry = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class TenantUpdate(Strict):
    name: TenantName | None = None
    status: TenantStatus | None = None
    skills_network: bool | None = Field(
        default=None,
        description="Whether the scripts of the tenant's skills may use the network (see `PATCH /api/tenant`).",
    )
    private_endpoints: list[AllowEntry] | None = Field(
        default=None,
        max_length=100,
        description="Private hosts, IP addresses and CIDR networks (or `*`) this tenant's model endpoints may use, "
        "besides the platform's `NEXENT_PRIVATE_ENDPOINTS_ALLOW`; replaces the tenant's list. Operator only.",
    )

    @field_validator("private_endpoints")
    @classmethod
    def _parse_allow_list(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else AddressPolicy.parse(value).entries


class TenantSettingsUpdate(Strict):
    """What a tenant's owners and admins change about their own tenant."""

    skills_network: bool | None = Field(
        default=None,
        description="Whether the scripts of the tenant's skills may use the network: only those whose SKILL.md says "
        "`network: true`, and only where the platform's `NEXENT_SKILLS_NETWORK` allows it.",
    )


class TenantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str
    status: TenantStatus
    private_endpoints: list[str] = Field(
        default_factory=list, description="Private hosts and networks this tenant's model endpoints may use."
    )
    skills_network: bool = Field(
        default=False,
        description="Whether the scripts of the tenant's skills may use the network (when their SKILL.md asks and "
        "the platform's `NEXENT_SKILLS_NETWORK` allows it).",
    )
    created_at: datetime
    updated_at: datetime


# --- Sign-in ---------------------------------------------------------------------------------------------------


class RegisterRequest(Strict):
    email: EmailStr
    password: Password
    display_name: DisplayName | None = None
    tenant_name: TenantName | None = Field(default=None, description="Name of the new tenant (without invitation).")
    invitation_code: Secret | None = None


class LoginRequest(Strict):
    email: EmailStr
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    tenant_id: uuid.UUID | None = Field(default=None, description="Tenant to sign in to; default: the last used.")


class RefreshRequest(Strict):
    refresh_token: Secret


class LogoutRequest(Strict):
    refresh_token: Secret
    everywhere: bool = Field(default=False, description="Also end every other session of this user.")


class SwitchTenantRequest(Strict):
    tenant_id: uuid.UUID
    refresh_token: Secret


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    is_platform_admin: bool
    created_at: datetime


class TenantBrief(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    role: Role


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int = Field(description="Seconds until the access token expires.")
    user: UserRead
    tenant: TenantBrief


class MeRead(BaseModel):
    user: UserRead
    tenant: TenantBrief
    permissions: list[str]
    tenants: list[TenantBrief]
    api_key_id: uuid.UUID | None = Field(default=None, description="Set when the caller is an API key.")


class MeUpdate(Strict):
    display_name: DisplayName


class PasswordChange(Strict):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    new_password: Password


# --- Members ---------------------------------------------------------------------------------------------------


class MemberRead(BaseModel):
    user_id: uuid.UUID
    email: str
    display_name: str
    role: Role
    status: MemberStatus
    joined_at: datetime


class MemberUpdate(Strict):
    role: Role | None = None
    status: MemberStatus | None = None


# --- Groups and sharing ----------------------------------------------------------------------------------------


class GroupCreate(Strict):
    name: DisplayName
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class GroupUpdate(Strict):
    name: DisplayName | None = None
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class GroupRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str
    member_ids: list[uuid.UUID] = []
    created_at: datetime


class ShareIn(BaseModel):
    """The right a share grants a group: any resource domain's `PUT /api/<resources>/{id}/shares/{group_id}`."""

    model_config = ConfigDict(extra="forbid")

    permission: SharePermission


class ShareRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    resource_type: str
    resource_id: uuid.UUID
    group_id: uuid.UUID
    permission: SharePermission


# --- Invitations -----------------------------------------------------------------------------------------------


class InvitationCreate(Strict):
    role: Role = Role.USER
    group_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    email: EmailStr | None = Field(default=None, description="Only this email may accept it.")
    max_uses: int = Field(default=1, ge=1, le=10_000)
    expires_in_hours: int = Field(default=168, ge=1, le=24 * 90)


class InvitationRead(BaseModel):
    id: uuid.UUID
    code_prefix: str
    role: Role
    group_ids: list[uuid.UUID]
    email: str | None
    max_uses: int
    uses: int
    expires_at: datetime
    revoked: bool
    created_at: datetime


class InvitationCreated(InvitationRead):
    code: str = Field(description="Shown once; share it with the invitee.")


class InvitationAccept(Strict):
    code: Secret


# --- API keys --------------------------------------------------------------------------------------------------


class ApiKeyCreate(Strict):
    name: DisplayName
    agent_ids: list[uuid.UUID] | None = Field(default=None, max_length=200, description="Limit the key to agents.")
    expires_at: datetime | None = None
    daily_quota: int | None = Field(default=None, ge=1, le=10_000_000, description="Requests per UTC day.")
    rate_limit_per_minute: int | None = Field(
        default=None, ge=1, le=100_000, description="Requests per minute (a fixed window of one clock minute)."
    )


class ApiKeyRead(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    user_id: uuid.UUID
    agent_ids: list[uuid.UUID] | None
    daily_quota: int | None
    rate_limit_per_minute: int | None
    expires_at: datetime | None
    revoked: bool
    last_used_at: datetime | None
    created_at: datetime


# The MCP connection URL's path for a key: the key carried in the path, for MCP clients that cannot send headers.
MCP_KEY_PATH = "/mcp/k/"


class ApiKeyCreated(ApiKeyRead):
    secret: str = Field(description="Shown once; send it as 'Authorization: Bearer <secret>'.")
    mcp_url: str = Field(
        description="Shown once: the MCP connection URL's path (`/mcp/k/<secret>`, on the MCP service's address) "
        "for MCP clients that cannot send headers; revoking the key revokes it."
    )


# --- Audit log -------------------------------------------------------------------------------------------------


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    actor_user_id: uuid.UUID | None
    actor_api_key_id: uuid.UUID | None
    action: str
    resource_type: str
    resource_id: str | None
    details: dict[str, object]
    ip: str | None
    request_id: str | None
    created_at: datetime


def _local_path(value: str) -> str:
    """A path on this site only: one leading `/`, no `//` (another host), no backslash (browsers read it as `/`),
    no control characters (browsers drop tabs and newlines, which could join `/` and `/` again), no fragment (the
    token pair travels in it)."""
    if not value.startswith("/") or value.startswith("//"):
        raise ValueError("Must be a path on this site, starting with a single '/'.")
    if "\\" in value or "#" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("Must not contain backslashes, '#' or control characters.")
    return value


LocalPath = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_local_path)]
