"""The command line, as an operator uses it: real processes, real ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nexent.settings import DEFAULT_PORTS, Service, Settings
from tests.conftest import REPO_ROOT, free_port, wait_for_port


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NEXENT_")},
        "NEXENT_DATA_DIR": str(tmp_path / "data"),
        "NEXENT_ADMIN_TOKEN": "cli-operator",
        "NEXENT_JOB_POLL_SECONDS": "0.2",
        "NEXENT_PRIVATE_ENDPOINTS_ALLOW": "127.0.0.1",  # the scripted model servers listen on loopback
        # Memory's extraction is a model call after every run: off, as in `make_settings` (tests/test_memory.py).
        "NEXENT_MEMORY_ENABLED": "false",
        "PYTHONPATH": str(REPO_ROOT),
    }
    env.update(extra)
    return env


def nexent(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "nexent", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"nexent {' '.join(args)} exited {result.returncode}: {result.stderr[-2000:]}")
    return result


class Server:
    def __init__(self, env: dict[str, str], *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log = open(Path(env["NEXENT_DATA_DIR"]).parent / f"server-{self.port}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nexent", "serve", "--port", str(self.port), *args],
            env=env,
            cwd=REPO_ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, timeout=60)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGTERM, then check that the server shut down gracefully (uvicorn re-raises the signal after)."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.log.close()
        assert code in (0, -signal.SIGTERM), code
        assert "Application shutdown complete" in Path(self.log.name).read_text()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path)


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database that `nexent migrate` brought up to date once for the module; the tests that need one take a
    copy (`copy_db`) instead of a migration each, which was a process start each."""
    directory = tmp_path_factory.mktemp("migrated")
    nexent(cli_env(directory), "migrate")
    return directory / "data" / "nexent.db"


def copy_db(migrated_db: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    for source in migrated_db.parent.glob(migrated_db.name + "*"):  # with its -wal and -shm files, if any
        shutil.copy(source, target.parent / (target.name + source.name.removeprefix(migrated_db.name)))


@pytest.fixture
def migrated_env(env: dict[str, str], migrated_db: Path) -> dict[str, str]:
    """`env` with a migrated database in its data directory."""
    copy_db(migrated_db, Path(env["NEXENT_DATA_DIR"]) / "nexent.db")
    return env


@pytest.fixture
def embedded(env: dict[str, str]) -> Iterator[Server]:
    server = Server(env)
    yield server
    server.stop()


def test_embedded_server_starts_on_an_empty_data_dir(embedded: Server, env: dict[str, str]) -> None:
    assert httpx.get(f"{embedded.url}/healthz").status_code == 200
    assert httpx.get(f"{embedded.url}/readyz").json()["status"] == "ok"
    created = httpx.post(
        f"{embedded.url}/api/admin/tenants",
        json={"name": "Live"},
        headers={"Authorization": "Bearer cli-operator"},
    )
    assert created.status_code == 201
    assert (Path(env["NEXENT_DATA_DIR"]) / "nexent.db").is_file()


def test_embedded_server_logs_json_lines_and_stops_cleanly(env: dict[str, str]) -> None:
    server = Server(env)
    httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": "trace-me"})
    server.stop()
    lines = [json.loads(line) for line in Path(server.log.name).read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "nexent.access" and line.get("path") == "/healthz"]
    assert access and access[0]["request_id"] == "trace-me" and access[0]["status"] == 200


def test_embedded_server_runs_queued_jobs(embedded: Server, env: dict[str, str]) -> None:
    job_id = nexent(env, "admin", "purge-jobs", "--older-than-days", "0").stdout.strip()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        jobs = json.loads(nexent(env, "admin", "jobs").stdout)
        if any(j["id"] == job_id and j["status"] == "succeeded" for j in jobs):
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"job {job_id} did not succeed: {jobs}")


@pytest.mark.parametrize("service", list(Service))
def test_each_service_starts_alone(tmp_path: Path, service: Service, migrated_db: Path) -> None:
    env = cli_env(tmp_path, NEXENT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}")
    copy_db(migrated_db, tmp_path / "shared.db")  # a service alone does not migrate
    server = Server(env, "--service", service.value)
    try:
        health = httpx.get(f"{server.url}/healthz")
        assert health.status_code == 200
        paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
        assert ("/api/admin/tenants" in paths) is (service is Service.CONFIG)
    finally:
        server.stop()


