"""OpenAPI imports: checking a document, saving the chosen operations as a tenant's tool source, and calling them.

`OpenAPIToolService` is what the routes use. `OpenAPIToolSource` is the `openapi` kind of `tools.sources`: it lists
a tenant's chosen operations as tools (`<import name>__<tool name>`, from the stored import: no network) and calls
one. A tool's `extra` holds its operation, so a published version keeps calling what it was published with; the
base URL, the credential and the limits are the import's current ones. Calls go through the outbound address
policy: a private address only when the operator allowed it for the platform or this tenant (the allow list model
endpoints use), or private fetches are allowed (`NEXENT_ALLOW_PRIVATE_FETCH`).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.errors import AppError, Conflict, NotFound
from nexent.core.netpolicy import AddressPolicy, AddressRefused, resolve_checked
from nexent.core.pagination import Page, PageParams
from nexent.core.references import refuse_if_used
from nexent.engines.container import Engines
from nexent.identity.auth import Caller
from nexent.identity.services.audit import record
from nexent.identity.services.tenants import tenant_endpoint_policy
from nexent.openapi_tools.calling import Credential, call_operation, client_for
from nexent.openapi_tools.document import Operation, operations, parse_document
from nexent.openapi_tools.models import OpenAPISource
from nexent.openapi_tools.repository import OpenAPISourceRepository
from nexent.openapi_tools.schemas import (
    OpenAPIAuthIn,
    OpenAPIAuthRead,
    OpenAPIDocumentIn,
    OpenAPIImportCreate,
    OpenAPIImportRead,
    OpenAPIImportUpdate,
    OpenAPIOperationRead,
    OpenAPIPreview,
)
from nexent.tools.registry import ToolContext, ToolError, ToolResult
from nexent.tools.sources import ExternalTool, SourceKind, SourceRef, external_name

__all__ = ["OpenAPIToolService", "OpenAPIToolSource", "openapi_tool_source"]

RESOURCE = "tool_source"
DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_RESPONSE_BYTES = 200_000
ALLOW_ALL = AddressPolicy(allow_all=True)


class SourceNotFound(NotFound):
    code = "openapi_source_not_found"


class SourceNameTaken(Conflict):
    code = "openapi_source_name_taken"


class InvalidImport(AppError):
    """An import that cannot be saved as asked: the base URL, the operations chosen, the credential."""

    status, code = 422, "invalid_openapi_import"


class BaseUrlNotAllowed(AppError):
    status, code = 422, "base_url_not_allowed"


def _operation_read(op: Operation, *, source_name: str | None, selected: bool) -> OpenAPIOperationRead:
    return OpenAPIOperationRead(
        tool_name=op.tool_name,
        tool=external_name(source_name, op.tool_name) if source_name and op.unsupported is None else None,
        operation_id=op.operation_id,
        method=op.method,
        path=op.path,
        summary=op.summary,
        description=op.description,
        parameters=op.parameters,
        unsupported=op.unsupported,
        selected=selected,
    )


def _read(source: OpenAPISource) -> OpenAPIImportRead:
    chosen = set(source.selected)
    ops = [Operation.from_dict(item) for item in source.operations]
    return OpenAPIImportRead(
        id=source.id,
        name=source.name,
        description=source.description,
        title=source.title,
        document_version=source.document_version,
        base_url=source.base_url,
        auth=OpenAPIAuthRead(
            kind=source.auth_kind,
            location=source.auth_location,
            name=source.auth_name or None,
            has_secret=source.secret_encrypted is not None,
        ),
        timeout_seconds=source.timeout_seconds,
        max_response_bytes=source.max_response_bytes,
        operations=[_operation_read(op, source_name=source.name, selected=op.tool_name in chosen) for op in ops],
        created_at=source.created_at,
        updated_at=source.updated_at,
    )


def _choose(ops: list[Operation], wanted: list[str] | None) -> list[str]:
    """The tool names to offer: `wanted` (each must be a supported operation) or every supported one."""
    supported = {op.tool_name: op for op in ops}
    if wanted is None:
        chosen = [op.tool_name for op in ops if op.unsupported is None]
    else:
        chosen = list(dict.fromkeys(wanted))
        for name in chosen:
            op = supported.get(name)
            if op is None:
                raise InvalidImport(f"The document has no operation whose tool name is {name!r}.")
            if op.unsupported is not None:
                raise InvalidImport(f"The operation {op.method} {op.path} cannot be a tool: {op.unsupported}.")
    if not chosen:
        raise InvalidImport("Choose at least one operation that can be a tool.")
    return chosen


def _check_base_url_form(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidImport("The base URL must be an absolute http or https URL.")
    if parts.username or parts.password:
        raise InvalidImport("The base URL must not hold credentials; use the import's auth settings.")
    if parts.query or parts.fragment:
        raise InvalidImport("The base URL must not have a query or a fragment.")
    try:
        httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        raise InvalidImport("The base URL is not a valid URL.") from None
    return url.strip().rstrip("/")


async def outbound_policy(session: AsyncSession, engines: Engines, tenant_id: uuid.UUID) -> AddressPolicy:
    """The private addresses this tenant's imports may call: the platform's and the tenant's allow lists (those of
    model endpoints), or every address when private fetches are allowed."""
    if engines.settings.allow_private_fetch:
        return ALLOW_ALL
    return engines.private_endpoints | await tenant_endpoint_policy(session, engines.process, tenant_id)


class OpenAPIToolService:
    def __init__(self, session: AsyncSession, engines: Engines, caller: Caller) -> None:
        self.session = session
        self.engines = engines
        self.caller = caller
        self.sources = OpenAPISourceRepository(session, caller.tenant_id)

    async def preview(self, data: OpenAPIDocumentIn) -> OpenAPIPreview:
        document = parse_document(data.document)
        return OpenAPIPreview(
            title=document.title,
            version=document.version,
            base_url=document.base_url,
            operations=[
                _operation_read(op, source_name=None, selected=op.unsupported is None) for op in operations(document)
            ],
        )

    async def create(self, data: OpenAPIImportCreate) -> OpenAPIImportRead:
        document = parse_document(data.document)
        ops = operations(document)
        chosen = _choose(ops, data.operations)
        base_url = data.base_url or document.base_url
        if not base_url:
            raise InvalidImport("The document names no absolute server URL; give the `base_url` calls go to.")
        base_url = await self._check_base_url(base_url)
        if await self.sources.by_name(data.name) is not None:
            raise SourceNameTaken(f"An OpenAPI import named {data.name!r} exists already.")
        source = OpenAPISource(
            tenant_id=self.caller.tenant_id,
            name=data.name,
            description=data.description or "",
            title=document.title,
            document_version=document.version[:100],
            base_url=base_url,
            timeout_seconds=data.timeout_seconds or DEFAULT_TIMEOUT,
            max_response_bytes=data.max_response_bytes or DEFAULT_MAX_RESPONSE_BYTES,
            operations=[op.to_dict() for op in ops],
            selected=chosen,
            created_by=self.caller.user_id,
        )
        self._set_auth(source, data.auth or OpenAPIAuthIn())
        try:
            async with self.session.begin_nested():
                await self.sources.add(source)
        except IntegrityError:
            raise SourceNameTaken(f"An OpenAPI import named {data.name!r} exists already.") from None
        await record(self.session, self.caller, "openapi_source.created", RESOURCE, source.id, name=source.name)
        return _read(source)

    async def _check_base_url(self, url: str) -> str:
        """The base URL, checked: its form, and that its host resolves to an address calls may go to (checked again
        at every connection: this only reports it early)."""
        url = _check_base_url_form(url)
        parts = urlsplit(url)
        host = parts.hostname or ""
        policy = await outbound_policy(self.session, self.engines, self.caller.tenant_id)
        try:
            await resolve_checked(host, parts.port or (443 if parts.scheme == "https" else 80), policy)
        except AddressRefused:
            raise BaseUrlNotAllowed(
                f"The host {host} of the base URL is on a private, loopback or reserved address, which is not allowed "
                "here; the platform operator can allow it (NEXENT_PRIVATE_ENDPOINTS_ALLOW)."
            ) from None
        except (OSError, ValueError):
            raise BaseUrlNotAllowed(f"The host {host!r} of the base URL does not resolve.") from None
        return url

    def _set_auth(self, source: OpenAPISource, auth: OpenAPIAuthIn) -> None:
        secret = auth.secret.get_secret_value() if auth.secret is not None else None
        if auth.kind == "none":
            source.secret_encrypted = None
        elif secret is not None:
            source.secret_encrypted = self.engines.keys.box.encrypt(secret)
        elif auth.kind != source.auth_kind or source.secret_encrypted is None:
            raise InvalidImport(f"The {auth.kind} auth needs its `secret`.")
        source.auth_kind = auth.kind
        source.auth_location = auth.location if auth.kind == "api_key" else "header"
        source.auth_name = (auth.name or "") if auth.kind == "api_key" else ""

    async def _get(self, source_id: uuid.UUID) -> OpenAPISource:
        source = await self.sources.get(source_id)
        if source is None:
            raise SourceNotFound(f"No OpenAPI import {source_id} in this tenant.")
        return source

    async def get(self, source_id: uuid.UUID) -> OpenAPIImportRead:
        return _read(await self._get(source_id))

    async def list_sources(self, page: PageParams) -> Page[OpenAPIImportRead]:
        rows, total = await self.sources.page(limit=page.limit, offset=page.offset)
        return Page[OpenAPIImportRead](
            items=[_read(s) for s in rows], total=total, limit=page.limit, offset=page.offset
        )

    async def update(self, source_id: uuid.UUID, data: OpenAPIImportUpdate) -> OpenAPIImportRead:
        source = await self._get(source_id)
        if data.name is not None and data.name != source.name:
            if await self.sources.by_name(data.name) is not None:
                raise SourceNameTaken(f"An OpenAPI import named {data.name!r} exists already.")
            source.name = data.name
        if data.document is not None:
            document = parse_document(data.document)
            ops = operations(document)
            source.title = document.title
            source.document_version = document.version[:100]
            source.operations = [op.to_dict() for op in ops]
            source.selected = _choose(ops, data.operations)
        elif data.operations is not None:
            source.selected = _choose([Operation.from_dict(o) for o in source.operations], data.operations)
        if data.description is not None:
            source.description = data.description
        if data.base_url is not None:
            source.base_url = await self._check_base_url(data.base_url)
        if data.timeout_seconds is not None:
            source.timeout_seconds = data.timeout_seconds
        if data.max_response_bytes is not None:
            source.max_response_bytes = data.max_response_bytes
        if data.auth is not None:
            self._set_auth(source, data.auth)
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError:
            raise SourceNameTaken(f"An OpenAPI import named {data.name!r} exists already.") from None
        await record(self.session, self.caller, "openapi_source.updated", RESOURCE, source.id, name=source.name)
        return _read(source)

    async def delete(self, source_id: uuid.UUID) -> None:
        source = await self._get(source_id)
        await refuse_if_used(self.session, self.caller.tenant_id, RESOURCE, source.id)
        await self.sources.delete(source)
        await record(self.session, self.caller, "openapi_source.deleted", RESOURCE, source.id, name=source.name)


class OpenAPIToolSource:
    """The `openapi` kind of tool source (registered in `nexent.wiring`)."""

    kind = SourceKind.OPENAPI.value

    async def list_tools(self, session: AsyncSession, tenant_id: uuid.UUID) -> list[ExternalTool]:
        tools: list[ExternalTool] = []
        for source in await OpenAPISourceRepository(session, tenant_id).all():
            chosen = set(source.selected)
            ref = SourceRef(kind=self.kind, id=source.id, name=source.name)
            for item in source.operations:
                op = Operation.from_dict(item)
                if op.tool_name not in chosen or op.unsupported is not None:
                    continue
                tools.append(
                    ExternalTool(
                        name=external_name(source.name, op.tool_name),
                        description=op.description,
                        parameters=op.parameters,
                        source=ref,
                        remote_name=op.tool_name,
                        extra={"operation": item},
                    )
                )
        return tools

    async def call(self, tool: ExternalTool, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        engines = context.engines
        if engines is None or tool.source.id is None:
            raise ToolError(f"The tool {tool.name} cannot be called here.", "tool_unavailable")
        async with engines.sessions() as session:
            source = await OpenAPISourceRepository(session, context.tenant_id).get(tool.source.id)
            if source is None:
                raise ToolError(f"The OpenAPI import behind {tool.name} was deleted.", "tool_unavailable")
            policy = await outbound_policy(session, engines, context.tenant_id)
            if context.allow_private_network:
                policy = ALLOW_ALL
        raw = tool.extra.get("operation")
        if not isinstance(raw, dict):
            raw = next((o for o in source.operations if o.get("tool_name") == tool.remote_name), None)
            if raw is None:
                raise ToolError(f"The OpenAPI import has no operation {tool.remote_name} any more.", "tool_unavailable")
        operation = Operation.from_dict(raw)
        secret = engines.keys.box.decrypt(source.secret_encrypted) if source.secret_encrypted else ""
        credential = Credential(
            kind=source.auth_kind, location=source.auth_location, name=source.auth_name, secret=secret
        )
        async with client_for(policy) as client:
            return await call_operation(
                client,
                operation,
                source.base_url,
                arguments,
                credential,
                timeout=context.timeout(source.timeout_seconds),
                max_response_bytes=source.max_response_bytes,
            )


openapi_tool_source = OpenAPIToolSource()
