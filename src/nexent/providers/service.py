"""Model configurations of a tenant, connectivity checks, the clients every other domain calls, and usage."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.batch import Write, writer_for
from nexent.core.db import utcnow
from nexent.core.errors import AppError, BadRequest, NotFound
from nexent.core.netpolicy import AddressPolicy, AddressRefused, resolve_checked
from nexent.core.pagination import Page, PageParams
from nexent.core.references import refuse_if_used
from nexent.engines.container import Engines
from nexent.identity.auth import Caller
from nexent.identity.services.audit import record
from nexent.identity.services.tenants import tenant_endpoint_policy
from nexent.providers import local, metrics
from nexent.providers.models import CheckStatus, ModelConfig, ModelEndpoint, ModelKind, ProviderType, UsageRecord
from nexent.providers.openai_compat import Endpoint, ModelConnections, env_proxy
from nexent.providers.pool import CallReport, RoutedModel
from nexent.providers.repository import EndpointRepository, ModelRepository, UsageRepository
from nexent.providers.schemas import (
    CheckError,
    CheckRead,
    CheckResult,
    EndpointIn,
    EndpointRead,
    ModelCreate,
    ModelRead,
    ModelSettings,
    ModelUpdate,
    SpeechSettings,
    Transcription,
    UsageBucket,
    UsageRow,
    UsageSeries,
)
from nexent.providers.speech import checked_recording, silent_wav
from nexent.providers.types import ChatModel, EmbeddingModel, ErrorCode, ProviderError, RerankModel, complete

logger = logging.getLogger("nexent.providers")


MAX_USAGE_BUCKETS = 1000
USAGE_INTERVALS: dict[str, timedelta] = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
DEFAULT_USAGE_WINDOW: dict[str, timedelta] = {"hour": timedelta(hours=24), "day": timedelta(days=30)}


class InvalidUsageWindow(AppError):
    """A usage window that is empty, reversed, too long for its interval or out of range."""

    status, code = 422, "invalid_usage_window"


def usage_window(
    interval: Literal["hour", "day"], since: datetime | None, until: datetime | None, *, now: datetime | None = None
) -> tuple[datetime, datetime, int]:
    """The window of a usage series: its start (`since` rounded down to the interval, UTC), its end (`until`,
    exclusive) and its number of buckets. Missing ends: `until` now, `since` a day (hours) or 30 days (days) before
    `until`. Raises `InvalidUsageWindow` (422) for what cannot be charted."""
    step = USAGE_INTERVALS[interval]
    try:
        end = (until or now or utcnow()).astimezone(UTC)
        begin = since.astimezone(UTC) if since is not None else end - DEFAULT_USAGE_WINDOW[interval]
        start = begin.replace(minute=0, second=0, microsecond=0)
        if interval == "day":
            start = start.replace(hour=0)
    except OverflowError:
        raise _window_error("`from` and `to` must be dates between the years 1 and 9999 (UTC).", "from") from None
    if end <= begin:
        raise _window_error("`to` must be after `from`.", "to")
    buckets = -((start - end) // step)  # ceiling division of timedeltas
    if buckets > MAX_USAGE_BUCKETS:
        raise _window_error(
            f"The window holds {buckets} {interval}s; at most {MAX_USAGE_BUCKETS} buckets: narrow it or use days.",
            "from",
        )
    return start, end, buckets


def _window_error(message: str, field: str) -> InvalidUsageWindow:
    return InvalidUsageWindow(
        message, extra={"errors": [{"loc": ["query", field], "msg": message, "type": "invalid_usage_window"}]}
    )


class ModelNotFound(NotFound):
    code = "model_not_found"


class NoDefaultModel(NotFound):
    code = "no_default_model"


class NoTranscriptionModel(NoDefaultModel):
    code = "no_transcription_model"


class TranscriptionFailed(AppError):
    """The speech-to-text model did not answer; `model_error` carries the provider's classification."""

    status, code = 502, "transcription_failed"


class EndpointNotAllowed(BadRequest):
    code = "endpoint_not_allowed"


@dataclass(frozen=True)
class ModelFacts:
    """What other domains check of a tenant's model when they point at it, without its endpoints or secrets."""

    id: uuid.UUID
    kind: ModelKind
    dimension: int | None  # an embedding model's vector length, once known
    languages: list[str] | None = None  # an embedding model's languages; None: every language


