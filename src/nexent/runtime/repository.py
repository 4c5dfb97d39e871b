"""Queries on runs, their events, conversations and messages; always within one tenant."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.repository import TenantScopedRepository
from nexent.runtime.models import Conversation, Message, Run, RunEvent, RunStatus


class RunRepository(TenantScopedRepository[Run]):
    model = Run

    @staticmethod
    async def unfinished_everywhere(session: AsyncSession) -> list[Run]:
        """Runs of every tenant still queued or running: only for the platform's own recovery at start-up."""
        rows = await session.scalars(select(Run).where(Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING])))
        return list(rows)

    async def list_page(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID | None, status: str | None, limit: int, offset: int
    ) -> tuple[list[Run], int]:
        conditions = [Run.user_id == user_id]
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

    async def last_seq(self, run_id: uuid.UUID) -> int:
        value = await self.session.scalar(
            select(func.max(RunEvent.seq)).where(RunEvent.tenant_id == self.tenant_id, RunEvent.run_id == run_id)
        )
        return int(value or 0)


class ConversationRepository(TenantScopedRepository[Conversation]):
    model = Conversation

    async def list_page(self, *, user_id: uuid.UUID, limit: int, offset: int) -> tuple[list[Conversation], int]:
        condition = Conversation.user_id == user_id
        rows = await self.session.scalars(
            self.select()
            .where(condition)
            .order_by(Conversation.updated_at.desc(), Conversation.id)
            .limit(limit)
            .offset(offset)
        )
        return list(rows), await self.count(condition)


class MessageRepository(TenantScopedRepository[Message]):
    model = Message

    async def of_conversation(self, conversation_id: uuid.UUID, *, limit: int = 500) -> list[Message]:
        rows = await self.session.scalars(
            self.select()
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.created_at, Message.id)
            .limit(limit)
        )
        return list(rows)
