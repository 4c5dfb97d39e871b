"""Request and response shapes of the identity domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from nexent.identity.models import TenantStatus

TenantName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")]


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TenantName
    slug: Slug | None = Field(
        default=None,
        description="URL-safe identifier (3-63 of a-z, 0-9, '-'); derived from the name if omitted.",
    )


class TenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TenantName | None = None
    status: TenantStatus | None = None


class TenantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str
    status: TenantStatus
    created_at: datetime
    updated_at: datetime
