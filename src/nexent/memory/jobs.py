"""Background work of memory: extracting facts from a finished turn (and merging them with what is known), and
re-embedding the tenant's memories when its default embedding model changes.

Extraction asks the agent's model (or the tenant's default LLM) twice: for the facts worth keeping
(`prompts/extract.md`), then, for the facts that have similar memories, whether each is new (ADD), replaces one
of them (UPDATE: a contradiction replaces the old fact) or is known already (NONE) (`prompts/decide.md`). Output
that is not the JSON asked for changes nothing: no memory is added, changed or removed.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from nexent.engines.container import Engines
from nexent.identity.auth import Caller
from nexent.identity.models import Role
from nexent.jobs.registry import JobContext, JobResult, PermanentJobError, job_handler
from nexent.memory.models import PERSONAL_LEVELS, Memory, MemoryLevel
from nexent.memory.repository import MemoryRepository, MemorySettingsRepository
from nexent.memory.schemas import MAX_MEMORY_CHARS
from nexent.memory.service import REEMBED, MemoryIndexes, MemoryService, _chunk, _embed, scope_id, switches
from nexent.providers.models import ModelKind
from nexent.providers.service import ProviderService
from nexent.providers.types import RETRYABLE, ProviderError, complete

logger = logging.getLogger("nexent.memory")

EXTRACT = "memory.extract"
MAX_FACTS = 10
SIMILAR = 3  # stored memories shown to the model with each new fact
REEMBED_BATCH = 256
_PROMPTS = Path(__file__).parent / "prompts"
_TURN_CHARS = 6000

SavedHook = Callable[[Engines, uuid.UUID, uuid.UUID, list[dict[str, Any]], list[dict[str, Any]]], Awaitable[None]]
_saved_hooks: list[SavedHook] = []


def on_memory_saved(hook: SavedHook) -> SavedHook:
    """Tell `hook` (engines, tenant, run, added, updated) what a run's extraction saved: the runtime records it as
    the run's `memory.saved` event (`nexent.wiring`)."""
    _saved_hooks[:] = [hook]
    return hook


def _prompt(name: str) -> str:
    return (_PROMPTS / f"{name}.md").read_text(encoding="utf-8")


def extraction_payload(
    *,
    user_id: uuid.UUID,
    agent_id: uuid.UUID,
    model_id: str | None,
    run_id: uuid.UUID,
    conversation_id: uuid.UUID | None,
    message: str,
    answer: str,
) -> dict[str, Any]:
    """The payload of an extraction job for a finished turn."""
    return {
        "user_id": str(user_id),
        "agent_id": str(agent_id),
        "model_id": model_id,
        "run_id": str(run_id),
        "conversation_id": str(conversation_id) if conversation_id else None,
        "message": message[:_TURN_CHARS],
        "answer": answer[:_TURN_CHARS],
    }


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object of a model's reply (also inside a code fence or after some words); None when there is none."""
    text = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fence:
        text = fence.group(1).strip()
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(text[start : end + 1])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def parse_facts(text: str, allowed: set[MemoryLevel]) -> list[tuple[str, MemoryLevel]] | None:
    """The facts of an extraction reply; None when the reply is not the JSON asked for."""
    data = parse_json_object(text)
    if data is None or not isinstance(data.get("facts"), list):
        return None
    facts: list[tuple[str, MemoryLevel]] = []
    for item in data["facts"]:
        if isinstance(item, str):
            item = {"text": item}
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            return None
        fact = " ".join(item["text"].split())[:MAX_MEMORY_CHARS]
        level_name = item.get("level", MemoryLevel.USER.value)
        level = (
            MemoryLevel(level_name) if level_name in (MemoryLevel.USER, MemoryLevel.USER_AGENT) else MemoryLevel.USER
        )
        if level not in allowed:
            level = next(iter(sorted(allowed)))
        if fact and fact not in [f for f, _ in facts]:
            facts.append((fact, level))
    return facts[:MAX_FACTS]


def parse_decisions(
    text: str, facts: list[tuple[str, MemoryLevel]], similar: list[list[tuple[uuid.UUID, str]]]
) -> list[tuple[str, uuid.UUID | None, str]] | None:
    """Per fact, `(action, memory_id, text)`; None when the reply is not the JSON asked for. An UPDATE may only
    name one of its fact's similar memories (else it is taken as ADD: nothing is lost)."""
    data = parse_json_object(text)
    if data is None or not isinstance(data.get("decisions"), list):
        return None
    decided: dict[int, tuple[str, uuid.UUID | None, str]] = {}
    for item in data["decisions"]:
        if not isinstance(item, dict):
            return None
        index, action = item.get("fact"), str(item.get("action", "")).upper()
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(facts) or index in decided:
            continue
        fact = facts[index][0]
        if action == "NONE":
            decided[index] = ("NONE", None, fact)
        elif action == "UPDATE":
            candidates = {str(m): m for m, _ in similar[index]}
            target = candidates.get(str(item.get("memory_id", "")).strip())
            new_text = item.get("text") if isinstance(item.get("text"), str) and item["text"].strip() else fact
            new_text = " ".join(str(new_text).split())[:MAX_MEMORY_CHARS]
            decided[index] = ("UPDATE", target, new_text) if target else ("ADD", None, fact)
        elif action == "ADD":
            decided[index] = ("ADD", None, fact)
    # A fact the model did not decide on is added: saving it twice is better than losing it.
    return [decided.get(i, ("ADD", None, fact)) for i, (fact, _) in enumerate(facts)]


