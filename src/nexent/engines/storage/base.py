"""Object storage protocol: keys are `/`-separated paths; values are bytes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from nexent.core.errors import BadRequest, NotFound

_MAX_KEY_LENGTH = 1024
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
    async def stat(self, key: str) -> ObjectInfo: ...
    async def exists(self, key: str) -> bool: ...
    async def delete(self, key: str) -> None: ...
    async def list(self, prefix: str = "") -> list[str]: ...
    async def health(self) -> None: ...


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
