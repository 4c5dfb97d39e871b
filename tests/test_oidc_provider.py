"""The loopback OIDC provider that the SSO tests use behaves like a real one."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import httpx
import jwt
import pytest

from tests.support.oidc_provider import RunningProvider, pkce_pair, run_provider

REDIRECT_URI = "http://127.0.0.1:9/callback"
USERS: dict[str, dict[str, Any]] = {
    "alice": {"sub": "u-alice", "email": "alice@example.com", "name": "Alice", "groups": ["admins", "staff"]},
    "bob": {"sub": "u-bob", "email": "bob@example.com", "name": "Bob", "roles": ["viewer"], "email_verified": False},
}


@pytest.fixture(scope="module")
def idp() -> Iterator[RunningProvider]:
    with run_provider(client_id="client-1", client_secret="s3cret:/+", users=USERS) as running:
        running.provider.redirect_uris.add(REDIRECT_URI)
        yield running


@pytest.fixture
def client(idp: RunningProvider) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=idp.issuer, follow_redirects=False, timeout=10) as http:
        yield http


def authorize(client: httpx.Client, idp: RunningProvider, **extra: str) -> dict[str, str]:
    """Run an authorization request and return the query of the redirect back to the client."""
    params = {
        "response_type": "code",
        "client_id": idp.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid email profile",
        "state": "st-1",
        "nonce": "n-1",
        **extra,
    }
    response = client.get("/authorize", params=params)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def exchange(
    client: httpx.Client, idp: RunningProvider, code: str, *, secret: str | None = None, **extra: str
) -> httpx.Response:
    """Redeem a code with client_secret_basic authentication."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, **extra}
    return client.post("/token", data=form, auth=(idp.client_id, secret or idp.client_secret))


def verify_id_token(idp: RunningProvider, id_token: str) -> dict[str, Any]:
    """Check the id token's signature against the published JWKS, its issuer and audience."""
    signing_key = jwt.PyJWKClient(idp.url("/jwks")).get_signing_key_from_jwt(id_token)
    claims: dict[str, Any] = jwt.decode(
        id_token, signing_key.key, algorithms=["RS256"], audience=idp.client_id, issuer=idp.issuer
    )
    return claims


def test_discovery_and_jwks(idp: RunningProvider, client: httpx.Client) -> None:
    metadata = client.get("/.well-known/openid-configuration").json()
    assert metadata["issuer"] == idp.issuer == f"http://127.0.0.1:{idp.port}"
    assert metadata["authorization_endpoint"] == f"{idp.issuer}/authorize"
    assert metadata["token_endpoint"] == f"{idp.issuer}/token"
    assert metadata["userinfo_endpoint"] == f"{idp.issuer}/userinfo"
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}
    keys = client.get(metadata["jwks_uri"]).json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA"
    assert keys[0]["kid"] == idp.provider.kid
    assert "d" not in keys[0]


