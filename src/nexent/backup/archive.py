"""The backup file: a tar archive (gzip) of the database's rows, the object storage's objects and a manifest.

    database/<table>.jsonl   one JSON array per row, the values in the manifest's column order
    objects/<key>            each object's bytes, under its storage key
    manifest.json            last: format and version, Alembic revision, time, shape, counts and a SHA-256 per member

Everything here is blocking file work; the service runs it in a thread. Nothing is ever extracted to the file
system: a reader hands out each member's bytes, so a member's name cannot escape anywhere."""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

FORMAT = "nexent-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE_PREFIX = "database/"
OBJECTS_PREFIX = "objects/"
_PIECE = 1024 * 1024

# How a column's values are written: uuids as 32 hex digits, timestamps in ISO 8601, the rest as JSON.
ColumnKind = Literal["uuid", "datetime", "naive_datetime", "json", "str", "int", "float", "bool"]


class BackupError(Exception):
    """A backup file that cannot be restored here, or a target that refuses it; the message says why."""


class TableEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    columns: list[tuple[str, ColumnKind]]
    rows: int = Field(ge=0)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["nexent-backup"] = "nexent-backup"
    format_version: int = Field(ge=1)
    revision: str
    created_at: str
    nexent_version: str
    shape: dict[str, str]
    tables: list[TableEntry]  # in the order rows may be inserted (referenced tables first)
    objects: int = Field(ge=0)
    object_bytes: int = Field(ge=0)
    checksums: dict[str, str]  # member name -> SHA-256 (hex) of its bytes
    # A known text encrypted with the deployment's secret box: restore checks that its keys read the secrets.
    key_check: str


def _sha256_file(file: IO[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while piece := file.read(_PIECE):
        digest.update(piece)
        size += len(piece)
    return digest.hexdigest(), size


class ArchiveWriter:
    """Writes a backup to `<path>.partial` and renames it into place on `close()`: a backup that failed half way
    never looks like one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._partial = path.with_name(path.name + ".partial")
        self._tar = tarfile.open(self._partial, "w:gz")  # noqa: SIM115 (closed by close/abort)
        self.checksums: dict[str, str] = {}

    def add_file(self, name: str, file: IO[bytes]) -> int:
        """Adds a member from a seekable file (read from its start); returns its size."""
        file.seek(0)
        digest, size = _sha256_file(file)
        file.seek(0)
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, int(time.time()), 0o600
        self._tar.addfile(info, file)
        self.checksums[name] = digest
        return size

    def add_bytes(self, name: str, data: bytes) -> None:
        with tempfile.TemporaryFile() as file:
            file.write(data)
            self.add_file(name, file)

    def close(self, manifest: Manifest) -> None:
        data = manifest.model_dump_json(indent=1).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
        with tempfile.TemporaryFile() as file:
            file.write(data)
            file.seek(0)
            self._tar.addfile(info, file)
        self._tar.close()
        self._partial.replace(self.path)

    def abort(self) -> None:
        self._tar.close()
        self._partial.unlink(missing_ok=True)


@dataclass
class ArchiveReader:
    """A backup file, checked whole on open: a readable archive with a manifest this code understands and every
    member present with its checksum. Anything else raises `BackupError` before anything is restored."""

    path: Path
    manifest: Manifest = field(init=False)
    _tar: tarfile.TarFile = field(init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            self._tar = tarfile.open(self.path, "r:*")  # noqa: SIM115 (closed by close)
        except FileNotFoundError:
            raise BackupError(f"{self.path}: no such file.") from None
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BackupError(f"{self.path} is not a Nexent backup (not a readable archive: {exc}).") from None
        try:
            self._check()
        except BaseException:
            self._tar.close()
            raise

    def _check(self) -> None:
        try:
            members = {m.name: m for m in self._tar.getmembers() if m.isfile()}
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BackupError(f"{self.path} is damaged: {exc}.") from None
        if MANIFEST not in members:
            raise BackupError(f"{self.path} is not a Nexent backup (it has no {MANIFEST}).")
        raw = self._read(members[MANIFEST])
        try:
            document: Any = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BackupError(f"{self.path} is not a Nexent backup (its manifest is not JSON).") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise BackupError(f"{self.path} is not a Nexent backup (its manifest names another format).")
        version = document.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise BackupError(
                f"{self.path} has backup format {version!r}; this version of Nexent reads format {FORMAT_VERSION} "
                "and older. Restore it with the version of Nexent that wrote it, or a newer one."
            )
        try:
            self.manifest = Manifest.model_validate(document)
        except ValidationError as exc:
            raise BackupError(f"{self.path} has an invalid manifest: {exc.errors()[0]['msg']}.") from None
        expected = set(self.manifest.checksums)
        present = set(members) - {MANIFEST}
        if expected != present:
            missing, extra = sorted(expected - present), sorted(present - expected)
            raise BackupError(f"{self.path} is damaged: members missing {missing[:5]}, unexpected {extra[:5]}.")
        for name, digest in self.manifest.checksums.items():
            file = self._tar.extractfile(members[name])
            assert file is not None
            try:
                actual, _ = _sha256_file(file)
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise BackupError(f"{self.path} is damaged: {name}: {exc}.") from None
            if actual != digest:
                raise BackupError(f"{self.path} is damaged: the checksum of {name} does not match.")
        tables = {f"{DATABASE_PREFIX}{t.name}.jsonl" for t in self.manifest.tables}
        if not tables <= expected:
            raise BackupError(f"{self.path} is damaged: a table listed in its manifest has no rows file.")
        self._members = members

    def _read(self, member: tarfile.TarInfo) -> bytes:
        file = self._tar.extractfile(member)
        assert file is not None
        return file.read()

    def rows(self, table: str) -> Iterator[list[Any]]:
        """The rows of `table`, as written."""
        file = self._tar.extractfile(self._members[f"{DATABASE_PREFIX}{table}.jsonl"])
        assert file is not None
        for line in file:
            if line.strip():
                row = json.loads(line)
                if not isinstance(row, list):
                    raise BackupError(f"{self.path} is damaged: a row of {table} is not a list.")
                yield row

    def object_keys(self) -> list[str]:
        return sorted(name.removeprefix(OBJECTS_PREFIX) for name in self._members if name.startswith(OBJECTS_PREFIX))

    def object_bytes(self, key: str) -> bytes:
        return self._read(self._members[OBJECTS_PREFIX + key])

    def close(self) -> None:
        self._tar.close()
