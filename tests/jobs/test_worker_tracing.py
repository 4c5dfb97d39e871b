"""A job's spans join the trace of whoever queued it, in a separate `nexent worker` process (local pool or Celery,
whose jobs run in forked children): the trace context travels in the job's row, so it crosses processes and
survives a worker's restart."""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from pathlib import Path

import pytest

from nexent.core.tracing import TRACE_KEY
from nexent.jobs.service import get_job
from tests.conftest import REDIS_URL, REPO_ROOT, make_settings, started_engines, wait_until
from tests.jobs.test_queue import settings_env, worker_process
from tests.support.otlp_receiver import ReceivedSpan, run_otlp_receiver


@pytest.mark.parametrize("queue", ["local", "celery"])
async def test_a_job_run_by_a_worker_process_joins_the_trace_that_queued_it(
    tmp_path: Path, pg_url: str, redis_prefix: str, queue: str
) -> None:
    settings = make_settings(
        tmp_path,
        database_url=pg_url,
        queue_backend=queue,
        celery_queue=f"nexent-test-{uuid.uuid4().hex[:8]}",
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
    )
    producer = await started_engines(settings, consume_jobs=False)
    # The producer here is not traced: it writes the context a traced caller's `with_trace` would have written.
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    with run_otlp_receiver() as receiver:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
            **settings_env(settings),
            "PYTHONPATH": str(REPO_ROOT),
            "NEXENT_WORKER_METRICS_PORT": "0",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        try:
            with worker_process(env, tmp_path / "worker.log"):
                payload = {"text": "traced", TRACE_KEY: {"traceparent": f"00-{trace_id}-{parent_id}-01"}}
                job_id = await producer.queue.enqueue("test.echo", payload)

                async def finished() -> bool:
                    job = await get_job(producer, job_id)
                    return job is not None and job.status == "succeeded"

                await wait_until(finished, timeout=90, interval=0.2)
                job = await get_job(producer, job_id)
                assert job is not None and job.result is not None
                assert job.result["echo"] == {"text": "traced"}  # the handler never saw the trace context

                def exported(spans: list[ReceivedSpan]) -> bool:
                    return any(s.name == "job test.echo" for s in spans)

                spans = await asyncio.to_thread(receiver.receiver.wait_for, exported, timeout=60)
        finally:
            await producer.close()
    (span,) = [s for s in spans if s.name == "job test.echo"]
    assert (span.trace_id, span.parent_span_id) == (trace_id, parent_id)
    assert span.service == "nexent-worker"
    assert span.attributes["nexent.job.id"] == str(job_id) and span.attributes["nexent.job.attempt"] == 1
