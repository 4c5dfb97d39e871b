"""The one image (Dockerfile): built with Podman on a Debian base made from Debian's packages (scripts/image), it
migrates a PostgreSQL database as a one-shot container, runs the five services and the Celery worker of the split
shape in a container each (non-root, read-only root file system, as the Kubernetes manifests run it), reports them
healthy through its HEALTHCHECK, and answers a run against the scripted model server.

Marked `container`: it needs root (or a Podman set up for the user) and takes minutes on a cold machine (the base
image, then the dependencies' layer); later builds reuse Podman's layers (docs/benchmarks.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.settings import DEFAULT_PORTS
from tests.conftest import REDIS_URL, REPO_ROOT, PostgresDatabases, free_port, wait_for_port
from tests.support.identity import PASSWORD
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server

DEFAULT_PORT_OF = {service.value: port for service, port in DEFAULT_PORTS.items()}
pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.timeout(1800)]

IMAGE = "localhost/nexent:test"
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
ENV = {**os.environ, "CONTAINERS_CONF": str(REPO_ROOT / "deploy/image/containers.conf")}


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*PODMAN, *args], env=ENV, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="module")
def image() -> str:
    if os.geteuid() != 0 and shutil.which("podman") is None:
        pytest.skip("building the image needs root (to install Podman) or Podman")
    started = time.monotonic()
    build = subprocess.run(
        ["bash", "scripts/image", IMAGE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=1500, check=False
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    print(f"image built in {time.monotonic() - started:.0f} s")
    return IMAGE


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


def parse_sse(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append({"type": fields["event"], "data": json.loads(fields.get("data", "{}"))})
    return events


class Containers:
    """Containers started by one test, removed at its end (their logs shown when it failed)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def run(self, *args: str) -> str:
        name = f"nexent-test-{uuid.uuid4().hex[:8]}"
        podman("run", "-d", "--name", name, *args)
        self.names.append(name)
        return name

    def logs(self) -> str:
        logs = [podman("logs", n, check=False) for n in self.names]
        return "\n".join(
            f"--- {n}\n{log.stdout[-2000:]}{log.stderr[-3000:]}" for n, log in zip(self.names, logs, strict=True)
        )

    def remove(self) -> None:
        for name in self.names:
            podman("rm", "-f", "-t", "5", name, check=False)


NGINX = REPO_ROOT / ".tools/nginx/usr/sbin/nginx"
NGINX_CONF = REPO_ROOT / "deploy/compose/nginx.conf"


