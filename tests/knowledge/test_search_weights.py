# ruff: noqa: RUF001  (Chinese punctuation is part of the passages)
"""Hybrid search weights over HTTP: chosen per query from the query's languages and the embedding model's, fixed by
a knowledge base or a request, reported with every answer; models declare their languages; an index built with
an older text analysis is rebuilt on request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings, serve_in_process
from tests.knowledge.test_knowledge_api import create_kb, settled, upload
from tests.support.model_server import RunningModelServer
from tests.test_http import assert_problem


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(make_settings(tmp_path, builtin_models=False)) as http:
        yield http


PASSAGES = {
    "pandas.txt": "熊猫是中国的国宝，主要生活在四川的山区，以竹子为食。Giant pandas eat bamboo.",
    "wall.txt": "长城是中国古代的军事防御工程，修筑的历史可上溯到西周时期。",
    "coffee.txt": "Espresso is brewed at nine bars of pressure for about twenty-five seconds.",
}


async def search(client: httpx.AsyncClient, owner: dict[str, Any], kb_id: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/api/knowledge-bases/{kb_id}/search", json=body, headers=owner["headers"])
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def indexed_kb(client: httpx.AsyncClient, owner: dict[str, Any], **body: Any) -> dict[str, Any]:
    kb = await create_kb(client, owner, **body)
    files = [(name, text.encode(), "text/plain") for name, text in PASSAGES.items()]
    assert (await upload(client, owner, kb["id"], files)).status_code == 201
    assert {doc["status"] for doc in (await settled(client, owner, kb["id"])).values()} == {"indexed"}
    return kb


async def set_languages(client: httpx.AsyncClient, owner: dict[str, Any], languages: list[str] | None) -> None:
    response = await client.patch(
        f"/api/models/{owner['model_id']}", json={"languages": languages}, headers=owner["headers"]
    )
    assert response.status_code == 200, response.text
    assert response.json()["languages"] == languages


async def test_the_vector_weight_follows_the_languages_the_model_understands(
    client: httpx.AsyncClient, owner: dict[str, Any], embedder: RunningModelServer
) -> None:
    kb = await indexed_kb(client, owner)
    # A model that declares no languages is trusted with every query: the default weight.
    [weights] = (await search(client, owner, kb["id"], query="熊猫吃什么"))["weights"]
    assert weights == {
        "knowledge_base_id": kb["id"],
        "bm25_weight": 0.6,
        "vector_weight": 0.4,
        "source": "languages",
        "query_languages": {"zh": 1.0},
        "model_languages": None,
    }
    await set_languages(client, owner, ["en"])
    chinese = await search(client, owner, kb["id"], query="熊猫吃什么")
    assert chinese["weights"][0]["vector_weight"] == 0.0 and chinese["weights"][0]["bm25_weight"] == 1.0
    assert chinese["hits"][0]["file_name"] == "pandas.txt"
    english = await search(client, owner, kb["id"], query="how long is espresso brewed")
    assert english["weights"][0]["vector_weight"] == 0.4 and english["weights"][0]["query_languages"] == {"en": 1.0}
    # Mixed: "giant pandas" is two English words, "熊猫竹子" about two Chinese ones: half the default weight.
    mixed = (await search(client, owner, kb["id"], query="giant pandas 熊猫竹子"))["weights"][0]
    assert mixed["query_languages"] == {"en": 0.5, "zh": 0.5} and mixed["vector_weight"] == 0.2
    await set_languages(client, owner, ["en", "zh"])
    assert (await search(client, owner, kb["id"], query="熊猫吃什么"))["weights"][0]["vector_weight"] == 0.4


async def test_a_knowledge_base_or_a_request_fixes_the_weights(
    client: httpx.AsyncClient, owner: dict[str, Any], embedder: RunningModelServer
) -> None:
    kb = await indexed_kb(client, owner, vector_weight=0.7)
    assert kb["vector_weight"] == 0.7
    [weights] = (await search(client, owner, kb["id"], query="熊猫"))["weights"]
    assert (weights["vector_weight"], weights["bm25_weight"], weights["source"]) == (0.7, 0.3, "knowledge_base")
    [weights] = (await search(client, owner, kb["id"], query="熊猫", vector_weight=0.1))["weights"]
    assert (weights["vector_weight"], weights["source"]) == (0.1, "request")
    for mode, vector in (("bm25", 0.0), ("vector", 1.0)):
        [weights] = (await search(client, owner, kb["id"], query="熊猫", mode=mode, vector_weight=0.1))["weights"]
        assert (weights["vector_weight"], weights["source"]) == (vector, "mode")
    # Back to weights chosen per query.
    response = await client.patch(
        f"/api/knowledge-bases/{kb['id']}", json={"vector_weight": None}, headers=owner["headers"]
    )
    assert response.status_code == 200 and response.json()["vector_weight"] is None
    assert (await search(client, owner, kb["id"], query="熊猫"))["weights"][0]["source"] == "languages"
    # Weights out of range are refused, in the knowledge base and in a request.
    for body in ({"vector_weight": 1.5}, {"vector_weight": -0.1}, {"vector_weight": "high"}):
        response = await client.patch(f"/api/knowledge-bases/{kb['id']}", json=body, headers=owner["headers"])
        assert_problem(response, 422, "validation_error")
        response = await client.post(
            f"/api/knowledge-bases/{kb['id']}/search", json={"query": "熊猫", **body}, headers=owner["headers"]
        )
        assert_problem(response, 422, "validation_error")


async def test_models_declare_their_languages(
    client: httpx.AsyncClient, owner: dict[str, Any], embedder: RunningModelServer
) -> None:
    model = (await client.get(f"/api/models/{owner['model_id']}", headers=owner["headers"])).json()
    assert model["languages"] is None  # not declared: every language
    await set_languages(client, owner, ["en", "zh"])
    for bad in (["english"], [], ["e1"], "en"):
        response = await client.patch(
            f"/api/models/{owner['model_id']}", json={"languages": bad}, headers=owner["headers"]
        )
        assert_problem(response, 422, "validation_error")
    created = await client.post(
        "/api/models",
        json={
            "name": "Multilingual",
            "kind": "embedding",
            "model": "m",
            "base_url": embedder.base_url,
            "languages": ["ZH", "en", "zh"],
        },
        headers=owner["headers"],
    )
    assert created.status_code == 201, created.text
    assert created.json()["languages"] == ["en", "zh"]  # lower-cased, each once


async def test_an_outdated_index_is_rebuilt_on_request(
    client: httpx.AsyncClient, owner: dict[str, Any], embedder: RunningModelServer
) -> None:
    kb = await indexed_kb(client, owner)
    assert (kb["analysis_version"], kb["analysis_outdated"]) == (2, False)
    response = await client.patch(
        f"/api/knowledge-bases/{kb['id']}", json={"rebuild_index": True}, headers=owner["headers"]
    )
    assert response.status_code == 200, response.text
    assert response.json()["reembedding"] == {"embedding_model_id": owner["model_id"], "dimension": 64}
    assert_problem(
        await client.patch(f"/api/knowledge-bases/{kb['id']}", json={"rebuild_index": False}, headers=owner["headers"]),
        422,
        "validation_error",
    )
