"""The deployment files: the Compose file (checked by Debian's `docker-compose config`), the gateway's routes (every
route of every service reaches that service), Prometheus' targets, Grafana's provisioning, and the Kubernetes
manifests (rendered by `kubectl kustomize`, checked offline against the Kubernetes JSON schemas by
kubernetes-validate)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from nexent.server import create_app
from nexent.settings import DEFAULT_PORTS, Service, Settings
from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
COMPOSE = DEPLOY / "compose"
NGINX_CONF = COMPOSE / "nginx.conf"
NEXENT_SERVICES = {"migrate", "config", "runtime", "mcp", "northbound", "data-process", "worker"}
KUBERNETES_VERSION = "1.31.0"


# --- Compose --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The Compose file as `docker-compose config` resolves it with the example env file."""
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose (Debian's package) is not installed: scripts/test installs it")
    copy = tmp_path_factory.mktemp("compose") / "deploy"
    shutil.copytree(DEPLOY, copy, ignore=shutil.ignore_patterns("wheels", "k8s"))
    shutil.copy(copy / "compose/.env.example", copy / "compose/.env")
    result = subprocess.run(
        ["docker-compose", "config"], cwd=copy / "compose", capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_compose_runs_every_service_and_engine(compose: dict[str, Any]) -> None:
    services = compose["services"]
    engines = {"postgres", "redis", "minio", "milvus", "milvus-etcd", "milvus-minio", "jaeger", "prometheus", "grafana"}
    assert set(services) == NEXENT_SERVICES | engines | {"gateway"}
    image = "localhost/nexent:latest"
    for name in NEXENT_SERVICES:
        assert services[name]["image"] == image, name
    commands = {name: services[name]["command"] for name in NEXENT_SERVICES}
    assert commands["migrate"] == ["migrate"] and commands["worker"] == ["worker"]
    for service in Service:
        assert commands[service.value] == ["serve", "--service", service.value]
    # Every Nexent process waits for the migrations, which wait for PostgreSQL.
    for name in NEXENT_SERVICES - {"migrate"}:
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Only the gateway is published on every interface; the observability UIs on loopback only.
    for name, service in services.items():
        for port in service.get("ports", []):
            published = str(port.get("host_ip", "")) if isinstance(port, dict) else str(port)
            assert name == "gateway" or published.startswith("127.0.0.1"), (name, port)


def test_compose_takes_secrets_from_the_env_file_and_keeps_state_in_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    example = (COMPOSE / ".env.example").read_text()
    config = services["config"]["environment"]
    # The values come from .env (here the example's placeholders), none is written in the compose file.
    assert "change-me-postgres" in config["NEXENT_DATABASE_URL"]
    assert config["NEXENT_JWT_SECRET"] == "change-me-jwt" and "NEXENT_JWT_SECRET=change-me-jwt" in example
    assert "change-me" not in (COMPOSE / "docker-compose.yml").read_text()
    assert config["NEXENT_BUS_BACKEND"] == "redis" and config["NEXENT_QUEUE_BACKEND"] == "celery"
    assert config["NEXENT_STORAGE_BACKEND"] == "s3" and config["NEXENT_SEARCH_BACKEND"] == "milvus"
    stateful = {
        "postgres": "/var/lib/postgresql/data",
        "redis": "/data",
        "minio": "/data",
        "milvus": "/var/lib/milvus",
        "milvus-etcd": "/etcd",
        "milvus-minio": "/minio_data",
        "prometheus": "/prometheus",
        "grafana": "/var/lib/grafana",
    }
    for name, path in stateful.items():
        volumes = [volume_mount(v) for v in services[name]["volumes"]]
        # A named volume of the compose file (not a bind mount) holds it.
        assert any(target == path and source in compose["volumes"] for source, target in volumes), (name, volumes)


def volume_mount(volume: str | dict[str, Any]) -> tuple[str, str]:
    """(source, target) of a service's volume, in either of Compose's syntaxes."""
    if isinstance(volume, dict):
        return str(volume.get("source", "")), str(volume["target"])
    source, target = volume.split(":")[:2]
    return source, target


def test_the_env_example_names_every_secret_the_compose_file_requires() -> None:
    text = (COMPOSE / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    defined = {line.split("=", 1)[0] for line in (COMPOSE / ".env.example").read_text().splitlines() if "=" in line}
    assert required and required <= defined, required - defined


def test_prometheus_scrapes_every_nexent_process() -> None:
    config = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "nexent")
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    expected = {f"{service.value}:{port}" for service, port in DEFAULT_PORTS.items()}
    assert targets == expected | {f"worker:{Settings(_env_file=None).worker_metrics_port}"}
    assert job["authorization"]["credentials_file"] == "/prometheus/metrics-token"


def test_grafana_is_provisioned_with_prometheus_and_the_dashboards() -> None:
    provisioning = DEPLOY / "grafana/provisioning"
    sources = yaml.safe_load((provisioning / "datasources/nexent.yml").read_text())["datasources"]
    assert {(s["uid"], s["url"]) for s in sources} >= {("prometheus", "http://prometheus:9090")}
    providers = yaml.safe_load((provisioning / "dashboards/nexent.yml").read_text())["providers"]
    assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards"


# --- The gateway ----------------------------------------------------------------------------------------------------


class Gateway:
    """The routing of nginx.conf, read the way nginx applies it here: the `location ~` regular expressions in their
    order (the first match wins), else `location /`; an upstream named by `$documents_upstream` is chosen by the
    request method from its `map`."""

    def __init__(self, conf: str) -> None:
        self.upstreams = dict(re.findall(r"upstream (\w+)\s*\{\s*server ([\w-]+:\d+);", conf))
        self.regexes = [
            (re.compile(pattern), target)
            for pattern, target in re.findall(r"location ~ (\S+) \{[^}]*?proxy_pass http://(\$?\w+);", conf)
        ]
        method_map = re.search(r"map \$request_method \$documents_upstream \{([^}]*)\}", conf)
        assert method_map
        self.by_method = dict(re.findall(r"(\w+)\s+(\w+);", method_map.group(1)))
        self.default = re.search(r"location / \{\s*proxy_pass http://(\w+);", conf).group(1)  # type: ignore[union-attr]

    def route(self, method: str, path: str) -> str:
        target = next((t for pattern, t in self.regexes if pattern.match(path)), self.default)
        if target == "$documents_upstream":
            target = self.by_method.get(method, self.by_method["default"])
        return str(self.upstreams[target])


def service_routes() -> Iterator[tuple[Service, str, str]]:
    """Each (service, method, concrete path) the services answer, from their OpenAPI documents and mounts."""
    settings = Settings(_env_file=None)
    for service in Service:
        document = create_app(settings, service=service).openapi()
        for template, operations in document["paths"].items():
            if template in {"/healthz", "/readyz", "/metrics", "/openapi.json"}:
                continue
            path = re.sub(r"\{[^}]+\}", "x1", template)
            for method in operations:
                yield service, method.upper(), path
    yield Service.MCP, "POST", "/mcp"
    yield Service.MCP, "POST", "/mcp/k/key"
    yield Service.NORTHBOUND, "POST", "/a2a/agent-id"
    yield Service.NORTHBOUND, "GET", "/a2a/agent-id/.well-known/agent-card.json"


def test_the_gateway_sends_every_route_to_its_service() -> None:
    gateway = Gateway(NGINX_CONF.read_text())
    routes = list(service_routes())
    assert len(routes) > 100
    wrong = [
        (method, path, service.value, gateway.route(method, path))
        for service, method, path in routes
        if gateway.route(method, path) != f"{service.value}:{DEFAULT_PORTS[service]}"
    ]
    assert wrong == []
    # The web UI's pages go to config, which serves them.
    assert gateway.route("GET", "/agents/edit/") == "config:5010"


def test_the_gateway_streams_and_takes_large_uploads() -> None:
    conf = NGINX_CONF.read_text()
    max_upload = Settings(_env_file=None).knowledge_max_upload_bytes
    size = re.search(r"client_max_body_size (\d+)m;", conf)
    assert size and int(size.group(1)) * 1024 * 1024 >= max_upload
    assert "proxy_buffering off;" in conf and "proxy_request_buffering off;" in conf
    assert re.search(r"proxy_read_timeout (\d+)s;", conf).group(1) == "3600"  # type: ignore[union-attr]
    # The forwarded address is the peer's: a client cannot choose the address it is throttled by.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf


def test_kubernetes_runs_the_same_gateway() -> None:
    assert (DEPLOY / "k8s/base/gateway/nginx.conf").read_text() == NGINX_CONF.read_text()


# --- Kubernetes -----------------------------------------------------------------------------------------------------


def render(overlay: str, tmp_path: Path) -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    copy = tmp_path / "k8s"
    shutil.copytree(DEPLOY / "k8s", copy)
    shutil.copy(copy / "base/secrets.env.example", copy / "base/secrets.env")
    result = subprocess.run(
        ["kubectl", "kustomize", str(copy / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.parametrize("overlay", ["small", "production"])
def test_the_kubernetes_overlays_render_and_match_the_schemas(overlay: str, tmp_path: Path) -> None:
    resources = render(overlay, tmp_path)
    for resource in resources:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    kinds = {(r["kind"], r["metadata"]["name"]) for r in resources}
    for name in NEXENT_SERVICES - {"migrate"} | {"gateway"}:
        assert ("Deployment", name) in kinds, name
    assert ("Job", "migrate") in kinds and ("Ingress", "nexent") in kinds
    assert {n for k, n in kinds if k == "HorizontalPodAutoscaler"} == {"runtime", "worker"}
    assert all(r["metadata"].get("namespace") == "nexent" for r in resources if r["kind"] != "Namespace")
    deployments = {r["metadata"]["name"]: r for r in resources if r["kind"] == "Deployment"}
    for service in Service:
        container = deployments[service.value]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["serve", "--service", service.value]
        assert container["ports"][0]["containerPort"] == DEFAULT_PORTS[service]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        env_from = {next(iter(source)) for source in container["envFrom"]}
        assert env_from == {"configMapRef", "secretRef"}
    assert "livenessProbe" in deployments["worker"]["spec"]["template"]["spec"]["containers"][0]
    ingress = next(r for r in resources if r["kind"] == "Ingress")
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "gateway"


def test_the_schema_check_catches_a_broken_manifest(tmp_path: Path) -> None:
    deployment = next(r for r in render("small", tmp_path) if r["kind"] == "Deployment")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment["spec"]["replicas"] = 1
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_production_scales_runtime_and_workers_further(tmp_path: Path) -> None:
    def autoscalers(overlay: str) -> dict[str, Any]:
        resources = render(overlay, tmp_path / overlay)
        return {r["metadata"]["name"]: r for r in resources if r["kind"] == "HorizontalPodAutoscaler"}

    small, big = autoscalers("small"), autoscalers("production")
    for name in ("runtime", "worker"):
        assert big[name]["spec"]["maxReplicas"] > small[name]["spec"]["maxReplicas"]
        assert big[name]["spec"]["minReplicas"] >= 2
