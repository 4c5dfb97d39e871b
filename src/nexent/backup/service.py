"""Backups of a whole deployment (`nexent admin backup FILE`) and their restore (`nexent admin restore FILE`).

A backup holds every table's rows (engine-neutral: a backup of the embedded shape restores into the distributed
one and back), every object of the object storage, and a manifest. The search indexes are not in it: restore
builds them anew from the chunks and memories in the database (`knowledge.jobs.rebuild_indexes`,
`memory.jobs.rebuild_index`), embedding them again with each index's model. Secrets stay as they are stored,
encrypted with the deployment's key (`NEXENT_SECRET_KEY`): the target needs the same key. See docs/backups.md."""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.exc import SQLAlchemyError

from nexent import __version__
from nexent.backup import repository as rows
from nexent.backup.archive import (
    DATABASE_PREFIX,
    FORMAT_VERSION,
    OBJECTS_PREFIX,
    ArchiveReader,
    ArchiveWriter,
    BackupError,
    Manifest,
    TableEntry,
)
from nexent.core.crypto import SecretDecryptionError
from nexent.core.db import alembic_config, is_sqlite, migrate_async, utcnow
from nexent.engines.container import Engines
from nexent.knowledge.jobs import rebuild_indexes
from nexent.memory.jobs import rebuild_index
from nexent.models import Base

logger = logging.getLogger("nexent.backup")

Progress = Callable[[str], None]
KEY_CHECK = "nexent-backup-key-check"


def _quiet(_: str) -> None:
    return None


def _shape(engines: Engines) -> dict[str, str]:
    settings = engines.settings
    return {
        "database": "sqlite" if is_sqlite(settings.resolved_database_url) else "postgresql",
        "storage": settings.storage_backend,
        "search": settings.search_backend,
    }


def _scripts(url: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(url))


def head_revision(url: str) -> str:
    head = _scripts(url).get_current_head()
    assert head is not None
    return head


def _known(url: str, revision: str) -> bool:
    try:
        return _scripts(url).get_revision(revision) is not None
    except CommandError:
        return False


@dataclass
class BackupResult:
    path: Path
    revision: str
    tables: dict[str, int]
    objects: int
    object_bytes: int

    def summary(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "revision": self.revision,
            "rows": sum(self.tables.values()),
            "tables": self.tables,
            "objects": self.objects,
            "object_bytes": self.object_bytes,
        }


async def backup(engines: Engines, path: Path, progress: Progress = _quiet) -> BackupResult:
    """Write the deployment to `path` (atomically: a failed backup leaves no file). The database must be at the
    code's head revision (run `nexent migrate` first). Take it while nothing writes (services stopped, or at least
    quiet): rows and objects are read one table, one object after another, not as one snapshot."""
    url = engines.settings.resolved_database_url
    head = head_revision(url)
    async with engines.db.connect() as conn:
        current = await rows.revision(conn)
    if current != head:
        raise BackupError(
            f"The database is at revision {current!r}, this code's is {head!r}: run `nexent migrate` first."
        )
    writer = await asyncio.to_thread(ArchiveWriter, path)
    try:
        entries: list[TableEntry] = []
        async with engines.db.connect() as conn:
            for table in Base.metadata.sorted_tables:
                columns = [(c.name, rows.column_kind(c)) for c in table.columns]
                count = 0
                with tempfile.TemporaryFile() as file:
                    async for row in rows.rows_of(conn, table, [kind for _, kind in columns]):
                        file.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
                        count += 1
                    await asyncio.to_thread(writer.add_file, f"{DATABASE_PREFIX}{table.name}.jsonl", file)
                entries.append(TableEntry(name=table.name, columns=columns, rows=count))
                progress(f"{table.name}: {count} rows")
        keys = await engines.storage.list("")
        total = 0
        for key in keys:
            data = await engines.storage.get(key)
            await asyncio.to_thread(writer.add_bytes, OBJECTS_PREFIX + key, data)
            total += len(data)
        progress(f"objects: {len(keys)} ({total} bytes)")
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            revision=head,
            created_at=utcnow().isoformat(),
            nexent_version=__version__,
            shape=_shape(engines),
            tables=entries,
            objects=len(keys),
            object_bytes=total,
            checksums=writer.checksums,
            key_check=engines.keys.box.encrypt(KEY_CHECK),
        )
        await asyncio.to_thread(writer.close, manifest)
    except BaseException:
        await asyncio.to_thread(writer.abort)
        raise
    return BackupResult(path, head, {e.name: e.rows for e in entries}, len(keys), total)


