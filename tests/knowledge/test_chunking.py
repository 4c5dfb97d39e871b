"""Structure-aware chunking: boundaries, sizes, overlap, tables, offsets and sources."""

from __future__ import annotations

import itertools
import re

import pytest

from nexent.knowledge.chunking import Chunk, ChunkSettings, chunk_document, document_text
from nexent.knowledge.parsing import Block, ParsedDocument, parse_document

SENTENCES = [
    f"Sentence {i} tells how the harbour crane number {i} lifted containers onto the waiting ship." for i in range(60)
]


def doc_of(*blocks: Block) -> ParsedDocument:
    return ParsedDocument(format="txt", blocks=list(blocks))


def body(chunk: Chunk, doc: ParsedDocument) -> str:
    return document_text(doc)[chunk.start : chunk.end]


def test_settings_are_validated() -> None:
    ChunkSettings(100, 50)
    for target, overlap in ((99, 0), (20001, 0), (1000, 501), (1000, -1)):
        with pytest.raises(ValueError, match="must be between"):
            ChunkSettings(target, overlap)


def test_document_text_joins_blocks_with_blank_lines() -> None:
    doc = doc_of(Block("heading", "Title", 1), Block("paragraph", "Body text."))
    assert document_text(doc) == "Title\n\nBody text."


def test_small_document_is_one_chunk_with_offsets() -> None:
    doc = doc_of(Block("heading", "Title", 1), Block("paragraph", "Body text.", heading_path=("Title",)))
    [chunk] = chunk_document(doc)
    assert chunk.text == "Title\n\nBody text."  # starts with its own heading: no context prefix
    assert (chunk.start, chunk.end) == (0, len(document_text(doc)))
    assert chunk.heading_path == ("Title",) and chunk.kind == "paragraph" and chunk.index == 0


def test_long_text_splits_at_sentences_within_target_with_overlap() -> None:
    settings = ChunkSettings(target_chars=500, overlap_chars=100)
    doc = doc_of(Block("paragraph", " ".join(SENTENCES)))
    chunks = chunk_document(doc, settings)
    text = document_text(doc)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.end - chunk.start <= settings.target_chars
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.text.startswith("Sentence")  # starts at a sentence (the overlap too)
        assert chunk.text.endswith(".")  # ends at one
    for previous, following in itertools.pairwise(chunks):
        overlap = previous.end - following.start
        assert 0 < overlap <= settings.overlap_chars
    assert chunks[-1].end == len(text)
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_never_cuts_inside_a_word() -> None:
    words = " ".join(f"word{i:04d}" for i in range(800))  # no sentence ends at all
    doc = doc_of(Block("paragraph", words))
    text = document_text(doc)
    for chunk in chunk_document(doc, ChunkSettings(300, 60)):
        assert re.fullmatch(r"word\d{4}( word\d{4})*", chunk.text), chunk.text[:40]
        assert chunk.start == 0 or text[chunk.start - 1] == " "
        assert chunk.end == len(text) or text[chunk.end] == " "


def test_text_without_spaces_is_cut_at_the_target() -> None:
    doc = doc_of(Block("paragraph", "港" * 950))
    chunks = chunk_document(doc, ChunkSettings(400, 0))
    assert [len(c.text) for c in chunks] == [400, 400, 150]


def test_paragraph_boundaries_preferred_over_sentences() -> None:
    first = " ".join(SENTENCES[:4])  # about 370 characters
    second = " ".join(SENTENCES[4:8])
    doc = doc_of(Block("paragraph", first), Block("paragraph", second))
    chunks = chunk_document(doc, ChunkSettings(500, 0))
    assert [c.text for c in chunks] == [first, second]


