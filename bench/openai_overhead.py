"""What the OpenAI-compatible API adds: time to the first answer token and to the end of a streamed
`POST /v1/chat/completions` (the official shape, read as any OpenAI client reads it), against streaming the same
scripted model directly, in the same run, at several concurrency levels. Same method as `bench/run_latency.py`
(whose helpers it uses): three processes (the scripted model, `nexent serve` in the embedded shape on SQLite, this
client), each phase starting with an idle platform, rounds alternating the paths with `--repeat`, and the floor:
`bench/passthrough.py`, a bare pass-through on the platform's own server stack and model client, which says what
one Python HTTP hop costs on this machine. The platform's own run API (`POST /api/agents/{id}/runs`) is measured
beside it, so that the OpenAI translation's share shows (`v1_vs_runs_first_ms`).

Run: `.venv/bin/python bench/openai_overhead.py [--levels 1 20] [--repeat 2] [--tokens 20]`
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
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import httpx
import uvloop

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import free_port, wait_for_port  # noqa: E402

from bench.run_latency import (  # noqa: E402 - the repository root is on the path only now
    CLIENT_LIMITS,
    cpu_seconds,
    direct,
    percentile,
    platform_env,
    set_up_agent,
    settle,
    start_model_server,
    through_floor,
    through_platform,
)


async def through_v1(http: httpx.AsyncClient, url: str, key: str, message: str) -> tuple[float, float, bool]:
    """A streamed chat completion: (time to the first content chunk, total time, ended with `[DONE]`)."""
    started = time.perf_counter()
    first = 0.0
    done = False
    body = {"model": "bench", "messages": [{"role": "user", "content": message}], "stream": True}
    headers = {"Authorization": f"Bearer {key}"}
    async with http.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers) as response:
        async for line in response.aiter_lines():
            if first == 0.0 and line.startswith("data: {") and '"content":"' in line and '"content":""' not in line:
                first = time.perf_counter() - started
            if line == "data: [DONE]":
                done = True
    return first, time.perf_counter() - started, done


def stats(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 1), "p99": round(percentile(values, 0.99), 1)}


def summary(level: int, samples: dict[str, list[tuple[Any, ...]]], cpu: dict[str, float]) -> dict[str, Any]:
    first = {path: [r[0] * 1000 for r in rows if r[0]] for path, rows in samples.items()}
    total = {path: [r[1] * 1000 for r in rows] for path, rows in samples.items()}
    d50, d99 = statistics.median(first["direct"]), percentile(first["direct"], 0.99)

    def added(path: str) -> dict[str, float]:
        return {
            "p50": round(statistics.median(first[path]) - d50, 1),
            "p99": round(percentile(first[path], 0.99) - d99, 1),
        }

    return {
        "concurrent": level,
        "requests": len(samples["v1"]),
        "first_token_ms": {path: stats(values) for path, values in first.items()},
        "v1_added_first_ms": added("v1"),
        "runs_api_added_first_ms": added("runs"),
        "floor_added_first_ms": added("floor"),
        "v1_vs_runs_first_ms": round(statistics.median(first["v1"]) - statistics.median(first["runs"]), 1),
        "v1_first_ratio_to_direct": round(statistics.median(first["v1"]) / d50, 2),
        "v1_total_ratio_to_direct": round(statistics.median(total["v1"]) / statistics.median(total["direct"]), 2),
        "cpu_ms_per_request": {path: round(cpu[path] * 1000 / len(samples[path]), 1) for path in ("v1", "runs")},
        "errors": {
            "v1": sum(1 for r in samples["v1"] if not r[2] or not r[0]),
            "runs": sum(1 for r in samples["runs"] if not r[2] or not r[0]),
        },
        "load_average": round(os.getloadavg()[0], 2),
    }


async def set_up_v1(http: httpx.AsyncClient, url: str, token: str, agent: str) -> str:
    """Name the agent `bench`, publish it and make an API key for it: the key's secret."""
    headers = {"Authorization": f"Bearer {token}"}
    await http.patch(f"{url}/api/agents/{agent}", json={"name": "bench"}, headers=headers)
    published = await http.post(f"{url}/api/agents/{agent}/publish", json={"note": "bench"}, headers=headers)
    published.raise_for_status()
    created = await http.post(f"{url}/api/api-keys", json={"name": "bench"}, headers=headers)
    created.raise_for_status()
    return str(created.json()["secret"])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--first-byte", type=float, default=0.05)
    parser.add_argument("--pace", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=2, help="rounds per level (samples are pooled)")
    args = parser.parse_args()

    platform_port = free_port()
    model, base = start_model_server(args.first_byte, args.pace)
    passthrough = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
        [sys.executable, str(REPO / "bench" / "passthrough.py"), base], stdout=subprocess.PIPE, text=True
    )
    assert passthrough.stdout is not None
    floor_url = f"http://127.0.0.1:{int(passthrough.stdout.readline())}"
    server = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
        [sys.executable, "-m", "nexent", "serve", "--port", str(platform_port)],
        env=platform_env(),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(platform_port, timeout=60)
        url = f"http://127.0.0.1:{platform_port}"
        async with httpx.AsyncClient(timeout=120, limits=CLIENT_LIMITS) as http:
            token, agent = await set_up_agent(http, url, base)
            key = await set_up_v1(http, url, token, agent)
            message = " ".join(["word"] * args.tokens)
            await through_v1(http, url, key, message)  # warm up
            await through_platform(http, url, token, agent, message)
            await through_floor(http, floor_url, message)
            print(
                f"machine: {platform.node()} ({platform.machine()}, {os.cpu_count()} cores); model first byte "
                f"{args.first_byte * 1000:.0f} ms, {args.pace * 1000:.0f} ms per chunk"
            )
            for level in args.levels:
                samples: dict[str, list[tuple[Any, ...]]] = {"direct": [], "floor": [], "runs": [], "v1": []}
                cpu = {"runs": 0.0, "v1": 0.0}
                for round_ in range(args.repeat):
                    order = ["direct", "floor", "runs", "v1"] if round_ % 2 == 0 else ["v1", "runs", "floor", "direct"]
                    for path in order:
                        await settle(server.pid)
                        before = cpu_seconds(server.pid)
                        calls: list[Coroutine[Any, Any, tuple[Any, ...]]]
                        if path == "direct":
                            calls = [direct(http, base, message) for _ in range(level)]
                        elif path == "floor":
                            calls = [through_floor(http, floor_url, message) for _ in range(level)]
                        elif path == "runs":
                            calls = [through_platform(http, url, token, agent, message) for _ in range(level)]
                        else:
                            calls = [through_v1(http, url, key, message) for _ in range(level)]
                        samples[path] += await asyncio.gather(*calls)
                        if path in cpu:
                            cpu[path] += cpu_seconds(server.pid) - before
                print(json.dumps(summary(level, samples, cpu)), flush=True)
    finally:
        for process in (server, passthrough, model):
            process.terminate()
        for process in (server, passthrough, model):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
