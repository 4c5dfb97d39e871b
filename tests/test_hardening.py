"""Odd input gets a 4xx problem, never a 500, on SQLite and PostgreSQL: integers beyond what a column holds, NUL
characters, malformed resume points."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from nexent.core.db import create_engine
from nexent.core.logging import ConsoleFormatter, JsonFormatter
from nexent.jobs.service import _describe as describe_job_error
from tests.conftest import make_settings, serve_in_process
from tests.support.identity import bearer, register
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server
from tests.test_http import OPERATOR, assert_problem


@pytest.fixture(params=["sqlite", "postgresql"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path, pg_migrated_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The embedded app on SQLite, or on the session's migrated PostgreSQL database."""
    overrides: dict[str, Any] = {"builtin_models": False}
    if request.param == "postgresql":
        overrides["database_url"] = pg_migrated_url
    async with serve_in_process(make_settings(tmp_path, **overrides)) as http:
        yield http


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


def email() -> str:
    return f"hardening-{uuid.uuid4().hex[:8]}@example.com"


async def test_offsets_beyond_64_bits_are_a_422_on_every_list_route(client: httpx.AsyncClient) -> None:
    owner = await register(client, email())
    headers = bearer(owner["access_token"])
    for path, auth in [
        ("/api/admin/tenants", OPERATOR),
        ("/api/agents", headers),
        ("/api/models", headers),
        ("/api/runs", headers),
        ("/api/conversations", headers),
        ("/api/knowledge-bases", headers),
    ]:
        for offset in (2**64, 2**63, 10**30):
            response = await client.get(path, params={"offset": offset}, headers=auth)
            body = assert_problem(response, 422, "validation_error")
            assert body["errors"][0]["loc"] == ["query", "offset"]  # type: ignore[index]
        # Anything a 64-bit integer holds is a page, empty past the end.
        for offset in (2**31, 2**63 - 1):
            page = await client.get(path, params={"offset": offset}, headers=auth)
            assert page.status_code == 200, (path, offset, page.text)
            assert page.json()["items"] == [] and page.json()["offset"] == offset


async def finished_run(client: httpx.AsyncClient, llm: RunningModelServer) -> tuple[str, dict[str, str]]:
    """A completed run of a new owner's agent: its id and the owner's headers."""
    owner = await register(client, email())
    headers = bearer(owner["access_token"])
    model = await client.post(
        "/api/models",
        json={"name": "Scripted", "kind": "llm", "model": "scripted", "base_url": llm.base_url, "timeout_seconds": 10},
        headers=headers,
    )
    assert model.status_code == 201, model.text
    agent = await client.post("/api/agents", json={"name": "Resumer", "model_id": model.json()["id"]}, headers=headers)
    assert agent.status_code == 201, agent.text
    llm.server.enqueue(ChatReply.text("Done."))
    started = await client.post(f"/api/agents/{agent.json()['id']}/runs", json={"message": "Hi"}, headers=headers)
    assert started.status_code == 200 and "run.completed" in started.text, started.text
    return started.headers["x-run-id"], headers


async def test_resume_points_that_no_run_has_are_a_422(client: httpx.AsyncClient, llm: RunningModelServer) -> None:
    run_id, headers = await finished_run(client, llm)
    events = f"/api/runs/{run_id}/events"
    # Headers arrive as latin-1: "²" and "³¹" are digits to `str.isdigit`, not to `int`.
    for last_event_id in ["²", "³¹", "-1", "abc", "2147483648", "18446744073709551616", "9" * 20]:
        raw = [(k.encode(), v.encode()) for k, v in headers.items()]
        response = await client.get(events, headers=[*raw, (b"Last-Event-ID", last_event_id.encode("latin-1"))])
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"][0]["loc"] == ["header", "last-event-id"]  # type: ignore[index]
    for after in [2**31, 2**63, 2**64, 10**30]:
        response = await client.get(events, params={"after": after}, headers=headers)
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"][0]["loc"] == ["query", "after"]  # type: ignore[index]
    # Sequence numbers a run can have still resume it.
    resumed = await client.get(events, headers={**headers, "Last-Event-ID": "1"})
    assert resumed.status_code == 200 and "run.completed" in resumed.text
    assert "run.completed" in (await client.get(events, params={"after": 1}, headers=headers)).text
    assert "run.completed" in (await client.get(events, headers={**headers, "Last-Event-ID": ""})).text


def assert_nul_refused(response: httpx.Response, where: str) -> None:
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"] == [  # the input is never echoed
        {"loc": [where], "msg": "Text must not contain the NUL character (U+0000).", "type": "string_nul"}
    ]


