"""Agents drafted by the tenant's LLM (`POST /api/agents/generate`) and their instructions improved from a note and
a conversation (`POST /api/agents/{id}/improve`), over HTTP against the scripted model server: the stream field by
field, what the model is told, what of its answer survives the checks, failures, refusals, and that nothing is
stored."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.agents.generation import SectionParser, SectionText, language_of, load_prompt
from nexent.agents.schemas import GENERATION_EVENTS, GeneratedField
from nexent.providers import pool
from nexent.server import create_app
from tests.conftest import make_settings, serve_in_process, wait_until
from tests.support.identity import bearer, invite_and_register
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server
from tests.test_http import assert_problem
from tests.test_runs import make_agent, new_owner, parse_sse, run

FIELDS: list[GeneratedField] = [
    "name",
    "display_name",
    "description",
    "duty",
    "constraints",
    "examples",
    "tools",
    "knowledge_base_ids",
]

FULL_ANSWER = """### name
Trip Planner

### display_name
Trip planner for families

### description
Plans family trips.

### duty
You plan trips step by step.
Ask for dates and budget first.

### constraints
- Never book anything.
- Answer in short lists.

### examples
Q: Plan a weekend in Rome.
A: Day 1: the Colosseum.
Day 2: the Vatican.
Q: What should I pack?
A: Light clothes.

### tools
- fetch_webpage
- current_time
- teleporter

