"""What other domains do for identity, without identity importing them.

Identity sits below every other domain (it may import none of them, `pyproject.toml` checks it), yet a new tenant
needs things that belong elsewhere, such as the built-in models of `providers`, and an API key limited to some
agents needs to know which agents exist (`agents`). The wiring (`nexent.wiring`, run by the app factory and the
command line) registers those steps here; identity calls them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection

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


ExistingAgents = Callable[[AsyncSession, uuid.UUID, Collection[uuid.UUID]], Awaitable[set[uuid.UUID]]]
"""Called with the request's session, a tenant's id and agent ids: those of the ids that are agents of the tenant."""

_existing_agents: list[ExistingAgents] = []


class NotWired(RuntimeError):
    """Identity was asked for something another domain provides, and nothing provided it (`nexent.wiring`)."""


def provide_existing_agents(lookup: ExistingAgents) -> ExistingAgents:
    """Let identity ask `lookup` which agents exist (the last one provided answers)."""
    _existing_agents[:] = [lookup]
    return lookup


async def existing_agents(
    session: AsyncSession, tenant_id: uuid.UUID, agent_ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """Those of `agent_ids` that are agents of the tenant. Without a provider this refuses to answer rather than
    take unknown agents for real ones."""
    if not _existing_agents:
        raise NotWired("no domain provides the agents; call nexent.wiring.wire() first")
    return await _existing_agents[0](session, tenant_id, agent_ids)
