"""Requests and answers of `/api/openapi-tools`."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from nexent.tools.sources import SOURCE_NAME_RE


def _source_name(value: str) -> str:
    if not SOURCE_NAME_RE.match(value):
        raise ValueError("use 1 to 30 lowercase letters, digits and single underscores, starting with a letter")
    return value


# The name prefixes each of the import's tool names (`<name>__<tool_name>`): `tools.sources.SOURCE_NAME_RE`.
SourceName = Annotated[
    str,
    Field(min_length=1, max_length=30, description="Lowercase letters, digits and single `_`; 1-30 characters."),
    AfterValidator(_source_name),
]
AuthKind = Literal["none", "bearer", "api_key"]
AuthLocation = Literal["header", "query"]
_HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$"
_FORBIDDEN_KEY_HEADERS = frozenset({"host", "content-length", "content-type", "transfer-encoding", "connection"})


class OpenAPIDocumentIn(BaseModel):
    """An OpenAPI 3.x document: its text (JSON or YAML) or the parsed JSON object."""

    model_config = ConfigDict(extra="forbid")

    document: str | dict[str, Any] = Field(description="The document: JSON or YAML text, or a JSON object.")


class OpenAPIOperationRead(BaseModel):
    """One operation of a document, as a tool."""

    tool_name: str = Field(description="The operation's tool name within the import (from its operationId).")
    tool: str | None = Field(
        default=None, description="The name an agent's `tools` entry uses (`<import>__<tool_name>`); None in a preview."
    )
    operation_id: str | None
    method: str
    path: str
    summary: str | None
    description: str
    parameters: dict[str, Any] = Field(description="JSON schema of the arguments (path, query, header, `body`).")
    unsupported: str | None = Field(description="Why it cannot be a tool (a non-JSON body, ...); None if it can.")
    selected: bool = Field(default=False, description="Whether the import offers it to agents.")


class OpenAPIPreview(BaseModel):
    """What an import of the document would offer."""

    title: str
    version: str
    base_url: str | None = Field(description="The first server's URL when it is absolute; else one must be given.")
    operations: list[OpenAPIOperationRead]


class OpenAPIAuthIn(BaseModel):
    """How calls authenticate. `secret` is written, never read back; on a change, leaving it out keeps the one
    stored (when the kind stays the same)."""

    model_config = ConfigDict(extra="forbid")

    kind: AuthKind = "none"
    location: AuthLocation = Field(default="header", description="For `api_key`: a header or a query parameter.")
    name: str | None = Field(default=None, description="For `api_key`: the header's or query parameter's name.")
    secret: SecretStr | None = Field(default=None, description="The bearer token or API key.")

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        if not text.strip() or len(text) > 4096 or any(c in text for c in "\r\n\0"):
            raise ValueError("the secret must be 1 to 4096 characters on one line")
        return value

    @model_validator(mode="after")
    def _named(self) -> OpenAPIAuthIn:
        if self.kind == "api_key":
            if not self.name or not re.match(_HEADER_NAME, self.name):
                raise ValueError("an API key needs the `name` of its header or query parameter (letters, digits, -_)")
            if self.location == "header" and self.name.lower() in _FORBIDDEN_KEY_HEADERS:
                raise ValueError(f"the header {self.name!r} cannot carry an API key")
        return self


class OpenAPIAuthRead(BaseModel):
    kind: AuthKind
    location: AuthLocation
    name: str | None
    has_secret: bool = Field(description="Whether a secret is stored (it is never returned).")


class _ImportFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=2000)
    base_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Where calls go (http or https); defaults to the document's first server when that is absolute.",
    )
    auth: OpenAPIAuthIn | None = None
    timeout_seconds: float | None = Field(default=None, ge=1, le=120, description="Per call.")
    max_response_bytes: int | None = Field(
        default=None, ge=1024, le=2_000_000, description="A longer answer is cut to this size."
    )
    operations: list[str] | None = Field(
        default=None,
        max_length=300,
        description="The tool names (`tool_name` of the preview) to offer; None: every supported operation.",
    )


class OpenAPIImportCreate(_ImportFields):
    """An import: a name, the document and the operations chosen."""

    name: SourceName
    document: str | dict[str, Any]


class OpenAPIImportUpdate(_ImportFields):
    """Changes to an import; a new `document` replaces the operations (then `operations` chooses among the new
    ones, or all supported ones)."""

    name: SourceName | None = None
    document: str | dict[str, Any] | None = None


class OpenAPIImportRead(BaseModel):
    """An import (its credential never)."""

    id: uuid.UUID
    name: str
    description: str
    title: str
    document_version: str
    base_url: str
    auth: OpenAPIAuthRead
    timeout_seconds: float
    max_response_bytes: int
    operations: list[OpenAPIOperationRead] = Field(
        description="Every operation of the document; `selected` ones are tools."
    )
    created_at: datetime
    updated_at: datetime
