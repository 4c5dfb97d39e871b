"""Audit: the events security-relevant changes write in their transaction, and the tenant's audit log."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.context import current_request
from nexent.core.pagination import Page, PageParams
from nexent.identity.auth import Caller
from nexent.identity.models import AuditEvent
from nexent.identity.repository import AuditRepository
from nexent.identity.schemas import AuditEventRead


def audit_event(
    action: str,
    resource_type: str,
    resource_id: object | None,
    *,
    tenant_id: uuid.UUID | None,
    actor_user_id: uuid.UUID | None = None,
    actor_api_key_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """An audit event stamped with the request's id and client address."""
    request = current_request()
    return AuditEvent(
        tenant_id=tenant_id,
        actor_user_id=actor_user_id,
        actor_api_key_id=actor_api_key_id,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id) if resource_id is not None else None,
        details=details or {},
        ip=request.client_ip if request else None,
        request_id=request.request_id if request else None,
    )


async def record(
    session: AsyncSession, caller: Caller, action: str, resource_type: str, resource_id: object, **details: Any
) -> None:
    await AuditRepository(session, caller.tenant_id).add(
        audit_event(
            action,
            resource_type,
            resource_id,
            tenant_id=caller.tenant_id,
            actor_user_id=caller.user_id,
            actor_api_key_id=caller.api_key_id,
            details=details,
        )
    )


class AuditService:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.events = AuditRepository(session, caller.tenant_id)

    async def list(self, page: PageParams, *, action: str | None, resource_type: str | None) -> Page[AuditEventRead]:
        rows, total = await self.events.list_page(
            action=action, resource_type=resource_type, limit=page.limit, offset=page.offset
        )
        return Page[AuditEventRead](
            items=[AuditEventRead.model_validate(e) for e in rows], total=total, limit=page.limit, offset=page.offset
        )
