"""The tenants domain end to end over HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PostgresDatabases, make_settings, serve_in_process
from tests.test_http import assert_problem

OPERATOR = {"Authorization": "Bearer operator-secret"}


@pytest.fixture(params=["sqlite", "postgres"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases
) -> AsyncIterator[httpx.AsyncClient]:
    overrides = {"database_url": await pg_databases.create(migrated=True)} if request.param == "postgres" else {}
    async with serve_in_process(make_settings(tmp_path, **overrides)) as http:
        yield http


async def create(client: httpx.AsyncClient, **body: object) -> dict[str, object]:
    response = await client.post("/api/admin/tenants", json=body, headers=OPERATOR)
    assert response.status_code == 201, response.text
    data: dict[str, object] = response.json()
    return data


async def test_create_read_update(client: httpx.AsyncClient) -> None:
    created = await create(client, name="  Acme Research  ")
    assert created["name"] == "Acme Research" and created["slug"] == "acme-research"
    assert created["status"] == "active"
    tenant_id = created["id"]

    read = await client.get(f"/api/admin/tenants/{tenant_id}", headers=OPERATOR)
    assert read.json() == created

    updated = await client.patch(
        f"/api/admin/tenants/{tenant_id}", json={"name": "Acme Labs", "status": "disabled"}, headers=OPERATOR
    )
    assert updated.status_code == 200
    assert (updated.json()["name"], updated.json()["status"], updated.json()["slug"]) == (
        "Acme Labs",
        "disabled",
        "acme-research",
    )


async def test_slugs_are_unique(client: httpx.AsyncClient) -> None:
    first = await create(client, name="Same Name")
    second = await create(client, name="Same Name")
    assert first["slug"] == "same-name" and second["slug"] != "same-name"
    assert str(second["slug"]).startswith("same-name-")
    taken = await client.post("/api/admin/tenants", json={"name": "Other", "slug": "same-name"}, headers=OPERATOR)
    assert_problem(taken, 409, "slug_taken")


async def test_concurrent_creation_of_one_slug_gives_one_tenant(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(client.post("/api/admin/tenants", json={"name": "Race", "slug": "race"}, headers=OPERATOR) for _ in range(5))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409]


async def test_names_without_latin_letters_get_a_slug(client: httpx.AsyncClient) -> None:
    created = await create(client, name="研究团队")
    assert str(created["slug"]).startswith("tenant-")


async def test_list_filters_and_pages(client: httpx.AsyncClient) -> None:
    for name in ["Alpha", "Beta", "Gamma", "Delta"]:
        await create(client, name=name)
    beta = (await client.get("/api/admin/tenants?q=bet", headers=OPERATOR)).json()
    assert [t["name"] for t in beta["items"]] == ["Beta"]

    page = (await client.get("/api/admin/tenants?limit=2&offset=1", headers=OPERATOR)).json()
    assert page["total"] == 4 and page["limit"] == 2 and page["offset"] == 1
    assert [t["name"] for t in page["items"]] == ["Beta", "Gamma"]

    literal = (await client.get("/api/admin/tenants?q=%25", headers=OPERATOR)).json()
    assert literal["total"] == 0  # '%' is matched literally, not as a wildcard

    first = page["items"][0]["id"]
    await client.patch(f"/api/admin/tenants/{first}", json={"status": "disabled"}, headers=OPERATOR)
    disabled = (await client.get("/api/admin/tenants?status=disabled", headers=OPERATOR)).json()
    assert [t["id"] for t in disabled["items"]] == [first]
    bad = await client.get("/api/admin/tenants?status=sleeping", headers=OPERATOR)
    assert_problem(bad, 422, "validation_error")


async def test_unknown_tenant_is_404(client: httpx.AsyncClient) -> None:
    missing = uuid.uuid4()
    assert_problem(await client.get(f"/api/admin/tenants/{missing}", headers=OPERATOR), 404, "tenant_not_found")
    patched = await client.patch(f"/api/admin/tenants/{missing}", json={"name": "x"}, headers=OPERATOR)
    assert_problem(patched, 404, "tenant_not_found")


async def test_update_validates(client: httpx.AsyncClient) -> None:
    tenant = await create(client, name="Valid")
    for body in ({"status": "gone"}, {"name": ""}, {"slug": "cannot-change"}):
        response = await client.patch(f"/api/admin/tenants/{tenant['id']}", json=body, headers=OPERATOR)
        assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "unauthorized"),
        ({"Authorization": "Bearer wrong"}, "invalid_token"),
        ({"Authorization": "Basic b3BlcmF0b3I6c2VjcmV0"}, "unauthorized"),
        ({"Authorization": "Bearer"}, "unauthorized"),
    ],
)
async def test_operator_routes_need_the_operator_token(
    client: httpx.AsyncClient, headers: dict[str, str], code: str
) -> None:
    for method, path in [("GET", "/api/admin/tenants"), ("POST", "/api/admin/tenants")]:
        response = await client.request(method, path, headers=headers, json={"name": "x"})
        assert_problem(response, 401, code)
        assert response.headers["www-authenticate"] == "Bearer"


async def test_operator_api_is_off_without_a_token(tmp_path: Path) -> None:
    async with serve_in_process(make_settings(tmp_path, admin_token=None)) as http:
        response = await http.get("/api/admin/tenants", headers={"Authorization": "Bearer anything"})
    assert_problem(response, 403, "operator_disabled")
