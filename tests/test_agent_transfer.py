"""Agent import and export over HTTP: a document without the tenant's ids, mapped by name onto another tenant's
models and knowledge bases, renamed where names are taken, validated strictly, and imported all or nothing."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.agents import service as agent_service
from nexent.agents.transfer import attachment_name, export_tool, secret_settings
from nexent.identity.services import audit
from tests.conftest import PostgresDatabases, make_settings, serve_in_process
from tests.support.identity import bearer, invite_and_register, register
from tests.support.model_server import RunningModelServer, run_model_server
from tests.test_http import assert_problem


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture(params=["sqlite", "postgres"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases
) -> AsyncIterator[httpx.AsyncClient]:
    overrides: dict[str, Any] = (
        {"database_url": await pg_databases.create(migrated=True)} if request.param == "postgres" else {}
    )
    async with serve_in_process(make_settings(tmp_path, builtin_models=False, **overrides)) as http:
        yield http


class Tenant:
    """A tenant's owner, with helpers that assert success."""

    def __init__(self, client: httpx.AsyncClient, pair: dict[str, Any]) -> None:
        self.client = client
        self.pair = pair
        self.headers = bearer(pair["access_token"])
        self.tenant_id: str = pair["tenant"]["id"]
        self.user_id: str = pair["user"]["id"]

    async def post(self, path: str, body: Any, status: int = 201) -> dict[str, Any]:
        response = await self.client.post(path, json=body, headers=self.headers)
        assert response.status_code == status, response.text
        result: dict[str, Any] = response.json()
        return result

    async def model(self, name: str, model: str, base_url: str, kind: str = "llm") -> str:
        body = {"name": name, "kind": kind, "model": model, "base_url": base_url}
        return str((await self.post("/api/models", body))["id"])

    async def knowledge_base(self, name: str, llm: RunningModelServer) -> str:
        embedder = await self.model(f"Embedder {uuid.uuid4().hex[:4]}", "emb", llm.base_url, kind="embedding")
        body = {"name": name, "description": "How the machines work.", "embedding_model_id": embedder}
        return str((await self.post("/api/knowledge-bases", body))["id"])

    async def agent(self, name: str, **body: Any) -> dict[str, Any]:
        return await self.post("/api/agents", {"name": name, **body})

    async def get_agent(self, agent_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/agents/{agent_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def agent_names(self) -> list[str]:
        listed = await self.client.get("/api/agents?limit=100", headers=self.headers)
        return sorted(a["name"] for a in listed.json()["items"])

    async def export(self, agent_id: str, **params: Any) -> dict[str, Any]:
        response = await self.client.get(f"/api/agents/{agent_id}/export", params=params, headers=self.headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


async def new_tenant(client: httpx.AsyncClient, llm: RunningModelServer, label: str) -> Tenant:
    tenant = Tenant(client, await register(client, f"{label}-{uuid.uuid4().hex[:6]}@example.com"))
    await tenant.model("Scripted", "scripted", llm.base_url)  # the first LLM: the tenant's default
    return tenant


async def build_source(source: Tenant, llm: RunningModelServer) -> dict[str, Any]:
    """Lead -> (Researcher, Writer) -> Shared helper: two levels, one sub-agent used twice, a named model, a
    knowledge base and tools with settings."""
    writer_model = await source.model("Writer", "writer-x", llm.base_url)
    kb = await source.knowledge_base("Manuals", llm)
    helper = await source.agent("Shared helper", tools=[{"name": "calculator"}], max_steps=4)
    researcher = await source.agent(
        "Researcher",
        display_name="The researcher",
        description="Finds things in the manuals.",
        model_id=writer_model,
        knowledge_base_ids=[kb],
        sub_agent_ids=[helper["id"]],
        tools=[
            {"name": "fetch_webpage", "settings": {"allowed_domains": ["example.com"], "max_chars": 5000}},
            {"name": "knowledge_base_search", "settings": {"top_k": 3, "knowledge_base_ids": [kb]}},
        ],
    )
    writer = await source.agent("Writer", agent_type="code", sub_agent_ids=[helper["id"]])
    lead = await source.agent(
        "Lead",
        display_name="Team lead",
        instructions={
            "duty": "Coordinate the team.",
            "constraints": "Be brief.",
            "examples": [{"question": "Who writes?", "answer": "The writer."}],
        },
        sub_agent_ids=[researcher["id"], writer["id"]],
        greeting="Hello.",
        example_questions=["What is new?"],
        min_pass_rate=0.75,
        max_steps=7,
    )
    return {"lead": lead, "researcher": researcher, "writer": writer, "helper": helper, "kb": kb, "model": writer_model}


def comparable(agent: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    """An agent as GET shows it, its ids put through `ids`, without what differs for any new agent."""
    view = {k: v for k, v in agent.items() if k not in {"id", "created_at", "updated_at", "created_by"}}
    view["model_id"] = ids.get(agent["model_id"], agent["model_id"])
    view["sub_agent_ids"] = [ids.get(s, s) for s in agent["sub_agent_ids"]]
    view["knowledge_base_ids"] = [ids.get(k, k) for k in agent["knowledge_base_ids"]]
    # `knowledge_base_ids` of the search tool is filled in from the agent: an export leaves it out.
    view["tools"] = [
        {**t, "settings": {k: v for k, v in t["settings"].items() if k != "knowledge_base_ids"}} for t in agent["tools"]
    ]
    return view


async def test_export_maps_onto_another_tenant_and_import_reproduces_the_agents(
    client: httpx.AsyncClient, llm: RunningModelServer
) -> None:
    source = await new_tenant(client, llm, "source")
    made = await build_source(source, llm)
    exported = await client.get(f"/api/agents/{made['lead']['id']}/export", headers=source.headers)
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-disposition"].startswith('attachment; filename="Lead.nexent-agent.json"')
    document = exported.json()
    assert (document["format"], document["format_version"], document["root"]) == ("nexent.agent", 1, "a1")
    by_name = {a["name"]: a for a in document["agents"]}
    assert sorted(by_name) == ["Lead", "Researcher", "Shared helper", "Writer"]  # the shared helper once
    refs = {name: agent["ref"] for name, agent in by_name.items()}
    assert by_name["Lead"]["sub_agents"] == [refs["Researcher"], refs["Writer"]]
    assert by_name["Researcher"]["sub_agents"] == by_name["Writer"]["sub_agents"] == [refs["Shared helper"]]
    assert by_name["Researcher"]["model"] == {"name": "Writer", "kind": "llm", "model": "writer-x"}
    assert by_name["Lead"]["model"] is None and by_name["Lead"]["min_pass_rate"] == 0.75
    assert by_name["Researcher"]["knowledge_bases"] == [{"name": "Manuals", "description": "How the machines work."}]
    assert by_name["Researcher"]["tools"] == [
        {"name": "fetch_webpage", "settings": {"allowed_domains": ["example.com"], "max_chars": 5000}, "redacted": []},
        {"name": "knowledge_base_search", "settings": {"top_k": 3}, "redacted": []},
    ]
    text = exported.text
    source_ids = [source.tenant_id, source.user_id, made["kb"], made["model"]]
    source_ids += [made[k]["id"] for k in ("lead", "researcher", "writer", "helper")]
    assert [i for i in source_ids if i in text] == []

    target = await new_tenant(client, llm, "target")
    target_writer = await target.model("writer", "another-identifier", llm.base_url)
    target_kb = await target.knowledge_base("manuals", llm)
    preview = await target.post("/api/agents/import/preview", document, status=200)
    assert preview["warnings"] == []
    steps = {step["ref"]: step for step in preview["agents"]}
    assert [s["name"] for s in preview["agents"]][-1] == "Lead"  # sub-agents first
    assert preview["agents"][0]["name"] == "Shared helper"
    assert all(s["action"] == "create" and s["final_name"] == s["name"] for s in preview["agents"])
    researcher = steps[refs["Researcher"]]
    assert researcher["model"] == {"status": "mapped", "model_id": target_writer, "name": "Writer"}
    assert researcher["knowledge_bases"] == [{"name": "Manuals", "status": "mapped", "knowledge_base_id": target_kb}]
    assert [t["status"] for t in researcher["tools"]] == ["ok", "ok"]
    assert steps[refs["Lead"]]["model"] == {"status": "default", "model_id": None, "name": None}
    assert await target.agent_names() == []  # a preview writes nothing

    imported = await target.post("/api/agents/import", document)
    assert imported["warnings"] == []
    new_ids = {entry["ref"]: entry["id"] for entry in imported["agents"]}
    assert imported["root_agent_id"] == new_ids[refs["Lead"]]
    ids = {made["kb"]: target_kb, made["model"]: target_writer}
    ids |= {made[key]["id"]: new_ids[refs[name]] for key, name in [("lead", "Lead"), ("researcher", "Researcher")]}
    ids |= {made[key]["id"]: new_ids[refs[name]] for key, name in [("writer", "Writer"), ("helper", "Shared helper")]}
    for key in ("lead", "researcher", "writer", "helper"):
        original = await source.get_agent(made[key]["id"])
        copied = await target.get_agent(ids[made[key]["id"]])
        assert comparable(copied, {}) == comparable(original, ids)
        assert copied["published_version"] is None and copied["created_by"] == target.user_id


async def test_import_where_models_and_knowledge_bases_are_missing_and_names_taken(
    client: httpx.AsyncClient, llm: RunningModelServer
) -> None:
    source = await new_tenant(client, llm, "source")
    made = await build_source(source, llm)
    document = await source.export(made["lead"]["id"])
    refs = {agent["name"]: agent["ref"] for agent in document["agents"]}
    researcher = next(a for a in document["agents"] if a["name"] == "Researcher")
    researcher["tools"] += [{"name": "no_such_tool"}, {"name": "current_time", "settings": {"zone": "UTC"}}]
    # Settings the platform fills in are not taken from a document (a foreign tenant's ids, say).
    researcher["tools"][1]["settings"]["knowledge_base_ids"] = [str(uuid.uuid4())]

    target = await new_tenant(client, llm, "bare")  # no model "Writer", no knowledge base
    await target.agent("lead")
    body = {**document, "names": {refs["Writer"]: "Researcher"}}  # taken by another agent of the document
    preview = await target.post("/api/agents/import/preview", body, status=200)
    steps = {step["ref"]: step for step in preview["agents"]}
    assert steps[refs["Lead"]]["final_name"] == "Lead (2)"
    assert steps[refs["Researcher"]]["final_name"] == "Researcher"
    assert steps[refs["Writer"]]["final_name"] == "Researcher (2)"
    step = steps[refs["Researcher"]]
    assert step["model"] == {"status": "unmapped", "model_id": None, "name": "Writer"}
    assert step["knowledge_bases"] == [{"name": "Manuals", "status": "unmapped", "knowledge_base_id": None}]
    assert [(t["name"], t["status"]) for t in step["tools"]] == [
        ("fetch_webpage", "ok"),
        ("knowledge_base_search", "ok"),
        ("no_such_tool", "unknown"),
        ("current_time", "invalid_settings"),
    ]
    warnings = "\n".join(preview["warnings"])
    for expected in ("'Writer'", "'Manuals'", "'no_such_tool'", "'current_time'", "'Lead (2)'", "'Researcher (2)'"):
        assert expected in warnings

    imported = await target.post("/api/agents/import", body)
    assert imported["warnings"] == preview["warnings"]
    assert await target.agent_names() == ["Lead (2)", "Researcher", "Researcher (2)", "Shared helper", "lead"]
    created = {entry["ref"]: entry for entry in imported["agents"]}
    copied = await target.get_agent(created[refs["Researcher"]]["id"])
    assert copied["model_id"] is None and copied["knowledge_base_ids"] == []
    assert [t["name"] for t in copied["tools"]] == ["fetch_webpage", "knowledge_base_search"]
    assert copied["tools"][1]["settings"] == {"top_k": 3}
    lead = await target.get_agent(imported["root_agent_id"])
    assert lead["name"] == "Lead (2)"
    assert lead["sub_agent_ids"] == [created[refs["Researcher"]]["id"], created[refs["Writer"]]["id"]]


def one_agent(**fields: Any) -> dict[str, Any]:
    return {
        "format": "nexent.agent",
        "format_version": 1,
        "root": "a1",
        "agents": [{"ref": "a1", "name": "A", **fields}],
    }


def chain(count: int) -> dict[str, Any]:
    agents = [
        {"ref": f"a{i}", "name": f"A{i}", "sub_agents": [f"a{i + 1}"] if i < count else []} for i in range(1, count + 1)
    ]
    return {"format": "nexent.agent", "format_version": 1, "root": "a1", "agents": agents}


BAD_DOCUMENTS: dict[str, Any] = {
    "wrong format": {**one_agent(), "format": "other.agent"},
    "wrong version": {**one_agent(), "format_version": 2},
    "no agents": {**one_agent(), "agents": []},
    "missing root": {**one_agent(), "root": "a9"},
    "dangling ref": one_agent(sub_agents=["a2"]),
    "own sub-agent": one_agent(sub_agents=["a1"]),
    "cycle": {**chain(3), "agents": [*chain(3)["agents"][:2], {"ref": "a3", "name": "A3", "sub_agents": ["a1"]}]},
    "repeated ref": {**one_agent(), "agents": [{"ref": "a1", "name": "A"}, {"ref": "a1", "name": "B"}]},
    "51 agents": chain(51),
    "oversized description": one_agent(description="x" * 2001),
    "oversized name": one_agent(name="n" * 81),
    "too many steps": one_agent(max_steps=51),
    "tool twice": one_agent(tools=[{"name": "calculator"}, {"name": "calculator"}]),
    "unknown field": one_agent(secret_id=str(uuid.uuid4())),
    "embedding model": one_agent(model={"name": "E", "kind": "embedding", "model": "e"}),
    "bad ref": {**one_agent(), "root": "a 1"},
    "rename of an unknown ref": {**one_agent(), "names": {"a2": "B"}},
    "not an object": [one_agent()],
}


async def test_bad_documents_are_refused(client: httpx.AsyncClient, llm: RunningModelServer) -> None:
    tenant = await new_tenant(client, llm, "strict")
    assert (await tenant.post("/api/agents/import/preview", chain(50), status=200))["warnings"] == []
    for label, document in BAD_DOCUMENTS.items():
        for path in ("/api/agents/import/preview", "/api/agents/import"):
            response = await client.post(path, json=document, headers=tenant.headers)
            problem = assert_problem(response, 422, "validation_error")
            assert problem["errors"], label
    for path in ("/api/agents/import/preview", "/api/agents/import"):
        not_json = await client.post(
            path, content=b'{"format": "nexent.agent",', headers={**tenant.headers, "content-type": "application/json"}
        )
        assert_problem(not_json, 400, "invalid_json")
    assert await tenant.agent_names() == []


async def test_who_may_export_and_import(client: httpx.AsyncClient, llm: RunningModelServer) -> None:
    owner = await new_tenant(client, llm, "owner")
    helper = await owner.agent("Helper", instructions={"duty": "Help, version one."})
    lead = await owner.agent("Lead", sub_agent_ids=[helper["id"]])
    await owner.post(f"/api/agents/{helper['id']}/publish", {})
    await owner.post(f"/api/agents/{lead['id']}/publish", {})
    await owner.client.patch(
        f"/api/agents/{helper['id']}", json={"instructions": {"duty": "Help, the draft."}}, headers=owner.headers
    )

    # The draft, or a version with the sub-agents it pins.
    drafts = {a["name"]: a for a in (await owner.export(lead["id"]))["agents"]}
    assert drafts["Helper"]["instructions"]["duty"] == "Help, the draft."
    pinned = {a["name"]: a for a in (await owner.export(lead["id"], version=1))["agents"]}
    assert pinned["Helper"]["instructions"]["duty"] == "Help, version one."
    assert pinned["Lead"]["model"] == {"name": "Scripted", "kind": "llm", "model": "scripted"}  # resolved
    assert_problem(
        await client.get(f"/api/agents/{lead['id']}/export?version=2", headers=owner.headers), 404, "version_not_found"
    )
    assert_problem(
        await client.get(f"/api/agents/{lead['id']}/export?version=0", headers=owner.headers), 422, "validation_error"
    )

    # A member who may not manage agents reads a shared, published agent: its versions, not its draft.
    member = await invite_and_register(
        client, owner.pair["access_token"], f"m-{uuid.uuid4().hex[:6]}@example.com", role="user"
    )
    group = await owner.post("/api/groups", {"name": "Readers"})
    await client.put(f"/api/groups/{group['id']}/members/{member['user']['id']}", headers=owner.headers)
    await client.put(
        f"/api/agents/{lead['id']}/shares/{group['id']}", json={"permission": "read"}, headers=owner.headers
    )
    as_member = bearer(member["access_token"])
    export = f"/api/agents/{lead['id']}/export"
    assert_problem(await client.get(export, headers=as_member), 403, "permission_denied")
    # Its sub-agent is not shared with them: nothing of it is given away.
    assert_problem(await client.get(export, params={"version": 1}, headers=as_member), 403, "permission_denied")
    await client.put(
        f"/api/agents/{helper['id']}/shares/{group['id']}", json={"permission": "read"}, headers=owner.headers
    )
    seen = await client.get(export, params={"version": 1}, headers=as_member)
    assert seen.status_code == 200 and len(seen.json()["agents"]) == 2
    document = seen.json()
    for path in ("/api/agents/import/preview", "/api/agents/import"):
        assert_problem(await client.post(path, json=document, headers=as_member), 403, "permission_denied")

    # Another tenant's agent is not there at all.
    stranger = await new_tenant(client, llm, "stranger")
    assert_problem(await client.get(export, headers=stranger.headers), 404, "agent_not_found")
    assert_problem(await client.get(export, params={"version": 1}, headers=stranger.headers), 404, "agent_not_found")


async def test_a_failure_half_way_leaves_nothing(
    client: httpx.AsyncClient, llm: RunningModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = await new_tenant(client, llm, "source")
    made = await build_source(source, llm)
    document = await source.export(made["lead"]["id"])
    target = await new_tenant(client, llm, "target")

    calls = 0

    async def record_then_fail(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the second agent cannot be recorded")
        await audit.record(*args, **kwargs)

    monkeypatch.setattr(agent_service, "record", record_then_fail)
    failed = await client.post("/api/agents/import", json=document, headers=target.headers)
    assert failed.status_code == 500 and calls == 2
    assert await target.agent_names() == []
    events = await client.get("/api/audit-log", params={"resource_type": "agent"}, headers=target.headers)
    assert events.status_code == 200 and events.json()["total"] == 0

    monkeypatch.undo()
    again = await target.post("/api/agents/import", copy.deepcopy(document))
    assert len(again["agents"]) == 4
    assert await target.agent_names() == ["Lead", "Researcher", "Shared helper", "Writer"]


def test_secrets_and_managed_settings_stay_out_of_exports() -> None:
    schema = {
        "properties": {
            "endpoint": {"type": "string"},
            "credential": {"type": "string", "writeOnly": True, "format": "password"},
            "auth": {"type": "string", "secret": True},
            "keywords": {"type": "array"},
        }
    }
    settings = {
        "endpoint": "https://example.com",
        "credential": "c",
        "auth": "a",
        "keywords": ["x"],
        "api_key": "k",
        "apiKey": "k",
        "access_token": "t",
        "client_secret": "s",
        "db_password": "p",
    }
    assert secret_settings(settings, schema) == sorted(
        ["credential", "auth", "api_key", "apiKey", "access_token", "client_secret", "db_password"]
    )
    kb_id = str(uuid.uuid4())
    tool = export_tool({"name": "knowledge_base_search", "settings": {"knowledge_base_ids": [kb_id], "top_k": 2}})
    assert (tool.settings, tool.redacted) == ({"top_k": 2}, [])
    unknown = export_tool({"name": "gone_tool", "settings": {"token": "t", "limit": 3}})
    assert (unknown.settings, unknown.redacted) == ({"limit": 3}, ["token"])
    assert json.dumps(tool.model_dump()).find(kb_id) == -1


def test_the_file_name_of_an_export() -> None:
    assert attachment_name("Lead") == (
        "attachment; filename=\"Lead.nexent-agent.json\"; filename*=UTF-8''Lead.nexent-agent.json"
    )
    header = attachment_name('Émile "quoted"/agent')
    assert header.startswith('attachment; filename="mile-quoted-agent.nexent-agent.json"')
    assert "filename*=UTF-8''%C3%89mile%20%22quoted%22%2Fagent.nexent-agent.json" in header
    header.encode("latin-1")
