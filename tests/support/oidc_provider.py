"""A small but real OpenID Connect provider that tests run on loopback.

It implements the authorization code flow (with optional PKCE), `client_secret_basic` and `client_secret_post`
client authentication, RS256 id tokens, a JWKS endpoint, discovery and userinfo. The authorization endpoint
approves at once, as the user named by `login_hint` (or the default user), so tests need no login form.

Typical use::

    with run_provider(users={"alice": {"sub": "u-1", "email": "a@example.com", "name": "Alice"}}) as idp:
        idp.provider.redirect_uris.add("http://127.0.0.1:8000/auth/oidc/callback")
        ...  # point the OIDC client at idp.issuer / idp.client_id / idp.client_secret
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from jwt.algorithms import RSAAlgorithm

DEFAULT_CLIENT_ID = "nexent-test-client"
DEFAULT_CLIENT_SECRET = "nexent-test-secret"
DEFAULT_USERS: dict[str, dict[str, Any]] = {
    "alice": {"sub": "alice-sub", "email": "alice@example.com", "name": "Alice Example", "groups": ["staff"]},
    "bob": {"sub": "bob-sub", "email": "bob@example.com", "name": "Bob Example", "groups": []},
}
SCOPES_SUPPORTED = ["openid", "profile", "email", "groups"]
CLAIMS_SUPPORTED = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "email",
    "email_verified",
    "name",
    "groups",
    "roles",
]
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass
class AuthorizationCode:
    """What an issued authorization code stands for."""

    client_id: str
    redirect_uri: str
    username: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    auth_time: int


@dataclass
class AccessToken:
    """An issued bearer access token."""

    username: str
    scope: str
    expires_at: float


@dataclass
class TokenRequestRecord:
    """One call of the token endpoint, kept so that tests can check how the client authenticated."""

    auth_method: str | None
    form: dict[str, str]
    status_code: int


class OidcError(Exception):
    """An OAuth error answered by the token or userinfo endpoint as JSON."""

    def __init__(self, error: str, description: str, status_code: int = 400, headers: dict[str, str] | None = None):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status_code = status_code
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=self.status_code, headers={**_NO_STORE, **self.headers})


@dataclass(eq=False)
class OidcProvider:
    """Provider state (keys, codes, tokens, users) and its FastAPI app (`.app`).

    Everything public is mutable between requests: tests may add users or redirect URIs, change
    `id_token_overrides` (a claim set to None is removed) to make the provider misbehave, or call `rotate_key`.
    `redirect_uris` empty means any absolute http(s) redirect URI is accepted.
    """

    issuer: str
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    users: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: dict(v) for k, v in DEFAULT_USERS.items()})
    default_user: str | None = None
    redirect_uris: set[str] = field(default_factory=set)
    code_ttl: float = 60.0
    access_token_ttl: int = 3600
    id_token_ttl: int = 3600
    id_token_overrides: dict[str, Any] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict, repr=False)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict, repr=False)
    token_requests: list[TokenRequestRecord] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.issuer = self.issuer.rstrip("/")
        for name, claims in self.users.items():
            missing = {"sub", "email", "name"} - claims.keys()
            if missing:
                raise ValueError(f"user {name!r} lacks claims {sorted(missing)}")
        if self.default_user is None and self.users:
            self.default_user = next(iter(self.users))
        self._lock = threading.Lock()
        self.rotate_key()
        self.app = self._build_app()

    # --- keys and tokens ------------------------------------------------------------------------------------

    def rotate_key(self) -> None:
        """Generate a fresh RSA signing key (and `kid`); the JWKS then publishes only the new key."""
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set with the public signing key."""
        jwk = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def sign(self, claims: Mapping[str, Any], *, kid: str | None = None) -> str:
        """Sign arbitrary claims as an RS256 JWT with the provider's key (for crafting tokens in tests)."""
        return jwt.encode(dict(claims), self.private_key, algorithm="RS256", headers={"kid": kid or self.kid})

    def user_claims(self, username: str) -> dict[str, Any]:
        """The claims of a user as the id token and userinfo carry them (email_verified defaults to true)."""
        claims = dict(self.users[username])
        claims.setdefault("email_verified", True)
        return claims

    def id_token_claims(self, username: str, *, nonce: str | None, auth_time: int | None = None) -> dict[str, Any]:
        """The claims of an id token for `username`, with `id_token_overrides` applied."""
        now = int(time.time())
        claims: dict[str, Any] = {
            **self.user_claims(username),
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + self.id_token_ttl,
            "auth_time": auth_time if auth_time is not None else now,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        for key, value in self.id_token_overrides.items():
            if value is None:
                claims.pop(key, None)
            else:
                claims[key] = value
        return claims

    # --- discovery ------------------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """An absolute URL under the issuer."""
        return f"{self.issuer}{path}"

    @property
    def discovery_url(self) -> str:
        return self.url("/.well-known/openid-configuration")

    @property
    def authorization_endpoint(self) -> str:
        return self.url("/authorize")

    @property
    def token_endpoint(self) -> str:
        return self.url("/token")

    @property
    def jwks_uri(self) -> str:
        return self.url("/jwks")

    @property
    def userinfo_endpoint(self) -> str:
        return self.url("/userinfo")

    def metadata(self) -> dict[str, Any]:
        """The discovery document."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "jwks_uri": self.jwks_uri,
            "userinfo_endpoint": self.userinfo_endpoint,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": SCOPES_SUPPORTED,
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "code_challenge_methods_supported": ["S256", "plain"],
            "claims_supported": CLAIMS_SUPPORTED,
        }

    # --- endpoints ------------------------------------------------------------------------------------------

    def _redirect_uri_ok(self, redirect_uri: str) -> bool:
        if self.redirect_uris:
            return redirect_uri in self.redirect_uris
        parts = urlsplit(redirect_uri)
        return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.fragment

    def authorize(self, params: Mapping[str, str]) -> Response:
        """Handle an authorization request: validate it, approve it and redirect back with a code or an error."""
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        if client_id != self.client_id:
            return JSONResponse({"error": "invalid_client", "error_description": "unknown client_id"}, 400)
        if not redirect_uri or not self._redirect_uri_ok(redirect_uri):
            return JSONResponse({"error": "invalid_request", "error_description": "invalid redirect_uri"}, 400)
        state = params.get("state")

        def back(**result: str) -> RedirectResponse:
            if state is not None:
                result["state"] = state
            parts = urlsplit(redirect_uri)
            query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *result.items()])
            return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=302)

        def error(code: str, description: str) -> RedirectResponse:
            return back(error=code, error_description=description)

        if params.get("response_type") != "code":
            return error("unsupported_response_type", "only response_type=code is supported")
        scope = params.get("scope", "")
        if "openid" not in scope.split():
            return error("invalid_scope", "the openid scope is required")
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if challenge is not None:
            method = method or "plain"
            if method not in ("S256", "plain"):
                return error("invalid_request", "unsupported code_challenge_method")
            if not 43 <= len(challenge) <= 128:
                return error("invalid_request", "invalid code_challenge")
        elif method is not None:
            return error("invalid_request", "code_challenge_method without code_challenge")
        username = params.get("login_hint") or self.default_user
        if username is None or username not in self.users:
            return error("access_denied", f"unknown user {username!r}")
        code = secrets.token_urlsafe(32)
        with self._lock:
            self.codes[code] = AuthorizationCode(
                client_id=client_id,
                redirect_uri=redirect_uri,
                username=username,
                scope=scope,
                nonce=params.get("nonce"),
                code_challenge=challenge,
                code_challenge_method=method if challenge is not None else None,
                expires_at=time.monotonic() + self.code_ttl,
                auth_time=int(time.time()),
            )
        return back(code=code)

    def _authenticate_client(self, authorization: str | None, form: Mapping[str, str]) -> str:
        """Check the client credentials; returns the auth method used.

        Basic credentials are accepted both form-urlencoded (RFC 6749 2.3.1) and raw, as many clients send them.
        """
        basic: tuple[str, str] | None = None
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
                raw_id, raw_secret = decoded.split(":", 1)
            except ValueError as exc:
                raise OidcError("invalid_client", "malformed basic credentials", 401, _basic_challenge()) from exc
            basic = (raw_id, raw_secret)
        if basic is not None and "client_secret" in form:
            raise OidcError("invalid_request", "more than one client authentication method")
        if basic is not None:
            ids, client_secrets = [basic[0], unquote_plus(basic[0])], [basic[1], unquote_plus(basic[1])]
            method = "client_secret_basic"
        elif "client_secret" in form:
            ids, client_secrets = [form.get("client_id", "")], [form["client_secret"]]
            method = "client_secret_post"
        else:
            raise OidcError("invalid_client", "client authentication required", 401, _basic_challenge())
        ok_id = any(_same(given, self.client_id) for given in ids)
        ok_secret = any(_same(given, self.client_secret) for given in client_secrets)
        if not (ok_id and ok_secret):
            headers = _basic_challenge() if method == "client_secret_basic" else {}
            raise OidcError("invalid_client", "client authentication failed", 401, headers)
        if form.get("client_id", self.client_id) != self.client_id:
            raise OidcError("invalid_request", "client_id does not match the authenticated client")
        return method

    def token(self, authorization: str | None, form: Mapping[str, str]) -> dict[str, Any]:
        """Handle a token request; returns the token response or raises `OidcError`."""
        self._authenticate_client(authorization, form)
        if form.get("grant_type") != "authorization_code":
            raise OidcError("unsupported_grant_type", "only authorization_code is supported")
        code = form.get("code", "")
        with self._lock:
            grant = self.codes.pop(code, None)  # one-time: gone whether or not the request succeeds
        if grant is None:
            raise OidcError("invalid_grant", "unknown or already used authorization code")
        if grant.expires_at < time.monotonic():
            raise OidcError("invalid_grant", "authorization code expired")
        if grant.client_id != self.client_id:
            raise OidcError("invalid_grant", "code was issued to another client")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise OidcError("invalid_grant", "redirect_uri does not match the authorization request")
        verifier = form.get("code_verifier")
        if grant.code_challenge is not None:
            if not verifier:
                raise OidcError("invalid_grant", "code_verifier required")
            if not secrets.compare_digest(_pkce_challenge(verifier, grant.code_challenge_method), grant.code_challenge):
                raise OidcError("invalid_grant", "code_verifier does not match code_challenge")
        elif verifier is not None:
            raise OidcError("invalid_grant", "code_verifier given but no code_challenge was")
        if grant.username not in self.users:
            raise OidcError("invalid_grant", "the user no longer exists")
        access_token = secrets.token_urlsafe(32)
        with self._lock:
            self.access_tokens[access_token] = AccessToken(
                grant.username, grant.scope, time.monotonic() + self.access_token_ttl
            )
        claims = self.id_token_claims(grant.username, nonce=grant.nonce, auth_time=grant.auth_time)
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.access_token_ttl,
            "id_token": self.sign(claims),
            "scope": grant.scope,
        }

    def userinfo(self, authorization: str | None) -> dict[str, Any]:
        """Handle a userinfo request with a bearer access token; returns the user's claims."""
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        if not authorization or not authorization.lower().startswith("bearer "):
            raise OidcError("invalid_token", "bearer token required", 401, {"WWW-Authenticate": "Bearer"})
        token = self.access_tokens.get(authorization[7:].strip())
        if token is None or token.expires_at < time.monotonic() or token.username not in self.users:
            raise OidcError("invalid_token", "unknown or expired access token", 401, challenge)
        return self.user_claims(token.username)

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="test OIDC provider", openapi_url=None, docs_url=None, redoc_url=None)

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> JSONResponse:
            return JSONResponse(self.metadata())

        @app.get("/jwks")
        async def jwks() -> JSONResponse:
            return JSONResponse(self.jwks())

        @app.get("/authorize")
        async def authorize(request: Request) -> Response:
            return self.authorize(dict(request.query_params))

        @app.post("/token")
        async def token(request: Request) -> JSONResponse:
            form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
            authorization = request.headers.get("authorization")
            method = _auth_method(authorization, form)
            try:
                response = JSONResponse(self.token(authorization, form), headers=_NO_STORE)
            except OidcError as exc:
                response = exc.response()
            self.token_requests.append(TokenRequestRecord(method, form, response.status_code))
            return response

        @app.api_route("/userinfo", methods=["GET", "POST"])
        async def userinfo(request: Request) -> JSONResponse:
            try:
                return JSONResponse(self.userinfo(request.headers.get("authorization")))
            except OidcError as exc:
                return exc.response()

        return app


