"""Object storage protocol: keys are `/`-separated paths; values are bytes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from nexent.core.errors import BadRequest, NotFound

_MAX_KEY_LENGTH = 1024
STREAM_CHUNK_BYTES = 256 * 1024
_FORBIDDEN_KEY_CHARS = re.compile(r"[\x00-\x1f\\]")


class ObjectNotFound(NotFound):
    code = "object_not_found"


class InvalidObjectKey(BadRequest):
    code = "invalid_object_key"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class ObjectStorage(Protocol):
    """Where uploads and other blobs live. Writes are atomic: a reader sees the old object, the new one or
    nothing, never a partial one."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def put(self, key: str, data: bytes) -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def stream(self, key: str, chunk_size: int = STREAM_CHUNK_BYTES) -> AsyncIterator[bytes]:
        """The object's bytes in pieces of at most `chunk_size`, without holding it whole in memory. Awaiting it
        opens the object (`ObjectNotFound` then, before any byte); iterating reads it; the end closes it."""
        ...

    async def stat(self, key: str) -> ObjectInfo: ...
    async def exists(self, key: str) -> bool: ...
    async def delete(self, key: str) -> None: ...
    async def list(self, prefix: str = "") -> list[str]: ...
    async def health(self) -> None: ...


async def read_in_pieces(
    read: Callable[[int], bytes], close: Callable[[], object], chunk_size: int
) -> AsyncIterator[bytes]:
    """Pieces from a blocking reader (`read(n)`, empty at the end), each read in a thread; closes it at the end,
    or when the consumer stops early."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    try:
        while piece := await asyncio.to_thread(read, chunk_size):
            yield piece
    finally:
        await asyncio.to_thread(close)


def validate_key(key: str) -> str:
    """Refuse keys that could escape a directory or confuse an S3 server."""
    if not key or len(key) > _MAX_KEY_LENGTH or _FORBIDDEN_KEY_CHARS.search(key):
        raise InvalidObjectKey(f"Invalid object key {key[:80]!r}.")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidObjectKey(f"Invalid object key {key[:80]!r}: empty, '.' or '..' segment.")
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a key, optionally ending with `/`."""
    if prefix == "":
        return prefix
    validate_key(prefix.removesuffix("/"))
    return prefix
