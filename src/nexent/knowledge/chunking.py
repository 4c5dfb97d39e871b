"""Structure-aware chunking of parsed documents: sections by heading, tables kept whole or split by rows."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from .parsing import Block, ParsedDocument

BLOCK_SEPARATOR = "\n\n"

# Break priorities inside a section, strongest first, and how far back from the target size each may cut
# (as a fraction of the target): a paragraph break is taken even well before the target, a bare word break
# only close to it.
_BLOCK, _LINE, _SENTENCE, _WORD = 4, 3, 2, 1
_REACH = {_BLOCK: 0.3, _LINE: 0.45, _SENTENCE: 0.5, _WORD: 0.7}
_SENTENCE_END = re.compile("(?<=[.!?;:\u2026])[\"'\u201d\u2019)\\]]*\\s+|(?<=[\u3002\uff01\uff1f\uff1b])")
_LINE_END = re.compile(r"\n+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ChunkSettings:
    """Target chunk size and overlap, in characters."""

    target_chars: int = 1200
    overlap_chars: int = 150

    def __post_init__(self) -> None:
        if not 100 <= self.target_chars <= 20000:
            raise ValueError("target_chars must be between 100 and 20000")
        if not 0 <= self.overlap_chars <= self.target_chars // 2:
            raise ValueError("overlap_chars must be between 0 and half of target_chars")


@dataclass(frozen=True)
class Chunk:
    """A piece of a document to embed and show, with where it came from."""

    index: int
    text: str
    kind: str
    page: int | None
    page_end: int | None
    heading_path: tuple[str, ...]
    source: str | None
    start: int
    end: int
    caption: str | None = None  # the caption of the table the chunk holds


@dataclass
class _Section:
    table: bool
    path: tuple[str, ...]
    source: str | None
    blocks: list[int] = field(default_factory=list)
    caption: str | None = None


def document_text(doc: ParsedDocument) -> str:
    """The document's canonical text: the blocks' texts joined by blank lines. Chunk offsets point into it."""
    return BLOCK_SEPARATOR.join(block.text for block in doc.blocks)


def _block_spans(blocks: list[Block]) -> list[tuple[int, int]]:
    spans = []
    position = 0
    for block in blocks:
        spans.append((position, position + len(block.text)))
        position += len(block.text) + len(BLOCK_SEPARATOR)
    return spans


def _sections(blocks: list[Block]) -> list[_Section]:
    sections: list[_Section] = []
    for index, block in enumerate(blocks):
        if block.kind == "table":
            sections.append(_Section(True, block.heading_path, block.source, [index], block.caption))
        elif block.kind == "heading":
            sections.append(_Section(False, (*block.heading_path, block.text), block.source, [index]))
        else:
            current = sections[-1] if sections else None
            if current is None or current.table or current.source != block.source or current.path != block.heading_path:
                sections.append(_Section(False, block.heading_path, block.source, [index]))
            else:
                current.blocks.append(index)
    # A section that is only a heading joins the text that follows it; before a table it is dropped, since the
    # table's chunks carry the heading path as context.
    merged: list[_Section] = []
    carry: list[int] = []
    for i, section in enumerate(sections):
        heading_only = not section.table and all(blocks[b].kind == "heading" for b in section.blocks)
        following = sections[i + 1] if i + 1 < len(sections) else None
        if heading_only and following is not None and following.source == section.source:
            if not following.table:
                carry.extend(section.blocks)
            else:
                carry.clear()
            continue
        if carry and not section.table:
            section.blocks = carry + section.blocks
        carry = []
        merged.append(section)
    return merged


class _Chunker:
    def __init__(self, doc: ParsedDocument, settings: ChunkSettings) -> None:
        self.doc = doc
        self.settings = settings
        self.text = document_text(doc)
        self.spans = _block_spans(doc.blocks)
        self.starts = [start for start, _ in self.spans]
        self.chunks: list[Chunk] = []

    def context(self, section: _Section, start: int) -> str:
        parts: list[str] = []
        if section.source and (not section.path or section.path[0] != section.source.rsplit("/", 1)[-1]):
            parts.append(section.source)
        path = list(section.path)
        for depth, heading in enumerate(path):
            if self.text.startswith(heading, start):
                path = path[:depth]  # the chunk starts with this heading and those below it
                break
        parts.extend(path)
        lines = [" > ".join(parts)] if parts else []
        if section.caption:
            lines.append(section.caption)  # a table's chunks each say which table they hold
        return "\n".join(lines) + "\n\n" if lines else ""

    def emit(self, section: _Section, start: int, end: int, body: str | None = None) -> None:
        while start < end and self.text[start].isspace():
            start += 1
        while end > start and self.text[end - 1].isspace():
            end -= 1
        if start >= end:
            return
        first = max(bisect.bisect_right(self.starts, start) - 1, 0)
        weights: dict[str, int] = {}
        pages: list[int] = []
        index = first
        while index < len(self.spans) and self.spans[index][0] < end:
            block = self.doc.blocks[index]
            overlap = min(end, self.spans[index][1]) - max(start, self.spans[index][0])
            if overlap > 0 or index == first:
                weights[block.kind] = weights.get(block.kind, 0) + max(overlap, 0)
                if block.page is not None:
                    pages.append(block.page)
            index += 1
        kind = max(sorted(weights), key=lambda k: weights[k]) if weights else "paragraph"
        text = self.context(section, start) + (body if body is not None else self.text[start:end])
        self.chunks.append(
            Chunk(
                index=len(self.chunks),
                text=text,
                kind=kind,
                page=pages[0] if pages else None,
                page_end=pages[-1] if pages else None,
                heading_path=section.path,
                source=section.source,
                start=start,
                end=end,
                caption=section.caption,
            )
        )

    def text_section(self, section: _Section) -> None:
        start = self.spans[section.blocks[0]][0]
        end = self.spans[section.blocks[-1]][1]
        target, overlap = self.settings.target_chars, self.settings.overlap_chars
        if end - start <= target:
            self.emit(section, start, end)
            return
        segment = self.text[start:end]
        breaks: dict[int, list[int]] = {
            _BLOCK: [self.spans[b][0] for b in section.blocks[1:]],
            _LINE: [start + m.end() for m in _LINE_END.finditer(segment)],
            _SENTENCE: [start + m.end() for m in _SENTENCE_END.finditer(segment)],
            _WORD: [start + m.end() for m in _SPACE.finditer(segment)],
        }
        for positions in breaks.values():
            positions.sort()
        position = start
        while position < end:
            if end - position <= target:
                self.emit(section, position, end)
                return
            limit = position + target
            cut = limit
            for priority in (_BLOCK, _LINE, _SENTENCE, _WORD):
                positions = breaks[priority]
                low = bisect.bisect_left(positions, position + int(_REACH[priority] * target))
                high = bisect.bisect_right(positions, limit)
                if high > low:
                    cut = positions[high - 1]
                    break
            self.emit(section, position, cut)
            position = self._overlap_start(breaks, cut, overlap, position)

    @staticmethod
    def _overlap_start(breaks: dict[int, list[int]], cut: int, overlap: int, previous: int) -> int:
        if overlap <= 0:
            return cut
        earliest = max(cut - overlap, previous + 1)
        for priority in (_SENTENCE, _WORD):
            positions = breaks[priority]
            index = bisect.bisect_left(positions, earliest)
            if index < len(positions) and positions[index] < cut:
                return positions[index]
        return cut  # no word boundary in reach: no overlap rather than a cut word

    def table_section(self, section: _Section) -> None:
        index = section.blocks[0]
        start, end = self.spans[index]
        target = self.settings.target_chars
        lines = self.doc.blocks[index].text.split("\n")
        if end - start <= target or len(lines) < 4:
            self.emit(section, start, end)
            return
        header = lines[:2]
        header_size = sum(len(line) + 1 for line in header)
        offsets = []
        position = start + header_size
        for line in lines[2:]:
            offsets.append((position, position + len(line)))
            position += len(line) + 1
        rows: list[int] = []
        size = header_size
        for row, (row_start, row_end) in enumerate(offsets):
            row_size = row_end - row_start + 1
            if rows and size + row_size > target:
                self._table_piece(section, header, lines, rows, offsets, start)
                rows, size = [], header_size
            rows.append(row)
            size += row_size
        if rows:
            self._table_piece(section, header, lines, rows, offsets, start)

    def _table_piece(
        self,
        section: _Section,
        header: list[str],
        lines: list[str],
        rows: list[int],
        offsets: list[tuple[int, int]],
        table_start: int,
    ) -> None:
        piece_start = table_start if rows[0] == 0 else offsets[rows[0]][0]
        body = "\n".join([*header, *(lines[2 + row] for row in rows)])
        self.emit(section, piece_start, offsets[rows[-1]][1], body)


def chunk_document(doc: ParsedDocument, settings: ChunkSettings = ChunkSettings()) -> list[Chunk]:
    """Split a parsed document into chunks that follow its structure (deterministic)."""
    chunker = _Chunker(doc, settings)
    for section in _sections(doc.blocks):
        if section.table:
            chunker.table_section(section)
        else:
            chunker.text_section(section)
    return chunker.chunks
