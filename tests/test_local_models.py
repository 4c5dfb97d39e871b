"""The built-in offline models produce real output, with nothing downloaded."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from nexent.providers import local
from nexent.providers.types import complete
from tests.conftest import make_settings, serve_in_process
from tests.support.identity import bearer, register

pytestmark = pytest.mark.skipif(
    not (local.available(local.EMBEDDING_MODEL) and local.available(local.CHAT_MODEL)),
    reason="the built-in models are installed by scripts/test (the [local] extra)",
)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_embeddings_are_normalized_and_meaningful() -> None:
    texts = [
        "The cat sat on the mat.",
        "A kitten was sitting on the rug.",
        "Quarterly revenue grew by twelve percent.",
        "今天天气很好，我们去公园散步。",  # noqa: RUF001 - Chinese punctuation on purpose
    ]
    vectors, usage = await local.LocalEmbeddings().embed(texts)
    assert [len(v) for v in vectors] == [384] * 4
    assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-4) for v in vectors)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.3
    assert usage.prompt_tokens > 20
    assert (await local.LocalEmbeddings().embed([]))[0] == []


async def test_concurrent_embedding_calls_get_their_own_vectors() -> None:
    """Calls that arrive together are encoded in one batch; each still gets exactly its own vectors and tokens."""
    model = local.LocalEmbeddings()
    alone, alone_usage = await model.embed(["Espresso needs nine bars of pressure."])
    texts = [[f"Document number {i} about roasting.", "Espresso needs nine bars of pressure."] for i in range(12)]
    results = await asyncio.gather(*(model.embed(pair) for pair in texts))
    for (vectors, usage), pair in zip(results, texts, strict=True):
        assert len(vectors) == len(pair)
        assert cosine(vectors[1], alone[0]) > 0.9999
        assert usage.prompt_tokens > alone_usage.prompt_tokens
    assert cosine(results[0][0][0], results[1][0][0]) < 0.9999  # different texts, different vectors


async def test_chat_answers_offline_and_streams() -> None:
    chat = local.LocalChat()
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    pieces = [chunk async for chunk in chat.stream(messages, max_tokens=40)]
    text = "".join(p.content for p in pieces)
    assert "Paris" in text
    assert len([p for p in pieces if p.content]) > 1
    final = pieces[-1]
    assert final.finish_reason == "stop" and final.usage is not None
    assert final.usage.prompt_tokens > 10 and final.usage.completion_tokens > 3


async def test_a_stopped_stream_stops_generating() -> None:
    chat = local.LocalChat()
    received = 0
    async for chunk in chat.stream(
        [{"role": "user", "content": "Write a very long story about dragons."}], max_tokens=400
    ):
        received += 1 if chunk.content else 0
        if received == 3:
            break
    # The model is free again at once: a short answer follows without waiting for 400 tokens.
    result = await complete(chat, [{"role": "user", "content": "Say hi."}], max_tokens=5)
    assert result.usage.completion_tokens <= 5


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(make_settings(tmp_path)) as http:
        yield http


async def test_new_tenants_start_with_the_builtin_models(client: httpx.AsyncClient) -> None:
    owner = bearer((await register(client, "offline@example.com"))["access_token"])
    models = (await client.get("/api/models", headers=owner)).json()["items"]
    assert {(m["kind"], m["provider"], m["model"], m["is_default"]) for m in models} == {
        ("embedding", "local", "all-MiniLM-L6-v2", True),
        ("llm", "local", "SmolLM2-135M-Instruct", True),
    }
    for model in models:
        result = (await client.post(f"/api/models/{model['id']}/check", headers=owner)).json()
        assert result["ok"] is True, result
    embedding = next(m for m in models if m["kind"] == "embedding")
    read = (await client.get(f"/api/models/{embedding['id']}", headers=owner)).json()
    assert (read["dimension"], read["languages"]) == (384, ["en"])  # English only: hybrid search weighs it by that
    assert next(m for m in models if m["kind"] == "llm")["languages"] is None
    usage = (await client.get("/api/usage", headers=owner)).json()
    assert sum(row["calls"] for row in usage) == 2


async def test_unknown_local_models_are_refused(client: httpx.AsyncClient) -> None:
    owner = bearer((await register(client, "offline2@example.com"))["access_token"])
    response = await client.post(
        "/api/models", json={"name": "x", "kind": "llm", "provider": "local", "model": "gpt-5"}, headers=owner
    )
    assert response.status_code == 400 and response.json()["code"] == "local_model_unavailable"
    # Renaming a built-in model's configuration to a model that does not exist is refused the same way.
    models = (await client.get("/api/models", headers=owner)).json()["items"]
    embedding = next(m for m in models if m["provider"] == "local" and m["kind"] == "embedding")
    renamed = await client.patch(f"/api/models/{embedding['id']}", json={"model": "0"}, headers=owner)
    assert renamed.status_code == 400 and renamed.json()["code"] == "local_model_unavailable"