async def model_facts(session: AsyncSession, tenant_id: uuid.UUID, model_id: uuid.UUID) -> ModelFacts | None:
    """The tenant's model `model_id`; None when the tenant has no such model."""
    config = await ModelRepository(session, tenant_id).get(model_id)
    return None if config is None else ModelFacts(config.id, ModelKind(config.kind), config.dimension, config.languages)


async def default_model_facts(session: AsyncSession, tenant_id: uuid.UUID, kind: ModelKind) -> ModelFacts | None:
    """The tenant's default model of `kind`; None when it has none."""
    config = await ModelRepository(session, tenant_id).default_of(kind)
    return None if config is None else ModelFacts(config.id, ModelKind(config.kind), config.dimension, config.languages)


@dataclass(frozen=True)
class ModelLabel:
    """A tenant's model as another domain names it (agent import and export): no endpoints, no secrets."""

    id: uuid.UUID
    name: str
    kind: ModelKind
    model: str


async def model_labels(session: AsyncSession, tenant_id: uuid.UUID) -> list[ModelLabel]:
    """Every model of the tenant, oldest first, by name, kind and provider model identifier."""
    configs = await ModelRepository(session, tenant_id).everything()
    return [ModelLabel(c.id, c.name, ModelKind(c.kind), c.model) for c in configs]


