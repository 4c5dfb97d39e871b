"""Background work of the runtime: titling new conversations with the model."""

from __future__ import annotations

import uuid

from nexent.identity.auth import Caller
from nexent.identity.models import Role
from nexent.jobs.registry import JobContext, JobResult, PermanentJobError, job_handler
from nexent.providers.models import ModelKind
from nexent.providers.service import ProviderService
from nexent.providers.types import ProviderError, complete
from nexent.runtime.repository import ConversationRepository, MessageRepository

TITLE_CONVERSATION = "runtime.title_conversation"
_TITLE_PROMPT = (
    "Write a title of at most eight words for the conversation below. Answer with the title only, "
    "without quotes or a final period, in the language of the conversation.\n\n"
)


@job_handler(TITLE_CONVERSATION)
async def title_conversation(ctx: JobContext) -> JobResult:
    """Replace the provisional title (the first message, shortened) by one the model writes."""
    tenant_id = ctx.tenant_id
    if tenant_id is None:
        raise PermanentJobError("a conversation job needs its tenant")
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
        conversation = await ConversationRepository(session, tenant_id).get(conversation_id)
        # A title the user chose in the meantime wins.
        if conversation is None or conversation.title != provisional:
            return {"skipped": "renamed meanwhile"}
        conversation.title = title
    return {"title": title}
