"""What other domains do when identity creates something, without identity importing them.

Identity sits below every other domain (it may import none of them, `pyproject.toml` checks it), yet a new tenant
needs things that belong elsewhere, such as the built-in models of `providers`. The wiring (`nexent.wiring`, run by
the app factory and the command line) registers those steps here; identity calls them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from nexent.settings import Settings

TenantCreatedHook = Callable[[AsyncSession, Settings, uuid.UUID], Awaitable[None]]
"""Called with the session of the transaction that created the tenant, the settings and the new tenant's id."""

_tenant_created: list[TenantCreatedHook] = []


def on_tenant_created(hook: TenantCreatedHook) -> TenantCreatedHook:
    """Run `hook` for every tenant created from now on, inside the creating transaction (registering the same hook
    twice keeps one)."""
    if hook not in _tenant_created:
        _tenant_created.append(hook)
    return hook


async def tenant_created(session: AsyncSession, settings: Settings, tenant_id: uuid.UUID) -> None:
    """Run the registered hooks in registration order; a hook that raises aborts the tenant's creation."""
    for hook in list(_tenant_created):
        await hook(session, settings, tenant_id)
