"""Added latency of an agent run: time to the first answer token and per-token overhead through the platform,
against streaming the same scripted model directly, at several concurrency levels, in the same run.

Three processes: the scripted OpenAI-compatible model (fixed pace), the platform (`nexent serve`, embedded shape,
SQLite in a temporary directory), and this client; the model server and the client run on uvloop, like the
platform. The direct path streams the model over HTTP with httpx; the platform path posts a run and reads its SSE
stream until the first `message.delta` and until `run.completed`. Each phase starts with an idle platform (work
that earlier runs left behind, such as conversation titles, is measured on its own as deferred CPU); with
`--repeat`, rounds alternate the paths and their samples are pooled.

A third path gives the floor: `bench/passthrough.py`, a bare pass-through on the platform's own server stack and
model client (no authentication, database or agent), read like the platform. What it adds (`floor_added_first_ms`)
is what one Python HTTP hop in the path costs on this machine at that concurrency, whatever the hop does.

With `--steady SECONDS`, each level is also measured in a second, separately labelled mode (`"mode": "steady"`,
printed after the burst figures of the level, which are unchanged): a closed loop that keeps N runs in flight for
SECONDS, each client starting its next run as soon as its previous one has ended (clients start spread over the
first `--steady-spread` seconds, best about one run's length; runs started during the first `--steady-warmup`
seconds are not counted), first on the direct path, then through the platform.

Run: `.venv/bin/python bench/run_latency.py [--levels 1 50 200] [--repeat 3] [--tokens 20] [--steady 20]`
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
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import uvloop

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import free_port, wait_for_port  # noqa: E402 - the repository root is on the path only now

# The scripted model on uvloop and httptools, like the platform (`nexent serve`): the model server and this
# client share the machine's 2 cores with the platform, so they should cost as little as they can.
MODEL_SERVER = """
import socket, sys
sys.path.insert(0, {repo!r})
import uvicorn
from tests.support.model_server import ModelServer
server = ModelServer(first_byte_delay={first:f}, chunk_delay={pace:f}, chunk_size=4)
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
config = uvicorn.Config(
    server.asgi, log_level="warning", access_log=False, lifespan="off", loop="uvloop", http="httptools",
    interface="asgi3", proxy_headers=False,
)
uvicorn.Server(config).run(sockets=[sock])
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux), to report the platform's CPU cost per run."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def settle(pid: int, *, longest: float = 180.0) -> None:
    """Wait until the platform is idle (under 2% of a core for two half-seconds in a row): work that earlier runs
    left behind (conversation titles) must not land in the next measurement, of either path."""
    deadline = time.monotonic() + longest
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(0.5)
        quiet = quiet + 1 if cpu_seconds(pid) - before < 0.01 else 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def direct(http: httpx.AsyncClient, base: str, message: str) -> tuple[float, float]:
    started = time.perf_counter()
    first = 0.0
    body = {"model": "scripted", "messages": [{"role": "user", "content": message}], "stream": True}
    async with http.stream("POST", f"{base}/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if first == 0.0 and line.startswith("data:") and '"content"' in line and '"content":""' not in line:
                first = time.perf_counter() - started
    return first, time.perf_counter() - started


async def read_run(
    http: httpx.AsyncClient, url: str, message: str, headers: dict[str, str] | None = None
) -> tuple[float, float, bool, float]:
    """POST a run and read its SSE stream: (time to the first `message.delta`, total time, ended completed, time
    to the first event of any type)."""
    started = time.perf_counter()
    first = first_event = 0.0
    ok = False
    async with http.stream("POST", url, json={"message": message}, headers=headers) as response:
        async for line in response.aiter_lines():
            if first_event == 0.0 and line.startswith("event: "):
                first_event = time.perf_counter() - started
            if first == 0.0 and line == "event: message.delta":
                first = time.perf_counter() - started
            if line == "event: run.completed":
                ok = True
    return first, time.perf_counter() - started, ok, first_event


async def through_floor(http: httpx.AsyncClient, url: str, message: str) -> tuple[float, float, bool, float]:
    return await read_run(http, f"{url}/run", message)


async def through_platform(
    http: httpx.AsyncClient, url: str, token: str, agent: str, message: str
) -> tuple[float, float, bool, float]:
    headers = {"Authorization": f"Bearer {token}"}
    return await read_run(http, f"{url}/api/agents/{agent}/runs", message, headers)


async def closed_loop(
    call: Callable[[], Awaitable[tuple[float, ...]]], clients: int, seconds: float, warmup: float, spread: float
) -> list[tuple[float, ...]]:
    """Keep `clients` calls in flight for `seconds` (the clients starting evenly over `spread` seconds); the
    results of calls started after `warmup` seconds."""
    started = time.monotonic()
    measured: list[tuple[float, ...]] = []

    async def client(index: int) -> None:
        await asyncio.sleep(spread * index / clients)  # a steady state, not a burst
        while (now := time.monotonic()) < started + seconds:
            result = await call()
            if now >= started + warmup:
                measured.append(result)

    await asyncio.gather(*(client(i) for i in range(clients)))
    return measured


def summary(
    mode: str,
    level: int,
    direct_results: Sequence[tuple[float, ...]],
    platform_results: Sequence[tuple[float, ...]],
    message: str,
    cpu: float,
    deferred: float,
    loads: list[float],
    seconds: float | None = None,
    floor_results: Sequence[tuple[float, ...]] = (),
    floor_cpu: float = 0.0,
) -> dict[str, Any]:
    failures = sum(1 for r in platform_results if not r[2] or r[0] == 0.0)
    d_first = [r[0] * 1000 for r in direct_results]
    p_first = [r[0] * 1000 for r in platform_results if r[0]]
    p_event = [r[3] * 1000 for r in platform_results if r[3]]
    d_total = [r[1] * 1000 for r in direct_results]
    p_total = [r[1] * 1000 for r in platform_results if r[2]]
    added_p50 = statistics.median(p_first) - statistics.median(d_first)
    added_p99 = percentile(p_first, 0.99) - percentile(d_first, 0.99)
    chunks = max(1, len("echo: " + message) // 4)
    per_token = (statistics.median(p_total) - statistics.median(d_total)) / chunks
    result: dict[str, Any] = {"mode": mode} if mode != "burst" else {}
    result |= {
        "concurrent": level,
        "runs": len(platform_results),
        "direct_first_ms": {"p50": round(statistics.median(d_first), 1), "p99": round(percentile(d_first, 0.99), 1)},
        "platform_first_ms": {"p50": round(statistics.median(p_first), 1), "p99": round(percentile(p_first, 0.99), 1)},
        "added_first_ms": {"p50": round(added_p50, 1), "p99": round(added_p99, 1)},
        # When the client hears of the run at all (its first event, `run.started`, sent before the model answers).
        "platform_first_event_ms": {
            "p50": round(statistics.median(p_event), 1),
            "p99": round(percentile(p_event, 0.99), 1),
        },
        "added_ms_per_chunk": round(per_token, 2),
        "platform_cpu_ms_per_run": round(cpu * 1000 / len(platform_results), 1),
        "deferred_cpu_ms_per_run": round(deferred * 1000 / len(platform_results), 1),
        "load_average": [round(min(loads), 2), round(max(loads), 2)],
        "errors": failures,
    }
    if floor_results:
        f_first = [r[0] * 1000 for r in floor_results if r[0]]
        result["floor_first_ms"] = {
            "p50": round(statistics.median(f_first), 1),
            "p99": round(percentile(f_first, 0.99), 1),
        }
        result["floor_added_first_ms"] = {
            "p50": round(statistics.median(f_first) - statistics.median(d_first), 1),
            "p99": round(percentile(f_first, 0.99) - percentile(d_first, 0.99), 1),
        }
        result["floor_cpu_ms_per_run"] = round(floor_cpu * 1000 / len(floor_results), 2)
        result["floor_errors"] = sum(1 for r in floor_results if not r[2] or r[0] == 0.0)
    if seconds is not None:
        result["runs_per_second"] = {
            "direct": round(len(direct_results) / seconds, 1),
            "platform": round(len(platform_results) / seconds, 1),
        }
    return result


def start_model_server(first_byte: float, pace: float) -> tuple[subprocess.Popen[str], str]:
    """The scripted model in a process of its own, and its OpenAI-compatible base URL."""
    model = subprocess.Popen(
        [sys.executable, "-c", MODEL_SERVER.format(repo=str(REPO), first=first_byte, pace=pace)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert model.stdout is not None
    port = int(model.stdout.readline())
    wait_for_port(port)
    return model, f"http://127.0.0.1:{port}/v1"


def platform_env(**extra: str) -> dict[str, str]:
    """`nexent serve`'s environment for the benchmark: a fresh data directory, room for every run at once."""
    return {
        **os.environ,
        "NEXENT_DATA_DIR": tempfile.mkdtemp(prefix="nexent-bench-"),
        "NEXENT_LOG_LEVEL": "WARNING",
        "NEXENT_BUILTIN_MODELS": "false",
        "NEXENT_MAX_CONCURRENT_RUNS": "512",
        "NEXENT_MAX_CONCURRENT_RUNS_PER_TENANT": "512",
        "NEXENT_LOGIN_MAX_ATTEMPTS": "1000",
        "NEXENT_PRIVATE_ENDPOINTS_ALLOW": "127.0.0.1",  # the scripted model server listens on loopback
        **extra,
    }


# Idle connections dropped before the servers' 5 s keep-alive ends (phases are separated by idle waits).
CLIENT_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=1000, keepalive_expiry=2.0)


async def set_up_agent(http: httpx.AsyncClient, url: str, model_base: str) -> tuple[str, str]:
    """Register an account, add the scripted model and a one-step agent on it: (access token, agent id)."""
    account = {"email": "bench@example.com", "password": "benchmark-pass"}
    token = str((await http.post(f"{url}/api/auth/register", json=account)).json()["access_token"])
    headers = {"Authorization": f"Bearer {token}"}
    model = {"name": "m", "kind": "llm", "model": "scripted", "base_url": model_base}
    model_id = (await http.post(f"{url}/api/models", json=model, headers=headers)).json()["id"]
    agent = {"name": "Bench", "model_id": model_id, "max_steps": 2}
    return token, str((await http.post(f"{url}/api/agents", json=agent, headers=headers)).json()["id"])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--first-byte", type=float, default=0.05)
    parser.add_argument("--pace", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=1, help="rounds per level (samples are pooled)")
    parser.add_argument("--server-log", type=Path, help="keep the platform's output (warnings and errors) here")
    parser.add_argument(
        "--steady", type=float, default=0.0, help="also measure a closed loop holding N runs in flight this long (s)"
    )
    parser.add_argument("--steady-warmup", type=float, default=3.0, help="seconds of the closed loop not counted")
    parser.add_argument("--steady-spread", type=float, default=1.0, help="seconds over which the clients start")
    args = parser.parse_args()

    platform_port = free_port()
    model, base = start_model_server(args.first_byte, args.pace)
    passthrough = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
        [sys.executable, str(REPO / "bench" / "passthrough.py"), base], stdout=subprocess.PIPE, text=True
    )
    assert passthrough.stdout is not None
    floor_url = f"http://127.0.0.1:{int(passthrough.stdout.readline())}"
    log = args.server_log.open("wb") if args.server_log else subprocess.DEVNULL
    server = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
        [sys.executable, "-m", "nexent", "serve", "--port", str(platform_port)],
        env=platform_env(),
        cwd=REPO,
        stdout=log,
        stderr=log,
    )
    try:
        wait_for_port(platform_port, timeout=60)
        url = f"http://127.0.0.1:{platform_port}"
        async with httpx.AsyncClient(timeout=120, limits=CLIENT_LIMITS) as http:
            token, agent = await set_up_agent(http, url, base)
            message = " ".join(["word"] * args.tokens)
            await through_platform(http, url, token, agent, message)  # warm up
            await through_floor(http, floor_url, message)
            print(
                f"machine: {platform.node()} ({platform.machine()}, {os.cpu_count()} cores); model first byte "
                f"{args.first_byte * 1000:.0f} ms, {args.pace * 1000:.0f} ms per chunk"
            )
            for level in args.levels:
                direct_results: list[tuple[float, float]] = []
                platform_results: list[tuple[float, float, bool, float]] = []
                floor_results: list[tuple[float, float, bool, float]] = []
                cpu = deferred = floor_cpu = 0.0
                loads: list[float] = []
                for _ in range(args.repeat):  # alternating rounds: both paths see the machine's ups and downs
                    await settle(server.pid)
                    direct_results += await asyncio.gather(*(direct(http, base, message) for _ in range(level)))
                    await settle(server.pid)
                    floor_before = cpu_seconds(passthrough.pid)
                    floor_results += await asyncio.gather(
                        *(through_floor(http, floor_url, message) for _ in range(level))
                    )
                    floor_cpu += cpu_seconds(passthrough.pid) - floor_before
                    await settle(server.pid)
                    cpu_before = cpu_seconds(server.pid)
                    platform_results += await asyncio.gather(
                        *(through_platform(http, url, token, agent, message) for _ in range(level))
                    )
                    cpu_after = cpu_seconds(server.pid)
                    cpu += cpu_after - cpu_before
                    loads.append(os.getloadavg()[0])
                    await settle(server.pid)  # the work the runs left behind (titles), measured on its own
                    deferred += cpu_seconds(server.pid) - cpu_after
                print(
                    json.dumps(
                        summary(
                            "burst",
                            level,
                            direct_results,
                            platform_results,
                            message,
                            cpu,
                            deferred,
                            loads,
                            floor_results=floor_results,
                            floor_cpu=floor_cpu,
                        )
                    ),
                    flush=True,
                )
                if args.steady > 0:
                    await settle(server.pid)
                    window = args.steady - args.steady_warmup
                    steady_direct = await closed_loop(
                        lambda: direct(http, base, message), level, args.steady, args.steady_warmup, args.steady_spread
                    )
                    await settle(server.pid)
                    cpu_before = cpu_seconds(server.pid)
                    steady_platform = await closed_loop(
                        lambda: through_platform(http, url, token, agent, message),
                        level,
                        args.steady,
                        args.steady_warmup,
                        args.steady_spread,
                    )
                    cpu_after = cpu_seconds(server.pid)
                    steady_loads = [os.getloadavg()[0]]
                    await settle(server.pid)
                    steady_deferred = cpu_seconds(server.pid) - cpu_after
                    # CPU over the whole loop, warm-up included, shared over the runs that ended in it
                    steady_runs = len(steady_platform) * args.steady / window
                    print(
                        json.dumps(
                            summary(
                                "steady",
                                level,
                                steady_direct,
                                steady_platform,
                                message,
                                (cpu_after - cpu_before) * len(steady_platform) / steady_runs,
                                steady_deferred * len(steady_platform) / steady_runs,
                                steady_loads,
                                seconds=window,
                            )
                        ),
                        flush=True,
                    )
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
