"""Remote A2A agents used as sub-agents: sample agents built with the official `a2a-sdk` (tests/support/a2a_agents)
added by the URL of their card, checked, and called by one of our agents that the scripted model server drives:
the answer, its stream as nested events of the run, a stop that cancels the remote task, and what goes wrong (a
server that is down, a missing key, a card that is not one, an answer that is not A2A, a task that takes too long)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.a2a_client.models import RemoteAgent
from nexent.core.db import create_engine
from nexent.settings import Settings
from tests.conftest import make_settings, serve_in_process, wait_until
from tests.support.a2a_agents import API_KEY, SampleAgents, serve_sample_agents
from tests.support.identity import bearer, register
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server
from tests.test_http import assert_problem
from tests.test_runs import parse_sse


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture(scope="module")
def samples() -> Iterator[SampleAgents]:
    with serve_sample_agents() as served:
        yield served


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("a2a"), builtin_models=False, a2a_card_timeout_seconds=5)


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(settings) as http:
        yield http


@pytest.fixture(scope="module")
async def owner(client: httpx.AsyncClient, llm: RunningModelServer) -> dict[str, Any]:
    pair = await register(client, f"a2a-{uuid.uuid4().hex[:6]}@example.com")
    model = await client.post(
        "/api/models",
        json={"name": "Scripted", "kind": "llm", "model": "scripted", "base_url": llm.base_url, "timeout_seconds": 10},
        headers=bearer(pair["access_token"]),
    )
    assert model.status_code == 201, model.text
    return {**pair, "model_id": model.json()["id"], "headers": bearer(pair["access_token"])}


async def add(client: httpx.AsyncClient, owner: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = await client.post("/api/remote-agents", json=body, headers=owner["headers"])
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def check(client: httpx.AsyncClient, owner: dict[str, Any], agent_id: str) -> dict[str, Any]:
    response = await client.post(f"/api/remote-agents/{agent_id}/check", headers=owner["headers"])
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture(scope="module")
async def echo(client: httpx.AsyncClient, owner: dict[str, Any], samples: SampleAgents) -> dict[str, Any]:
    return await add(client, owner, card_url=samples.card_url("echo"))


async def make_agent(client: httpx.AsyncClient, owner: dict[str, Any], tools: list[str]) -> dict[str, Any]:
    agent = await client.post(
        "/api/agents",
        json={
            "name": f"Caller {uuid.uuid4().hex[:6]}",
            "model_id": owner["model_id"],
            "tools": [{"name": t} for t in tools],
        },
        headers=owner["headers"],
    )
    assert agent.status_code == 201, agent.text
    created: dict[str, Any] = agent.json()
    return created


async def run_with(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer, tool: str, task: str
) -> list[dict[str, Any]]:
    """Run a new agent whose model calls the remote agent `tool` with `task`, then answers; the run's events."""
    agent = await make_agent(client, owner, [tool])
    llm.server.reset()
    llm.server.enqueue(ChatReply.tool_call(tool, {"task": task}), ChatReply.text("Done."))
    llm.server.enqueue(ChatReply.text('"Title"'))  # the conversation's title
    response = await client.post(f"/api/agents/{agent['id']}/runs", json={"message": "Go"}, headers=owner["headers"])
    assert response.status_code == 200, response.text
    events = parse_sse(response.text)
    assert events[-1]["type"] == "run.completed", events[-1]  # a failed remote agent is a failed call, not a run

    async def titled() -> bool:  # the title comes from a background job: let it take its reply first
        return any("Write a title" in json.dumps(r.messages) for r in llm.server.chat_requests)

    await wait_until(titled, timeout=30)
    return events


def result_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    results: list[dict[str, Any]] = [e["data"] for e in events if e["type"] == "tool.result"]
    assert len(results) == 1, events
    return results[0]


def error_of(events: list[dict[str, Any]]) -> str:
    return str(json.loads(result_of(events)["output"])["error"])


# --- tests ------------------------------------------------------------------------------------------------------


