"""Memories: what members read, write and turn off; the tenant's memory index in the search engine; recall before
a run. Extraction after a run is in `jobs.py`.

Rows are the source of truth. Each memory is also a chunk of the tenant's memory index (one per tenant, made with
the tenant's default embedding model; a new default model re-embeds every memory into a new index, recall keeping
the old one meanwhile). A chunk's `document_id` is the memory's *scope* (level, agent, user hashed together), so
one search with the scopes a run may see (`document_ids`) never reaches anything else: another user's memories are
not in any scope the run names.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.errors import AppError, Forbidden, NotFound
from nexent.core.pagination import Page, PageParams
from nexent.engines.container import Engines
from nexent.engines.queue import QueuedJob
from nexent.engines.search.base import IndexedChunk, SearchHit, SearchRequest
from nexent.engines.search.languages import query_languages, vector_weight_for
from nexent.identity.auth import Caller
from nexent.identity.hooks import existing_agents
from nexent.identity.permissions import Permission
from nexent.memory.models import PERSONAL_LEVELS, Memory, MemoryIndex, MemoryLevel
from nexent.memory.repository import MemoryRepository, MemorySettingsRepository, editable_by, readable_by
from nexent.memory.schemas import (
    AgentMemorySetting,
    MemoryCreate,
    MemoryLevels,
    MemoryRead,
    MemorySettingsRead,
    MemorySettingsUpdate,
    MemoryUpdate,
    RecalledMemory,
)
from nexent.providers.models import ModelKind
from nexent.providers.service import ProviderService, default_model_facts
from nexent.providers.types import ProviderError

logger = logging.getLogger("nexent.memory")

REEMBED = "memory.reembed"
SEARCH_TEXT_CHARS = 4000  # of a query: enough to find what a message is about


class MemoryNotFound(NotFound):
    code = "memory_not_found"


class UnknownAgent(NotFound):
    code = "agent_not_found"


class InvalidMemoryScope(AppError):
    status, code = 422, "invalid_memory_scope"


class MemoryModelFailed(AppError):
    status, code = 502, "model_call_failed"


class NoEmbeddingModel(AppError):
    status, code = 409, "no_default_model"


def scope_id(level: MemoryLevel | str, agent_id: uuid.UUID | None, user_id: uuid.UUID | None) -> str:
    """The search-index `document_id` of every memory of one scope."""
    key = f"{MemoryLevel(level).value}|{agent_id.hex if agent_id else ''}|{user_id.hex if user_id else ''}"
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def memory_scope(memory: Memory) -> str:
    return scope_id(memory.level, memory.agent_id, memory.user_id)


def index_name(generation: uuid.UUID) -> str:
    return f"mem_{generation.hex}"


def estimate_tokens(text: str) -> int:
    """About how many tokens `text` takes (a word is about 4/3 of a token; CJK text about a character each)."""
    words = len(text.split())
    cjk = sum(1 for ch in text if "\u3000" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af")
    return max(1, (words * 4) // 3 + cjk)


def _chunk(memory: Memory, vector: Sequence[float]) -> IndexedChunk:
    return IndexedChunk(
        id=memory.id.hex,
        document_id=memory_scope(memory),
        text=memory.text,
        vector=vector,
        metadata={"level": memory.level},
    )


@dataclass(frozen=True)
class Switches:
    """What memory a run of `user_id` with `agent_id` may use: none when `levels` is empty."""

    index: MemoryIndex | None
    levels: frozenset[MemoryLevel]

    def scopes(self, user_id: uuid.UUID, agent_id: uuid.UUID | None) -> list[str]:
        scopes = []
        for level in self.levels:
            if level in (MemoryLevel.AGENT, MemoryLevel.USER_AGENT) and agent_id is None:
                continue
            scopes.append(
                scope_id(
                    level,
                    agent_id if level in (MemoryLevel.AGENT, MemoryLevel.USER_AGENT) else None,
                    user_id if level in PERSONAL_LEVELS else None,
                )
            )
        return scopes


async def switches(
    session: AsyncSession, engines: Engines, tenant_id: uuid.UUID, user_id: uuid.UUID, agent_id: uuid.UUID | None
) -> Switches:
    """The levels a run may recall from and extract into, after every switch (platform, agent, user), in one
    query."""
    if not engines.settings.memory_enabled:
        return Switches(None, frozenset())
    index, user, agent_on = await MemorySettingsRepository(session, tenant_id).switches(user_id, agent_id)
    if not agent_on:
        return Switches(index, frozenset())
    levels = set(MemoryLevel)
    if user is not None:
        if agent_id is not None and str(agent_id) in (user.disabled_agent_ids or []):
            return Switches(index, frozenset())
        known = {level.value for level in MemoryLevel}
        levels -= {MemoryLevel(level) for level in user.disabled_levels or [] if level in known}
    return Switches(index, frozenset(levels))


async def _embed(client: Any, texts: list[str]) -> list[list[float]]:
    try:
        vectors, _ = await client.embed(texts, batch_size=64)
    except ProviderError as exc:
        raise MemoryModelFailed(
            f"The embedding model failed: {exc.message}", extra={"model_error": {"code": exc.code.value}}
        ) from None
    return [list(v) for v in vectors]


@dataclass
class Embedded:
    """Texts embedded for every index they go to, before anything is written (on SQLite a write transaction held
    across a model call would lock out the model's usage record)."""

    index: MemoryIndex
    new: bool  # the tenant's first memory: the index is made when written
    targets: list[tuple[str, uuid.UUID | None, list[list[float]]]]  # (index name, model, vectors)
    reembed_to: tuple[uuid.UUID, int] | None = None  # a new default model (and its dimension)


class MemoryIndexes:
    """The tenant's memory index: made on the first memory, re-embedded when the default embedding model changes."""

    def __init__(self, session: AsyncSession, engines: Engines, caller: Caller) -> None:
        self.session = session
        self.engines = engines
        self.caller = caller
        self.settings = MemorySettingsRepository(session, caller.tenant_id)
        self.providers = ProviderService(session, engines, caller)
        self.queued: list[QueuedJob] = []

    async def embed_for_write(self, texts: list[str]) -> Embedded:
        """The vectors of `texts` for each index they must go to (a new index when the tenant has none)."""
        index = await self.settings.index()
        try:
            client, config = await self.providers.client_and_config(None, ModelKind.EMBEDDING)
        except NotFound:
            client, config = None, None
        if index is None:
            if client is None or config is None:
                raise NoEmbeddingModel(
                    "This tenant has no default embedding model; memory needs one (add it under models)."
                )
            vectors = await _embed(client, texts or ["dimension probe"])
            index = MemoryIndex(
                tenant_id=self.caller.tenant_id,
                index_name=index_name(uuid.uuid4()),
                embedding_model_id=config.id,
                dimension=config.dimension or len(vectors[0]),
            )
            return Embedded(index, True, [(index.index_name, config.id, vectors if texts else [])])
        targets: list[tuple[str, uuid.UUID | None, list[list[float]]]] = []
        for name, model_id in self.live(index):
            if model_id is None:
                continue
            try:
                target_client = (
                    client if config is not None and model_id == config.id else await self.providers.client(model_id)
                )
            except NotFound:
                continue  # the model was deleted: its index is rebuilt with the next default model
            targets.append((name, model_id, await _embed(target_client, texts) if texts else []))
        reembed_to = None
        if (
            client is not None
            and config is not None
            and config.id not in (index.embedding_model_id, index.pending_model_id)
        ):
            vectors = await _embed(client, texts or ["dimension probe"])
            reembed_to = (config.id, config.dimension or len(vectors[0]))
            targets.append(("", config.id, vectors if texts else []))  # the new index, named when it is made
        return Embedded(index, False, targets, reembed_to)

    async def write(self, embedded: Embedded, memories: Sequence[Memory]) -> None:
        """Index `memories` (in the order of the texts embedded; their rows already flushed)."""
        index = embedded.index
        if embedded.new:
            await self.engines.search.create_index(index.index_name, index.dimension)
            await self.settings.add_index(index)
        if embedded.reembed_to is not None:
            await self.start_reembed(index, *embedded.reembed_to)
        for name, model_id, vectors in embedded.targets:
            target = name or index.pending_index_name
            if not target or not memories:
                continue
            if target == index.index_name:
                for memory in memories:
                    memory.embedding_model_id = model_id
            await self.engines.search.upsert(target, [_chunk(m, v) for m, v in zip(memories, vectors, strict=True)])
        await self.session.flush()

    async def start_reembed(self, index: MemoryIndex, model_id: uuid.UUID, dimension: int) -> None:
        """Build a new index with `model_id` in the background (recall keeps the current one until it is done)."""
        if index.pending_index_name:
            await self.engines.search.drop_index(index.pending_index_name)
        index.pending_index_name = index_name(uuid.uuid4())
        index.pending_model_id = model_id
        index.pending_dimension = dimension
        index.reembed_token = uuid.uuid4()
        await self.engines.search.create_index(index.pending_index_name, dimension)
        await self.session.flush()
        payload = {"token": str(index.reembed_token)}
        job = await self.engines.queue.add(
            self.session, REEMBED, payload, tenant_id=self.caller.tenant_id, max_attempts=5
        )
        self.queued.append(job)

    def live(self, index: MemoryIndex) -> list[tuple[str, uuid.UUID | None]]:
        """Where a memory is written: the current index and, during a re-embedding, the new one."""
        targets: list[tuple[str, uuid.UUID | None]] = [(index.index_name, index.embedding_model_id)]
        if index.pending_index_name:
            targets.append((index.pending_index_name, index.pending_model_id))
        return targets

    async def remove(self, index: MemoryIndex | None, memory_ids: Sequence[uuid.UUID]) -> None:
        if index is None or not memory_ids:
            return
        for name, _ in self.live(index):
            await self.engines.search.delete(name, chunk_ids=[m.hex for m in memory_ids])

    async def search(
        self,
        index: MemoryIndex,
        text: str,
        scopes: list[str],
        *,
        top_k: int,
        mode: str = "hybrid",
        client: Any = None,
        languages: list[str] | None = None,
    ) -> list[SearchHit]:
        """The memories of `scopes` nearest to `text` (BM25 alone when the index's model is gone)."""
        if not scopes:
            return []
        text = text[:SEARCH_TEXT_CHARS]
        vector = None
        if mode != "bm25":
            if client is None and index.embedding_model_id is not None:
                try:
                    client, config = await self.providers.client_and_config(
                        index.embedding_model_id, ModelKind.EMBEDDING
                    )
                    languages = config.languages
                except NotFound:
                    client = None
            if client is not None:
                vector = (await _embed(client, [text]))[0]
        if vector is None:
            mode = "bm25"
        weight = None
        if mode == "hybrid":
            weight = vector_weight_for(self.engines.settings.search_vector_weight, query_languages(text), languages)
        request = SearchRequest(
            text=text,
            vector=vector,
            mode=mode,  # type: ignore[arg-type]
            top_k=top_k,
            document_ids=scopes,
            vector_weight=weight,
        )
        return await self.engines.search.search(index.index_name, request)


@dataclass(frozen=True)
class Recall:
    """What memory gives a run: the memories recalled, and whether its turn may be extracted afterwards."""

    memories: list[RecalledMemory]
    extract: bool


async def recall(engines: Engines, caller: Caller, agent_id: uuid.UUID | None, message: str) -> Recall:
    """The memories a run of `caller` with `agent_id` recalls for `message`: the most relevant of the scopes the run
    may see, within the token budget. Never raises: memory must not fail a run."""
    settings = engines.settings
    budget = settings.memory_recall_tokens
    if not settings.memory_enabled:
        return Recall([], False)
    try:
        async with engines.sessions() as session:
            found = await switches(session, engines, caller.tenant_id, caller.user_id, agent_id)
            extract = bool(found.levels & PERSONAL_LEVELS)
            if extract and found.index is None:  # no memory yet: one can be saved only with an embedding model
                extract = await default_model_facts(session, caller.tenant_id, ModelKind.EMBEDDING) is not None
            if found.index is None or not found.levels or budget <= 0 or not message.strip():
                return Recall([], extract)
            indexes = MemoryIndexes(session, engines, caller)
            hits = await indexes.search(
                found.index, message, found.scopes(caller.user_id, agent_id), top_k=settings.memory_recall_top_k
            )
    except Exception:
        logger.warning("memory recall failed; the run goes on without it", exc_info=True)
        return Recall([], False)
    recalled: list[RecalledMemory] = []
    used = 0
    for hit in hits:
        cost = estimate_tokens(hit.text)
        if used + cost > budget:
            continue
        used += cost
        level = str(hit.metadata.get("level", MemoryLevel.USER.value))
        recalled.append(RecalledMemory(id=str(uuid.UUID(hit.id)), level=MemoryLevel(level), text=hit.text))
    return Recall(recalled, extract)


def remembered_section(memories: Sequence[RecalledMemory]) -> str:
    """The context a run gets from its memories."""
    lines = "\n".join(f"- {m.text}" for m in memories)
    return f"What you remember (from earlier conversations; use it when relevant):\n{lines}"


class MemoryService:
    """What a member does with memories (their own; managers also the tenant's and agents')."""

    def __init__(self, session: AsyncSession, engines: Engines, caller: Caller) -> None:
        self.session = session
        self.engines = engines
        self.caller = caller
        self.memories = MemoryRepository(session, caller.tenant_id)
        self.settings = MemorySettingsRepository(session, caller.tenant_id)
        self.indexes = MemoryIndexes(session, engines, caller)

    @property
    def manager(self) -> bool:
        return self.caller.can(Permission.MANAGE_MEMORY)

    async def start_jobs(self) -> None:
        """Dispatch the jobs the committed changes wrote. Call after the commit."""
        await self.engines.queue.dispatch(self.indexes.queued)
        self.indexes.queued = []

    # --- memories ---------------------------------------------------------------------------------------------

    def _read(self, memory: Memory, can_edit: bool, score: float | None = None) -> MemoryRead:
        return MemoryRead(
            id=memory.id,
            level=MemoryLevel(memory.level),
            agent_id=memory.agent_id,
            user_id=memory.user_id,
            text=memory.text,
            source_run_id=memory.source_run_id,
            source_conversation_id=memory.source_conversation_id,
            embedding_model_id=memory.embedding_model_id,
            created_at=memory.created_at,
            updated_at=memory.updated_at,
            can_edit=can_edit,
            score=score,
        )

    async def list_memories(
        self, page: PageParams, *, level: MemoryLevel | None, agent_id: uuid.UUID | None, query: str | None
    ) -> Page[MemoryRead]:
        where = readable_by(self.caller.user_id)
        flag = editable_by(self.caller.user_id, manager=self.manager)
        if not query:
            rows, total = await self.memories.page(
                where=where, flag=flag, level=level, agent_id=agent_id, ids=None, limit=page.limit, offset=page.offset
            )
            return Page(items=[self._read(m, e) for m, e in rows], total=total, limit=page.limit, offset=page.offset)
        scores = await self._search(query, level, agent_id, top_k=page.offset + page.limit)
        rows, _ = await self.memories.page(
            where=where, flag=flag, level=level, agent_id=agent_id, ids=set(scores), limit=0, offset=0
        )
        ranked = sorted(rows, key=lambda pair: scores[pair[0].id], reverse=True)
        items = [self._read(m, e, scores[m.id]) for m, e in ranked]
        return Page(
            items=items[page.offset : page.offset + page.limit], total=len(items), limit=page.limit, offset=page.offset
        )

    async def _search(
        self, query: str, level: MemoryLevel | None, agent_id: uuid.UUID | None, *, top_k: int
    ) -> dict[uuid.UUID, float]:
        """Memory ids by relevance to `query`, among those the caller reads (the rows are checked again)."""
        index = await self.settings.index()
        if index is None:
            return {}
        user = self.caller.user_id
        scopes: list[str] = []
        levels = [level] if level is not None else list(MemoryLevel)
        agents: list[uuid.UUID] = []
        if agent_id is not None:
            agents = [agent_id]
        elif any(lv in (MemoryLevel.AGENT, MemoryLevel.USER_AGENT) for lv in levels):
            agents = await self._agents_with_memories()
        for lv in levels:
            if lv is MemoryLevel.TENANT:
                scopes.append(scope_id(lv, None, None))
            elif lv is MemoryLevel.USER:
                scopes.append(scope_id(lv, None, user))
            else:
                scopes.extend(scope_id(lv, a, user if lv is MemoryLevel.USER_AGENT else None) for a in agents)
        hits = await self.indexes.search(index, query, scopes, top_k=min(max(top_k, 10), 1000))
        return {uuid.UUID(hit.id): float(hit.score) for hit in hits}

    async def _agents_with_memories(self) -> list[uuid.UUID]:
        rows, _ = await self.memories.page(
            where=readable_by(self.caller.user_id),
            flag=readable_by(self.caller.user_id),
            level=None,
            agent_id=None,
            ids=None,
            limit=10_000,
            offset=0,
        )
        return sorted({m.agent_id for m, _ in rows if m.agent_id is not None})

    async def _reach(self, memory_id: uuid.UUID) -> tuple[Memory, bool]:
        found = await self.memories.get_checked_memory(
            memory_id,
            where=readable_by(self.caller.user_id),
            flag=editable_by(self.caller.user_id, manager=self.manager),
        )
        if found is None:
            raise MemoryNotFound(f"No memory {memory_id}.")
        return found

    async def _editable(self, memory_id: uuid.UUID) -> Memory:
        memory, can_edit = await self._reach(memory_id)
        if not can_edit:
            raise Forbidden(
                "Only members who manage memory change the tenant's and agents' memories.", code="permission_denied"
            )
        return memory

    async def get(self, memory_id: uuid.UUID) -> MemoryRead:
        memory, can_edit = await self._reach(memory_id)
        return self._read(memory, can_edit)

    async def create(self, data: MemoryCreate) -> MemoryRead:
        level = data.level
        if level in (MemoryLevel.TENANT, MemoryLevel.AGENT) and not self.manager:
            raise Forbidden(
                f"Your role ({self.caller.role}) does not allow this (memory.manage).", code="permission_denied"
            )
        needs_agent = level in (MemoryLevel.AGENT, MemoryLevel.USER_AGENT)
        if needs_agent != (data.agent_id is not None):
            raise InvalidMemoryScope(
                "`agent_id` is required for the agent and user_agent levels, and refused for the others.",
                extra={"errors": [{"loc": ["body", "agent_id"], "msg": "agent_id does not fit the level."}]},
            )
        if data.agent_id is not None:
            await self.check_agents([data.agent_id])
        memory = await self.add(
            level, data.text, agent_id=data.agent_id, user_id=self.caller.user_id if level in PERSONAL_LEVELS else None
        )
        return self._read(memory, True)

    async def check_agents(self, agent_ids: Sequence[uuid.UUID]) -> None:
        known = await existing_agents(self.session, self.caller.tenant_id, agent_ids)
        unknown = [a for a in agent_ids if a not in known]
        if unknown:
            raise UnknownAgent(
                "No such agent in this tenant.",
                extra={"errors": [{"loc": ["body", "agent_id"], "msg": f"Unknown agent {a}."} for a in unknown]},
            )

    async def add(
        self,
        level: MemoryLevel,
        text: str,
        *,
        agent_id: uuid.UUID | None,
        user_id: uuid.UUID | None,
        run_id: uuid.UUID | None = None,
        conversation_id: uuid.UUID | None = None,
    ) -> Memory:
        embedded = await self.indexes.embed_for_write([text])
        memory = Memory(
            tenant_id=self.caller.tenant_id,
            level=level.value,
            agent_id=agent_id,
            user_id=user_id,
            text=text,
            source_run_id=run_id,
            source_conversation_id=conversation_id,
            created_by=self.caller.user_id if self.caller.user_id.int else None,
        )
        await self.memories.add(memory)
        await self.indexes.write(embedded, [memory])
        return memory

    async def apply(
        self,
        changes: Sequence[tuple[Memory | None, MemoryLevel, uuid.UUID | None, str]],
        *,
        user_id: uuid.UUID,
        run_id: uuid.UUID | None,
        conversation_id: uuid.UUID | None,
    ) -> list[tuple[bool, Memory]]:
        """Save what an extraction decided, every text embedded first: `(memory to update or None to add, level,
        agent, text)`; returns `(added, memory)` for each."""
        if not changes:
            return []
        embedded = await self.indexes.embed_for_write([text for *_, text in changes])
        saved: list[tuple[bool, Memory]] = []
        for old, level, agent_id, text in changes:
            if old is None:
                memory = Memory(
                    tenant_id=self.caller.tenant_id,
                    level=level.value,
                    agent_id=agent_id,
                    user_id=user_id,
                    text=text,
                    source_run_id=run_id,
                    source_conversation_id=conversation_id,
                )
                await self.memories.add(memory)
                saved.append((True, memory))
            else:
                old.text, old.source_run_id, old.source_conversation_id = text, run_id, conversation_id
                saved.append((False, old))
        await self.session.flush()
        await self.indexes.write(embedded, [memory for _, memory in saved])
        return saved

    async def update(self, memory_id: uuid.UUID, data: MemoryUpdate) -> MemoryRead:
        memory = await self._editable(memory_id)
        await self.replace_text(memory, data.text)
        return self._read(memory, True)

    async def replace_text(
        self, memory: Memory, text: str, *, run_id: uuid.UUID | None = None, conversation_id: uuid.UUID | None = None
    ) -> Memory:
        embedded = await self.indexes.embed_for_write([text])
        memory.text = text
        if run_id is not None:
            memory.source_run_id = run_id
            memory.source_conversation_id = conversation_id
        await self.session.flush()
        await self.indexes.write(embedded, [memory])
        await self.session.refresh(memory)
        return memory

    async def delete(self, memory_id: uuid.UUID) -> None:
        memory = await self._editable(memory_id)
        await self.memories.delete(memory)
        await self.indexes.remove(await self.settings.index(), [memory.id])

    # --- settings ---------------------------------------------------------------------------------------------

    async def get_settings(self) -> MemorySettingsRead:
        mine = await self.settings.user_settings(self.caller.user_id)
        off = set(mine.disabled_levels if mine else [])
        return MemorySettingsRead(
            enabled=self.engines.settings.memory_enabled,
            levels=MemoryLevels(**{level.value: level.value not in off for level in MemoryLevel}),
            disabled_agent_ids=[uuid.UUID(a) for a in (mine.disabled_agent_ids if mine else [])],
            agents_turned_off=sorted(await self.settings.agents_turned_off()),
        )

    async def update_settings(self, data: MemorySettingsUpdate) -> MemorySettingsRead:
        mine = await self.settings.user_settings_or_new(self.caller.user_id)
        if data.levels is not None:
            mine.disabled_levels = [level.value for level in MemoryLevel if not getattr(data.levels, level.value)]
        if data.disabled_agent_ids is not None:
            agents = list(dict.fromkeys(data.disabled_agent_ids))
            await self.check_agents(agents)
            mine.disabled_agent_ids = [str(a) for a in agents]
        await self.session.flush()
        return await self.get_settings()

    async def agent_setting(self, agent_id: uuid.UUID) -> AgentMemorySetting:
        await self.check_agents([agent_id])
        found = await self.settings.agent_setting(agent_id)
        return AgentMemorySetting(agent_id=agent_id, enabled=found is None or found.enabled)

    async def set_agent(self, agent_id: uuid.UUID, enabled: bool) -> AgentMemorySetting:
        await self.check_agents([agent_id])
        await self.settings.set_agent(agent_id, enabled)
        return AgentMemorySetting(agent_id=agent_id, enabled=enabled)


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