def _auth_method(authorization: str | None, form: Mapping[str, str]) -> str | None:
    if authorization and authorization.lower().startswith("basic "):
        return "client_secret_basic"
    return "client_secret_post" if "client_secret" in form else None


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode(), expected.encode())


def _basic_challenge() -> dict[str, str]:
    return {"WWW-Authenticate": 'Basic realm="test-oidc"'}


def _pkce_challenge(verifier: str, method: str | None) -> str:
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier


def pkce_pair() -> tuple[str, str]:
    """A fresh PKCE `(code_verifier, S256 code_challenge)` pair."""
    verifier = secrets.token_urlsafe(48)
    return verifier, _pkce_challenge(verifier, "S256")


def create_provider_app(
    issuer: str,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    users: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    default_user: str | None = None,
    redirect_uris: set[str] | None = None,
) -> FastAPI:
    """The FastAPI app of a new provider (use `OidcProvider` directly to also reach its state)."""
    provider = OidcProvider(
        issuer=issuer,
        client_id=client_id,
        client_secret=client_secret,
        users={k: dict(v) for k, v in (users if users is not None else DEFAULT_USERS).items()},
        default_user=default_user,
        redirect_uris=set(redirect_uris or ()),
    )
    return provider.app


@dataclass(frozen=True)
class RunningProvider:
    """A provider served on loopback by `run_provider`; `.provider` gives its mutable state."""

    provider: OidcProvider
    server: uvicorn.Server = field(repr=False)

    @property
    def issuer(self) -> str:
        return self.provider.issuer

    @property
    def client_id(self) -> str:
        return self.provider.client_id

    @property
    def client_secret(self) -> str:
        return self.provider.client_secret

    @property
    def port(self) -> int:
        port = urlsplit(self.issuer).port
        assert port is not None
        return port

    def url(self, path: str) -> str:
        """An absolute URL under the issuer."""
        return self.provider.url(path)


@contextmanager
def run_provider(
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    users: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    default_user: str | None = None,
    redirect_uris: set[str] | None = None,
    host: str = "127.0.0.1",
    startup_timeout: float = 10.0,
) -> Iterator[RunningProvider]:
    """Serve a new provider on a free loopback port in a background thread; stop it on exit.

    The issuer is the base URL, `http://127.0.0.1:PORT`.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = int(sock.getsockname()[1])
    provider = OidcProvider(
        issuer=f"http://{host}:{port}",
        client_id=client_id,
        client_secret=client_secret,
        users={k: dict(v) for k, v in (users if users is not None else DEFAULT_USERS).items()},
        default_user=default_user,
        redirect_uris=set(redirect_uris or ()),
    )
    config = uvicorn.Config(provider.app, log_level="warning", access_log=False, lifespan="off", loop="asyncio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"oidc-provider-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the test OIDC provider failed to start")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the test OIDC provider did not start within {startup_timeout}s")
            time.sleep(0.01)
        yield RunningProvider(provider=provider, server=server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
