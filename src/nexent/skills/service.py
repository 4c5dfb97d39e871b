"""Skills: upload (checked by `archive`), versions (each change stores a new immutable one), files in object
storage, sharing with groups, export; and what agents and runs ask of them (`readable_skill_ids`, `pin_latest`,
`load_pinned`, `read_file`).

Who may do what: members whose role holds `tools.manage` read and change every skill of the tenant; others read
the skills shared with their groups and change those shared with edit rights (`skills/auth.py`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.errors import AppError, Conflict, NotFound
from nexent.core.pagination import Page, PageParams
from nexent.core.references import refuse_if_used
from nexent.engines.storage.base import ObjectNotFound, ObjectStorage
from nexent.identity.auth import Caller
from nexent.identity.permissions import Permission
from nexent.identity.schemas import ShareIn, ShareRead
from nexent.identity.services.audit import record
from nexent.identity.services.sharing import Granted, ResourceAccess, Shareable, ShareService
from nexent.skills import archive
from nexent.skills.archive import MANIFEST, Manifest, SkillFiles
from nexent.skills.models import Skill, SkillVersion
from nexent.skills.repository import SkillRepository, SkillVersionRepository
from nexent.skills.schemas import (
    SkillDetail,
    SkillFileEntry,
    SkillFileRead,
    SkillFileWrite,
    SkillPin,
    SkillRead,
    SkillUpdate,
    SkillVersionRead,
)

RESOURCE = "skill"
SKILLS = Shareable(RESOURCE, manage=Permission.MANAGE_TOOLS)
_STORAGE_WRITES = 16


class SkillNotFound(NotFound):
    code = "skill_not_found"


class SkillVersionNotFound(NotFound):
    code = "skill_version_not_found"


class SkillFileNotFound(NotFound):
    code = "skill_file_not_found"


class SkillFileNotText(AppError):
    status, code = 422, "skill_file_not_text"


def storage_key(tenant_id: uuid.UUID, skill_id: uuid.UUID, number: int, path: str) -> str:
    return f"skills/{tenant_id}/{skill_id}/{number}/{path}"


def manifest_of(version: SkillVersion) -> Manifest:
    meta = version.manifest or {}
    return Manifest(
        name=version.name,
        description=version.description,
        allowed_tools=list(meta.get("allowed_tools", [])),
        network=bool(meta.get("network", False)),
        body=version.body,
        extra=dict(meta.get("extra", {})),
    )


class SkillService:
    def __init__(self, session: AsyncSession, storage: ObjectStorage, caller: Caller) -> None:
        self.session = session
        self.storage = storage
        self.caller = caller
        self.skills = SkillRepository(session, caller.tenant_id)
        self.versions = SkillVersionRepository(session, caller.tenant_id)
        self.access = ResourceAccess(session, caller, SKILLS)
        self.shares = ShareService(session, caller)

    # --- reading ------------------------------------------------------------------------------------------------

    async def reach(self, skill_id: uuid.UUID) -> Granted[Skill]:
        """The skill if the caller may read it (404 otherwise, as for another tenant's), and whether they may
        change it: what `skills/auth.py` gives the routes."""
        found = await self.skills.get_checked(
            skill_id, where=self.access.readable(Skill.id), flag=self.access.editable(Skill.id)
        )
        if found is None:
            raise SkillNotFound(f"No skill {skill_id} in this tenant.")
        skill, can_edit = found
        return Granted(self.caller, skill, can_edit)

    async def list_skills(self, page: PageParams, *, query: str | None) -> Page[SkillRead]:
        rows, total = await self.skills.page_checked(
            where=self.access.readable(Skill.id),
            flag=self.access.editable(Skill.id),
            name_contains=query,
            limit=page.limit,
            offset=page.offset,
        )
        return Page[SkillRead](
            items=[_read(skill, can_edit) for skill, can_edit in rows],
            total=total,
            limit=page.limit,
            offset=page.offset,
        )

    async def version(self, granted: Granted[Skill], number: int | None) -> SkillVersion:
        skill = granted.resource
        found = await self.versions.number(skill.id, number or skill.latest_version)
        if found is None:
            raise SkillVersionNotFound(f"The skill has no version {number}.")
        return found

    async def detail(self, granted: Granted[Skill], number: int | None) -> SkillDetail:
        version = await self.version(granted, number)
        manifest = manifest_of(version)
        return SkillDetail(
            **_read(granted.resource, granted.can_edit).model_dump(exclude={"name", "description"}),
            name=version.name,
            description=version.description,
            version=version.number,
            allowed_tools=manifest.allowed_tools,
            network=manifest.network,
            extra=manifest.extra,
            body=manifest.body,
            files=[SkillFileEntry(**entry) for entry in version.files],
        )

    async def list_versions(self, granted: Granted[Skill]) -> list[SkillVersionRead]:
        return [
            SkillVersionRead(
                number=v.number,
                name=v.name,
                description=v.description,
                note=v.note,
                files=len(v.files),
                total_bytes=v.total_bytes,
                created_by=v.created_by,
                created_at=v.created_at,
            )
            for v in await self.versions.of_skill(granted.resource.id)
        ]

    async def read_file(self, granted: Granted[Skill], path: str, number: int | None) -> SkillFileRead:
        version = await self.version(granted, number)
        data = await file_bytes(self.storage, version, path)
        try:
            content = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SkillFileNotText(f"{path!r} is not UTF-8 text; export the skill to get it.") from None
        return SkillFileRead(path=path, version=version.number, size=len(data), content=content)

    async def export(self, granted: Granted[Skill], number: int | None) -> tuple[str, bytes]:
        """The version's files as a ZIP (one top folder named after the skill) and the file name to give it."""
        version = await self.version(granted, number)
        files = await self._files(version)
        return f"{version.name}-v{version.number}.zip", await asyncio.to_thread(archive.to_zip, version.name, files)

    # --- writing ------------------------------------------------------------------------------------------------

    async def create(self, upload: SkillFiles) -> SkillDetail:
        """A new skill from checked files: version 1 (the route's `SkillManager` checked the caller's role)."""
        manifest = upload.manifest
        await self._check_name(manifest.name)
        skill = Skill(
            tenant_id=self.caller.tenant_id,
            name=manifest.name,
            description=manifest.description,
            latest_version=1,
            created_by=self.caller.user_id,
        )
        try:
            async with self.session.begin_nested():
                await self.skills.add(skill)
        except IntegrityError:
            raise Conflict(f"A skill named {manifest.name!r} exists.", code="skill_name_taken") from None
        await self._store(skill, 1, upload, note="")
        await record(self.session, self.caller, "skill.created", RESOURCE, skill.id, name=skill.name)
        return await self.detail(Granted(self.caller, skill, True), 1)

    async def new_version(self, granted: Granted[Skill], upload: SkillFiles, note: str = "") -> SkillDetail:
        """The next version of the skill from a whole new set of files."""
        skill = granted.resource
        if upload.manifest.name != skill.name:
            await self._check_name(upload.manifest.name, except_id=skill.id)
        number = await self.versions.last_number(skill.id) + 1
        await self._store(skill, number, upload, note=note)
        skill.name, skill.description, skill.latest_version = (
            upload.manifest.name,
            upload.manifest.description,
            number,
        )
        await self.session.flush()
        await record(self.session, self.caller, "skill.versioned", RESOURCE, skill.id, version=number)
        return await self.detail(granted, number)

    async def write_file(self, granted: Granted[Skill], path: str, data: SkillFileWrite) -> SkillDetail:
        """The newest version with one file written (added or replaced): the next version."""
        path = archive.safe_path(path)
        version = await self.version(granted, None)
        files = await self._files(version)
        files[path] = data.content.encode("utf-8")
        return await self.new_version(granted, _checked(files), data.note)

    async def delete_file(self, granted: Granted[Skill], path: str) -> SkillDetail:
        version = await self.version(granted, None)
        files = await self._files(version)
        if path == MANIFEST:
            raise archive.SkillManifestMissing(f"{MANIFEST} cannot be deleted.")
        if files.pop(path, None) is None:
            raise SkillFileNotFound(f"No file {path!r} in version {version.number}.")
        return await self.new_version(granted, _checked(files), f"deleted {path}")

    async def update_manifest(self, granted: Granted[Skill], data: SkillUpdate) -> SkillDetail:
        """`SKILL.md` written anew from changed fields: the next version."""
        version = await self.version(granted, None)
        current = manifest_of(version)
        changes: dict[str, Any] = data.model_dump(exclude_unset=True, exclude={"note"})
        updated = Manifest(
            name=changes.get("name", current.name),
            description=changes.get("description", current.description),
            allowed_tools=changes.get("allowed_tools", current.allowed_tools),
            network=changes.get("network", current.network),
            body=changes.get("body", current.body),
            extra=current.extra,
        )
        files = await self._files(version)
        files[MANIFEST] = archive.render_manifest(updated).encode("utf-8")
        return await self.new_version(granted, _checked(files), data.note)

    async def delete(self, granted: Granted[Skill]) -> None:
        skill = granted.resource
        await refuse_if_used(self.session, self.caller.tenant_id, RESOURCE, skill.id)
        versions = await self.versions.of_skill(skill.id)
        keys = [storage_key(skill.tenant_id, skill.id, v.number, entry["path"]) for v in versions for entry in v.files]
        await self.skills.delete(skill)
        await record(self.session, self.caller, "skill.deleted", RESOURCE, skill.id, name=skill.name)
        await _gather(self.storage.delete(key) for key in keys)

    async def _check_name(self, name: str, *, except_id: uuid.UUID | None = None) -> None:
        if await self.skills.name_taken(name, except_id=except_id):
            raise Conflict(f"A skill named {name!r} exists.", code="skill_name_taken")

    async def _store(self, skill: Skill, number: int, upload: SkillFiles, *, note: str) -> SkillVersion:
        manifest = upload.manifest
        await _gather(
            self.storage.put(storage_key(skill.tenant_id, skill.id, number, path), data)
            for path, data in upload.files.items()
        )
        version = SkillVersion(
            tenant_id=skill.tenant_id,
            skill_id=skill.id,
            number=number,
            name=manifest.name,
            description=manifest.description,
            manifest={"allowed_tools": manifest.allowed_tools, "network": manifest.network, "extra": manifest.extra},
            body=manifest.body,
            files=[{"path": path, "size": len(upload.files[path])} for path in sorted(upload.files)],
            total_bytes=upload.total_bytes,
            note=note,
            created_by=self.caller.user_id,
        )
        return await self.versions.add(version)

    async def _files(self, version: SkillVersion) -> dict[str, bytes]:
        paths = [entry["path"] for entry in version.files]
        contents = await asyncio.gather(*(file_bytes(self.storage, version, path) for path in paths))
        return dict(zip(paths, contents, strict=True))

    # --- sharing ------------------------------------------------------------------------------------------------

    async def shares_of(self, granted: Granted[Skill]) -> list[ShareRead]:
        return await self.shares.list(RESOURCE, granted.resource.id)

    async def share(self, granted: Granted[Skill], group_id: uuid.UUID, data: ShareIn) -> ShareRead:
        return await self.shares.share(RESOURCE, granted.resource.id, group_id, data.permission)

    async def unshare(self, granted: Granted[Skill], group_id: uuid.UUID) -> None:
        await self.shares.unshare(RESOURCE, granted.resource.id, group_id)


def _checked(files: dict[str, bytes]) -> SkillFiles:
    return archive.build(list(files.items()))


async def _gather(awaitables: Any) -> None:
    limit = asyncio.Semaphore(_STORAGE_WRITES)

    async def one(awaitable: Any) -> None:
        async with limit:
            await awaitable

    await asyncio.gather(*(one(a) for a in awaitables))


def _read(skill: Skill, can_edit: bool) -> SkillRead:
    return SkillRead(
        id=skill.id,
        name=skill.name,
        description=skill.description,
        latest_version=skill.latest_version,
        can_edit=can_edit,
        created_by=skill.created_by,
        created_at=skill.created_at,
        updated_at=skill.updated_at,
    )


async def file_bytes(storage: ObjectStorage, version: SkillVersion, path: str) -> bytes:
    """One file of a version (`SkillFileNotFound` when the version has no such file)."""
    if not any(entry["path"] == path for entry in version.files):
        raise SkillFileNotFound(f"No file {path[:200]!r} in version {version.number}.")
    try:
        return await storage.get(storage_key(version.tenant_id, version.skill_id, version.number, path))
    except ObjectNotFound:
        raise SkillFileNotFound(f"The file {path[:200]!r} is missing from storage.") from None


# --- what agents and runs ask -------------------------------------------------------------------------------------


async def readable_skills(session: AsyncSession, caller: Caller, skill_ids: Collection[uuid.UUID]) -> list[Skill]:
    """Those of `skill_ids` that are skills of the caller's tenant the caller may read (what an agent may attach)."""
    access = ResourceAccess(session, caller, SKILLS)
    return await SkillRepository(session, caller.tenant_id).matching(skill_ids, access.readable(Skill.id))


async def pin_latest(session: AsyncSession, tenant_id: uuid.UUID, skill_ids: Collection[uuid.UUID]) -> list[SkillPin]:
    """Each existing skill of `skill_ids` with its newest version, in the order given: what publishing pins."""
    found = {s.id: s for s in await SkillRepository(session, tenant_id).matching(skill_ids, true())}
    return [
        SkillPin(skill_id=found[i].id, name=found[i].name, version=found[i].latest_version)
        for i in skill_ids
        if i in found
    ]


async def names_of(
    session: AsyncSession, tenant_id: uuid.UUID, skill_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, str]:
    return {s.id: s.name for s in await SkillRepository(session, tenant_id).matching(skill_ids, true())}


async def ids_by_name(session: AsyncSession, caller: Caller, names: Collection[str]) -> dict[str, uuid.UUID]:
    """The skills of the caller's tenant they may read, by name (what an imported agent's skill names map to)."""
    access = ResourceAccess(session, caller, SKILLS)
    where: ColumnElement[bool] = access.readable(Skill.id)
    return {s.name: s.id for s in await SkillRepository(session, caller.tenant_id).by_names(names, where)}


@dataclass(frozen=True)
class LoadedSkill:
    """A skill as a run sees it: the version it uses, its manifest and its file list."""

    skill_id: uuid.UUID
    tenant_id: uuid.UUID
    version: int
    manifest: Manifest
    files: list[str]

    @property
    def name(self) -> str:
        return self.manifest.name


async def load_for_run(
    session: AsyncSession, tenant_id: uuid.UUID, uses: Collection[tuple[uuid.UUID, int | None]]
) -> list[LoadedSkill]:
    """The skills a run uses, in order: (skill, version) pairs, a version of None meaning the skill's newest (a
    draft's). Skills or versions deleted since are left out. No share checks: whoever edited the agent chose them,
    and they serve every user of it, as its knowledge bases do."""
    if not uses:
        return []
    latest = {p.skill_id: p.version for p in await pin_latest(session, tenant_id, [i for i, v in uses if v is None])}
    pins = [(skill_id, version if version is not None else latest.get(skill_id, 0)) for skill_id, version in uses]
    found = await SkillVersionRepository(session, tenant_id).pinned(pins)
    rows = {(v.skill_id, v.number): v for v in found}
    loaded = []
    for pin in pins:
        row = rows.get(pin)
        if row is not None:
            loaded.append(
                LoadedSkill(
                    skill_id=row.skill_id,
                    tenant_id=row.tenant_id,
                    version=row.number,
                    manifest=manifest_of(row),
                    files=[entry["path"] for entry in row.files],
                )
            )
    return loaded


async def loaded_file(storage: ObjectStorage, skill: LoadedSkill, path: str) -> bytes:
    """One file of a skill a run loaded (`SkillFileNotFound` when it has none of that path)."""
    if path not in skill.files:
        raise SkillFileNotFound(f"No file {path[:200]!r} in the skill {skill.name!r}.")
    try:
        return await storage.get(storage_key(skill.tenant_id, skill.skill_id, skill.version, path))
    except ObjectNotFound:
        raise SkillFileNotFound(f"The file {path[:200]!r} is missing from storage.") from None
