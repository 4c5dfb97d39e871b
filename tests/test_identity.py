"""Identity end to end over HTTP: accounts, sessions, members, groups, invitations, API keys, audit log."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import PostgresDatabases, make_settings, serve_in_process
from tests.support.identity import PASSWORD, bearer, invite_and_register, register
from tests.test_http import assert_problem


@pytest.fixture(params=["sqlite", "postgres"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases
) -> AsyncIterator[httpx.AsyncClient]:
    overrides: dict[str, Any] = (
        {"database_url": await pg_databases.create(migrated=True)} if request.param == "postgres" else {}
    )
    async with serve_in_process(make_settings(tmp_path, **overrides)) as http:
        yield http


@pytest.fixture
async def sqlite_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(make_settings(tmp_path, login_max_attempts=3)) as http:
        yield http


# --- Accounts and sessions -------------------------------------------------------------------------------------


async def test_first_user_owns_a_new_tenant_and_administers_the_platform(client: httpx.AsyncClient) -> None:
    first = await register(client, "Ada@Example.com", display_name="Ada", tenant_name="Analytical Engines")
    assert first["user"]["email"] == "ada@example.com"
    assert first["user"]["is_platform_admin"] is True
    assert first["tenant"]["name"] == "Analytical Engines" and first["tenant"]["role"] == "owner"
    assert first["token_type"] == "bearer" and first["expires_in"] == 15 * 60

    second = await register(client, "bob@example.com")
    assert second["user"]["is_platform_admin"] is False
    assert second["tenant"]["id"] != first["tenant"]["id"] and second["tenant"]["role"] == "owner"

    me = (await client.get("/api/me", headers=bearer(first["access_token"]))).json()
    assert me["user"]["display_name"] == "Ada" and me["tenant"]["id"] == first["tenant"]["id"]
    assert "members.manage" in me["permissions"] and "tenant.manage" in me["permissions"]


async def test_registration_validates(client: httpx.AsyncClient) -> None:
    await register(client, "taken@example.com")
    assert_problem(
        await client.post("/api/auth/register", json={"email": "TAKEN@example.com", "password": PASSWORD}),
        409,
        "email_taken",
    )
    for body in (
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "short@example.com", "password": "1234567"},
        {"email": "x@example.com", "password": "p" * 300},
        {"email": "x@example.com"},
    ):
        assert_problem(await client.post("/api/auth/register", json=body), 422, "validation_error")
    bad_code = await client.post(
        "/api/auth/register", json={"email": "c@example.com", "password": PASSWORD, "invitation_code": "nxi_nope"}
    )
    assert_problem(bad_code, 404, "invalid_invitation")


async def test_closed_signup_needs_an_invitation(tmp_path: Path) -> None:
    async with serve_in_process(make_settings(tmp_path, open_signup=False)) as client:
        owner = await register(client, "first@example.com")  # the first user may always register
        refused = await client.post("/api/auth/register", json={"email": "x@example.com", "password": PASSWORD})
        assert_problem(refused, 403, "signup_closed")
        invited = await invite_and_register(client, owner["access_token"], "invited@example.com", role="developer")
        assert invited["tenant"]["id"] == owner["tenant"]["id"] and invited["tenant"]["role"] == "developer"


@pytest.fixture(params=["sqlite", "postgres"])
async def no_grace_client(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases
) -> AsyncIterator[httpx.AsyncClient]:
    """As `client`, without the grace window of rotated refresh tokens: presenting one again is reuse at once."""
    overrides: dict[str, Any] = (
        {"database_url": await pg_databases.create(migrated=True)} if request.param == "postgres" else {}
    )
    async with serve_in_process(make_settings(tmp_path, refresh_grace_seconds=0, **overrides)) as http:
        yield http


async def test_login_refresh_and_logout(no_grace_client: httpx.AsyncClient) -> None:
    client = no_grace_client
    await register(client, "carol@example.com")
    wrong = await client.post("/api/auth/login", json={"email": "carol@example.com", "password": "wrong-password"})
    assert_problem(wrong, 401, "invalid_credentials")
    unknown = await client.post("/api/auth/login", json={"email": "nobody@example.com", "password": PASSWORD})
    assert_problem(unknown, 401, "invalid_credentials")
    assert unknown.json()["detail"] == wrong.json()["detail"]  # no hint which one was wrong

    login = await client.post("/api/auth/login", json={"email": "CAROL@example.com", "password": PASSWORD})
    assert login.status_code == 200
    pair = login.json()

    renewed = await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert renewed.status_code == 200
    new_pair = renewed.json()
    assert new_pair["refresh_token"] != pair["refresh_token"]
    assert (await client.get("/api/me", headers=bearer(new_pair["access_token"]))).status_code == 200

    # A refresh token works once; replaying it ends the whole session, including the token it was traded for.
    replay = await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_problem(replay, 401, "refresh_token_reused")
    after_theft = await client.post("/api/auth/refresh", json={"refresh_token": new_pair["refresh_token"]})
    assert_problem(after_theft, 401, "refresh_token_reused")

    fresh = (await client.post("/api/auth/login", json={"email": "carol@example.com", "password": PASSWORD})).json()
    logout = await client.post("/api/auth/logout", json={"refresh_token": fresh["refresh_token"]})
    assert logout.status_code == 204
    gone = await client.post("/api/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert gone.status_code == 401
    assert (await client.post("/api/auth/logout", json={"refresh_token": fresh["refresh_token"]})).status_code == 204
    unknown_token = await client.post("/api/auth/refresh", json={"refresh_token": "nxr_unknown"})
    assert_problem(unknown_token, 401, "invalid_refresh_token")


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post("/api/auth/refresh", json={"refresh_token": refresh_token})


async def test_a_token_rotated_moments_ago_gets_a_pair_of_the_same_session(client: httpx.AsyncClient) -> None:
    # Two tabs of one browser: one refreshed, the other presents the same (now rotated) token a moment later.
    login = await register(client, "tabs@example.com")
    first = await refresh(client, login["refresh_token"])
    assert first.status_code == 200
    second = await refresh(client, login["refresh_token"])
    assert second.status_code == 200, second.text
    pairs = [first.json(), second.json()]
    assert pairs[0]["refresh_token"] != pairs[1]["refresh_token"] != login["refresh_token"]
    for pair in pairs:
        assert pair["token_type"] == "bearer" and pair["user"]["email"] == "tabs@example.com"
        assert (await client.get("/api/me", headers=bearer(pair["access_token"]))).status_code == 200
    # Both tabs go on refreshing, each with its own token.
    renewed = [await refresh(client, pair["refresh_token"]) for pair in pairs]
    assert [r.status_code for r in renewed] == [200, 200]
    # One session: signing out in one tab ends the other's too, and the grace ends with the session.
    await client.post("/api/auth/logout", json={"refresh_token": renewed[0].json()["refresh_token"]})
    assert_problem(await refresh(client, renewed[1].json()["refresh_token"]), 401, "refresh_token_reused")
    assert_problem(await refresh(client, pairs[0]["refresh_token"]), 401, "refresh_token_reused")
    assert_problem(await refresh(client, login["refresh_token"]), 401, "refresh_token_reused")


async def test_two_refreshes_with_one_token_at_the_same_moment_both_succeed(client: httpx.AsyncClient) -> None:
    login = await register(client, "race@example.com")
    token = login["refresh_token"]
    for _ in range(5):
        answers = await asyncio.gather(refresh(client, token), refresh(client, token), refresh(client, token))
        assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
        tokens = {a.json()["refresh_token"] for a in answers}
        assert len(tokens) == 3
        token = sorted(tokens)[0]
    # Every pair handed out belongs to the one live session.
    assert (await refresh(client, token)).status_code == 200


async def test_without_grace_a_race_for_one_token_has_one_winner_and_no_server_error(
    no_grace_client: httpx.AsyncClient,
) -> None:
    client = no_grace_client
    login = await register(client, "strict-race@example.com")
    answers = await asyncio.gather(*(refresh(client, login["refresh_token"]) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 401, 401], [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 401:
            assert_problem(answer, 401, "refresh_token_reused")
    # The reuse ended the session: the winner's new token is refused too.
    winner = next(a.json() for a in answers if a.status_code == 200)
    assert_problem(await refresh(client, winner["refresh_token"]), 401, "refresh_token_reused")


async def test_after_the_grace_window_a_rotated_token_is_reuse_and_ends_the_session(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases
) -> None:
    for backend in ("sqlite", "postgres"):
        overrides: dict[str, Any] = (
            {"database_url": await pg_databases.create(migrated=True)} if backend == "postgres" else {}
        )
        settings = make_settings(tmp_path / backend, refresh_grace_seconds=1, **overrides)
        async with serve_in_process(settings) as client:
            login = await register(client, f"late-{backend}@example.com")
            successor = (await refresh(client, login["refresh_token"])).json()
            await asyncio.sleep(1.2)
            assert_problem(await refresh(client, login["refresh_token"]), 401, "refresh_token_reused")
            # The whole session ended, the successor included.
            assert_problem(await refresh(client, successor["refresh_token"]), 401, "refresh_token_reused")


async def test_logout_everywhere_ends_every_session(client: httpx.AsyncClient) -> None:
    first = await register(client, "dan@example.com")
    second = (await client.post("/api/auth/login", json={"email": "dan@example.com", "password": PASSWORD})).json()
    await client.post("/api/auth/logout", json={"refresh_token": second["refresh_token"], "everywhere": True})
    for pair in (first, second):
        refused = await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert refused.status_code == 401


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        jwt.encode(
            {"sub": str(uuid.uuid4()), "tid": str(uuid.uuid4()), "role": "owner"},
            "a-key-of-someone-else-entirely-0123456789",
        ),
    ],
)
async def test_malformed_and_foreign_tokens_are_refused(client: httpx.AsyncClient, token: str) -> None:
    assert_problem(await client.get("/api/me", headers=bearer(token)), 401, "invalid_token")


async def test_expired_access_tokens_are_refused(tmp_path: Path) -> None:
    async with serve_in_process(make_settings(tmp_path)) as client:
        pair = await register(client, "eve@example.com")
        app = client._transport.app  # type: ignore[attr-defined]
        secret = app.state.engines.keys.jwt_secret
        claims = jwt.decode(pair["access_token"], secret, algorithms=["HS256"], issuer="nexent")
        claims["exp"] = datetime.now(UTC) - timedelta(seconds=1)
        expired = jwt.encode(claims, secret, algorithm="HS256")
        response = await client.get("/api/me", headers=bearer(expired))
        body = assert_problem(response, 401, "token_expired")
        assert "refresh" in str(body["detail"])
        assert response.headers["www-authenticate"] == "Bearer"


async def test_brute_force_login_is_slowed_down(sqlite_client: httpx.AsyncClient) -> None:
    await register(sqlite_client, "frank@example.com")
    attempt = {"email": "frank@example.com", "password": "not-the-password"}
    statuses = [(await sqlite_client.post("/api/auth/login", json=attempt)).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    limited = await sqlite_client.post("/api/auth/login", json={**attempt, "password": PASSWORD})
    body = assert_problem(limited, 429, "too_many_attempts")
    assert int(limited.headers["retry-after"]) > 0 and "wait" in str(body["detail"])


async def test_change_password_ends_sessions(client: httpx.AsyncClient) -> None:
    pair = await register(client, "gina@example.com")
    wrong = await client.post(
        "/api/me/password",
        json={"current_password": "nope-nope", "new_password": "brand new secret"},
        headers=bearer(pair["access_token"]),
    )
    assert_problem(wrong, 403, "invalid_credentials")
    changed = await client.post(
        "/api/me/password",
        json={"current_password": PASSWORD, "new_password": "brand new secret"},
        headers=bearer(pair["access_token"]),
    )
    assert changed.status_code == 204
    assert (await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})).status_code == 401
    old = await client.post("/api/auth/login", json={"email": "gina@example.com", "password": PASSWORD})
    assert old.status_code == 401
    new = await client.post("/api/auth/login", json={"email": "gina@example.com", "password": "brand new secret"})
    assert new.status_code == 200


# --- Several tenants -------------------------------------------------------------------------------------------


async def test_a_user_in_several_tenants_can_switch(client: httpx.AsyncClient) -> None:
    own = await register(client, "hal@example.com", tenant_name="Own")
    other_owner = await register(client, "ida@example.com", tenant_name="Other")
    invitation = await client.post(
        "/api/invitations", json={"role": "developer"}, headers=bearer(other_owner["access_token"])
    )
    accepted = await client.post(
        "/api/invitations/accept", json={"code": invitation.json()["code"]}, headers=bearer(own["access_token"])
    )
    assert accepted.status_code == 200 and accepted.json()["role"] == "developer"

    me = (await client.get("/api/me", headers=bearer(own["access_token"]))).json()
    assert sorted(t["name"] for t in me["tenants"]) == ["Other", "Own"]

    switched = await client.post(
        "/api/auth/switch-tenant",
        json={"tenant_id": other_owner["tenant"]["id"], "refresh_token": own["refresh_token"]},
        headers=bearer(own["access_token"]),
    )
    assert switched.status_code == 200
    in_other = switched.json()
    assert in_other["tenant"]["name"] == "Other" and in_other["tenant"]["role"] == "developer"
    me_other = (await client.get("/api/me", headers=bearer(in_other["access_token"]))).json()
    assert "members.manage" not in me_other["permissions"] and "agents.manage" in me_other["permissions"]

    # Signing in again lands in the tenant used last.
    login = await client.post("/api/auth/login", json={"email": "hal@example.com", "password": PASSWORD})
    assert login.json()["tenant"]["name"] == "Other"
    explicit = await client.post(
        "/api/auth/login",
        json={"email": "hal@example.com", "password": PASSWORD, "tenant_id": own["tenant"]["id"]},
    )
    assert explicit.json()["tenant"]["name"] == "Own"

    stranger = await register(client, "jo@example.com")
    refused = await client.post(
        "/api/auth/switch-tenant",
        json={"tenant_id": stranger["tenant"]["id"], "refresh_token": in_other["refresh_token"]},
        headers=bearer(in_other["access_token"]),
    )
    assert_problem(refused, 404, "tenant_not_found")


# --- Members and roles -----------------------------------------------------------------------------------------


async def test_member_management(client: httpx.AsyncClient) -> None:
    owner = await register(client, "kim@example.com")
    admin = await invite_and_register(client, owner["access_token"], "lee@example.com", role="admin")
    user = await invite_and_register(client, owner["access_token"], "max@example.com")
    user_id = user["user"]["id"]

    members = (await client.get("/api/members", headers=bearer(owner["access_token"]))).json()
    assert [(m["email"], m["role"]) for m in members["items"]] == [
        ("kim@example.com", "owner"),
        ("lee@example.com", "admin"),
        ("max@example.com", "user"),
    ]

    # A user may look but not manage.
    refused = await client.patch(
        f"/api/members/{user_id}", json={"role": "admin"}, headers=bearer(user["access_token"])
    )
    assert_problem(refused, 403, "permission_denied")

    promoted = await client.patch(
        f"/api/members/{user_id}", json={"role": "developer"}, headers=bearer(admin["access_token"])
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "developer"
    # Roles apply at once, to tokens already issued.
    me = (await client.get("/api/me", headers=bearer(user["access_token"]))).json()
    assert me["tenant"]["role"] == "developer"

    # Admins cannot make owners, nor touch owners.
    to_owner = await client.patch(
        f"/api/members/{user_id}", json={"role": "owner"}, headers=bearer(admin["access_token"])
    )
    assert_problem(to_owner, 403, "permission_denied")
    owner_id = owner["user"]["id"]
    touch_owner = await client.delete(f"/api/members/{owner_id}", headers=bearer(admin["access_token"]))
    assert_problem(touch_owner, 403, "permission_denied")

    # The last owner stays.
    demote_self = await client.patch(
        f"/api/members/{owner_id}", json={"role": "admin"}, headers=bearer(owner["access_token"])
    )
    assert_problem(demote_self, 409, "last_owner")

    # Deactivation locks the member out at once, sessions included.
    deactivated = await client.patch(
        f"/api/members/{user_id}", json={"status": "deactivated"}, headers=bearer(owner["access_token"])
    )
    assert deactivated.json()["status"] == "deactivated"
    assert_problem(await client.get("/api/me", headers=bearer(user["access_token"])), 401, "member_deactivated")
    assert (await client.post("/api/auth/refresh", json={"refresh_token": user["refresh_token"]})).status_code == 401
    login = await client.post("/api/auth/login", json={"email": "max@example.com", "password": PASSWORD})
    assert_problem(login, 403, "no_active_membership")

    await client.patch(f"/api/members/{user_id}", json={"status": "active"}, headers=bearer(owner["access_token"]))
    removed = await client.delete(f"/api/members/{user_id}", headers=bearer(owner["access_token"]))
    assert removed.status_code == 204
    assert_problem(
        await client.get(f"/api/members/{user_id}", headers=bearer(owner["access_token"])), 404, "member_not_found"
    )


# --- Groups and invitations ------------------------------------------------------------------------------------


async def test_groups(client: httpx.AsyncClient) -> None:
    owner = await register(client, "nia@example.com")
    member = await invite_and_register(client, owner["access_token"], "oli@example.com")
    headers = bearer(owner["access_token"])
    group = (await client.post("/api/groups", json={"name": "Research", "description": "R&D"}, headers=headers)).json()
    duplicate = await client.post("/api/groups", json={"name": "research"}, headers=headers)
    assert_problem(duplicate, 409, "group_name_taken")

    added = await client.put(f"/api/groups/{group['id']}/members/{member['user']['id']}", headers=headers)
    assert added.json()["member_ids"] == [member["user"]["id"]]
    stranger = await register(client, "pat@example.com")
    not_member = await client.put(f"/api/groups/{group['id']}/members/{stranger['user']['id']}", headers=headers)
    assert_problem(not_member, 404, "member_not_found")

    renamed = await client.patch(f"/api/groups/{group['id']}", json={"name": "R&D"}, headers=headers)
    assert renamed.json()["name"] == "R&D"
    listed = (await client.get("/api/groups", headers=bearer(member["access_token"]))).json()
    assert [g["name"] for g in listed["items"]] == ["R&D"]
    assert_problem(
        await client.post("/api/groups", json={"name": "Mine"}, headers=bearer(member["access_token"])),
        403,
        "permission_denied",
    )
    removed = await client.delete(f"/api/groups/{group['id']}/members/{member['user']['id']}", headers=headers)
    assert removed.json()["member_ids"] == []
    assert (await client.delete(f"/api/groups/{group['id']}", headers=headers)).status_code == 204
    assert_problem(await client.get(f"/api/groups/{group['id']}", headers=headers), 404, "group_not_found")


async def test_invitations(client: httpx.AsyncClient) -> None:
    owner = await register(client, "quinn@example.com")
    headers = bearer(owner["access_token"])
    group = (await client.post("/api/groups", json={"name": "Ops"}, headers=headers)).json()
    created = await client.post(
        "/api/invitations",
        json={"role": "developer", "group_ids": [group["id"]], "max_uses": 2, "expires_in_hours": 24},
        headers=headers,
    )
    assert created.status_code == 201
    invitation = created.json()
    assert invitation["code"].startswith("nxi_") and invitation["code"].startswith(invitation["code_prefix"])

    joined = await register(client, "rae@example.com", invitation_code=invitation["code"])
    assert joined["tenant"]["id"] == owner["tenant"]["id"] and joined["tenant"]["role"] == "developer"
    ops = (await client.get(f"/api/groups/{group['id']}", headers=headers)).json()
    assert ops["member_ids"] == [joined["user"]["id"]]

    await register(client, "sam@example.com", invitation_code=invitation["code"])
    used_up = await client.post(
        "/api/auth/register",
        json={"email": "tom@example.com", "password": PASSWORD, "invitation_code": invitation["code"]},
    )
    assert_problem(used_up, 409, "invitation_used_up")

    listed = (await client.get("/api/invitations", headers=headers)).json()
    assert listed["items"][0]["uses"] == 2 and "code" not in listed["items"][0]

    for_email = (await client.post("/api/invitations", json={"email": "only@example.com"}, headers=headers)).json()
    wrong_email = await client.post(
        "/api/auth/register",
        json={"email": "else@example.com", "password": PASSWORD, "invitation_code": for_email["code"]},
    )
    assert_problem(wrong_email, 403, "invitation_email_mismatch")
    assert (await client.delete(f"/api/invitations/{for_email['id']}", headers=headers)).status_code == 204
    revoked = await client.post(
        "/api/auth/register",
        json={"email": "only@example.com", "password": PASSWORD, "invitation_code": for_email["code"]},
    )
    assert_problem(revoked, 404, "invalid_invitation")

    developer_headers = bearer(joined["access_token"])
    assert_problem(await client.get("/api/invitations", headers=developer_headers), 403, "permission_denied")
    missing_group = await client.post("/api/invitations", json={"group_ids": [str(uuid.uuid4())]}, headers=headers)
    assert_problem(missing_group, 404, "group_not_found")


# --- API keys --------------------------------------------------------------------------------------------------


async def test_api_keys(client: httpx.AsyncClient) -> None:
    owner = await register(client, "uma@example.com")
    headers = bearer(owner["access_token"])
    agent = await client.post("/api/agents", json={"name": "Helper"}, headers=headers)
    agent_id = agent.json()["id"]
    created = await client.post(
        "/api/api-keys", json={"name": "CI bot", "agent_ids": [agent_id], "daily_quota": 5}, headers=headers
    )
    assert created.status_code == 201
    key = created.json()
    secret = key["secret"]
    assert secret.startswith("nxk_") and secret.startswith(key["prefix"]) and len(key["prefix"]) < len(secret)

    listed = await client.get("/api/api-keys", headers=headers)
    assert "secret" not in listed.json()["items"][0] and secret not in listed.text

    me = (await client.get("/api/me", headers=bearer(secret))).json()
    assert me["api_key_id"] == key["id"] and me["permissions"] == ["chat"]
    assert [t["id"] for t in me["tenants"]] == [owner["tenant"]["id"]]

    # Keys use agents; they never manage the tenant.
    refused = await client.get("/api/members", headers=bearer(secret))
    assert_problem(refused, 403, "api_key_not_allowed")
    assert_problem(
        await client.post("/api/api-keys", json={"name": "x"}, headers=bearer(secret)), 403, "api_key_not_allowed"
    )

    # Quota: 5 requests a day, refused ones included; 3 are used.
    assert (await client.get("/api/me", headers=bearer(secret))).status_code == 200
    assert (await client.get("/api/me", headers=bearer(secret))).status_code == 200
    over = await client.get("/api/me", headers=bearer(secret))
    assert_problem(over, 429, "quota_exceeded")
    assert int(over.headers["retry-after"]) > 0

    assert (await client.delete(f"/api/api-keys/{key['id']}", headers=headers)).status_code == 204
    assert_problem(await client.get("/api/me", headers=bearer(secret)), 401, "api_key_revoked")
    assert_problem(await client.get("/api/me", headers=bearer("nxk_" + "x" * 43)), 401, "invalid_api_key")

    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert_problem(
        await client.post("/api/api-keys", json={"name": "old", "expires_at": past}, headers=headers),
        400,
        "invalid_expiry",
    )


async def test_api_keys_are_limited_only_to_agents_of_the_tenant(client: httpx.AsyncClient) -> None:
    owner = await register(client, "ulla@example.com")
    headers = bearer(owner["access_token"])
    mine = (await client.post("/api/agents", json={"name": "Mine"}, headers=headers)).json()
    stranger = await register(client, "umberto@example.com")
    theirs = (
        await client.post("/api/agents", json={"name": "Theirs"}, headers=bearer(stranger["access_token"]))
    ).json()
    absent = str(uuid.uuid4())
    refused = await client.post(
        "/api/api-keys", json={"name": "bot", "agent_ids": [mine["id"], absent, theirs["id"]]}, headers=headers
    )
    assert_problem(refused, 422, "unknown_agents")
    assert refused.json()["errors"] == [
        {"loc": ["body", "agent_ids", "1"], "msg": f"No agent {absent} in this tenant.", "type": "invalid_reference"},
        {
            "loc": ["body", "agent_ids", "2"],
            "msg": f"No agent {theirs['id']} in this tenant.",
            "type": "invalid_reference",
        },
    ]
    assert (await client.get("/api/api-keys", headers=headers)).json()["items"] == []  # nothing was created
    created = await client.post("/api/api-keys", json={"name": "bot", "agent_ids": [mine["id"]]}, headers=headers)
    assert created.status_code == 201 and created.json()["agent_ids"] == [mine["id"]]
    # No agents at all is a key that may use none.
    assert (
        await client.post("/api/api-keys", json={"name": "none", "agent_ids": []}, headers=headers)
    ).status_code == 201


async def test_without_a_provider_of_agents_no_key_is_limited_to_agents(monkeypatch: pytest.MonkeyPatch) -> None:
    """Identity cannot know agents itself (it imports no other domain): unwired, it refuses to answer rather than
    take any id for an agent."""
    from nexent.identity import hooks

    monkeypatch.setattr(hooks, "_existing_agents", [])
    with pytest.raises(hooks.NotWired):
        await hooks.existing_agents(None, uuid.uuid4(), [uuid.uuid4()])  # type: ignore[arg-type]


async def test_expired_api_keys_are_refused(client: httpx.AsyncClient) -> None:
    owner = await register(client, "vic@example.com")
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    key = (
        await client.post(
            "/api/api-keys", json={"name": "short", "expires_at": soon}, headers=bearer(owner["access_token"])
        )
    ).json()
    app = client._transport.app  # type: ignore[attr-defined]
    from sqlalchemy import update

    from nexent.identity.models import ApiKey

    async with app.state.engines.sessions() as session, session.begin():
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(key["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert_problem(await client.get("/api/me", headers=bearer(key["secret"])), 401, "api_key_expired")


async def test_developers_see_their_own_keys_admins_see_all(client: httpx.AsyncClient) -> None:
    owner = await register(client, "wes@example.com")
    dev = await invite_and_register(client, owner["access_token"], "xia@example.com", role="developer")
    user = await invite_and_register(client, owner["access_token"], "yan@example.com", role="user")
    await client.post("/api/api-keys", json={"name": "owner key"}, headers=bearer(owner["access_token"]))
    dev_key = (await client.post("/api/api-keys", json={"name": "dev key"}, headers=bearer(dev["access_token"]))).json()

    dev_list = (await client.get("/api/api-keys", headers=bearer(dev["access_token"]))).json()
    assert [k["name"] for k in dev_list["items"]] == ["dev key"]
    owner_list = (await client.get("/api/api-keys", headers=bearer(owner["access_token"]))).json()
    assert sorted(k["name"] for k in owner_list["items"]) == ["dev key", "owner key"]
    owner_key_id = next(k["id"] for k in owner_list["items"] if k["name"] == "owner key")
    assert_problem(
        await client.delete(f"/api/api-keys/{owner_key_id}", headers=bearer(dev["access_token"])),
        404,
        "api_key_not_found",
    )
    assert (
        await client.delete(f"/api/api-keys/{dev_key['id']}", headers=bearer(owner["access_token"]))
    ).status_code == 204
    assert_problem(
        await client.post("/api/api-keys", json={"name": "k"}, headers=bearer(user["access_token"])),
        403,
        "permission_denied",
    )


# --- Audit log and secrets -------------------------------------------------------------------------------------


async def test_audit_log_records_security_changes(client: httpx.AsyncClient) -> None:
    owner = await register(client, "zed@example.com")
    headers = {**bearer(owner["access_token"]), "X-Request-ID": "audit-trail-1"}
    key = (await client.post("/api/api-keys", json={"name": "k"}, headers=headers)).json()
    await client.delete(f"/api/api-keys/{key['id']}", headers=headers)
    member = await invite_and_register(client, owner["access_token"], "amy@example.com")
    await client.patch(f"/api/members/{member['user']['id']}", json={"role": "developer"}, headers=headers)

    events = (await client.get("/api/audit-log", headers=headers)).json()
    actions = [e["action"] for e in events["items"]]
    for expected in (
        "user.registered",
        "api_key.created",
        "api_key.revoked",
        "invitation.created",
        "invitation.accepted",
        "member.updated",
    ):
        assert expected in actions
    created = next(e for e in events["items"] if e["action"] == "api_key.created")
    assert created["actor_user_id"] == owner["user"]["id"] and created["resource_id"] == key["id"]
    assert created["request_id"] == "audit-trail-1"
    updated = next(e for e in events["items"] if e["action"] == "member.updated")
    assert updated["details"] == {"role": "developer"}

    filtered = (await client.get("/api/audit-log?action=api_key.revoked", headers=headers)).json()
    assert [e["action"] for e in filtered["items"]] == ["api_key.revoked"]
    assert_problem(await client.get("/api/audit-log", headers=bearer(member["access_token"])), 403, "permission_denied")


async def test_no_secret_reaches_a_log_line_or_a_later_answer(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pair = await register(client, "secret-keeper@example.com")
    login = await client.post("/api/auth/login", json={"email": "secret-keeper@example.com", "password": PASSWORD})
    headers = bearer(login.json()["access_token"])
    key = (await client.post("/api/api-keys", json={"name": "k"}, headers=headers)).json()
    invitation = (await client.post("/api/invitations", json={}, headers=headers)).json()
    await client.get("/api/me", headers=bearer(key["secret"]))
    await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    await client.post("/api/auth/login", json={"email": "secret-keeper@example.com", "password": "wrong " + PASSWORD})

    secrets = [PASSWORD, pair["access_token"], pair["refresh_token"], key["secret"], invitation["code"]]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in secrets:
        assert secret not in logged

    later = [
        await client.get("/api/me", headers=headers),
        await client.get("/api/api-keys", headers=headers),
        await client.get("/api/invitations", headers=headers),
        await client.get("/api/audit-log", headers=headers),
        await client.get("/api/members", headers=headers),
    ]
    for response in later:
        assert response.status_code == 200
        for secret in secrets:
            assert secret not in response.text
        assert "password_hash" not in response.text and "argon2" not in response.text


async def test_secrets_are_stored_only_as_hashes(client: httpx.AsyncClient) -> None:
    """Passwords (argon2id), API keys, refresh tokens and invitation codes (SHA-256) are stored hashed: read straight
    from the database, no column of any row holds one of them in plain."""
    import hashlib

    from argon2 import PasswordHasher
    from sqlalchemy import select

    from nexent.core.db import Base
    from nexent.identity.models import ApiKey, Invitation, RefreshToken, User

    password = "plain password 4 hashing"
    pair = await register(client, "hashed@example.com", password=password)
    headers = bearer(pair["access_token"])
    app = client._transport.app  # type: ignore[attr-defined]
    async with app.state.engines.sessions() as session:
        user = await session.scalar(select(User).where(User.email == "hashed@example.com"))
        assert user is not None and user.password_hash is not None and password not in user.password_hash
        assert user.password_hash.startswith("$argon2id$") and PasswordHasher().verify(user.password_hash, password)
    login = (await client.post("/api/auth/login", json={"email": "hashed@example.com", "password": password})).json()
    rotated = (await client.post("/api/auth/refresh", json={"refresh_token": login["refresh_token"]})).json()
    key = (await client.post("/api/api-keys", json={"name": "k"}, headers=headers)).json()
    invitation = (await client.post("/api/invitations", json={}, headers=headers)).json()
    refresh_tokens = [pair["refresh_token"], login["refresh_token"], rotated["refresh_token"]]
    secrets = [password, key["secret"], invitation["code"], *refresh_tokens]

    def sha256(value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()

    async with app.state.engines.sessions() as session:
        stored_key = await session.scalar(select(ApiKey).where(ApiKey.id == uuid.UUID(key["id"])))
        assert stored_key is not None and stored_key.secret_hash == sha256(key["secret"])
        assert key["secret"].startswith(stored_key.prefix) and len(stored_key.prefix) < len(key["secret"]) // 2
        stored_invitation = await session.scalar(select(Invitation).where(Invitation.id == uuid.UUID(invitation["id"])))
        assert stored_invitation is not None and stored_invitation.code_hash == sha256(invitation["code"])
        tokens = set(await session.scalars(select(RefreshToken.token_hash).where(RefreshToken.user_id == user.id)))
        assert tokens >= {sha256(t) for t in refresh_tokens}
        # No column of any row of any table holds a secret in plain.
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                for column, value in zip(table.columns, row, strict=True):
                    for secret in secrets:
                        assert secret not in str(value), f"{table.name}.{column.name} holds a secret in plain"


async def test_platform_admins_use_the_operator_api(tmp_path: Path) -> None:
    async with serve_in_process(make_settings(tmp_path, admin_token=None)) as client:
        admin = await register(client, "root@example.com")
        other = await register(client, "plain@example.com")
        listed = await client.get("/api/admin/tenants", headers=bearer(admin["access_token"]))
        assert listed.status_code == 200 and listed.json()["total"] == 2
        assert_problem(
            await client.get("/api/admin/tenants", headers=bearer(other["access_token"])), 403, "permission_denied"
        )
        disabled = await client.patch(
            f"/api/admin/tenants/{other['tenant']['id']}",
            json={"status": "disabled"},
            headers=bearer(admin["access_token"]),
        )
        assert disabled.status_code == 200
        assert_problem(await client.get("/api/me", headers=bearer(other["access_token"])), 401, "tenant_disabled")
