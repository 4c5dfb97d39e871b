"""Migrations: they build exactly the schema the models describe, on SQLite and PostgreSQL, and reverse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from nexent.core.db import create_engine, create_session_factory, downgrade_async, migrate_async
from nexent.identity.models import Tenant
from nexent.models import Base


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path, pg_url: str) -> str:
    return pg_url if request.param == "postgres" else f"sqlite+aiosqlite:///{tmp_path / 'db' / 'nexent.db'}"


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
