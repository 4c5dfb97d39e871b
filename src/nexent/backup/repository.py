"""Every table's rows, read and written without any domain's model: a backup is engine-neutral (rows from SQLite
go into PostgreSQL and back), and a backup of an older revision is written into a schema at that revision.

The only queries of the backup package; they cross tenants on purpose (an operator's whole-deployment copy)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Float, Integer, MetaData, String, Table, Uuid, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import DateTime, TypeEngine

from nexent.backup.archive import ColumnKind, TableEntry
from nexent.core.db import UTCDateTime

ALEMBIC_TABLE = "alembic_version"
_BATCH = 500


def column_kind(column: Column[Any]) -> ColumnKind:
    """How a column of the models is written in a backup."""
    kind = column.type
    if isinstance(kind, Uuid):
        return "uuid"
    if isinstance(kind, UTCDateTime):
        return "datetime"
    if isinstance(kind, DateTime):
        return "naive_datetime"
    if isinstance(kind, JSON):
        return "json"
    if isinstance(kind, Boolean):
        return "bool"
    if isinstance(kind, Float):  # Double too
        return "float"
    if isinstance(kind, Integer):  # BigInteger too
        return "int"
    if isinstance(kind, String):  # Text too
        return "str"
    raise TypeError(f"column {column} has a type a backup cannot write: {kind!r}")


def _sql_type(kind: ColumnKind) -> TypeEngine[Any]:
    types: dict[ColumnKind, TypeEngine[Any]] = {
        "uuid": Uuid(),
        "datetime": UTCDateTime(),
        "naive_datetime": DateTime(),
        "json": JSON(none_as_null=True),
        "bool": Boolean(),
        "float": Float(),
        "int": Integer(),
        "str": String(),
    }
    return types[kind]


def encode(kind: ColumnKind, value: Any) -> Any:
    if value is None:
        return None
    if kind == "uuid":
        return value.hex if isinstance(value, uuid.UUID) else uuid.UUID(str(value)).hex
    if kind in ("datetime", "naive_datetime"):
        return value.isoformat() if isinstance(value, datetime) else str(value)
    return value


def decode(kind: ColumnKind, value: Any) -> Any:
    if value is None:
        return None
    if kind == "uuid":
        return uuid.UUID(str(value))
    if kind in ("datetime", "naive_datetime"):
        return datetime.fromisoformat(str(value))
    return value


def entry_table(entry: TableEntry) -> Table:
    """A table of the manifest, with the types its values were written with (not the current models')."""
    return Table(entry.name, MetaData(), *(Column(name, _sql_type(kind)) for name, kind in entry.columns))


async def rows_of(conn: AsyncConnection, table: Table, kinds: Sequence[ColumnKind]) -> AsyncIterator[list[Any]]:
    """The table's rows in primary key order, encoded."""
    query = select(*table.columns).order_by(*table.primary_key.columns)
    result = await conn.stream(query)
    async for partition in result.partitions(_BATCH):
        for row in partition:
            yield [encode(kind, value) for kind, value in zip(kinds, row, strict=True)]


async def insert_rows(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(table.insert(), list(rows))


async def table_names(conn: AsyncConnection) -> list[str]:
    return await conn.run_sync(lambda sync: inspect(sync).get_table_names())


async def revision(conn: AsyncConnection) -> str | None:
    """The database's Alembic revision; None when it has none (empty, or never migrated)."""
    if ALEMBIC_TABLE not in await table_names(conn):
        return None
    version = Table(ALEMBIC_TABLE, MetaData(), Column("version_num", String(32)))
    return await conn.scalar(select(version.c.version_num))


async def count_rows(conn: AsyncConnection) -> dict[str, int]:
    """Rows of every table the database has, but Alembic's own."""
    counts: dict[str, int] = {}
    for name in await table_names(conn):
        if name != ALEMBIC_TABLE:
            counts[name] = int(await conn.scalar(select(func.count()).select_from(Table(name, MetaData()))) or 0)
    return counts


async def index_names(conn: AsyncConnection) -> list[str]:
    """The search indexes the database names (knowledge bases' and memory's, current and being built), so that a
    forced restore drops them with the data they index."""
    names: list[str] = []
    present = set(await table_names(conn))
    for table, columns in (
        ("knowledge_bases", ("index_name", "pending_index_name")),
        ("memory_indexes", ("index_name", "pending_index_name")),
    ):
        if table not in present:
            continue
        reflected = Table(table, MetaData(), *(Column(c, String()) for c in columns))
        for row in await conn.execute(select(*reflected.columns)):
            names += [value for value in row if value]
    return names


async def drop_everything(conn: AsyncConnection) -> None:
    """Drops every table (a forced restore's target), in an order its foreign keys allow."""
    metadata = MetaData()
    await conn.run_sync(lambda sync: metadata.reflect(sync))
    await conn.run_sync(lambda sync: metadata.drop_all(sync))


async def tenant_ids(conn: AsyncConnection) -> list[uuid.UUID]:
    tenants = Table("tenants", MetaData(), Column("id", Uuid()))
    return list(await conn.scalars(select(tenants.c.id).order_by(tenants.c.id)))