def _facts_block(facts: list[tuple[str, MemoryLevel]], similar: list[list[tuple[uuid.UUID, str]]]) -> str:
    lines = []
    for i, ((fact, _), found) in enumerate(zip(facts, similar, strict=True)):
        lines.append(f"Fact {i}: {fact}")
        lines.extend(f"  memory {memory_id}: {text}" for memory_id, text in found)
        if not found:
            lines.append("  (no similar memory)")
    return "\n".join(lines)


@job_handler(EXTRACT)
async def extract(ctx: JobContext) -> JobResult:
    """Find the facts of a finished turn worth keeping and merge them into the user's memories."""
    tenant_id = ctx.tenant_id
    if tenant_id is None:
        raise PermanentJobError("a memory job needs its tenant")
    payload = ctx.payload
    try:
        user_id = uuid.UUID(str(payload["user_id"]))
        agent_id = uuid.UUID(str(payload["agent_id"]))
        run_id = uuid.UUID(str(payload["run_id"]))
        conversation_id = uuid.UUID(str(payload["conversation_id"])) if payload.get("conversation_id") else None
        message, answer = str(payload["message"]), str(payload["answer"])
    except (KeyError, ValueError) as exc:
        raise PermanentJobError(f"bad extraction payload: {exc}") from None
    engines = ctx.engines
    caller = Caller(user_id=user_id, tenant_id=tenant_id, role=Role.USER)
    async with engines.sessions() as session:
        found = await switches(session, engines, tenant_id, user_id, agent_id)
        allowed = set(found.levels & PERSONAL_LEVELS)
        if not allowed:
            return {"skipped": "memory is off"}
        providers = ProviderService(session, engines, caller)
        model_id = payload.get("model_id")
        try:
            client = (
                await providers.client(uuid.UUID(str(model_id)), agent_id=agent_id)
                if model_id
                else await providers.default_client(ModelKind.LLM, agent_id=agent_id)
            )
        except Exception as exc:  # the model was deleted meanwhile
            raise PermanentJobError(f"no model to extract memories with: {exc}") from None
    prompt = _prompt("extract").replace("{message}", message).replace("{answer}", answer)
    reply = await _ask(client, prompt, ctx)
    facts = parse_facts(reply, allowed)
    if facts is None:
        logger.warning("memory extraction: the model's reply is not the JSON asked for", extra={"run_id": str(run_id)})
        return {"skipped": "malformed extraction"}
    if not facts:
        return {"added": 0, "updated": 0}

    async with engines.sessions() as session:
        indexes = MemoryIndexes(session, engines, caller)
        index = await MemorySettingsRepository(session, tenant_id).index()
        similar: list[list[tuple[uuid.UUID, str]]] = []
        for fact, level in facts:
            if index is None:
                similar.append([])
                continue
            scope = scope_id(level, agent_id if level is MemoryLevel.USER_AGENT else None, user_id)
            hits = await indexes.search(index, fact, [scope], top_k=SIMILAR, mode="vector")
            similar.append([(uuid.UUID(h.id), h.text) for h in hits])
    if any(similar):
        prompt = _prompt("decide").replace("{facts}", _facts_block(facts, similar))
        decisions = parse_decisions(await _ask(client, prompt, ctx), facts, similar)
        if decisions is None:
            logger.warning("memory extraction: the model's decisions are not the JSON asked for")
            return {"skipped": "malformed decisions"}
    else:
        decisions = [("ADD", None, fact) for fact, _ in facts]

    async with engines.sessions() as session:
        service = MemoryService(session, engines, caller)
        memories = MemoryRepository(session, tenant_id)
        olds = await memories.of_ids([target for _, target, _ in decisions if target is not None])
        changes: list[tuple[Memory | None, MemoryLevel, uuid.UUID | None, str]] = []
        for (action, target, text), (_, level) in zip(decisions, facts, strict=True):
            if action == "ADD":
                changes.append((None, level, agent_id if level is MemoryLevel.USER_AGENT else None, text))
            elif action == "UPDATE" and target is not None:
                old = olds.get(target)
                if old is not None and old.user_id == user_id:  # else deleted meanwhile, or never the user's
                    changes.append((old, MemoryLevel(old.level), old.agent_id, text))
        saved = await service.apply(changes, user_id=user_id, run_id=run_id, conversation_id=conversation_id)
        await session.commit()
    added = [{"id": str(m.id), "level": m.level, "text": m.text} for new, m in saved if new]
    updated = [{"id": str(m.id), "level": m.level, "text": m.text} for new, m in saved if not new]
    await service.start_jobs()
    if (added or updated) and _saved_hooks:
        try:
            await _saved_hooks[0](engines, tenant_id, run_id, added, updated)
        except Exception:
            logger.warning("could not record memory.saved", extra={"run_id": str(run_id)}, exc_info=True)
    return {"added": len(added), "updated": len(updated)}


