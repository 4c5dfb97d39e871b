"""Object storage in a local directory (embedded default)."""

from __future__ import annotations

import asyncio
import builtins
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from nexent.engines.storage.base import (
    STREAM_CHUNK_BYTES,
    ObjectInfo,
    ObjectNotFound,
    read_in_pieces,
    validate_key,
    validate_prefix,
)

_TMP_SUFFIX = ".nexent-tmp"


class LocalStorage:
    """Each object is a file under `root`; writes go to a temporary file that is renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        return None

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(key), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=_TMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"No object {key!r}.") from None

    async def stream(self, key: str, chunk_size: int = STREAM_CHUNK_BYTES) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"No object {key!r}.") from None
        return read_in_pieces(handle.read, handle.close, chunk_size)

    async def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            result = await asyncio.to_thread(path.stat)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(f"No object {key!r}.") from None
        if not path.is_file():
            raise ObjectNotFound(f"No object {key!r}.")
        return ObjectInfo(key=key, size=result.st_size)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(self._unlink, path)

    def _unlink(self, path: Path) -> None:
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        # Remove directories left empty, up to the root, so listings stay clean.
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()  # only when empty
            except FileNotFoundError:
                pass  # a delete running beside this one removed it first (seen with 16 deletes at once)
            except OSError:
                return  # not empty: another object lives there
            parent = parent.parent

    async def list(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        return await asyncio.to_thread(self._list, prefix)

    def _list(self, prefix: str) -> builtins.list[str]:
        if not self.root.is_dir():
            return []
        keys = []
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.endswith(_TMP_SUFFIX):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    async def health(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise OSError(f"storage directory {self.root} is not writable")
