"""The HTTP contract every service keeps: problem documents for every error, request ids, probes, metrics,
CORS and the body limit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from nexent.core.db import create_engine, create_session_factory, migrate_async
from nexent.settings import Service
from tests.conftest import make_settings, serve_in_process
from tests.support.identity import bearer, register

OPERATOR = {"Authorization": "Bearer operator-secret"}
PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "request_id"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body.keys() >= PROBLEM_KEYS
    assert (body["status"], body["code"]) == (status, code)
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_liveness_and_readiness(app_client: httpx.AsyncClient) -> None:
    live = await app_client.get("/healthz")
    assert live.status_code == 200 and live.json()["status"] == "ok"
    ready = await app_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "checks": {"database": "ok", "storage": "ok", "queue": "ok", "bus": "ok", "search": "ok"},
    }


async def test_readiness_reports_an_engine_that_does_not_answer(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, bus_backend="redis", redis_url="redis://127.0.0.1:1/0")
    app = serve_in_process(settings)
    # The Redis bus connects lazily, so the app starts and readiness names the broken engine.
    async with app as client:
        response = await client.get("/readyz")
    body = assert_problem(response, 503, "not_ready")
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["database"] == "ok" and checks["bus"].startswith("error")


async def test_unknown_route_and_method(app_client: httpx.AsyncClient) -> None:
    assert_problem(await app_client.get("/api/nothing-here"), 404, "not_found")
    assert_problem(await app_client.delete("/healthz"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    "raw",
    [b"{", b"not json", b'{"name": "x",}', b"\xff\xfe", b'{"name": "a"} trailing'],
)
async def test_malformed_json_is_a_400(app_client: httpx.AsyncClient, raw: bytes) -> None:
    response = await app_client.post(
        "/api/admin/tenants", content=raw, headers={**OPERATOR, "content-type": "application/json"}
    )
    assert_problem(response, 400, "invalid_json")


@pytest.mark.parametrize(
    "payload",
    [
        {"name": 12},
        {"name": ""},
        {"name": "ok", "slug": "Not A Slug"},
        {"name": "ok", "unexpected": True},
        [],
        "just a string",
        None,
        {"name": "x" * 500},
    ],
)
async def test_wrong_types_are_a_422_naming_the_field(app_client: httpx.AsyncClient, payload: object) -> None:
    response = await app_client.post("/api/admin/tenants", json=payload, headers=OPERATOR)
    body = assert_problem(response, 422, "validation_error")
    errors = body["errors"]
    assert isinstance(errors, list) and errors and all({"loc", "msg", "type"} <= e.keys() for e in errors)


async def test_wrong_query_and_path_types(app_client: httpx.AsyncClient) -> None:
    assert_problem(await app_client.get("/api/admin/tenants?limit=0", headers=OPERATOR), 422, "validation_error")
    assert_problem(await app_client.get("/api/admin/tenants?limit=abc", headers=OPERATOR), 422, "validation_error")
    assert_problem(await app_client.get("/api/admin/tenants/not-a-uuid", headers=OPERATOR), 422, "validation_error")


async def test_a_body_over_the_limit_is_a_413(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_body_bytes=1024)
    async with serve_in_process(settings) as client:
        declared = await client.post(
            "/api/admin/tenants",
            content=b"{" + b" " * 5000 + b"}",
            headers={**OPERATOR, "content-type": "application/json"},
        )
        assert_problem(declared, 413, "payload_too_large")

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"name": "'
            for _ in range(10):
                yield b"x" * 500
            yield b'"}'

        streamed = await client.post(
            "/api/admin/tenants", content=chunks(), headers={**OPERATOR, "content-type": "application/json"}
        )
        assert "content-length" not in streamed.request.headers
        assert_problem(streamed, 413, "payload_too_large")

        small = await client.post("/api/admin/tenants", json={"name": "Small"}, headers=OPERATOR)
        assert small.status_code == 201


async def test_request_ids_are_echoed_or_made(app_client: httpx.AsyncClient) -> None:
    given = await app_client.get("/healthz", headers={"X-Request-ID": "client-chosen.id-1"})
    assert given.headers["x-request-id"] == "client-chosen.id-1"
    made = await app_client.get("/healthz", headers={"X-Request-ID": "bad id with spaces\t"})
    assert made.headers["x-request-id"] != "bad id with spaces\t" and len(made.headers["x-request-id"]) == 32


async def test_metrics_count_requests_by_route_and_status(app_client: httpx.AsyncClient) -> None:
    await app_client.get("/healthz")
    await app_client.get("/api/admin/tenants/00000000-0000-0000-0000-000000000000", headers=OPERATOR)
    assert_problem(await app_client.get("/metrics"), 401, "unauthorized")
    text = (await app_client.get("/metrics", headers=OPERATOR)).text
    assert 'nexent_http_requests_total{method="GET",route="/healthz",service="embedded",status="200"}' in text
    assert (
        'nexent_http_requests_total{method="GET",route="/api/admin/tenants/{tenant_id}",'
        'service="embedded",status="404"}' in text
    )
    assert 'nexent_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/healthz"' in text


async def test_metrics_need_the_metrics_token_or_the_operator(tmp_path: Path) -> None:
    async with serve_in_process(make_settings(tmp_path, metrics_token="scrape-me")) as client:
        assert (await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})).status_code == 200
        assert (await client.get("/metrics", headers=OPERATOR)).status_code == 200
        assert_problem(await client.get("/metrics", headers={"Authorization": "Bearer nope"}), 401, "invalid_token")
    async with serve_in_process(make_settings(tmp_path, admin_token=None)) as client:
        assert_problem(await client.get("/metrics", headers={"Authorization": "Bearer x"}), 403, "operator_disabled")


async def test_cors_allows_only_configured_origins(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, cors_origins=["https://app.example.com"])
    async with serve_in_process(settings) as client:
        allowed = await client.options(
            "/healthz",
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"},
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        refused = await client.get("/healthz", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in refused.headers


async def test_home_page_and_openapi(app_client: httpx.AsyncClient) -> None:
    home = await app_client.get("/")
    assert home.status_code == 200 and "Nexent" in home.text and "{{version}}" not in home.text
    spec = (await app_client.get("/openapi.json")).json()
    assert "/api/admin/tenants" in spec["paths"]
    # Two models of one name get module-qualified names (`nexent__providers__schemas__CheckResult`), which the UI's
    # generated types then lack: every schema has its plain name.
    assert not [name for name in spec["components"]["schemas"] if name.startswith("nexent__")]


@pytest.mark.parametrize("service", list(Service))
async def test_each_service_app_answers_its_probes(tmp_path: Path, service: Service) -> None:
    settings = make_settings(tmp_path)
    await migrate_async(settings.resolved_database_url)  # split services expect a migrated database
    async with serve_in_process(settings, service=service) as client:
        assert (await client.get("/healthz")).status_code == 200
        spec = (await client.get("/openapi.json")).json()
        has_tenants = "/api/admin/tenants" in spec["paths"]
        assert has_tenants is (service is Service.CONFIG)


async def test_unexpected_errors_are_a_500_problem_without_internals(app_client: httpx.AsyncClient) -> None:
    # A database that stops answering under a running app is an unexpected error a client can reach.
    app = app_client._transport.app  # type: ignore[attr-defined]
    broken = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    app.state.engines.sessions = create_session_factory(broken)
    response = await app_client.get("/api/admin/tenants", headers=OPERATOR)
    body = assert_problem(response, 500, "internal_error")
    assert "asyncpg" not in json.dumps(body) and "Traceback" not in response.text
    await broken.dispose()


async def test_405_names_every_method_of_the_path(app_client: httpx.AsyncClient) -> None:
    me = await app_client.put("/api/me")
    assert_problem(me, 405, "method_not_allowed")
    assert me.headers["allow"] == "GET, PATCH"
    # `/api/models/check` is its own path, though `/api/models/{model_id}` fits it too: its methods, not an id.
    token = (await register(app_client, "allow@example.com"))["access_token"]
    check = await app_client.patch("/api/models/check", json={}, headers=bearer(token))
    assert_problem(check, 405, "method_not_allowed")
    assert check.headers["allow"] == "POST"
    accept = await app_client.delete("/api/invitations/accept", headers=bearer(token))
    assert_problem(accept, 405, "method_not_allowed")
    assert accept.headers["allow"] == "POST"


async def test_the_openapi_document_publishes_every_error_as_a_problem(app_client: httpx.AsyncClient) -> None:
    spec = (await app_client.get("/openapi.json")).json()
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    # The OpenAI-compatible API answers errors in OpenAI's shape (docs/openai-api.md).
    openai_error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    operations = [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]
    for path, method, op in operations:
        for status, response in op["responses"].items():
            if int(status) >= 400:
                expected = openai_error if path.startswith("/v1/") else problem
                assert response["content"] == expected, (path, method, status)
    assert {"401", "404", "429", "500"} <= set(spec["paths"]["/v1/chat/completions"]["post"]["responses"])
    responses = {(path, method): set(op["responses"]) for path, method, op in operations}
    # From dependencies: signing in (401, and 429 for keys over quota), a permission (403).
    assert {"401", "403", "429"} <= responses[("/api/agents", "get")]
    # From the shape: path parameters (404), a JSON body (400, 413, 422), a change (409).
    assert {"400", "404", "409", "413", "422"} <= responses[("/api/agents/{agent_id}", "patch")]
    # From the route: its service's own answers.
    assert {"401", "429"} <= responses[("/api/auth/login", "post")]
    assert "503" in responses[("/readyz", "get")]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
