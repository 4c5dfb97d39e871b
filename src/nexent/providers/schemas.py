"""Request and response shapes of model configurations, checks and usage."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from nexent.core.schemas import Patch
from nexent.providers.models import CheckStatus, ModelKind, ProviderType
from nexent.providers.types import api_key_problem, base_url_problem

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
# The model's id at its server, sent in every request: printable text, no control characters.
ModelName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
]
Language = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[A-Za-z]{2}$")]
Languages = Annotated[list[Language], Field(min_length=1, max_length=50)]
LANGUAGES_DESCRIPTION = (
    "Embedding models: the languages the model understands, as ISO 639-1 codes (`en`, `zh`, ...); null: every "
    "language. Hybrid search gives the vector side less weight for queries in other languages."
)
BaseUrl = Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=500)]


def _check_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("base_url must start with http:// or https://")
    problem = base_url_problem(value)
    if problem:
        raise ValueError(problem)
    parts = urlsplit(value)
    if "@" in parts.netloc:
        raise ValueError("base_url must not carry credentials (user:password@); give the key as api_key")
    try:
        parts.port  # noqa: B018 (a port out of range or not a number raises)
    except ValueError:
        raise ValueError("base_url has an invalid port") from None
    if not parts.hostname:
        raise ValueError("base_url has no host")
    return value.rstrip("/")


def _check_key(value: SecretStr) -> SecretStr:
    problem = api_key_problem(value.get_secret_value())
    if problem:
        raise ValueError(problem)  # the message never quotes the key, and validation errors never echo the input
    return value


# Sent as `Authorization: Bearer <key>`: only what an HTTP header carries (printable ASCII, no spaces).
ApiKey = Annotated[SecretStr, AfterValidator(_check_key)]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: BaseUrl
    api_key: ApiKey | None = Field(default=None, description="Stored encrypted; never returned.")

    _url = field_validator("base_url")(_check_url)


class Limits(BaseModel):
    context_window: int | None = Field(default=None, ge=256, le=10_000_000)
    max_concurrency: int | None = Field(default=None, ge=1, le=10_000, description="Calls at once, per process.")
    requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600)


ACCEPTS_IMAGES_DESCRIPTION = (
    "An LLM that also takes images: chat attachments reach it as image content parts (a `vlm` model always "
    "does); otherwise their OCR text and a caption stand in."
)


class ModelSettings(Limits):
    """What a connectivity check needs: everything but the name."""

    model_config = ConfigDict(extra="forbid")

    kind: ModelKind
    provider: ProviderType = ProviderType.OPENAI_COMPATIBLE
    model: ModelName
    base_url: BaseUrl | None = Field(default=None, description="Shorthand for one endpoint.")
    api_key: ApiKey | None = Field(default=None, description="Key of the `base_url` endpoint.")
    endpoints: list[EndpointIn] | None = Field(default=None, max_length=20, description="Several servers of one model.")
    languages: list[Language] | None = Field(
        default=None, min_length=1, max_length=50, description=LANGUAGES_DESCRIPTION
    )
    accepts_images: bool = Field(default=False, description=ACCEPTS_IMAGES_DESCRIPTION)

    _url = field_validator("base_url")(lambda value: _check_url(value) if value is not None else None)

    @model_validator(mode="after")
    def _endpoints_match_provider(self) -> ModelSettings:
        if self.base_url is not None and self.endpoints:
            raise ValueError("give either base_url (and api_key) or endpoints, not both")
        if self.provider == ProviderType.OPENAI_COMPATIBLE and not (self.base_url or self.endpoints):
            raise ValueError("an openai_compatible model needs base_url or endpoints")
        if self.provider == ProviderType.LOCAL and (self.base_url or self.endpoints or self.api_key):
            raise ValueError("a local model takes no base_url, api_key or endpoints")
        return self

    def endpoint_list(self) -> list[EndpointIn]:
        if self.endpoints:
            return self.endpoints
        if self.base_url:
            return [EndpointIn(base_url=self.base_url, api_key=self.api_key)]
        return []


class ModelCreate(ModelSettings):
    name: Name
    is_default: bool = Field(default=False, description="The tenant's default model of this kind.")


class ModelUpdate(Patch):
    name: Name | None = None
    model: ModelName | None = None
    base_url: BaseUrl | None = None
    api_key: ApiKey | None = Field(default=None, description="New key for the first endpoint.")
    endpoints: list[EndpointIn] | None = Field(default=None, max_length=20)
    context_window: int | None = Field(default=None, ge=256, le=10_000_000)
    max_concurrency: int | None = Field(default=None, ge=1, le=10_000)
    requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    timeout_seconds: float | None = Field(default=None, gt=0, le=3600)
    is_default: Literal[True] | None = Field(default=None, description="Make this the default of its kind.")
    languages: list[Language] | None = Field(
        default=None, min_length=1, max_length=50, description=LANGUAGES_DESCRIPTION
    )

    accepts_images: bool | None = Field(default=None, description=ACCEPTS_IMAGES_DESCRIPTION)

    nullable = frozenset({"languages"})

    _url = field_validator("base_url")(lambda value: _check_url(value) if value is not None else None)


class EndpointRead(BaseModel):
    base_url: str
    has_api_key: bool


class CheckError(BaseModel):
    code: str
    message: str


class CheckRead(BaseModel):
    status: CheckStatus
    latency_ms: float | None
    error: CheckError | None
    checked_at: datetime | None


class ModelRead(BaseModel):
    id: uuid.UUID
    name: str
    kind: ModelKind
    provider: ProviderType
    model: str
    endpoints: list[EndpointRead]
    context_window: int | None
    dimension: int | None
    languages: list[str] | None = Field(description=LANGUAGES_DESCRIPTION)
    accepts_images: bool = Field(description=ACCEPTS_IMAGES_DESCRIPTION)
    max_concurrency: int | None
    requests_per_minute: int | None
    timeout_seconds: float
    is_default: bool
    check: CheckRead
    created_at: datetime
    updated_at: datetime


class CheckResult(BaseModel):
    ok: bool
    latency_ms: float
    error: CheckError | None = None
    dimension: int | None = Field(default=None, description="Embedding models: the vector size found.")


class UsageRow(BaseModel):
    key: str = Field(description="The model id, agent id or day the row sums up.")
    calls: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    avg_latency_ms: float
    avg_ttft_ms: float | None


class UsageBucket(BaseModel):
    """The calls of one hour or day. Latencies are null when the bucket has no calls."""

    start: datetime = Field(description="The start of the bucket (UTC); it ends where the next one starts.")
    calls: int
    errors: int = Field(description="Calls that failed.")
    prompt_tokens: int = Field(description="Input tokens.")
    completion_tokens: int = Field(description="Output tokens.")
    avg_latency_ms: float | None
    p95_latency_ms: float | None = Field(
        description="95th percentile, nearest rank: the latency that 95% of the bucket's calls do not exceed."
    )
    max_latency_ms: float | None
    avg_ttft_ms: float | None = Field(description="Average time to first token of streamed calls.")


class UsageSeries(BaseModel):
    """Usage per hour or day over a window, every bucket present (empty ones with zero calls), oldest first."""

    interval: Literal["hour", "day"]
    start: datetime = Field(description="The window's start: `from`, rounded down to the interval (UTC).")
    end: datetime = Field(description="The window's end (exclusive): `to`.")
    model_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    buckets: list[UsageBucket]


class SpeechSettings(BaseModel):
    """What speech input the caller's tenant offers."""

    transcription: bool = Field(description="A speech-to-text (`stt`) model is configured: recordings can be sent.")
    max_bytes: int = Field(description="The largest recording a transcription takes.")


class Transcription(BaseModel):
    text: str = Field(description="What the recording says, as the speech-to-text model wrote it.")
