"""The only place that queries idempotency keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, update

from nexent.core.repository import TenantScopedRepository
from nexent.northbound.models import IdempotencyKey


class IdempotencyRepository(TenantScopedRepository[IdempotencyKey]):
    model = IdempotencyKey

    async def find(self, owner: str, key: str, *, since: datetime) -> IdempotencyKey | None:
        """The owner's record of `key` made after `since` (older ones have expired)."""
        found: IdempotencyKey | None = await self.session.scalar(
            self.select().where(
                IdempotencyKey.owner == owner, IdempotencyKey.key == key, IdempotencyKey.created_at > since
            )
        )
        return found

    async def claim(self, record: IdempotencyKey, *, expired_before: datetime) -> None:
        """Store `record` (the unique key of owner and key refuses a second one), the tenant's expired records
        gone first."""
        await self.session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.tenant_id == self.tenant_id, IdempotencyKey.created_at <= expired_before
            )
        )
        self.session.add(record)
        await self.session.flush()

    async def set_run(self, record_id: uuid.UUID, run_id: uuid.UUID, conversation_id: uuid.UUID | None) -> None:
        await self.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.tenant_id == self.tenant_id, IdempotencyKey.id == record_id)
            .values(run_id=run_id, conversation_id=conversation_id)
        )

    async def release(self, record_id: uuid.UUID) -> None:
        """Forget a claim whose run could not start (a retry may then try again)."""
        await self.session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.tenant_id == self.tenant_id, IdempotencyKey.id == record_id)
        )
