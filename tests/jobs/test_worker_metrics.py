"""`nexent worker` serves `/metrics` on NEXENT_WORKER_METRICS_PORT: a real worker process, local pool or Celery
(whose jobs run in forked children), shows the job counters once a job ran there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from nexent.jobs.service import get_job
from tests.conftest import (
    REDIS_URL,
    REPO_ROOT,
    free_port,
    make_settings,
    serve_in_process,
    started_engines,
    wait_for_port,
    wait_until,
)
from tests.jobs.test_queue import settings_env, worker_process
from tests.support.identity import bearer, register
from tests.support.model_server import run_model_server

TOKEN = "scrape-me"


@pytest.mark.parametrize("queue", ["local", "celery"])
async def test_worker_metrics_count_the_jobs_it_ran(tmp_path: Path, pg_url: str, redis_prefix: str, queue: str) -> None:
    settings = make_settings(
        tmp_path,
        database_url=pg_url,
        queue_backend=queue,
        celery_queue=f"nexent-test-{uuid.uuid4().hex[:8]}",
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
    )
    producer = await started_engines(settings, consume_jobs=False)
    port = free_port()
    env = {
        **os.environ,
        **settings_env(settings),
        "PYTHONPATH": str(REPO_ROOT),
        "NEXENT_WORKER_METRICS_PORT": str(port),
        "NEXENT_METRICS_TOKEN": TOKEN,
        "NEXENT_JOB_SWEEP_SECONDS": "0.3",
    }
    try:
        with worker_process(env, tmp_path / "worker.log"):
            wait_for_port(port, timeout=60)
            ok = await producer.queue.enqueue("test.echo", {"text": "counted"})
            failed = await producer.queue.enqueue("test.permanent")
            await producer.queue.enqueue("test.echo", delay_seconds=3600)  # waits: the queue's depth shows it

            async def finished() -> bool:
                jobs = [await get_job(producer, job_id) for job_id in (ok, failed)]
                return all(j is not None and j.status in ("succeeded", "failed") for j in jobs)

            await wait_until(finished, timeout=60, interval=0.1)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                assert (await client.get("/metrics")).status_code == 401
                assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401

                async def scraped() -> str | None:
                    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
                    assert response.status_code == 200, response.text
                    text = response.text
                    return text if 'nexent_jobs_queue_depth{job="test.echo",status="queued"} 1.0' in text else None

                text = await wait_until(scraped, timeout=30, interval=0.3)
            assert 'nexent_jobs_started_total{job="test.echo"} 1.0' in text
            assert 'nexent_jobs_finished_total{job="test.echo",outcome="succeeded"} 1.0' in text
            assert 'nexent_jobs_finished_total{job="test.permanent",outcome="failed"} 1.0' in text
            assert 'nexent_job_duration_seconds_count{job="test.echo",outcome="succeeded"} 1.0' in text
    finally:
        await producer.close()


async def test_worker_metrics_count_embedding_calls_and_indexed_documents(
    tmp_path: Path, pg_url: str, redis_prefix: str
) -> None:
    """A document processed by a `nexent worker` shows in that worker's ingestion metrics."""
    settings = make_settings(tmp_path, builtin_models=False, database_url=pg_url, queue_workers=0)
    port = free_port()
    env = {
        **os.environ,
        **settings_env(settings),
        "PYTHONPATH": str(REPO_ROOT),
        "NEXENT_WORKER_METRICS_PORT": str(port),
        "NEXENT_METRICS_TOKEN": TOKEN,
    }
    with run_model_server(embedding_dim=16) as embedder:
        async with serve_in_process(settings) as client:  # no workers of its own: the worker process does it
            pair = await register(client, f"metrics-{uuid.uuid4().hex[:6]}@example.com")
            headers = bearer(pair["access_token"])
            model = await client.post(
                "/api/models",
                json={"name": "Embedder", "kind": "embedding", "model": "e", "base_url": embedder.base_url},
                headers=headers,
            )
            kb = await client.post(
                "/api/knowledge-bases",
                json={"name": "Metered", "embedding_model_id": model.json()["id"]},
                headers=headers,
            )
            assert kb.status_code == 201, kb.text
            kb_id = kb.json()["id"]
            uploaded = await client.post(
                f"/api/knowledge-bases/{kb_id}/documents",
                files=[
                    ("file", ("ok.txt", b"Glaze firing notes: cone six, slow cool.", "text/plain")),
                    ("file", ("blank.txt", b"\n\n   \n", "text/plain")),
                ],
                headers=headers,
            )
            assert uploaded.status_code == 201, uploaded.text
            log = (tmp_path / "worker.log").open("wb")
            worker = subprocess.Popen(
                [sys.executable, "-m", "nexent", "worker", "--concurrency", "1"],
                env=env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                wait_for_port(port, timeout=60)

                async def done() -> bool:
                    response = await client.get(f"/api/knowledge-bases/{kb_id}/documents", headers=headers)
                    return all(d["status"] in ("indexed", "failed") for d in response.json()["items"])

                await wait_until(done, timeout=60, interval=0.2)
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as scraper:

                    async def scraped() -> str | None:
                        response = await scraper.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
                        finished = 'nexent_jobs_finished_total{job="knowledge.index_document",outcome="succeeded"} 1.0'
                        return response.text if finished in response.text else None

                    text = await wait_until(scraped, timeout=30, interval=0.2)
            finally:
                os.killpg(worker.pid, signal.SIGTERM)
                assert worker.wait(timeout=30) == 0
                log.close()
    assert 'nexent_knowledge_documents_total{outcome="indexed"} 1.0' in text
    assert 'nexent_knowledge_documents_total{outcome="failed:empty"} 1.0' in text
    assert 'nexent_knowledge_embedding_calls_total{outcome="ok",purpose="index"} 1.0' in text
    # The processing job queued the knowledge base's summary when its last document was done.
    assert 'nexent_jobs_enqueued_total{job="knowledge.summarize"} 1.0' in text