def test_headings_are_hard_boundaries_and_give_context() -> None:
    doc = parse_document(
        b"# Guide\n\nIntro text.\n\n## Cranes\n\n" + " ".join(SENTENCES[:12]).encode() + b"\n\n## Ships\n\nShip text.",
        "guide.md",
    )
    chunks = chunk_document(doc, ChunkSettings(400, 80))
    assert chunks[0].text == "Guide\n\nIntro text." and chunks[0].heading_path == ("Guide",)
    cranes = [c for c in chunks if c.heading_path == ("Guide", "Cranes")]
    assert len(cranes) >= 3
    assert cranes[0].text.startswith("Guide\n\nCranes\n\nSentence 0")  # parent path, then its own heading
    assert all(c.text.startswith("Guide > Cranes\n\n") for c in cranes[1:])
    ships = chunks[-1]
    assert ships.heading_path == ("Guide", "Ships") and ships.text == "Guide\n\nShips\n\nShip text."
    # no chunk crosses a heading, so no overlap either
    assert ships.start > cranes[-1].end
    assert "Ship text" not in cranes[-1].text


def test_heading_only_sections_join_the_next_text() -> None:
    doc = parse_document(b"# Part one\n\n## Chapter\n\nBody of the chapter.", "a.md")
    [chunk] = chunk_document(doc)
    assert chunk.text == "Part one\n\nChapter\n\nBody of the chapter."
    assert chunk.heading_path == ("Part one", "Chapter")


def _table(rows: int) -> str:
    lines = ["| Port | Ships | Note |", "| --- | --- | --- |"]
    lines += [f"| Port {i} | {i * 7} | quiet harbour with several cranes |" for i in range(rows)]
    return "\n".join(lines)


def test_table_that_fits_stays_whole() -> None:
    table = _table(5)
    doc = doc_of(
        Block("paragraph", "Before the table."),
        Block("table", table, heading_path=("Ports",)),
        Block("paragraph", "After the table."),
    )
    chunks = chunk_document(doc, ChunkSettings(1200, 100))
    assert [c.kind for c in chunks] == ["paragraph", "table", "paragraph"]
    assert chunks[1].text == "Ports\n\n" + table
    assert body(chunks[1], doc) == table


def test_large_table_split_by_rows_with_header_repeated() -> None:
    table = _table(60)
    doc = doc_of(Block("table", table, page=3, source="Sheet1"))
    settings = ChunkSettings(600, 100)
    chunks = chunk_document(doc, settings)
    assert len(chunks) > 3
    seen: list[str] = []
    for chunk in chunks:
        assert chunk.kind == "table" and chunk.page == 3 and chunk.source == "Sheet1"
        lines = chunk.text.split("\n")
        assert lines[0] == "Sheet1" and lines[2:4] == ["| Port | Ships | Note |", "| --- | --- | --- |"]
        assert len("\n".join(lines[2:])) <= settings.target_chars
        seen += lines[4:]
        assert body(chunk, doc).endswith(lines[-1])
    assert seen == table.split("\n")[2:]  # every row exactly once, in order: no overlap in tables


def test_pages_and_sources_are_kept() -> None:
    doc = doc_of(
        Block("paragraph", " ".join(SENTENCES[:3]), page=1, source="a.pdf"),
        Block("paragraph", " ".join(SENTENCES[3:6]), page=2, source="a.pdf"),
        Block("paragraph", "Other member text.", page=1, source="b.txt"),
    )
    chunks = chunk_document(doc, ChunkSettings(2000, 0))
    assert [(c.page, c.page_end, c.source) for c in chunks] == [(1, 2, "a.pdf"), (1, 1, "b.txt")]
    assert chunks[0].text.startswith("a.pdf\n\nSentence 0")
    assert chunks[1].text == "b.txt\n\nOther member text."


def test_real_document_chunks_are_deterministic_and_cover_the_text() -> None:
    data = (
        b"# Harbour\n\n"
        + b"\n\n".join(" ".join(SENTENCES[i : i + 5]).encode() for i in range(0, 60, 5))
        + b"\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n## End\n\nDone."
    )
    doc = parse_document(data, "h.md")
    first = chunk_document(doc, ChunkSettings(700, 120))
    assert first == chunk_document(doc, ChunkSettings(700, 120))
    text = document_text(doc)
    covered: set[int] = set()
    for chunk in first:
        covered.update(range(chunk.start, chunk.end))
        assert chunk.text.endswith(text[chunk.start : chunk.end]) or chunk.kind == "table"
    assert all(ch.isspace() for i, ch in enumerate(text) if i not in covered)
