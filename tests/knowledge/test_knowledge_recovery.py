"""The distributed shape's promise for ingestion: a worker process killed in the middle of a document leaves
nothing half-indexed, and another worker picks the document up again (PostgreSQL, separate `nexent worker`
processes, on the platform's own queue and on Celery)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from nexent.engines.container import Engines
from tests.conftest import REDIS_URL, REPO_ROOT, make_settings, serve_in_process, wait_until
from tests.jobs.test_queue import settings_env
from tests.support.identity import bearer, register
from tests.support.model_server import ServiceReply, run_model_server

PARAGRAPHS = [
    f"Paragraph {n} about roasting batch {n}: the beans reached first crack at minute {n % 9 + 6}." for n in range(30)
]


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "nexent", "worker", "--concurrency", "2"],
        env=env,
        cwd=REPO_ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop the worker's process group; one that does not stop in time is killed (no worker outlives the test)."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)
            raise


@pytest.mark.parametrize("queue", ["local", "celery"])
async def test_a_worker_killed_mid_document_leaves_nothing_half_indexed(
    tmp_path: Path, pg_url: str, redis_prefix: str, queue: str
) -> None:
    """With the platform's own queue on PostgreSQL, and with Celery workers (Redis broker)."""
    settings = make_settings(
        tmp_path,
        builtin_models=False,
        database_url=pg_url,
        queue_workers=0,
        job_lease_seconds=2.0,
        queue_backend=queue,
        celery_queue=f"nexent-test-{uuid.uuid4().hex[:8]}",
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
    )
    env = {**os.environ, **settings_env(settings), "PYTHONPATH": str(REPO_ROOT)}
    with run_model_server(embedding_dim=16) as embedder:
        server = serve_in_process(settings)
        async with server as client:
            pair = await register(client, f"recover-{uuid.uuid4().hex[:6]}@example.com")
            headers = bearer(pair["access_token"])
            model = await client.post(
                "/api/models",
                json={"name": "Embedder", "kind": "embedding", "model": "e", "base_url": embedder.base_url},
                headers=headers,
            )
            kb = await client.post(
                "/api/knowledge-bases",
                json={
                    "name": "Roasting",
                    "embedding_model_id": model.json()["id"],
                    "chunking": {"target_chars": 200, "overlap_chars": 0},
                },
                headers=headers,
            )
            assert kb.status_code == 201, kb.text
            kb_id = kb.json()["id"]
            # The first worker's embedding call hangs: it is killed while waiting for it.
            embedder.server.enqueue_embeddings(ServiceReply.ok(delay=60))
            probes = len(embedder.server.embedding_requests)  # creating the knowledge base measured the dimension
            uploaded = await client.post(
                f"/api/knowledge-bases/{kb_id}/documents",
                files=[("file", ("roasting.txt", "\n\n".join(PARAGRAPHS).encode(), "text/plain"))],
                headers=headers,
            )
            doc_id = uploaded.json()["documents"][0]["document"]["id"]

            async def document() -> dict[str, Any]:
                response = await client.get(f"/api/knowledge-bases/{kb_id}/documents/{doc_id}", headers=headers)
                state: dict[str, Any] = response.json()
                return state

            first = start_worker(env, tmp_path / "worker-1.log")
            try:
                await wait_until(
                    lambda: _embedding_started(len(embedder.server.embedding_requests) > probes, document), timeout=60
                )
                stop(first, signal.SIGKILL)
            finally:
                stop(first, signal.SIGKILL)
            assert (await document())["status"] == "embedding"  # cut off mid-document

            second = start_worker(env, tmp_path / "worker-2.log")
            try:

                async def indexed() -> dict[str, Any] | None:
                    state = await document()
                    assert state["status"] != "failed", state
                    return state if state["status"] == "indexed" else None

                final = await wait_until(indexed, timeout=90)
            finally:
                stop(second)
            assert final["attempts"] == 2 and final["chunk_count"] > 5
            chunks = await client.get(
                f"/api/knowledge-bases/{kb_id}/documents/{doc_id}/chunks", params={"limit": 200}, headers=headers
            )
            assert chunks.json()["total"] == final["chunk_count"]
            engines: Engines = server.app.state.engines
            assert await engines.search.count(f"kb_{uuid.UUID(kb_id).hex}") == final["chunk_count"]
            hits = await client.post(
                f"/api/knowledge-bases/{kb_id}/search",
                json={"query": "first crack batch 17", "mode": "bm25", "top_k": 3},
                headers=headers,
            )
            assert "batch 17" in hits.json()["hits"][0]["text"]


async def _embedding_started(called: bool, document: Any) -> bool:
    return called and (await document())["status"] == "embedding"