async def _ask(client: Any, prompt: str, ctx: JobContext) -> str:
    try:
        result = await complete(client, [{"role": "user", "content": prompt}], max_tokens=800)
    except ProviderError as exc:
        if exc.code in RETRYABLE and not ctx.last_attempt:
            raise
        raise PermanentJobError(f"the model could not extract memories: {exc.code.value}") from None
    return str(result.content or "")


@job_handler(REEMBED)
async def reembed(ctx: JobContext) -> JobResult:
    """Embed every memory of the tenant with its new default embedding model into the new index, then switch
    recall to it."""
    tenant_id = ctx.tenant_id
    if tenant_id is None:
        raise PermanentJobError("a memory job needs its tenant")
    token = str(ctx.payload.get("token", ""))
    engines = ctx.engines
    caller = Caller(user_id=uuid.UUID(int=0), tenant_id=tenant_id, role=Role.USER)
    async with engines.sessions() as session:
        index = await MemorySettingsRepository(session, tenant_id).index()
        if index is None or str(index.reembed_token) != token or not index.pending_index_name:
            return {"skipped": "superseded"}
        assert index.pending_model_id is not None
        client = await ProviderService(session, engines, caller).client(index.pending_model_id)
        target = index.pending_index_name
    after: uuid.UUID | None = None
    done = 0
    while True:
        async with engines.sessions() as session:
            batch = await MemoryRepository(session, tenant_id).all_ids_after(after, REEMBED_BATCH)
        if not batch:
            break
        try:
            vectors = await _embed(client, [m.text for m in batch])
        except Exception:
            if not ctx.last_attempt:
                raise
            raise PermanentJobError("the new embedding model failed") from None
        await engines.search.upsert(target, [_chunk(m, v) for m, v in zip(batch, vectors, strict=True)])
        after, done = batch[-1].id, done + len(batch)
    async with engines.sessions() as session, session.begin():
        index = await MemorySettingsRepository(session, tenant_id).index(for_update=True)
        if index is None or str(index.reembed_token) != token:
            return {"skipped": "superseded"}
        old = index.index_name
        index.index_name, index.embedding_model_id = target, index.pending_model_id
        index.dimension = index.pending_dimension or index.dimension
        index.pending_index_name = index.pending_model_id = index.pending_dimension = None
        index.reembed_token = None
        await MemoryRepository(session, tenant_id).mark_model(index.embedding_model_id)
    await engines.search.drop_index(old)
    return {"memories": done}


async def rebuild_index(engines: Engines, tenant_id: uuid.UUID) -> int:
    """Build the tenant's memory index (and the one a re-embedding is filling) anew from the memories the database
    holds, embedding each again with the index's model: a restored backup calls it. Returns how many memories were
    indexed."""
    caller = Caller(user_id=uuid.UUID(int=0), tenant_id=tenant_id, role=Role.USER)
    async with engines.sessions() as session:
        index = await MemorySettingsRepository(session, tenant_id).index()
    if index is None:
        return 0
    targets = [(index.index_name, index.embedding_model_id, index.dimension)]
    if index.pending_index_name and index.pending_dimension:
        targets.append((index.pending_index_name, index.pending_model_id, index.pending_dimension))
    indexed = 0
    for name, model_id, dimension in targets:
        await engines.search.drop_index(name)
        await engines.search.create_index(name, dimension)
        if model_id is None:
            continue
        async with engines.sessions() as session:
            client = await ProviderService(session, engines, caller).client(model_id)
        after: uuid.UUID | None = None
        while True:
            async with engines.sessions() as session:
                batch = await MemoryRepository(session, tenant_id).all_ids_after(after, REEMBED_BATCH)
            if not batch:
                break
            vectors = await _embed(client, [m.text for m in batch])
            await engines.search.upsert(name, [_chunk(m, v) for m, v in zip(batch, vectors, strict=True)])
            after, indexed = batch[-1].id, indexed + len(batch)
    return indexed
