"""Sharing of a tenant's resources with its groups: the one way every resource domain decides who reads and who
changes its resources (`ResourceAccess`, used by the domain's service and its `auth.py`), and the shares
themselves (`ShareService`, behind each domain's `/api/<resources>/{id}/shares` routes)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import ColumnElement, SQLColumnExpression, true
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.errors import NotFound
from nexent.identity.auth import Caller
from nexent.identity.models import ResourceShare, SharePermission
from nexent.identity.permissions import ROLE_PERMISSIONS, Permission
from nexent.identity.repository import GroupRepository, ShareRepository
from nexent.identity.schemas import ShareRead
from nexent.identity.services.audit import record
from nexent.identity.services.groups import GroupNotFound

R = TypeVar("R")


@dataclass(frozen=True)
class Shareable:
    """A kind of resource that its domain shares with groups: its type in the share table, and the permission whose
    holders read and change every resource of the kind."""

    resource_type: str
    manage: Permission


@dataclass(frozen=True)
class Granted(Generic[R]):
    """A resource the caller may read, resolved by its domain's `auth.py` (404 otherwise), and whether the caller
    may change it. Service methods that act on one resource take this, so they cannot skip the check."""

    caller: Caller
    resource: R
    can_edit: bool


class ResourceAccess:
    """One caller's rights on one kind of shareable resource, as conditions for the domain's own queries (only the
    domain's repository queries its table; these conditions say which rows).

    Members whose role grants `kind.manage` read every resource of the tenant (also through their API keys, which
    use agents with the member's view) and change every one (with their own sign-in: API keys manage nothing).
    Others read the resources shared with one of their groups and change those shared with edit rights.
    """

    def __init__(self, session: AsyncSession, caller: Caller, kind: Shareable) -> None:
        self.caller = caller
        self.kind = kind
        self.shares = ShareRepository(session, caller.tenant_id)
        self.sees_all = kind.manage in ROLE_PERMISSIONS[caller.role]
        self.manages = caller.can(kind.manage)

    def readable(self, id_column: SQLColumnExpression[uuid.UUID]) -> ColumnElement[bool]:
        """The condition on the resource's query (`id_column`: its id) that keeps what the caller may read."""
        if self.sees_all:
            return true()
        return self.shares.readable(self.kind.resource_type, id_column, self.caller.user_id)

    def editable(self, id_column: SQLColumnExpression[uuid.UUID]) -> ColumnElement[bool]:
        """The condition that keeps what the caller may change."""
        if self.manages:
            return true()
        return self.shares.editable(self.kind.resource_type, id_column, self.caller.user_id)


class ShareService:
    """Sharing of a tenant's resources with its groups. Resource domains call this from their own routes
    (`/api/<resources>/{id}/shares`) with a resource their `auth.py` resolved in the caller's tenant."""

    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller
        self.shares = ShareRepository(session, caller.tenant_id)
        self.groups = GroupRepository(session, caller.tenant_id)

    async def share(
        self, resource_type: str, resource_id: uuid.UUID, group_id: uuid.UUID, permission: SharePermission
    ) -> ShareRead:
        if not await self.groups.existing_ids([group_id]):
            raise GroupNotFound(f"No group {group_id} in this tenant.")
        share = await self.shares.find(resource_type, resource_id, group_id)
        if share is None:
            share = await self.shares.add(
                ResourceShare(
                    tenant_id=self.caller.tenant_id,
                    resource_type=resource_type,
                    resource_id=resource_id,
                    group_id=group_id,
                    permission=permission,
                )
            )
        else:
            share.permission = permission
            await self.session.flush()
        await record(
            self.session,
            self.caller,
            "resource.shared",
            resource_type,
            resource_id,
            group_id=str(group_id),
            permission=permission.value,
        )
        return ShareRead.model_validate(share)

    async def unshare(self, resource_type: str, resource_id: uuid.UUID, group_id: uuid.UUID) -> None:
        share = await self.shares.find(resource_type, resource_id, group_id)
        if share is None:
            raise NotFound("This resource is not shared with that group.", code="share_not_found")
        await self.shares.delete(share)
        await record(self.session, self.caller, "resource.unshared", resource_type, resource_id, group_id=str(group_id))

    async def list(self, resource_type: str, resource_id: uuid.UUID) -> list[ShareRead]:
        return [ShareRead.model_validate(s) for s in await self.shares.for_resource(resource_type, resource_id)]
