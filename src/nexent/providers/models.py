"""Model configurations of a tenant, the endpoints that serve them, and the usage of each call."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from nexent.core.db import Base, IdMixin, TimestampMixin, utcnow


class ModelKind(StrEnum):
    LLM = "llm"
    EMBEDDING = "embedding"
    RERANK = "rerank"
    VLM = "vlm"
    STT = "stt"  # speech to text: an OpenAI-compatible `/audio/transcriptions`


class ProviderType(StrEnum):
    OPENAI_COMPATIBLE = "openai_compatible"
    LOCAL = "local"


class CheckStatus(StrEnum):
    UNKNOWN = "unknown"
    OK = "ok"
    ERROR = "error"


class ModelConfig(IdMixin, TimestampMixin, Base):
    """A logical model a tenant can use: one kind, one provider, served by one or more endpoints."""

    __tablename__ = "model_configs"
    __table_args__ = (Index("ix_model_configs_tenant_kind", "tenant_id", "kind"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))
    context_window: Mapped[int | None] = mapped_column(default=None)
    dimension: Mapped[int | None] = mapped_column(default=None)
    # Embedding models: the languages (ISO 639-1) the model understands; None: every language.
    languages: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    max_concurrency: Mapped[int | None] = mapped_column(default=None)
    requests_per_minute: Mapped[int | None] = mapped_column(default=None)
    timeout_seconds: Mapped[float] = mapped_column(default=60.0)
    # An LLM that also takes images (content parts `image_url`); models of kind `vlm` always do.
    accepts_images: Mapped[bool] = mapped_column(default=False, server_default=false())
    is_default: Mapped[bool] = mapped_column(default=False)
    check_status: Mapped[str] = mapped_column(String(16), default=CheckStatus.UNKNOWN)
    check_error_code: Mapped[str | None] = mapped_column(String(32), default=None)
    check_error_message: Mapped[str | None] = mapped_column(Text, default=None)
    check_latency_ms: Mapped[float | None] = mapped_column(default=None)
    checked_at: Mapped[datetime | None] = mapped_column(default=None)


class ModelEndpoint(IdMixin, Base):
    """One server of a model. The API key is stored encrypted and never returned."""

    __tablename__ = "model_endpoints"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    model_config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("model_configs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    base_url: Mapped[str] = mapped_column(String(500))
    api_key_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UsageRecord(IdMixin, Base):
    """One model call: tokens in and out, latency, time to first token, outcome."""

    __tablename__ = "model_usage"
    __table_args__ = (Index("ix_model_usage_tenant_created", "tenant_id", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    model_config_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)
    agent_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    kind: Mapped[str] = mapped_column(String(16))
    operation: Mapped[str] = mapped_column(String(16))
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    latency_ms: Mapped[float] = mapped_column(default=0.0)
    ttft_ms: Mapped[float | None] = mapped_column(default=None)
    ok: Mapped[bool] = mapped_column(default=True)
    error_code: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
