"""Agent runs end to end over HTTP, against the scripted model server: streamed events, tools, sub-agents,
replay, stop, failures, conversations."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.providers import pool
from nexent.runtime.timeline import LoggedEvent, build_timeline
from tests.conftest import make_settings, serve_in_process, wait_until
from tests.support.identity import bearer, invite_and_register, register
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server
from tests.test_http import OPERATOR, assert_problem


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture(autouse=True)
def _fresh(llm: RunningModelServer) -> None:
    llm.server.reset()
    pool._unhealthy_until.clear()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(make_settings(tmp_path, builtin_models=False)) as http:
        yield http


async def new_owner(client: httpx.AsyncClient, llm: RunningModelServer, email: str) -> dict[str, Any]:
    """A tenant owner whose tenant has an LLM served by the scripted model server."""
    pair = await register(client, email)
    model = await client.post(
        "/api/models",
        json={"name": "Scripted", "kind": "llm", "model": "scripted", "base_url": llm.base_url, "timeout_seconds": 10},
        headers=bearer(pair["access_token"]),
    )
    assert model.status_code == 201, model.text
    return {**pair, "model_id": model.json()["id"]}


@pytest.fixture
async def owner(client: httpx.AsyncClient, llm: RunningModelServer) -> dict[str, Any]:
    return await new_owner(client, llm, f"runner-{uuid.uuid4().hex[:6]}@example.com")


async def make_agent(client: httpx.AsyncClient, owner: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/agents",
        json={"name": f"Agent {uuid.uuid4().hex[:6]}", "model_id": owner["model_id"], **body},
        headers=bearer(owner["access_token"]),
    )
    assert response.status_code == 201, response.text
    agent: dict[str, Any] = response.json()
    return agent


def parse_sse(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":") and ": " in line)
        if "event" in fields:
            events.append({"id": int(fields["id"]), "type": fields["event"], "data": json.loads(fields["data"])})
    return events


async def run(
    client: httpx.AsyncClient, owner: dict[str, Any], agent_id: str, message: str, **extra: Any
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    response = await client.post(
        f"/api/agents/{agent_id}/runs", json={"message": message, **extra}, headers=bearer(owner["access_token"])
    )
    return response, parse_sse(response.text) if response.status_code == 200 else []


async def test_a_tool_calling_run_end_to_end(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    agent = await make_agent(client, owner, tools=[{"name": "calculator"}], instructions={"duty": "Do maths."})
    llm.server.enqueue(
        ChatReply.tool_call("calculator", {"expression": "6*7"}),
        ChatReply.text("The answer is 42."),
        ChatReply.text('"Six times seven."'),  # the title the model writes afterwards
    )
    response, events = await run(client, owner, agent["id"], "What is six times seven?")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    types = [e["type"] for e in events]
    assert types[0] == "run.started" and types[-1] == "run.completed"
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    call = next(e for e in events if e["type"] == "tool.call")
    assert call["data"]["name"] == "calculator" and call["data"]["arguments"] == {"expression": "6*7"}
    result = next(e for e in events if e["type"] == "tool.result")
    assert "42" in result["data"]["output"]
    assert events[-1]["data"]["answer"] == "The answer is 42."
    # The model saw the instructions and the tool.
    first_request = llm.server.chat_requests[0]
    assert "Do maths." in first_request.messages[0]["content"]
    assert any(t["function"]["name"] == "calculator" for t in first_request.tools or [])

    run_id = response.headers["x-run-id"]
    stored = (await client.get(f"/api/runs/{run_id}", headers=bearer(owner["access_token"]))).json()
    assert stored["status"] == "completed" and stored["final_answer"] == "The answer is 42."
    conversation = (
        await client.get(
            f"/api/conversations/{response.headers['x-conversation-id']}", headers=bearer(owner["access_token"])
        )
    ).json()
    assert [(m["role"], m["content"]) for m in conversation["messages"]] == [
        ("user", "What is six times seven?"),
        ("assistant", "The answer is 42."),
    ]
    assert conversation["messages"][1]["tool_calls"][0]["name"] == "calculator"

    async def titled() -> bool:
        detail = await client.get(
            f"/api/conversations/{response.headers['x-conversation-id']}", headers=bearer(owner["access_token"])
        )
        return bool(detail.json()["title"] == "Six times seven")

    await wait_until(titled, timeout=20)
    assert "Write a title" in json.dumps(llm.server.chat_requests[-1].messages)

    replay = await client.get(f"/api/runs/{run_id}/events?after=2", headers=bearer(owner["access_token"]))
    assert [e["id"] for e in parse_sse(replay.text)] == [e["id"] for e in events[2:]]
    resumed = await client.get(
        f"/api/runs/{run_id}/events", headers={**bearer(owner["access_token"]), "Last-Event-ID": str(len(events) - 1)}
    )
    assert [e["type"] for e in parse_sse(resumed.text)] == ["run.completed"]


async def test_a_plain_text_reply_is_the_final_answer(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    agent = await make_agent(client, owner)
    llm.server.enqueue(ChatReply.text("Hello there!"))
    _, events = await run(client, owner, agent["id"], "Hi")
    assert events[-1]["type"] == "run.completed" and events[-1]["data"]["answer"] == "Hello there!"
    agent_requests = [r for r in llm.server.chat_requests if "Write a title" not in json.dumps(r.messages)]
    assert len(agent_requests) == 1


async def test_conversation_history_is_fed_back(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    agent = await make_agent(client, owner)
    llm.server.enqueue(ChatReply.text("Nice to meet you, Ada."), ChatReply.text("Your name is Ada."))
    first, _ = await run(client, owner, agent["id"], "My name is Ada.")
    conversation_id = first.headers["x-conversation-id"]
    second, _ = await run(client, owner, agent["id"], "What is my name?", conversation_id=conversation_id)
    assert second.headers["x-conversation-id"] == conversation_id
    prompt = next(
        json.dumps(r.messages) for r in llm.server.chat_requests if "What is my name?" in json.dumps(r.messages)
    )
    assert "My name is Ada." in prompt and "Nice to meet you, Ada." in prompt
    listed = (await client.get("/api/conversations", headers=bearer(owner["access_token"]))).json()
    assert [c["id"] for c in listed["items"]] == [conversation_id]


async def test_sub_agent_events_are_nested(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    helper = await make_agent(client, owner, name="Researcher", description="Looks things up.")
    boss = await make_agent(client, owner, name="Boss", sub_agent_ids=[helper["id"]])
    llm.server.enqueue(
        ChatReply.tool_call("researcher", {"task": "Find the capital of France."}),
        ChatReply.text("Paris is the capital."),
        ChatReply.text("The capital of France is Paris."),
    )
    _, events = await run(client, owner, boss["id"], "Capital of France?")
    call = next(e for e in events if e["type"] == "tool.call" and e["data"]["name"] == "researcher")
    nested = [e for e in events if e["data"].get("parent_call_id") == call["data"]["call_id"]]
    assert nested and all(e["data"]["agent"] == "researcher" for e in nested)
    assert events[-1]["type"] == "run.completed" and "Paris" in events[-1]["data"]["answer"]


async def test_a_sub_agent_thinks_with_its_own_model(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    headers = bearer(owner["access_token"])
    second = await client.post(
        "/api/models",
        json={"name": "Sub", "kind": "llm", "model": "scripted-sub", "base_url": llm.base_url, "timeout_seconds": 10},
        headers=headers,
    )
    assert second.status_code == 201, second.text
    helper = await make_agent(client, owner, name="Researcher", model_id=second.json()["id"])
    boss = await make_agent(client, owner, name="Boss", sub_agent_ids=[helper["id"]])
    llm.server.enqueue(
        ChatReply.tool_call("researcher", {"task": "Find the capital of France."}),
        ChatReply.text("The capital of France is Paris."),
        ChatReply.text("Capital"),  # the title
        model="scripted",
    )
    llm.server.enqueue(ChatReply.text("Paris is the capital."), model="scripted-sub")
    _, events = await run(client, owner, boss["id"], "Capital of France?")
    assert events[-1]["type"] == "run.completed" and "Paris" in events[-1]["data"]["answer"]
    nested = [e for e in events if e["data"].get("agent") == "researcher"]
    assert any(e["type"] == "agent.completed" and e["data"]["answer"] == "Paris is the capital." for e in nested)
    # The sub-agent's request went to its own model, the boss's to the boss's.
    sub_requests = [r for r in llm.server.chat_requests if r.model == "scripted-sub"]
    assert len(sub_requests) == 1 and "Find the capital of France." in json.dumps(sub_requests[0].messages)
    boss_requests = [r for r in llm.server.chat_requests if r.model == "scripted"]
    assert len(boss_requests) >= 2
    assert all("Find the capital of France." not in r.messages[0]["content"] for r in boss_requests)
    # The run's usage counts both models.
    usage = events[-1]["data"]["usage"]
    run_id = events[0]["data"]["run_id"]
    stored = (await client.get(f"/api/runs/{run_id}", headers=headers)).json()
    assert stored["usage"] == usage and usage["input_tokens"] > 0
    sub_usage = next(e for e in nested if e["type"] == "agent.completed")["data"]["usage"]
    assert usage["input_tokens"] > sub_usage["input_tokens"] > 0


async def _run_metrics(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = (await client.get("/metrics", headers=OPERATOR)).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("nexent_run")
        for sample in family.samples
    }


async def test_runs_are_measured(client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer) -> None:
    before = await _run_metrics(client)
    for _ in range(6):
        llm.server.enqueue(ChatReply.error(401, "bad key"))
    _, events = await run(client, owner, (await make_agent(client, owner, max_steps=2))["id"], "Hello?")
    assert events[-1]["type"] == "run.failed"
    llm.server.reset()
    llm.server.enqueue(ChatReply.text("Hello to you."))  # (the title job afterwards gets an echo)
    _, events = await run(client, owner, (await make_agent(client, owner))["id"], "Hello")
    assert events[-1]["type"] == "run.completed"

    def grew(after: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    async def both_ended() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        after = await _run_metrics(client)
        executing = after[("nexent_runs_in_flight", (("state", "executing"),))]
        ended = [grew(after, "nexent_runs_finished_total", outcome=o) for o in ("completed", "failed")]
        return after if ended == [1, 1] and executing == 0 else None

    after = await wait_until(both_ended, timeout=10, interval=0.05)
    assert grew(after, "nexent_runs_started_total") == 2
    assert grew(after, "nexent_runs_finished_total", outcome="stopped") == 0
    assert grew(after, "nexent_run_duration_seconds_count", outcome="completed") == 1
    assert grew(after, "nexent_run_duration_seconds_sum", outcome="completed") > 0
    assert grew(after, "nexent_run_time_to_first_event_seconds_count") == 2
    assert after[("nexent_runs_in_flight", (("state", "queued"),))] == 0


async def test_model_failures_end_the_run_with_run_failed(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    agent = await make_agent(client, owner, max_steps=2)
    for _ in range(6):
        llm.server.enqueue(ChatReply.error(401, "bad key"))
    response, events = await run(client, owner, agent["id"], "Hello?")
    assert events[-1]["type"] == "run.failed" and events[-1]["data"]["code"] == "agent_failed"
    stored = (
        await client.get(f"/api/runs/{response.headers['x-run-id']}", headers=bearer(owner["access_token"]))
    ).json()
    assert stored["status"] == "failed" and stored["error_message"]


async def test_garbage_from_the_model_never_hangs_the_stream(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    agent = await make_agent(client, owner, max_steps=2)
    for _ in range(6):
        llm.server.enqueue(ChatReply.invalid_json())
    _, events = await asyncio.wait_for(run(client, owner, agent["id"], "Hello?"), timeout=60)
    assert events[-1]["type"] in ("run.failed", "run.completed")


async def test_a_run_can_be_stopped(client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer) -> None:
    agent = await make_agent(client, owner)
    llm.server.enqueue(ChatReply.text("word " * 400).paced(chunk_size=5, chunk_delay=0.02))
    headers = bearer(owner["access_token"])

    async def start() -> tuple[httpx.Response, list[dict[str, Any]]]:
        return await run(client, owner, agent["id"], "Talk for a long time.")

    runner = asyncio.create_task(start())
    await llm.server.await_in_flight(1, timeout=10)

    async def conversations() -> list[dict[str, Any]]:
        # The model is called while the run's record is being committed: wait for the record.
        items: list[dict[str, Any]] = (await client.get("/api/conversations", headers=headers)).json()["items"]
        return items

    runs = await wait_until(conversations, timeout=10, interval=0.02)
    detail = (await client.get(f"/api/conversations/{runs[0]['id']}", headers=headers)).json()
    run_id = detail["messages"][0]["run_id"]
    stopped = await client.post(f"/api/runs/{run_id}/stop", headers=headers)
    assert stopped.status_code == 202
    _, events = await asyncio.wait_for(runner, timeout=10)
    assert events[-1]["type"] == "run.stopped"
    assert (await client.get(f"/api/runs/{run_id}", headers=headers)).json()["status"] == "stopped"


async def test_a_runs_timeline_times_its_model_calls_and_tool_calls(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    helper = await make_agent(client, owner, name="Researcher", description="Looks things up.")
    boss = await make_agent(client, owner, name="Boss", sub_agent_ids=[helper["id"]])
    llm.server.enqueue(
        ChatReply.tool_call("researcher", {"task": "Find the capital of France."}).paced(delay=0.3),
        ChatReply.text("Paris is the capital.").paced(delay=0.4),  # the sub-agent's answer: the call's time
        ChatReply.text("The capital of France is Paris."),
    )
    response, events = await run(client, owner, boss["id"], "Capital of France?")
    assert events[-1]["type"] == "run.completed"
    headers = bearer(owner["access_token"])
    timeline = (await client.get(f"/api/runs/{response.headers['x-run-id']}/timeline", headers=headers)).json()

    call = next(e["data"] for e in events if e["type"] == "tool.call")
    steps = timeline["steps"]
    # In the order the steps ended: the sub-agent's step (under the call), then the two steps of the run's agent.
    assert [(s["agent"], s["parent_call_id"], s["step"]) for s in steps] == [
        ("researcher", call["call_id"], 1),
        (call["agent"], None, 1),
        (call["agent"], None, 2),
    ]
    inner, calling, answering = steps
    (timed,) = calling["tool_calls"]
    assert timed["call_id"] == call["call_id"] and timed["name"] == "researcher" and timed["kind"] == "tool"
    assert timed["arguments"] == {"task": "Find the capital of France."} and "Paris" in str(timed["output"])
    # The call lasted as long as the sub-agent's model took, at least, and no longer than its step (the times are
    # when the events were logged: a few milliseconds late, hence the margins below).
    assert 0.35 <= timed["duration"] <= calling["duration"]
    assert timed["started_at"] < timed["finished_at"] <= calling["finished_at"]
    # Each step opens with its model call: its time (the scripted delay) and the step's tokens.
    step_events = [e["data"] for e in events if e["type"] == "step.completed"]
    assert [s["usage"] for s in steps] == [e["usage"] for e in step_events]
    assert calling["model_call"]["usage"] == calling["usage"] and calling["usage"]["input_tokens"] > 0
    assert 0.25 <= calling["model_call"]["duration"] < 0.3 + timed["duration"]
    assert calling["model_call"]["finished_at"] <= timed["started_at"]
    assert 0.35 <= inner["model_call"]["duration"] <= inner["duration"]
    assert answering["tool_calls"] == [] and answering["is_final_answer"] is True
    assert answering["model_call"]["finished_at"] == answering["finished_at"]
    assert timeline["open_tool_calls"] == []
    assert timeline["started_at"] <= calling["started_at"] and timeline["finished_at"] >= answering["finished_at"]

    # Someone else's run has no timeline for them.
    stranger = await register(client, "stranger-timeline@example.com")
    assert_problem(
        await client.get(
            f"/api/runs/{response.headers['x-run-id']}/timeline", headers=bearer(stranger["access_token"])
        ),
        404,
        "run_not_found",
    )


def test_a_timeline_of_a_run_under_way_keeps_its_unanswered_calls_open() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)

    def at(seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    run_id = uuid.uuid4()
    events = [
        LoggedEvent("run.started", {"run_id": str(run_id), "agent_id": "a"}, at(0)),
        LoggedEvent("code", {"agent": "main", "call_id": "c1", "code": "print(1)"}, at(1.5)),
        LoggedEvent(
            "tool.result", {"agent": "main", "call_id": "c1", "name": "python_interpreter", "output": "1"}, at(2)
        ),
        # A planning step has no duration of its own: it starts when the agent's previous step ended.
        LoggedEvent("step.completed", {"agent": "main", "kind": "action", "step": 1, "duration": 2.0}, at(2)),
        LoggedEvent(
            "step.completed",
            {"agent": "main", "kind": "planning", "usage": {"input_tokens": 5, "output_tokens": 2}},
            at(3),
        ),
        LoggedEvent(
            "tool.call", {"agent": "main", "call_id": "t1", "name": "web_search", "arguments": {"q": "x"}}, at(4)
        ),
    ]
    timeline = build_timeline(run_id, events)
    code, planning = timeline.steps
    assert code.started_at == at(0) and code.model_call.duration == 1.5 and code.tool_calls[0].kind == "code"
    assert code.tool_calls[0].name == "python_interpreter" and code.tool_calls[0].duration == 0.5
    assert planning.started_at == at(2) and planning.duration == 1.0 and planning.model_call.usage is not None
    assert timeline.finished_at is None
    (open_call,) = timeline.open_tool_calls
    assert open_call.call_id == "t1" and open_call.finished_at is None and open_call.duration is None


async def test_runs_and_conversations_are_private(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    agent = await make_agent(client, owner)
    response, _ = await run(client, owner, agent["id"], "Secret question")
    stranger = await register(client, "stranger-runs@example.com")
    headers = bearer(stranger["access_token"])
    assert_problem(await client.get(f"/api/runs/{response.headers['x-run-id']}", headers=headers), 404, "run_not_found")
    assert_problem(
        await client.get(f"/api/conversations/{response.headers['x-conversation-id']}", headers=headers),
        404,
        "conversation_not_found",
    )
    assert_problem(
        await client.post(f"/api/agents/{agent['id']}/runs", json={"message": "x"}, headers=headers),
        404,
        "agent_not_found",
    )


async def test_bad_run_requests(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    agent = await make_agent(client, owner)
    headers = bearer(owner["access_token"])
    assert_problem(
        await client.post(f"/api/agents/{agent['id']}/runs", json={"message": ""}, headers=headers),
        422,
        "validation_error",
    )
    missing = await client.post(
        f"/api/agents/{agent['id']}/runs", json={"message": "x", "conversation_id": str(uuid.uuid4())}, headers=headers
    )
    assert_problem(missing, 404, "conversation_not_found")


async def test_a_client_that_goes_away_does_not_stop_the_run(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    agent = await make_agent(client, owner)
    llm.server.enqueue(ChatReply.text("A complete answer, saved although nobody listened.").paced(chunk_delay=0.05))
    headers = bearer(owner["access_token"])
    async with client.stream(
        "POST", f"/api/agents/{agent['id']}/runs", json={"message": "Hi"}, headers=headers
    ) as live:
        run_id = live.headers["x-run-id"]
        async for line in live.aiter_lines():
            if line.startswith("event: run.started"):
                break  # the client disconnects here

    async def finished() -> dict[str, Any] | None:
        state: dict[str, Any] = (await client.get(f"/api/runs/{run_id}", headers=headers)).json()
        return state if state["status"] == "completed" else None

    state = await wait_until(finished, timeout=20)
    assert state["final_answer"] == "A complete answer, saved although nobody listened."


async def test_a_full_platform_answers_429(tmp_path: Path, llm: RunningModelServer) -> None:
    settings = make_settings(tmp_path, builtin_models=False, max_concurrent_runs=1, max_queued_runs=0)
    async with serve_in_process(settings) as client:
        busy = await new_owner(client, llm, "busy@example.com")
        headers = bearer(busy["access_token"])
        agent = await make_agent(client, busy, name="Busy")
        llm.server.enqueue(ChatReply.text("slow").paced(delay=1.0))
        first = asyncio.create_task(run(client, busy, agent["id"], "one"))
        await llm.server.await_in_flight(1, timeout=10)
        second = await client.post(f"/api/agents/{agent['id']}/runs", json={"message": "two"}, headers=headers)
        body = assert_problem(second, 429, "too_many_runs")
        assert second.headers["retry-after"] and "try again" in str(body["detail"])
        assert (await first)[0].status_code == 200


async def test_a_model_that_times_out_fails_the_run(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    headers = bearer(owner["access_token"])
    slow = await client.post(
        "/api/models",
        json={"name": "Slow", "kind": "llm", "model": "slow", "base_url": llm.base_url, "timeout_seconds": 0.5},
        headers=headers,
    )
    agent = await make_agent(client, owner, model_id=slow.json()["id"], max_steps=1)
    for _ in range(8):
        llm.server.enqueue(ChatReply.text("too late").paced(delay=2.0))
    response, events = await asyncio.wait_for(run(client, owner, agent["id"], "Hello?"), timeout=60)
    assert events[-1]["type"] == "run.failed"
    assert "timeout" in events[-1]["data"]["message"].lower() or "time" in events[-1]["data"]["message"].lower()
    stored = (await client.get(f"/api/runs/{response.headers['x-run-id']}", headers=headers)).json()
    assert stored["status"] == "failed"


async def test_a_code_run_end_to_end_in_the_sandbox(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    agent = await make_agent(client, owner, agent_type="code", tools=[{"name": "calculator"}], max_steps=4)
    llm.server.enqueue(
        ChatReply.text("Thought: look around.\n<code>\nimport os\nprint(os.environ)\n</code>"),
        ChatReply.text(
            "Thought: compute.\n<code>\nresult = calculator(expression='6*7')\nfinal_answer(result)\n</code>"
        ),
    )
    _, events = await run(client, owner, agent["id"], "What is 6*7?")
    codes = [e["data"]["code"] for e in events if e["type"] == "code"]
    assert len(codes) == 2 and "import os" in codes[0]
    failed_step = next(e for e in events if e["type"] == "step.completed")
    assert "not allowed" in (failed_step["data"]["error"] or "")
    assert events[-1]["type"] == "run.completed" and "42" in str(events[-1]["data"]["answer"])
    assert "NEXENT" not in json.dumps(events)  # the server's environment never reached the code


async def test_older_turns_are_summarised_when_the_window_overflows(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    headers = bearer(owner["access_token"])
    small = await client.post(
        "/api/models",
        json={"name": "Small", "kind": "llm", "model": "small", "base_url": llm.base_url, "context_window": 256},
        headers=headers,
    )
    agent = await make_agent(client, owner, model_id=small.json()["id"])

    def respond(request: Any) -> ChatReply:
        prompt = json.dumps(request.messages)
        if "Summarise the conversation" in prompt:
            return ChatReply.text("The user is Ada, a mathematician who likes engines.")
        if "Write a title" in prompt:
            return ChatReply.text("About Ada")
        return ChatReply.text("Noted. " + "More detail. " * 30)

    llm.server.responder = respond
    try:
        first, _ = await run(client, owner, agent["id"], "My name is Ada and I build analytical engines.")
        conversation_id = first.headers["x-conversation-id"]
        for question in ("Tell me about engines.", "And about looms?", "What is my name?"):
            await run(client, owner, agent["id"], question, conversation_id=conversation_id)
    finally:
        llm.server.responder = None
    last = next(r for r in reversed(llm.server.chat_requests) if "What is my name?" in json.dumps(r.messages))
    assert "The user is Ada" in json.dumps(last.messages)
    assert "My name is Ada" not in json.dumps(last.messages)  # the old turn itself no longer fits


async def test_runs_cut_off_by_a_restart_end_as_interrupted(tmp_path: Path, llm: RunningModelServer) -> None:
    settings = make_settings(tmp_path, builtin_models=False)
    async with serve_in_process(settings) as client:
        restarting = await new_owner(client, llm, "restart@example.com")
        headers = bearer(restarting["access_token"])
        agent = await make_agent(client, restarting, name="Slow")
        llm.server.enqueue(ChatReply.text("never finished").paced(delay=5.0))
        started = asyncio.create_task(run(client, restarting, agent["id"], "hi"))
        await llm.server.await_in_flight(1, timeout=10)

        async def listed() -> list[dict[str, Any]]:
            # The model is called while the run's record is being committed: wait for the record.
            items: list[dict[str, Any]] = (await client.get("/api/runs", headers=headers)).json()["items"]
            return items

        run_id = (await wait_until(listed, timeout=10, interval=0.02))[0]["id"]
        started.cancel()
    # The process went away mid-run; it starts again on the same data.
    async with serve_in_process(settings) as client:
        state = (await client.get(f"/api/runs/{run_id}", headers=headers)).json()
        assert (state["status"], state["error_code"]) == ("failed", "interrupted")
        events = parse_sse((await client.get(f"/api/runs/{run_id}/events", headers=headers)).text)
        assert events[-1]["type"] == "run.failed" and events[-1]["data"]["code"] == "interrupted"
        assert [e["id"] for e in events] == list(range(1, len(events) + 1))


# --- the runtime's own pieces ------------------------------------------------------------------------------------


def test_the_stop_trimmer_holds_back_only_what_may_start_a_stop_sequence() -> None:
    from nexent.runtime.smol_model import _StopTrimmer

    trimmer = _StopTrimmer(["Observation:", "Calling tools:"])
    # Ordinary text goes out at once (a fixed hold-back delayed the first token by several chunks).
    assert [trimmer.feed(piece) for piece in ("echo", ": wo", "rd O", "bs", "ervation: x")] == [
        "echo",
        ": wo",
        "rd ",
        "",
        "",
    ]
    assert trimmer.flush() == ""
    trimmer = _StopTrimmer(["Observation:"])
    assert trimmer.feed("Obs") == "" and trimmer.feed("cure") == "Obscure" and trimmer.flush() == ""
    trimmer = _StopTrimmer(["Observation:"])
    assert trimmer.feed("an Ob") == "an " and trimmer.flush() == "Ob"


def test_prompt_templates_render_as_smolagents_renders_them() -> None:
    import jinja2
    import smolagents.agents

    from nexent.runtime import smol_agents

    template = "{{ name }} has {% for t in tools %}{{ t }}, {% endfor %}done"
    variables = {"name": "agent", "tools": ["a", "b"]}
    expected = jinja2.Template(template, undefined=jinja2.StrictUndefined).render(**variables)
    assert smol_agents.populate_template(template, variables) == expected == "agent has a, b, done"
    assert smolagents.agents.populate_template is smol_agents.populate_template  # every smolagents prompt
    with pytest.raises(Exception, match="Error during jinja template rendering: UndefinedError"):
        smol_agents.populate_template(template, {"tools": []})


async def test_deltas_that_queue_up_go_out_as_one_event() -> None:
    import time
    from types import SimpleNamespace

    from smolagents.memory import FinalAnswerStep
    from smolagents.models import ChatMessageStreamDelta
    from smolagents.monitoring import TokenUsage

    from nexent.runtime.event_types import BaseRunEvent
    from nexent.runtime.smol_agents import stream_run

    class Talker:
        name = None
        memory = SimpleNamespace(steps=[])

        def run(self, task: str, stream: bool = True) -> Iterator[Any]:
            for index in range(50):
                yield ChatMessageStreamDelta(content=f"t{index} ")
            yield FinalAnswerStep(output="done")

    model = SimpleNamespace(token_usage=TokenUsage(input_tokens=1, output_tokens=50), cancel=None)

    async def collect() -> list[BaseRunEvent]:
        return [event async for event in stream_run(Talker(), "talk", model=model)]

    reader = asyncio.create_task(collect())
    await asyncio.sleep(0)  # the reader starts the agent thread, then waits for its first event
    time.sleep(0.3)  # a busy loop: the agent's deltas queue up meanwhile
    events = await reader
    assert [e["type"] for e in events] == ["message.delta", "run.completed"]
    assert events[0]["text"] == "".join(f"t{index} " for index in range(50))


async def test_background_work_waits_for_a_quiet_moment() -> None:
    import time

    from nexent.runtime.activity import executing_run, quiet

    started = time.monotonic()
    await quiet(5)
    assert time.monotonic() - started < 0.1  # no run: at once
    with executing_run():
        started = time.monotonic()
        await quiet(0.3, poll=0.05)
        assert 0.3 <= time.monotonic() - started < 1.0  # runs executing: at most the longest wait


async def test_a_run_whose_record_cannot_be_stored_never_starts(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nexent.core import batch as store

    agent = await make_agent(client, owner)
    llm.server.enqueue(ChatReply.text("never seen").paced(delay=0.3))
    original = store.BatchWriter.store

    async def failing(self: store.BatchWriter, write: store.Write) -> None:
        if any(table.name == "runs" for table, _ in write.inserts):
            raise RuntimeError("the database is gone")
        await original(self, write)

    monkeypatch.setattr(store.BatchWriter, "store", failing)
    response, _ = await run(client, owner, agent["id"], "Hello?")
    assert_problem(response, 500, "internal_error")
    monkeypatch.setattr(store.BatchWriter, "store", original)
    headers = bearer(owner["access_token"])
    assert (await client.get("/api/runs", headers=headers)).json()["items"] == []
    assert (await client.get("/api/conversations", headers=headers)).json()["items"] == []

    async def model_idle() -> bool:
        return llm.server.in_flight == 0

    # The agent starts while its record is being committed; it was stopped, its model call (if any) cancelled.
    await wait_until(model_idle, timeout=5)


async def test_tools_of_different_runs_share_their_class_not_their_run() -> None:
    from nexent.runtime.smol_tools import make_tool

    spec = {"name": "echo", "description": "Echo.", "parameters": {"type": "object", "properties": {"x": {}}}}
    calls: list[tuple[str, Any]] = []

    def executor_of(run: str) -> Any:
        async def execute(name: str, arguments: dict[str, Any]) -> str:
            calls.append((run, arguments["x"]))
            return run

        return execute

    loop = asyncio.get_running_loop()
    first, second = make_tool(spec, executor_of("a"), loop), make_tool(spec, executor_of("b"), loop)
    assert type(first) is type(second) and first is not second
    assert await asyncio.to_thread(first, x=1) == "a" and await asyncio.to_thread(second, 2) == "b"
    assert calls == [("a", 1), ("b", 2)]


async def test_who_may_run_which_agent_and_with_which_model(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    token = owner["access_token"]
    # An agent without a model of its own thinks with the tenant's default model.
    plain = await make_agent(client, owner, model_id=None)
    llm.server.enqueue(ChatReply.text("From the default model."))
    _, events = await run(client, owner, plain["id"], "Hi")
    assert events[-1]["type"] == "run.completed" and events[-1]["data"]["answer"] == "From the default model."

    # A member who does not manage agents runs only those shared with one of their groups.
    user = await invite_and_register(client, token, f"user-{uuid.uuid4().hex[:6]}@example.com", role="user")
    response, _ = await run(client, user, plain["id"], "Hi")
    assert_problem(response, 404, "agent_not_found")
    group = (await client.post("/api/groups", json={"name": "Runners"}, headers=bearer(token))).json()
    await client.put(f"/api/groups/{group['id']}/members/{user['user']['id']}", headers=bearer(token))
    shared = await client.put(
        f"/api/agents/{plain['id']}/shares/{group['id']}", json={"permission": "read"}, headers=bearer(token)
    )
    assert shared.status_code == 200
    # ... once published (drafts are for those who edit them), and then its published version.
    response, _ = await run(client, user, plain["id"], "Hi")
    assert_problem(response, 404, "agent_not_found")
    assert (await client.post(f"/api/agents/{plain['id']}/publish", headers=bearer(token))).status_code == 201
    _, events = await run(client, user, plain["id"], "Hi")
    assert events[0]["data"]["agent_version"] == 1 and events[-1]["type"] == "run.completed"
    response, _ = await run(client, user, plain["id"], "Hi", version="draft")
    assert_problem(response, 403, "permission_denied")

    # An API key limited to some agents runs only those.
    other = await make_agent(client, owner)
    key = await client.post("/api/api-keys", json={"name": "bot", "agent_ids": [other["id"]]}, headers=bearer(token))
    as_key = {"access_token": key.json()["secret"]}
    response, _ = await run(client, as_key, plain["id"], "Hi")
    assert_problem(response, 404, "agent_not_found")
    _, events = await run(client, as_key, other["id"], "Hi")
    assert events[-1]["type"] == "run.completed"

    # Another tenant's agent is not found; a tenant without any model fails the run with a classified error.
    stranger = await register(client, f"stranger-{uuid.uuid4().hex[:6]}@example.com")
    response, _ = await run(client, stranger, plain["id"], "Hi")
    assert_problem(response, 404, "agent_not_found")
    modelless = (
        await client.post("/api/agents", json={"name": "No model"}, headers=bearer(stranger["access_token"]))
    ).json()
    _, events = await run(client, stranger, modelless["id"], "Hi")
    assert events[-1]["type"] == "run.failed" and events[-1]["data"]["code"] == "no_default_model"


@pytest.mark.parametrize("allow_private_fetch", [False, True])
async def test_web_fetches_of_private_addresses_follow_the_operator_setting(
    tmp_path: Path, llm: RunningModelServer, allow_private_fetch: bool
) -> None:
    """In a real run, an agent's `fetch_webpage` of a loopback address is refused unless the operator set
    `NEXENT_ALLOW_PRIVATE_FETCH` (the runtime must pass the setting, never force private networks on). The
    scripted model server doubles as the private web server (it answers GET /v1/models)."""
    settings = make_settings(tmp_path, builtin_models=False, allow_private_fetch=allow_private_fetch)
    async with serve_in_process(settings) as client:
        owner = await new_owner(client, llm, "fetcher@example.com")
        agent = await make_agent(client, owner, tools=[{"name": "fetch_webpage"}], max_steps=2)
        target = f"{llm.base_url}/models"
        llm.server.enqueue(
            ChatReply.tool_call("fetch_webpage", {"url": target}),
            ChatReply.text("Done."),
            ChatReply.text('"Fetching"'),  # the title
        )
        _, events = await run(client, owner, agent["id"], "Fetch the page.")
        result = next(e for e in events if e["type"] == "tool.result")["data"]
        fetched = llm.server.requests_to("/models")
        if allow_private_fetch:
            assert result["error"] is None and len(fetched) == 1, result
        else:
            assert "url_refused" in json.dumps(result) and fetched == [], result
