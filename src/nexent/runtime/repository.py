"""Queries on runs, their events, conversations and messages; always within one tenant."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.repository import TenantScopedRepository
from nexent.runtime.models import Attachment, Conversation, Message, Run, RunEvent, RunStatus


@dataclass(frozen=True)
class Reach:
    """Whose runs and conversations a caller reaches: the user's own, and with an API key limited to some agents
    (`agent_ids`) only those of these agents (never those whose agent is gone)."""

    user_id: uuid.UUID
    agent_ids: frozenset[uuid.UUID] | None = None

    def conditions(self, model: type[Run] | type[Conversation]) -> list[ColumnElement[bool]]:
        conditions = [model.user_id == self.user_id]
        if self.agent_ids is not None:
            conditions.append(model.agent_id.in_(sorted(self.agent_ids)))
        return conditions


UNFINISHED = [RunStatus.QUEUED, RunStatus.RUNNING]


def no_unfinished_run(tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> ColumnElement[bool]:
    """A condition: the conversation has no run still queued or running (for a claim that must see committed runs)."""
    return ~exists().where(
        Run.tenant_id == tenant_id, Run.conversation_id == conversation_id, Run.status.in_(UNFINISHED)
    )


class RunRepository(TenantScopedRepository[Run]):
    model = Run

    async def reachable(self, run_id: uuid.UUID, reach: Reach) -> Run | None:
        """The run, if `reach` reaches it."""
        result: Run | None = await self.session.scalar(self.select().where(Run.id == run_id, *reach.conditions(Run)))
        return result

    async def unfinished_in(self, conversation_id: uuid.UUID) -> bool:
        """Whether a run of the conversation is still queued or running."""
        found = await self.session.scalar(
            self.select()
            .with_only_columns(Run.id)
            .where(Run.conversation_id == conversation_id, Run.status.in_(UNFINISHED))
            .limit(1)
        )
        return found is not None

    @staticmethod
    async def unfinished_everywhere(session: AsyncSession) -> list[Run]:
        """Runs of every tenant still queued or running: only for the platform's own recovery at start-up."""
        rows = await session.scalars(select(Run).where(Run.status.in_(UNFINISHED)))
        return list(rows)

    async def list_page(
        self, *, reach: Reach, conversation_id: uuid.UUID | None, status: str | None, limit: int, offset: int
    ) -> tuple[list[Run], int]:
        conditions = reach.conditions(Run)
        if conversation_id is not None:
            conditions.append(Run.conversation_id == conversation_id)
        if status is not None:
            conditions.append(Run.status == status)
        rows = await self.session.scalars(
            self.select().where(*conditions).order_by(Run.created_at.desc(), Run.id).limit(limit).offset(offset)
        )
        return list(rows), await self.count(*conditions)


class RunEventRepository(TenantScopedRepository[RunEvent]):
    model = RunEvent

    async def after(self, run_id: uuid.UUID, seq: int, *, limit: int = 1000) -> list[RunEvent]:
        rows = await self.session.scalars(
            self.select().where(RunEvent.run_id == run_id, RunEvent.seq > seq).order_by(RunEvent.seq).limit(limit)
        )
        return list(rows)

    async def of_types(self, run_id: uuid.UUID, types: Iterable[str], *, limit: int = 10_000) -> list[RunEvent]:
        """The run's events of these types, in order (the first `limit`)."""
        rows = await self.session.scalars(
            self.select()
            .where(RunEvent.run_id == run_id, RunEvent.type.in_(sorted(types)))
            .order_by(RunEvent.seq)
            .limit(limit)
        )
        return list(rows)

    async def last_seq(self, run_id: uuid.UUID) -> int:
        value = await self.session.scalar(
            select(func.max(RunEvent.seq)).where(RunEvent.tenant_id == self.tenant_id, RunEvent.run_id == run_id)
        )
        return int(value or 0)


