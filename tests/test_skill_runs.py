"""Skills in runs, against the scripted model server: the instructions list only names and descriptions; the
agent loads a skill on demand (`skill.loaded`), reads its files and runs its scripts in the sandbox."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.providers import pool
from tests.conftest import PostgresDatabases, make_settings, serve_in_process
from tests.support.identity import bearer
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server
from tests.test_runs import make_agent, new_owner, parse_sse, run
from tests.test_skills import default_files, make_zip, skill_md, upload_zip


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


@pytest.fixture
async def owner(client: httpx.AsyncClient, llm: RunningModelServer) -> dict[str, Any]:
    return await new_owner(client, llm, f"skills-run-{uuid.uuid4().hex[:6]}@example.com")


async def skill_for(client: httpx.AsyncClient, owner: dict[str, Any], files: dict[str, bytes | str]) -> dict[str, Any]:
    response = await upload_zip(client, owner["access_token"], make_zip(files))
    assert response.status_code == 201, response.text
    skill: dict[str, Any] = response.json()
    return skill


def results(events: list[dict[str, Any]], name: str) -> list[str]:
    calls = {e["data"]["call_id"] for e in events if e["type"] == "tool.call" and e["data"]["name"] == name}
    return [e["data"]["output"] for e in events if e["type"] == "tool.result" and e["data"]["call_id"] in calls]


async def test_a_run_loads_a_skill_on_demand(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    skill = await skill_for(client, owner, default_files())
    agent = await make_agent(client, owner, skill_ids=[skill["id"]], instructions={"duty": "Help with data."})
    llm.server.enqueue(
        ChatReply.tool_call("load_skill", {"name": "csv-summary"}),
        ChatReply.tool_call("read_skill_file", {"name": "csv-summary", "path": "reference/format.md"}),
        ChatReply.tool_call("load_skill", {"name": "nope"}),
        ChatReply.text("Done."),
        ChatReply.text('"Title"'),
    )
    response, events = await run(client, owner, agent["id"], "Summarise my CSV.")
    assert response.status_code == 200
    assert events[-1]["type"] == "run.completed", events[-1]

    # Before loading, the model saw the name and description only, and the skill tools.
    first = llm.server.chat_requests[0]
    system = first.messages[0]["content"]
    assert "csv-summary: Turns CSV files into summaries." in system and "# CSV summaries" not in system
    assert {"load_skill", "read_skill_file"} <= {t["function"]["name"] for t in first.tools or []}

    loaded = json.loads(results(events, "load_skill")[0])
    assert loaded["instructions"].startswith("# CSV summaries") and loaded["version"] == 1
    assert loaded["files"] == ["SKILL.md", "reference/format.md", "scripts/summarise.py"]
    assert [r.strip() for r in results(events, "read_skill_file")] == ["Columns are separated by commas."]
    assert json.loads(results(events, "load_skill")[1])["error"] == "unknown_skill"
    assert [e["data"] for e in events if e["type"] == "skill.loaded"] == [{"name": "csv-summary", "version": 1}]
    stored = await client.get(f"/api/runs/{response.headers['x-run-id']}/events", headers=bearer(owner["access_token"]))
    assert "event: skill.loaded" in stored.text


async def test_a_published_version_runs_the_skill_version_it_pinned(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    token = owner["access_token"]
    skill = await skill_for(client, owner, default_files())
    agent = await make_agent(client, owner, skill_ids=[skill["id"]])
    assert (await client.post(f"/api/agents/{agent['id']}/publish", json={}, headers=bearer(token))).status_code == 201
    changed = await client.patch(
        f"/api/skills/{skill['id']}", json={"body": "New instructions."}, headers=bearer(token)
    )
    assert changed.json()["version"] == 2
    for version, expected in ((None, 1), ("draft", 2)):
        llm.server.reset()
        llm.server.enqueue(
            ChatReply.tool_call("load_skill", {"name": "csv-summary"}), ChatReply.text("Ok."), ChatReply.text('"T"')
        )
        extra = {} if version is None else {"version": version}
        _, events = await run(client, owner, agent["id"], "Go.", **extra)
        assert [e["data"]["version"] for e in events if e["type"] == "skill.loaded"] == [expected]


async def test_a_run_runs_a_skill_script_in_the_sandbox(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    files = {
        **default_files(),
        "scripts/summarise.py": "import os, sys\nprint('rows:', len(sys.argv) - 1, sorted(os.environ))\n",
    }
    skill = await skill_for(client, owner, files)
    agent = await make_agent(client, owner, skill_ids=[skill["id"]])
    llm.server.enqueue(
        ChatReply.tool_call(
            "run_skill_script", {"name": "csv-summary", "path": "scripts/summarise.py", "args": ["a", "b", "c"]}
        ),
        ChatReply.tool_call("run_skill_script", {"name": "csv-summary", "path": "reference/format.md"}),
        ChatReply.text("Done."),
        ChatReply.text('"T"'),
    )
    _, events = await run(client, owner, agent["id"], "Summarise.")
    assert events[-1]["type"] == "run.completed", events[-1]
    ran, refused = (json.loads(output) for output in results(events, "run_skill_script"))
    assert refused["error"] == "not_a_script"
    if os.geteuid() == 0:
        assert ran["exit_code"] == 0 and ran["stdout"] == "rows: 3 ['HOME', 'LANG', 'PATH', 'TMPDIR']\n"
    else:
        assert ran["error"] == "script_not_run"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP listener on 127.0.0.1 that a skill's script tries to reach."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server


def _reaching(port: int) -> dict[str, bytes | str]:
    """A skill whose SKILL.md asks for the network and whose script says whether it reached `port`."""
    manifest = skill_md().replace("allowed-tools:", "network: true\nallowed-tools:", 1)
    script = (
        f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
        "    print('CONNECTED')\nexcept OSError as exc:\n    print('refused', exc)\n"
    )
    return {**default_files(), "SKILL.md": manifest, "scripts/reach.py": script}


async def _reach(client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer, skill_id: str) -> str:
    """Run an agent whose model calls the skill's script once; the script's output. (Titles are written when the
    process is quiet, so the model answers by what it is asked, not from a queue.)"""

    def respond(request: Any) -> ChatReply:
        if "Write a title" in json.dumps(request.messages):
            return ChatReply.text("Reaching")
        if "exit_code" in json.dumps(request.messages[-1]):
            return ChatReply.text("Done.")
        return ChatReply.tool_call("run_skill_script", {"name": "csv-summary", "path": "scripts/reach.py"})

    agent = await make_agent(client, owner, skill_ids=[skill_id])
    llm.server.responder = respond
    try:
        _, events = await run(client, owner, agent["id"], "Reach.")
    finally:
        llm.server.responder = None
    assert events[-1]["type"] == "run.completed", events[-1]
    (output,) = results(events, "run_skill_script")
    ran = json.loads(output)
    assert ran.get("exit_code") == 0, ran
    stdout: str = ran["stdout"]
    return stdout


async def _network(client: httpx.AsyncClient, owner: dict[str, Any], on: bool) -> None:
    response = await client.patch("/api/tenant", json={"skills_network": on}, headers=bearer(owner["access_token"]))
    assert response.status_code == 200 and response.json()["skills_network"] is on, response.text


@pytest.mark.skipif(os.geteuid() != 0, reason="skill scripts run only as root (the sandbox's script mode)")
@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_a_script_reaches_the_network_only_where_its_tenant_and_the_operator_allow_it(
    database: str,
    tmp_path: Path,
    pg_databases: PostgresDatabases,
    llm: RunningModelServer,
    listener: socket.socket,
) -> None:
    port = int(listener.getsockname()[1])
    overrides: dict[str, Any] = (
        {"database_url": await pg_databases.create(migrated=True)} if database == "postgres" else {}
    )
    settings = make_settings(tmp_path, builtin_models=False, skills_network=True, **overrides)
    async with serve_in_process(settings) as client:
        owner = await new_owner(client, llm, f"net-{uuid.uuid4().hex[:6]}@example.com")
        other = await new_owner(client, llm, f"net-other-{uuid.uuid4().hex[:6]}@example.com")
        skill = await skill_for(client, owner, _reaching(port))
        others = await skill_for(client, other, _reaching(port))
        assert skill["network"] is True and others["network"] is True

        # The operator allows it and the manifest asks, but the tenant has not turned it on.
        assert (await _reach(client, owner, llm, skill["id"])).startswith("refused")
        await _network(client, owner, True)
        assert await _reach(client, owner, llm, skill["id"]) == "CONNECTED\n"
        # Another tenant's scripts stay off the network.
        assert (await _reach(client, other, llm, others["id"])).startswith("refused")
        await _network(client, owner, False)
        assert (await _reach(client, owner, llm, skill["id"])).startswith("refused")


@pytest.mark.skipif(os.geteuid() != 0, reason="skill scripts run only as root (the sandbox's script mode)")
async def test_without_the_operators_switch_a_tenant_cannot_open_the_network(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer, listener: socket.socket
) -> None:
    skill = await skill_for(client, owner, _reaching(int(listener.getsockname()[1])))
    await _network(client, owner, True)
    assert (await _reach(client, owner, llm, skill["id"])).startswith("refused")


DRAFT = """```markdown
---
name: pdf-forms
description: Fills PDF forms from a table of answers. Use it when a user sends a form.
---

# PDF forms

1. Read the form's fields.
2. Fill them.
```"""


async def test_a_skill_is_drafted_by_a_model_and_nothing_is_stored(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    headers = bearer(owner["access_token"])
    llm.server.enqueue(ChatReply.text(DRAFT).paced(chunk_size=7))
    response = await client.post("/api/skills/generate", json={"description": "Fill PDF forms."}, headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    deltas = [e["data"]["delta"] for e in events if e["type"] == "skill.delta"]
    assert len(deltas) > 3 and "".join(deltas) == DRAFT
    final = events[-1]
    assert final["type"] == "skill.completed"
    assert (final["data"]["name"], final["data"]["content"].startswith("---\nname: pdf-forms")) == ("pdf-forms", True)
    assert "Fill PDF forms." in json.dumps(llm.server.chat_requests[0].messages)
    assert (await client.get("/api/skills", headers=headers)).json()["total"] == 0

    # A draft that does not parse still comes back, with what to fix.
    llm.server.enqueue(ChatReply.text("---\nname: Bad Name\ndescription: d\n---\nbody"))
    response = await client.post("/api/skills/generate", json={"description": "x"}, headers=headers)
    final = parse_sse(response.text)[-1]
    assert final["data"]["problem"]["field"] == "name" and "name" not in final["data"]

    llm.server.enqueue(*[ChatReply.error(500, "boom")] * 3)
    response = await client.post("/api/skills/generate", json={"description": "x"}, headers=headers)
    assert parse_sse(response.text)[-1]["type"] == "skill.failed"
    refused = await client.post(
        "/api/skills/generate", json={"description": "x", "model_id": str(uuid.uuid4())}, headers=headers
    )
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_generation"
