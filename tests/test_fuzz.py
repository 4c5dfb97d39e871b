"""Schemathesis over the whole OpenAPI document of the embedded app, signed in as the platform's first user (a
tenant owner and platform administrator), on SQLite and on PostgreSQL: no input may cause a 5xx, and every answer's
status code, content type, headers and body must be the ones the document publishes.

Every check runs but three: `positive_data_acceptance` (rules across fields, such as "base_url or endpoints", and
references to things that must exist reject schema-valid bodies with 4xx), `negative_data_rejection` (pydantic's
lax mode takes "1" for 1 and 0 for false), and the response time limit (timings belong in `bench/`).

The run is bounded by examples per operation and seeded, so that CI is repeatable; `NEXENT_FUZZ_EXAMPLES` and
`NEXENT_FUZZ_SEED` widen or vary it (see docs/development.md). Each engine gets every phase (the schema's boundary
cases of every operation, random examples, stateful sequences) but half of the random examples, with a seed of its
own: together they try as many random examples as one engine with 25 did, in about two thirds of the time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.identity import PASSWORD, bearer
from tests.support.model_server import RunningModelServer, run_model_server
from tests.test_cli import Server, cli_env

EXAMPLES = os.environ.get("NEXENT_FUZZ_EXAMPLES", "13")
SEED = int(os.environ.get("NEXENT_FUZZ_SEED", "20261206"))
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
        "use_after_free",
        "ensure_resource_availability",
        "ignored_auth",
    ]
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def fuzz(server: Server, tmp_path: Path, llm: RunningModelServer, *, seed: int) -> None:
    registered = httpx.post(
        f"{server.url}/api/auth/register", json={"email": "fuzz@example.com", "password": PASSWORD}, timeout=30
    )
    assert registered.status_code == 201, registered.text
    token = registered.json()["access_token"]
    # The platform's first user is its administrator: the operator routes are fuzzed too.
    assert httpx.get(f"{server.url}/api/admin/tenants", headers=bearer(token), timeout=30).status_code == 200
    # The tenant's chat and embedding models are the scripted model server's, so that the fuzzer's runs and model
    # checks measure the API: with the built-in models each of them generated on this CPU for up to a minute, two at
    # a time, and the run outgrew its deadline (the built-in models have their own tests, tests/test_local_models.py).
    for kind, name in (("llm", "test-chat"), ("embedding", "test-embed")):
        body = {
            "name": name,
            "kind": kind,
            "model": name,
            "base_url": llm.base_url,
            "api_key": "sk-test",
            "is_default": True,
        }
        created = httpx.post(f"{server.url}/api/models", json=body, headers=bearer(token), timeout=30)
        assert created.status_code == 201, created.text
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{server.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--max-examples",
        EXAMPLES,
        "--seed",
        str(seed),
        "--workers",
        "2",
        # Runs wait for their window when the fuzzer has set a model's limit to one request a minute.
        "--request-timeout",
        "180",
        "--no-color",
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=840, cwd=tmp_path, check=False)
    finally:
        server.stop()
    output = result.stdout + result.stderr
    print(output)  # pytest shows it in full when the test fails
    log = Path(server.log.name)
    unhandled = [line for line in log.read_text().splitlines() if '"unhandled error"' in line]
    assert result.returncode == 0, output[-12000:]
    assert not unhandled, json.loads(unhandled[0]).get("exc", unhandled[0])[-4000:]


def test_fuzzing_finds_nothing_on_sqlite(tmp_path: Path) -> None:
    with run_model_server(api_key="sk-test") as llm:
        fuzz(Server(cli_env(tmp_path, NEXENT_BUILTIN_MODELS="false")), tmp_path, llm, seed=SEED)


def test_fuzzing_finds_nothing_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    with run_model_server(api_key="sk-test") as llm:
        env = cli_env(tmp_path, NEXENT_DATABASE_URL=pg_url, NEXENT_BUILTIN_MODELS="false")
        fuzz(Server(env), tmp_path, llm, seed=SEED + 1)
