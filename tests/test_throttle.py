"""Sign-in and sign-up throttles: counted by the client's real address (forwarded only by a trusted proxy), per
email and address pair with a slower brake per email, on the local and the Redis bus; answered 429 with
Retry-After."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from nexent.cli import server_config
from nexent.settings import Settings
from tests.conftest import REDIS_URL, free_port, make_settings, serve_in_process
from tests.support.identity import PASSWORD, register
from tests.test_http import assert_problem


@pytest.fixture(params=["local", "redis"])
def bus(request: pytest.FixtureRequest, redis_prefix: str) -> dict[str, Any]:
    """Settings of the event bus that keeps the counts: in process, or Redis (the split shape)."""
    if request.param == "redis":
        return {"bus_backend": "redis", "redis_url": REDIS_URL, "redis_prefix": redis_prefix}
    return {"bus_backend": "local"}


def forwarded(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def email() -> str:
    return f"throttle-{uuid.uuid4().hex[:8]}@example.com"


def assert_limited(response: httpx.Response, window: int) -> None:
    body = assert_problem(response, 429, "too_many_attempts")
    assert 0 < int(response.headers["retry-after"]) <= window and "try again" in str(body["detail"])


async def login(client: httpx.AsyncClient, user: str, password: str, address: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": user, "password": password}, headers=forwarded(address))


@asynccontextmanager
async def served_over_http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app as `nexent serve` runs it, in uvicorn on a free port, reached over TCP from 127.0.0.1."""
    port = free_port()
    server = uvicorn.Server(server_config(settings, None, "127.0.0.1", port))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the server did not start"
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        server.should_exit = True
        await task


async def test_a_client_cannot_choose_its_address_with_x_forwarded_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Even where uvicorn is told to trust every forwarded header, only NEXENT_TRUSTED_PROXIES counts.
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    settings = make_settings(tmp_path / "direct", login_address_max_attempts=3)
    async with served_over_http(settings) as client:
        # Password spraying from one address, a new X-Forwarded-For on each request.
        statuses = [(await login(client, email(), "wrong", f"203.0.113.{n}")).status_code for n in range(1, 5)]
        assert statuses == [401, 401, 401, 429]

    proxied = make_settings(tmp_path / "proxied", login_address_max_attempts=3, trusted_proxies=["127.0.0.0/8"])
    async with served_over_http(proxied) as client:
        # Behind a trusted proxy, the address it forwards is the client's: each has its own count.
        statuses = [(await login(client, email(), "wrong", f"203.0.113.{n}")).status_code for n in range(1, 5)]
        assert statuses == [401, 401, 401, 401]
        # The proxy appends the address it saw to what the client sent: that one counts, not the client's choice.
        sprayed = [
            (await login(client, email(), "wrong", f"198.51.100.{n}, 192.0.2.9")).status_code for n in range(1, 5)
        ]
        assert sprayed == [401, 401, 401, 429]


async def test_guesses_from_elsewhere_do_not_lock_the_user_out(tmp_path: Path, bus: dict[str, Any]) -> None:
    settings = make_settings(
        tmp_path, trusted_proxies=["127.0.0.1"], login_max_attempts=3, login_email_max_attempts=8, **bus
    )
    async with serve_in_process(settings) as client:
        victim = email()
        await register(client, victim)
        attacker, home = "203.0.113.66", "198.51.100.7"
        statuses = [(await login(client, victim, "guess", attacker)).status_code for _ in range(4)]
        assert statuses[:3] == [401, 401, 401]
        assert_limited(await login(client, victim, PASSWORD, attacker), settings.login_window_seconds)
        # The user, from their own address, signs in; a typo costs them one attempt of their own.
        assert (await login(client, victim, "typo", home)).status_code == 401
        assert (await login(client, victim, PASSWORD, home)).status_code == 200
        # Guesses spread over many addresses meet the slower brake per email (8 attempts, 5 counted so far).
        spread = [(await login(client, victim, "guess", f"192.0.2.{n}")).status_code for n in range(1, 5)]
        assert spread == [401, 401, 401, 429]
        assert_limited(await login(client, victim, "guess", "192.0.2.99"), settings.login_email_window_seconds)
        # Other users are not slowed down.
        other = email()
        await register(client, other)
        assert (await login(client, other, PASSWORD, attacker)).status_code == 200


async def test_sign_ups_are_limited_per_address(tmp_path: Path, bus: dict[str, Any]) -> None:
    settings = make_settings(tmp_path, trusted_proxies=["127.0.0.1"], register_max_attempts=3, **bus)
    async with serve_in_process(settings) as client:

        async def sign_up(address: str) -> httpx.Response:
            body = {"email": email(), "password": PASSWORD}
            return await client.post("/api/auth/register", json=body, headers=forwarded(address))

        assert [(await sign_up("203.0.113.5")).status_code for _ in range(3)] == [201, 201, 201]
        assert_limited(await sign_up("203.0.113.5"), settings.register_window_seconds)
        # Another address is counted on its own.
        assert (await sign_up("203.0.113.6")).status_code == 201
