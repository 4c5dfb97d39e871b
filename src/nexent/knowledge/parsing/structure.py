"""Building blocks: text clean-up, Markdown tables and a builder that tracks the heading path."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .base import Block

BLOCK_KINDS = ("heading", "paragraph", "list", "table", "code", "image_text")
TABLE_ROWS_PER_BLOCK = 50

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_ANY_SPACE = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """Normalise spaces and line ends, drop control characters, keep line and paragraph breaks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = _CONTROL.sub("", text.replace("\x0b", "\n").replace("\x0c", "\n"))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def clean_code(text: str) -> str:
    """Like `clean_text` but keeps indentation (code, pretty JSON)."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n").expandtabs(4))
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).rstrip()


def clean_line(text: str) -> str:
    """Collapse all whitespace to single spaces (headings, table cells)."""
    return _ANY_SPACE.sub(" ", _CONTROL.sub("", text)).strip()


def _cell(text: str) -> str:
    return clean_line(text).replace("|", "\\|")


def normalise_rows(rows: Iterable[Sequence[object]]) -> list[list[str]]:
    """Cells as one-line strings; drop empty rows and columns; pad rows to one width."""
    table = [[clean_line("" if value is None else str(value)) for value in row] for row in rows]
    table = [row for row in table if any(row)]
    if not table:
        return []
    width = max(len(row) for row in table)
    for row in table:
        row.extend([""] * (width - len(row)))
    keep = [col for col in range(width) if any(row[col] for row in table)]
    return [[row[col] for col in keep] for row in table]


def markdown_table(rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table whose first row is the header."""
    width = max(len(row) for row in rows)
    lines = []
    for i, row in enumerate(rows):
        cells = [_cell(value) for value in row] + [""] * (width - len(row))
        lines.append("| " + " | ".join(cells) + " |")
        if i == 0:
            lines.append("|" + " --- |" * width)
    return "\n".join(lines)


def table_pieces(rows: Iterable[Sequence[object]], max_rows: int = TABLE_ROWS_PER_BLOCK) -> list[str]:
    """Markdown tables of at most `max_rows` body rows each, the header row repeated in every piece."""
    table = normalise_rows(rows)
    if not table:
        return []
    header, body = table[0], table[1:]
    if not body:
        return [markdown_table([header])]
    return [markdown_table([header, *body[i : i + max_rows]]) for i in range(0, len(body), max_rows)]


class Builder:
    """Collects blocks in reading order and stamps each with the current heading path and source."""

    def __init__(self, source: str | None = None) -> None:
        self.blocks: list[Block] = []
        self.source = source
        self._stack: list[tuple[int, str]] = []

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(text for _, text in self._stack)

    def heading(self, text: str, level: int, page: int | None = None) -> None:
        text = clean_line(text)
        if not text:
            return
        level = min(max(level, 1), 6)
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self.blocks.append(Block("heading", text, level, page, self.path, self.source))
        self._stack.append((level, text))

    def reset_headings(self) -> None:
        self._stack.clear()

    def add(self, kind: str, text: str, page: int | None = None, *, raw: bool = False) -> None:
        text = clean_code(text) if raw else clean_text(text)
        if text:
            self.blocks.append(Block(kind, text, 0, page, self.path, self.source))

    def list_items(self, items: Sequence[tuple[int, str, bool]], page: int | None = None) -> None:
        """Items as (depth, text, ordered): one list block, nested items indented by two spaces."""
        lines: list[str] = []
        counters: dict[int, int] = {}
        for depth, text, ordered in items:
            text = clean_line(text)
            if not text:
                continue
            for deeper in [d for d in counters if d > depth]:
                del counters[deeper]
            counters[depth] = counters.get(depth, 0) + 1
            marker = f"{counters[depth]}." if ordered else "-"
            lines.append("  " * depth + f"{marker} {text}")
        if lines:
            self.blocks.append(Block("list", "\n".join(lines), 0, page, self.path, self.source))

    def table(self, rows: Iterable[Sequence[object]], page: int | None = None, caption: str | None = None) -> None:
        caption = clean_line(caption or "") or None
        for piece in table_pieces(rows):
            self.blocks.append(Block("table", piece, 0, page, self.path, self.source, caption))