class ProviderService:
    def __init__(self, session: AsyncSession, engines: Engines, caller: Caller) -> None:
        self.session = session
        self.engines = engines
        self.caller = caller
        self.models = ModelRepository(session, caller.tenant_id)
        self.endpoints = EndpointRepository(session, caller.tenant_id)
        self._policy: AddressPolicy | None = None

    # --- configurations -----------------------------------------------------------------------------------------

    async def create(self, data: ModelCreate) -> ModelRead:
        await self._validate(data)
        config = ModelConfig(
            tenant_id=self.caller.tenant_id,
            name=data.name,
            kind=data.kind,
            provider=data.provider,
            model=data.model,
            context_window=data.context_window,
            max_concurrency=data.max_concurrency,
            requests_per_minute=data.requests_per_minute,
            timeout_seconds=data.timeout_seconds,
            dimension=local.dimension_of(data.model) if data.provider == ProviderType.LOCAL else None,
            languages=_languages(data),
            accepts_images=data.accepts_images,
        )
        if data.is_default or await self.models.count_of_kind(data.kind) == 0:
            await self.models.clear_default(data.kind)
            config.is_default = True
        await self.models.add(config)
        await self.endpoints.replace(config.id, [self._endpoint(config.id, e) for e in data.endpoint_list()])
        await record(self.session, self.caller, "model.created", "model", config.id, name=config.name, kind=config.kind)
        return await self._read(config)

    async def _validate(self, data: ModelSettings) -> None:
        if data.provider == ProviderType.LOCAL:
            local.require(data.kind, data.model)
        for endpoint in data.endpoint_list():
            await self._check_endpoint_allowed(endpoint.base_url)

    async def _check_endpoint_allowed(self, base_url: str) -> None:
        """An endpoint must be on a public address, or on a private one that the operator allowed (for the whole
        platform or for this tenant). Checked again at every connection: this check only reports it early."""
        policy = await self.endpoint_policy()
        parts = urlsplit(base_url)
        host = parts.hostname or ""
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            await resolve_checked(host, port, policy, dns_timeout=10.0)
        except AddressRefused:
            raise EndpointNotAllowed(
                f"The host {host} of the base URL is on a private, loopback or reserved address, which is not "
                "allowed here; the platform operator can allow it (NEXENT_PRIVATE_ENDPOINTS_ALLOW)."
            ) from None
        except (OSError, ValueError):
            raise EndpointNotAllowed(f"The host {host!r} of the base URL does not resolve.") from None

    async def endpoint_policy(self) -> AddressPolicy:
        """The private addresses this tenant's endpoints may use: the platform's list and the tenant's own."""
        if self._policy is None:
            tenant = await tenant_endpoint_policy(self.session, self.engines.process, self.caller.tenant_id)
            self._policy = self.engines.private_endpoints | tenant
        return self._policy

    def _endpoint(self, model_id: uuid.UUID, data: EndpointIn, keep_key: str | None = None) -> ModelEndpoint:
        key = data.api_key.get_secret_value() if data.api_key else None
        return ModelEndpoint(
            tenant_id=self.caller.tenant_id,
            model_config_id=model_id,
            base_url=data.base_url,
            api_key_encrypted=self.engines.keys.box.encrypt(key) if key else keep_key,
        )

    async def _get(self, model_id: uuid.UUID) -> ModelConfig:
        config = await self.models.get(model_id)
        if config is None:
            raise ModelNotFound(f"No model {model_id} in this tenant.")
        return config

    async def get(self, model_id: uuid.UUID) -> ModelRead:
        return await self._read(await self._get(model_id))

    async def list_models(self, page: PageParams, *, kind: ModelKind | None) -> Page[ModelRead]:
        configs, total = await self.models.list_page(kind=kind, limit=page.limit, offset=page.offset)
        endpoints = await self.endpoints.of_models([c.id for c in configs])
        return Page[ModelRead](
            items=[_read(c, endpoints[c.id]) for c in configs], total=total, limit=page.limit, offset=page.offset
        )

    async def _read(self, config: ModelConfig) -> ModelRead:
        return _read(config, (await self.endpoints.of_models([config.id]))[config.id])

    async def update(self, model_id: uuid.UUID, data: ModelUpdate) -> ModelRead:
        config = await self._get(model_id)
        fields = data.model_dump(exclude_unset=True, exclude={"base_url", "api_key", "endpoints", "is_default"})
        if data.model is not None and config.provider == ProviderType.LOCAL:
            local.require(config.kind, data.model)
        if fields.get("languages"):
            fields["languages"] = sorted(set(fields["languages"]))
        for name, value in fields.items():
            setattr(config, name, value)
        if data.is_default:
            await self.models.clear_default(config.kind)
            config.is_default = True
        current = (await self.endpoints.of_models([config.id]))[config.id]
        new_endpoints = self._updated_endpoints(config, current, data)
        if new_endpoints is not None:
            if config.provider == ProviderType.LOCAL:
                raise BadRequest("A local model takes no endpoints.", code="invalid_endpoints")
            if not new_endpoints:  # the fuzzer's find: a model left without one answered 500 at its next call
                raise BadRequest("A model needs at least one endpoint.", code="invalid_endpoints")
            for endpoint in new_endpoints:
                await self._check_endpoint_allowed(endpoint.base_url)
            await self.endpoints.replace(config.id, new_endpoints)
        config.updated_at = utcnow()
        config.check_status = CheckStatus.UNKNOWN
        await self.session.flush()
        await record(
            self.session, self.caller, "model.updated", "model", config.id, fields=sorted(data.model_fields_set)
        )
        return await self._read(config)

    def _updated_endpoints(
        self, config: ModelConfig, current: list[ModelEndpoint], data: ModelUpdate
    ) -> list[ModelEndpoint] | None:
        """New endpoints from an update; an endpoint given without a key keeps the key it had at that URL."""
        keys = {e.base_url: e.api_key_encrypted for e in current}
        if data.endpoints is not None:
            return [self._endpoint(config.id, e, keep_key=keys.get(e.base_url)) for e in data.endpoints]
        if data.base_url is None and data.api_key is None:
            return None
        if not current and data.base_url is None:
            raise BadRequest("This model has no endpoint to set a key on; give base_url.", code="invalid_endpoints")
        # Stored URLs are not validated again: one stored before a rule of `EndpointIn` would fail the update.
        first = EndpointIn.model_construct(base_url=data.base_url or current[0].base_url, api_key=data.api_key)
        rest = [
            self._endpoint(config.id, EndpointIn.model_construct(base_url=e.base_url), keep_key=e.api_key_encrypted)
            for e in current[1:]
        ]
        return [self._endpoint(config.id, first, keep_key=keys.get(first.base_url)), *rest]

    async def delete(self, model_id: uuid.UUID) -> None:
        config = await self._get(model_id)
        await refuse_if_used(self.session, self.caller.tenant_id, "model", config.id)
        await self.models.delete(config)
        if config.is_default:
            successor = await self.models.first_of_kind(config.kind, except_id=config.id)
            if successor is not None:
                successor.is_default = True
        await record(self.session, self.caller, "model.deleted", "model", model_id, name=config.name)

    # --- clients ------------------------------------------------------------------------------------------------

    async def client(self, model_id: uuid.UUID, *, agent_id: uuid.UUID | None = None) -> Any:
        """The client of a configured model: a `ChatModel`, `EmbeddingModel` or `RerankModel` by its kind."""
        client, _ = await self.client_and_config(model_id, ModelKind.LLM, agent_id=agent_id)
        return client

    async def default_client(self, kind: ModelKind, *, agent_id: uuid.UUID | None = None) -> Any:
        client, _ = await self.client_and_config(None, kind, agent_id=agent_id)
        return client

    async def config_with_endpoints(
        self, model_id: uuid.UUID | None, kind: ModelKind
    ) -> tuple[ModelConfig, list[ModelEndpoint]] | None:
        """A configured model (the tenant's default of `kind` when `model_id` is None) with its endpoints, in one
        query; None when there is no such model."""
        query = (
            select(ModelConfig, ModelEndpoint)
            .outerjoin(
                ModelEndpoint,
                (ModelEndpoint.model_config_id == ModelConfig.id) & (ModelEndpoint.tenant_id == ModelConfig.tenant_id),
            )
            .where(ModelConfig.tenant_id == self.caller.tenant_id)
            .order_by(ModelEndpoint.position, ModelEndpoint.created_at)
        )
        if model_id is not None:
            query = query.where(ModelConfig.id == model_id)
        else:
            query = query.where(ModelConfig.kind == kind, ModelConfig.is_default.is_(True))
        rows = (await self.session.execute(query)).all()
        if not rows:
            return None
        return rows[0][0], [endpoint for _, endpoint in rows if endpoint is not None]

    async def client_for(
        self, config: ModelConfig, endpoints: list[ModelEndpoint], *, agent_id: uuid.UUID | None = None
    ) -> Any:
        """The client of a model already loaded (see `config_with_endpoints`)."""
        return await self._client(config, endpoints, agent_id=agent_id)

    async def client_and_config(
        self,
        model_id: uuid.UUID | None,
        kind: ModelKind,
        *,
        agent_id: uuid.UUID | None = None,
        wait_for_rate: bool = True,
    ) -> tuple[Any, ModelConfig]:
        """The client of a configured model (the tenant's default of `kind` when `model_id` is None) and its
        configuration (a run also needs its context window). `wait_for_rate=False`: a call over the model's
        per-minute limit fails at once (`rate_limited`) instead of waiting for the next window (drafts a person
        waits for)."""
        if model_id is not None:
            config = await self._get(model_id)
        else:
            default = await self.models.default_of(kind)
            if default is None:
                raise NoDefaultModel(f"This tenant has no default {kind.value} model; add one under models.")
            config = default
        endpoints = (await self.endpoints.of_models([config.id]))[config.id]
        return await self._client(config, endpoints, agent_id=agent_id, wait_for_rate=wait_for_rate), config

    async def _client(
        self,
        config: ModelConfig,
        endpoints: list[ModelEndpoint],
        *,
        agent_id: uuid.UUID | None,
        max_retries: int = 2,
        wait_for_rate: bool = True,
    ) -> ChatModel | EmbeddingModel | RerankModel:
        sink = usage_sink(self.engines, self.caller.tenant_id, config.id, config.kind, agent_id, config.model)
        if config.provider == ProviderType.LOCAL:
            local_model: ChatModel | EmbeddingModel = local.client(
                config.kind, config.model, on_usage=sink, model_id=config.id
            )
            return local_model
        box = self.engines.keys.box
        connections = self.engines.process.part(ModelConnections, ModelConnections)
        policy = await self.endpoint_policy()  # checked at every connection, whenever the model was saved
        chat = connections.chat(policy)
        return RoutedModel(
            model_id=config.id,
            model=config.model,
            endpoints=[
                Endpoint(
                    connections.http(policy, env_proxy(e.base_url)),
                    e.base_url,
                    box.decrypt(e.api_key_encrypted) if e.api_key_encrypted else None,
                    timeout=config.timeout_seconds,
                    chat=chat,
                    policy=policy,
                )
                for e in endpoints
            ],
            bus=self.engines.bus,
            max_concurrency=config.max_concurrency,
            requests_per_minute=config.requests_per_minute,
            max_retries=max_retries,
            wait_for_rate=wait_for_rate,
            on_usage=sink,
        )

    # --- speech input -------------------------------------------------------------------------------------------

    async def speech(self) -> SpeechSettings:
        """What speech input the tenant offers: whether a transcription (`stt`) model is configured."""
        default = await self.models.default_of(ModelKind.STT)
        return SpeechSettings(transcription=default is not None, max_bytes=self.engines.settings.speech_max_bytes)

    async def transcribe(self, audio: bytes) -> Transcription:
        """The text of a recording, from the tenant's default `stt` model (its `/audio/transcriptions`)."""
        file_name, content_type = checked_recording(audio, self.engines.settings.speech_max_bytes)
        if await self.models.default_of(ModelKind.STT) is None:
            raise NoTranscriptionModel("This tenant has no speech-to-text model; add one of kind stt under models.")
        client = await self.default_client(ModelKind.STT)
        try:
            text = await client.transcribe(audio, file_name, content_type)
        except ProviderError as exc:
            raise TranscriptionFailed(
                f"The speech-to-text model failed: {exc.message}", extra={"model_error": {"code": exc.code.value}}
            ) from None
        return Transcription(text=text.strip())

    # --- checks -------------------------------------------------------------------------------------------------

    async def check(self, model_id: uuid.UUID) -> CheckResult:
        config = await self._get(model_id)
        endpoints = (await self.endpoints.of_models([config.id]))[config.id]
        result = await probe(
            await self._client(config, endpoints, agent_id=None, max_retries=0, wait_for_rate=False),
            ModelKind(config.kind),
        )
        config.check_status = CheckStatus.OK if result.ok else CheckStatus.ERROR
        config.check_latency_ms = result.latency_ms
        config.check_error_code = result.error.code if result.error else None
        config.check_error_message = result.error.message if result.error else None
        config.checked_at = utcnow()
        if result.dimension:
            config.dimension = result.dimension
        return result

    async def check_unsaved(self, data: ModelSettings) -> CheckResult:
        await self._validate(data)
        config = ModelConfig(
            id=None,
            tenant_id=self.caller.tenant_id,
            kind=data.kind,
            provider=data.provider,
            model=data.model,
            timeout_seconds=data.timeout_seconds,
        )
        endpoints = [self._endpoint(uuid.uuid4(), e) for e in data.endpoint_list()]
        return await probe(await self._client(config, endpoints, agent_id=None, max_retries=0), data.kind)

    # --- usage --------------------------------------------------------------------------------------------------

    async def usage(
        self, *, group_by: str, since: datetime | None, until: datetime | None, model_id: uuid.UUID | None
    ) -> list[UsageRow]:
        try:  # stored times are UTC: a time whose UTC form is before the year 1 or after 9999 cannot be compared
            since, until = (None if at is None else at.astimezone(UTC) for at in (since, until))
        except OverflowError:
            raise _window_error("`from` and `to` must be dates between the years 1 and 9999 (UTC).", "from") from None
        rows = await UsageRepository(self.session, self.caller.tenant_id).summary(
            group_by=group_by, since=since, until=until, model_id=model_id
        )
        return [
            UsageRow(
                key=str(row["key"]),
                calls=int(row["calls"]),
                errors=int(row["errors"] or 0),
                prompt_tokens=int(row["prompt_tokens"]),
                completion_tokens=int(row["completion_tokens"]),
                avg_latency_ms=round(float(row["avg_latency_ms"] or 0), 2),
                avg_ttft_ms=round(float(row["avg_ttft_ms"]), 2) if row["avg_ttft_ms"] is not None else None,
            )
            for row in rows
        ]

    async def usage_series(
        self,
        *,
        interval: Literal["hour", "day"],
        since: datetime | None,
        until: datetime | None,
        model_id: uuid.UUID | None,
        agent_id: uuid.UUID | None,
    ) -> UsageSeries:
        """Usage per hour or day over a window, with a bucket (zeros) for every interval without calls."""
        start, end, count = usage_window(interval, since, until)
        rows = await UsageRepository(self.session, self.caller.tenant_id).series(
            interval=interval, since=start, until=end, model_id=model_id, agent_id=agent_id
        )
        found = {datetime.fromisoformat(str(row["bucket"])).replace(tzinfo=UTC): row for row in rows}
        step = USAGE_INTERVALS[interval]
        buckets = []
        for index in range(count):
            at = start + index * step
            row = found.get(at)
            buckets.append(
                _bucket(at, row)
                if row is not None
                else UsageBucket(
                    start=at,
                    calls=0,
                    errors=0,
                    prompt_tokens=0,
                    completion_tokens=0,
                    avg_latency_ms=None,
                    p95_latency_ms=None,
                    max_latency_ms=None,
                    avg_ttft_ms=None,
                )
            )
        return UsageSeries(
            interval=interval, start=start, end=end, model_id=model_id, agent_id=agent_id, buckets=buckets
        )