def test_code_flow_with_basic_auth(idp: RunningProvider, client: httpx.Client) -> None:
    query = authorize(client, idp, login_hint="alice")
    assert query["state"] == "st-1"
    response = exchange(client, idp, query["code"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["scope"] == "openid email profile"
    assert tokens["expires_in"] > 0
    claims = verify_id_token(idp, tokens["id_token"])
    assert claims["sub"] == "u-alice"
    assert claims["nonce"] == "n-1"
    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is True
    assert claims["name"] == "Alice"
    assert claims["groups"] == ["admins", "staff"]
    assert claims["exp"] > claims["iat"]
    assert jwt.get_unverified_header(tokens["id_token"])["kid"] == idp.provider.kid
    assert idp.provider.token_requests[-1].auth_method == "client_secret_basic"

    userinfo = client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 200
    assert userinfo.json()["sub"] == "u-alice"
    assert userinfo.json()["groups"] == ["admins", "staff"]
    assert client.get("/userinfo", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_code_flow_with_post_auth_and_extra_claims(idp: RunningProvider, client: httpx.Client) -> None:
    query = authorize(client, idp, login_hint="bob", nonce="n-bob")
    form = {
        "grant_type": "authorization_code",
        "code": query["code"],
        "redirect_uri": REDIRECT_URI,
        "client_id": idp.client_id,
        "client_secret": idp.client_secret,
    }
    response = client.post("/token", data=form)
    assert response.status_code == 200, response.text
    claims = verify_id_token(idp, response.json()["id_token"])
    assert claims["sub"] == "u-bob"
    assert claims["nonce"] == "n-bob"
    assert claims["roles"] == ["viewer"]
    assert claims["email_verified"] is False
    assert idp.provider.token_requests[-1].auth_method == "client_secret_post"


def test_basic_auth_with_form_encoded_credentials(idp: RunningProvider, client: httpx.Client) -> None:
    code = authorize(client, idp)["code"]
    credentials = f"{quote_plus(idp.client_id)}:{quote_plus(idp.client_secret)}"
    headers = {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    response = client.post("/token", data=form, headers=headers)
    assert response.status_code == 200, response.text


def test_default_user_when_no_login_hint(idp: RunningProvider, client: httpx.Client) -> None:
    query = authorize(client, idp)
    claims = verify_id_token(idp, exchange(client, idp, query["code"]).json()["id_token"])
    assert claims["sub"] == "u-alice"


def test_invalid_client_secret(idp: RunningProvider, client: httpx.Client) -> None:
    code = authorize(client, idp)["code"]
    response = exchange(client, idp, code, secret="wrong")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    code = authorize(client, idp)["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    response = client.post("/token", data={**form, "client_id": idp.client_id, "client_secret": "wrong"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_codes_are_single_use(idp: RunningProvider, client: httpx.Client) -> None:
    code = authorize(client, idp)["code"]
    assert exchange(client, idp, code).status_code == 200
    reused = exchange(client, idp, code)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    unknown = exchange(client, idp, secrets.token_urlsafe(16))
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "invalid_grant"


def test_code_bound_to_redirect_uri_and_expiry(idp: RunningProvider, client: httpx.Client) -> None:
    code = authorize(client, idp)["code"]
    response = exchange(client, idp, code, redirect_uri="http://127.0.0.1:9/other")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    idp.provider.code_ttl = -1
    try:
        code = authorize(client, idp)["code"]
    finally:
        idp.provider.code_ttl = 60
    assert exchange(client, idp, code).json()["error"] == "invalid_grant"


def test_pkce(idp: RunningProvider, client: httpx.Client) -> None:
    verifier, challenge = pkce_pair()
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}
    code = authorize(client, idp, **pkce)["code"]
    assert exchange(client, idp, code, code_verifier=verifier).status_code == 200

    code = authorize(client, idp, **pkce)["code"]
    mismatch = exchange(client, idp, code, code_verifier=pkce_pair()[0])
    assert mismatch.status_code == 400
    assert mismatch.json()["error"] == "invalid_grant"

    code = authorize(client, idp, **pkce)["code"]
    assert exchange(client, idp, code).json()["error"] == "invalid_grant"


def test_authorize_errors(idp: RunningProvider, client: httpx.Client) -> None:
    assert authorize(client, idp, response_type="token")["error"] == "unsupported_response_type"
    assert authorize(client, idp, response_type="token")["state"] == "st-1"
    assert authorize(client, idp, scope="email")["error"] == "invalid_scope"
    assert authorize(client, idp, login_hint="mallory")["error"] == "access_denied"
    assert authorize(client, idp, code_challenge="x" * 43, code_challenge_method="S512")["error"] == "invalid_request"
    base = {"response_type": "code", "client_id": idp.client_id, "redirect_uri": REDIRECT_URI, "scope": "openid"}
    assert client.get("/authorize", params={**base, "client_id": "other"}).status_code == 400
    assert client.get("/authorize", params={**base, "redirect_uri": "http://evil.example/cb"}).status_code == 400


def test_id_token_overrides(idp: RunningProvider, client: httpx.Client) -> None:
    idp.provider.id_token_overrides.update({"aud": "someone-else", "nonce": None})
    try:
        code = authorize(client, idp)["code"]
        id_token = exchange(client, idp, code).json()["id_token"]
    finally:
        idp.provider.id_token_overrides.clear()
    with pytest.raises(jwt.InvalidAudienceError):
        verify_id_token(idp, id_token)
    assert "nonce" not in jwt.decode(id_token, options={"verify_signature": False})
