"""Single sign-on against a real OpenID Connect provider on loopback (tests/support/oidc_provider.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from nexent.identity import oidc
from tests.conftest import make_settings, serve_in_process
from tests.support.identity import PASSWORD, bearer, register
from tests.support.oidc_provider import RunningProvider, run_provider
from tests.test_http import assert_problem

USERS: dict[str, dict[str, Any]] = {
    "alice": {"sub": "alice-sub", "email": "alice@example.com", "name": "Alice", "groups": ["nexent-admins", "staff"]},
    "bob": {"sub": "bob-sub", "email": "bob@example.com", "name": "Bob", "groups": ["staff"]},
    "carl": {"sub": "carl-sub", "email": "carl@example.com", "name": "Carl", "groups": []},
    "dora": {"sub": "dora-sub", "email": "dora@example.com", "name": "Dora", "email_verified": False},
}


@pytest.fixture
def idp() -> Iterator[RunningProvider]:
    oidc._cache.clear()
    with run_provider(users=USERS) as provider:
        yield provider


def sso_settings(tmp_path: Path, idp: RunningProvider, **extra: Any) -> dict[str, Any]:
    return {
        "oidc_issuer": idp.issuer,
        "oidc_client_id": idp.client_id,
        "oidc_client_secret": idp.client_secret,
        "oidc_role_claim": "groups",
        "oidc_role_map": {"nexent-admins": "admin", "staff": "developer"},
        **extra,
    }


@pytest.fixture
async def client(tmp_path: Path, idp: RunningProvider) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(make_settings(tmp_path, **sso_settings(tmp_path, idp))) as http:
        yield http


async def sso(
    client: httpx.AsyncClient, username: str, *, tamper: dict[str, str] | None = None, next_path: str | None = None
) -> httpx.Response:
    """Walk the browser's part: start at the platform, visit the provider, come back with the code."""
    start = await client.get("/api/auth/oidc/login", params={"next": next_path} if next_path is not None else None)
    assert start.status_code == 302, start.text
    authorize = start.headers["location"] + "&" + urlencode({"login_hint": username})
    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(authorize)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["location"])
    params = {k: v[0] for k, v in parse_qs(back.query).items()}
    params.update(tamper or {})
    return await client.get(back.path, params=params)


