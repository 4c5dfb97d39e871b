"""Background work of the runtime: titling new conversations with the model; queueing memory extraction after a
turn (the job itself is memory's, `nexent.memory.jobs`).

Titles are low priority: a title asked for while runs execute in this process is queued once the process is
quiet (no run executing), and the job itself waits for a quiet moment too, each at most
`TITLE_MAX_DELAY_SECONDS`. Writing a title is a model call and several transactions, which would otherwise
compete with the runs for the CPU and the database. A title asked for just before the process stops is not
written (the conversation keeps its provisional title, the first message).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from nexent.core.tracing import with_trace
from nexent.engines.container import Engines
from nexent.identity.auth import Caller
from nexent.identity.models import Role
from nexent.jobs.registry import JobContext, JobResult, PermanentJobError, job_handler
from nexent.memory.jobs import EXTRACT
from nexent.providers.models import ModelKind
from nexent.providers.service import ProviderService
from nexent.providers.types import ProviderError, complete
from nexent.runtime.activity import quiet
from nexent.runtime.event_types import MemorySaved, RememberedFact
from nexent.runtime.events import append_after_end
from nexent.runtime.models import Conversation
from nexent.runtime.repository import ConversationRepository, MessageRepository

logger = logging.getLogger("nexent.runtime")

TITLE_CONVERSATION = "runtime.title_conversation"
TITLE_MAX_DELAY_SECONDS = 30.0
_TITLE_PROMPT = (
    "Write a title of at most eight words for the conversation below. Answer with the title only, "
    "without quotes or a final period, in the language of the conversation.\n\n"
)


class _TitleRequests:
    """Titles (and memory extractions) asked for by this process's runs, queued as jobs once the process is quiet
    (a part of its `ProcessState`: those still waiting when it stops are not written)."""

    def __init__(self, engines: Engines) -> None:
        self.engines = engines
        self.pending: list[tuple[str, uuid.UUID, dict[str, Any]]] = []
        self.task: asyncio.Task[None] | None = None

    async def close(self) -> None:
        self.pending.clear()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    def add(self, tenant_id: uuid.UUID, payload: dict[str, Any], name: str = "") -> None:
        # Queued later, from another task: the job joins the trace of the run that asked for it, not of that task.
        self.pending.append((name or TITLE_CONVERSATION, tenant_id, with_trace(payload)))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._enqueue_when_quiet(), name="nexent-title-requests")

    async def _enqueue_when_quiet(self) -> None:
        while self.pending:
            await quiet(TITLE_MAX_DELAY_SECONDS)
            batch, self.pending = self.pending, []
            for name, tenant_id, payload in batch:
                try:
                    await self.engines.queue.enqueue(name, payload, tenant_id=tenant_id, max_attempts=2)
                except Exception:
                    logger.warning("could not queue a background job of a run", extra={"job": name}, exc_info=True)


def request_title(engines: Engines, tenant_id: uuid.UUID, conversation_id: uuid.UUID, model_id: str | None) -> None:
    """Have the model title a new conversation, when this process has a quiet moment."""
    requests = engines.process.part(_TitleRequests, lambda: _TitleRequests(engines))
    requests.add(tenant_id, {"conversation_id": str(conversation_id), "model_id": model_id})


def request_memory(engines: Engines, tenant_id: uuid.UUID, payload: dict[str, Any]) -> None:
    """Have memory extract the facts of a finished turn (`memory.jobs.extraction_payload`), when this process has a
    quiet moment."""
    requests = engines.process.part(_TitleRequests, lambda: _TitleRequests(engines))
    requests.add(tenant_id, payload, EXTRACT)


async def record_memory_saved(
    engines: Engines,
    tenant_id: uuid.UUID,
    run_id: uuid.UUID,
    added: list[dict[str, Any]],
    updated: list[dict[str, Any]],
) -> None:
    """What memory's extraction saved, as the run's `memory.saved` event (after its end; `nexent.wiring`)."""
    event = MemorySaved(
        added=[RememberedFact.model_validate(m) for m in added],
        updated=[RememberedFact.model_validate(m) for m in updated],
    )
    await append_after_end(engines, tenant_id, run_id, event)


@job_handler(TITLE_CONVERSATION)
async def title_conversation(ctx: JobContext) -> JobResult:
    """Replace the provisional title (the first message, shortened) by one the model writes."""
    tenant_id = ctx.tenant_id
    if tenant_id is None:
        raise PermanentJobError("a conversation job needs its tenant")
    await quiet(TITLE_MAX_DELAY_SECONDS)  # runs of this process first (in a separate worker, nothing to wait for)
    conversation_id = uuid.UUID(str(ctx.payload["conversation_id"]))
    engines = ctx.engines
    async with engines.sessions() as session:
        conversation = await ConversationRepository(session, tenant_id).get(conversation_id)
        if conversation is None:
            return {"skipped": "conversation deleted"}
        provisional = conversation.title
        messages = await MessageRepository(session, tenant_id).of_conversation(conversation_id, limit=2)
        caller = Caller(user_id=conversation.user_id, tenant_id=tenant_id, role=Role.USER)
        model_id = ctx.payload.get("model_id")
        providers = ProviderService(session, engines, caller)
        client = (
            await providers.client(uuid.UUID(str(model_id)))
            if model_id
            else await providers.default_client(ModelKind.LLM)
        )
    excerpt = "\n".join(f"{m.role}: {m.content[:1000]}" for m in messages)
    try:
        result = await complete(client, [{"role": "user", "content": _TITLE_PROMPT + excerpt}], max_tokens=24)
    except ProviderError as exc:
        raise PermanentJobError(f"the model could not write a title: {exc.code.value}") from None
    title = " ".join(result.content.strip().strip("\"'“”").split())[:200].rstrip(".")
    if not title:
        return {"skipped": "empty title"}
    async with engines.sessions() as session, session.begin():
        # A title the user chose in the meantime wins.
        written = await ConversationRepository(session, tenant_id).annotate(
            conversation_id, Conversation.title == provisional, title=title
        )
    return {"title": title} if written else {"skipped": "renamed meanwhile"}
