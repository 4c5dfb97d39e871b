"""The built-in offline models every new tenant starts with (embedded shape), so a new user can chat and build
a knowledge base before configuring anything."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from nexent.providers import local
from nexent.providers.models import ModelConfig, ProviderType
from nexent.providers.repository import ModelRepository
from nexent.settings import Settings

BUILTIN = [
    ("Built-in embeddings (all-MiniLM-L6-v2)", local.EMBEDDING_MODEL),
    ("Built-in chat (SmolLM2-135M)", local.CHAT_MODEL),
]


async def register_builtin_models(session: AsyncSession, settings: Settings, tenant_id: uuid.UUID) -> None:
    """Add each installed built-in model to the tenant, as the default of its kind when it has none."""
    if not settings.builtin_models:
        return
    models = ModelRepository(session, tenant_id)
    for name, model in BUILTIN:
        if not local.available(model):
            continue
        kind, dimension, _ = local.LOCAL_MODELS[model]
        await models.add(
            ModelConfig(
                tenant_id=tenant_id,
                name=name,
                kind=kind,
                provider=ProviderType.LOCAL,
                model=model,
                dimension=dimension,
                languages=local.LANGUAGES.get(model),
                context_window=8192 if kind == "llm" else 256,
                is_default=await models.default_of(kind) is None,
            )
        )
