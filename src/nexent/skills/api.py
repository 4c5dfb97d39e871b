"""Skill routes: `/api/skills` (upload, list, read, edit, versions, shares, export). Who may call each:
`skills/auth.py`; the format and its limits: docs/skills.md."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from nexent.core.openapi import event_stream_schemas, openapi_schemas, problems
from nexent.core.pagination import Page, PageParamsDep
from nexent.engines.deps import EnginesDep, SessionDep
from nexent.identity.auth import UserCaller
from nexent.identity.schemas import ShareIn, ShareRead
from nexent.skills import archive
from nexent.skills.archive import SkillArchiveInvalid, SkillFiles, SkillTooLarge
from nexent.skills.auth import EditableSkill, ManagedSkill, ReadableSkill, SkillManager
from nexent.skills.generation import SkillGenerationService, sse_frames
from nexent.skills.schemas import (
    SKILL_DRAFT_EVENTS,
    SkillDetail,
    SkillFileRead,
    SkillFileWrite,
    SkillGenerateIn,
    SkillRead,
    SkillUpdate,
    SkillVersionRead,
)
from nexent.skills.service import SkillService

router = APIRouter(prefix="/api/skills", tags=["skills"])
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

# The OpenAPI document describes the draft's stream frame by frame (component `SkillDraftStreamFrame`).
schemas = event_stream_schemas(
    "SkillDraftStreamFrame",
    SKILL_DRAFT_EVENTS,
    openapi_schemas(*SKILL_DRAFT_EVENTS.values()),
    description="One frame of a skill draft's stream.",
    id_description="The frame's number, from 1.",
)

UPLOAD_PROBLEMS = problems(
    s409="A skill of that name exists (`skill_name_taken`).",
    s413="Too large: more than 10 MiB or 200 files, or a zip bomb (`skill_too_large`).",
    s422="Not a skill: `skill_archive_invalid`, `skill_path_unsafe`, `skill_link_refused`, `skill_manifest_missing` "
    "or `skill_manifest_invalid` (with `field`).",
)
VersionQuery = Annotated[int | None, Query(ge=1, le=2**31 - 1, description="A version; default: the newest.")]
FilePath = Annotated[str, Path(min_length=1, max_length=archive.MAX_PATH_CHARS, description="A relative path.")]
ArchiveUpload = Annotated[UploadFile | None, File(description="The skill's folder as one ZIP archive.")]
FilesUpload = Annotated[
    list[UploadFile] | None,
    File(description="The skill's files (repeatable), each named by its path relative to the skill's folder."),
]
Note = Annotated[str, Form(max_length=500, description="What changed, kept with the version.")]


async def _read_upload(archive_file: UploadFile | None, files: list[UploadFile] | None) -> SkillFiles:
    """The upload's files, checked (`archive`): a ZIP in `archive`, or files in `file`, not both."""
    if (archive_file is None) == (not files):
        raise SkillArchiveInvalid("Send either one ZIP archive (`archive`) or the files (`file`, repeatable).")
    cap = archive.MAX_TOTAL_BYTES
    if archive_file is not None:
        data = await archive_file.read(cap + 1)
        if len(data) > cap:
            raise SkillTooLarge(f"The archive is larger than {cap} bytes.")
        return await asyncio.to_thread(archive.from_zip, data)  # inflating is CPU work: off the event loop
    assert files is not None
    if len(files) > archive.MAX_FILES:
        raise SkillTooLarge(f"A skill holds at most {archive.MAX_FILES} files.")
    items: list[tuple[str, bytes]] = []
    for upload in files:
        data = await upload.read(cap + 1)
        cap -= len(data)
        if cap < 0:
            raise SkillTooLarge(f"The files come to more than {archive.MAX_TOTAL_BYTES} bytes.")
        items.append((upload.filename or "", data))
    return archive.from_files(items)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Upload a skill (a ZIP in `archive`, or its files in `file`): version 1.",
    responses=UPLOAD_PROBLEMS,
)
async def create_skill(
    caller: SkillManager,
    session: SessionDep,
    engines: EnginesDep,
    archive: ArchiveUpload = None,
    file: FilesUpload = None,
) -> SkillDetail:
    upload = await _read_upload(archive, file)
    return await SkillService(session, engines.storage, caller).create(upload)


