"""API keys: members' keys for the chat API, limited to some agents, with expiry and a daily quota."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.db import utcnow
from nexent.core.errors import AppError, BadRequest, NotFound
from nexent.core.pagination import Page, PageParams
from nexent.identity.auth import Caller
from nexent.identity.hooks import existing_agents
from nexent.identity.models import ApiKey
from nexent.identity.permissions import Permission
from nexent.identity.repository import ApiKeyRepository
from nexent.identity.schemas import MCP_KEY_PATH, ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from nexent.identity.services.audit import record
from nexent.identity.tokens import API_KEY_PREFIX, new_secret


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class UnknownAgents(AppError):
    """A key limited to agents the tenant does not have (another tenant's count as absent); `errors` names each."""

    status, code = 422, "unknown_agents"


def _api_key(key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        user_id=key.user_id,
        agent_ids=[uuid.UUID(a) for a in key.agent_ids] if key.agent_ids is not None else None,
        daily_quota=key.daily_quota,
        rate_limit_per_minute=key.rate_limit_per_minute,
        expires_at=key.expires_at,
        revoked=key.revoked_at is not None,
        last_used_at=key.last_used_at,
        created_at=key.created_at,
    )


class ApiKeyService:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller
        self.keys = ApiKeyRepository(session, caller.tenant_id)
        self.sees_all = caller.can(Permission.MANAGE_ALL_API_KEYS)

    async def create(self, data: ApiKeyCreate) -> ApiKeyCreated:
        if data.expires_at is not None and data.expires_at <= utcnow():
            raise BadRequest("expires_at must be in the future.", code="invalid_expiry")
        if data.agent_ids:
            await self._check_agents(data.agent_ids)
        secret = new_secret(API_KEY_PREFIX)
        key = await self.keys.add(
            ApiKey(
                tenant_id=self.caller.tenant_id,
                user_id=self.caller.user_id,
                name=data.name,
                prefix=secret.display_prefix,
                secret_hash=secret.hash,
                agent_ids=[str(a) for a in data.agent_ids] if data.agent_ids is not None else None,
                daily_quota=data.daily_quota,
                rate_limit_per_minute=data.rate_limit_per_minute,
                expires_at=data.expires_at,
            )
        )
        await record(self.session, self.caller, "api_key.created", "api_key", key.id, name=key.name)
        return ApiKeyCreated(**_api_key(key).model_dump(), secret=secret.value, mcp_url=MCP_KEY_PATH + secret.value)

    async def _check_agents(self, agent_ids: list[uuid.UUID]) -> None:
        known = await existing_agents(self.session, self.caller.tenant_id, agent_ids)
        errors = [
            {
                "loc": ["body", "agent_ids", str(index)],
                "msg": f"No agent {agent_id} in this tenant.",
                "type": "invalid_reference",
            }
            for index, agent_id in enumerate(agent_ids)
            if agent_id not in known
        ]
        if errors:
            raise UnknownAgents("The key names agents this tenant does not have.", extra={"errors": errors})

    async def list(self, page: PageParams) -> Page[ApiKeyRead]:
        user_filter = None if self.sees_all else self.caller.user_id
        rows, total = await self.keys.list_page(user_id=user_filter, limit=page.limit, offset=page.offset)
        return Page[ApiKeyRead](items=[_api_key(k) for k in rows], total=total, limit=page.limit, offset=page.offset)

    async def revoke(self, key_id: uuid.UUID) -> None:
        key = await self.keys.get(key_id)
        if key is None or (not self.sees_all and key.user_id != self.caller.user_id):
            raise ApiKeyNotFound(f"No API key {key_id} in this tenant.")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            await record(self.session, self.caller, "api_key.revoked", "api_key", key.id, name=key.name)
