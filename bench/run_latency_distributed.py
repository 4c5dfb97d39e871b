"""Added latency of a burst of agent runs in the distributed shape: PostgreSQL, the Redis bus, and N `runtime`
service processes sharing the runs (the client sends them round-robin, as a load balancer would).

Companion of `run_latency.py` (same scripted model, agent, message and measurement: the first `message.delta`
against the model's first token streamed directly, in the same round). One embedded process on the same database
serves registration and the agent's set-up; the runs go to the runtime processes only. The CPU figure is the sum
over the platform's processes (PostgreSQL and Redis not included). Needs PostgreSQL and Redis (`scripts/services`);
a database is created for the run and dropped after it.

Run: `.venv/bin/python bench/run_latency_distributed.py --processes 1 2 4 [--runs 200] [--rounds 2]`
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The repository root is on the path only now.
from tests.conftest import PG_ADMIN_URL, REDIS_URL, free_port, wait_for_port

from bench.run_latency import (
    CLIENT_LIMITS,
    REPO,
    cpu_seconds,
    direct,
    percentile,
    platform_env,
    set_up_agent,
    start_model_server,
    through_platform,
)

TITLES_SECONDS = 35.0  # titles of the warm-up runs wait at most 30 s for a quiet moment: let them pass first


def serve(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "nexent", "serve", *args, "--port", str(port)], env=env, cwd=REPO)
    return process, port


async def measure(processes: int, runs: int, rounds: int, model_base: str) -> None:
    database = f"nexent_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f"CREATE DATABASE {database}")
    await admin.close()
    env = platform_env(
        NEXENT_DATABASE_URL=PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        + f"/{database}",
        NEXENT_BUS_BACKEND="redis",
        NEXENT_REDIS_URL=REDIS_URL,
    )
    embedded, port = serve(env)  # migrates the database
    servers = [embedded]
    try:
        wait_for_port(port, timeout=90)
        runtime_ports = []
        for _ in range(processes):
            process, runtime_port = serve(env, "--service", "runtime")
            servers.append(process)
            runtime_ports.append(runtime_port)
        for runtime_port in runtime_ports:
            wait_for_port(runtime_port, timeout=90)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=120, limits=CLIENT_LIMITS) as http:
            token, agent = await set_up_agent(http, url, model_base)
            message = " ".join(["word"] * 20)
            runtimes = [f"http://127.0.0.1:{p}" for p in runtime_ports]
            for runtime in runtimes:  # warm up every process
                await through_platform(http, runtime, token, agent, message)
            await asyncio.sleep(TITLES_SECONDS)
            pids = [s.pid for s in servers]
            for _ in range(rounds):
                await asyncio.sleep(3)
                direct_results = await asyncio.gather(*(direct(http, model_base, message) for _ in range(runs)))
                await asyncio.sleep(3)
                cpu_before = sum(cpu_seconds(pid) for pid in pids)
                targets = itertools.cycle(runtimes)
                results = await asyncio.gather(
                    *(through_platform(http, next(targets), token, agent, message) for _ in range(runs))
                )
                cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
                d_first = [r[0] * 1000 for r in direct_results]
                p_first = [r[0] * 1000 for r in results if r[0]]
                added_p50 = statistics.median(p_first) - statistics.median(d_first)
                added_p99 = percentile(p_first, 0.99) - percentile(d_first, 0.99)
                errors = sum(1 for r in results if not r[2] or r[0] == 0.0)
                print(
                    f"{processes} runtime process(es), {runs} runs at once: direct first token "
                    f"{statistics.median(d_first):.1f} / {percentile(d_first, 0.99):.1f} ms, platform first delta "
                    f"{statistics.median(p_first):.1f} / {percentile(p_first, 0.99):.1f} ms, added {added_p50:.1f} / "
                    f"{added_p99:.1f} ms (p50 / p99); platform CPU per run {cpu * 1000 / runs:.1f} ms; "
                    f"load average {os.getloadavg()[0]:.2f}; errors {errors}",
                    flush=True,
                )
    finally:
        for process in servers:
            process.terminate()
        for process in servers:
            process.wait()
        admin = await asyncpg.connect(PG_ADMIN_URL)
        await admin.execute(f"DROP DATABASE {database} WITH (FORCE)")
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    model, base = start_model_server(first_byte=0.05, pace=0.01)
    try:
        for processes in args.processes:
            await measure(processes, args.runs, args.rounds, base)
    finally:
        model.terminate()
        model.wait()


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
