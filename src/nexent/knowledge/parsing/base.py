"""Types shared by every parser: limits, blocks, the parsed document and the typed failure."""

from __future__ import annotations

from dataclasses import dataclass, field

FAILURE_CODES = ("unsupported_format", "corrupt_file", "encrypted", "empty", "too_large")


class ParseFailure(Exception):
    """A document that cannot be parsed, with a code from `FAILURE_CODES` and a message safe to show users."""

    def __init__(self, code: str, message: str) -> None:
        if code not in FAILURE_CODES:
            raise ValueError(f"unknown parse failure code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ParseFailure({self.code!r}, {self.message!r})"


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on what one parse may read or produce."""

    max_bytes: int = 50 * 1024 * 1024
    max_pages: int = 2000
    max_archive_members: int = 500
    max_archive_total_bytes: int = 200 * 1024 * 1024
    # Parts of one ZIP-based document (DOCX, XLSX, PPTX, ODF, EPUB): a PPTX has about four per slide, so
    # max_pages slides fit.
    max_document_parts: int = 10_000
    # A ZIP member past 1 MiB inflated may expand at most this many times its compressed size (Apache POI's
    # zip-bomb rule, 1:100): the audit's 61 KB DOCX inflating to 40 MiB of XML expands 680 times; the parts over
    # 10 KB of the parsing benchmark's real DOCX, XLSX and PPTX files expand at most 40.5 times.
    max_inflate_ratio: int = 100
    ocr: bool = True


@dataclass(frozen=True)
class Block:
    """One structural unit of a document (see docs/knowledge.md for the kinds)."""

    kind: str
    text: str
    level: int = 0
    page: int | None = None
    heading_path: tuple[str, ...] = ()
    source: str | None = None
    caption: str | None = None  # a table's caption ("Table 4. ..."), when the document gives one


@dataclass(frozen=True)
class ParsedDocument:
    """The blocks of one document in reading order."""

    format: str
    blocks: list[Block] = field(default_factory=list)
    title: str | None = None
    page_count: int | None = None
