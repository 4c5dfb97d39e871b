"""Operator routes for tenants: `/api/admin/tenants`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from nexent.core.deps import SessionDep
from nexent.core.pagination import Page, PageParamsDep
from nexent.identity.auth import RequireOperator
from nexent.identity.models import TenantStatus
from nexent.identity.schemas import TenantCreate, TenantRead, TenantUpdate
from nexent.identity.service import TenantService

router = APIRouter(prefix="/api/admin/tenants", tags=["tenants"])


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a tenant.")
async def create_tenant(body: TenantCreate, _: RequireOperator, session: SessionDep) -> TenantRead:
    return await TenantService(session).create(body)


@router.get("", summary="List tenants.")
async def list_tenants(
    _: RequireOperator,
    session: SessionDep,
    page: PageParamsDep,
    status: Annotated[TenantStatus | None, Query(description="Only tenants in this state.")] = None,
    q: Annotated[str | None, Query(max_length=120, description="Substring of the name or slug.")] = None,
) -> Page[TenantRead]:
    return await TenantService(session).list(page, status=status, query=q)


@router.get("/{tenant_id}", summary="Read a tenant.")
async def get_tenant(tenant_id: uuid.UUID, _: RequireOperator, session: SessionDep) -> TenantRead:
    return await TenantService(session).get(tenant_id)


@router.patch("/{tenant_id}", summary="Rename, disable or re-enable a tenant.")
async def update_tenant(
    tenant_id: uuid.UUID, body: TenantUpdate, _: RequireOperator, session: SessionDep
) -> TenantRead:
    return await TenantService(session).update(tenant_id, body)
