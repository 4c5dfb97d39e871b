"""Tables without ruling lines: found in text PDFs and OCR, kept out of prose, lists and page columns."""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFont

from nexent.knowledge.chunking import ChunkSettings, chunk_document
from nexent.knowledge.parsing import ParsedDocument, parse_document
from tests.knowledge.test_parsing import BENCH, NO_OCR, has_row, pdf_bytes, pdf_text, table_rows

requires_bench = pytest.mark.skipif(not (BENCH / "icdar2013-us-dev").is_dir(), reason="needs ../shared/bench")

REGIONS = [
    ("North", "700", "1.2", "12"),
    ("South", "534", "0.9", "8"),
    ("East", "1,204", "2.4", "21"),
    ("West", "88", "0.1", "3"),
    ("Central", "2,950", "5.8", "44"),
    ("Islands", "17", "0.02", "1"),
]
PROSE = (
    "The harbour office counted the ships that arrived during the first quarter of the year and compared the",
    "figures with the same months of the previous year, finding that traffic from the northern ports had grown",
    "while the southern routes carried fewer vessels than before, mostly because of the long winter storms.",
)


def aligned_table(top: float, rows: Sequence[Sequence[str]], size: float = 10) -> str:
    """Rows drawn as text only: a left-aligned first column and right-aligned number columns, no lines."""
    ops = []
    rights = [230, 300, 370]
    for index, row in enumerate(rows):
        y = top - index * (size + 4)
        ops.append(pdf_text(72, y, size, row[0]))
        for right, value in zip(rights, row[1:], strict=True):
            ops.append(pdf_text(right - 0.5 * size * len(value), y, size, value))
    return "".join(ops)


def prose(top: float, lines: tuple[str, ...] | list[str], x: float = 72, size: float = 10) -> str:
    return "".join(pdf_text(x, top - i * (size + 4), size, line) for i, line in enumerate(lines))


def tables(doc: ParsedDocument) -> list[Any]:
    return [block for block in doc.blocks if block.kind == "table"]


def test_a_table_without_ruling_lines_is_found_with_its_caption() -> None:
    page = (
        pdf_text(72, 740, 11, "Table 1. Harbour traffic by region")
        + aligned_table(716, [("Region", "Ships", "Tonnes", "Berths"), *REGIONS])
        + prose(600, PROSE)
    )
    doc = parse_document(pdf_bytes([page]), "traffic.pdf", limits=NO_OCR)
    [table] = tables(doc)
    assert table.caption == "Table 1. Harbour traffic by region"
    assert table_rows(doc)[0] == ["Region", "Ships", "Tonnes", "Berths"]
    for row in REGIONS:
        assert has_row(doc, *row), row
    # the table's text is not repeated as paragraphs, the prose is kept as it was
    assert sum(block.text.count("Central") for block in doc.blocks) == 1
    assert any(block.kind == "paragraph" and "winter storms" in block.text for block in doc.blocks)
    # every chunk of the table says which table it holds
    chunks = [c for c in chunk_document(doc, ChunkSettings(target_chars=150, overlap_chars=0)) if c.kind == "table"]
    assert len(chunks) >= 2
    assert all(c.caption == table.caption and "Table 1. Harbour traffic" in c.text for c in chunks)
    assert all("| Region | Ships | Tonnes | Berths |" in c.text for c in chunks)


def test_a_wrapped_cell_stays_in_its_row() -> None:
    rows = [("Region", "Ships", "Tonnes", "Berths"), *REGIONS[:3]]
    page = aligned_table(700, rows)
    # a second line of North's tonnes column: an empty first column continues the row above
    page += pdf_text(370 - 0.5 * 10 * len("(est.)"), 700 - 1 * 14 - 7, 10, "(est.)")
    doc = parse_document(pdf_bytes([page]), "wrapped.pdf", limits=NO_OCR)
    assert has_row(doc, "North", "700", "1.2", "12 (est.)") or has_row(doc, "North", "700", "1.2 (est.)", "12")
    assert has_row(doc, "South", "534", "0.9", "8")