async def test_nul_characters_are_refused_everywhere(client: httpx.AsyncClient) -> None:
    # Registration needs no account: a NUL in any of its texts is a 422 and registers nobody.
    for field in ("display_name", "tenant_name", "password"):
        body = {"email": email(), "password": "correct horse battery", field: "bad\u0000name"}
        assert_nul_refused(await client.post("/api/auth/register", json=body), "body")
    assert_nul_refused(
        await client.post("/api/auth/login", json={"email": email(), "password": "pass\u0000word"}), "body"
    )
    owner = await register(client, email())
    headers = bearer(owner["access_token"])
    assert_nul_refused(await client.patch("/api/me", json={"display_name": "a\u0000"}, headers=headers), "body")
    assert_nul_refused(await client.post("/api/agents", json={"name": "x\u0000"}, headers=headers), "body")
    nested = {"name": "Nested", "instructions": {"duty": "do\u0000it"}}
    assert_nul_refused(await client.post("/api/agents", json=nested, headers=headers), "body")
    assert_nul_refused(await client.post("/api/agents", json={"name\u0000": "x"}, headers=headers), "body")
    # Search terms and other query parameters, path parameters.
    for path in ("/api/agents", "/api/knowledge-bases", "/api/admin/tenants"):
        auth = OPERATOR if "admin" in path else headers
        assert_nul_refused(await client.get(path, params={"q": "a\u0000b"}, headers=auth), "query")
    assert_nul_refused(await client.get("/api/agents", params={"q\u0000": "x"}, headers=headers), "query")
    assert_nul_refused(await client.get("/api/runs/%00", headers=headers), "path")
    # The six characters `\u0000` are text like any other (an escaped backslash, then "u0000").
    literal = await client.post("/api/agents", json={"name": "Back\\u0000slash"}, headers=headers)
    assert literal.status_code == 201, literal.text
    assert literal.json()["name"] == "Back\\u0000slash"
    raw = b'{"name": "Two \\\\\\u0000"}'  # an escaped backslash, then a NUL escape
    response = await client.post("/api/agents", content=raw, headers={**headers, "content-type": "application/json"})
    assert_nul_refused(response, "body")
    # Nothing was stored by the refused requests.
    names = [a["name"] for a in (await client.get("/api/agents", headers=headers)).json()["items"]]
    assert names == ["Back\\u0000slash"]


SECRET = "s3cret-7f3a9c"


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_database_errors_never_carry_the_statement_parameters(
    database: str, tmp_path: Path, pg_migrated_url: str
) -> None:
    url = pg_migrated_url if database == "postgresql" else f"sqlite+aiosqlite:///{tmp_path}/errors.db"
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as caught:
                await conn.execute(text("SELECT * FROM no_such_table WHERE x = :secret"), {"secret": SECRET})
    finally:
        await engine.dispose()
    assert "no_such_table" in str(caught.value) and SECRET not in str(caught.value)


async def test_a_database_error_is_logged_without_the_values_it_quotes(
    tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve_in_process(make_settings(tmp_path, database_url=pg_url)) as client:
        # PostgreSQL quotes values in its own messages: a trigger that refuses a tenant, naming it.
        conn = await asyncpg.connect(pg_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'refused %', NEW.name USING DETAIL = 'slug ' || NEW.slug; END $$ LANGUAGE plpgsql;"
                "CREATE TRIGGER refuse BEFORE INSERT ON tenants FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        finally:
            await conn.close()
        response = await client.post("/api/admin/tenants", json={"name": SECRET, "slug": SECRET}, headers=OPERATOR)
    body = assert_problem(response, 500, "internal_error")
    assert SECRET not in response.text and body["detail"] == "An unexpected error occurred; it has been logged."
    [record] = [r for r in caplog.records if r.name == "nexent.errors"]
    for formatter in (JsonFormatter(), ConsoleFormatter("%(message)s")):
        logged = formatter.format(record)
        record.exc_text = None  # logging caches the formatted traceback on the record
        assert SECRET not in logged
        # What names the failure is kept: the error's type, its SQLSTATE, the statement without values.
        assert "RaiseError" in logged and "sqlstate=P0001" in logged and "INSERT INTO tenants" in logged


async def test_a_failed_job_records_a_database_error_without_the_values_it_quotes(pg_migrated_url: str) -> None:
    engine = create_engine(pg_migrated_url)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as caught:
                await conn.execute(text("SELECT CAST(:secret AS integer)"), {"secret": SECRET})
    finally:
        await engine.dispose()
    assert SECRET in str(caught.value)  # asyncpg quotes the value it could not send
    recorded = describe_job_error(caught.value)
    assert SECRET not in recorded
    assert "sqlstate=" in recorded and "statement: SELECT CAST($1 AS integer)" in recorded
