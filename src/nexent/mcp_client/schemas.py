"""Request and response shapes of `/api/mcp-servers`."""

from __future__ import annotations

import re
import shlex
import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator, model_validator

from nexent.core.schemas import Patch
from nexent.mcp_client.models import ServerStatus, Transport
from nexent.tools.sources import SOURCE_NAME_RE

_NAME_PATTERN = SOURCE_NAME_RE.pattern.replace("(?=.{1,30}$)", "")  # the length is checked apart (no look-ahead)

_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
# Never set on a local server from its settings: they would change what runs, not configure it.
_RESERVED_ENV = {"PATH", "HOME", "TMPDIR", "LD_PRELOAD", "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONHOME"}

ServerName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=30, pattern=_NAME_PATTERN),
    Field(
        description="Unique in the tenant; the prefix of its tools' names (`<name>__<tool>`): lowercase letters, "
        "digits and single underscores, starting with a letter, at most 30 characters."
    ),
]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Command = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4000),
    Field(description="The command line of a local server (`uvx pkg`, `npx -y pkg`, `python -m module`)."),
]
Image = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._/:@-]*$"),
    Field(
        description="Local servers: run the command in a container of this image (Docker) instead of a process "
        "of the host; the command is then optional (the image's own)."
    ),
]
Secrets = Annotated[dict[str, SecretStr], Field(max_length=50)]
CallTimeout = Annotated[float, Field(ge=1, le=600, description="Seconds one tool call may take.")]
MemoryMb = Annotated[int, Field(ge=128, le=65536, description="Local servers: address space limit (MB).")]
CpuSeconds = Annotated[int, Field(ge=1, le=86400, description="Local servers: CPU time limit of the process (s).")]
OpenFiles = Annotated[int, Field(ge=16, le=65536, description="Local servers: open files limit.")]


def _check_url(url: str) -> str:
    if not re.match(r"^https?://[^\s/]+", url):
        raise ValueError("the URL must be an http or https URL")
    return url


def _check_command(command: str) -> str:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ValueError(f"the command line cannot be parsed: {exc}") from None
    if not argv:
        raise ValueError("the command line is empty")
    return command


def _check_headers(headers: dict[str, SecretStr] | None) -> dict[str, SecretStr] | None:
    for name, value in (headers or {}).items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not a header name")
        if any(c in value.get_secret_value() for c in "\r\n\0") or len(value.get_secret_value()) > 8000:
            raise ValueError(f"the value of header {name!r} is not allowed")
    return headers


def _check_env(env: dict[str, SecretStr] | None) -> dict[str, SecretStr] | None:
    for name, value in (env or {}).items():
        if not _ENV_NAME.match(name) or name.upper() in _RESERVED_ENV or name.upper().startswith("NEXENT_"):
            raise ValueError(f"{name!r} cannot be set")
        if "\0" in value.get_secret_value() or len(value.get_secret_value()) > 8000:
            raise ValueError(f"the value of {name!r} is not allowed")
    return env


class _Secrets(BaseModel):
    @field_validator("headers", check_fields=False)
    @classmethod
    def _headers(cls, value: dict[str, SecretStr] | None) -> dict[str, SecretStr] | None:
        return _check_headers(value)

    @field_validator("env", check_fields=False)
    @classmethod
    def _env(cls, value: dict[str, SecretStr] | None) -> dict[str, SecretStr] | None:
        return _check_env(value)

    @field_validator("url", check_fields=False)
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    @field_validator("command", check_fields=False)
    @classmethod
    def _command(cls, value: str | None) -> str | None:
        return None if value is None else _check_command(value)


class McpServerCreate(_Secrets):
    model_config = ConfigDict(extra="forbid")

    name: ServerName
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    transport: Transport = Field(description="`http` (streamable HTTP) or `sse` with `url`; `stdio` with `command`.")
    url: Url | None = None
    command: Command | None = None
    image: Image | None = None
    headers: Secrets = Field(
        default_factory=dict, description="Remote servers: HTTP headers sent with every request (stored encrypted)."
    )
    token: SecretStr | None = Field(
        default=None, max_length=8000, description="Remote servers: sent as `Authorization: Bearer <token>`."
    )
    env: Secrets = Field(
        default_factory=dict, description="Local servers: environment variables of the process (stored encrypted)."
    )
    enabled: bool = True
    call_timeout_seconds: CallTimeout = 30.0
    memory_mb: MemoryMb = 1024
    cpu_seconds: CpuSeconds = 600
    max_open_files: OpenFiles = 256

    @model_validator(mode="after")
    def _fits_transport(self) -> Self:
        if self.transport == Transport.STDIO:
            if not (self.command or self.image) or self.url:
                raise ValueError("a stdio server needs a command (or an image) and no url")
            if self.headers or self.token:
                raise ValueError("a stdio server takes env, not headers or a token")
        else:
            if not self.url or self.command or self.image:
                raise ValueError(f"an {self.transport.value} server needs a url and no command or image")
            if self.env:
                raise ValueError("a remote server takes headers or a token, not env")
        return self


class McpServerUpdate(_Secrets, Patch):
    """A change; `headers` and `env` replace the whole set when given, `token` replaces the Authorization header
    (an empty token removes it)."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    name: ServerName | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    url: Url | None = None
    command: Command | None = None
    image: Image | None = None
    headers: Secrets | None = None
    token: SecretStr | None = Field(default=None, max_length=8000)
    env: Secrets | None = None
    enabled: bool | None = None
    call_timeout_seconds: CallTimeout | None = None
    memory_mb: MemoryMb | None = None
    cpu_seconds: CpuSeconds | None = None
    max_open_files: OpenFiles | None = None


class McpServerRead(BaseModel):
    """An MCP server; secrets are never returned, only which header and variable names are set."""

    id: uuid.UUID
    name: str
    description: str
    transport: Transport
    url: str | None
    command: str | None
    image: str | None = Field(description="Local servers run in a container of this image (Docker), if set.")
    header_names: list[str] = Field(description="Headers that are set (their values are never returned).")
    env_names: list[str] = Field(description="Environment variables that are set (values never returned).")
    enabled: bool
    call_timeout_seconds: float
    memory_mb: int
    cpu_seconds: int
    max_open_files: int
    status: ServerStatus = Field(description="What the last check or call found.")
    status_detail: str | None
    checked_at: datetime | None
    tool_count: int
    created_at: datetime
    updated_at: datetime


class McpToolRead(BaseModel):
    """A tool of a server as the last listing found it."""

    name: str = Field(description="What agents' `tools` entries name: `<server>__<tool>`.")
    remote_name: str = Field(description="The tool's own name at the server.")
    description: str
    parameters: dict[str, Any]
    problem: str | None = Field(description="Why the tool cannot be called (a schema that is not one); None: fine.")


class McpCheckResult(BaseModel):
    status: ServerStatus
    detail: str | None
    latency_ms: float
    tools: list[McpToolRead]


class ConnectionState(BaseModel):
    breaker: Literal["closed", "open", "half_open"] = Field(description="In the process that answered.")
    failures: int
    running: bool = Field(description="Local servers: whether this process runs the server's process now.")
    pid: int | None


class LogLine(BaseModel):
    at: datetime
    stream: Literal["stderr", "platform"] = Field(
        description="`stderr`: the local server's standard error; `platform`: starts, ends and restarts."
    )
    line: str
