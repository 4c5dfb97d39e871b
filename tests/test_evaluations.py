"""Evaluations over HTTP, against the scripted model server: an agent's test cases, evaluating the draft or a
version through the runtime (runs as transcripts, checks, the judge), comparing evaluations, and the publish gate
on `min_pass_rate`."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.providers import pool
from tests.conftest import PostgresDatabases, make_settings, serve_in_process, wait_until
from tests.support.identity import bearer, invite_and_register
from tests.support.model_server import ChatReply, RecordedRequest, RunningModelServer, run_model_server
from tests.test_http import assert_problem
from tests.test_runs import make_agent, new_owner

JUDGE_MARK = "You grade the answer of an AI agent"
# What the judge answers for a rubric that carries one of these words.
JUDGE_REPLIES = {
    "JUDGE-PASS": "PASS: it names the capital.",
    "JUDGE-FAIL": "FAIL: it does not explain anything.",
    "JUDGE-GARBAGE": "Well, it depends on how you look at it.",
}


def scripted(request: RecordedRequest) -> ChatReply:
    """The model: answers that depend on the question and on the agent's duty (`v#fixed` knows arithmetic)."""
    text = json.dumps(request.messages)
    if JUDGE_MARK in text:
        return next(ChatReply.text(reply) for word, reply in JUDGE_REPLIES.items() if word in text)
    if "Write a title" in text:
        return ChatReply.text("A title")
    if "What breaks?" in text:
        return ChatReply.error(400, "The model refuses this question.")
    if "2+2" in text:
        return ChatReply.text("It is 4." if "v#fixed" in text else "It is 5.")
    if "France" in text:
        return ChatReply.text("Paris is the capital of France.")
    return ChatReply.text("Fine.")


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture(autouse=True)
def _fresh(llm: RunningModelServer) -> Iterator[None]:
    llm.server.reset()
    pool._unhealthy_until.clear()
    llm.server.responder = scripted
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
    return await new_owner(client, llm, f"evaluations-{uuid.uuid4().hex[:6]}@example.com")


def headers(caller: dict[str, Any]) -> dict[str, str]:
    return bearer(caller["access_token"])


def duty(text: str) -> dict[str, Any]:
    return {"duty": text, "constraints": "", "examples": []}


