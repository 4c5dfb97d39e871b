"""Who may do what with agents, as typed route dependencies: each route's signature states its rule.

- `ReadableAgent`: an agent the caller may read: every one for members whose role manages agents, else those
  shared with one of their groups. Anything else is a 404 `agent_not_found`, as for another tenant's.
- `EditableAgent`: one the caller may also change; 403 `permission_denied` when it is shared with them to read only.
- `ManagedAgent`: one the caller may delete and share: their role manages agents (403 otherwise).
- `AgentManager`: a caller whose role manages agents (creating an agent).

All of them need a signed-in user: API keys only run agents (the runtime checks those with
`AgentService.get_usable`). The conditions themselves come from identity's sharing helper
(`identity/services/sharing.py`), shared with every other resource domain.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from nexent.agents.models import Agent
from nexent.agents.service import AGENTS, AgentService
from nexent.core.errors import Forbidden
from nexent.core.openapi import answers
from nexent.engines.deps import SessionDep
from nexent.identity.auth import Caller, UserCaller
from nexent.identity.services.sharing import Granted


def _not_allowed(caller: Caller) -> Forbidden:
    return Forbidden(f"Your role ({caller.role}) does not allow this ({AGENTS.manage}).", code="permission_denied")


async def readable_agent(agent_id: uuid.UUID, caller: UserCaller, session: SessionDep) -> Granted[Agent]:
    return await AgentService(session, caller).reach(agent_id)


ReadableAgent = Annotated[Granted[Agent], Depends(readable_agent)]


@answers(403)
async def editable_agent(agent: ReadableAgent) -> Granted[Agent]:
    if not agent.can_edit:
        raise Forbidden("This agent is shared with you to read, not to edit.", code="permission_denied")
    return agent


EditableAgent = Annotated[Granted[Agent], Depends(editable_agent)]


@answers(403)
async def managed_agent(agent: ReadableAgent) -> Granted[Agent]:
    if not agent.caller.can(AGENTS.manage):
        raise _not_allowed(agent.caller)
    return agent


ManagedAgent = Annotated[Granted[Agent], Depends(managed_agent)]


@answers(403)
async def agent_manager(caller: UserCaller) -> Caller:
    if not caller.can(AGENTS.manage):
        raise _not_allowed(caller)
    return caller


AgentManager = Annotated[Caller, Depends(agent_manager)]