async def test_a_new_user_signs_in_and_gets_a_tenant(client: httpx.AsyncClient, idp: RunningProvider) -> None:
    response = await sso(client, "carl")
    assert response.status_code == 200, response.text
    pair = response.json()
    assert pair["user"]["email"] == "carl@example.com" and pair["user"]["display_name"] == "Carl"
    assert pair["tenant"]["role"] == "owner" and pair["user"]["is_platform_admin"] is True
    me = await client.get("/api/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    # The client authenticated with its secret and PKCE at the token endpoint.
    record = idp.provider.token_requests[-1]
    assert record.status_code == 200 and "code_verifier" in record.form

    again = (await sso(client, "carl")).json()
    assert again["user"]["id"] == pair["user"]["id"] and again["tenant"]["id"] == pair["tenant"]["id"]
    # A password cannot be used on an account that has none.
    login = await client.post("/api/auth/login", json={"email": "carl@example.com", "password": PASSWORD})
    assert_problem(login, 401, "invalid_credentials")


async def test_sso_users_join_the_configured_tenant_with_mapped_roles(tmp_path: Path, idp: RunningProvider) -> None:
    settings = make_settings(tmp_path, **sso_settings(tmp_path, idp, oidc_tenant="acme"))
    async with serve_in_process(settings) as client:
        created = await client.post(
            "/api/admin/tenants", json={"name": "Acme", "slug": "acme"}, headers=bearer("operator-secret")
        )
        assert created.status_code == 201
        alice = (await sso(client, "alice")).json()
        bob = (await sso(client, "bob")).json()
        carl = (await sso(client, "carl")).json()
        assert {alice["tenant"]["slug"], bob["tenant"]["slug"], carl["tenant"]["slug"]} == {"acme"}
        assert (alice["tenant"]["role"], bob["tenant"]["role"], carl["tenant"]["role"]) == (
            "admin",
            "developer",
            "user",
        )

        # The provider is the source of truth for roles: a change there applies at the next sign-in.
        idp.provider.users["bob"]["groups"] = ["nexent-admins"]
        assert (await sso(client, "bob")).json()["tenant"]["role"] == "admin"

        members = await client.get("/api/members", headers=bearer(alice["access_token"]))
        assert sorted(m["email"] for m in members.json()["items"]) == [
            "alice@example.com",
            "bob@example.com",
            "carl@example.com",
        ]


async def test_an_existing_account_is_linked_by_verified_email(client: httpx.AsyncClient) -> None:
    password_user = await register(client, "bob@example.com")
    linked = (await sso(client, "bob")).json()
    assert linked["user"]["id"] == password_user["user"]["id"]
    assert linked["tenant"]["id"] == password_user["tenant"]["id"]

    await register(client, "dora@example.com")
    unverified = await sso(client, "dora")
    assert_problem(unverified, 409, "email_taken")


@pytest.mark.parametrize(
    "tamper",
    [{"state": "forged-state"}, {"code": "forged-code"}],
)
async def test_forged_answers_are_refused(client: httpx.AsyncClient, tamper: dict[str, str]) -> None:
    response = await sso(client, "carl", tamper=tamper)
    assert_problem(response, 400, "sso_failed")


async def test_a_callback_without_the_state_cookie_is_refused(client: httpx.AsyncClient) -> None:
    start = await client.get("/api/auth/oidc/login")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    client.cookies.clear()
    response = await client.get("/api/auth/oidc/callback", params={"code": "x", "state": state})
    body = assert_problem(response, 400, "sso_failed")
    assert "missing" in str(body["detail"])


async def test_provider_errors_are_reported(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/oidc/callback", params={"error": "access_denied"})
    assert_problem(response, 400, "sso_failed")


@pytest.mark.parametrize(
    "override",
    [{"aud": "another-client"}, {"iss": "https://evil.example.com"}, {"nonce": "replayed"}, {"exp": 1000}],
)
async def test_id_tokens_that_do_not_verify_are_refused(
    client: httpx.AsyncClient, idp: RunningProvider, override: dict[str, Any]
) -> None:
    idp.provider.id_token_overrides.update(override)
    assert_problem(await sso(client, "carl"), 400, "sso_failed")


async def test_rotated_provider_keys_are_fetched_again(client: httpx.AsyncClient, idp: RunningProvider) -> None:
    assert (await sso(client, "carl")).status_code == 200
    idp.provider.rotate_key()
    assert (await sso(client, "carl")).status_code == 200


async def test_sso_off_and_provider_down(tmp_path: Path) -> None:
    async with serve_in_process(make_settings(tmp_path)) as client:
        assert_problem(await client.get("/api/auth/oidc/login"), 404, "sso_disabled")
    oidc._cache.clear()
    down = make_settings(tmp_path, oidc_issuer="http://127.0.0.1:1", oidc_client_id="x", oidc_client_secret="y")
    async with serve_in_process(down) as client:
        assert_problem(await client.get("/api/auth/oidc/login"), 502, "sso_provider_unavailable")


# --- Back into the UI: `next` -----------------------------------------------------------------------------------


def fragment_of(response: httpx.Response, next_path: str) -> dict[str, str]:
    """The parameters in the fragment of a redirect to `next_path` (which must be exactly the target)."""
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    target, _, fragment = location.partition("#")
    assert target == next_path
    assert response.headers["cache-control"] == "no-store"
    # The state cookie is spent.
    assert oidc.STATE_COOKIE in response.headers["set-cookie"] and "Max-Age=0" in response.headers["set-cookie"]
    return {k: v[0] for k, v in parse_qs(fragment, keep_blank_values=True).items()}


async def test_with_next_the_callback_redirects_there_with_the_pair_in_the_fragment(
    client: httpx.AsyncClient,
) -> None:
    next_path = "/app/signed-in?tab=chat"
    response = await sso(client, "carl", next_path=next_path)
    pair = fragment_of(response, next_path)
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert pair["token_type"] == "bearer" and pair["expires_in"] == str(15 * 60)
    assert pair["refresh_token"].startswith("nxr_")
    me = await client.get("/api/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200 and me.json()["user"]["email"] == "carl@example.com"
    renewed = await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert renewed.status_code == 200
    # Without next, the same sign-in answers JSON as before.
    plain = await sso(client, "carl")
    assert plain.status_code == 200 and plain.json()["user"]["email"] == "carl@example.com"


async def test_with_next_failures_redirect_there_with_the_error_in_the_fragment(
    client: httpx.AsyncClient, idp: RunningProvider
) -> None:
    forged = fragment_of(await sso(client, "carl", tamper={"state": "forged"}, next_path="/login"), "/login")
    assert forged["error"] == "sso_failed" and "does not match" in forged["error_description"]

    await register(client, "dora@example.com")  # Dora's email is not verified at the provider: no linking
    taken = fragment_of(await sso(client, "dora", next_path="/login"), "/login")
    assert taken["error"] == "email_taken" and taken["error_description"]

    start = await client.get("/api/auth/oidc/login", params={"next": "/login"})
    assert start.status_code == 302
    denied = await client.get("/api/auth/oidc/callback", params={"error": "access_denied"})
    error = fragment_of(denied, "/login")
    assert error["error"] == "sso_failed" and "access_denied" in error["error_description"]

    # Nothing of a failed sign-in was kept: no account for Dora's identity, and Carl's first sign-in still works.
    idp.provider.id_token_overrides.update({"aud": "another-client"})
    bad_token = fragment_of(await sso(client, "carl", next_path="/login"), "/login")
    assert bad_token["error"] == "sso_failed"
    idp.provider.id_token_overrides.clear()
    assert (await sso(client, "carl")).status_code == 200


async def test_without_the_state_cookie_a_failure_is_answered_as_json(client: httpx.AsyncClient) -> None:
    # Where to go back to travels only in the encrypted state cookie: without it, no redirect anywhere.
    start = await client.get("/api/auth/oidc/login", params={"next": "/login"})
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    client.cookies.clear()
    response = await client.get("/api/auth/oidc/callback", params={"code": "x", "state": state})
    assert_problem(response, 400, "sso_failed")
    client.cookies.set(oidc.STATE_COOKIE, "not-ours", path=oidc.COOKIE_PATH)
    response = await client.get("/api/auth/oidc/callback", params={"code": "x", "state": state})
    assert_problem(response, 400, "sso_failed")


@pytest.mark.parametrize(
    "next_path",
    [
        "https://evil.example.com/",
        "//evil.example.com/",
        "/\\evil.example.com/",
        "\\evil.example.com",
        "/app\\..\\x",
        "javascript:alert(1)",
        "evil.example.com/login",
        "",
        "/\t/evil.example.com",
        "/\n/evil.example.com",
        "/app#already",
        "/" + "a" * 2000,
    ],
)
async def test_a_next_outside_this_site_is_refused(client: httpx.AsyncClient, next_path: str) -> None:
    response = await client.get("/api/auth/oidc/login", params={"next": next_path})
    body = assert_problem(response, 422, "validation_error")
    assert "next" in str(body)
    assert oidc.STATE_COOKIE not in response.headers.get("set-cookie", "")
