"""Who still uses a thing that is about to be deleted, asked without importing who that is.

A lower domain (a model of `providers`, a knowledge base of `knowledge`) must not be deleted while something above
it depends on it (a published agent version), yet it may not import the domain above. The domain above registers a
lookup here (`nexent.wiring` does it at start); the lower one calls `refuse_if_used` before it deletes.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.errors import Conflict

UsersLookup = Callable[[AsyncSession, uuid.UUID, str, uuid.UUID], Awaitable[list[str]]]
"""Called with the request's session, the tenant, a kind (`model`, `knowledge_base`, `agent`) and an id: a short
description of each thing that still needs it (for example `agent "support" version 3`)."""

_lookups: list[UsersLookup] = []


def provide_users_lookup(lookup: UsersLookup) -> UsersLookup:
    """Ask `lookup` too before anything is deleted (providing the same one twice keeps one)."""
    if lookup not in _lookups:
        _lookups.append(lookup)
    return lookup


async def users_of(session: AsyncSession, tenant_id: uuid.UUID, kind: str, target_id: uuid.UUID) -> list[str]:
    found: list[str] = []
    for lookup in list(_lookups):
        found.extend(await lookup(session, tenant_id, kind, target_id))
    return found


async def refuse_if_used(session: AsyncSession, tenant_id: uuid.UUID, kind: str, target_id: uuid.UUID) -> None:
    """Raise a 409 `<kind>_in_use` naming the users when anything still needs the thing."""
    users = await users_of(session, tenant_id, kind, target_id)
    if users:
        noun = kind.replace("_", " ")
        raise Conflict(
            f"This {noun} is used by {', '.join(users[:5])}{' and others' if len(users) > 5 else ''}; "
            f"disable those versions or delete their agents first.",
            code=f"{kind}_in_use",
            extra={"used_by": users},
        )
