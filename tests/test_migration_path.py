"""Upgrades keep every row: the migrations run one revision at a time from the first to the head, on SQLite and
PostgreSQL, over a database that holds rows in every table from the revision that made it on (tenants, users,
models, knowledge bases, agents, conversations, ... each table gets a row at each step, its foreign keys pointing at
rows of earlier steps, so cascades would show). After each step every table still has the rows it had, and SQLite's
`PRAGMA foreign_key_check` is clean. The guard against what CI once found: 0022 recreated `tenants` on SQLite and the
drop cascaded to every model and knowledge base."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from nexent.core.db import UTCDateTime, alembic_config, create_engine, is_sqlite, migrate_async
from nexent.models import Base

ALEMBIC = "alembic_version"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, pg_empty_url: str) -> str:
    return pg_empty_url if request.param == "postgres" else f"sqlite+aiosqlite:///{tmp_path / 'db' / 'nexent.db'}"


def revisions(url: str) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config(url))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


class Filler:
    """Inserts one plausible row into each table of the schema a revision left, with foreign keys to existing rows."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.filled: set[str] = set()

    def _type(self, table: str, name: str, reflected: TypeEngine[Any]) -> TypeEngine[Any]:
        """The current model's type where the column still exists (it knows uuids and aware timestamps), else the
        reflected one."""
        model = Base.metadata.tables.get(table)
        if model is not None and name in model.columns:
            current: TypeEngine[Any] = model.columns[name].type
            return current
        return reflected

    def _default(self, table: str, name: str) -> Any:
        model = Base.metadata.tables.get(table)
        if model is None or name not in model.columns or model.columns[name].default is None:
            return None
        default = model.columns[name].default
        arg = getattr(default, "arg", None)
        return arg if isinstance(arg, str | int | float | bool) and not isinstance(arg, bool) else None

    def value(self, table: str, name: str, kind: TypeEngine[Any]) -> Any:
        if isinstance(kind, Uuid):
            return uuid.UUID(int=self.random.getrandbits(128))
        if isinstance(kind, UTCDateTime):
            return datetime.now(UTC)
        if isinstance(kind, DateTime):
            return datetime.now(UTC).replace(tzinfo=None)
        if isinstance(kind, JSON):
            model = Base.metadata.tables.get(table)
            default = model.columns[name].default if model is not None and name in model.columns else None
            factory = getattr(default, "arg", None)
            return {} if factory is None or "dict" in repr(factory) else []
        if isinstance(kind, Boolean):
            return False
        if isinstance(kind, Integer):
            return self.random.randint(1, 1_000_000)
        if isinstance(kind, Float):
            return 0.5
        if isinstance(kind, String):
            default = self._default(table, name)
            if isinstance(default, str):
                return default
            length = kind.length or 24
            return f"v{self.random.getrandbits(96):024x}"[: max(1, min(length, 25))]
        raise TypeError(f"{table}.{name}: no value for {kind!r}")

    async def fill(self, conn: AsyncConnection) -> None:
        reflected = MetaData()
        await conn.run_sync(lambda sync: reflected.reflect(sync))
        for source in reflected.sorted_tables:
            if source.name == ALEMBIC:
                continue
            columns = [Column(c.name, self._type(source.name, c.name, c.type)) for c in source.columns]
            table = Table(source.name, MetaData(), *columns)
            targets: dict[tuple[str, ...], tuple[list[str], list[Any]]] = {}
            for fk in source.foreign_key_constraints:
                referred = fk.referred_table
                keys = [element.column.name for element in fk.elements]
                typed = Table(
                    referred.name,
                    MetaData(),
                    *(Column(k, self._type(referred.name, k, referred.columns[k].type)) for k in keys),
                )
                options = list((await conn.execute(select(*typed.columns))).all())
                targets[tuple(e.parent.name for e in fk.elements)] = (keys, options)
            for _attempt in range(30):
                row: dict[str, Any] = {c.name: self.value(source.name, c.name, c.type) for c in table.columns}
                missing = False
                for parents, (_keys, options) in targets.items():
                    if not options:
                        missing = True
                        break
                    choice = self.random.choice(options)
                    row.update(dict(zip(parents, choice, strict=True)))
                if missing:
                    break
                try:
                    async with conn.begin_nested():
                        await conn.execute(table.insert(), [row])
                except IntegrityError:
                    continue  # a unique key drawn twice: draw again
                self.filled.add(source.name)
                break


async def counts(conn: AsyncConnection) -> dict[str, int]:
    names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    result = {}
    for name in names:
        if name != ALEMBIC:
            result[name] = int(await conn.scalar(select(func.count()).select_from(Table(name, MetaData()))) or 0)
    return result


async def test_every_step_keeps_every_row(database_url: str) -> None:
    filler = Filler(seed=22)
    engine = create_engine(database_url)
    kept: dict[str, int] = {}
    try:
        for revision in revisions(database_url):
            await migrate_async(database_url, revision)
            async with engine.connect() as conn:
                now = await counts(conn)
                lost = {name: (n, now.get(name)) for name, n in kept.items() if now.get(name, 0) < n}
                assert not lost, f"migrating to {revision} lost rows (before, after): {lost}"
                if is_sqlite(database_url):
                    assert (await conn.execute(text("PRAGMA foreign_key_check"))).all() == []
            async with engine.begin() as conn:
                await filler.fill(conn)
            async with engine.connect() as conn:
                kept = await counts(conn)
    finally:
        await engine.dispose()
    # Every table of the head schema held rows from some step on, so every table was guarded.
    assert filler.filled >= {t.name for t in Base.metadata.sorted_tables}, set(Base.metadata.tables) - filler.filled
