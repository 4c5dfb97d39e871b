"""Conversations: a caller's list, reading, renaming and deleting; the earlier turns a run feeds back to its model
(and the summary of those that no longer fit); the messages and provisional titles runs store."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.db import utcnow
from nexent.core.errors import AppError, NotFound
from nexent.core.pagination import Page, PageParams
from nexent.engines.container import Engines
from nexent.identity.auth import Caller
from nexent.providers.types import ProviderError
from nexent.runtime.builder import Turn, summarize
from nexent.runtime.models import Conversation, Message
from nexent.runtime.repository import (
    AttachmentRepository,
    ConversationRepository,
    MessageRepository,
    Reach,
    RunRepository,
)
from nexent.runtime.schemas import (
    AttachmentRead,
    ConversationDetail,
    ConversationRead,
    ConversationUpdate,
    MessageRead,
)

logger = logging.getLogger("nexent.runtime")

_TITLE_LENGTH = 60


class ConversationNotFound(NotFound):
    code = "conversation_not_found"


class NothingToRegenerate(AppError):
    """The conversation has no user message whose answer could be produced again."""

    status, code = 409, "nothing_to_regenerate"


class ConversationBusy(AppError):
    """A run of the conversation is still queued or running: its last turn is not settled yet."""

    status, code = 409, "conversation_busy"


class ConversationOfAnotherAgent(AppError):
    """A run names a conversation held with another agent: a conversation belongs to one agent."""

    status, code = 422, "conversation_of_another_agent"


def reach_of(caller: Caller) -> Reach:
    """The runs and conversations a caller reaches: their own, and with an API key limited to some agents only
    those of these agents."""
    return Reach(user_id=caller.user_id, agent_ids=caller.allowed_agent_ids)


class ConversationService:
    """What a caller does with their conversations; a caller sees only their own, and an API key limited to some
    agents only those with these agents (any other answers 404, as an absent one)."""

    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller
        self.reach = reach_of(caller)
        self.conversations = ConversationRepository(session, caller.tenant_id)
        self.messages = MessageRepository(session, caller.tenant_id)

    async def owned(self, conversation_id: uuid.UUID) -> Conversation:
        """The caller's conversation, if they reach it (else `ConversationNotFound`)."""
        conversation = await self.conversations.reachable(conversation_id, self.reach)
        if conversation is None:
            raise ConversationNotFound(f"No conversation {conversation_id} of yours.")
        return conversation

    async def to_continue(self, conversation_id: uuid.UUID, agent_id: uuid.UUID) -> Conversation:
        """The caller's conversation that a run of `agent_id` continues: one held with that agent (a conversation
        with another agent, or with one since deleted, is refused: its turns are not this agent's to read)."""
        conversation = await self.owned(conversation_id)
        if conversation.agent_id != agent_id:
            raise ConversationOfAnotherAgent(
                f"The conversation {conversation_id} is held with another agent; start a new one.",
                extra={
                    "errors": [
                        {
                            "loc": ["body", "conversation_id"],
                            "msg": "The conversation belongs to another agent.",
                            "type": "invalid_reference",
                        }
                    ]
                },
            )
        return conversation

    async def last_turn(self, conversation_id: uuid.UUID) -> tuple[Conversation, uuid.UUID, list[Message]]:
        """The caller's conversation, its agent, and its last turn to produce again: the last user message and the
        messages after it (its answer). 409 while a run of the conversation is unfinished, or when it has no user
        message; 422 when its agent was deleted (its turns belong to no agent now)."""
        conversation = await self.owned(conversation_id)
        if conversation.agent_id is None:
            raise ConversationOfAnotherAgent(
                f"The agent of conversation {conversation_id} was deleted; start a new conversation."
            )
        if await RunRepository(self.session, self.caller.tenant_id).unfinished_in(conversation.id):
            raise ConversationBusy("A run of this conversation is still going on; stop it or wait for its end.")
        turn = await self.messages.last_turn(conversation.id)
        if not turn:
            raise NothingToRegenerate("The conversation has no message to answer again.")
        return conversation, conversation.agent_id, turn

    async def list_conversations(
        self, page: PageParams, *, title_contains: str | None = None
    ) -> Page[ConversationRead]:
        rows, total = await self.conversations.list_page(
            reach=self.reach, title_contains=title_contains, limit=page.limit, offset=page.offset
        )
        return Page[ConversationRead](
            items=[ConversationRead.model_validate(c) for c in rows], total=total, limit=page.limit, offset=page.offset
        )

    async def get(self, conversation_id: uuid.UUID) -> ConversationDetail:
        conversation = await self.owned(conversation_id)
        messages = await self.messages.of_conversation(conversation.id)
        attached: dict[uuid.UUID, list[AttachmentRead]] = defaultdict(list)
        for row in await AttachmentRepository(self.session, self.caller.tenant_id).of_conversation(conversation.id):
            if row.message_id is not None:
                attached[row.message_id].append(AttachmentRead.model_validate(row))
        return ConversationDetail(
            **ConversationRead.model_validate(conversation).model_dump(),
            messages=[
                MessageRead.model_validate(m).model_copy(update={"attachments": attached.get(m.id, [])})
                for m in messages
            ],
        )

    async def turns_with(self, conversation_id: uuid.UUID, agent_id: uuid.UUID) -> list[tuple[str, str, list[Any]]]:
        """The messages (role, content, tool calls) of the caller's conversation with `agent_id`, oldest first: the
        evidence an agent's improvement reads."""
        conversation = await self.to_continue(conversation_id, agent_id)
        messages = await self.messages.of_conversation(conversation.id)
        return [(m.role, m.content, list(m.tool_calls or [])) for m in messages]

    async def rename(self, conversation_id: uuid.UUID, data: ConversationUpdate) -> ConversationRead:
        conversation = await self.owned(conversation_id)
        conversation.title = data.title
        conversation.updated_at = utcnow()
        await self.session.flush()
        return ConversationRead.model_validate(conversation)

    async def delete(self, conversation_id: uuid.UUID) -> None:
        conversation = await self.owned(conversation_id)
        await self.conversations.delete(conversation)