@router.post(
    "/generate",
    summary="Draft a SKILL.md from a description with an LLM, streamed (SSE); nothing is stored.",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The draft as Server-Sent Events: `skill.delta`s, then `skill.completed` or `skill.failed`.",
            "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/SkillDraftStreamFrame"}}},
        },
        **problems(
            s404="The tenant has no default LLM (`no_default_model`), or no such model.",
            s422="The body is not valid, or `model_id` is not an LLM of the tenant (`invalid_generation`).",
        ),
    },
)
async def generate_skill(
    body: SkillGenerateIn, caller: SkillManager, session: SessionDep, engines: EnginesDep
) -> StreamingResponse:
    generation = await SkillGenerationService(session, engines, caller).generate(body)
    return StreamingResponse(sse_frames(generation.events()), media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("", summary="Skills the caller may use: all of them for those who manage tools, else shared ones.")
async def list_skills(
    caller: UserCaller,
    session: SessionDep,
    engines: EnginesDep,
    page: PageParamsDep,
    q: Annotated[str | None, Query(max_length=80, description="Substring of the name.")] = None,
) -> Page[SkillRead]:
    return await SkillService(session, engines.storage, caller).list_skills(page, query=q)


@router.get("/{skill_id}", summary="One version of a skill (default: the newest): manifest, instructions, files.")
async def get_skill(
    skill: ReadableSkill, session: SessionDep, engines: EnginesDep, version: VersionQuery = None
) -> SkillDetail:
    return await SkillService(session, engines.storage, skill.caller).detail(skill, version)


@router.patch(
    "/{skill_id}",
    summary="Change `SKILL.md`'s fields or instructions: the next version.",
    responses=problems(s409="The new name is taken.", s422="A field is not valid (`skill_manifest_invalid`)."),
)
async def update_skill(
    skill: EditableSkill, body: SkillUpdate, session: SessionDep, engines: EnginesDep
) -> SkillDetail:
    return await SkillService(session, engines.storage, skill.caller).update_manifest(skill, body)


@router.delete(
    "/{skill_id}",
    summary="Delete a skill and every version of it.",
    status_code=204,
    response_class=Response,
    responses=problems(s409="An enabled agent version uses it (`skill_in_use`, with `used_by`)."),
)
async def delete_skill(skill: ManagedSkill, session: SessionDep, engines: EnginesDep) -> None:
    await SkillService(session, engines.storage, skill.caller).delete(skill)


@router.get("/{skill_id}/versions", summary="The skill's versions, newest first.")
async def list_skill_versions(skill: ReadableSkill, session: SessionDep, engines: EnginesDep) -> list[SkillVersionRead]:
    return await SkillService(session, engines.storage, skill.caller).list_versions(skill)


@router.post(
    "/{skill_id}/versions",
    status_code=status.HTTP_201_CREATED,
    summary="Upload the skill's files anew (a ZIP in `archive`, or files in `file`): the next version.",
    responses=UPLOAD_PROBLEMS,
)
async def upload_skill_version(
    skill: EditableSkill,
    session: SessionDep,
    engines: EnginesDep,
    archive: ArchiveUpload = None,
    file: FilesUpload = None,
    note: Note = "",
) -> SkillDetail:
    upload = await _read_upload(archive, file)
    return await SkillService(session, engines.storage, skill.caller).new_version(skill, upload, note)


@router.get(
    "/{skill_id}/files/{path:path}",
    summary="One file's text, of a version (default: the newest).",
    responses=problems(s422="The file is not UTF-8 text (`skill_file_not_text`)."),
)
async def read_skill_file(
    skill: ReadableSkill, path: FilePath, session: SessionDep, engines: EnginesDep, version: VersionQuery = None
) -> SkillFileRead:
    return await SkillService(session, engines.storage, skill.caller).read_file(skill, path, version)


@router.put(
    "/{skill_id}/files/{path:path}",
    summary="Write one file (add or replace; `SKILL.md` too): the next version.",
    responses=UPLOAD_PROBLEMS,
)
async def write_skill_file(
    skill: EditableSkill, path: FilePath, body: SkillFileWrite, session: SessionDep, engines: EnginesDep
) -> SkillDetail:
    return await SkillService(session, engines.storage, skill.caller).write_file(skill, path, body)


@router.delete(
    "/{skill_id}/files/{path:path}",
    summary="Remove one file (not `SKILL.md`): the next version.",
    responses=problems(s422="`SKILL.md` cannot be removed (`skill_manifest_missing`)."),
)
async def delete_skill_file(
    skill: EditableSkill, path: FilePath, session: SessionDep, engines: EnginesDep
) -> SkillDetail:
    return await SkillService(session, engines.storage, skill.caller).delete_file(skill, path)


@router.get(
    "/{skill_id}/export",
    summary="A version of the skill (default: the newest) as a ZIP archive.",
    response_class=Response,
    responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def export_skill(
    skill: ReadableSkill, session: SessionDep, engines: EnginesDep, version: VersionQuery = None
) -> Response:
    name, data = await SkillService(session, engines.storage, skill.caller).export(skill, version)
    return Response(
        data, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/{skill_id}/shares", summary="Groups the skill is shared with.")
async def list_skill_shares(skill: ReadableSkill, session: SessionDep, engines: EnginesDep) -> list[ShareRead]:
    return await SkillService(session, engines.storage, skill.caller).shares_of(skill)


@router.put("/{skill_id}/shares/{group_id}", summary="Share the skill with a group (read or edit).")
async def share_skill(
    skill: ManagedSkill, group_id: uuid.UUID, body: ShareIn, session: SessionDep, engines: EnginesDep
) -> ShareRead:
    return await SkillService(session, engines.storage, skill.caller).share(skill, group_id, body)


@router.delete(
    "/{skill_id}/shares/{group_id}", summary="Stop sharing with a group.", status_code=204, response_class=Response
)
async def unshare_skill(skill: ManagedSkill, group_id: uuid.UUID, session: SessionDep, engines: EnginesDep) -> None:
    await SkillService(session, engines.storage, skill.caller).unshare(skill, group_id)


routers = [router]
