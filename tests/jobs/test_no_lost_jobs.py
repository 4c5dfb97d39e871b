"""No lost jobs: a job is written in the transaction of the rows it works on, and dispatched after the commit.
A process killed between that commit and the dispatch leaves a job that the workers find in the table; documents
left in processing with no job (lost before this design, or whose job ended without recording it on them) are
found by the knowledge sweep and processed again."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, update

from nexent.core.db import utcnow
from nexent.jobs.models import Job
from nexent.jobs.queue.base import EXIT_BEFORE_DISPATCH_ENV
from nexent.jobs.sweeps import sweep_once
from nexent.knowledge.models import KnowledgeDocument
from nexent.knowledge.service import INDEX_DOCUMENT
from tests.conftest import PostgresDatabases, make_settings, serve_in_process, started_engines, wait_until
from tests.support.identity import bearer, register
from tests.support.model_server import run_model_server
from tests.test_cli import Server, cli_env

TEXT = "\n\n".join(f"Paragraph {n}: the kiln reached {900 + n} degrees in firing {n}." for n in range(12))


async def _knowledge_base(client: httpx.AsyncClient, embedder_url: str) -> tuple[dict[str, str], str]:
    pair = await register(client, f"jobs-{uuid.uuid4().hex[:6]}@example.com")
    headers = bearer(pair["access_token"])
    model = await client.post(
        "/api/models",
        json={"name": "Embedder", "kind": "embedding", "model": "e", "base_url": embedder_url},
        headers=headers,
    )
    assert model.status_code == 201, model.text
    kb = await client.post(
        "/api/knowledge-bases",
        json={
            "name": "Kilns",
            "embedding_model_id": model.json()["id"],
            "chunking": {"target_chars": 200, "overlap_chars": 0},
        },
        headers=headers,
    )
    assert kb.status_code == 201, kb.text
    return headers, kb.json()["id"]


async def _documents(client: httpx.AsyncClient, headers: dict[str, str], kb_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/knowledge-bases/{kb_id}/documents", headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_server_killed_between_commit_and_dispatch_loses_no_document(tmp_path: Path) -> None:
    """A real `nexent serve` exits right after the upload's commit, before it tells its workers (the test hook
    stands for a crash at that moment); started again, it indexes the uploaded documents. The stuck-document
    sweep keeps its default deadline (15 minutes), so the table's job is what brings them back."""
    env = cli_env(tmp_path, NEXENT_BUILTIN_MODELS="false")
    with run_model_server(embedding_dim=16) as embedder:
        first = Server(env)
        try:
            async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
                headers, kb_id = await _knowledge_base(client, embedder.base_url)
        finally:
            first.stop()

        crashing = Server({**env, EXIT_BEFORE_DISPATCH_ENV: "1"})
        try:
            async with httpx.AsyncClient(base_url=crashing.url, timeout=30) as client:
                with pytest.raises(httpx.TransportError):
                    await client.post(
                        f"/api/knowledge-bases/{kb_id}/documents",
                        files=[
                            ("file", ("kilns.txt", TEXT.encode(), "text/plain")),
                            ("file", ("notes.md", b"# Notes\n\nGlaze at cone six.", "text/markdown")),
                        ],
                        headers=headers,
                    )
            assert crashing.process.wait(timeout=30) == 70  # the hook's exit, right after the commit
        finally:
            if crashing.process.poll() is None:
                crashing.process.kill()
                crashing.process.wait()
            crashing.log.close()

        restarted = Server(env)
        try:
            async with httpx.AsyncClient(base_url=restarted.url, timeout=30) as client:
                docs = await _documents(client, headers, kb_id)
                assert sorted(d["file_name"] for d in docs) == ["kilns.txt", "notes.md"]  # committed, then the crash

                async def all_indexed() -> list[dict[str, Any]] | None:
                    current = await _documents(client, headers, kb_id)
                    assert not [d for d in current if d["status"] == "failed"], current
                    return current if all(d["status"] == "indexed" for d in current) else None

                final = await wait_until(all_indexed, timeout=60, interval=0.3)
                assert all(d["chunk_count"] >= 1 for d in final)
                hits = await client.post(
                    f"/api/knowledge-bases/{kb_id}/search",
                    json={"query": "firing 7", "mode": "bm25", "top_k": 1},
                    headers=headers,
                )
                assert "firing 7" in hits.json()["hits"][0]["text"]
        finally:
            restarted.stop()


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_the_sweep_resumes_documents_whose_job_is_gone(
    tmp_path: Path, database: str, pg_databases: PostgresDatabases
) -> None:
    """Documents left `queued` with no job at all (as an upload before jobs were written with their documents
    could leave them) are queued again once nothing changed them for `knowledge_stuck_seconds`, and indexed; one
    left mid-processing after its last allowed attempt fails with `processing_failed`."""
    overrides: dict[str, Any] = {"builtin_models": False, "queue_workers": 0, "knowledge_stuck_seconds": 1.0}
    if database == "postgres":
        overrides["database_url"] = await pg_databases.create(migrated=True)
    settings = make_settings(tmp_path, **overrides)
    with run_model_server(embedding_dim=16) as embedder:
        async with serve_in_process(settings) as client:  # no workers: the upload's job stays queued
            headers, kb_id = await _knowledge_base(client, embedder.base_url)
            uploaded = await client.post(
                f"/api/knowledge-bases/{kb_id}/documents",
                files=[("file", ("kilns.txt", TEXT.encode(), "text/plain"))],
                headers=headers,
            )
            assert uploaded.status_code == 201, uploaded.text
            # The job is lost before any worker runs (a worker started first could take it at once).
            bystander = await started_engines(settings, consume_jobs=False, migrate=False)
            try:
                async with bystander.sessions() as session, session.begin():
                    await session.execute(delete(Job).where(Job.name == INDEX_DOCUMENT))
            finally:
                await bystander.close()
            consumer = await started_engines(
                settings.model_copy(update={"queue_workers": 2, "job_sweep_seconds": 3600}), migrate=False
            )
            try:
                assert (await sweep_once(consumer))["knowledge.stuck_documents"] == 0  # not stuck long enough yet

                async def resumed() -> int | None:
                    count = (await sweep_once(consumer))["knowledge.stuck_documents"]
                    return count or None

                assert await wait_until(resumed, timeout=10, interval=0.3) == 1

                async def indexed() -> dict[str, Any] | None:
                    (doc,) = await _documents(client, headers, kb_id)
                    return doc if doc["status"] == "indexed" else None

                doc = await wait_until(indexed, timeout=60, interval=0.2)
                assert doc["chunk_count"] >= 1
                assert (await sweep_once(consumer))["knowledge.stuck_documents"] == 0  # indexed: nothing to resume

                # A worker that died in the document's last allowed attempt (its job failed as abandoned): ended,
                # not retried forever.
                async with consumer.sessions() as session, session.begin():
                    await session.execute(
                        update(KnowledgeDocument)
                        .where(KnowledgeDocument.id == uuid.UUID(doc["id"]))
                        .values(
                            status="embedding",
                            attempts=settings.knowledge_max_attempts,
                            updated_at=utcnow() - timedelta(minutes=5),
                        )
                    )
                assert (await sweep_once(consumer))["knowledge.stuck_documents"] == 1
                (ended,) = await _documents(client, headers, kb_id)
                assert ended["status"] == "failed" and ended["error"]["code"] == "processing_failed", ended
            finally:
                await consumer.close()