def test_a_table_going_on_over_the_next_page_reads_as_one_table() -> None:
    header = ("Region", "Ships", "Tonnes", "Berths")
    first = [header] + [(f"Port {i}", str(100 + i), f"{i}.5", str(i)) for i in range(40)]
    rest = [(f"Port {i}", str(100 + i), f"{i}.5", str(i)) for i in range(40, 52)]  # no header repeated
    page1 = pdf_text(72, 760, 11, "Table 2. Ports") + aligned_table(740, first)
    page2 = pdf_text(72, 770, 8, "Harbour report 2024") + aligned_table(740, rest)
    doc = parse_document(pdf_bytes([page1, page2]), "ports.pdf", limits=NO_OCR)
    rows = table_rows(doc)
    assert [row[0] for row in rows if row[0].startswith("Port ")] == [f"Port {i}" for i in range(52)]
    # each page's part is a block on its own page, with the table's header and caption: pieces of one table
    blocks = tables(doc)
    assert [(block.page, block.caption) for block in blocks] == [(1, "Table 2. Ports"), (2, "Table 2. Ports")]
    assert all(block.text.startswith("| Region | Ships | Tonnes | Berths |") for block in blocks)
    # a table further down the next page, under text, is a table of its own
    page2 = prose(770, PROSE * 2) + aligned_table(680, [header, *rest])
    doc = parse_document(pdf_bytes([page1, page2]), "ports.pdf", limits=NO_OCR)
    assert [(block.page, block.caption) for block in tables(doc)] == [(1, "Table 2. Ports"), (2, None)]


def test_prose_lists_and_page_columns_are_not_tables() -> None:
    single = prose(740, PROSE * 4)
    left = [line[:52] for line in PROSE * 6]
    right = [line[52:] for line in PROSE * 6]
    columns = prose(740, left, x=50, size=9) + prose(740, right, x=320, size=9)
    listing = "".join(
        pdf_text(72, 740 - i * 16, 10, f"{i + 1}.") + pdf_text(100, 740 - i * 16, 10, f"Item {i + 1} of the agenda")
        for i in range(8)
    )
    bullets = "".join(
        pdf_text(72, 740 - i * 16, 10, "-") + pdf_text(90, 740 - i * 16, 10, f"Review the minutes of meeting {i}")
        for i in range(8)
    )
    form = "".join(
        pdf_text(72, 740 - i * 16, 10, label) + pdf_text(200, 740 - i * 16, 10, value)
        for i, (label, value) in enumerate(
            [("Name", "Jane Example"), ("Street", "Harbour Road"), ("City", "Portsmouth"), ("Role", "Pilot")]
        )
    )
    pages = {"prose": single, "columns": columns, "list": listing, "bullets": bullets, "form": form}
    for name, page in pages.items():
        doc = parse_document(pdf_bytes([page]), f"{name}.pdf", limits=NO_OCR)
        assert tables(doc) == [], name


def test_a_scanned_table_keeps_its_rows_and_columns() -> None:
    image = Image.new("RGB", (1700, 900), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=40)
    draw.text((80, 60), "Harbour traffic", fill="black", font=font)
    for index, row in enumerate([("Region", "Ships", "Tonnes", "Berths"), *REGIONS]):
        y = 160 + index * 90
        draw.text((80, y), row[0], fill="black", font=font)
        for right, value in zip((800, 1150, 1500), row[1:], strict=True):
            width = draw.textlength(value, font=font)
            draw.text((right - width, y), value, fill="black", font=font)
    data = io.BytesIO()
    image.save(data, "PNG")
    doc = parse_document(data.getvalue(), "scan.png")
    assert len(tables(doc)) == 1
    hits = sum(has_row(doc, *row) for row in REGIONS)
    assert hits >= 5, table_rows(doc)  # OCR may misread one value


def _scores(folder: Path) -> tuple[float, float, float]:
    sys.path.insert(0, str(BENCH))
    import table_relations  # type: ignore[import-not-found]  # the benchmark's scorer, in ../shared

    counts = []
    for gold in sorted(folder.glob("*-str.xml")):
        pdf = gold.with_name(gold.name.replace("-str.xml", ".pdf"))
        if not pdf.exists():
            continue
        doc = parse_document(pdf.read_bytes(), pdf.name, limits=NO_OCR)
        found, _ = table_relations.chunk_tables([(b.text, None, None) for b in tables(doc)])
        counts.append(
            table_relations.match(
                table_relations.document_relations(found),
                table_relations.document_relations(table_relations.gold_tables(str(gold))),
            )
        )
    precision, recall, f1 = table_relations.micro(counts)
    return float(precision), float(recall), float(f1)


@requires_bench
@pytest.mark.parametrize(("folder", "least_f1"), [("icdar2013-us-dev", 0.60), ("icdar2013-eu", 0.79)])
def test_icdar_2013_tables_by_cell_adjacency(folder: str, least_f1: float) -> None:
    """The issue's bar: above tabula's 0.550 on the US set, not below the ruled path's 0.79 on the EU set."""
    precision, _, f1 = _scores(BENCH / folder)
    assert precision >= 0.80, precision
    assert f1 >= least_f1, f1