async def add_case(client: httpx.AsyncClient, caller: dict[str, Any], agent_id: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/api/agents/{agent_id}/test-cases", json=body, headers=headers(caller))
    assert response.status_code == 201, response.text
    case: dict[str, Any] = response.json()
    return case


async def evaluate(
    client: httpx.AsyncClient, caller: dict[str, Any], agent_id: str, target: str | int = "draft"
) -> dict[str, Any]:
    """Start an evaluation and wait until it has finished."""
    started = await client.post(f"/api/agents/{agent_id}/evaluations", json={"target": target}, headers=headers(caller))
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "queued" and started.json()["target"] == target

    async def finished() -> dict[str, Any] | None:
        response = await client.get(
            f"/api/agents/{agent_id}/evaluations/{started.json()['id']}", headers=headers(caller)
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if body["status"] in ("completed", "failed") else None

    result: dict[str, Any] = await wait_until(finished, timeout=60)
    return result


async def publish(client: httpx.AsyncClient, caller: dict[str, Any], agent_id: str) -> httpx.Response:
    return await client.post(f"/api/agents/{agent_id}/publish", json={}, headers=headers(caller))


async def patch(client: httpx.AsyncClient, caller: dict[str, Any], agent_id: str, **body: Any) -> None:
    response = await client.patch(f"/api/agents/{agent_id}", json=body, headers=headers(caller))
    assert response.status_code == 200, response.text


def agent_duties(llm: RunningModelServer) -> set[str]:
    """The duty markers (`v#…`) the agent's own model requests carried (the judge's and titles left out)."""
    found: set[str] = set()
    for request in llm.server.chat_requests:
        text = json.dumps(request.messages)
        if JUDGE_MARK not in text and "Write a title" not in text:
            found.update(re.findall(r"v#[a-z0-9]+", text))
    return found


async def test_test_cases_are_listed_changed_deleted_and_validated(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    agent = await make_agent(client, owner)
    url = f"/api/agents/{agent['id']}/test-cases"
    created = await add_case(
        client,
        owner,
        agent["id"],
        question="What is the capital of France?",
        checks=[{"type": "contains", "value": "Paris"}, {"type": "regex", "pattern": r"\bParis\b"}],
        expected_facts=["Paris"],
    )
    assert created["checks"][0] == {"type": "contains", "value": "Paris", "case_sensitive": False}
    assert created["expected_facts"] == ["Paris"] and created["agent_id"] == agent["id"]

    changed = await client.patch(
        f"{url}/{created['id']}",
        json={"checks": [{"type": "judge", "rubric": "Names Paris."}]},
        headers=headers(owner),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["checks"] == [{"type": "judge", "rubric": "Names Paris."}]
    assert changed.json()["question"] == "What is the capital of France?"
    listed = (await client.get(url, headers=headers(owner))).json()
    assert [c["id"] for c in listed] == [created["id"]]

    ok_check = {"type": "contains", "value": "x"}
    bad_bodies: list[dict[str, Any]] = [
        {"question": "", "checks": [ok_check]},
        {"question": "   ", "checks": [ok_check]},
        {"question": "x" * 8001, "checks": [ok_check]},
        {"question": "Why?", "checks": []},
        {"question": "Why?", "checks": [ok_check] * 11},
        {"question": "Why?", "checks": [{"type": "regex", "pattern": "(unclosed"}]},
        {"question": "Why?", "checks": [{"type": "regex", "pattern": "a" * 501}]},
        {"question": "Why?", "checks": [{"type": "judge", "rubric": ""}]},
        {"question": "Why?", "checks": [{"type": "judge", "rubric": "r" * 4001}]},
        {"question": "Why?", "checks": [{"type": "sounds_right"}]},
        {"question": "Why?", "checks": [{**ok_check, "extra": 1}]},
        {"question": "Why?", "checks": [ok_check], "expected_facts": [""]},
        {"checks": [ok_check]},
    ]
    for body in bad_bodies:
        assert_problem(await client.post(url, json=body, headers=headers(owner)), 422, "validation_error")
    for body in ({"question": None}, {"checks": [{"type": "regex", "pattern": "[z-a]"}]}, {"checks": []}):
        answer = await client.patch(f"{url}/{created['id']}", json=body, headers=headers(owner))
        assert_problem(answer, 422, "validation_error")

    missing = f"{url}/{uuid.uuid4()}"
    assert_problem(await client.patch(missing, json={}, headers=headers(owner)), 404, "test_case_not_found")
    assert_problem(await client.delete(missing, headers=headers(owner)), 404, "test_case_not_found")
    assert (await client.delete(f"{url}/{created['id']}", headers=headers(owner))).status_code == 204
    assert (await client.get(url, headers=headers(owner))).json() == []

    # Nothing to evaluate yet.
    none = await client.post(f"/api/agents/{agent['id']}/evaluations", json={}, headers=headers(owner))
    assert_problem(none, 409, "no_test_cases")

    # At most 100 cases per agent.
    for index in range(100):
        await add_case(client, owner, agent["id"], question=f"Question {index}?", checks=[ok_check])
    too_many = await client.post(url, json={"question": "One more?", "checks": [ok_check]}, headers=headers(owner))
    assert_problem(too_many, 409, "too_many_test_cases")


async def test_an_evaluation_of_the_draft_runs_each_case_and_checks_it(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    agent = await make_agent(client, owner, instructions=duty("Answer briefly. v#draft"))
    questions = {
        "paris": ("What is the capital of France?", [{"type": "contains", "value": "PARIS"}]),
        "maths": ("What is 2+2?", [{"type": "contains", "value": "It is"}, {"type": "regex", "pattern": r"\b4\b"}]),
        "judged": ("Tell me about France (JUDGE-PASS).", [{"type": "judge", "rubric": "Names Paris. JUDGE-PASS"}]),
        "rejected": ("France, again?", [{"type": "judge", "rubric": "Explains. JUDGE-FAIL"}]),
        "unclear": ("France, once more?", [{"type": "judge", "rubric": "Anything. JUDGE-GARBAGE"}]),
        "broken": ("What breaks?", [{"type": "contains", "value": "anything"}]),
    }
    ids = {}
    for name, (question, checks) in questions.items():
        ids[name] = (await add_case(client, owner, agent["id"], question=question, checks=checks))["id"]

    evaluation = await evaluate(client, owner, agent["id"])
    assert evaluation["status"] == "completed", evaluation
    assert (evaluation["passed"], evaluation["total"]) == (2, 6)
    assert evaluation["pass_rate"] == pytest.approx(2 / 6)
    assert evaluation["target"] == "draft" and evaluation["finished_at"] is not None
    results = {r["case_id"]: r for r in evaluation["results"]}
    assert [r["case_id"] for r in evaluation["results"]] == list(ids.values())  # the test set's order

    paris = results[ids["paris"]]
    assert paris["passed"] is True and paris["answer"] == "Paris is the capital of France."
    assert paris["checks"] == [{"type": "contains", "passed": True, "detail": "contains 'PARIS'"}]
    maths = results[ids["maths"]]
    assert maths["passed"] is False and maths["answer"] == "It is 5."
    assert [c["passed"] for c in maths["checks"]] == [True, False]
    assert results[ids["judged"]]["passed"] is True
    assert results[ids["judged"]]["checks"][0]["detail"] == "PASS: it names the capital."
    assert results[ids["rejected"]]["passed"] is False
    assert results[ids["rejected"]]["checks"][0]["detail"].startswith("FAIL")
    unclear = results[ids["unclear"]]
    assert unclear["passed"] is False and unclear["checks"][0]["detail"] == "judge answered unclearly"
    broken = results[ids["broken"]]
    assert broken["passed"] is False and broken["answer"] is None and broken["error"]

    # The judge saw the question, the rubric and the agent's answer.
    judged = [r for r in llm.server.chat_requests if JUDGE_MARK in json.dumps(r.messages)]
    assert len(judged) == 3
    assert any("Names Paris. JUDGE-PASS" in json.dumps(r.messages) for r in judged)
    assert all("Paris is the capital of France." in json.dumps(r.messages) for r in judged)

    # Every case ran as a run of the draft, which stays readable as the transcript; their conversations are gone.
    for name, case_id in ids.items():
        run_id = results[case_id]["run_id"]
        run = await client.get(f"/api/runs/{run_id}", headers=headers(owner))
        assert run.status_code == 200, run.text
        assert run.json()["input"] == questions[name][0] and run.json()["agent_version"] is None
        assert run.json()["status"] == ("failed" if name == "broken" else "completed")
        assert run.json()["conversation_id"] is None
        events = await client.get(f"/api/runs/{run_id}/events", headers=headers(owner))
        assert events.status_code == 200 and "run.started" in events.text
    conversations = (await client.get("/api/conversations", headers=headers(owner))).json()
    assert conversations["items"] == []

    listed = (await client.get(f"/api/agents/{agent['id']}/evaluations", headers=headers(owner))).json()
    assert [e["id"] for e in listed["items"]] == [evaluation["id"]] and listed["total"] == 1
    assert "results" not in listed["items"][0]
    assert_problem(
        await client.get(f"/api/agents/{agent['id']}/evaluations/{uuid.uuid4()}", headers=headers(owner)),
        404,
        "evaluation_not_found",
    )


async def test_an_evaluation_of_a_version_runs_that_version_and_compares_with_the_draft(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    agent = await make_agent(client, owner, instructions=duty("Count. v#fixed"))
    maths = await add_case(
        client, owner, agent["id"], question="What is 2+2?", checks=[{"type": "regex", "pattern": "4"}]
    )
    paris = await add_case(
        client, owner, agent["id"], question="Capital of France?", checks=[{"type": "contains", "value": "paris"}]
    )
    assert (await publish(client, owner, agent["id"])).status_code == 201
    await patch(client, owner, agent["id"], instructions=duty("Count. v#broken"))

    llm.server.reset()
    first = await evaluate(client, owner, agent["id"], 1)
    assert first["status"] == "completed" and first["target"] == 1 and first["pass_rate"] == 1.0
    assert agent_duties(llm) == {"v#fixed"}  # the model was given version 1's instructions
    for result in first["results"]:
        run = (await client.get(f"/api/runs/{result['run_id']}", headers=headers(owner))).json()
        assert run["agent_version"] == 1

    llm.server.reset()
    draft = await evaluate(client, owner, agent["id"])
    assert draft["pass_rate"] == 0.5 and agent_duties(llm) == {"v#broken"}
    assert draft["fingerprint"] != first["fingerprint"]

    compared = await client.get(
        f"/api/agents/{agent['id']}/evaluations/compare",
        params={"base": "1", "target": "draft"},
        headers=headers(owner),
    )
    assert compared.status_code == 200, compared.text
    body = compared.json()
    assert (body["base"]["id"], body["target"]["id"]) == (first["id"], draft["id"])
    rows = {row["case_id"]: row for row in body["cases"]}
    assert rows[maths["id"]]["changed"] == "broken"
    assert (rows[maths["id"]]["base"]["answer"], rows[maths["id"]]["target"]["answer"]) == ("It is 4.", "It is 5.")
    assert rows[paris["id"]]["changed"] == "same" and rows[paris["id"]]["target"]["passed"] is True
    by_id = await client.get(
        f"/api/agents/{agent['id']}/evaluations/compare",
        params={"base": draft["id"], "target": first["id"]},
        headers=headers(owner),
    )
    assert {row["changed"] for row in by_id.json()["cases"]} == {"fixed", "same"}

    compare_url = f"/api/agents/{agent['id']}/evaluations/compare"
    for params in ({"base": "nonsense"}, {}, {"base": "0"}, {"base": "1", "target": "x" * 37}):
        assert_problem(await client.get(compare_url, params=params, headers=headers(owner)), 422, "validation_error")
    assert_problem(
        await client.get(compare_url, params={"base": "7"}, headers=headers(owner)), 404, "evaluation_not_found"
    )

    url = f"/api/agents/{agent['id']}/evaluations"
    assert_problem(await client.post(url, json={"target": 9}, headers=headers(owner)), 404, "version_not_found")
    for bad in (0, -1, "latest", 1.5, "1"):
        assert_problem(await client.post(url, json={"target": bad}, headers=headers(owner)), 422, "validation_error")
    await client.patch(f"/api/agents/{agent['id']}/versions/1", json={"disabled": True}, headers=headers(owner))
    assert_problem(await client.post(url, json={"target": 1}, headers=headers(owner)), 409, "version_disabled")


async def test_publishing_needs_a_good_enough_evaluation_of_the_draft_as_it_is(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    agent = await make_agent(client, owner, instructions=duty("Count. v#broken"))
    await add_case(client, owner, agent["id"], question="What is 2+2?", checks=[{"type": "regex", "pattern": r"\b4\b"}])
    await add_case(
        client, owner, agent["id"], question="Capital of France?", checks=[{"type": "contains", "value": "Paris"}]
    )
    assert (await publish(client, owner, agent["id"])).status_code == 201  # no minimum yet: no gate
    published = await evaluate(client, owner, agent["id"], 1)
    assert published["pass_rate"] == 0.5

    await patch(client, owner, agent["id"], min_pass_rate=0.9)
    required = assert_problem(await publish(client, owner, agent["id"]), 409, "evaluation_required")
    assert "evaluate the draft first" in str(required["detail"]).lower()

    below = await evaluate(client, owner, agent["id"])
    assert below["pass_rate"] == 0.5
    refused = assert_problem(await publish(client, owner, agent["id"]), 422, "below_pass_rate")
    assert (refused["pass_rate"], refused["min_pass_rate"]) == (0.5, 0.9)
    assert (refused["published_version"], refused["published_pass_rate"]) == (1, 0.5)
    assert refused["evaluation_id"] == below["id"] and refused["published_evaluation_id"] == published["id"]

    # Fixing the draft makes the old evaluation stale: it does not count for the new draft.
    await patch(client, owner, agent["id"], instructions=duty("Count. v#fixed"))
    assert_problem(await publish(client, owner, agent["id"]), 409, "evaluation_required")
    fixed = await evaluate(client, owner, agent["id"])
    assert fixed["pass_rate"] == 1.0 and fixed["fingerprint"] != below["fingerprint"]
    # Changing what does not change behaviour (the display name) keeps the evaluation valid.
    await patch(client, owner, agent["id"], display_name="Counter")
    version = await publish(client, owner, agent["id"])
    assert version.status_code == 201, version.text
    assert version.json()["number"] == 2

    await patch(client, owner, agent["id"], instructions=duty("Count. v#fixed, and be terse"))
    assert_problem(await publish(client, owner, agent["id"]), 409, "evaluation_required")
    await patch(client, owner, agent["id"], min_pass_rate=None)
    assert (await publish(client, owner, agent["id"])).status_code == 201


async def test_who_may_evaluate(client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer) -> None:
    agent = await make_agent(client, owner)
    case = await add_case(
        client, owner, agent["id"], question="Capital of France?", checks=[{"type": "contains", "value": "Paris"}]
    )
    evaluation = await evaluate(client, owner, agent["id"])
    base = f"/api/agents/{agent['id']}"

    # Another tenant's owner finds nothing.
    stranger = await new_owner(client, llm, f"stranger-{uuid.uuid4().hex[:6]}@example.com")
    own_agent = await make_agent(client, stranger)
    for method, url, body in (
        ("GET", f"{base}/test-cases", None),
        ("POST", f"{base}/test-cases", {"question": "Hi?", "checks": [{"type": "contains", "value": "x"}]}),
        ("PATCH", f"{base}/test-cases/{case['id']}", {"question": "Changed?"}),
        ("DELETE", f"{base}/test-cases/{case['id']}", None),
        ("POST", f"{base}/evaluations", {"target": "draft"}),
        ("GET", f"{base}/evaluations", None),
        ("GET", f"{base}/evaluations/{evaluation['id']}", None),
        ("GET", f"{base}/evaluations/compare?base=draft", None),
    ):
        answer = await client.request(method, url, json=body, headers=headers(stranger))
        assert_problem(answer, 404, "agent_not_found")
    # Nor through an agent of their own.
    for url in (
        f"/api/agents/{own_agent['id']}/evaluations/{evaluation['id']}",
        f"/api/agents/{own_agent['id']}/evaluations/compare?base={evaluation['id']}&target={evaluation['id']}",
    ):
        assert_problem(await client.get(url, headers=headers(stranger)), 404, "evaluation_not_found")
    assert_problem(
        await client.patch(
            f"/api/agents/{own_agent['id']}/test-cases/{case['id']}", json={"question": "x?"}, headers=headers(stranger)
        ),
        404,
        "test_case_not_found",
    )

    # A member the agent is shared with to read sees the test set and the evaluations, and changes nothing (they
    # see agents once published).
    assert (await publish(client, owner, agent["id"])).status_code == 201
    reader = await invite_and_register(
        client, owner["access_token"], f"reader-{uuid.uuid4().hex[:6]}@example.com", role="user"
    )
    group = (await client.post("/api/groups", json={"name": "Readers"}, headers=headers(owner))).json()
    await client.put(f"/api/groups/{group['id']}/members/{reader['user']['id']}", headers=headers(owner))
    await client.put(f"{base}/shares/{group['id']}", json={"permission": "read"}, headers=headers(owner))
    assert [c["id"] for c in (await client.get(f"{base}/test-cases", headers=headers(reader))).json()] == [case["id"]]
    listed = (await client.get(f"{base}/evaluations", headers=headers(reader))).json()
    assert [e["id"] for e in listed["items"]] == [evaluation["id"]]
    started = await client.post(f"{base}/evaluations", json={"target": "draft"}, headers=headers(reader))
    assert_problem(started, 403, "permission_denied")
    added = await client.post(
        f"{base}/test-cases",
        json={"question": "Hi?", "checks": [{"type": "contains", "value": "x"}]},
        headers=headers(reader),
    )
    assert_problem(added, 403, "permission_denied")
    assert_problem(
        await client.delete(f"{base}/test-cases/{case['id']}", headers=headers(reader)), 403, "permission_denied"
    )


async def test_an_evaluation_cut_short_by_a_stop_does_not_stay_running(tmp_path: Path, llm: RunningModelServer) -> None:
    settings = make_settings(tmp_path, builtin_models=False)
    async with serve_in_process(settings) as client:
        owner = await new_owner(client, llm, f"stop-{uuid.uuid4().hex[:6]}@example.com")
        agent = await make_agent(client, owner)
        await add_case(client, owner, agent["id"], question="Slowly?", checks=[{"type": "contains", "value": "x"}])
        llm.server.responder = lambda request: ChatReply.text("Still thinking.").paced(delay=30)
        started = await client.post(f"/api/agents/{agent['id']}/evaluations", json={}, headers=headers(owner))
        assert started.status_code == 202, started.text
        url = f"/api/agents/{agent['id']}/evaluations/{started.json()['id']}"

        async def running() -> bool:
            return bool((await client.get(url, headers=headers(owner))).json()["status"] == "running")

        await wait_until(running, timeout=30)
        # One at a time: a second evaluation of the agent waits for the first.
        again = await client.post(f"/api/agents/{agent['id']}/evaluations", json={}, headers=headers(owner))
        assert_problem(again, 409, "evaluation_running")
    # The platform stopped with the evaluation under way; started again, it shows it failed, and a new one may start.
    llm.server.responder = scripted
    async with serve_in_process(settings) as client:
        stopped = (await client.get(url, headers=headers(owner))).json()
        assert stopped["status"] == "failed" and "stopped" in stopped["error"] and stopped["finished_at"] is not None
        assert (await evaluate(client, owner, agent["id"]))["status"] == "completed"
