"""Migrations: they build exactly the schema the models describe, on SQLite and PostgreSQL, and reverse."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from nexent.core.db import create_engine, create_session_factory, downgrade_async, migrate_async
from nexent.identity.models import Tenant
from nexent.models import Base


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path, pg_empty_url: str) -> str:
    return pg_empty_url if request.param == "postgres" else f"sqlite+aiosqlite:///{tmp_path / 'db' / 'nexent.db'}"


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_migrations_match_the_models(database_url: str) -> None:
    await migrate_async(database_url)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_migrations_are_idempotent_and_reversible(database_url: str) -> None:
    await migrate_async(database_url)
    await migrate_async(database_url)  # a second run is a no-op
    await downgrade_async(database_url, "base")
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) <= {"alembic_version"}
    finally:
        await engine.dispose()


async def test_timestamps_come_back_as_aware_utc(database_url: str) -> None:
    await migrate_async(database_url)
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=8)))
    try:
        async with sessions() as session, session.begin():
            tenant = Tenant(name="T", slug="tz-test", created_at=moment, updated_at=moment)
            session.add(tenant)
        async with sessions() as session:
            stored = await session.get(Tenant, tenant.id)
            assert stored is not None
            assert stored.created_at == moment and stored.created_at.tzinfo == UTC
    finally:
        await engine.dispose()


async def test_naive_timestamps_are_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'naive.db'}"
    await migrate_async(url)
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    try:
        with pytest.raises(Exception, match="naive datetime"):
            async with sessions() as session, session.begin():
                session.add(Tenant(name="T", slug="naive", created_at=datetime(2026, 1, 1)))
    finally:
        await engine.dispose()


async def test_search_upgrade_keeps_old_indexes_on_their_analysis(database_url: str) -> None:
    """0010: knowledge bases made before it keep analysis version 1 (their indexes hold version-1 terms), and the
    built-in English embedding model declares its language."""
    await migrate_async(database_url, "0009")
    engine = create_engine(database_url)
    tenant, model, kb = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        async with engine.begin() as conn:
            ids = {"t": _db_id(tenant, database_url), "m": _db_id(model, database_url), "k": _db_id(kb, database_url)}
            await conn.execute(
                text(
                    "INSERT INTO tenants (id, name, slug, status, private_endpoints, created_at, updated_at) "
                    "VALUES (:t, 'T', 'upgrade', 'active', '[]', :now, :now)"
                ),
                {**ids, "now": now},
            )
            await conn.execute(
                text(
                    "INSERT INTO model_configs (id, tenant_id, name, kind, provider, model, timeout_seconds, "
                    "is_default, check_status, created_at, updated_at) VALUES (:m, :t, 'Built-in', 'embedding', "
                    "'local', 'all-MiniLM-L6-v2', 60, true, 'unknown', :now, :now)"
                ),
                {**ids, "now": now},
            )
            await conn.execute(
                text(
                    "INSERT INTO knowledge_bases (id, tenant_id, name, description, embedding_model_id, "
                    "embedding_dimension, index_name, chunk_target_chars, chunk_overlap_chars, created_at, "
                    "updated_at) VALUES (:k, :t, 'Old', '', :m, 384, 'kb_old', 1200, 150, :now, :now)"
                ),
                {**ids, "now": now},
            )
        await migrate_async(database_url)
        async with engine.connect() as conn:
            row = (await conn.execute(text("SELECT analysis_version, vector_weight FROM knowledge_bases"))).one()
            assert tuple(row) == (1, None)
            languages = (await conn.execute(text("SELECT languages FROM model_configs"))).scalar_one()
            assert (json.loads(languages) if isinstance(languages, str) else languages) == ["en"]
    finally:
        await engine.dispose()


def _db_id(value: uuid.UUID, url: str) -> str:
    """A uuid as the column stores it: native on PostgreSQL, 32 hex characters on SQLite."""
    return str(value) if url.startswith("postgresql") else value.hex


async def test_a_failed_transaction_keeps_nothing_of_its_savepoints(database_url: str) -> None:
    """A savepoint released inside a transaction that then fails keeps nothing (on SQLite, Python's driver let a
    SAVEPOINT that came first open a transaction of its own, and its RELEASE committed)."""
    await migrate_async(database_url)
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    slug = f"savepoint-{uuid.uuid4().hex[:8]}"
    try:

        async def fail_after_a_savepoint() -> None:
            async with sessions() as session, session.begin():
                async with session.begin_nested():
                    session.add(Tenant(name="Kept?", slug=slug))
                    await session.flush()
                raise RuntimeError("a later step fails")

        with pytest.raises(RuntimeError):
            await fail_after_a_savepoint()
        async with sessions() as session:
            found = await session.scalar(text("SELECT count(*) FROM tenants WHERE slug = :slug"), {"slug": slug})
        assert found == 0
    finally:
        await engine.dispose()