def test_service_default_ports() -> None:
    settings = Settings(_env_file=None)
    assert settings.port_for(None) == 5010
    assert {s.value: settings.port_for(s) for s in Service} == {
        "config": 5010,
        "mcp": 5011,
        "data-process": 5012,
        "northbound": 5013,
        "runtime": 5014,
    }
    assert DEFAULT_PORTS[Service.RUNTIME] == 5014
    assert Settings(_env_file=None, port=6000).port_for(Service.MCP) == 6000


def test_worker_executes_a_queued_job(migrated_env: dict[str, str]) -> None:
    env = migrated_env
    job_id = nexent(env, "admin", "purge-jobs").stdout.strip()
    assert json.loads(nexent(env, "admin", "jobs").stdout)[0]["status"] == "queued"
    worker = subprocess.Popen(
        [sys.executable, "-m", "nexent", "worker", "--concurrency", "1"],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            (job,) = json.loads(nexent(env, "admin", "jobs").stdout)
            if job["status"] == "succeeded":
                break
            time.sleep(0.3)
        assert (job["id"], job["status"], job["result"]) == (job_id, "succeeded", {"deleted": 0})
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0


def test_admin_tenant_commands(migrated_env: dict[str, str]) -> None:
    env = migrated_env
    created = json.loads(nexent(env, "admin", "create-tenant", "Ops Team").stdout)
    assert created["slug"] == "ops-team"
    listed = json.loads(nexent(env, "admin", "list-tenants").stdout)
    assert [t["id"] for t in listed["items"]] == [created["id"]]
    bad = nexent(env, "admin", "create-tenant", "x", "--slug", "NO SPACES", check=False)
    assert bad.returncode == 2 and "slug" in bad.stderr
    allowed = nexent(env, "admin", "tenant-private-endpoints", created["id"], "ollama", "10.0.0.0/8").stdout
    assert json.loads(allowed)["private_endpoints"] == ["10.0.0.0/8", "ollama"]
    cleared = nexent(env, "admin", "tenant-private-endpoints", created["id"]).stdout
    assert json.loads(cleared)["private_endpoints"] == []
    wrong = nexent(env, "admin", "tenant-private-endpoints", created["id"], "http://x", check=False)
    assert wrong.returncode == 2 and "not a host name" in wrong.stderr


def test_admin_user_commands(env: dict[str, str]) -> None:
    server = Server(env)
    try:
        registered = httpx.post(
            f"{server.url}/api/auth/register", json={"email": "locked@example.com", "password": "forgotten-one"}
        )
        assert registered.status_code == 201
        changed = nexent(env, "admin", "set-password", "locked@example.com", "--password", "a-new-password")
        assert "changed" in changed.stdout
        refreshed = httpx.post(
            f"{server.url}/api/auth/refresh", json={"refresh_token": registered.json()["refresh_token"]}
        )
        assert refreshed.status_code == 401
        login = httpx.post(
            f"{server.url}/api/auth/login", json={"email": "locked@example.com", "password": "a-new-password"}
        )
        assert login.status_code == 200 and login.json()["user"]["is_platform_admin"] is True
        nexent(env, "admin", "platform-admin", "locked@example.com", "--revoke")
        me = httpx.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
        assert me.json()["user"]["is_platform_admin"] is False
        missing = nexent(env, "admin", "set-password", "nobody@example.com", "--password", "whatever-1", check=False)
        assert missing.returncode == 2
    finally:
        server.stop()


def test_admin_check_reports_engines(migrated_env: dict[str, str], tmp_path: Path) -> None:
    env = migrated_env
    ok = nexent(env, "admin", "check")
    assert json.loads(ok.stdout) == {"database": "ok", "storage": "ok", "queue": "ok", "bus": "ok", "search": "ok"}
    broken = cli_env(tmp_path, NEXENT_BUS_BACKEND="redis", NEXENT_REDIS_URL="redis://127.0.0.1:1/0")
    failed = nexent(broken, "admin", "check", check=False)
    assert failed.returncode == 1 and json.loads(failed.stdout)["bus"].startswith("error")


def test_migrate_can_revert(env: dict[str, str]) -> None:
    nexent(env, "migrate")
    nexent(env, "migrate", "--downgrade-to", "base")
    assert "reverted" in nexent(env, "migrate", "--downgrade-to", "base").stdout
    nexent(env, "migrate")