def _bucket(at: datetime, row: dict[str, Any]) -> UsageBucket:
    def ms(value: Any) -> float | None:
        return round(float(value), 2) if value is not None else None

    return UsageBucket(
        start=at,
        calls=int(row["calls"]),
        errors=int(row["errors"] or 0),
        prompt_tokens=int(row["prompt_tokens"]),
        completion_tokens=int(row["completion_tokens"]),
        avg_latency_ms=ms(row["avg_latency_ms"]),
        p95_latency_ms=ms(row["p95_latency_ms"]),
        max_latency_ms=ms(row["max_latency_ms"]),
        avg_ttft_ms=ms(row["avg_ttft_ms"]),
    )


def _languages(data: ModelCreate) -> list[str] | None:
    """The languages given, else a built-in model's own (a remote model's are unknown: every language)."""
    if data.languages is not None:
        return sorted(set(data.languages))
    return local.LANGUAGES.get(data.model) if data.provider == ProviderType.LOCAL else None


def _read(config: ModelConfig, endpoints: list[ModelEndpoint]) -> ModelRead:
    error = (
        CheckError(code=config.check_error_code, message=config.check_error_message or "")
        if config.check_error_code
        else None
    )
    return ModelRead(
        id=config.id,
        name=config.name,
        kind=ModelKind(config.kind),
        provider=ProviderType(config.provider),
        model=config.model,
        endpoints=[EndpointRead(base_url=e.base_url, has_api_key=e.api_key_encrypted is not None) for e in endpoints],
        context_window=config.context_window,
        dimension=config.dimension,
        languages=config.languages,
        accepts_images=bool(config.accepts_images),
        max_concurrency=config.max_concurrency,
        requests_per_minute=config.requests_per_minute,
        timeout_seconds=config.timeout_seconds,
        is_default=config.is_default,
        check=CheckRead(
            status=CheckStatus(config.check_status),
            latency_ms=config.check_latency_ms,
            error=error,
            checked_at=config.checked_at,
        ),
        created_at=config.created_at,
        updated_at=config.updated_at,
    )


