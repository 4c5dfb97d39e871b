"""Speech input over HTTP (docs/models.md#speech-to-text): a tenant's speech-to-text (`stt`) model, served by the
scripted model server's `/audio/transcriptions`, turns a recording into text; without one the route answers a typed
404; empty, foreign and oversized recordings are refused before any model call; a failing model is a 502 with its
classification; another tenant's model is never used."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.providers import pool
from nexent.providers.speech import silent_wav
from tests.conftest import make_settings, serve_in_process
from tests.support.identity import bearer, invite_and_register
from tests.support.model_server import RunningModelServer, run_model_server
from tests.test_http import assert_problem
from tests.test_runs import new_owner

MAX_BYTES = 4096
WEBM = b"\x1a\x45\xdf\xa3" + b"\x42\x86\x81\x01" + bytes(200)  # an EBML (WebM) header, as MediaRecorder writes


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture(autouse=True)
def _fresh(llm: RunningModelServer) -> Iterator[None]:
    llm.server.reset()
    pool._unhealthy_until.clear()
    yield
    llm.server.api_key = None


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(make_settings(tmp_path, builtin_models=False, speech_max_bytes=MAX_BYTES)) as http:
        yield http


async def transcribe(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes, content_type: str = "audio/webm"
) -> httpx.Response:
    return await client.post(
        "/api/speech/transcriptions", files=[("file", ("recording.webm", data, content_type))], headers=headers
    )


async def add_stt(client: httpx.AsyncClient, headers: dict[str, str], llm: RunningModelServer) -> dict[str, Any]:
    response = await client.post(
        "/api/models",
        json={"name": "Whisper", "kind": "stt", "model": "scripted-stt", "base_url": llm.base_url},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    model: dict[str, Any] = response.json()
    return model


async def test_a_recording_becomes_text_with_the_tenants_model(
    client: httpx.AsyncClient, llm: RunningModelServer
) -> None:
    owner = await new_owner(client, llm, f"speech-{uuid.uuid4().hex[:6]}@example.com")
    headers = bearer(owner["access_token"])
    offered = await client.get("/api/speech", headers=headers)
    assert offered.status_code == 200 and offered.json() == {"transcription": False, "max_bytes": MAX_BYTES}
    assert_problem(await transcribe(client, headers, WEBM), 404, "no_transcription_model")
    assert llm.server.transcriptions == []

    model = await add_stt(client, headers, llm)
    assert model["kind"] == "stt" and model["is_default"] is True
    checked = await client.post(f"/api/models/{model['id']}/check", headers=headers)
    assert checked.status_code == 200 and checked.json()["ok"] is True, checked.text
    probe = llm.server.transcriptions[-1]  # the check sends a fifth of a second of silence
    assert probe["content_type"] == "audio/wav" and probe["size"] == len(silent_wav())
    assert (await client.get("/api/speech", headers=headers)).json()["transcription"] is True

    llm.server.transcription_text = "  How much pressure for espresso?\n"
    answered = await transcribe(client, headers, WEBM)
    assert answered.status_code == 200, answered.text
    assert answered.json() == {"text": "How much pressure for espresso?"}
    received = llm.server.transcriptions[-1]
    assert received == {
        "model": "scripted-stt",
        "file_name": "recording.webm",
        "content_type": "audio/webm",
        "size": len(WEBM),
    }
    # A member (not only whoever manages models) may dictate.
    pair = await invite_and_register(client, owner["access_token"], f"m-{uuid.uuid4().hex[:6]}@example.com")
    assert (await transcribe(client, bearer(pair["access_token"]), silent_wav(0.05), "audio/wav")).status_code == 200

    # Another tenant does not get this tenant's model.
    other = await new_owner(client, llm, f"other-{uuid.uuid4().hex[:6]}@example.com")
    assert_problem(await transcribe(client, bearer(other["access_token"]), WEBM), 404, "no_transcription_model")


async def test_bad_recordings_are_refused_before_any_model_call(
    client: httpx.AsyncClient, llm: RunningModelServer
) -> None:
    owner = await new_owner(client, llm, f"speech-{uuid.uuid4().hex[:6]}@example.com")
    headers = bearer(owner["access_token"])
    await add_stt(client, headers, llm)
    assert_problem(await transcribe(client, headers, b""), 415, "unsupported_audio")
    assert_problem(await transcribe(client, headers, b"Just some text, not audio."), 415, "unsupported_audio")
    assert_problem(await transcribe(client, headers, b"%PDF-1.7 " + bytes(100), "audio/webm"), 415, "unsupported_audio")
    assert_problem(await transcribe(client, headers, WEBM + bytes(MAX_BYTES)), 413, "audio_too_large")
    missing = await client.post("/api/speech/transcriptions", data={"text": "no file"}, headers=headers)
    assert_problem(missing, 422, "validation_error")
    assert llm.server.transcriptions == []
    assert_problem(
        await client.post("/api/speech/transcriptions", files=[("file", ("a.webm", WEBM))]), 401, "unauthorized"
    )

    llm.server.api_key = "sk-only-this"  # the model now refuses the (keyless) call
    failed = assert_problem(await transcribe(client, headers, WEBM), 502, "transcription_failed")
    assert failed["model_error"] == {"code": "auth"}
