"""Who may do what with knowledge bases, as typed route dependencies: each route's signature states its rule.

- `ReadableKnowledgeBase`: a knowledge base the caller may read: every one for members whose role manages
  knowledge, else those shared with one of their groups. Anything else is a 404 `knowledge_base_not_found`, as for
  another tenant's.
- `EditableKnowledgeBase`: one the caller may also change (documents, chunks, settings); 403 `permission_denied`
  when it is shared with them to read only.
- `ManagedKnowledgeBase`: one the caller may delete and share: their role manages knowledge (403 otherwise).
- `KnowledgeManager`: a caller whose role manages knowledge (creating a knowledge base).

All of them need a signed-in user: API keys may not use these routes. The conditions themselves come from
identity's sharing helper (`identity/services/sharing.py`), shared with every other resource domain.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from nexent.core.errors import Forbidden
from nexent.core.openapi import answers
from nexent.engines.deps import EnginesDep, SessionDep
from nexent.identity.auth import Caller, UserCaller
from nexent.identity.services.sharing import Granted
from nexent.knowledge.models import KnowledgeBase
from nexent.knowledge.service import KNOWLEDGE, KnowledgeService


def _not_allowed(caller: Caller) -> Forbidden:
    return Forbidden(f"Your role ({caller.role}) does not allow this ({KNOWLEDGE.manage}).", code="permission_denied")


async def readable_knowledge_base(
    kb_id: uuid.UUID, caller: UserCaller, session: SessionDep, engines: EnginesDep
) -> Granted[KnowledgeBase]:
    return await KnowledgeService(session, engines, caller).reach(kb_id)


ReadableKnowledgeBase = Annotated[Granted[KnowledgeBase], Depends(readable_knowledge_base)]


@answers(403)
async def editable_knowledge_base(kb: ReadableKnowledgeBase) -> Granted[KnowledgeBase]:
    if not kb.can_edit:
        raise Forbidden("This knowledge base is shared with you to read, not to change.", code="permission_denied")
    return kb


EditableKnowledgeBase = Annotated[Granted[KnowledgeBase], Depends(editable_knowledge_base)]


@answers(403)
async def managed_knowledge_base(kb: ReadableKnowledgeBase) -> Granted[KnowledgeBase]:
    if not kb.caller.can(KNOWLEDGE.manage):
        raise _not_allowed(kb.caller)
    return kb


ManagedKnowledgeBase = Annotated[Granted[KnowledgeBase], Depends(managed_knowledge_base)]


@answers(403)
async def knowledge_manager(caller: UserCaller) -> Caller:
    if not caller.can(KNOWLEDGE.manage):
        raise _not_allowed(caller)
    return caller


KnowledgeManager = Annotated[Caller, Depends(knowledge_manager)]
