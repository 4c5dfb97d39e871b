"""Who may do what with skills, as typed route dependencies: each route's signature states its rule.

- `ReadableSkill`: a skill the caller may read: every one for members whose role holds `tools.manage`, else those
  shared with one of their groups. Anything else is a 404 `skill_not_found`, as for another tenant's.
- `EditableSkill`: one the caller may also change (files, `SKILL.md`, new versions); 403 `permission_denied` when
  it is shared with them to read only.
- `ManagedSkill`: one the caller may delete and share: their role holds `tools.manage` (403 otherwise).
- `SkillManager`: a caller whose role holds `tools.manage` (uploading a new skill, drafting one with a model).

All of them need a signed-in user: API keys may not use these routes.
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
from nexent.skills.models import Skill
from nexent.skills.service import SKILLS, SkillService


def _not_allowed(caller: Caller) -> Forbidden:
    return Forbidden(f"Your role ({caller.role}) does not allow this ({SKILLS.manage}).", code="permission_denied")


async def readable_skill(
    skill_id: uuid.UUID, caller: UserCaller, session: SessionDep, engines: EnginesDep
) -> Granted[Skill]:
    return await SkillService(session, engines.storage, caller).reach(skill_id)


ReadableSkill = Annotated[Granted[Skill], Depends(readable_skill)]


@answers(403)
async def editable_skill(skill: ReadableSkill) -> Granted[Skill]:
    if not skill.can_edit:
        raise Forbidden("This skill is shared with you to read, not to change.", code="permission_denied")
    return skill


EditableSkill = Annotated[Granted[Skill], Depends(editable_skill)]


@answers(403)
async def managed_skill(skill: ReadableSkill) -> Granted[Skill]:
    if not skill.caller.can(SKILLS.manage):
        raise _not_allowed(skill.caller)
    return skill


ManagedSkill = Annotated[Granted[Skill], Depends(managed_skill)]


@answers(403)
async def skill_manager(caller: UserCaller) -> Caller:
    if not caller.can(SKILLS.manage):
        raise _not_allowed(caller)
    return caller


SkillManager = Annotated[Caller, Depends(skill_manager)]