class ConversationRepository(TenantScopedRepository[Conversation]):
    model = Conversation

    async def reachable(self, conversation_id: uuid.UUID, reach: Reach) -> Conversation | None:
        """The conversation, if `reach` reaches it."""
        result: Conversation | None = await self.session.scalar(
            self.select().where(Conversation.id == conversation_id, *reach.conditions(Conversation))
        )
        return result

    async def list_page(
        self, *, reach: Reach, limit: int, offset: int, title_contains: str | None = None
    ) -> tuple[list[Conversation], int]:
        """A page of the conversations `reach` reaches (those whose title contains `title_contains`, in any case,
        when given), latest first, and their total."""
        conditions = reach.conditions(Conversation)
        if title_contains and title_contains.strip():
            conditions.append(Conversation.title.icontains(title_contains.strip(), autoescape=True))
        rows = await self.session.scalars(
            self.select()
            .where(*conditions)
            .order_by(Conversation.updated_at.desc(), Conversation.id)
            .limit(limit)
            .offset(offset)
        )
        return list(rows), await self.count(*conditions)

    async def annotate(self, conversation_id: uuid.UUID, *where: ColumnElement[bool], **values: Any) -> bool:
        """Store what background work found (a title, a summary) and keep `updated_at`: it moves only when a run
        starts or the user renames, and regenerating claims the conversation by it (a title written meanwhile made
        regenerating answer 409 `conversation_busy`). False when the conversation is gone or `where` fails."""
        result = await self.session.execute(
            update(Conversation)
            .where(Conversation.tenant_id == self.tenant_id, Conversation.id == conversation_id, *where)
            .values(**values, updated_at=Conversation.updated_at)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))


class MessageRepository(TenantScopedRepository[Message]):
    model = Message

    async def last_turn(self, conversation_id: uuid.UUID) -> list[Message]:
        """The conversation's last user message and the messages after it (empty without a user message)."""
        last_user = await self.session.scalar(
            self.select()
            .where(Message.conversation_id == conversation_id, Message.role == "user")
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(1)
        )
        if last_user is None:
            return []
        later = await self.session.scalars(
            self.select()
            .where(
                Message.conversation_id == conversation_id,
                Message.id != last_user.id,
                (Message.created_at > last_user.created_at)
                | ((Message.created_at == last_user.created_at) & (Message.id > last_user.id)),
            )
            .order_by(Message.created_at, Message.id)
        )
        return [last_user, *later]

    async def of_conversation(self, conversation_id: uuid.UUID, *, limit: int = 500) -> list[Message]:
        rows = await self.session.scalars(
            self.select()
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.created_at, Message.id)
            .limit(limit)
        )
        return list(rows)


class AttachmentRepository(TenantScopedRepository[Attachment]):
    model = Attachment

    async def readable(self, attachment_id: uuid.UUID, reach: Reach) -> Attachment | None:
        """The attachment, if `reach` reaches it: one not sent yet only its uploader's (whatever agents the key is
        limited to: it belongs to no conversation yet), a sent one whoever reaches its conversation."""
        result: Attachment | None = await self.session.scalar(
            self.select().where(Attachment.id == attachment_id, self._reached(reach))
        )
        return result

    def _reached(self, reach: Reach) -> ColumnElement[bool]:
        unsent = (Attachment.conversation_id.is_(None)) & (Attachment.user_id == reach.user_id)
        in_reach = exists().where(
            Conversation.tenant_id == self.tenant_id,
            Conversation.id == Attachment.conversation_id,
            *reach.conditions(Conversation),
        )
        return unsent | in_reach

    async def list_page(
        self, *, reach: Reach, conversation_id: uuid.UUID | None, unsent: bool, limit: int, offset: int
    ) -> tuple[list[Attachment], int]:
        """A page of the attachments `reach` reaches (of one conversation, or only those not sent yet), latest
        first, and their total."""
        conditions = [self._reached(reach)]
        if conversation_id is not None:
            conditions.append(Attachment.conversation_id == conversation_id)
        if unsent:
            conditions.append(Attachment.conversation_id.is_(None))
        rows = await self.session.scalars(
            self.select()
            .where(*conditions)
            .order_by(Attachment.created_at.desc(), Attachment.id)
            .limit(limit)
            .offset(offset)
        )
        return list(rows), await self.count(*conditions)

    async def unsent(self, user_id: uuid.UUID, ids: Iterable[uuid.UUID]) -> list[Attachment]:
        """The user's attachments among `ids` that no message carries yet."""
        rows = await self.session.scalars(
            self.select().where(
                Attachment.id.in_(sorted(set(ids))),
                Attachment.user_id == user_id,
                Attachment.conversation_id.is_(None),
            )
        )
        return list(rows)

    async def of_conversation(self, conversation_id: uuid.UUID) -> list[Attachment]:
        rows = await self.session.scalars(
            self.select()
            .where(Attachment.conversation_id == conversation_id)
            .order_by(Attachment.created_at, Attachment.id)
        )
        return list(rows)

    async def of_message(self, message_id: uuid.UUID) -> list[Attachment]:
        rows = await self.session.scalars(
            self.select().where(Attachment.message_id == message_id).order_by(Attachment.created_at, Attachment.id)
        )
        return list(rows)