async def test_a_remote_agent_is_added_by_its_card_and_checked(
    client: httpx.AsyncClient, owner: dict[str, Any], echo: dict[str, Any]
) -> None:
    assert echo["name"] == "echo_agent" and echo["tool_name"] == "echo_agent__agent"
    assert echo["agent_name"] == "Echo Agent" and echo["streaming"] is True and echo["status"] == "unknown"
    assert [s["id"] for s in echo["skills"]] == ["echo"] and echo["auth"] == [] and echo["header_names"] == []
    result = await check(client, owner, echo["id"])
    assert result["status"] == "ok" and result["detail"] is None and result["agent"]["checked_at"]
    card = (await client.get(f"/api/remote-agents/{echo['id']}/card", headers=owner["headers"])).json()
    assert card["card"]["name"] == "Echo Agent"
    assert card["card"]["supportedInterfaces"][0]["protocolVersion"] == "1.0"
    listed = (await client.get("/api/remote-agents", headers=owner["headers"])).json()
    assert echo["id"] in [a["id"] for a in listed["items"]]
    # It is in the tool catalog beside the tenant's other tools, described from its card.
    catalog = {t["name"]: t for t in (await client.get("/api/tools", headers=owner["headers"])).json()}
    offered = catalog["echo_agent__agent"]
    assert offered["source"] == {"kind": "a2a", "id": echo["id"], "name": "echo_agent"}
    assert "Repeats the text" in offered["description"]


async def test_an_agent_calls_a_remote_agent_and_sees_its_stream(
    client: httpx.AsyncClient,
    owner: dict[str, Any],
    llm: RunningModelServer,
    echo: dict[str, Any],
    samples: SampleAgents,
) -> None:
    events = await run_with(client, owner, llm, "echo_agent__agent", "hello there")
    call = next(e["data"] for e in events if e["type"] == "tool.call")
    assert call["name"] == "echo_agent__agent" and call["arguments"] == {"task": "hello there"}
    assert result_of(events)["output"] == "echo: hello there"
    assert "hello there" in samples.tasks
    # The remote agent's stream is shown as a sub-agent's: nested under the call that asked for it.
    nested = [e for e in events if e["data"].get("parent_call_id") == call["call_id"]]
    kinds = [(e["type"], e["data"]["agent"]) for e in nested]
    assert ("thinking.delta", "Echo Agent") in kinds and ("agent.completed", "Echo Agent") in kinds
    streamed = "".join(e["data"]["text"] for e in nested if e["type"] == "message.delta")
    assert streamed == "echo: hello there"
    assert nested[-1]["type"] == "agent.completed" and nested[-1]["data"]["answer"] == "echo: hello there"
    # ... between the call and its result.
    order = [e["id"] for e in events]
    call_at = order.index(next(e["id"] for e in events if e["type"] == "tool.call"))
    result_at = order.index(next(e["id"] for e in events if e["type"] == "tool.result"))
    assert all(call_at < order.index(e["id"]) < result_at for e in nested)
    # The model was offered the remote agent like a sub-agent (a task to give) and read its answer.
    offered = {t["function"]["name"]: t["function"] for t in llm.server.chat_requests[0].tools or []}
    assert offered["echo_agent__agent"]["parameters"]["required"] == ["task"]
    assert "echo: hello there" in json.dumps(llm.server.chat_requests[1].messages)


async def test_an_agent_that_cannot_stream_answers_with_send_message(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer, samples: SampleAgents
) -> None:
    plain = await add(client, owner, card_url=samples.card_url("plain"), name="plain")
    assert plain["streaming"] is False
    events = await run_with(client, owner, llm, "plain__agent", "no stream")
    assert result_of(events)["output"] == "echo: no stream"


