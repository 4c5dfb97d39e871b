"""`/api/openapi-tools`: import OpenAPI documents as tools (preview, save, list, read, change, delete). Every route
needs the `tools.manage` permission."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Response, status

from nexent.core.openapi import problems
from nexent.core.pagination import Page, PageParamsDep
from nexent.engines.deps import EnginesDep, SessionDep
from nexent.identity.auth import Caller, RequirePermission
from nexent.identity.permissions import Permission
from nexent.openapi_tools.schemas import (
    OpenAPIDocumentIn,
    OpenAPIImportCreate,
    OpenAPIImportRead,
    OpenAPIImportUpdate,
    OpenAPIPreview,
)
from nexent.openapi_tools.service import OpenAPIToolService

router = APIRouter(prefix="/api/openapi-tools", tags=["openapi-tools"])
ManageTools = Annotated[Caller, RequirePermission(Permission.MANAGE_TOOLS)]

_DOCUMENT_ERRORS = (
    "The document is not OpenAPI 3.x JSON or YAML, refers outside itself, is too large or is malformed "
    "(`invalid_openapi_document`); the base URL, the operations chosen or the credential do not fit "
    "(`invalid_openapi_import`); the base URL's host is on a private address that is not allowed "
    "(`base_url_not_allowed`)."
)


@router.post(
    "/preview",
    summary="Read a document and list the operations an import of it would offer as tools; nothing is saved.",
    responses=problems(s422=_DOCUMENT_ERRORS),
)
async def preview_document(
    body: OpenAPIDocumentIn, caller: ManageTools, session: SessionDep, engines: EnginesDep
) -> OpenAPIPreview:
    return await OpenAPIToolService(session, engines, caller).preview(body)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Import a document: its chosen operations become tools named `<name>__<tool_name>`.",
    responses=problems(s409="The name is taken (`openapi_source_name_taken`).", s422=_DOCUMENT_ERRORS),
)
async def create_import(
    body: OpenAPIImportCreate, caller: ManageTools, session: SessionDep, engines: EnginesDep
) -> OpenAPIImportRead:
    return await OpenAPIToolService(session, engines, caller).create(body)


@router.get("", summary="The tenant's OpenAPI imports, by name (credentials are never returned).")
async def list_imports(
    caller: ManageTools, session: SessionDep, engines: EnginesDep, page: PageParamsDep
) -> Page[OpenAPIImportRead]:
    return await OpenAPIToolService(session, engines, caller).list_sources(page)


@router.get("/{source_id}", summary="One OpenAPI import with every operation of its document.")
async def get_import(
    source_id: uuid.UUID, caller: ManageTools, session: SessionDep, engines: EnginesDep
) -> OpenAPIImportRead:
    return await OpenAPIToolService(session, engines, caller).get(source_id)


@router.patch(
    "/{source_id}",
    summary="Change an import: name, base URL, auth (a secret left out is kept), limits, operations or document.",
    responses=problems(s409="The name is taken (`openapi_source_name_taken`).", s422=_DOCUMENT_ERRORS),
)
async def update_import(
    source_id: uuid.UUID, body: OpenAPIImportUpdate, caller: ManageTools, session: SessionDep, engines: EnginesDep
) -> OpenAPIImportRead:
    return await OpenAPIToolService(session, engines, caller).update(source_id, body)


@router.delete(
    "/{source_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an import and its tools.",
    responses=problems(s409="A published agent version uses its tools (`tool_source_in_use`)."),
)
async def delete_import(source_id: uuid.UUID, caller: ManageTools, session: SessionDep, engines: EnginesDep) -> None:
    await OpenAPIToolService(session, engines, caller).delete(source_id)


routers = [router]
