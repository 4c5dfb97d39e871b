"""Reading files for other domains with knowledge's parsers: chat attachments (docs/attachments.md) are checked as
knowledge uploads are (the same formats, size limit and typed errors) and parsed by the same worker processes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from nexent.core.errors import AppError
from nexent.engines.container import Engines
from nexent.knowledge.parsing import ParsedDocument, ParseFailure, ParseLimits, detect_format, parser_pool

IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "bmp", "tiff", "webp"})
MEDIA_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "webp": "image/webp",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "markdown": "text/markdown",
    "csv": "text/csv",
    "json": "application/json",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
# The status a refused file answers with, by the typed error knowledge uploads use.
_STATUS = {"too_large": 413, "unsupported_format": 415}


class FileRefused(AppError):
    """A file the parsers refuse before parsing: `code` is knowledge's typed error (`too_large`, `empty`,
    `unsupported_format`, `corrupt_file`, `encrypted`)."""

    status, code = 422, "unsupported_format"


class FileUnreadable(Exception):
    """A file that failed while parsing, with knowledge's typed error code and a message safe to show."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class FileText:
    """A parsed file as text (headings marked as in Markdown), with its format and page count."""

    format: str
    text: str
    page_count: int | None


def check_file(engines: Engines, data: bytes, file_name: str, content_type: str | None) -> str:
    """The knowledge format of a file about to be stored (`detect_format`); raises `FileRefused` when knowledge
    uploads would refuse it (over `knowledge_max_file_bytes`, empty, a format the parsers do not read)."""
    max_bytes = engines.settings.knowledge_max_file_bytes
    if len(data) > max_bytes:
        raise FileRefused(f"The file is larger than the limit of {max_bytes} bytes.", code="too_large", status=413)
    if not data:
        raise FileRefused("The file is empty.", code="empty")
    try:
        return detect_format(data, file_name, content_type)
    except ParseFailure as failure:
        raise FileRefused(failure.message, code=failure.code, status=_STATUS.get(failure.code, 422)) from None


def media_type_of(fmt: str) -> str:
    """The content type a stored file is served with: its format's, else a safe default (never the client's
    word, nor a type a browser would run, such as HTML)."""
    return MEDIA_TYPES.get(fmt, "application/octet-stream")


async def read_text(engines: Engines, data: bytes, file_name: str, content_type: str | None) -> FileText:
    """A file's text by knowledge's parsers (in their worker processes, with OCR for images and scans); raises
    `FileUnreadable` with the typed error when it cannot be read, or has no text."""
    settings = engines.settings
    limits = ParseLimits(max_bytes=settings.knowledge_max_file_bytes, ocr=True)
    pool = parser_pool(settings.knowledge_parse_memory_mb, settings.knowledge_parse_processes)
    try:
        parsed = await asyncio.to_thread(pool.parse, data, file_name, content_type, limits)
    except ParseFailure as failure:
        raise FileUnreadable(failure.code, failure.message) from None
    text = text_of(parsed)
    if not text.strip():
        raise FileUnreadable("empty", "The file has no text that could be read.")
    return FileText(format=parsed.format, text=text, page_count=parsed.page_count)


def text_of(parsed: ParsedDocument) -> str:
    parts: list[str] = []
    for block in parsed.blocks:
        if not block.text.strip():
            continue
        if block.kind == "heading":
            parts.append("#" * max(1, min(block.level or 1, 6)) + " " + block.text.strip())
        else:
            parts.append(block.text.strip())
    return "\n\n".join(parts)