async def test_a_key_the_card_declares_is_stored_encrypted_and_sent(
    client: httpx.AsyncClient,
    owner: dict[str, Any],
    llm: RunningModelServer,
    samples: SampleAgents,
    settings: Settings,
) -> None:
    guarded = await add(client, owner, card_url=samples.card_url("guarded"), name="guarded")
    assert guarded["auth"] == ["api_key:header:X-API-Key"]
    # Missing: the check and a call say "auth".
    assert (await check(client, owner, guarded["id"]))["status"] == "auth"
    assert error_of(await run_with(client, owner, llm, "guarded__agent", "let me in")) == "remote_agent_auth"
    assert (await client.get(f"/api/remote-agents/{guarded['id']}", headers=owner["headers"])).json()[
        "status"
    ] == "auth"

    changed = await client.patch(
        f"/api/remote-agents/{guarded['id']}", json={"api_key": API_KEY}, headers=owner["headers"]
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["header_names"] == ["X-API-Key"] and API_KEY not in changed.text
    assert (await check(client, owner, guarded["id"]))["status"] == "ok"
    assert result_of(await run_with(client, owner, llm, "guarded__agent", "open"))["output"] == "echo: open"

    # At rest, the key is encrypted; it is never returned.
    engine = create_engine(settings.resolved_database_url)
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text("SELECT headers_encrypted, header_names FROM remote_agents WHERE name = 'guarded'")
                )
            ).one()
    finally:
        await engine.dispose()
    assert row[0] and API_KEY not in row[0] and "X-API-Key" not in row[0]
    read = await client.get(f"/api/remote-agents/{guarded['id']}", headers=owner["headers"])
    assert API_KEY not in read.text

    # A key for a card that declares none in a header cannot be sent anywhere.
    refused = await client.post(
        "/api/remote-agents",
        json={"card_url": samples.card_url("echo"), "name": "keyed", "api_key": "k"},
        headers=owner["headers"],
    )
    assert_problem(refused, 400, "remote_agent_credentials_invalid")


async def test_stopping_the_run_cancels_the_remote_task(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer, samples: SampleAgents
) -> None:
    await add(client, owner, card_url=samples.card_url("slow"), name="slow")
    agent = await make_agent(client, owner, ["slow__agent"])
    llm.server.reset()
    llm.server.enqueue(ChatReply.tool_call("slow__agent", {"task": "take your time"}), ChatReply.text("Done."))
    before = set(samples.started)
    headers = owner["headers"]

    async def start() -> list[dict[str, Any]]:
        response = await client.post(f"/api/agents/{agent['id']}/runs", json={"message": "Go"}, headers=headers)
        return parse_sse(response.text)

    runner = asyncio.create_task(start())

    async def remote_started() -> set[str]:
        return samples.started - before

    started = await wait_until(remote_started, timeout=20, interval=0.05)
    conversations = (await client.get("/api/conversations", headers=headers)).json()["items"]
    detail = (await client.get(f"/api/conversations/{conversations[0]['id']}", headers=headers)).json()
    stopped = await client.post(f"/api/runs/{detail['messages'][0]['run_id']}/stop", headers=headers)
    assert stopped.status_code == 202, stopped.text
    events = await asyncio.wait_for(runner, timeout=20)
    assert events[-1]["type"] == "run.stopped"

    async def remote_cancelled() -> bool:
        return bool(started <= samples.cancelled)

    assert await wait_until(remote_cancelled, timeout=10, interval=0.05)


async def test_a_slow_remote_agent_times_out_and_its_task_is_cancelled(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer, samples: SampleAgents
) -> None:
    await add(client, owner, card_url=samples.card_url("slow"), name="sluggish", timeout_seconds=1)
    before = set(samples.started)
    events = await run_with(client, owner, llm, "sluggish__agent", "hurry")
    assert error_of(events) == "remote_agent_timeout"
    started = samples.started - before
    assert started and started <= samples.cancelled


async def test_a_server_that_is_down_answers_nonsense_or_fails_is_a_classified_error(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer, samples: SampleAgents
) -> None:
    with serve_sample_agents() as short_lived:
        gone = await add(client, owner, card_url=short_lived.card_url("echo"), name="gone")
    assert (await check(client, owner, gone["id"]))["status"] == "unreachable"
    assert error_of(await run_with(client, owner, llm, "gone__agent", "anyone?")) == "remote_agent_unreachable"

    nonsense = await add(client, owner, card_url=samples.card_url("nonsense"), name="nonsense")
    result = await check(client, owner, nonsense["id"])
    assert result["status"] == "protocol" and "A2A" in result["detail"]
    assert error_of(await run_with(client, owner, llm, "nonsense__agent", "hi")) == "remote_agent_protocol"

    # A remote task that ends as failed is a failed call that says why.
    await add(client, owner, card_url=samples.card_url("failing"), name="failing")
    failed = json.loads(result_of(await run_with(client, owner, llm, "failing__agent", "try"))["output"])
    assert failed["error"] == "remote_agent_failed" and "The database is on fire." in failed["message"]


