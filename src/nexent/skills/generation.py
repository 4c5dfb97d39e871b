"""A SKILL.md drafted by the tenant's LLM from a description, streamed as the model writes it (Server-Sent Events,
as agents/generation.py streams agent drafts). Nothing is stored: the editor changes the draft and uploads it (or
saves it with the file routes)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.errors import AppError
from nexent.engines.container import Engines
from nexent.identity.auth import Caller
from nexent.providers.models import ModelKind
from nexent.providers.service import ProviderService, model_facts
from nexent.providers.types import ChatModel, Message, ProviderError
from nexent.skills import archive
from nexent.skills.schemas import (
    BaseSkillDraftEvent,
    SkillDraftCompleted,
    SkillDraftDelta,
    SkillDraftFailed,
    SkillDraftProblem,
    SkillGenerateIn,
)

logger = logging.getLogger("nexent.skills.generation")

GENERATION_SECONDS = 180.0
MAX_DRAFT_CHARS = 60_000

SYSTEM_PROMPT = """You write skills for AI agents. A skill is a folder whose SKILL.md teaches an agent one task.
Answer with the SKILL.md only, nothing before or after it, in this form:

---
name: <lowercase letters, digits and hyphens, at most 64 characters>
description: <one or two sentences: what the skill does and when to use it; at most 1024 characters>
---

# <Title>

<Instructions in Markdown: when to use the skill, the steps to follow, what to check, examples of input and
output. Be concrete and brief. Mention scripts or reference files only if the user asks for them.>
"""


class InvalidSkillGeneration(AppError):
    status, code = 422, "invalid_generation"


@dataclass
class SkillGeneration:
    model: ChatModel
    messages: list[Message]

    async def events(self) -> AsyncIterator[BaseSkillDraftEvent]:
        """`skill.delta`s as the model writes, then `skill.completed` (the draft, checked) or `skill.failed`."""
        parts: list[str] = []
        size = 0
        try:
            async with asyncio.timeout(GENERATION_SECONDS):
                async for chunk in self.model.stream(self.messages):
                    if chunk.content and size < MAX_DRAFT_CHARS:
                        text = chunk.content[: MAX_DRAFT_CHARS - size]
                        size += len(text)
                        parts.append(text)
                        yield SkillDraftDelta(delta=text)
        except ProviderError as exc:
            yield SkillDraftFailed(code=exc.code.value, message=exc.message, content="".join(parts))
            return
        except TimeoutError:
            message = f"The model did not finish within {GENERATION_SECONDS:.0f} seconds."
            yield SkillDraftFailed(code="timeout", message=message, content="".join(parts))
            return
        except Exception:
            logger.exception("skill generation failed")
            yield SkillDraftFailed(
                code="internal_error", message="The draft could not be made.", content="".join(parts)
            )
            return
        yield completed("".join(parts))


def completed(text: str) -> SkillDraftCompleted:
    """The model's answer as a SKILL.md (a fence around it taken off), and whether it parses."""
    content = _unfenced(text).strip() + "\n"
    try:
        manifest = archive.parse_manifest(content)
    except archive.SkillManifestInvalid as exc:
        problem = SkillDraftProblem(code=exc.code, message=exc.detail, field=exc.extra.get("field"))
        return SkillDraftCompleted(content=content, problem=problem)
    return SkillDraftCompleted(content=content, name=manifest.name, description=manifest.description)


_FENCE = re.compile(r"\A\s*```[a-zA-Z]*\n(.*?)\n```\s*\Z", re.DOTALL)


def _unfenced(text: str) -> str:
    match = _FENCE.match(text)
    return match.group(1) if match else text


def sse_frames(events: AsyncIterator[BaseSkillDraftEvent]) -> AsyncIterator[str]:
    async def frames() -> AsyncIterator[str]:
        seq = 0
        async for event in events:
            seq += 1
            data = event.model_dump_json(exclude={"type"}, exclude_none=True)
            yield f"id: {seq}\nevent: {event.type}\ndata: {data}\n\n"

    return frames()


class SkillGenerationService:
    """Checks what can refuse the request (the model) before any stream starts."""

    def __init__(self, session: AsyncSession, engines: Engines, caller: Caller) -> None:
        self.session = session
        self.caller = caller
        self.providers = ProviderService(session, engines, caller)

    async def generate(self, data: SkillGenerateIn) -> SkillGeneration:
        if data.model_id is not None:
            facts = await model_facts(self.session, self.caller.tenant_id, data.model_id)
            if facts is None or facts.kind not in (ModelKind.LLM, ModelKind.VLM):
                problem = "No such model in this tenant." if facts is None else f"The model is an {facts.kind} model."
                raise InvalidSkillGeneration(
                    f"{problem} A draft is written by an llm or vlm model of the tenant.",
                    extra={"errors": [{"loc": ["body", "model_id"], "msg": problem, "type": "invalid_reference"}]},
                )
        # A person waits for the draft: over the model's per-minute limit it fails at once, it does not wait a minute.
        client, _ = await self.providers.client_and_config(data.model_id, ModelKind.LLM, wait_for_rate=False)
        messages: list[Message] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": data.description},
        ]
        return SkillGeneration(client, messages)
