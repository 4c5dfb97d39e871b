"""The Grafana dashboard (`deploy/grafana/dashboards/nexent.json`) only uses metrics the platform serves: every
PromQL expression of every panel is parsed for its metric names, which must be in the `/metrics` of a live server
after an agent run, and those of jobs and ingestion in the `/metrics` of a `nexent worker` too. The run also shows
the per-agent series (runs, tokens, cost from NEXENT_MODEL_PRICES)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO_ROOT, free_port, make_settings, wait_for_port, wait_until
from tests.support.identity import bearer, register
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server
from tests.test_runs import parse_sse

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "nexent.json"
TOKEN = "scrape-me"
# PromQL's parts that are not metric names: strings, label matchers, ranges, grouping label lists, keywords.
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACES = re.compile(r"\{[^}]*\}|\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![a-zA-Z0-9_:]|\s*\()")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")
# Made by the processes that run jobs: a worker serves them too.
_WORKER_PREFIXES = ("nexent_jobs_", "nexent_job_", "nexent_knowledge_", "nexent_model_", "nexent_agent_tokens")


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _expressions(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]


def metric_names(expression: str) -> set[str]:
    """The metrics an expression selects, reduced to the names the exposition's `# TYPE` lines give them."""
    bare = _GROUPING.sub(" ", _BRACES.sub(" ", _STRINGS.sub(" ", expression)))
    names = set()
    for name in _IDENTIFIER.findall(bare):
        if name in _KEYWORDS:
            continue
        for suffix in _SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        names.add(name)
    return names


def exposed(text: str) -> set[str]:
    """The metric families of a Prometheus text exposition (a counter's family is named without `_total`)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            names.add(name[: -len("_total")] if name.endswith("_total") else name)
    return names


def test_metric_names_are_read_from_promql() -> None:
    expression = (
        'histogram_quantile(0.95, sum by (le, model) (rate(nexent_model_call_seconds_bucket{model=~"$m"}[5m])))'
        " / sum(rate(nexent_agent_runs_total[$__rate_interval])) + on() group_left max(nexent_jobs_queue_depth{})"
        ' * 3600 + sum without (job) (nexent_runs_in_flight) > bool 0 or topk(10, nexent_errors_total{code="x y"})'
    )
    assert metric_names(expression) == {
        "nexent_model_call_seconds",
        "nexent_agent_runs",
        "nexent_jobs_queue_depth",
        "nexent_runs_in_flight",
        "nexent_errors",
    }


def test_the_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in _panels(dashboard):
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys() and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}" and target["expr"].strip()
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
            assert metric_names(target["expr"]), target["expr"]
    titles = " ".join(p["title"].lower() for p in _panels(dashboard))
    for subject in ("runs", "first-token", "tokens", "cost", "errors", "ingestion", "queue depth"):
        assert subject in titles, subject


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_every_metric_of_the_dashboard_is_served_by_the_platform(tmp_path: Path, llm: RunningModelServer) -> None:
    data_dir = tmp_path / "data"
    make_settings(tmp_path, data_dir=data_dir)  # the database: a copy of the session's migrated one
    server_port, worker_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NEXENT_"))}
    env.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "NEXENT_DATA_DIR": str(data_dir),
            "NEXENT_BUILTIN_MODELS": "false",
            "NEXENT_PRIVATE_ENDPOINTS_ALLOW": "127.0.0.1",
            "NEXENT_MEMORY_ENABLED": "false",
            "NEXENT_LOG_LEVEL": "WARNING",
            "NEXENT_METRICS_TOKEN": TOKEN,
            "NEXENT_WORKER_METRICS_PORT": str(worker_port),
            # 1 per prompt token, 2 per completion token (prices are per million).
            "NEXENT_MODEL_PRICES": json.dumps({"scripted": [1_000_000, 2_000_000]}),
        }
    )

    def start(*command: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "nexent", *command],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    server = start("serve", "--port", str(server_port))
    worker: subprocess.Popen[bytes] | None = None
    try:
        await asyncio.to_thread(wait_for_port, server_port, 90)
        worker = start("worker")
        scrape = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server_port}", timeout=60) as http:
            owner = await register(http, f"dash-{uuid.uuid4().hex[:6]}@example.com")
            headers = bearer(owner["access_token"])
            model = await http.post(
                "/api/models",
                json={"name": "Scripted", "kind": "llm", "model": "scripted", "base_url": llm.base_url},
                headers=headers,
            )
            agent = (
                await http.post("/api/agents", json={"name": "D", "model_id": model.json()["id"]}, headers=headers)
            ).json()
            llm.server.enqueue(ChatReply.text("Hello there."), ChatReply.text("A title"))
            events = parse_sse(
                (await http.post(f"/api/agents/{agent['id']}/runs", json={"message": "Hi"}, headers=headers)).text
            )
            assert events[-1]["type"] == "run.completed"
            usage = events[-1]["data"]["usage"]
            assert (await http.get("/metrics")).status_code == 401
            server_text = (await http.get("/metrics", headers=scrape)).text
        await asyncio.to_thread(wait_for_port, worker_port, 90)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{worker_port}", timeout=30) as http:

            async def worker_scrape() -> str | None:
                response = await http.get("/metrics", headers=scrape)
                return response.text if response.status_code == 200 else None

            worker_text: str = await wait_until(worker_scrape, timeout=30)
    finally:
        _stop(server)
        if worker is not None:
            _stop(worker)

    dashboard = json.loads(DASHBOARD.read_text())
    used = set().union(*(metric_names(e) for e in _expressions(dashboard)))
    assert all(name.startswith("nexent_") for name in used), used
    served, by_worker = exposed(server_text), exposed(worker_text)
    assert used - served == set(), "panels use metrics the server does not serve"
    worker_side = {name for name in used if name.startswith(_WORKER_PREFIXES)}
    assert worker_side and worker_side - by_worker == set(), "panels use job metrics a worker does not serve"

    # The run's series: by agent and status, tokens and cost by agent and model.
    agent_id, model_id = agent["id"], model.json()["id"]
    assert f'nexent_agent_runs_total{{agent="{agent_id}",status="completed"}} 1.0' in server_text
    prompt, completion = usage["input_tokens"], usage["output_tokens"]
    assert prompt > 0 and completion > 0
    for direction, count in (("prompt", prompt), ("completion", completion)):
        labels = f'agent="{agent_id}",direction="{direction}",model="{model_id}"'
        assert f"nexent_agent_tokens_total{{{labels}}} {float(count)}" in server_text
    cost = re.search(rf'nexent_agent_cost_total{{agent="{agent_id}",model="{model_id}"}} ([0-9.e+]+)', server_text)
    assert cost is not None and float(cost.group(1)) == pytest.approx(prompt * 1 + completion * 2)
