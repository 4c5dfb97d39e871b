"""A document's tables, rebuilt from its table chunks (what `GET .../documents/{id}/tables` answers).

Tables reach chunks as GitHub Markdown tables (`parsing/structure.py`), after the chunk's context line and its
table's caption; a long table is cut into several chunks (by the parser, into blocks of at most 50 rows, and by the
chunker, by rows), each repeating the header row. Pieces that follow each other in the document's text (a piece
starts at most two characters, a blank line, after the previous one ends) and start with the same header are one
table again.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from nexent.knowledge.models import KnowledgeChunk
from nexent.knowledge.schemas import DocumentTable

_SEPARATOR = re.compile(r"^\|(?:\s*:?-+:?\s*\|)+$")
_CELL_BORDER = re.compile(r"(?<!\\)\|")
# Pieces of one table: the next starts after a line break (rows of one block) or a blank line (the next block).
_ADJACENT = 2


def split_row(line: str) -> list[str]:
    """The cells of one Markdown table row, `\\|` read as `|`."""
    inner = line.strip()
    if inner.startswith("|"):
        inner = inner[1:]
    if inner.endswith("|") and not inner.endswith("\\|"):
        inner = inner[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _CELL_BORDER.split(inner)]


def markdown_table(text: str) -> tuple[list[str], list[list[str]]] | None:
    """The header and rows of the first Markdown table in `text` (after any context and caption lines); None when
    there is none (a chunk edited into prose, say)."""
    lines = text.split("\n")
    for number in range(len(lines) - 1):
        if lines[number].lstrip().startswith("|") and _SEPARATOR.match(lines[number + 1].strip()):
            rows = []
            for line in lines[number + 2 :]:
                if not line.lstrip().startswith("|"):
                    break
                rows.append(split_row(line))
            return split_row(lines[number]), rows
    return None


@dataclass
class _Table:
    first: KnowledgeChunk
    header: list[str]
    end: int
    page_end: int | None
    caption: str | None
    rows: list[list[str]] = field(default_factory=list)
    chunk_ids: list[uuid.UUID] = field(default_factory=list)

    def continued_by(self, chunk: KnowledgeChunk, header: list[str]) -> bool:
        return (
            header == self.header and chunk.source == self.first.source and chunk.start_offset <= self.end + _ADJACENT
        )

    def add(self, chunk: KnowledgeChunk, rows: list[list[str]]) -> None:
        self.rows.extend(rows)
        self.chunk_ids.append(chunk.id)
        self.end = chunk.end_offset
        last = _last_page(chunk)
        if last is not None:
            self.page_end = last
        self.caption = self.caption or chunk.caption


def _last_page(chunk: KnowledgeChunk) -> int | None:
    return chunk.page_end if chunk.page_end is not None else chunk.page


def document_tables(chunks: Iterable[KnowledgeChunk]) -> list[DocumentTable]:
    """The tables held by `chunks` (a document's table chunks, in order)."""
    tables: list[_Table] = []
    for chunk in chunks:
        found = markdown_table(chunk.text)
        if found is None:
            continue
        header, rows = found
        if not tables or not tables[-1].continued_by(chunk, header):
            tables.append(_Table(chunk, header, chunk.end_offset, _last_page(chunk), chunk.caption))
        tables[-1].add(chunk, rows)
    return [
        DocumentTable(
            index=index,
            page=table.first.page,
            page_end=table.page_end,
            caption=table.caption,
            heading_path=list(table.first.heading_path),
            source=table.first.source,
            header=table.header,
            rows=table.rows,
            chunk_ids=table.chunk_ids,
        )
        for index, table in enumerate(tables)
    ]