async def history(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    run_id: uuid.UUID,
    *,
    leave_out: frozenset[uuid.UUID] = frozenset(),
) -> list[Turn]:
    """The earlier turns of a conversation (those of the run `run_id`, and the messages `leave_out`, left out)."""
    messages = await MessageRepository(session, tenant_id).of_conversation(conversation_id)
    return [(m.role, m.content) for m in messages if m.run_id != run_id and m.id not in leave_out and m.content]


async def summary_of(
    engines: Engines, tenant_id: uuid.UUID, conversation_id: uuid.UUID | None, omitted: list[Turn], client: Any
) -> str | None:
    """The summary of the turns that no longer fit, reused while the same turns are left out."""
    if conversation_id is None:
        return None
    async with engines.sessions() as session:
        conversation = await ConversationRepository(session, tenant_id).get(conversation_id)
        if conversation is not None and conversation.summary and conversation.summarized_messages == len(omitted):
            return conversation.summary
    try:
        summary = await summarize(client, omitted)
    except ProviderError:
        logger.warning("could not summarise earlier turns", extra={"conversation_id": str(conversation_id)})
        return None
    async with engines.sessions() as session, session.begin():
        await ConversationRepository(session, tenant_id).annotate(
            conversation_id, summary=summary, summarized_messages=len(omitted)
        )
    return summary


def message_row(
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    run_id: uuid.UUID,
    role: str,
    content: str,
    now: datetime,
    **extra: Any,
) -> dict[str, Any]:
    """A `messages` row with every column (rows of one batch are inserted with one statement)."""
    return {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "conversation_id": conversation_id,
        "run_id": run_id,
        "role": role,
        "content": content,
        "tool_calls": extra.get("tool_calls", []),
        "citations": extra.get("citations", []),
        "usage": extra.get("usage", {}),
        "created_at": now,
    }


def provisional_title(message: str) -> str:
    """A new conversation's title until the model writes one: its first message, shortened."""
    line = " ".join(message.split())
    return line if len(line) <= _TITLE_LENGTH else line[: _TITLE_LENGTH - 1].rstrip() + "…"
