"""A per-conversation area of text files in object storage, under `workspaces/<tenant_id>/<conversation_id>/`.

Paths are relative, `/`-separated and validated here before they reach the storage (which validates keys again).
Limits: `MAX_PATH_LENGTH` characters per path, `MAX_FILE_BYTES` per file, `MAX_FILES` per conversation.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from nexent.engines.storage.base import ObjectNotFound, ObjectStorage
from nexent.tools.registry import ToolContext, ToolError

__all__ = ["MAX_FILES", "MAX_FILE_BYTES", "MAX_PATH_LENGTH", "Workspace", "WorkspaceFile", "validate_path"]

MAX_PATH_LENGTH = 256
MAX_SEGMENT_LENGTH = 128
MAX_FILE_BYTES = 1024 * 1024
MAX_FILES = 200
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\:*?\"<>|]")
_RESERVED_SUFFIX = ".nexent-tmp"  # the local storage's temporary files


def validate_path(path: str, *, allow_empty: bool = False) -> str:
    """A relative file path (or, with `allow_empty`, a listing prefix); raises `ToolError` (`invalid_path`)."""
    if path == "" and allow_empty:
        return path
    if not path or len(path) > MAX_PATH_LENGTH:
        raise ToolError(f"A path must have 1 to {MAX_PATH_LENGTH} characters.", "invalid_path")
    if path.startswith("/") or path.startswith("~"):
        raise ToolError("Paths are relative to the workspace; do not start them with '/' or '~'.", "invalid_path")
    if _FORBIDDEN.search(path):
        raise ToolError("A path may not contain control characters, '\\' or any of : * ? \" < > |.", "invalid_path")
    segments = path.removesuffix("/").split("/") if allow_empty else path.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise ToolError("A path may not have empty, '.' or '..' segments.", "invalid_path")
        if len(segment) > MAX_SEGMENT_LENGTH or segment != segment.strip():
            raise ToolError(
                f"Path segments have at most {MAX_SEGMENT_LENGTH} characters, without surrounding spaces.",
                "invalid_path",
            )
    if segments[-1].endswith(_RESERVED_SUFFIX):
        raise ToolError(f"File names may not end with {_RESERVED_SUFFIX}.", "invalid_path")
    return path


@dataclass(frozen=True)
class WorkspaceFile:
    path: str
    size: int


class Workspace:
    """The files of one conversation of one tenant."""

    def __init__(self, storage: ObjectStorage, tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
        self.storage = storage
        self.prefix = f"workspaces/{tenant_id}/{conversation_id}/"

    @classmethod
    def for_context(cls, context: ToolContext) -> Workspace:
        if context.conversation_id is None:
            raise ToolError("There is no workspace outside a conversation.", "no_conversation")
        return cls(context.storage, context.tenant_id, context.conversation_id)

    def key(self, path: str) -> str:
        return self.prefix + validate_path(path)

    async def paths(self, prefix: str = "") -> list[str]:
        """Relative paths of the files under `prefix`, sorted."""
        validate_path(prefix, allow_empty=True)
        keys = await self.storage.list(self.prefix + prefix)
        return [key[len(self.prefix) :] for key in keys]

    async def write(self, path: str, content: str) -> WorkspaceFile:
        key = self.key(path)
        data = content.encode("utf-8")
        if len(data) > MAX_FILE_BYTES:
            raise ToolError(f"A file may hold at most {MAX_FILE_BYTES} bytes (UTF-8).", "file_too_large")
        existing = await self.paths()
        if path not in existing:
            if len(existing) >= MAX_FILES:
                raise ToolError(f"The workspace already holds {MAX_FILES} files, the most it may.", "too_many_files")
            for other in existing:
                if other.startswith(path + "/"):
                    raise ToolError(f"{path} is a folder in the workspace; choose another name.", "invalid_path")
                if path.startswith(other + "/"):
                    raise ToolError(f"{other} is a file, so it cannot hold {path}.", "invalid_path")
        await self.storage.put(key, data)
        return WorkspaceFile(path=path, size=len(data))

    async def read(self, path: str) -> str:
        key = self.key(path)
        try:
            data = await self.storage.get(key)
        except ObjectNotFound:
            raise ToolError(f"There is no file {path} in the workspace.", "not_found") from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolError(f"{path} is not a UTF-8 text file.", "not_text") from None

    async def files(self, prefix: str = "") -> list[WorkspaceFile]:
        """The files under `prefix` (a plain string prefix of their paths) with their sizes."""
        files = []
        for path in await self.paths(prefix):
            try:
                info = await self.storage.stat(self.prefix + path)
            except ObjectNotFound:
                continue
            files.append(WorkspaceFile(path=path, size=info.size))
        return files
