"""Groups of a tenant's members (what resources are shared with: `sharing.py`)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.errors import Conflict, NotFound
from nexent.core.pagination import Page, PageParams
from nexent.identity.auth import Caller
from nexent.identity.models import Group
from nexent.identity.repository import GroupRepository, MembershipRepository
from nexent.identity.schemas import GroupCreate, GroupRead, GroupUpdate
from nexent.identity.services.audit import record
from nexent.identity.services.members import MemberNotFound


class GroupNotFound(NotFound):
    code = "group_not_found"


class GroupService:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller
        self.groups = GroupRepository(session, caller.tenant_id)

    async def _read(self, group: Group) -> GroupRead:
        members = await self.groups.member_ids([group.id])
        return GroupRead(
            id=group.id,
            name=group.name,
            description=group.description,
            member_ids=members[group.id],
            created_at=group.created_at,
        )

    async def _get(self, group_id: uuid.UUID) -> Group:
        group = await self.groups.get(group_id)
        if group is None:
            raise GroupNotFound(f"No group {group_id} in this tenant.")
        return group

    async def create(self, data: GroupCreate) -> GroupRead:
        if await self.groups.name_taken(data.name):
            raise Conflict(f"A group named {data.name!r} exists.", code="group_name_taken")
        group = await self.groups.add(
            Group(tenant_id=self.caller.tenant_id, name=data.name, description=data.description)
        )
        await record(self.session, self.caller, "group.created", "group", group.id, name=group.name)
        return await self._read(group)

    async def list(self, page: PageParams) -> Page[GroupRead]:
        groups, total = await self.groups.list_page(limit=page.limit, offset=page.offset)
        members = await self.groups.member_ids([g.id for g in groups])
        items = [
            GroupRead(
                id=g.id, name=g.name, description=g.description, member_ids=members[g.id], created_at=g.created_at
            )
            for g in groups
        ]
        return Page[GroupRead](items=items, total=total, limit=page.limit, offset=page.offset)

    async def get(self, group_id: uuid.UUID) -> GroupRead:
        return await self._read(await self._get(group_id))

    async def update(self, group_id: uuid.UUID, data: GroupUpdate) -> GroupRead:
        group = await self._get(group_id)
        if data.name is not None and await self.groups.name_taken(data.name, except_id=group.id):
            raise Conflict(f"A group named {data.name!r} exists.", code="group_name_taken")
        changes = data.model_dump(exclude_none=True)
        for field, value in changes.items():
            setattr(group, field, value)
        await self.session.flush()
        await record(self.session, self.caller, "group.updated", "group", group.id, **changes)
        return await self._read(group)

    async def delete(self, group_id: uuid.UUID) -> None:
        group = await self._get(group_id)
        await self.groups.delete(group)
        await record(self.session, self.caller, "group.deleted", "group", group_id, name=group.name)

    async def add_member(self, group_id: uuid.UUID, user_id: uuid.UUID) -> GroupRead:
        group = await self._get(group_id)
        if await MembershipRepository(self.session, self.caller.tenant_id).of_user(user_id) is None:
            raise MemberNotFound(f"No member {user_id} in this tenant.")
        if await self.groups.add_member(group.id, user_id):
            await record(self.session, self.caller, "group.member_added", "group", group.id, user_id=str(user_id))
        return await self._read(group)

    async def remove_member(self, group_id: uuid.UUID, user_id: uuid.UUID) -> GroupRead:
        group = await self._get(group_id)
        if not await self.groups.remove_member(group.id, user_id):
            raise MemberNotFound(f"User {user_id} is not in this group.")
        await record(self.session, self.caller, "group.member_removed", "group", group.id, user_id=str(user_id))
        return await self._read(group)
