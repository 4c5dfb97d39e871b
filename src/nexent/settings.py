"""The single source of configuration: every setting is a `NEXENT_*` environment variable (or `.env` entry).

`docs/configuration.md` lists each variable with its default; `tests/test_settings.py` keeps the two in step.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Service(StrEnum):
    """The API services of the platform; the embedded shape runs them all in one process."""

    CONFIG = "config"
    RUNTIME = "runtime"
    MCP = "mcp"
    NORTHBOUND = "northbound"
    DATA_PROCESS = "data-process"


DEFAULT_PORTS: dict[Service, int] = {
    Service.CONFIG: 5010,
    Service.MCP: 5011,
    Service.DATA_PROCESS: 5012,
    Service.NORTHBOUND: 5013,
    Service.RUNTIME: 5014,
}
EMBEDDED_PORT = 5010


class Settings(BaseSettings):
    """Platform settings. Engines default to the embedded shape (no external service)."""

    model_config = SettingsConfigDict(env_prefix="NEXENT_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Server
    host: str = "127.0.0.1"
    port: int | None = Field(default=None, description="Overrides the service's default port.")
    data_dir: Path = Path("data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    # With traces on (the OTEL_* variables, docs/observability.md): a span for every SQL statement too.
    trace_sql: bool = False
    # Prices of models for the cost metric, by the provider's model name: `{"gpt-4o": [2.5, 10.0]}` is 2.5 per
    # million prompt tokens and 10 per million completion tokens (in whatever currency the operator counts).
    model_prices: dict[str, tuple[float, float]] = Field(default_factory=dict)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    admin_token: SecretStr | None = None
    metrics_token: SecretStr | None = None
    public_url: str | None = None
    # Host names (besides loopback and those of NEXENT_PUBLIC_URL and the mcp service's URL) that requests to the MCP
    # server may name in `Host` (DNS-rebinding protection; `*.example.com` patterns allowed).
    mcp_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Requests a minute one client address may send to the A2A endpoints of publicly exposed agents.
    a2a_public_rate_per_minute: int = Field(default=60, ge=1)
    # The web UI's static export; unset: `web/out` of the source tree. Not built: `/` shows a status page.
    web_dir: Path | None = None
    # Split shape: where the browser reaches each service (`{"runtime": "https://runtime.example"}`); a service not
    # named answers on the UI's own origin (the embedded shape, or a gateway in front). Each service must then allow
    # the UI's origin in NEXENT_CORS_ORIGINS.
    service_urls: dict[Service, str] = Field(default_factory=dict)
    # Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (addresses or networks); from any
    # other peer those headers are ignored, so a client cannot choose the address it is throttled and audited by.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Identity and secrets
    jwt_secret: SecretStr | None = None
    encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    access_token_minutes: int = Field(default=15, gt=0)
    refresh_token_days: int = Field(default=30, gt=0)
    # A refresh token rotated less than this ago may be presented again (two tabs refreshing at once) and gets a new
    # pair of the same session; later, presenting it is reuse and ends the session. 0: no grace.
    refresh_grace_seconds: int = Field(default=30, ge=0)
    open_signup: bool = True
    # Sign-in throttle: attempts per email from one address, per address over all emails, and per email from
    # every address (the brake on an attack spread over many addresses), each in its own fixed window.
    login_max_attempts: int = Field(default=10, gt=0)
    login_window_seconds: int = Field(default=300, gt=0)
    login_address_max_attempts: int = Field(default=100, gt=0)
    login_email_max_attempts: int = Field(default=100, gt=0)
    login_email_window_seconds: int = Field(default=3600, gt=0)
    register_max_attempts: int = Field(default=10, gt=0)
    register_window_seconds: int = Field(default=3600, gt=0)

    # Models
    builtin_models: bool = True
    # Private addresses (loopback, private networks, ...) that model endpoints may be on: host names, IP addresses,
    # CIDR networks, or `*` for all; empty, only public addresses. A platform operator may add some per tenant.
    private_endpoints_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    local_model_threads: int = Field(default=0, ge=0)

    # Agents and runs
    allow_private_fetch: bool = False
    max_concurrent_runs: int = Field(default=64, ge=1)
    max_concurrent_runs_per_tenant: int = Field(default=16, ge=1)
    max_queued_runs: int = Field(default=512, ge=0)
    # Each process that executes runs writes a heartbeat this often; its unfinished runs are ended (`worker_lost`)
    # by the other processes once it has been silent for `run_owner_lost_seconds`.
    run_heartbeat_seconds: float = Field(default=5.0, gt=0)
    run_owner_lost_seconds: float = Field(default=30.0, gt=0)
    # The code sandbox's scratch directory, all files together (a tmpfs when the server runs as root: memory)
    sandbox_disk_mb: int = Field(default=64, ge=1)
    # Skill scripts whose SKILL.md says `network: true` get the network only where this is true (docs/skills.md).
    skills_network: bool = False

    # Tenants' MCP servers (docs/tools.md). Local (stdio) servers run commands on the host: allowed where
    # `mcp_stdio` is true; unset, only in the embedded shape (the split shape sets it on config and runtime).
    mcp_stdio: bool | None = None
    mcp_dir: Path | None = None
    mcp_list_timeout_seconds: float = Field(default=10.0, gt=0)
    mcp_breaker_failures: int = Field(default=3, ge=1)
    mcp_breaker_reset_seconds: float = Field(default=30.0, gt=0)
    mcp_restart_backoff_max_seconds: float = Field(default=30.0, gt=0)
    mcp_log_lines: int = Field(default=500, ge=10)

    # Tenants' remote (A2A) agents (docs/a2a.md): fetching a card and checking take at most this long; a cached
    # card older than the age is fetched again when an agent calls the remote agent.
    a2a_card_timeout_seconds: float = Field(default=10.0, gt=0)
    a2a_card_max_age_seconds: float = Field(default=3600.0, ge=0)

    # Speech input: the largest recording a transcription takes (docs/models.md#speech-to-text)
    speech_max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)

    # Knowledge bases
    knowledge_max_file_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    knowledge_max_upload_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    knowledge_max_attempts: int = Field(default=3, ge=1)
    # Structured import (one document per row of a CSV or JSON Lines file): rows per file, characters per row
    knowledge_max_rows_per_file: int = Field(default=10_000, ge=1)
    knowledge_max_row_chars: int = Field(default=20_000, ge=100)
    knowledge_ocr: bool = True
    # Documents are parsed in worker processes, each with this memory ceiling (RLIMIT_DATA); past it the document
    # fails with `too_large`. OCR alone takes about 800 MB.
    knowledge_parse_memory_mb: int = Field(default=2048, ge=256)
    knowledge_parse_processes: int = Field(default=2, ge=1)
    knowledge_stuck_seconds: float = Field(default=900.0, gt=0)

    # Single sign-on (OpenID Connect)
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid email profile"
    oidc_role_claim: str = "roles"
    oidc_role_map: dict[str, str] = Field(default_factory=dict)
    oidc_default_role: Literal["owner", "admin", "developer", "user"] = "user"
    oidc_tenant: str | None = None

    # Relational data
    database_url: str | None = None
    auto_migrate: bool = True
    database_pool_size: int = Field(default=10, gt=0)

    # Object storage
    storage_backend: Literal["local", "s3"] = "local"
    storage_dir: Path | None = None
    s3_endpoint_url: str | None = None
    s3_bucket: str = "nexent"
    s3_region: str = "us-east-1"
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None

    # Background jobs
    queue_backend: Literal["local", "celery"] = "local"
    queue_workers: int = Field(default=4, ge=0)
    job_lease_seconds: float = Field(default=60.0, gt=0)
    job_poll_seconds: float = Field(default=1.0, gt=0)
    job_sweep_seconds: float = Field(default=30.0, gt=0)
    worker_metrics_port: int = Field(default=5019, ge=0, le=65535)
    job_modules: Annotated[list[str], NoDecode] = Field(default_factory=list)
    celery_broker_url: str | None = None
    celery_queue: str = "nexent"

    # Event bus, cancel signals, locks
    bus_backend: Literal["local", "redis"] = "local"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "nexent:"

    # Knowledge search
    search_backend: Literal["lancedb", "milvus"] = "lancedb"
    lancedb_dir: Path | None = None
    lancedb_memory_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    milvus_uri: str | None = None
    milvus_token: SecretStr | None = None
    search_fusion: Literal["minmax", "dbsf", "rrf"] = "minmax"
    search_vector_weight: float = Field(default=0.4, ge=0.0, le=1.0)
    # Memory (docs/memory.md): recall before a run, extraction after it
    memory_enabled: bool = True
    memory_recall_tokens: int = Field(default=400, ge=0, le=100_000)
    memory_recall_top_k: int = Field(default=8, ge=1, le=100)

    @field_validator(
        "cors_origins",
        "job_modules",
        "encryption_keys",
        "private_endpoints_allow",
        "trusted_proxies",
        "mcp_allowed_hosts",
        mode="before",
    )
    @classmethod
    def _split_comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (such as 10.0.0.0/8)") from None
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'nexent.db').resolve()}"

    @property
    def resolved_storage_dir(self) -> Path:
        return (self.storage_dir or self.data_dir / "objects").resolve()

    @property
    def resolved_mcp_dir(self) -> Path:
        return (self.mcp_dir or self.data_dir / "mcp").resolve()

    @property
    def resolved_lancedb_dir(self) -> Path:
        return (self.lancedb_dir or self.data_dir / "lancedb").resolve()

    @property
    def resolved_milvus_uri(self) -> str:
        return self.milvus_uri or str((self.data_dir / "milvus.db").resolve())

    @property
    def resolved_broker_url(self) -> str:
        return self.celery_broker_url or self.redis_url

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    def port_for(self, service: Service | None) -> int:
        """The port to listen on: the override, else the service's default, else the embedded port."""
        if self.port is not None:
            return self.port
        return DEFAULT_PORTS[service] if service else EMBEDDED_PORT


@lru_cache
def get_settings() -> Settings:
    """Settings read once per process from the environment."""
    return Settings()