async def test_cards_that_cannot_be_used_and_bad_input_are_refused(
    client: httpx.AsyncClient, owner: dict[str, Any], samples: SampleAgents, echo: dict[str, Any]
) -> None:
    h = owner["headers"]

    async def refused(body: dict[str, Any], status: int, code: str) -> dict[str, object]:
        return assert_problem(await client.post("/api/remote-agents", json=body, headers=h), status, code)

    old = await refused({"card_url": samples.card_url("old")}, 422, "remote_agent_card_invalid")
    assert old["card_status"] == "protocol" and "1.0" in str(old["detail"])
    broken = await refused({"card_url": samples.card_url("broken")}, 422, "remote_agent_card_invalid")
    assert "not valid" in str(broken["detail"])
    missing = await refused({"card_url": f"{samples.base_url}/nobody/"}, 422, "remote_agent_card_invalid")
    assert "404" in str(missing["detail"])
    down = await refused({"card_url": "http://127.0.0.1:1/agent.json"}, 422, "remote_agent_card_invalid")
    assert down["card_status"] == "unreachable"
    await refused({"card_url": "ftp://example.com/card.json"}, 422, "validation_error")
    await refused({"card_url": samples.card_url("echo"), "name": "Bad Name"}, 422, "validation_error")
    await refused({"card_url": samples.card_url("echo"), "extra": 1}, 422, "validation_error")
    await refused({"card_url": samples.card_url("echo"), "timeout_seconds": 0}, 422, "validation_error")
    await refused({"card_url": samples.card_url("echo"), "token": "a\nb"}, 422, "validation_error")
    await refused({"card_url": samples.card_url("echo")}, 409, "remote_agent_name_taken")
    unknown = uuid.uuid4()
    assert_problem(await client.get(f"/api/remote-agents/{unknown}", headers=h), 404, "remote_agent_not_found")
    assert_problem(await client.delete(f"/api/remote-agents/{unknown}", headers=h), 404, "remote_agent_not_found")
    patch = await client.patch(f"/api/remote-agents/{echo['id']}", json={"name": None}, headers=h)
    assert_problem(patch, 422, "validation_error")


async def test_a_published_version_keeps_its_remote_agent(
    client: httpx.AsyncClient, owner: dict[str, Any], samples: SampleAgents
) -> None:
    h = owner["headers"]
    kept = await add(client, owner, card_url=samples.card_url("echo"), name="kept")
    agent = await make_agent(client, owner, ["kept__agent"])
    published = await client.post(f"/api/agents/{agent['id']}/publish", json={"note": "v1"}, headers=h)
    assert published.status_code == 201, published.text
    version = (await client.get(f"/api/agents/{agent['id']}/versions/1", headers=h)).json()
    snapshot = {t["name"]: t for t in version["config"]["tool_schemas"]}["kept__agent"]
    assert snapshot["source"]["kind"] == "a2a" and snapshot["remote_name"] == "Echo Agent"
    assert [s["id"] for s in snapshot["extra"]["skills"]] == ["echo"]
    assert_problem(await client.delete(f"/api/remote-agents/{kept['id']}", headers=h), 409, "tool_source_in_use")
    await client.delete(f"/api/agents/{agent['id']}", headers=h)
    assert (await client.delete(f"/api/remote-agents/{kept['id']}", headers=h)).status_code == 204
    assert_problem(await client.get(f"/api/remote-agents/{kept['id']}", headers=h), 404, "remote_agent_not_found")


async def test_a_card_older_than_the_setting_is_fetched_again_at_use(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer, samples: SampleAgents, settings: Settings
) -> None:
    fresh = await add(client, owner, card_url=samples.card_url("echo"), name="refreshed")
    engine = create_engine(settings.resolved_database_url)
    try:
        async with AsyncSession(engine) as session:
            row = await session.get(RemoteAgent, uuid.UUID(fresh["id"]))
            assert row is not None
            row.card = {**row.card, "description": "An outdated description."}
            row.card_fetched_at = datetime(2000, 1, 1, tzinfo=UTC)
            await session.commit()
    finally:
        await engine.dispose()
    stale = (await client.get(f"/api/remote-agents/{fresh['id']}", headers=owner["headers"])).json()
    assert stale["description"] == "An outdated description."
    assert result_of(await run_with(client, owner, llm, "refreshed__agent", "again"))["output"] == "echo: again"
    renewed = (await client.get(f"/api/remote-agents/{fresh['id']}", headers=owner["headers"])).json()
    assert renewed["description"].startswith("The sample agent Echo Agent")
    assert renewed["card_fetched_at"] > fresh["card_fetched_at"]
