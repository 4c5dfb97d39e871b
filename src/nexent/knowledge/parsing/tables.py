"""Tables without ruling lines: found in the positions of a page's words, from a text layer or from OCR.

The page's words are grouped into lines; a table is a run of lines that share vertical gutters (columns), with at
least a few lines holding text in two or more columns. Columns come from the table's body lines only (a spanning
header would cover a gutter): a gutter is a band that at most a tenth of those lines reach into and that is free
over part of its width, so that one wide value (a bold total) does not merge two columns. Header lines above the
body are placed into those columns, a run of words that covers several columns at the column where it starts.
A line with an empty first column continues the row above (a wrapped cell). Prose, lists and multi-column page
layouts are refused by what their cells hold (full lines of words, few numbers), because a false table is worse
than none.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Word:
    """A word (or an OCR text segment) with its box; y grows downwards."""

    text: str
    x0: float
    x1: float
    top: float
    bottom: float

    @property
    def height(self) -> float:
        return max(self.bottom - self.top, 0.1)

    @property
    def middle(self) -> float:
        return (self.x0 + self.x1) / 2


@dataclass
class Line:
    words: list[Word]

    @property
    def top(self) -> float:
        return min(word.top for word in self.words)

    @property
    def bottom(self) -> float:
        return max(word.bottom for word in self.words)

    @property
    def x0(self) -> float:
        return self.words[0].x0

    @property
    def x1(self) -> float:
        return max(word.x1 for word in self.words)

    @property
    def height(self) -> float:
        return statistics.median(word.height for word in self.words)

    @property
    def text(self) -> str:
        return " ".join(word.text for word in self.words)

    def segments(self, gap: float) -> list[list[Word]]:
        """The line's words in runs separated by more than `gap`."""
        runs: list[list[Word]] = [[self.words[0]]]
        for word in self.words[1:]:
            if word.x0 - runs[-1][-1].x1 > gap:
                runs.append([word])
            else:
                runs[-1].append(word)
        return runs


@dataclass
class TextTable:
    """A table found on a page: rows of cell texts (the first row is the header) and its box (y downwards)."""

    rows: list[list[str]]
    x0: float
    top: float
    x1: float
    bottom: float


SEGMENT_GAP = 0.9  # a gap wider than this many line heights separates two cells of a row
WORD_GAP = 0.45  # words closer than this many line heights belong to one phrase (a header cell)
MIN_GUTTER = 0.8  # a gutter is at least this many line heights wide ...
GUTTER_REACH = 0.1  # ... and at most this share of the body lines reaches into it
LINE_GAP = 2.2  # lines further apart than this many line heights do not belong to one table
MIN_TABULAR_LINES = 3  # a table has at least this many lines with text in two or more columns
MAX_PHRASE_WORDS = 8  # a body line with a longer run of words is prose or a caption, not a table row
MAX_WORDS_PER_CELL = 4.0  # mean words per cell of a table with few numbers
MIN_FILLED = 0.45  # share of a table's cells (empty columns aside) that hold text: labels of a chart hold fewer
MAX_PROSE_CELLS = 0.4  # share of a column's cells that are runs of five or more words: above it, it is prose

_NUMERIC = re.compile(r"^[\s$€£¥%()+\-\u2013\u2014.,:/*<>≤≥±0-9]+$")
_LEADER = re.compile(r"^[.·…_]+$")
_MARKER = re.compile(r"^(\(?[0-9]{1,3}[.)]|\(?[a-zA-Z][.)]|[•·▪◦*\u2013-]|\(?[ivxIVX]{1,4}[.)])$")
CAPTION = re.compile(r"^(table|tab\.|figure|fig\.|exhibit|chart|表|图)\s*[\dA-Z]", re.IGNORECASE)


def lines_of(words: Sequence[Word]) -> list[Line]:
    """Words grouped into lines by vertical overlap, each line left to right, lines top to bottom."""
    lines: list[Line] = []
    for word in sorted(words, key=lambda w: ((w.top + w.bottom) / 2, w.x0)):
        middle = (word.top + word.bottom) / 2
        for line in reversed(lines[-3:]):
            similar = abs(line.height - word.height) < 0.6 * max(line.height, word.height)
            if line.top <= middle <= line.bottom and similar:
                line.words.append(word)
                break
        else:
            lines.append(Line([word]))
    for line in lines:
        line.words.sort(key=lambda w: w.x0)
    return lines


def find_tables(words: Sequence[Word]) -> list[TextTable]:
    """The tables without ruling lines among a page's words."""
    kept = [word for word in words if word.text.strip() and not _LEADER.match(word.text.strip())]
    lines = lines_of(kept)
    if not lines:
        return []
    unit = statistics.median(line.height for line in lines)
    tables: list[TextTable] = []
    for block in _blocks(lines, unit):
        table = _table(block, unit)
        if table is not None:
            tables.append(table)
            continue
        # Refused as a whole (prose columns above a table, say): each part between two non-table lines may
        # still be a table on its own.
        for part in _parts(block, unit):
            table = _table(part, unit)
            if table is not None:
                tables.append(table)
    return tables


def _parts(block: list[Line], unit: float) -> list[list[Line]]:
    """The runs of tabular lines inside a block, each shorter than the block."""
    parts: list[list[Line]] = [[]]
    for line in block:
        if _tabular(line, unit):
            parts[-1].append(line)
        elif parts[-1]:
            parts.append([])
    return [part for part in parts if MIN_TABULAR_LINES <= len(part) < len(block)]


def _tabular(line: Line, unit: float) -> bool:
    segments = line.segments(SEGMENT_GAP * unit)
    return len(segments) >= 2 and max(len(segment) for segment in segments) <= MAX_PHRASE_WORDS