@contextmanager
def gateway(ports: dict[str, int], tmp_path: Path) -> Iterator[str]:
    """The Compose file's nginx.conf, on loopback, its upstreams the containers' ports."""
    conf = NGINX_CONF.read_text()
    for service, port in ports.items():
        conf = conf.replace(f"server {service}:{DEFAULT_PORT_OF[service]};", f"server 127.0.0.1:{port};")
    assert ":501" not in conf.split("map ")[0].replace("127.0.0.1:", ""), conf
    port = free_port()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{port};").replace("/tmp/", f"{prefix}/")
    (prefix / "nginx.conf").write_text(conf)
    process = subprocess.Popen(
        [
            str(NGINX),
            "-p",
            str(prefix),
            "-c",
            str(prefix / "nginx.conf"),
            "-e",
            "stderr",
            "-g",
            "daemon off;" + (" user root;" if os.geteuid() == 0 else ""),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_healthy(url: str, containers: Containers, *, name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{name}: {url} never answered:\n{containers.logs()}")


async def test_the_image_migrates_serves_the_split_shape_and_answers_a_run(
    image: str, llm: RunningModelServer, pg_databases: PostgresDatabases, tmp_path: Path
) -> None:
    database_url = await pg_databases.create()  # empty: the migrate container makes the schema
    data = tmp_path / "objects"
    data.mkdir()
    os.chown(data, 10001, 10001)  # the image's user
    env = {
        "NEXENT_DATABASE_URL": database_url,
        "NEXENT_BUS_BACKEND": "redis",
        "NEXENT_REDIS_URL": REDIS_URL,
        "NEXENT_REDIS_PREFIX": f"nexent-test:{uuid.uuid4().hex[:12]}:",
        "NEXENT_STORAGE_DIR": "/srv/objects",
        "NEXENT_JWT_SECRET": "image-test-jwt-secret-0123456789abcdef",
        "NEXENT_ENCRYPTION_KEYS": "RkJiw6Xk_XCNd6sF8WqMOMBikZOEyc3qMkkDyQf87sQ=",
        "NEXENT_ADMIN_TOKEN": "image-test-operator",
        "NEXENT_BUILTIN_MODELS": "false",
        "NEXENT_MEMORY_ENABLED": "false",
        "NEXENT_PRIVATE_ENDPOINTS_ALLOW": "127.0.0.1",
        "NEXENT_LOG_LEVEL": "WARNING",
        # Jobs through Celery on a queue of this test's own (the other tests' workers share the Redis server).
        "NEXENT_QUEUE_BACKEND": "celery",
        "NEXENT_CELERY_QUEUE": f"nexent-image-test-{uuid.uuid4().hex[:8]}",
        "NEXENT_WORKER_METRICS_PORT": str(free_port()),
    }
    env_args = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
    # As the Kubernetes manifests run it: read-only root, a scratch /tmp, the data directory a volume.
    common = ["--network", "host", "--read-only", "--tmpfs", "/tmp", "-v", f"{data}:/srv/objects", *env_args]

    def data_dir(name: str) -> list[str]:
        """A data directory of the container's own (an emptyDir on Kubernetes), writable by the image's user."""
        path = tmp_path / name
        path.mkdir()
        os.chown(path, 10001, 10001)
        return ["-v", f"{path}:/var/lib/nexent"]

    migrated = podman("run", "--rm", *common, *data_dir("migrate"), image, "migrate", timeout=300)
    assert "Database at revision head." in migrated.stdout, migrated.stdout + migrated.stderr

    containers = Containers()
    try:
        # Every process of the split shape, each in its container, as the Compose file runs them.
        ports = {service: free_port() for service in ("config", "runtime", "mcp", "northbound", "data-process")}
        started = {
            service: containers.run(
                *common, *data_dir(service), image, "serve", "--service", service, "--port", str(port)
            )
            for service, port in ports.items()
        }
        started["worker"] = containers.run(*common, *data_dir("worker"), image, "worker")
        config, config_url = started["config"], f"http://127.0.0.1:{ports['config']}"
        runtime_url = f"http://127.0.0.1:{ports['runtime']}"
        for service, port in ports.items():
            wait_healthy(f"http://127.0.0.1:{port}/readyz", containers, name=service, timeout=300)

        # Not root, and the image's HEALTHCHECK finds each service's port from its command line (the worker's:
        # its metrics port).
        assert podman("exec", config, "id", "-u").stdout.strip() == "10001"
        deadline = time.monotonic() + 60
        for name in started.values():
            while (health := podman("healthcheck", "run", name, check=False)).returncode != 0:
                assert time.monotonic() < deadline, health.stdout + health.stderr + containers.logs()
                time.sleep(1)
        # config serves the web UI built into the image.
        page = httpx.get(f"{config_url}/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()

        async with httpx.AsyncClient(base_url=config_url, timeout=30) as client:
            registered = await client.post(
                "/api/auth/register", json={"email": "image@example.com", "password": PASSWORD}
            )
            assert registered.status_code == 201, registered.text
            headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
            model = await client.post(
                "/api/models",
                json={"name": "Scripted", "kind": "llm", "model": "scripted", "base_url": llm.base_url},
                headers=headers,
            )
            assert model.status_code == 201, model.text
            agent = await client.post(
                "/api/agents", json={"name": "Helper", "model_id": model.json()["id"]}, headers=headers
            )
            assert agent.status_code == 201, agent.text

        llm.server.enqueue(ChatReply.text("Hello from the container."), ChatReply.text('"Greeting"'))
        async with httpx.AsyncClient(base_url=runtime_url, timeout=60) as client:
            response = await client.post(
                f"/api/agents/{agent.json()['id']}/runs", json={"message": "Say hello"}, headers=headers
            )
        assert response.status_code == 200, response.text
        events = parse_sse(response.text)
        assert events[0]["type"] == "run.started", events
        assert events[-1]["type"] == "run.completed", events
        assert events[-1]["data"]["answer"] == "Hello from the container."
        assert "Say hello" in llm.server.chat_requests[0].messages[-1]["content"]

        # The gateway (deploy/compose/nginx.conf, Debian's nginx) in front of the containers: the UI, a run streamed
        # through it, and the paths of northbound and mcp reaching those services.
        if NGINX.exists():
            with gateway(ports, tmp_path) as gateway_url:
                async with httpx.AsyncClient(base_url=gateway_url, timeout=60) as client:
                    assert (await client.get("/healthz")).status_code == 200
                    page = await client.get("/chat/")
                    assert page.status_code == 200 and "<html" in page.text.lower()
                    llm.server.reset()  # nothing queued: the model echoes the message (the titles' requests too)
                    async with client.stream(
                        "POST",
                        f"/api/agents/{agent.json()['id']}/runs",
                        json={"message": "Through the gateway"},
                        headers=headers,
                    ) as live:
                        assert live.headers["content-type"].startswith("text/event-stream")
                        text = "".join([chunk async for chunk in live.aiter_text()])
                    assert "Through the gateway" in parse_sse(text)[-1]["data"]["answer"]
                    # northbound answers /v1 in OpenAI's error shape; mcp asks for its API key.
                    models = await client.get("/v1/models")
                    assert models.status_code == 401 and "error" in models.json(), models.text
                    mcp = await client.post("/mcp", json={})
                    assert mcp.status_code == 401, mcp.text
                    assert (await client.get("/metrics")).status_code == 404  # internal only
        else:
            print(f"no {NGINX} (scripts/test unpacks it): the gateway was not run")
    except BaseException:
        print(containers.logs())
        raise
    finally:
        containers.remove()
