"""Traces: a live server exports to an in-process OTLP receiver; one agent run that calls a tool gives one trace
with the HTTP request, the run, its model calls and tool call, and the background job it queued. The trace id is
in `run.started`, in problem documents and in log lines. Off (no `OTEL_*` variable), nothing of the SDK runs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.core.tracing import tracing_requested
from tests.conftest import free_port, make_settings, serve_in_process, wait_for_port
from tests.support.identity import bearer, register
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server
from tests.support.otlp_receiver import KIND_CLIENT, KIND_SERVER, ReceivedSpan, RunningOtlpReceiver, run_otlp_receiver
from tests.test_http import assert_problem
from tests.test_runs import parse_sse

TITLE_JOB = "job runtime.title_conversation"


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture
def receiver() -> Iterator[RunningOtlpReceiver]:
    with run_otlp_receiver() as running:
        yield running


def _environment(data_dir: Path, **extra: str) -> dict[str, str]:
    make_settings(data_dir.parent, data_dir=data_dir)  # the database: a copy of the session's migrated one
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NEXENT_"))}
    env.update(
        {
            "NEXENT_DATA_DIR": str(data_dir),
            "NEXENT_BUILTIN_MODELS": "false",
            "NEXENT_PRIVATE_ENDPOINTS_ALLOW": "127.0.0.1",
            "NEXENT_MEMORY_ENABLED": "false",
            "NEXENT_LOG_LEVEL": "INFO",
            **extra,
        }
    )
    return env


async def _owner_agent(http: httpx.AsyncClient, llm: RunningModelServer) -> tuple[dict[str, str], dict[str, Any]]:
    owner = await register(http, f"tracer-{uuid.uuid4().hex[:6]}@example.com")
    headers = bearer(owner["access_token"])
    model = await http.post(
        "/api/models",
        json={"name": "Scripted", "kind": "llm", "model": "scripted", "base_url": llm.base_url, "timeout_seconds": 10},
        headers=headers,
    )
    assert model.status_code == 201, model.text
    agent = await http.post(
        "/api/agents",
        json={"name": "Calc", "model_id": model.json()["id"], "tools": [{"name": "calculator"}]},
        headers=headers,
    )
    assert agent.status_code == 201, agent.text
    return headers, agent.json()


def _one(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{name}: {len(found)} spans in {sorted(s.name for s in spans)}"
    return found[0]


def _ancestors(span: ReceivedSpan, spans: list[ReceivedSpan]) -> list[str]:
    by_id = {s.span_id: s for s in spans}
    names = []
    current = by_id.get(span.parent_span_id or "")
    while current is not None:
        names.append(current.name)
        current = by_id.get(current.parent_span_id or "")
    return names


async def test_a_run_is_one_trace_from_the_request_to_its_background_job(
    tmp_path: Path, llm: RunningModelServer, receiver: RunningOtlpReceiver
) -> None:
    port = free_port()
    log_path = tmp_path / "server.log"
    env = _environment(
        tmp_path / "data",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "nexent", "serve", "--port", str(port)], env=env, stdout=log, stderr=log
        )
    try:
        await asyncio.to_thread(wait_for_port, port, 90)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            headers, agent = await _owner_agent(http, llm)
            llm.server.enqueue(
                ChatReply.tool_call("calculator", {"expression": "6*7"}),
                ChatReply.text("The answer is 42."),
                ChatReply.text("Multiplying six by seven"),  # the title, written by a background job
            )
            response = await http.post(
                f"/api/agents/{agent['id']}/runs", json={"message": "What is six times seven?"}, headers=headers
            )
            assert response.status_code == 200, response.text
            events = parse_sse(response.text)
            assert events[-1]["type"] == "run.completed"
            started = events[0]
            assert started["type"] == "run.started"
            trace_id = started["data"]["trace_id"]
            assert isinstance(trace_id, str) and len(trace_id) == 32 and int(trace_id, 16)

            # A problem document names the trace of its request, and so does the request's log line.
            bad = await http.post("/api/agents", json={"name": ""}, headers=headers)
            problem = assert_problem(bad, 422, "validation_error")
            problem_trace = problem["trace_id"]
            assert isinstance(problem_trace, str) and len(problem_trace) == 32 and problem_trace != trace_id

        def complete(spans: list[ReceivedSpan]) -> bool:
            names = {s.name for s in spans if s.trace_id == trace_id}
            return TITLE_JOB in names and any(s.trace_id == problem_trace for s in spans)

        spans = await asyncio.to_thread(receiver.receiver.wait_for, complete, timeout=60)
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 30)

    run_trace = [s for s in spans if s.trace_id == trace_id]
    assert {s.service for s in run_trace} == {"nexent-embedded"}
    (request,) = [s for s in run_trace if s.kind == KIND_SERVER and s.parent_span_id is None]
    assert request.attributes["http.route"] == "/api/agents/{agent_id}/runs"
    assert request.attributes.get("http.response.status_code", request.attributes.get("http.status_code")) == 200

    run = _one(run_trace, "run")
    assert run.attributes["nexent.agent.id"] == agent["id"]
    assert run.attributes["nexent.run.id"] == started["data"]["run_id"]
    assert run.attributes["nexent.run.status"] == "completed"
    assert request.name in _ancestors(run, run_trace)

    # Two model calls in the run (the tool call, then the answer), one in the title job.
    chats = [s for s in run_trace if s.name == "chat scripted"]
    assert len(chats) == 3, sorted(s.name for s in run_trace)
    for chat in chats:
        assert chat.kind == KIND_CLIENT
        assert chat.attributes["gen_ai.request.model"] == "scripted"
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.usage.input_tokens"] > 0
        assert chat.attributes["gen_ai.usage.output_tokens"] > 0
        assert chat.attributes["nexent.model.attempts"] == 1
        assert chat.end_ns > chat.start_ns
    in_job = [c for c in chats if TITLE_JOB in _ancestors(c, run_trace)]
    assert len(in_job) == 1 and all("run" in _ancestors(c, run_trace) for c in chats)

    tool = _one(run_trace, "tool calculator")
    assert tool.attributes["nexent.tool.name"] == "calculator"
    assert "run" in _ancestors(tool, run_trace)

    job = _one(run_trace, TITLE_JOB)
    assert job.attributes["nexent.job.name"] == "runtime.title_conversation"
    assert "run" in _ancestors(job, run_trace)

    # The problem's trace: the refused request's server span.
    problem_spans = [s for s in spans if s.trace_id == problem_trace]
    (refused,) = [s for s in problem_spans if s.kind == KIND_SERVER]
    assert refused.attributes["http.route"] == "/api/agents"

    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "nexent.access" and line.get("status") == 422]
    assert access and access[0]["trace_id"] == problem_trace and len(access[0]["span_id"]) == 16
    assert any(line.get("trace_id") == trace_id for line in lines)


async def test_model_retries_are_events_of_the_model_call_span(
    tmp_path: Path, llm: RunningModelServer, receiver: RunningOtlpReceiver
) -> None:
    port = free_port()
    env = _environment(tmp_path / "data", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="100")
    process = subprocess.Popen(
        [sys.executable, "-m", "nexent", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await asyncio.to_thread(wait_for_port, port, 90)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            headers, agent = await _owner_agent(http, llm)
            llm.server.enqueue(
                ChatReply.error(503, "Busy"),
                ChatReply.text("Fine after all."),
                ChatReply.text("A title"),
            )
            response = await http.post(f"/api/agents/{agent['id']}/runs", json={"message": "Hello"}, headers=headers)
            events = parse_sse(response.text)
            assert events[-1]["type"] == "run.completed", events[-1]
            trace_id = events[0]["data"]["trace_id"]

        def answered(spans: list[ReceivedSpan]) -> bool:
            return any(s.trace_id == trace_id and s.name == "run" for s in spans)

        spans = await asyncio.to_thread(receiver.receiver.wait_for, answered, timeout=60)
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 30)
    run_trace = [s for s in spans if s.trace_id == trace_id]
    retried = [s for s in run_trace if s.name == "chat scripted" and s.events]
    assert len(retried) == 1
    ((event_name, attributes),) = retried[0].events
    assert event_name == "retry" and attributes["attempt"] == 1 and attributes["error.type"] == "server_error"
    assert retried[0].attributes["nexent.model.attempts"] == 2


def test_the_otel_variables_decide_whether_tracing_is_on() -> None:
    assert not tracing_requested({})
    assert tracing_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing_requested({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert tracing_requested({"OTEL_TRACES_EXPORTER": "otlp"})
    assert tracing_requested({"OTEL_TRACES_EXPORTER": "console"})
    assert not tracing_requested({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert not tracing_requested({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})


_OFF_PROBE = """
import asyncio, sys, threading
from pathlib import Path
import httpx
from nexent.core import tracing
from nexent.server import create_app
from nexent.settings import Settings

async def main() -> None:
    settings = Settings(data_dir=Path(sys.argv[1]))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            problem = (await http.post("/api/auth/login", json={})).json()
    threads = sorted(t.name for t in threading.enumerate())
    sdk = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter")))
    print(tracing.tracing_enabled(), "trace_id" in problem, sdk, [t for t in threads if "Otel" in t or "Span" in t])

asyncio.run(main())
"""


def test_off_by_default_no_sdk_no_exporter_thread_no_trace_ids(tmp_path: Path) -> None:
    env = _environment(tmp_path / "data")
    done = subprocess.run(
        [sys.executable, "-c", _OFF_PROBE, str(tmp_path / "data")], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False False [] []"


async def test_off_run_started_has_no_trace_id(tmp_path: Path, llm: RunningModelServer) -> None:
    async with serve_in_process(make_settings(tmp_path, builtin_models=False)) as http:
        headers, agent = await _owner_agent(http, llm)
        llm.server.enqueue(ChatReply.text("Hi."), ChatReply.text("A title"))
        response = await http.post(f"/api/agents/{agent['id']}/runs", json={"message": "Hello"}, headers=headers)
        events = parse_sse(response.text)
        assert events[0]["type"] == "run.started" and events[0]["data"]["trace_id"] is None
