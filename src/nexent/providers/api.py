"""Model routes: `/api/models` (configurations and checks), `/api/usage` and `/api/speech` (speech input)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, Response, UploadFile, status
from pydantic import AwareDatetime

from nexent.core.openapi import problems
from nexent.core.pagination import Page, PageParamsDep
from nexent.engines.deps import EnginesDep, SessionDep
from nexent.identity.auth import Caller, CurrentCaller, RequirePermission
from nexent.identity.permissions import Permission
from nexent.providers.models import ModelKind
from nexent.providers.schemas import (
    CheckResult,
    ModelCreate,
    ModelRead,
    ModelSettings,
    ModelUpdate,
    SpeechSettings,
    Transcription,
    UsageRow,
    UsageSeries,
)
from nexent.providers.service import ProviderService

router = APIRouter(prefix="/api/models", tags=["models"])
ManageModels = Annotated[Caller, RequirePermission(Permission.MANAGE_MODELS)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add a model configuration.",
    responses=problems(s400="The endpoint or the built-in model is not allowed or does not exist."),
)
async def create_model(body: ModelCreate, caller: ManageModels, session: SessionDep, engines: EnginesDep) -> ModelRead:
    return await ProviderService(session, engines, caller).create(body)


@router.get("", summary="Models of the tenant (API keys are never returned).")
async def list_models(
    caller: CurrentCaller,
    session: SessionDep,
    engines: EnginesDep,
    page: PageParamsDep,
    kind: Annotated[ModelKind | None, Query(description="Only models of this kind.")] = None,
) -> Page[ModelRead]:
    return await ProviderService(session, engines, caller).list_models(page, kind=kind)


@router.post(
    "/check",
    summary="Check settings before saving them: one real, tiny call.",
    responses=problems(s400="The endpoint or the built-in model is not allowed or does not exist."),
)
async def check_unsaved_model(
    body: ModelSettings, caller: ManageModels, session: SessionDep, engines: EnginesDep
) -> CheckResult:
    return await ProviderService(session, engines, caller).check_unsaved(body)


@router.get("/{model_id}", summary="One model.")
async def get_model(model_id: uuid.UUID, caller: CurrentCaller, session: SessionDep, engines: EnginesDep) -> ModelRead:
    return await ProviderService(session, engines, caller).get(model_id)


@router.patch(
    "/{model_id}",
    summary="Change a model; an endpoint given without api_key keeps its key.",
    responses=problems(s400="The endpoint or the built-in model is not allowed or does not exist."),
)
async def update_model(
    model_id: uuid.UUID, body: ModelUpdate, caller: ManageModels, session: SessionDep, engines: EnginesDep
) -> ModelRead:
    return await ProviderService(session, engines, caller).update(model_id, body)


@router.delete(
    "/{model_id}",
    summary="Delete a model.",
    status_code=204,
    response_class=Response,
    responses=problems(s409="A published agent version uses the model (`model_in_use`)."),
)
async def delete_model(model_id: uuid.UUID, caller: ManageModels, session: SessionDep, engines: EnginesDep) -> None:
    await ProviderService(session, engines, caller).delete(model_id)


@router.post(
    "/{model_id}/check",
    summary="Check a saved model with one real call; the status is stored.",
    responses=problems(s400="The built-in model is no longer installed."),
)
async def check_model(
    model_id: uuid.UUID, caller: ManageModels, session: SessionDep, engines: EnginesDep
) -> CheckResult:
    return await ProviderService(session, engines, caller).check(model_id)


usage_router = APIRouter(prefix="/api/usage", tags=["models"])


@usage_router.get("", summary="Model usage: calls, errors, tokens and latency, grouped by model, agent or day.")
async def read_usage(
    caller: Annotated[Caller, RequirePermission(Permission.MANAGE_MODELS)],
    session: SessionDep,
    engines: EnginesDep,
    group_by: Literal["model", "agent", "day"] = "model",
    since: Annotated[AwareDatetime | None, Query(alias="from", description="Start (inclusive), ISO 8601.")] = None,
    until: Annotated[AwareDatetime | None, Query(alias="to", description="End (exclusive), ISO 8601.")] = None,
    model_id: uuid.UUID | None = None,
) -> list[UsageRow]:
    return await ProviderService(session, engines, caller).usage(
        group_by=group_by, since=since, until=until, model_id=model_id
    )


@usage_router.get(
    "/series",
    summary="Model usage over time, for charts: calls, errors, tokens and latency (average, p95, max) per hour or day.",
    responses=problems(s422="The window is reversed, out of range or holds more than 1,000 buckets."),
)
async def read_usage_series(
    caller: Annotated[Caller, RequirePermission(Permission.MANAGE_MODELS)],
    session: SessionDep,
    engines: EnginesDep,
    interval: Annotated[
        Literal["hour", "day"], Query(description="The size of a bucket (UTC hours or days).")
    ] = "hour",
    since: Annotated[
        AwareDatetime | None,
        Query(
            alias="from",
            description="Start (inclusive, rounded down to the interval); default: 24 hours or 30 days before `to`.",
        ),
    ] = None,
    until: Annotated[
        AwareDatetime | None, Query(alias="to", description="End (exclusive), ISO 8601; default: now.")
    ] = None,
    model_id: Annotated[uuid.UUID | None, Query(description="Only this model's calls.")] = None,
    agent_id: Annotated[uuid.UUID | None, Query(description="Only the calls this agent's runs made.")] = None,
) -> UsageSeries:
    return await ProviderService(session, engines, caller).usage_series(
        interval=interval, since=since, until=until, model_id=model_id, agent_id=agent_id
    )


speech_router = APIRouter(prefix="/api/speech", tags=["speech"])


@speech_router.get("", summary="The speech input the tenant offers (whether a speech-to-text model is configured).")
async def get_speech(caller: CurrentCaller, session: SessionDep, engines: EnginesDep) -> SpeechSettings:
    return await ProviderService(session, engines, caller).speech()


@speech_router.post(
    "/transcriptions",
    summary="Transcribe a recording with the tenant's speech-to-text model.",
    responses=problems(
        s404="The tenant has no speech-to-text (`stt`) model (`no_transcription_model`).",
        s413="The recording is larger than `NEXENT_SPEECH_MAX_BYTES` (`audio_too_large`).",
        s415="The recording is empty or not audio in a known format (`unsupported_audio`).",
        s502="The speech-to-text model failed (`transcription_failed`, with `model_error`).",
    ),
)
async def transcribe(
    file: Annotated[UploadFile, File(description="The recording: WebM, Ogg, WAV, MP3, MP4/M4A or FLAC.")],
    caller: CurrentCaller,
    session: SessionDep,
    engines: EnginesDep,
) -> Transcription:
    audio = await file.read(engines.settings.speech_max_bytes + 1)
    return await ProviderService(session, engines, caller).transcribe(audio)


routers = [router, usage_router, speech_router]
