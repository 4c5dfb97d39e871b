"""Job handlers used by the tests; worker processes import this module through NEXENT_JOB_MODULES."""

from __future__ import annotations

import asyncio
from pathlib import Path

from nexent.jobs.registry import JobContext, JobResult, PermanentJobError, job_handler


@job_handler("test.echo")
async def echo(ctx: JobContext) -> JobResult:
    return {"echo": ctx.payload, "attempt": ctx.attempt}


@job_handler("test.fail_once")
async def fail_once(ctx: JobContext) -> JobResult:
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return {"attempt": ctx.attempt}


@job_handler("test.always_fail")
async def always_fail(ctx: JobContext) -> JobResult:
    raise RuntimeError(f"attempt {ctx.attempt} failed")


@job_handler("test.permanent")
async def permanent(ctx: JobContext) -> JobResult:
    raise PermanentJobError("the payload can never work")


@job_handler("test.store")
async def store(ctx: JobContext) -> JobResult:
    """Write the payload's text to object storage: proves a job can use the process's engines."""
    await ctx.engines.storage.put(ctx.payload["key"], ctx.payload["text"].encode())
    return {"stored": ctx.payload["key"]}


@job_handler("test.slow_first")
async def slow_first(ctx: JobContext) -> JobResult:
    """On the first attempt, mark that it started and then hang (the test kills the worker)."""
    if ctx.attempt == 1:
        Path(ctx.payload["marker"]).write_text("started")
        await asyncio.sleep(600)
    return {"attempt": ctx.attempt}