@dataclass
class RestoreResult:
    revision: str  # the backup's
    migrated_to: str
    tables: dict[str, int]
    objects: int
    chunks_indexed: int = 0
    memories_indexed: int = 0
    index_errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "migrated_to": self.migrated_to,
            "rows": sum(self.tables.values()),
            "objects": self.objects,
            "chunks_indexed": self.chunks_indexed,
            "memories_indexed": self.memories_indexed,
            "index_errors": self.index_errors,
        }


def open_backup(path: Path, url: str) -> ArchiveReader:
    """The backup at `path`, checked (format, checksums) and refused when its revision is unknown to this code."""
    reader = ArchiveReader(path)
    revision = reader.manifest.revision
    if not _known(url, revision):
        reader.close()
        raise BackupError(
            f"The backup is at database revision {revision!r}, which this version of Nexent does not know (a newer "
            "one wrote it): restore it with that version or a newer one."
        )
    return reader


async def restore(engines: Engines, path: Path, *, force: bool = False, progress: Progress = _quiet) -> RestoreResult:
    """Restore a backup into this deployment, then bring it to the code's head revision and rebuild the search
    indexes. Run it with every service stopped.

    Refuses (`BackupError`, nothing changed) a file that is not a whole, intact backup, a newer format or revision
    than this code knows, and a target that holds any row or object unless `force` (which first drops every table,
    object and search index the target has). Atomicity: the file is checked whole before anything is written; the
    rows go in as one transaction (a failure rolls them all back, and the objects written just before are deleted
    again), so a failed restore leaves an empty schema, never a half-filled database; the migrations to head run
    after that commit, each run in its own transaction (a failure leaves the restored rows at the backup's
    revision: run `nexent migrate`)."""
    url = engines.settings.resolved_database_url
    reader = await asyncio.to_thread(open_backup, path, url)
    try:
        return await _restore(engines, reader, url, force, progress)
    finally:
        await asyncio.to_thread(reader.close)


async def _restore(engines: Engines, reader: ArchiveReader, url: str, force: bool, progress: Progress) -> RestoreResult:
    manifest = reader.manifest
    try:
        readable = engines.keys.box.decrypt(manifest.key_check) == KEY_CHECK
    except SecretDecryptionError:
        readable = False
    if not readable:
        raise BackupError(
            "This deployment's encryption keys cannot read the backup's secrets: set NEXENT_ENCRYPTION_KEYS (or copy "
            "secret-keys.json into the data directory) as in the deployment that wrote it."
        )
    async with engines.db.connect() as conn:
        current = await rows.revision(conn)
        counts = await rows.count_rows(conn)
    if current is not None and not _known(url, current):
        raise BackupError(f"The target database is at revision {current!r}, unknown to this version of Nexent.")
    objects = await engines.storage.list("")
    filled = {name: n for name, n in counts.items() if n}
    if (filled or objects) and not force:
        raise BackupError(
            f"The target is not empty ({sum(filled.values())} rows in {len(filled)} tables, {len(objects)} objects): "
            "restore into an empty deployment, or pass --force to replace everything it holds."
        )
    if filled or objects or (current is not None and current != manifest.revision):
        await _wipe(engines, objects)  # an empty schema at another revision goes too: the rows need theirs
        progress("target emptied")
    await migrate_async(url, manifest.revision)
    keys = reader.object_keys()
    written: list[str] = []
    try:
        for key in keys:
            await engines.storage.put(key, await asyncio.to_thread(reader.object_bytes, key))
            written.append(key)
        progress(f"objects: {len(keys)}")
        loaded = await _load_rows(engines, reader, manifest)
    except BaseException:
        for key in written:
            try:
                await engines.storage.delete(key)
            except Exception:  # best effort: the rows are what matters, and they were rolled back
                logger.warning("could not delete a restored object after a failure", extra={"key": key})
        raise
    progress(f"rows: {sum(loaded.values())}")
    head = head_revision(url)
    if manifest.revision != head:
        await migrate_async(url, head)
        progress(f"migrated from {manifest.revision} to {head}")
    result = RestoreResult(manifest.revision, head, loaded, len(keys))
    await rebuild_search(engines, result, progress)
    return result


