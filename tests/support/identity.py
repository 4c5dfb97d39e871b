"""Helpers for tests that need signed-in users."""

from __future__ import annotations

from typing import Any

import httpx

PASSWORD = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(client: httpx.AsyncClient, email: str, **extra: Any) -> dict[str, Any]:
    """Register a user (a new tenant unless `invitation_code` is given) and return the token pair."""
    body = {"email": email, "password": PASSWORD, **extra}
    response = await client.post("/api/auth/register", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def invite_and_register(
    client: httpx.AsyncClient, owner_token: str, email: str, **invitation: Any
) -> dict[str, Any]:
    """Invite `email` into the owner's tenant and register it with the code."""
    created = await client.post("/api/invitations", json=invitation, headers=bearer(owner_token))
    assert created.status_code == 201, created.text
    return await register(client, email, invitation_code=created.json()["code"])
