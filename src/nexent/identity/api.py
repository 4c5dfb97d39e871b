"""Identity routes: sign-in, the caller, members, groups, invitations, API keys, audit log, operator tenants."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse, RedirectResponse

from nexent.core.errors import AppError
from nexent.core.openapi import problems
from nexent.core.pagination import Page, PageParamsDep
from nexent.engines.deps import EnginesDep, SessionDep
from nexent.identity import oidc
from nexent.identity.auth import Caller, CurrentCaller, RequireOperator, RequirePermission, UserCaller
from nexent.identity.models import TenantStatus
from nexent.identity.permissions import Permission
from nexent.identity.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    AuditEventRead,
    GroupCreate,
    GroupRead,
    GroupUpdate,
    InvitationAccept,
    InvitationCreate,
    InvitationCreated,
    InvitationRead,
    LocalPath,
    LoginRequest,
    LogoutRequest,
    MemberRead,
    MemberUpdate,
    MeRead,
    MeUpdate,
    PasswordChange,
    RefreshRequest,
    RegisterRequest,
    SwitchTenantRequest,
    TenantBrief,
    TenantCreate,
    TenantRead,
    TenantSettingsUpdate,
    TenantUpdate,
    TokenPair,
    UserRead,
)
from nexent.identity.services.api_keys import ApiKeyService
from nexent.identity.services.audit import AuditService
from nexent.identity.services.groups import GroupService
from nexent.identity.services.invitations import InvitationService, accept_invitation
from nexent.identity.services.members import MemberService
from nexent.identity.services.signin import AuthService
from nexent.identity.services.tenants import OwnTenantService, TenantService

# --- Sign-in ---------------------------------------------------------------------------------------------------

auth_router = APIRouter(prefix="/api/auth", tags=["auth"])


@auth_router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    summary="Create an account.",
    responses=problems(
        s403="Sign-up is closed, or the invitation is for another email.",
        s404="The invitation code is not valid.",
        s409="The email is taken, or the invitation expired or is used up.",
        s429="Too many sign-ups from this address.",
    ),
)
async def register(body: RegisterRequest, session: SessionDep, engines: EnginesDep) -> TokenPair:
    """Without an invitation this creates a tenant owned by the new user (unless sign-up is closed); the very
    first user of the platform is also its administrator."""
    return await AuthService(session, engines).register(body)


@auth_router.post(
    "/login",
    summary="Sign in with email and password.",
    responses=problems(
        s401="Wrong email or password.",
        s403="The account has no active tenant membership.",
        s404="The account is not a member of the tenant asked for.",
        s429="Too many failed sign-ins; wait for `Retry-After` seconds.",
    ),
)
async def login(body: LoginRequest, session: SessionDep, engines: EnginesDep) -> TokenPair:
    return await AuthService(session, engines).login(body)


@auth_router.post(
    "/refresh",
    summary="Trade a refresh token for a new token pair.",
    responses=problems(s401="The refresh token is invalid, reused or expired, or the membership ended."),
)
async def refresh(body: RefreshRequest, session: SessionDep, engines: EnginesDep) -> TokenPair:
    return await AuthService(session, engines).refresh(body.refresh_token)


@auth_router.post(
    "/logout",
    summary="End the session of a refresh token (or every session).",
    status_code=204,
    response_class=Response,
)
async def logout(body: LogoutRequest, session: SessionDep, engines: EnginesDep) -> None:
    await AuthService(session, engines).logout(body.refresh_token, everywhere=body.everywhere)


@auth_router.post(
    "/switch-tenant",
    summary="Get tokens for another tenant the caller belongs to.",
    responses=problems(s404="The caller is not an active member of that tenant."),
)
async def switch_tenant(
    body: SwitchTenantRequest, caller: UserCaller, session: SessionDep, engines: EnginesDep
) -> TokenPair:
    return await AuthService(session, engines).switch_tenant(caller, body.tenant_id, body.refresh_token)


@auth_router.get(
    "/oidc/login",
    summary="Start single sign-on: redirects to the identity provider.",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    responses=problems(s404="Single sign-on is not configured.", s502="The identity provider did not answer."),
)
async def oidc_login(
    request: Request,
    engines: EnginesDep,
    next_path: Annotated[
        LocalPath | None,
        Query(
            alias="next",
            description="A page of this site (a path starting with a single `/`) the callback sends the browser "
            "back to, with the token pair (or the error) in the URL fragment. Without it the callback answers JSON.",
        ),
    ] = None,
) -> RedirectResponse:
    redirect = await oidc.begin(engines, _callback_url(request), next_path)
    response = RedirectResponse(redirect.url, status_code=status.HTTP_302_FOUND)
    response.set_cookie(
        oidc.STATE_COOKIE,
        redirect.cookie,
        max_age=oidc.STATE_TTL_SECONDS,
        path=oidc.COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@auth_router.get(
    "/oidc/callback",
    summary="Finish single sign-on; answers with a token pair (or, when the sign-in started with `next`, redirects "
    "there with the pair or the error in the URL fragment).",
    responses={
        302: {
            "description": "The sign-in started with `next`: the browser goes back to that page, with "
            "`#access_token=...&refresh_token=...&token_type=bearer&expires_in=...` or "
            "`#error=<code>&error_description=...` in the fragment."
        },
        **problems(
            s400="The identity provider refused the sign-in, or the answer does not match the request.",
            s403="Sign-up is closed to this identity.",
            s404="Single sign-on is not configured.",
            s502="The identity provider did not answer.",
        ),
    },
)
async def oidc_callback(
    request: Request,
    session: SessionDep,
    engines: EnginesDep,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state: Annotated[str | None, Query(max_length=1024)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    cookie = request.cookies.get(oidc.STATE_COOKIE)
    next_path = oidc.next_of(engines, cookie)
    response: Response
    try:
        if error or not code or not state:
            raise oidc.SsoFailed(f"The identity provider refused the sign-in: {error or 'no code'}.")
        pair = await oidc.complete(
            session, engines, redirect_uri=_callback_url(request), code=code, state=state, cookie=cookie
        )
    except AppError as failure:
        if next_path is None:
            raise
        await session.rollback()  # answered with a redirect, not an error: nothing of the failed sign-in is kept
        response = _back_to(next_path, {"error": failure.code, "error_description": failure.detail})
    else:
        if next_path is None:
            response = JSONResponse(pair.model_dump(mode="json"))
        else:
            fragment = {
                "access_token": pair.access_token,
                "refresh_token": pair.refresh_token,
                "token_type": pair.token_type,
                "expires_in": str(pair.expires_in),
            }
            response = _back_to(next_path, fragment)
    response.delete_cookie(oidc.STATE_COOKIE, path=oidc.COOKIE_PATH)
    return response


def _back_to(next_path: str, fragment: dict[str, str]) -> RedirectResponse:
    """A redirect to a page of this site with `fragment` after `#`: browsers never send a fragment to a server, so
    no access log or proxy sees the tokens. Not cached, and not passed on as a referrer."""
    response = RedirectResponse(f"{next_path}#{urlencode(fragment)}", status_code=status.HTTP_302_FOUND)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _callback_url(request: Request) -> str:
    settings = request.app.state.engines.settings
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    return f"{base}/api/auth/oidc/callback"


# --- The caller ------------------------------------------------------------------------------------------------

me_router = APIRouter(prefix="/api/me", tags=["me"])


@me_router.get("", summary="The caller: user, tenant, role, permissions and other tenants.")
async def read_me(caller: CurrentCaller, session: SessionDep, engines: EnginesDep) -> MeRead:
    return await AuthService(session, engines).me(caller)


@me_router.patch("", summary="Change the caller's display name.")
async def update_me(body: MeUpdate, caller: UserCaller, session: SessionDep, engines: EnginesDep) -> UserRead:
    return await AuthService(session, engines).update_me(caller, body.display_name)


@me_router.post(
    "/password", summary="Change the password; ends every session.", status_code=204, response_class=Response
)
async def change_password(body: PasswordChange, caller: UserCaller, session: SessionDep, engines: EnginesDep) -> None:
    await AuthService(session, engines).change_password(caller, body)


# --- Members ---------------------------------------------------------------------------------------------------

members_router = APIRouter(prefix="/api/members", tags=["members"])
ManageMembers = Annotated[Caller, RequirePermission(Permission.MANAGE_MEMBERS)]


@members_router.get("", summary="Members of the caller's tenant.")
async def list_members(caller: UserCaller, session: SessionDep, page: PageParamsDep) -> Page[MemberRead]:
    return await MemberService(session, caller).list(page)


@members_router.get("/{user_id}", summary="One member.")
async def get_member(user_id: uuid.UUID, caller: UserCaller, session: SessionDep) -> MemberRead:
    return await MemberService(session, caller).get(user_id)


@members_router.patch("/{user_id}", summary="Change a member's role, deactivate or reactivate them.")
async def update_member(
    user_id: uuid.UUID, body: MemberUpdate, caller: ManageMembers, session: SessionDep
) -> MemberRead:
    return await MemberService(session, caller).update(user_id, body)


@members_router.delete(
    "/{user_id}", summary="Remove a member from the tenant.", status_code=204, response_class=Response
)
async def remove_member(user_id: uuid.UUID, caller: ManageMembers, session: SessionDep) -> None:
    await MemberService(session, caller).remove(user_id)


# --- Groups ----------------------------------------------------------------------------------------------------

groups_router = APIRouter(prefix="/api/groups", tags=["groups"])
ManageGroups = Annotated[Caller, RequirePermission(Permission.MANAGE_GROUPS)]


@groups_router.post("", status_code=status.HTTP_201_CREATED, summary="Create a group.")
async def create_group(body: GroupCreate, caller: ManageGroups, session: SessionDep) -> GroupRead:
    return await GroupService(session, caller).create(body)


@groups_router.get("", summary="Groups of the tenant.")
async def list_groups(caller: UserCaller, session: SessionDep, page: PageParamsDep) -> Page[GroupRead]:
    return await GroupService(session, caller).list(page)


@groups_router.get("/{group_id}", summary="One group with its members.")
async def get_group(group_id: uuid.UUID, caller: UserCaller, session: SessionDep) -> GroupRead:
    return await GroupService(session, caller).get(group_id)


@groups_router.patch("/{group_id}", summary="Rename or describe a group.")
async def update_group(group_id: uuid.UUID, body: GroupUpdate, caller: ManageGroups, session: SessionDep) -> GroupRead:
    return await GroupService(session, caller).update(group_id, body)


@groups_router.delete(
    "/{group_id}", summary="Delete a group (its shares go with it).", status_code=204, response_class=Response
)
async def delete_group(group_id: uuid.UUID, caller: ManageGroups, session: SessionDep) -> None:
    await GroupService(session, caller).delete(group_id)


@groups_router.put("/{group_id}/members/{user_id}", summary="Add a member to a group.")
async def add_group_member(
    group_id: uuid.UUID, user_id: uuid.UUID, caller: ManageGroups, session: SessionDep
) -> GroupRead:
    return await GroupService(session, caller).add_member(group_id, user_id)


@groups_router.delete("/{group_id}/members/{user_id}", summary="Remove a member from a group.")
async def remove_group_member(
    group_id: uuid.UUID, user_id: uuid.UUID, caller: ManageGroups, session: SessionDep
) -> GroupRead:
    return await GroupService(session, caller).remove_member(group_id, user_id)


# --- Invitations -----------------------------------------------------------------------------------------------

invitations_router = APIRouter(prefix="/api/invitations", tags=["invitations"])
ManageInvitations = Annotated[Caller, RequirePermission(Permission.MANAGE_INVITATIONS)]


@invitations_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an invitation code.",
    responses=problems(s404="One of the groups does not exist in the tenant."),
)
async def create_invitation(
    body: InvitationCreate, caller: ManageInvitations, session: SessionDep
) -> InvitationCreated:
    return await InvitationService(session, caller).create(body)


@invitations_router.get("", summary="Invitations of the tenant (codes are not shown again).")
async def list_invitations(caller: ManageInvitations, session: SessionDep, page: PageParamsDep) -> Page[InvitationRead]:
    return await InvitationService(session, caller).list(page)


@invitations_router.delete(
    "/{invitation_id}", summary="Revoke an invitation.", status_code=204, response_class=Response
)
async def revoke_invitation(invitation_id: uuid.UUID, caller: ManageInvitations, session: SessionDep) -> None:
    await InvitationService(session, caller).revoke(invitation_id)


@invitations_router.post(
    "/accept",
    summary="Join another tenant with an invitation code.",
    responses=problems(s404="The invitation code is not valid."),
)
async def accept(body: InvitationAccept, caller: UserCaller, session: SessionDep, engines: EnginesDep) -> TenantBrief:
    return await accept_invitation(session, engines, caller, body.code)


# --- API keys --------------------------------------------------------------------------------------------------

api_keys_router = APIRouter(prefix="/api/api-keys", tags=["api keys"])
ManageApiKeys = Annotated[Caller, RequirePermission(Permission.MANAGE_OWN_API_KEYS)]


@api_keys_router.post("", status_code=status.HTTP_201_CREATED, summary="Create an API key; the secret is shown once.")
async def create_api_key(body: ApiKeyCreate, caller: ManageApiKeys, session: SessionDep) -> ApiKeyCreated:
    return await ApiKeyService(session, caller).create(body)


@api_keys_router.get("", summary="API keys (own ones; admins see all). Only prefixes are shown.")
async def list_api_keys(caller: ManageApiKeys, session: SessionDep, page: PageParamsDep) -> Page[ApiKeyRead]:
    return await ApiKeyService(session, caller).list(page)


@api_keys_router.delete("/{key_id}", summary="Revoke an API key.", status_code=204, response_class=Response)
async def revoke_api_key(key_id: uuid.UUID, caller: ManageApiKeys, session: SessionDep) -> None:
    await ApiKeyService(session, caller).revoke(key_id)


# --- Audit log -------------------------------------------------------------------------------------------------

audit_router = APIRouter(prefix="/api/audit-log", tags=["audit"])


@audit_router.get("", summary="Security-relevant changes in the tenant, newest first.")
async def list_audit_events(
    caller: Annotated[Caller, RequirePermission(Permission.READ_AUDIT_LOG)],
    session: SessionDep,
    page: PageParamsDep,
    action: Annotated[str | None, Query(max_length=60)] = None,
    resource_type: Annotated[str | None, Query(max_length=40)] = None,
) -> Page[AuditEventRead]:
    return await AuditService(session, caller).list(page, action=action, resource_type=resource_type)


# --- The caller's tenant --------------------------------------------------------------------------------------

tenant_router = APIRouter(prefix="/api/tenant", tags=["tenant"])


@tenant_router.get("", summary="The caller's tenant and its settings.")
async def read_tenant(caller: UserCaller, session: SessionDep) -> TenantRead:
    return await OwnTenantService(session, caller).get()


@tenant_router.patch(
    "",
    summary="Change the caller's tenant's settings: whether its skills' scripts may use the network.",
)
async def update_own_tenant(
    body: TenantSettingsUpdate,
    caller: Annotated[Caller, RequirePermission(Permission.SKILLS_NETWORK)],
    session: SessionDep,
) -> TenantRead:
    return await OwnTenantService(session, caller).update(body)


# --- Operator: tenants -----------------------------------------------------------------------------------------

tenants_router = APIRouter(prefix="/api/admin/tenants", tags=["operator"])


@tenants_router.post("", status_code=status.HTTP_201_CREATED, summary="Create a tenant.")
async def create_tenant(
    body: TenantCreate, operator: RequireOperator, session: SessionDep, engines: EnginesDep
) -> TenantRead:
    return await TenantService(session, engines.settings, operator).create(body)


@tenants_router.get("", summary="List tenants.")
async def list_tenants(
    operator: RequireOperator,
    session: SessionDep,
    engines: EnginesDep,
    page: PageParamsDep,
    status: Annotated[TenantStatus | None, Query(description="Only tenants in this state.")] = None,
    q: Annotated[str | None, Query(max_length=120, description="Substring of the name or slug.")] = None,
) -> Page[TenantRead]:
    return await TenantService(session, engines.settings, operator).list(page, status=status, query=q)


@tenants_router.get("/{tenant_id}", summary="Read a tenant.")
async def get_tenant(
    tenant_id: uuid.UUID, operator: RequireOperator, session: SessionDep, engines: EnginesDep
) -> TenantRead:
    return await TenantService(session, engines.settings, operator).get(tenant_id)


@tenants_router.patch(
    "/{tenant_id}", summary="Rename, disable or re-enable a tenant, or set the private endpoints its models may use."
)
async def update_tenant(
    tenant_id: uuid.UUID, body: TenantUpdate, operator: RequireOperator, session: SessionDep, engines: EnginesDep
) -> TenantRead:
    return await TenantService(session, engines.settings, operator, process=engines.process).update(tenant_id, body)


routers = [
    auth_router,
    me_router,
    members_router,
    groups_router,
    invitations_router,
    api_keys_router,
    audit_router,
    tenant_router,
    tenants_router,
]