async def _wipe(engines: Engines, objects: list[str]) -> None:
    async with engines.db.connect() as conn:
        indexes = await rows.index_names(conn)
    for name in indexes:
        await engines.search.drop_index(name)
    for key in objects:
        await engines.storage.delete(key)
    async with engines.db.begin() as conn:
        await rows.drop_everything(conn)


async def _load_rows(engines: Engines, reader: ArchiveReader, manifest: Manifest) -> dict[str, int]:
    """Every row of the backup, in one transaction: all of them or (on any failure) none."""
    try:
        return await _insert_all(engines, reader, manifest)
    except SQLAlchemyError as exc:
        raise BackupError(
            f"The backup's rows could not be written, and none was kept: {type(exc).__name__}: {str(exc)[:300]}"
        ) from None


async def _insert_all(engines: Engines, reader: ArchiveReader, manifest: Manifest) -> dict[str, int]:
    loaded: dict[str, int] = {}
    async with engines.db.begin() as conn:
        present = set(await rows.table_names(conn))
        for entry in manifest.tables:
            if entry.name not in present:
                raise BackupError(f"The backup's table {entry.name} does not exist at its revision here.")
            table = rows.entry_table(entry)
            names = [name for name, _ in entry.columns]
            batch: list[dict[str, Any]] = []
            count = 0
            for row in reader.rows(entry.name):
                if len(row) != len(names):
                    raise BackupError(f"The backup is damaged: a row of {entry.name} has the wrong length.")
                batch.append({n: rows.decode(k, v) for (n, k), v in zip(entry.columns, row, strict=True)})
                if len(batch) >= 500:
                    await rows.insert_rows(conn, table, batch)
                    count, batch = count + len(batch), []
            await rows.insert_rows(conn, table, batch)
            count += len(batch)
            if count != entry.rows:
                raise BackupError(f"The backup is damaged: {entry.name} holds {count} rows, its manifest {entry.rows}.")
            loaded[entry.name] = count
    return loaded


async def rebuild_search(engines: Engines, result: RestoreResult, progress: Progress = _quiet) -> None:
    """Every tenant's knowledge and memory indexes built anew from the database; a tenant whose embedding model
    fails is noted in `result.index_errors` (the rest go on): `nexent admin rebuild-search` tries again."""
    async with engines.db.connect() as conn:
        tenants = await rows.tenant_ids(conn)
    for tenant_id in tenants:
        try:
            result.chunks_indexed += await rebuild_indexes(engines, tenant_id)
            result.memories_indexed += await rebuild_index(engines, tenant_id)
        except Exception as exc:
            logger.warning("search rebuild failed", extra={"tenant_id": str(tenant_id), "error": repr(exc)})
            result.index_errors.append(f"tenant {tenant_id}: {type(exc).__name__}: {str(exc)[:200]}")
    progress(f"search: {result.chunks_indexed} chunks, {result.memories_indexed} memories indexed")
