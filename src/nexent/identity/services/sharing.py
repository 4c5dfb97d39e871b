"""Sharing of a tenant's resources with its groups."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.errors import NotFound
from nexent.identity.auth import Caller
from nexent.identity.models import ResourceShare, SharePermission
from nexent.identity.repository import GroupRepository, ShareRepository
from nexent.identity.schemas import ShareRead
from nexent.identity.services.audit import record
from nexent.identity.services.groups import GroupNotFound


class ShareService:
    """Sharing of a tenant's resources to its groups. Resource domains call this from their own routes
    (`/api/<resources>/{id}/shares`) after checking that the resource exists in the caller's tenant."""

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

    async def access(self, resource_type: str, resource_id: uuid.UUID) -> SharePermission | None:
        """The caller's right on a resource through its groups: edit beats read; None when not shared."""
        group_ids = await self.groups.groups_of_user(self.caller.user_id)
        granted = await self.shares.permissions_for_groups(resource_type, resource_id, group_ids)
        if SharePermission.EDIT in granted:
            return SharePermission.EDIT
        return SharePermission.READ if granted else None

    async def shared_ids(self, resource_type: str, permission: SharePermission | None = None) -> set[uuid.UUID]:
        """Resources of a type that the caller's groups may at least read (or that they may edit, when
        `permission` is `edit`)."""
        group_ids = await self.groups.groups_of_user(self.caller.user_id)
        return await self.shares.resources_shared_with(resource_type, group_ids, permission)