def _blocks(lines: list[Line], unit: float) -> list[list[Line]]:
    """Runs of lines that may form a table: tabular lines with at most three other lines between two of them."""
    blocks: list[list[Line]] = [[]]
    others = 0
    for line in lines:
        current = blocks[-1]
        if current and line.top - current[-1].bottom > LINE_GAP * unit:
            blocks.append([])
            current, others = blocks[-1], 0
        if _tabular(line, unit):
            current.append(line)
            others = 0
        elif current:
            current.append(line)
            others += 1
            if others > 3 or CAPTION.match(line.text):  # a caption starts the next table
                del current[-others:]
                blocks.append([])
                others = 0
    out = []
    for block in blocks:
        while block and not _tabular(block[-1], unit):
            block.pop()
        if sum(1 for line in block if _tabular(line, unit)) >= MIN_TABULAR_LINES:
            out.append(block)
    return out


def _separators(lines: list[Line], unit: float) -> list[float]:
    """x positions between columns: in each band that few lines reach into, the middle of its least reached part."""
    events: list[tuple[float, int]] = []
    for line in lines:
        for word in line.words:
            events.append((word.x0, 1))
            events.append((word.x1, -1))
    events.sort()
    reach = max(int(GUTTER_REACH * len(lines)), 0)
    # coverage as steps: (x from, x to, count)
    steps: list[tuple[float, float, int]] = []
    count = 0
    for (x, delta), (next_x, _) in itertools.pairwise(events):
        count += delta
        if next_x > x:
            steps.append((x, next_x, count))
    separators: list[float] = []
    band: list[tuple[float, float, int]] = []
    for step in [*steps, (float("inf"), float("inf"), reach + 1)]:
        if step[2] <= reach:
            band.append(step)
            continue
        if band and band[-1][1] - band[0][0] >= MIN_GUTTER * unit:
            least = min(s[2] for s in band)
            free = [s for s in band if s[2] == least]
            widest = max(free, key=lambda s: s[1] - s[0])
            separators.append((widest[0] + widest[1]) / 2)
        band = []
    return separators


def _column(x: float, separators: list[float]) -> int:
    return sum(1 for s in separators if x > s)


def _cells(line: Line, separators: list[float], unit: float, header: bool) -> tuple[list[str], bool]:
    """The line's cells, and whether a phrase of it spans columns (header lines keep phrases whole)."""
    cells: list[list[str]] = [[] for _ in range(len(separators) + 1)]
    spanning = False
    if header:
        for phrase in line.segments(WORD_GAP * unit):
            first, last = _column(phrase[0].x0, separators), _column(phrase[-1].x1, separators)
            spanning = spanning or last > first
            cells[first].extend(word.text for word in phrase)
    else:
        for word in line.words:
            cells[_column(word.middle, separators)].append(word.text)
    return [" ".join(parts) for parts in cells], spanning


def _table(block: list[Line], unit: float) -> TextTable | None:
    while block and CAPTION.match(block[0].text):
        block = block[1:]
    body = [line for line in block if _tabular(line, unit)]
    if len(body) < MIN_TABULAR_LINES:
        return None
    unit = statistics.median(line.height for line in body)  # tables are often set smaller than the text
    separators = _separators(body, unit)
    if not separators:
        return None
    rows: list[list[str]] = []
    in_header = True
    for line in block:
        cells, spanning = _cells(line, separators, unit, in_header)
        if in_header and cells[0] and sum(1 for cell in cells if cell) >= 2:
            in_header = False
            cells, spanning = _cells(line, separators, unit, False)
        if rows and not cells[0] and not spanning and _continues(rows[-1], cells, in_header):
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    if not _looks_tabular(rows, separators):
        return None
    left, right = min(line.x0 for line in block), max(line.x1 for line in block)
    return TextTable(rows, left, block[0].top, right, block[-1].bottom)


def _continues(previous: list[str], cells: list[str], in_header: bool) -> bool:
    """Whether a line (its first column empty) holds the second lines of cells of the row above."""
    filled = [i for i, cell in enumerate(cells) if cell]
    if not filled or in_header:
        return False
    return len(filled) < sum(1 for cell in previous if cell) and all(previous[i] for i in filled)


def _looks_tabular(rows: list[list[str]], separators: list[float]) -> bool:
    """Whether the rows read as a table rather than as prose, a list, a form or a chart's labels."""
    filled = [cell for row in rows for cell in row if cell]
    multi = sum(1 for row in rows if sum(1 for cell in row if cell) >= 2)
    if not filled or multi < MIN_TABULAR_LINES:
        return False
    used = [column for column in range(len(rows[0])) if any(row[column] for row in rows)]
    if len(filled) < MIN_FILLED * len(rows) * len(used):
        return False  # scattered labels: a chart or a diagram
    markers = [row[0] for row in rows if row[0]]
    if markers and all(_MARKER.match(cell) for cell in markers):
        return False  # a numbered or bulleted list
    numeric = sum(1 for cell in filled if _NUMERIC.match(cell)) / len(filled)
    words = sum(len(cell.split()) for cell in filled) / len(filled)
    if numeric < 0.25 and words > MAX_WORDS_PER_CELL:
        return False
    if len(separators) == 1 and numeric < 0.3:
        return False  # two columns of words: a list, a form or a two-column page, not a table
    return not _prose_columns(rows)


def _prose_columns(rows: list[list[str]]) -> bool:
    """Whether a column reads as running text: many of its cells are runs of five or more words."""
    width = len(rows[0])
    for column in range(width):
        cells = [row[column] for row in rows if row[column]]
        if len(cells) < 4:
            continue
        long = sum(1 for cell in cells if len(cell.split()) >= 5 and not _NUMERIC.match(cell))
        if long / len(cells) > MAX_PROSE_CELLS:
            return True
    return False
