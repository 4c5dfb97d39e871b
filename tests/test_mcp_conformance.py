"""The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in `../shared/conformance/mcp`)
against the platform's `/mcp`, through a key's connection URL (the suite sends no headers): every generic server
scenario must pass, DNS-rebinding protection included.

The suite and Node 22 are installed once into `.tools/mcp-conformance` (ignored by git; `run.sh` reuses it through
`MCP_CONFORMANCE_DIR`), so only the first run pays for the download. Skipped where the kit is absent (a clone
outside the team's workspace) or npm is missing.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
from pathlib import Path

import httpx
import pytest
import uvicorn

from nexent.server import create_app
from tests.conftest import make_settings
from tests.support.identity import bearer, register

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT.parent / "shared" / "conformance" / "mcp" / "run.sh"
INSTALL_DIR = ROOT / ".tools" / "mcp-conformance"
# The generic scenarios `run.sh` runs (the others need the suite's own fixture tools).
SCENARIOS = {
    "server-initialize",
    "ping",
    "tools-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
    "logging-set-level",
    "resources-list",
    "prompts-list",
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not KIT.exists(), reason=f"the MCP conformance kit is not at {KIT}"),
    pytest.mark.skipif(shutil.which("npm") is None, reason="the MCP conformance suite installs with npm"),
]


async def test_the_official_conformance_suite_passes_every_generic_scenario(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, builtin_models=False))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not serving.done(), "the app did not start"
        await asyncio.sleep(0.01)
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            token = (await register(http, "conformance@example.com"))["access_token"]
            model = {"name": "Model", "kind": "llm", "model": "m", "base_url": "http://127.0.0.1:9/v1"}
            created = await http.post("/api/models", json=model, headers=bearer(token))
            assert created.status_code == 201, created.text
            agent = {"name": "Helper", "description": "Answers questions.", "model_id": created.json()["id"]}
            agent_id = (await http.post("/api/agents", json=agent, headers=bearer(token))).json()["id"]
            published = await http.post(f"/api/agents/{agent_id}/publish", json={}, headers=bearer(token))
            assert published.status_code == 201, published.text
            key = await http.post("/api/api-keys", json={"name": "conformance"}, headers=bearer(token))
            assert key.status_code == 201, key.text
        url = base_url + key.json()["mcp_url"]
        process = await asyncio.create_subprocess_exec(
            "bash",
            str(KIT),
            url,
            str(tmp_path / "results"),
            env={**os.environ, "MCP_CONFORMANCE_DIR": str(INSTALL_DIR)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=540)
    finally:
        server.should_exit = True
        await serving
        sock.close()
    text = output.decode(errors="replace")
    passed = set(re.findall(r"^PASS (\S+)$", text, re.MULTILINE))
    failed = set(re.findall(r"^FAIL (\S+)", text, re.MULTILINE))
    summary = re.search(r"^(\d+) passed, (\d+) failed$", text, re.MULTILINE)
    assert summary is not None, text
    assert (passed, failed) == (SCENARIOS, set()), text
    assert (int(summary[1]), int(summary[2])) == (len(SCENARIOS), 0), text
    assert process.returncode == 0, text
