"""Request and response shapes of `/api/remote-agents`."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator

from nexent.a2a_client.models import RemoteStatus
from nexent.core.schemas import Patch
from nexent.tools.sources import SOURCE_NAME_RE

_NAME_PATTERN = SOURCE_NAME_RE.pattern.replace("(?=.{1,30}$)", "")

RemoteName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=30, pattern=_NAME_PATTERN),
    Field(
        description="Unique in the tenant; agents call the remote agent as `<name>__agent`: lowercase letters, "
        "digits and single underscores, starting with a letter, at most 30 characters. Left out: from the card's "
        "name."
    ),
]
CardUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    Field(description="The URL of the agent card (or of the agent, whose `/.well-known/agent-card.json` is read)."),
]
Secret = Annotated[SecretStr, Field(max_length=8000)]
Timeout = Annotated[float, Field(ge=1, le=3600, description="Seconds one task sent to the agent may take.")]


def _check_url(url: str | None) -> str | None:
    if url is not None and not re.match(r"^https?://[^\s/]+", url):
        raise ValueError("the URL must be an http or https URL")
    return url


def _check_secret(value: SecretStr | None) -> SecretStr | None:
    # Sent in an HTTP header: printable ASCII only (no line breaks, no control characters).
    if value is not None and not re.fullmatch(r"[\x20-\x7e]*", value.get_secret_value()):
        raise ValueError("the value must be printable ASCII (it is sent in an HTTP header)")
    return value


class _Checked(BaseModel):
    @field_validator("card_url", check_fields=False)
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_url(value)

    @field_validator("api_key", "token", check_fields=False)
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_secret(value)


class RemoteAgentCreate(_Checked):
    model_config = ConfigDict(extra="forbid")

    card_url: CardUrl
    name: RemoteName | None = None
    api_key: Secret | None = Field(
        default=None, description="Sent in the header the card's API key scheme names (stored encrypted)."
    )
    token: Secret | None = Field(
        default=None, description="Sent as `Authorization: Bearer <token>` (stored encrypted)."
    )
    enabled: bool = True
    timeout_seconds: Timeout = 120.0


class RemoteAgentUpdate(_Checked, Patch):
    """A change; `api_key` and `token` replace the stored credential of their kind (empty: removes it). A new
    `card_url` fetches the card again."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    card_url: CardUrl | None = None
    name: RemoteName | None = None
    api_key: Secret | None = None
    token: Secret | None = None
    enabled: bool | None = None
    timeout_seconds: Timeout | None = None


class Skill(BaseModel):
    id: str
    name: str
    description: str
    tags: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)


class RemoteAgentRead(BaseModel):
    """A remote agent; credentials are never returned, only which headers carry them."""

    id: uuid.UUID
    name: str
    tool_name: str = Field(description="What agents' `tools` entries name to use it as a sub-agent.")
    card_url: str
    agent_name: str = Field(description="The name its card gives.")
    description: str
    version: str
    streaming: bool = Field(description="Whether its card says it streams (SendStreamingMessage).")
    skills: list[Skill]
    auth: list[str] = Field(description="What its card asks for: `api_key:header:<name>`, `bearer`, ...")
    header_names: list[str] = Field(description="Headers that carry the stored credentials (values never returned).")
    enabled: bool
    timeout_seconds: float
    status: RemoteStatus = Field(description="What the last check or call found.")
    status_detail: str | None
    checked_at: datetime | None
    card_fetched_at: datetime | None
    created_at: datetime
    updated_at: datetime


class RemoteAgentCard(BaseModel):
    """The agent card as last fetched and validated (the A2A JSON form)."""

    card: dict[str, Any]
    fetched_at: datetime | None


class RemoteCheckResult(BaseModel):
    status: RemoteStatus
    detail: str | None
    latency_ms: float
    agent: RemoteAgentRead