### knowledge_bases
Travel Guides
Secret Plans
"""


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture(autouse=True)
def _fresh(llm: RunningModelServer) -> Iterator[None]:
    llm.server.reset()
    pool._unhealthy_until.clear()
    yield
    llm.server.responder = None


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(make_settings(tmp_path, builtin_models=False)) as http:
        yield http


@pytest.fixture
async def owner(client: httpx.AsyncClient, llm: RunningModelServer) -> dict[str, Any]:
    return await new_owner(client, llm, f"drafter-{uuid.uuid4().hex[:6]}@example.com")


def auth(who: dict[str, Any]) -> dict[str, str]:
    return bearer(who["access_token"])


async def generate(
    client: httpx.AsyncClient, who: dict[str, Any], headers: dict[str, str] | None = None, **body: Any
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    response = await client.post("/api/agents/generate", json=body, headers={**auth(who), **(headers or {})})
    return response, parse_sse(response.text) if response.status_code == 200 else []


async def improve(
    client: httpx.AsyncClient, who: dict[str, Any], agent_id: str, **body: Any
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    response = await client.post(f"/api/agents/{agent_id}/improve", json=body, headers=auth(who))
    return response, parse_sse(response.text) if response.status_code == 200 else []


async def add_model(client: httpx.AsyncClient, who: dict[str, Any], llm: RunningModelServer, **body: Any) -> str:
    response = await client.post(
        "/api/models",
        json={"name": f"Model {uuid.uuid4().hex[:6]}", "base_url": llm.base_url, **body},
        headers=auth(who),
    )
    assert response.status_code == 201, response.text
    model_id: str = response.json()["id"]
    return model_id


async def add_knowledge_base(client: httpx.AsyncClient, who: dict[str, Any], llm: RunningModelServer, name: str) -> str:
    embedder = await add_model(client, who, llm, kind="embedding", model="emb")
    kb = await client.post(
        "/api/knowledge-bases",
        json={"name": name, "description": f"{name}: what travellers ask.", "embedding_model_id": embedder},
        headers=auth(who),
    )
    assert kb.status_code == 201, kb.text
    kb_id: str = kb.json()["id"]
    return kb_id


def deltas_of(events: list[dict[str, Any]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for event in events:
        if event["type"] == "field.delta":
            joined[event["data"]["field"]] = joined.get(event["data"]["field"], "") + event["data"]["delta"]
    return joined


def completed_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["data"]["field"]: e["data"]["value"] for e in events if e["type"] == "field.completed"}


async def agent_count(client: httpx.AsyncClient, who: dict[str, Any]) -> int:
    total: int = (await client.get("/api/agents", headers=auth(who))).json()["total"]
    return total


async def test_a_draft_streams_field_by_field_and_keeps_only_what_exists(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    kb_id = await add_knowledge_base(client, owner, llm, "Travel Guides")
    stranger = await new_owner(client, llm, f"stranger-{uuid.uuid4().hex[:6]}@example.com")
    await add_knowledge_base(client, stranger, llm, "Secret Plans")
    await make_agent(client, owner, name="trip planner")  # the name the model will suggest, in another case
    agents_before = await agent_count(client, owner)

    llm.server.enqueue(ChatReply.text(FULL_ANSWER).paced(chunk_size=5))
    response, events = await generate(
        client, owner, description="An agent that plans family trips.", model_id=owner["model_id"]
    )

    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert [e["type"] for e in events if not e["type"].startswith("field.")] == ["draft.completed"]
    assert events[-1]["type"] == "draft.completed"
    # Fields complete in the answer's order, each after all of its deltas, and long ones arrive in pieces.
    completed = [e for e in events if e["type"] == "field.completed"]
    assert [e["data"]["field"] for e in completed] == FIELDS
    for event in completed:
        name = event["data"]["field"]
        last_delta = max(i for i, e in enumerate(events) if e["type"] == "field.delta" and e["data"]["field"] == name)
        assert last_delta < events.index(event)
    assert sum(1 for e in events if e["type"] == "field.delta" and e["data"]["field"] == "duty") > 3

    deltas, values = deltas_of(events), completed_of(events)
    for name in ("display_name", "description", "duty", "constraints"):
        assert deltas[name] == values[name]
    assert values["duty"] == "You plan trips step by step.\nAsk for dates and budget first."
    assert deltas["name"] == "Trip Planner" and values["name"] == "Trip Planner 2"  # "trip planner" exists
    assert values["examples"] == [
        {"question": "Plan a weekend in Rome.", "answer": "Day 1: the Colosseum.\nDay 2: the Vatican."},
        {"question": "What should I pack?", "answer": "Light clothes."},
    ]
    assert values["tools"] == ["fetch_webpage", "current_time"]
    assert values["knowledge_base_ids"] == [kb_id]  # not the other tenant's "Secret Plans"

    end = events[-1]["data"]
    assert end["draft"] == values and end["missing"] == []
    assert end["prompt_version"] == load_prompt("generate", "en").version
    notes = " ".join(end["notes"])
    assert "teleporter" in notes and "Secret Plans" in notes and "'Trip Planner 2'" in notes

    # What the model was told: the English template, the catalog, the caller's knowledge bases only.
    request = llm.server.chat_requests[-1]
    system, user = request.messages[0]["content"], request.messages[1]["content"]
    assert system.startswith("You design AI agents") and "- calculator:" in system
    assert "- Travel Guides: Travel Guides: what travellers ask." in system and "Secret Plans" not in system
    assert user == "An agent that plans family trips."
    assert request.stream

    # Nothing was stored, and the draft is what creating an agent takes.
    assert await agent_count(client, owner) == agents_before
    draft = end["draft"]
    created = await client.post(
        "/api/agents",
        json={
            "name": draft["name"],
            "display_name": draft["display_name"],
            "description": draft["description"],
            "instructions": {k: draft[k] for k in ("duty", "constraints", "examples")},
            "tools": [{"name": name} for name in draft["tools"]],
            "knowledge_base_ids": draft["knowledge_base_ids"],
        },
        headers=auth(owner),
    )
    assert created.status_code == 201, created.text


async def test_one_field_again_with_the_draft_as_context(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    llm.server.enqueue(ChatReply.text("### duty\nYou plan cheaper trips.\n\n### name\nSomething Else\n"))
    response, events = await generate(
        client,
        owner,
        description="An agent that plans family trips.",
        fields=["duty"],
        current={"name": "Trip Planner", "duty": "You plan trips.", "tools": ["calculator"]},
    )  # no model_id: the tenant's default LLM
    assert response.status_code == 200
    assert {e["data"]["field"] for e in events if e["type"].startswith("field.")} == {"duty"}
    end = events[-1]
    assert end["type"] == "draft.completed"
    assert end["data"]["draft"] == {"duty": "You plan cheaper trips."} and end["data"]["missing"] == []
    system = llm.server.chat_requests[-1].messages[0]["content"]
    assert "Sections to write: duty\n" in system
    assert "### name\nTrip Planner" in system and "### duty\nYou plan trips." in system
    assert "### tools\ncalculator" in system


async def test_chinese_uses_the_chinese_template(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    answer = (
        "好的，以下是草稿：\n**名称：** 旅行助手\n### duty\n你负责规划旅行。\n### examples\n**问：** 去哪里？\n"  # noqa: RUF001 (full-width punctuation, as Chinese text has it)
        "**答：** 北京。\n### tools\ncalculator，current_time\n"  # noqa: RUF001
    )
    llm.server.enqueue(ChatReply.text(answer).paced(chunk_size=3))
    response, events = await generate(
        client, owner, description="一个规划旅行的智能体。", language="zh", fields=["name", "duty", "examples", "tools"]
    )
    assert response.status_code == 200
    end = events[-1]["data"]
    assert end["draft"] == {
        "name": "旅行助手",
        "duty": "你负责规划旅行。",
        "examples": [{"question": "去哪里？", "answer": "北京。"}],  # noqa: RUF001
        "tools": ["calculator", "current_time"],
    }
    assert end["missing"] == []
    system = llm.server.chat_requests[-1].messages[0]["content"]
    assert system.startswith("你为 Nexent 平台设计 AI 智能体") and "请用中文编写内容" in system

    # Without `language`, Accept-Language decides; an explicit one wins over it.
    for headers, body, expected in (
        ({"Accept-Language": "fr-FR, zh-CN;q=0.9, en;q=0.8"}, {}, "你为 Nexent"),
        ({"Accept-Language": "zh-CN"}, {"language": "en"}, "You design"),
        ({"Accept-Language": "de-DE"}, {}, "You design"),
    ):
        llm.server.enqueue(ChatReply.text("### duty\nx\n"))
        response, _ = await generate(client, owner, headers, description="A trip agent.", fields=["duty"], **body)
        assert response.status_code == 200
        assert llm.server.chat_requests[-1].messages[0]["content"].startswith(expected)


async def test_malformed_answers_give_a_partial_draft_or_bad_output(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    llm.server.enqueue(ChatReply.text("I am sorry, I cannot help with that."))
    response, events = await generate(client, owner, description="An agent.")
    assert response.status_code == 200
    assert [e["type"] for e in events] == ["generation.failed"]
    assert events[0]["data"]["code"] == "bad_output"
    assert events[0]["data"]["draft"] == {} and events[0]["data"]["missing"] == FIELDS

    messy = (
        "```markdown\n### Name\n"
        + "N" * 81
        + "\n\n**Duty**\n  You help.\n\n#### Steps\n1. Listen.\n```\n"
        + "## Mood\nhappy\n### tools\nteleporter\n### constraints\n\n### examples\nQ: no answer here\n"
    )
    llm.server.enqueue(ChatReply.text(messy).paced(chunk_size=4))
    response, events = await generate(client, owner, description="An agent.")
    end = events[-1]
    assert end["type"] == "draft.completed"
    # The fence inside the duty stays out of the value; the heading below the duty's is part of it.
    assert end["data"]["draft"] == {"duty": "You help.\n\n#### Steps\n1. Listen."}
    assert end["data"]["missing"] == [f for f in FIELDS if f != "duty"]
    notes = " ".join(end["data"]["notes"])
    assert "longer than 80" in notes and "teleporter" in notes and "'mood'" in notes
    assert "without a question and an answer" in notes
    assert "happy" not in str(deltas_of(events))


async def test_a_model_that_fails_ends_the_stream_with_its_code(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    llm.server.enqueue(*[ChatReply.error(500, "boom")] * 3)
    response, events = await generate(client, owner, description="An agent.")
    assert response.status_code == 200
    assert [e["type"] for e in events] == ["generation.failed"]
    assert events[0]["data"]["code"] == "server_error"

    llm.server.enqueue(ChatReply.error(401, "bad key"))
    _, events = await generate(client, owner, description="An agent.")
    assert events[-1]["type"] == "generation.failed" and events[-1]["data"]["code"] == "auth"

    # Cut off after the name: the name stands, the rest is missing.
    cut = ChatReply.dropped(after_chunks=9, content="### name\nHalf Agent\n### duty\nYou do half of everything.")
    llm.server.enqueue(cut.paced(chunk_size=4))
    _, events = await generate(client, owner, description="An agent.")
    end = events[-1]["data"]
    assert events[-1]["type"] == "generation.failed" and end["code"] == "network"
    assert end["draft"] == {"name": "Half Agent"} and end["missing"] == [f for f in FIELDS if f != "name"]
    assert completed_of(events) == {"name": "Half Agent"}

    slow = await add_model(client, owner, llm, kind="llm", model="slow", timeout_seconds=0.3)
    llm.server.enqueue(*[ChatReply.text("### duty\nlate").paced(delay=2)] * 3, model="slow")
    response, events = await generate(client, owner, description="An agent.", model_id=slow)
    assert response.status_code == 200
    assert events[-1]["type"] == "generation.failed" and events[-1]["data"]["code"] == "timeout"


async def test_bad_requests_are_refused_before_any_stream(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    for body in (
        {"description": ""},
        {"description": "   "},
        {"description": "x" * 4001},
        {"description": "An agent.", "fields": ["nickname"]},
        {"description": "An agent.", "fields": []},
        {"description": "An agent.", "language": "fr"},
        {"description": "An agent.", "current": {"name": "x", "mood": "happy"}},
        {"description": "An agent.", "model_id": "not-a-uuid"},
        {"description": "An agent.", "unknown": 1},
    ):
        response, _ = await generate(client, owner, **body)
        assert_problem(response, 422, "validation_error")

    stranger = await new_owner(client, llm, f"stranger-{uuid.uuid4().hex[:6]}@example.com")
    embedder = await add_model(client, owner, llm, kind="embedding", model="emb")
    for model_id in (stranger["model_id"], embedder, str(uuid.uuid4())):
        response, _ = await generate(client, owner, description="An agent.", model_id=model_id)
        body = assert_problem(response, 422, "invalid_generation")
        assert body["errors"][0]["loc"] == ["body", "model_id"]  # type: ignore[index]
    assert llm.server.chat_requests == []

    member = await invite_and_register(client, owner["access_token"], f"m-{uuid.uuid4().hex[:6]}@x.com", role="user")
    response, _ = await generate(client, member, description="An agent.")
    assert_problem(response, 403, "permission_denied")
    key = (await client.post("/api/api-keys", json={"name": "k"}, headers=auth(owner))).json()
    response = await client.post(
        "/api/agents/generate", json={"description": "An agent."}, headers=bearer(key["secret"])
    )
    assert_problem(response, 403, "api_key_not_allowed")
    assert (await client.post("/api/agents/generate", json={"description": "An agent."})).status_code == 401


async def test_improving_an_agent_from_a_conversation(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    agent = await make_agent(
        client,
        owner,
        instructions={"duty": "Answer travel questions.", "examples": [{"question": "Hi", "answer": "Hello"}]},
        tools=[{"name": "calculator"}],
    )
    llm.server.enqueue(ChatReply.text("I do not know."), ChatReply.text("Rome"))  # the answer, then the title
    response, _ = await run(client, owner, agent["id"], "How far is Rome from Paris?")
    conversation_id = response.headers["x-conversation-id"]
    await wait_until(lambda: _idle(llm), timeout=10)

    answer = (
        "### duty\nAnswer travel questions; estimate distances.\n### constraints\n- Never say only 'I do not know'.\n"
        "### examples\nQ: How far is Rome from Paris?\nA: About 1,100 km.\n### name\nIgnored\n"
    )
    llm.server.enqueue(ChatReply.text(answer).paced(chunk_size=6))
    response, events = await improve(
        client, owner, agent["id"], conversation_id=conversation_id, note="It did not even try to answer."
    )
    assert response.status_code == 200
    assert [e["data"]["field"] for e in events if e["type"] == "field.completed"] == [
        "duty",
        "constraints",
        "examples",
    ]
    end = events[-1]["data"]
    assert events[-1]["type"] == "draft.completed" and end["missing"] == []
    assert end["draft"]["duty"] == "Answer travel questions; estimate distances."
    assert end["draft"]["examples"] == [{"question": "How far is Rome from Paris?", "answer": "About 1,100 km."}]
    assert end["prompt_version"] == load_prompt("improve", "en").version
    request = llm.server.chat_requests[-1]
    system = request.messages[0]["content"]
    assert system.startswith("You improve the instructions")
    assert "user: How far is Rome from Paris?" in system and "assistant: I do not know." in system
    assert "### duty\nAnswer travel questions." in system and "Its tools: calculator" in system
    assert request.messages[1]["content"] == "It did not even try to answer."
    # Nothing changed.
    stored = (await client.get(f"/api/agents/{agent['id']}", headers=auth(owner))).json()
    assert stored["instructions"]["duty"] == "Answer travel questions."

    # Without a conversation, in Chinese.
    llm.server.enqueue(ChatReply.text("### duty\n回答旅行问题。\n"))
    response, events = await improve(client, owner, agent["id"], note="太简短了。", language="zh")
    assert events[-1]["data"]["draft"] == {"duty": "回答旅行问题。"}
    assert events[-1]["data"]["missing"] == ["constraints", "examples"]
    system = llm.server.chat_requests[-1].messages[0]["content"]
    assert system.startswith("你负责改进") and "(none)" in system


async def test_improve_reads_only_the_callers_conversations_with_that_agent(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    agent = await make_agent(client, owner)
    other_agent = await make_agent(client, owner)
    llm.server.enqueue(ChatReply.text("Answer."), ChatReply.text("Title"))
    response, _ = await run(client, owner, agent["id"], "Question?")
    conversation_id = response.headers["x-conversation-id"]
    await wait_until(lambda: _idle(llm), timeout=10)

    # A developer of the tenant may edit the agent, but the owner's conversation is not theirs.
    developer = await invite_and_register(
        client, owner["access_token"], f"dev-{uuid.uuid4().hex[:6]}@x.com", role="developer"
    )
    response, _ = await improve(client, developer, agent["id"], conversation_id=conversation_id, note="Bad.")
    assert_problem(response, 404, "conversation_not_found")
    response, _ = await improve(client, owner, other_agent["id"], conversation_id=conversation_id, note="Bad.")
    assert_problem(response, 422, "conversation_of_another_agent")
    response, _ = await improve(client, owner, agent["id"], conversation_id=str(uuid.uuid4()), note="Bad.")
    assert_problem(response, 404, "conversation_not_found")
    response, _ = await improve(client, owner, agent["id"], note="")
    assert_problem(response, 422, "validation_error")

    # Another tenant's owner does not see the agent; a member who may only use it may not change it.
    stranger = await new_owner(client, llm, f"stranger-{uuid.uuid4().hex[:6]}@example.com")
    response, _ = await improve(client, stranger, agent["id"], note="Bad.")
    assert_problem(response, 404, "agent_not_found")
    member = await invite_and_register(client, owner["access_token"], f"m-{uuid.uuid4().hex[:6]}@x.com", role="user")
    response, _ = await improve(client, member, agent["id"], note="Bad.")
    assert_problem(response, 404, "agent_not_found")
    assert len(llm.server.chat_requests) == 2  # the run and its title only


async def _idle(llm: RunningModelServer) -> bool:
    """The run and its title are answered (so that they take no reply meant for a generation)."""
    return llm.server.pending() == 0 and llm.server.in_flight == 0


@pytest.mark.parametrize("size", [1, 2, 5, 1000])
def test_the_parser_gives_the_same_text_however_the_answer_is_cut(size: int) -> None:
    parser = SectionParser(FIELDS)
    events = []
    for start in range(0, len(FULL_ANSWER), size):
        events += parser.feed(FULL_ANSWER[start : start + size])
    events += parser.finish()
    text: dict[str, str] = {}
    for event in events:
        if isinstance(event, SectionText):
            text[event.field] = text.get(event.field, "") + event.text
    assert list(text) == FIELDS
    assert text["duty"] == "You plan trips step by step.\nAsk for dates and budget first."
    assert text["knowledge_base_ids"] == "Travel Guides\nSecret Plans"


def test_accept_language() -> None:
    assert language_of(None, "zh-TW,zh;q=0.9") == "zh"
    assert language_of(None, "en;q=0.5, zh;q=0.7") == "zh"
    assert language_of(None, "zh;q=0, en") == "en"
    assert language_of(None, "de, fr;q=0.5") == "en"
    assert language_of(None, None) == "en"
    assert language_of("zh", "en") == "zh"


def test_the_openapi_document_describes_the_stream() -> None:
    document = create_app().openapi()
    schemas = document["components"]["schemas"]
    frames = schemas["GenerationStreamFrame"]["oneOf"]
    assert sorted(f["properties"]["event"]["const"] for f in frames) == sorted(GENERATION_EVENTS)
    for frame in frames:
        data = schemas[frame["properties"]["data"]["contentSchema"]["$ref"].removeprefix("#/components/schemas/")]
        assert "type" not in data["properties"]
    stream = {"schema": {"$ref": "#/components/schemas/GenerationStreamFrame"}}
    for path in ("/api/agents/generate", "/api/agents/{agent_id}/improve"):
        responses = document["paths"][path]["post"]["responses"]
        assert responses["200"]["content"] == {"text/event-stream": stream}
        assert {"401", "403", "404", "422"} <= set(responses)


async def test_a_taken_name_of_the_longest_length_is_shortened_to_fit_its_suffix(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    long_name = "Planner " + "x" * 72
    await make_agent(client, owner, name=long_name)
    await make_agent(client, owner, name=long_name[:78] + " 2")
    llm.server.enqueue(ChatReply.text(f"### name\n**{long_name.upper()}**\n"))
    _, events = await generate(client, owner, description="A planner.", fields=["name"])
    name = events[-1]["data"]["draft"]["name"]
    assert name == long_name.upper()[:78] + " 3" and len(name) == 80
