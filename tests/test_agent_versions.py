"""Published agent versions over HTTP, against the scripted model server: publishing (atomic, numbered, pinned),
which version a run uses (published, draft, `version=N`), comparing, rolling back, disabling, and refusing to
delete what a published version uses."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.agents import versions
from nexent.providers import pool
from tests.conftest import PostgresDatabases, make_settings, serve_in_process
from tests.support.identity import bearer, invite_and_register
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server
from tests.test_http import assert_problem
from tests.test_runs import make_agent, new_owner, run


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture(autouse=True)
def _fresh(llm: RunningModelServer) -> Iterator[None]:
    llm.server.reset()
    pool._unhealthy_until.clear()
    llm.server.responder = lambda request: ChatReply.text("Fine.")
    yield
    llm.server.responder = None


@pytest.fixture(params=["sqlite", "postgres"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases
) -> AsyncIterator[httpx.AsyncClient]:
    overrides: dict[str, Any] = (
        {"database_url": await pg_databases.create(migrated=True)} if request.param == "postgres" else {}
    )
    async with serve_in_process(make_settings(tmp_path, builtin_models=False, **overrides)) as http:
        yield http


@pytest.fixture
async def owner(client: httpx.AsyncClient, llm: RunningModelServer) -> dict[str, Any]:
    return await new_owner(client, llm, f"versions-{uuid.uuid4().hex[:6]}@example.com")


def headers(caller: dict[str, Any]) -> dict[str, str]:
    return bearer(caller["access_token"])


async def publish(client: httpx.AsyncClient, caller: dict[str, Any], agent_id: str, note: str = "") -> httpx.Response:
    return await client.post(f"/api/agents/{agent_id}/publish", json={"note": note}, headers=headers(caller))


async def patch(client: httpx.AsyncClient, caller: dict[str, Any], agent_id: str, **body: Any) -> dict[str, Any]:
    response = await client.patch(f"/api/agents/{agent_id}", json=body, headers=headers(caller))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def duty(text: str) -> dict[str, Any]:
    return {"duty": text, "constraints": "", "examples": []}


def sent_duties(llm: RunningModelServer) -> list[str]:
    """Which of the duties `Duty v…` each model request carried (titles left out)."""
    found = []
    for request in llm.server.chat_requests:
        text = json.dumps(request.messages)
        if "Write a title" in text:
            continue
        found.append(",".join(sorted(set(re.findall(r"v#[a-z0-9]+", text)))))
    return found


async def test_runs_use_the_published_version_the_draft_or_the_one_asked_for(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    agent = await make_agent(client, owner, display_name="Helpdesk", instructions=duty("Answer. v#1"))
    assert agent["published_version"] is None and agent["display_name"] == "Helpdesk"

    first = await publish(client, owner, agent["id"], "First cut")
    assert first.status_code == 201, first.text
    version = first.json()
    assert (version["number"], version["published"], version["note"]) == (1, True, "First cut")
    assert version["config"]["instructions"]["duty"] == "Answer. v#1"
    assert version["config"]["model_id"] == owner["model_id"] and version["config"]["display_name"] == "Helpdesk"

    await patch(client, owner, agent["id"], instructions=duty("Answer. v#2"))
    assert (await publish(client, owner, agent["id"])).json()["number"] == 2
    await patch(client, owner, agent["id"], instructions=duty("Answer. v#draft"))

    # The published version by default; the draft for the studio; any version by number.
    seen = []
    for version_asked in (None, "draft", 1):
        extra = {} if version_asked is None else {"version": version_asked}
        response, events = await run(client, owner, agent["id"], "Hello", **extra)
        assert response.status_code == 200, response.text
        assert events[-1]["type"] == "run.completed"
        seen.append(events[0]["data"]["agent_version"])
        run_record = (await client.get(f"/api/runs/{response.headers['x-run-id']}", headers=headers(owner))).json()
        assert run_record["agent_version"] == events[0]["data"]["agent_version"]
    assert seen == [2, None, 1]
    assert sent_duties(llm) == ["v#2", "v#draft", "v#1"]

    listed = (await client.get(f"/api/agents/{agent['id']}/versions", headers=headers(owner))).json()
    assert [(v["number"], v["published"]) for v in listed] == [(2, True), (1, False)]
    assert (await client.get(f"/api/agents/{agent['id']}", headers=headers(owner))).json()["published_version"] == 2

    # Versions that do not exist, or bad ones, are refused before anything runs.
    response, _ = await run(client, owner, agent["id"], "Hello", version=9)
    assert_problem(response, 404, "version_not_found")
    for bad in (0, -1, "latest", 1.5, 2**40):
        response, _ = await run(client, owner, agent["id"], "Hello", version=bad)
        assert response.status_code == 422, (bad, response.text)
    assert_problem(
        await client.get(f"/api/agents/{agent['id']}/versions/7", headers=headers(owner)), 404, "version_not_found"
    )
    assert (await client.get(f"/api/agents/{agent['id']}/versions/0", headers=headers(owner))).status_code == 422


async def test_a_publish_that_fails_half_way_leaves_nothing(
    client: httpx.AsyncClient, owner: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await make_agent(client, owner)
    assert (await publish(client, owner, agent["id"])).status_code == 201

    async def broken_audit(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the audit log is down")

    # The version row and its references are written, then the last step fails: nothing of it may stay.
    monkeypatch.setattr(versions, "record", broken_audit)
    failed = await publish(client, owner, agent["id"])
    assert failed.status_code == 500
    monkeypatch.undo()
    listed = (await client.get(f"/api/agents/{agent['id']}/versions", headers=headers(owner))).json()
    assert [v["number"] for v in listed] == [1]
    assert (await client.get(f"/api/agents/{agent['id']}", headers=headers(owner))).json()["published_version"] == 1
    assert (await publish(client, owner, agent["id"])).json()["number"] == 2

    # Two publishes at the same moment: two versions with distinct numbers, or one refused cleanly.
    answers = await asyncio.gather(*(publish(client, owner, agent["id"]) for _ in range(3)))
    created = sorted(a.json()["number"] for a in answers if a.status_code == 201)
    for answer in answers:
        if answer.status_code != 201:
            assert_problem(answer, 409, "publish_conflict")
    assert created == list(range(3, 3 + len(created))) and created
    listed = (await client.get(f"/api/agents/{agent['id']}/versions", headers=headers(owner))).json()
    assert [v["number"] for v in listed] == [*reversed(created), 2, 1]


async def test_compare_and_roll_back(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    agent = await make_agent(
        client, owner, name="Writer", instructions=duty("Write.\nBe brief."), tools=[{"name": "calculator"}]
    )
    await publish(client, owner, agent["id"])
    await patch(
        client,
        owner,
        agent["id"],
        instructions=duty("Write.\nBe thorough."),
        tools=[{"name": "fetch_webpage", "settings": {}}],
        max_steps=4,
    )
    await publish(client, owner, agent["id"])

    diff = await client.get(
        f"/api/agents/{agent['id']}/compare", params={"base": 1, "target": 2}, headers=headers(owner)
    )
    assert diff.status_code == 200, diff.text
    changes = {c["field"]: c for c in diff.json()["changes"]}
    assert set(changes) == {"instructions.duty", "tools.calculator", "tools.fetch_webpage", "max_steps"}
    assert (
        "-Be brief." in changes["instructions.duty"]["lines"]
        and "+Be thorough." in changes["instructions.duty"]["lines"]
    )
    assert changes["tools.calculator"]["after"] is None and changes["tools.fetch_webpage"]["before"] is None
    assert (changes["max_steps"]["before"], changes["max_steps"]["after"]) == (10, 4)
    same = await client.get(f"/api/agents/{agent['id']}/compare", params={"base": 2}, headers=headers(owner))
    assert same.json()["changes"] == []  # the draft is version 2
    on_default = await make_agent(client, owner, model_id=None)
    version = (await publish(client, owner, on_default["id"])).json()
    assert version["config"]["model_id"] == owner["model_id"]  # the tenant's default, resolved
    fresh = await client.get(f"/api/agents/{on_default['id']}/compare", params={"base": 1}, headers=headers(owner))
    assert fresh.json()["changes"] == []

    rolled = await client.post(f"/api/agents/{agent['id']}/versions/1/rollback", headers=headers(owner))
    assert rolled.status_code == 200, rolled.text
    draft = rolled.json()
    assert draft["instructions"]["duty"] == "Write.\nBe brief." and draft["max_steps"] == 10
    assert [t["name"] for t in draft["tools"]] == ["calculator"] and draft["published_version"] == 2
    back = await client.get(f"/api/agents/{agent['id']}/compare", params={"base": 1}, headers=headers(owner))
    assert back.json()["changes"] == []

    for params in ({"base": "x"}, {"base": "3", "target": "-1"}, {}, {"base": "99999999999"}):
        bad = await client.get(f"/api/agents/{agent['id']}/compare", params=params, headers=headers(owner))
        assert_problem(bad, 422, "validation_error")
    missing = await client.get(f"/api/agents/{agent['id']}/compare", params={"base": 5}, headers=headers(owner))
    assert_problem(missing, 404, "version_not_found")
    assert_problem(
        await client.post(f"/api/agents/{agent['id']}/versions/5/rollback", headers=headers(owner)),
        404,
        "version_not_found",
    )


async def test_sub_agents_are_pinned_to_their_published_version(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    sub = await make_agent(client, owner, name="Researcher", instructions=duty("Research. v#sub1"))
    parent = await make_agent(client, owner, name="Lead", instructions=duty("Lead. v#lead"), sub_agent_ids=[sub["id"]])
    refused = await publish(client, owner, parent["id"])
    problem = assert_problem(refused, 422, "cannot_publish")
    assert "Publish the sub-agent" in json.dumps(problem["errors"])
    assert (await client.get(f"/api/agents/{parent['id']}/versions", headers=headers(owner))).json() == []

    assert (await publish(client, owner, sub["id"])).status_code == 201
    pinned = (await publish(client, owner, parent["id"])).json()
    assert pinned["config"]["sub_agents"] == [{"agent_id": sub["id"], "version": 1}]

    async def changes_from_v1() -> dict[str, Any]:
        diff = await client.get(f"/api/agents/{parent['id']}/compare", params={"base": 1}, headers=headers(owner))
        return {c["field"]: (c["before"], c["after"]) for c in diff.json()["changes"]}

    # The draft is compared as publishing it would make it: pinned as the version is, nothing differs ...
    assert await changes_from_v1() == {}
    await patch(client, owner, sub["id"], instructions=duty("Research. v#sub2"))
    assert (await publish(client, owner, sub["id"])).json()["number"] == 2
    # ... until the sub-agent publishes again: publishing the parent now would pin its version 2.
    assert await changes_from_v1() == {f"sub_agents.{sub['id']}": (1, 2)}
    other = await make_agent(client, owner, name="Unpublished helper")
    await patch(client, owner, parent["id"], sub_agent_ids=[sub["id"], other["id"]])
    assert (await changes_from_v1())[f"sub_agents.{other['id']}"] == (None, "unpublished")
    await patch(client, owner, parent["id"], sub_agent_ids=[sub["id"]])

    def delegate() -> None:
        llm.server.enqueue(
            ChatReply.tool_call("researcher", {"task": "Look it up."}),
            ChatReply.text("Found."),
            ChatReply.text("Done."),
        )

    delegate()
    response, events = await run(client, owner, parent["id"], "Find out.")
    assert events[-1]["type"] == "run.completed", response.text
    # The parent's version 1 calls the sub-agent's version 1, not its newer version.
    assert "v#sub1" in sent_duties(llm) and "v#sub2" not in sent_duties(llm)

    # The draft's sub-agents run at their published version.
    llm.server.reset()
    delegate()
    await run(client, owner, parent["id"], "Find out.", version="draft")
    assert "v#sub2" in sent_duties(llm) and "v#sub1" not in sent_duties(llm)

    # A sub-agent that a published version uses cannot be deleted.
    await patch(client, owner, parent["id"], sub_agent_ids=[])
    in_use = assert_problem(
        await client.delete(f"/api/agents/{sub['id']}", headers=headers(owner)), 409, "agent_in_use"
    )
    assert in_use["used_by"] == ["agent 'Lead' version 1"]


async def test_disabled_versions_and_what_published_versions_use(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    embedder = await client.post(
        "/api/models",
        json={"name": "Embedder", "kind": "embedding", "model": "emb", "base_url": llm.base_url},
        headers=headers(owner),
    )
    assert embedder.status_code == 201, embedder.text
    kb = await client.post(
        "/api/knowledge-bases",
        json={"name": "Manuals", "embedding_model_id": embedder.json()["id"]},
        headers=headers(owner),
    )
    assert kb.status_code == 201, kb.text
    agent = await make_agent(client, owner, knowledge_base_ids=[kb.json()["id"]])
    await publish(client, owner, agent["id"])
    await patch(client, owner, agent["id"], knowledge_base_ids=[])
    await publish(client, owner, agent["id"])

    # While an enabled version uses them, the model and the knowledge base stay.
    model_in_use = assert_problem(
        await client.delete(f"/api/models/{owner['model_id']}", headers=headers(owner)), 409, "model_in_use"
    )
    assert model_in_use["used_by"] == [f"agent {agent['name']!r} version 1", f"agent {agent['name']!r} version 2"]
    kb_in_use = assert_problem(
        await client.delete(f"/api/knowledge-bases/{kb.json()['id']}", headers=headers(owner)),
        409,
        "knowledge_base_in_use",
    )
    assert kb_in_use["used_by"] == [f"agent {agent['name']!r} version 1"]

    # Disabling the newest version makes the one before it the published one; a disabled one does not run.
    disabled = await client.patch(
        f"/api/agents/{agent['id']}/versions/2", json={"disabled": True}, headers=headers(owner)
    )
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert (await client.get(f"/api/agents/{agent['id']}", headers=headers(owner))).json()["published_version"] == 1
    response, _ = await run(client, owner, agent["id"], "Hi", version=2)
    assert_problem(response, 409, "version_disabled")
    _, events = await run(client, owner, agent["id"], "Hi")
    assert events[0]["data"]["agent_version"] == 1

    # Once no enabled version uses the knowledge base, it can go; version 1 then cannot be enabled again.
    await client.patch(f"/api/agents/{agent['id']}/versions/1", json={"disabled": True}, headers=headers(owner))
    assert (await client.get(f"/api/agents/{agent['id']}", headers=headers(owner))).json()["published_version"] is None
    response, _ = await run(client, owner, agent["id"], "Hi")
    assert response.status_code == 200  # the owner falls back to the draft while nothing is published
    gone = await client.delete(f"/api/knowledge-bases/{kb.json()['id']}", headers=headers(owner))
    assert gone.status_code == 204, gone.text
    broken = await client.patch(
        f"/api/agents/{agent['id']}/versions/1", json={"disabled": False}, headers=headers(owner)
    )
    assert_problem(broken, 409, "version_broken")
    enabled = await client.patch(
        f"/api/agents/{agent['id']}/versions/2", json={"disabled": False}, headers=headers(owner)
    )
    assert enabled.json()["published"] is True

    # Those who may only use the agent see neither disabled versions nor the draft.
    user = await invite_and_register(
        client, owner["access_token"], f"u-{uuid.uuid4().hex[:6]}@example.com", role="user"
    )
    group = (await client.post("/api/groups", json={"name": "Users"}, headers=headers(owner))).json()
    await client.put(f"/api/groups/{group['id']}/members/{user['user']['id']}", headers=headers(owner))
    await client.put(
        f"/api/agents/{agent['id']}/shares/{group['id']}", json={"permission": "read"}, headers=headers(owner)
    )
    listed = (await client.get(f"/api/agents/{agent['id']}/versions", headers=headers(user))).json()
    assert [v["number"] for v in listed] == [2]
    assert_problem(
        await client.get(f"/api/agents/{agent['id']}/versions/1", headers=headers(user)), 404, "version_not_found"
    )
    as_reader = await client.get(f"/api/agents/{agent['id']}/compare", params={"base": 2}, headers=headers(user))
    assert_problem(as_reader, 403, "permission_denied")
    refused = await client.post(f"/api/agents/{agent['id']}/publish", json={}, headers=headers(user))
    assert_problem(refused, 403, "permission_denied")
    response, _ = await run(client, user, agent["id"], "Hi", version="draft")
    assert_problem(response, 403, "permission_denied")
