"""Idempotency keys of the OpenAI-compatible API: a request's key, mapped to the run it started."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nexent.core.db import Base, IdMixin, utcnow


class IdempotencyKey(IdMixin, Base):
    """An `Idempotency-Key` of one caller (an API key, or a user signed in) and the run its first request started;
    `fingerprint` is the hash of that request's body, `run_id` None while the run is being started. Kept 24 h."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "owner", "key", name="uq_idempotency_keys_owner_key"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    owner: Mapped[str] = mapped_column(String(64))  # "key:<api key id>" or "user:<user id>"
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), default=None)
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    model: Mapped[str] = mapped_column(String(80))
    created: Mapped[int] = mapped_column(default=0)  # the completion's `created` (Unix seconds)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
