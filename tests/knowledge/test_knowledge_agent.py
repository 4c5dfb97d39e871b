"""Agents answer from their knowledge bases: the knowledge_base_search tool, citation events, and citations kept in
the conversation (scripted model server for the model's decisions and the embeddings)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings, serve_in_process
from tests.knowledge.test_knowledge_api import add_model, create_kb, index_guide_and_notes, new_owner
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server
from tests.test_runs import parse_sse


@pytest.fixture(scope="module")
def models() -> Iterator[RunningModelServer]:
    with run_model_server(embedding_dim=64) as served:
        yield served


@pytest.fixture
async def client(tmp_path: Path, models: RunningModelServer) -> AsyncIterator[httpx.AsyncClient]:
    models.server.reset()
    async with serve_in_process(make_settings(tmp_path, builtin_models=False)) as http:
        yield http


async def test_an_agent_cites_passages_of_its_knowledge_base(
    client: httpx.AsyncClient, models: RunningModelServer
) -> None:
    owner = await new_owner(client, models)
    llm_id = await add_model(client, owner["access_token"], models, kind="llm", name="Scripted")
    kb = await create_kb(client, owner, name="Barista handbook", description="How we make coffee")
    await index_guide_and_notes(client, owner, kb["id"])
    agent = await client.post(
        "/api/agents",
        json={"name": "Barista", "model_id": llm_id, "knowledge_base_ids": [kb["id"]]},
        headers=owner["headers"],
    )
    assert agent.status_code == 201, agent.text
    models.server.enqueue(
        ChatReply.tool_call("knowledge_base_search", {"query": "espresso brewing pressure"}),
        ChatReply.text("Brew at nine bars for about twenty-five seconds [1]."),
        ChatReply.text("Espresso pressure"),  # the conversation's title
    )
    response = await client.post(
        f"/api/agents/{agent.json()['id']}/runs", json={"message": "How do I brew espresso?"}, headers=owner["headers"]
    )
    assert response.status_code == 200, response.text
    events = parse_sse(response.text)
    types = [e["type"] for e in events]
    assert types[-1] == "run.completed", events
    result = next(e for e in events if e["type"] == "tool.result")
    assert "[1] guide.md" in result["data"]["output"] and "nine bars" in result["data"]["output"]
    citations = [e for e in events if e["type"] == "citation"]
    assert citations and types.index("citation") > types.index("tool.result")
    first = citations[0]["data"]
    assert first["title"] == "guide.md" and first["metadata"]["index"] == 1
    assert first["metadata"]["knowledge_base_id"] == kb["id"] and "nine bars" in first["snippet"]
    # The model was told which knowledge bases the tool searches.
    offered = models.server.chat_requests[0].tools or []
    tool = next(t for t in offered if t["function"]["name"] == "knowledge_base_search")
    assert "Barista handbook" in tool["function"]["description"]

    conversation = await client.get(
        f"/api/conversations/{response.headers['x-conversation-id']}", headers=owner["headers"]
    )
    answer = conversation.json()["messages"][-1]
    assert answer["role"] == "assistant" and "[1]" in answer["content"]
    assert [c["title"] for c in answer["citations"]] == [c["data"]["title"] for c in citations]