async def probe(client: Any, kind: ModelKind) -> CheckResult:
    """One real, tiny call: a one-word completion, an embedding (its size), a rerank of two documents, or the
    transcription of a fifth of a second of silence."""
    started = time.perf_counter()
    dimension: int | None = None
    try:
        if kind in (ModelKind.LLM, ModelKind.VLM):
            await complete(client, [{"role": "user", "content": "Reply with the word OK."}], max_tokens=8)
        elif kind == ModelKind.EMBEDDING:
            vectors, _ = await client.embed(["dimension probe"])
            dimension = len(vectors[0])
        elif kind == ModelKind.STT:
            await client.transcribe(silent_wav(), "probe.wav", "audio/wav")
        else:
            await client.rerank("probe", ["a first document", "a second document"])
    except ProviderError as exc:
        return CheckResult(
            ok=False,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            error=CheckError(code=exc.code.value, message=exc.message),
        )
    return CheckResult(ok=True, latency_ms=round((time.perf_counter() - started) * 1000, 2), dimension=dimension)


def usage_sink(
    engines: Engines,
    tenant_id: uuid.UUID,
    model_id: uuid.UUID | None,
    kind: str,
    agent_id: uuid.UUID | None,
    model_name: str = "",
) -> Any:
    """Record each call in the usage table and in the Prometheus metrics. The row is stored by the process's
    shared writer (one transaction with whatever else is being written at that moment: with many runs at once,
    a transaction per call was a noticeable part of each run's cost); the call returns once it is stored."""

    price = engines.settings.model_prices.get(model_name)

    async def sink(report: CallReport) -> None:
        metrics.observe(tenant_id, model_id, report)
        metrics.observe_agent(agent_id, model_id, report, price)
        if model_id is None:
            return  # an unsaved model's check
        row = {
            "id": uuid.uuid4(),
            "tenant_id": tenant_id,
            "model_config_id": model_id,
            "agent_id": agent_id,
            "kind": kind,
            "operation": report.operation,
            "prompt_tokens": report.usage.prompt_tokens,
            "completion_tokens": report.usage.completion_tokens,
            "latency_ms": round(report.latency_ms, 2),
            "ttft_ms": round(report.ttft_ms, 2) if report.ttft_ms is not None else None,
            "ok": report.error is None,
            "error_code": report.error.value if report.error else None,
            "created_at": utcnow(),
        }
        try:
            await writer_for(engines).store(Write().insert(UsageRecord, row))
        except Exception:
            logger.warning("could not record model usage", exc_info=True)

    return sink


__all__ = ["ErrorCode", "ProviderService", "probe"]
