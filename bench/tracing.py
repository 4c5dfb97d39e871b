"""What traces cost: the same agent runs through `nexent serve` with tracing off (no `OTEL_*` variable: the default)
and on (OTLP/HTTP to a local receiver, every span kept), in alternating rounds on fresh servers.

Processes: the scripted OpenAI-compatible model (fixed pace, `bench/run_latency.py`'s), the platform (embedded
shape, SQLite in a temporary directory), and this client, which also runs the OTLP receiver
(`tests/support/otlp_receiver.py`, a thread) that the traced platform exports to. Each round starts a platform,
warms it up, then at each concurrency level posts the runs (C at a time) and reads their SSE streams: latency to the
first `message.delta` and to `run.completed`, and the platform's CPU time per run (the work a run leaves behind,
its conversation title, included: the platform is let settle before the CPU is read).

Run: `.venv/bin/python bench/tracing.py [--levels 1 20] [--runs 60] [--rounds 2]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import free_port, wait_for_port  # noqa: E402
from tests.support.otlp_receiver import OtlpReceiver, run_otlp_receiver  # noqa: E402

from bench.run_latency import (  # noqa: E402 - the repository root is on the path only now
    CLIENT_LIMITS,
    cpu_seconds,
    percentile,
    platform_env,
    read_run,
    set_up_agent,
    settle,
    start_model_server,
)


async def measure(
    http: httpx.AsyncClient, url: str, token: str, agent: str, message: str, level: int, runs: int, pid: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    results: list[tuple[float, float, bool, float]] = []
    await settle(pid)
    cpu = cpu_seconds(pid)
    started = time.perf_counter()
    while len(results) < runs:
        batch = min(level, runs - len(results))
        calls = [read_run(http, f"{url}/api/agents/{agent}/runs", message, headers) for _ in range(batch)]
        results += await asyncio.gather(*calls)
    elapsed = time.perf_counter() - started
    await settle(pid)
    first = [r[0] * 1000 for r in results if r[0]]
    total = [r[1] * 1000 for r in results if r[2]]
    return {
        "concurrent": level,
        "runs": len(results),
        "errors": sum(1 for r in results if not r[2]),
        "runs_per_s": round(len(results) / elapsed, 2),
        "first_ms": [round(statistics.median(first), 1), round(percentile(first, 0.99), 1)],
        "total_ms": [round(statistics.median(total), 1), round(percentile(total, 0.99), 1)],
        "cpu_ms_per_run": round((cpu_seconds(pid) - cpu) * 1000 / len(results), 2),
    }


async def one_round(
    traced: bool, base: str, receiver: OtlpReceiver, endpoint: str, args: argparse.Namespace
) -> list[dict[str, Any]]:
    port = free_port()
    extra = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint} if traced else {}
    env = {k: v for k, v in platform_env(**extra).items() if traced or not k.startswith("OTEL_")}
    server = subprocess.Popen(  # noqa: ASYNC220 - started before anything of the round is measured
        [sys.executable, "-m", "nexent", "serve", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows = []
    try:
        await asyncio.to_thread(wait_for_port, port, 90)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=120, limits=CLIENT_LIMITS) as http:
            token, agent = await set_up_agent(http, url, base)
            message = " ".join(["word"] * args.tokens)
            for _ in range(3):  # warm up
                await read_run(http, f"{url}/api/agents/{agent}/runs", message, {"Authorization": f"Bearer {token}"})
            for level in args.levels:
                spans = len(receiver.snapshot())
                row = await measure(http, url, token, agent, message, level, args.runs, server.pid)
                await asyncio.sleep(6 if traced else 0)  # the batch processor's 5 s schedule: the spans arrive
                row["tracing"] = "on" if traced else "off"
                row["spans_per_run"] = round((len(receiver.snapshot()) - spans) / row["runs"], 1)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        server.terminate()
        await asyncio.to_thread(server.wait, 30)
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--runs", type=int, default=60, help="runs per level and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each mode, alternating off and on")
    parser.add_argument("--tokens", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {platform.node()} ({platform.machine()}, {os.cpu_count()} cores)")
    model, base = start_model_server(0.05, 0.01)
    rows: list[dict[str, Any]] = []
    try:
        with run_otlp_receiver() as running:
            for _ in range(args.rounds):
                for traced in (False, True):
                    rows += await one_round(traced, base, running.receiver, running.endpoint, args)
    finally:
        model.terminate()
        model.wait()
    for level in args.levels:
        mode: dict[str, dict[str, float]] = {}
        for name in ("off", "on"):
            mine = [r for r in rows if r["concurrent"] == level and r["tracing"] == name]
            mode[name] = {
                "first_p50": statistics.median(r["first_ms"][0] for r in mine),
                "total_p50": statistics.median(r["total_ms"][0] for r in mine),
                "runs_per_s": statistics.median(r["runs_per_s"] for r in mine),
                "cpu": statistics.median(r["cpu_ms_per_run"] for r in mine),
            }
        off, on = mode["off"], mode["on"]
        summary = {
            "concurrent": level,
            "added_first_ms_p50": round(on["first_p50"] - off["first_p50"], 1),
            "added_total_ms_p50": round(on["total_p50"] - off["total_p50"], 1),
            "runs_per_s": [off["runs_per_s"], on["runs_per_s"]],
            "cpu_ms_per_run": [off["cpu"], on["cpu"]],
            "added_cpu_pct": round((on["cpu"] / off["cpu"] - 1) * 100, 1) if off["cpu"] else None,
        }
        print("summary", json.dumps(summary), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
