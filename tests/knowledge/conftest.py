"""Fixtures the knowledge tests over HTTP share: the scripted embedding server, and a tenant owner with a model of
it. Each module keeps its own `client`, with the settings it tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.knowledge.test_knowledge_api import new_owner
from tests.support.model_server import RunningModelServer, run_model_server


@pytest.fixture(scope="module")
def embedder() -> Iterator[RunningModelServer]:
    with run_model_server(embedding_dim=64) as served:
        yield served


@pytest.fixture
async def owner(client: httpx.AsyncClient, embedder: RunningModelServer) -> dict[str, Any]:
    return await new_owner(client, embedder)
