"""Document parsing: every supported format on real files, typed failures, limits, and the benchmark corpus."""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import os
import re
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path
from xml.etree import ElementTree

import docx
import openpyxl  # type: ignore[import-untyped]
import pptx
import pypdf
import pytest
from msoffcrypto.format.ooxml import OOXMLFile  # type: ignore[import-untyped]
from PIL import Image, ImageDraw, ImageFont
from pptx.util import Inches

from nexent.knowledge.chunking import document_text
from nexent.knowledge.parsing import (
    SUPPORTED_FORMATS,
    ParsedDocument,
    ParseFailure,
    ParseLimits,
    detect_format,
    parse_document,
)
from tests.support.bombs import office_bomb, plain_document

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BENCH = Path(__file__).resolve().parents[2] / ".." / "shared" / "bench" / "parsing"
NO_OCR = ParseLimits(ocr=False)


# --- helpers ------------------------------------------------------------------------------------------------


def failure(data: bytes, filename: str, limits: ParseLimits = ParseLimits()) -> str:
    with pytest.raises(ParseFailure) as caught:
        parse_document(data, filename, limits=limits)
    assert caught.value.message and "/" not in caught.value.message.split(":")[0]
    return caught.value.code


def table_rows(doc: ParsedDocument) -> list[list[str]]:
    rows = []
    for block in doc.blocks:
        if block.kind == "table":
            for line in block.text.split("\n"):
                if not re.fullmatch(r"\|( --- \|)+", line):
                    rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])])
    return rows


def has_row(doc: ParsedDocument, *cells: str) -> bool:
    """Some Markdown table row holds these cells, in this order (other cells may sit between them)."""
    for row in table_rows(doc):
        position = 0
        for cell in cells:
            while position < len(row) and row[position] != cell:
                position += 1
            if position == len(row):
                break
            position += 1
        else:
            return True
    return False


def pdf_bytes(pages: list[str], width: int = 612, height: int = 792) -> bytes:
    """A minimal valid PDF whose pages draw the given content streams (Helvetica as /F1)."""
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    }
    kids = []
    for i, content in enumerate(pages):
        page, stream = 4 + 2 * i, 5 + 2 * i
        kids.append(f"{page} 0 R")
        objects[page] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {stream} 0 R >>"
        ).encode()
        data = content.encode("latin-1")
        objects[stream] = b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>".encode()
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n".encode() + objects[number] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    for number in range(1, size):
        out += f"{offsets[number]:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def pdf_text(x: float, y: float, size: float, text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"BT /F1 {size} Tf {x} {y} Td ({escaped}) Tj ET\n"


def pdf_table(x: float, top: float, widths: list[float], row_height: float, rows: list[list[str]]) -> str:
    ops = ["0.8 w\n"]
    total = sum(widths)
    for r in range(len(rows) + 1):
        y = top - r * row_height
        ops.append(f"{x} {y} m {x + total} {y} l S\n")
    column = x
    for width in [0.0, *widths]:
        column += width
        ops.append(f"{column} {top} m {column} {top - len(rows) * row_height} l S\n")
    for r, row in enumerate(rows):
        left = x
        for width, cell in zip(widths, row, strict=True):
            ops.append(pdf_text(left + 4, top - (r + 1) * row_height + 6, 10, cell))
            left += width
    return "".join(ops)


PROSE = (
    "The harbour office counted the ships that arrived during the first quarter of the year. "
    "Most of them carried containers, and a few carried grain for the mills along the river."
)


def text_image(text: str, size: tuple[int, int] = (900, 180), mode: str = "RGB") -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((30, 50), text, fill="black", font=ImageFont.load_default(size=56))
    return image.convert(mode)


def image_bytes(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def docx_bytes() -> bytes:
    document = docx.Document()
    document.core_properties.title = "Harbour report"
    document.add_heading("Quarterly report", 1)
    document.add_paragraph(PROSE)
    document.add_heading("Arrivals", 2)
    document.add_paragraph("Container ships", style="List Bullet")
    document.add_paragraph("Grain carriers", style="List Bullet")
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate([["Region", "Ships", "Revenue"], ["North", "700", "1.2M"], ["South", "534", "0.9M"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    merged = document.add_table(rows=2, cols=3)
    merged.cell(0, 0).text = "Port"
    merged.cell(0, 1).merge(merged.cell(0, 2)).text = "Totals"
    merged.cell(1, 0).text = "Rotterdam"
    merged.cell(1, 1).text = "12"
    merged.cell(1, 2).text = "34"
    document.add_heading("Outlook", 2)
    document.add_paragraph("Closing remarks about the next quarter.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def xlsx_bytes(rows: int = 3) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Ships"
    sheet.append(["Harbour", "Ships", "Tonnage"])
    for i in range(rows):
        sheet.append([f"Port {i}", 700 + i, 1.5 + i])
    crew = workbook.create_sheet("Crews")
    crew.append(["Name", "Role"])
    crew.append(["Ada", "Captain"])
    crew.merge_cells("A4:B4")
    crew["A4"] = "Merged note"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def pptx_bytes() -> bytes:
    presentation = pptx.Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[1])
    assert slide.shapes.title is not None
    slide.shapes.title.text = "Harbour overview"
    slide.placeholders[1].text_frame.text = "Ships arrive daily"
    slide.placeholders[1].text_frame.add_paragraph().text = "Cranes unload containers"
    second = presentation.slides.add_slide(presentation.slide_layouts[5])
    assert second.shapes.title is not None
    second.shapes.title.text = "Figures"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for r, row in enumerate([["Port", "Ships"], ["Hamburg", "534"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    second.notes_slide.notes_text_frame.text = "Mention the new crane."
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def odf_bytes(mimetype: str, body: str) -> bytes:
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
        'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" office:version="1.3">'
        f"<office:body>{body}</office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">'
        f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{mimetype}"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", mimetype, compress_type=zipfile.ZIP_STORED)
        archive.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def epub_bytes() -> bytes:
    container = (
        '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    opf = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>The Harbour Book</dc:title>'
        '<dc:identifier id="id">urn:uuid:1</dc:identifier></metadata><manifest>'
        '<item id="c1" href="chapter1.xhtml" media-type="application/xhtml+xml"/>'
        '<item id="c2" href="chapter%202.xhtml" media-type="application/xhtml+xml"/>'
        '</manifest><spine><itemref idref="c1"/><itemref idref="c2"/></spine></package>'
    )

    def chapter(title: str, text: str) -> str:
        return (
            '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title></head>'
            f"<body><h1>{title}</h1><p>{text}</p></body></html>"
        )

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr("META-INF/container.xml", container)
        archive.writestr("OEBPS/content.opf", opf)
        archive.writestr("OEBPS/chapter1.xhtml", chapter("Arrival", "The ship came in at dawn."))
        archive.writestr("OEBPS/chapter 2.xhtml", chapter("Departure", "It left again at dusk."))
    return buffer.getvalue()


def eml_bytes() -> bytes:
    message = EmailMessage()
    message["From"] = "Harbour Master <master@example.org>"
    message["To"] = "crew@example.org"
    message["Subject"] = "Weekly arrivals"
    message.set_content("Hello crew,\n\nThe arrivals list for this week is attached.\n\nRegards")
    message.add_attachment(b"Ship,Berth\nAurora,7\nBorealis,9\n", maintype="text", subtype="csv", filename="list.csv")
    return message.as_bytes()


# --- one real file per format -------------------------------------------------------------------------------

HTML = b"""<!doctype html><html><head><title>Harbour</title><style>p{}</style><script>var x=1</script></head>
<body><nav><a href="/">Home</a></nav><h1>Harbour guide</h1>
<p>Ships dock at <b>berth 7</b>.<br>Cranes are on the left.</p>
<h2>Berths</h2><ul><li>Berth 7<ul><li>deep water</li></ul></li><li>Berth 9</li></ul>
<table><tr><th>Berth</th><th colspan="2">Depth</th></tr><tr><td rowspan="2">7</td><td>12 m</td><td>low tide</td></tr>
<tr><td>14 m</td><td>high tide</td></tr></table><pre>berth = 7\n  depth = 12</pre></body></html>"""

MARKDOWN = b"""---
title: ignored front matter
---
# Harbour guide

Ships dock at berth 7.
Cranes are on the left.

## Berths

- Berth 7
  - deep water
- Berth 9

| Berth | Depth |
|:------|------:|
| 7 | 12 m |
| 9 | 8 m |

```python
depth = {"7": 12}
```

Setext heading
--------------

Last paragraph.
"""

RTF = rb"""{\rtf1\ansi\deff0{\fonttbl{\f0 Times New Roman;}}
{\pard Harbour report\par}
{\pard The harbour counted 1234 ships in the quarter.\par}
\trowd\cellx2000\cellx4000
\intbl Region\cell Ships\cell\row
\intbl North\cell 700\cell\row
{\pard Closing remarks.\par}
}"""


def _case(fmt: str) -> tuple[bytes, str]:
    cases: dict[str, Callable[[], tuple[bytes, str]]] = {
        "docx": lambda: (docx_bytes(), "report.docx"),
        "xlsx": lambda: (xlsx_bytes(), "ships.xlsx"),
        "pptx": lambda: (pptx_bytes(), "deck.pptx"),
        "pdf": lambda: (pdf_bytes([pdf_text(72, 700, 12, PROSE[:80])]), "note.pdf"),
        "csv": lambda: (b"Ship;Berth;Cargo\nAurora;7;grain\nBorealis;9;containers\n", "ships.csv"),
        "html": lambda: (HTML, "guide.html"),
        "markdown": lambda: (MARKDOWN, "guide.md"),
        "txt": lambda: (PROSE.encode() + b"\n\nSecond paragraph.", "notes.txt"),
        "json": lambda: (json.dumps({"ships": [{"name": "Aurora"}], "port": "Rotterdam"}).encode(), "d.json"),
        "jsonl": lambda: (b'{"ship": "Aurora", "berth": 7}\n{"ship": "Borealis", "berth": 9}\n', "d.jsonl"),
        "xml": lambda: (b'<?xml version="1.0"?><port name="R"><ship berth="7">Aurora</ship></port>', "d.xml"),
        "rtf": lambda: (RTF, "report.rtf"),
        "eml": lambda: (eml_bytes(), "mail.eml"),
        "epub": lambda: (epub_bytes(), "book.epub"),
        "odt": lambda: (
            odf_bytes(
                "application/vnd.oasis.opendocument.text",
                '<office:text><text:h text:outline-level="1">Harbour</text:h><text:p>Ships<text:s text:c="2"/>'
                "dock here.</text:p><text:list><text:list-item><text:p>Berth 7</text:p></text:list-item>"
                "</text:list><table:table><table:table-row><table:table-cell><text:p>Berth</text:p>"
                "</table:table-cell><table:table-cell><text:p>Depth</text:p></table:table-cell></table:table-row>"
                "<table:table-row><table:table-cell><text:p>7</text:p></table:table-cell><table:table-cell>"
                "<text:p>12 m</text:p></table:table-cell></table:table-row></table:table></office:text>",
            ),
            "doc.odt",
        ),
        "ods": lambda: (
            odf_bytes(
                "application/vnd.oasis.opendocument.spreadsheet",
                '<office:spreadsheet><table:table table:name="Ships"><table:table-row><table:table-cell>'
                "<text:p>Ship</text:p></table:table-cell><table:table-cell><text:p>Berth</text:p>"
                "</table:table-cell></table:table-row><table:table-row><table:table-cell table:number-columns-"
                'repeated="2"><text:p>7</text:p></table:table-cell><table:table-cell table:number-columns-'
                'repeated="1000"/></table:table-row></table:table></office:spreadsheet>',
            ),
            "sheet.ods",
        ),
        "odp": lambda: (
            odf_bytes(
                "application/vnd.oasis.opendocument.presentation",
                '<office:presentation><draw:page draw:name="p1"><draw:frame presentation:class="title">'
                "<draw:text-box><text:p>Harbour slides</text:p></draw:text-box></draw:frame><draw:frame>"
                "<draw:text-box><text:p>Ships arrive daily</text:p></draw:text-box></draw:frame></draw:page>"
                '<draw:page draw:name="p2"><draw:frame><draw:text-box><text:p>Second page</text:p>'
                "</draw:text-box></draw:frame></draw:page></office:presentation>",
            ),
            "slides.odp",
        ),
        "doc": lambda: (gzip.decompress((FIXTURES / "libreoffice-report.doc.gz").read_bytes()), "report.doc"),
        "ppt": lambda: (gzip.decompress((FIXTURES / "libreoffice-slides.ppt.gz").read_bytes()), "slides.ppt"),
        "zip": lambda: (zip_bytes({"a/notes.txt": b"Ships dock at berth 7.", "b.csv": b"x,y\n1,2\n"}), "a.zip"),
        "png": lambda: (image_bytes(text_image("HARBOUR 2024"), "PNG"), "scan.png"),
        "jpeg": lambda: (image_bytes(text_image("HARBOUR 2024"), "JPEG"), "scan.jpg"),
        "gif": lambda: (image_bytes(text_image("HARBOUR 2024", mode="P"), "GIF"), "scan.gif"),
        "bmp": lambda: (image_bytes(text_image("HARBOUR 2024"), "BMP"), "scan.bmp"),
        "tiff": lambda: (image_bytes(text_image("HARBOUR 2024"), "TIFF"), "scan.tif"),
        "webp": lambda: (image_bytes(text_image("HARBOUR 2024"), "WEBP"), "scan.webp"),
    }
    if fmt == "xls":
        path = BENCH / "xlsx" / "markitdown-test.xls"
        if not path.exists():
            pytest.skip(f"the real XLS sample lives in the benchmark folder, absent here: {path}")
        return path.read_bytes(), path.name
    return cases[fmt]()


EXPECTED_TEXT = {
    "docx": ["Quarterly report", "Closing remarks"],
    "xlsx": ["Port 2", "Captain"],
    "pptx": ["Harbour overview", "Cranes unload containers", "Mention the new crane."],
    "pdf": ["The harbour office counted"],
    "csv": ["Borealis", "containers"],
    "html": ["Harbour guide", "berth 7", "deep water", "berth = 7"],
    "markdown": ["Harbour guide", "deep water", 'depth = {"7": 12}', "Last paragraph."],
    "txt": ["first quarter", "Second paragraph."],
    "json": ["Aurora", "Rotterdam"],
    "jsonl": ["Borealis"],
    "xml": ["Aurora", 'berth="7"'],
    "rtf": ["Harbour report", "Closing remarks."],
    "eml": ["Weekly arrivals", "arrivals list", "Borealis"],
    "epub": ["Arrival", "It left again at dusk."],
    "odt": ["Harbour", "Ships dock here.", "Berth 7", "12 m"],
    "ods": ["Ship", "Berth"],
    "odp": ["Harbour slides", "Second page"],
    "doc": ["Quarterly report", "twelve percent", "Closing remarks"],
    "ppt": ["Harbour overview", "Cranes unload containers", "Lighthouse keeper notes"],
    "xls": ["6ff4173b-42a5-4784-9b19-f49caff4d93d"],
    "zip": ["berth 7"],
    **{fmt: ["HARBOUR 2024"] for fmt in ("png", "jpeg", "gif", "bmp", "tiff", "webp")},
}


def test_supported_formats_are_all_covered() -> None:
    assert len(SUPPORTED_FORMATS) >= 20
    assert set(EXPECTED_TEXT) == set(SUPPORTED_FORMATS)


@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_each_format_parses(fmt: str) -> None:
    data, name = _case(fmt)
    assert detect_format(data, name) == fmt
    doc = parse_document(data, name)
    assert doc.format == fmt
    assert doc.blocks and all(block.text.strip() for block in doc.blocks)
    text = document_text(doc)
    for expected in EXPECTED_TEXT[fmt]:
        assert (
            expected.lower() in text.lower()
            if fmt in ("png", "jpeg", "gif", "bmp", "tiff", "webp")
            else (expected in text)
        ), (expected, text)


# --- structure ----------------------------------------------------------------------------------------------


def test_docx_structure_headings_lists_and_tables() -> None:
    doc = parse_document(docx_bytes(), "report.docx")
    assert doc.title == "Harbour report"
    headings = [(b.text, b.level) for b in doc.blocks if b.kind == "heading"]
    assert headings == [("Quarterly report", 1), ("Arrivals", 2), ("Outlook", 2)]
    listing = next(b for b in doc.blocks if b.kind == "list")
    assert listing.text == "- Container ships\n- Grain carriers"
    assert listing.heading_path == ("Quarterly report", "Arrivals")
    assert has_row(doc, "North", "700", "1.2M")
    assert has_row(doc, "Port", "Totals", "Totals")  # a merged cell repeats in each column it spans
    closing = next(b for b in doc.blocks if b.text.startswith("Closing"))
    assert closing.heading_path == ("Quarterly report", "Outlook")


def test_pptx_slides_are_pages() -> None:
    doc = parse_document(pptx_bytes(), "deck.pptx")
    assert doc.page_count == 2
    first = [b for b in doc.blocks if b.page == 1]
    assert first[0].kind == "heading" and first[0].text == "Harbour overview"
    assert any(b.kind == "list" and "- Ships arrive daily" in b.text for b in first)
    assert has_row(doc, "Hamburg", "534")
    table = next(b for b in doc.blocks if b.kind == "table")
    assert table.page == 2 and table.heading_path == ("Figures",)


def test_spreadsheets_one_table_per_sheet_with_sheet_as_source() -> None:
    doc = parse_document(xlsx_bytes(120), "ships.xlsx")
    ships = [b for b in doc.blocks if b.kind == "table" and b.source == "Ships"]
    assert len(ships) == 3  # 120 rows in pieces of at most 50, header repeated
    assert all(b.text.startswith("| Harbour | Ships | Tonnage |") for b in ships)
    assert all(b.heading_path == ("Ships",) for b in ships)
    assert has_row(doc, "Port 0", "700", "1.5")
    assert has_row(doc, "Merged note", "Merged note")
    crews = [b for b in doc.blocks if b.source == "Crews"]
    assert crews[0].kind == "heading" and crews[0].text == "Crews"


def test_csv_sniffs_delimiter_and_large_files_split() -> None:
    rows = "\n".join(f"{i}\tname {i}" for i in range(130))
    doc = parse_document(("id\tname\n" + rows).encode(), "big.tsv")
    tables = [b for b in doc.blocks if b.kind == "table"]
    assert len(tables) == 3 and all(t.text.startswith("| id | name |") for t in tables)
    assert has_row(doc, "129", "name 129")


def test_html_tables_spans_and_lists() -> None:
    doc = parse_document(HTML, "guide.html")
    assert doc.title == "Harbour"
    assert has_row(doc, "Berth", "Depth", "Depth")
    assert has_row(doc, "7", "14 m", "high tide")  # the row-spanning cell is repeated below
    listing = next(b for b in doc.blocks if b.kind == "list")
    assert listing.text == "- Berth 7\n  - deep water\n- Berth 9"
    assert "var x" not in document_text(doc) and "Home" in document_text(doc)
    assert any(b.kind == "code" and "  depth = 12" in b.text for b in doc.blocks)


def test_markdown_keeps_structure() -> None:
    doc = parse_document(MARKDOWN, "guide.md")
    kinds = [b.kind for b in doc.blocks]
    assert kinds == ["heading", "paragraph", "heading", "list", "table", "code", "heading", "paragraph"]
    assert has_row(doc, "9", "8 m")
    assert doc.blocks[-1].heading_path == ("Harbour guide", "Setext heading")
    assert "front matter" not in document_text(doc)


def test_text_encodings() -> None:
    text = "Grüße aus dem Hafen: Schiffe, Kräne und Möwen am Kai."
    for data in (text.encode("utf-8"), text.encode("utf-16"), text.encode("latin-1"), text.encode("utf-8-sig")):
        assert document_text(parse_document(data, "note.txt")) == text


def test_json_pretty_prints_top_level_elements() -> None:
    doc = parse_document(b'[{"ship": "Aurora", "crew": ["Ada", "Bo"]}, {"ship": "Borealis"}]', "ships.json")
    assert len(doc.blocks) == 2
    assert doc.blocks[0].text.startswith('{\n  "ship": "Aurora"')
    assert failure(b'{"broken": ', "x.json") == "corrupt_file"


def test_eml_attachment_is_parsed_with_its_name_as_source() -> None:
    doc = parse_document(eml_bytes(), "mail.eml")
    assert doc.title == "Weekly arrivals"
    table = next(b for b in doc.blocks if b.kind == "table")
    assert table.source == "list.csv"
    assert has_row(doc, "Borealis", "9")


def test_legacy_doc_and_ppt_structure() -> None:
    doc = parse_document(*_case("doc"))
    assert [(b.text, b.level) for b in doc.blocks if b.kind == "heading"] == [
        ("Quarterly report", 1),
        ("Details", 2),
    ]
    assert has_row(doc, "North", "700", "1.2M")
    ppt = parse_document(*_case("ppt"))
    assert ppt.page_count == 2
    assert [(b.text, b.page) for b in ppt.blocks if b.kind == "heading"] == [
        ("Harbour overview", 1),
        ("Second slide", 2),
    ]


def test_pdf_pages_tables_and_headings() -> None:
    page1 = (
        pdf_text(72, 720, 24, "Harbour Report")
        + pdf_text(72, 690, 11, PROSE[:90])
        + pdf_table(
            72,
            640,
            [120, 80, 80],
            20,
            [["Region", "Ships", "Revenue"], ["North", "700", "1.2M"], ["South", "534", "0.9M"]],
        )
    )
    page2 = pdf_text(72, 720, 11, "Second page text about the cranes.")
    doc = parse_document(pdf_bytes([page1, page2]), "report.pdf")
    assert doc.page_count == 2
    assert doc.blocks[0].kind == "heading" and doc.blocks[0].text == "Harbour Report"
    assert has_row(doc, "North", "700", "1.2M")
    # the table's text is not repeated as paragraphs
    assert sum(b.text.count("North") for b in doc.blocks) == 1
    assert [b.page for b in doc.blocks if "cranes" in b.text] == [2]


def test_scanned_pdf_page_is_read_by_ocr() -> None:
    data = image_bytes(text_image("INVOICE 4711", size=(1240, 1754)), "PDF")
    doc = parse_document(data, "scan.pdf")
    assert doc.blocks[0].kind == "image_text" and doc.blocks[0].page == 1
    assert "INVOICE 4711" in document_text(doc).upper()
    assert failure(data, "scan.pdf", NO_OCR) == "empty"


# --- detection and failures ---------------------------------------------------------------------------------


def test_detection_by_content_not_name() -> None:
    pdf = pdf_bytes([pdf_text(72, 700, 12, "Mislabelled but real PDF text")])
    assert detect_format(pdf, "report.docx") == "pdf"
    assert parse_document(pdf, "report.docx").format == "pdf"
    assert detect_format(docx_bytes(), "upload.bin") == "docx"
    assert detect_format(xlsx_bytes(), "upload", "application/octet-stream") == "xlsx"
    assert detect_format(b"a,b\n1,2\n", "data", "text/csv") == "csv"
    assert detect_format(b"# Title\n\nText", "README") == "markdown"
    assert detect_format(b"<html><body><p>x</p></body></html>", "page.txt") == "html"


@pytest.mark.parametrize(
    "data",
    [b"MZ\x90\x00" + bytes(200), b"\x7fELF\x02\x01\x01" + bytes(200), b"\x1f\x8b\x08" + bytes(100)],
    ids=["exe", "elf", "gzip"],
)
def test_unsupported_binaries(data: bytes) -> None:
    assert failure(data, "file.pdf") == "unsupported_format"


def test_random_bytes_named_pdf() -> None:
    data = bytes((i * 7919 + 13) % 256 for i in range(4096))
    assert failure(data, "random.pdf") in ("unsupported_format", "corrupt_file")


def test_corrupt_files() -> None:
    pdf = pdf_bytes([pdf_text(72, 700, 12, "text")])
    assert failure(pdf[:60], "cut.pdf") == "corrupt_file"
    assert failure(docx_bytes()[:3000], "cut.docx") == "corrupt_file"
    assert failure(zip_bytes({"a.txt": b"hello" * 100})[:50], "cut.zip") == "corrupt_file"
    assert failure(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "broken.doc") == "corrupt_file"
    assert failure(zip_bytes({"word/document.xml": b"<not xml"}), "bad.docx") == "corrupt_file"


def test_encrypted_pdf() -> None:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(pdf_bytes([pdf_text(72, 700, 12, "secret")]))))
    writer.encrypt("open-sesame", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    assert failure(buffer.getvalue(), "secret.pdf") == "encrypted"


def test_encrypted_office_file() -> None:
    encrypted = io.BytesIO()
    OOXMLFile(io.BytesIO(docx_bytes())).encrypt("open-sesame", encrypted)
    assert detect_format(encrypted.getvalue(), "secret.docx") == "docx"
    assert failure(encrypted.getvalue(), "secret.docx") == "encrypted"


def test_encrypted_zip_members() -> None:
    data = bytearray(zip_bytes({"a.txt": b"hello"}, zipfile.ZIP_STORED))
    # set the "encrypted" flag bit in the local and the central header, as a password-protected archive has
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        position = data.find(signature)
        data[position + flag_offset] |= 0x01
    assert failure(bytes(data), "locked.zip") == "encrypted"


def test_empty_inputs() -> None:
    assert failure(b"", "empty.pdf") == "empty"
    assert failure(b"  \n\n\t ", "blank.txt") == "empty"
    assert failure(docx_bytes_empty(), "blank.docx") == "empty"
    assert failure(image_bytes(Image.new("RGB", (200, 100), "white"), "PNG"), "blank.png") == "empty"
    assert failure(zip_bytes({}), "nothing.zip") == "empty"


def docx_bytes_empty() -> bytes:
    buffer = io.BytesIO()
    docx.Document().save(buffer)
    return buffer.getvalue()


def test_limits() -> None:
    assert failure(b"x" * 2000, "big.txt", ParseLimits(max_bytes=1000)) == "too_large"
    two_pages = pdf_bytes([pdf_text(72, 700, 12, "one"), pdf_text(72, 700, 12, "two")])
    assert failure(two_pages, "long.pdf", ParseLimits(max_pages=1)) == "too_large"
    assert failure(pptx_bytes(), "long.pptx", ParseLimits(max_pages=1)) == "too_large"
    many = zip_bytes({f"f{i}.txt": b"text" for i in range(6)})
    assert failure(many, "many.zip", ParseLimits(max_archive_members=5)) == "too_large"


def test_zip_bomb() -> None:
    bomb = zip_bytes({"zeros.txt": bytes(20 * 1024 * 1024)})
    assert len(bomb) < 100_000
    assert failure(bomb, "bomb.zip", ParseLimits(max_archive_total_bytes=10 * 1024 * 1024)) == "too_large"
    nested = zip_bytes({"inner.zip": bomb})
    assert failure(nested, "nested.zip", ParseLimits(max_archive_total_bytes=10 * 1024 * 1024)) == "too_large"


@pytest.mark.parametrize("fmt", ["docx", "xlsx", "pptx"])
def test_office_bombs_are_refused_before_a_parser_reads_them(fmt: str) -> None:
    # 16 MiB of XML in under 100 KB: without the check python-docx took 0.9 GB and 20 s for 40 MiB of it.
    bomb = office_bomb(fmt)
    assert len(bomb) < 100_000
    started = time.monotonic()
    with pytest.raises(ParseFailure) as caught:
        parse_document(bomb, f"bomb.{fmt}")
    assert (caught.value.code, "decompression bomb" in caught.value.message) == ("too_large", True)
    assert time.monotonic() - started < 1.0
    assert parse_document(plain_document(fmt), f"plain.{fmt}").blocks  # the same document, unswollen, is read


@pytest.mark.parametrize("fmt", ["docx", "xlsx", "pptx", "odt", "epub"])
def test_every_zip_based_format_gets_the_archive_caps(fmt: str) -> None:
    # The inflated total and the part count are checked for every ZIP-based format, the same way as for ZIPs.
    odt = functools.partial(
        odf_bytes, "application/vnd.oasis.opendocument.text", "<office:text><text:p>Berth 7</text:p></office:text>"
    )
    makers: dict[str, Callable[[], bytes]] = {
        "docx": docx_bytes,
        "xlsx": xlsx_bytes,
        "pptx": pptx_bytes,
        "odt": odt,
        "epub": epub_bytes,
    }
    document = makers[fmt]()
    parts = len(zipfile.ZipFile(io.BytesIO(document)).infolist())
    assert failure(document, f"a.{fmt}", ParseLimits(max_document_parts=parts - 1)) == "too_large"
    inflated = sum(info.file_size for info in zipfile.ZipFile(io.BytesIO(document)).infolist())
    assert failure(document, f"a.{fmt}", ParseLimits(max_archive_total_bytes=inflated - 1)) == "too_large"
    assert parse_document(document, f"a.{fmt}", limits=ParseLimits(max_document_parts=parts)).blocks


def test_a_bomb_inside_a_zip_is_refused() -> None:
    bundle = zip_bytes({"bomb.docx": office_bomb("docx"), "notes.txt": b"Plain notes about berth 7."})
    doc = parse_document(bundle, "bundle.zip")
    assert {block.source for block in doc.blocks} == {"notes.txt"}


def test_zip_with_mixed_members() -> None:
    inner = zip_bytes({"deep/readme.md": b"# Deep\n\nNested archive text."})
    innermost = zip_bytes({"x.zip": zip_bytes({"y.txt": b"too deep to read"})})
    data = zip_bytes(
        {
            "docs/report.docx": docx_bytes(),
            "data/ships.xlsx": xlsx_bytes(),
            "notes.txt": b"Plain notes about berth 7.",
            "tool.exe": b"MZ\x90\x00" + bytes(100),
            "../../etc/passwd.txt": b"harmless name, nothing is written to disk",
            "__MACOSX/._notes.txt": b"\x00\x05\x16\x07",
            "inner.zip": inner,
            "level1.zip": innermost,
        }
    )
    doc = parse_document(data, "bundle.zip")
    sources = {b.source for b in doc.blocks}
    assert {"docs/report.docx", "data/ships.xlsx/Ships", "notes.txt", "inner.zip/deep/readme.md"} <= sources
    assert "../../etc/passwd.txt" in sources
    assert "too deep" not in document_text(doc)
    assert has_row(doc, "North", "700", "1.2M")


def test_messages_hide_server_paths() -> None:
    with pytest.raises(ParseFailure) as caught:
        parse_document(zip_bytes({"word/document.xml": b"<not xml"}), "bad.docx")
    assert os.sep + "work" not in caught.value.message and "Traceback" not in caught.value.message


def test_parallel_parsing_is_thread_safe() -> None:
    pdfs = [pdf_bytes([pdf_text(72, 700, 12, f"Document number {i} about ships.")] * 3) for i in range(8)]
    expected = [parse_document(data, "x.pdf") for data in pdfs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda data: parse_document(data, "x.pdf"), pdfs))
    assert results == expected


# --- the benchmark corpus: real documents from parsing projects' test suites --------------------------------


def _bench_files() -> list[Path]:
    if not BENCH.is_dir():
        return []
    return sorted(p for sub in ("docx", "xlsx", "pptx", "pdf", "icdar2013-eu") for p in (BENCH / sub).glob("*.*")
                  if p.suffix.lower() in (".docx", ".xlsx", ".xlsm", ".xls", ".pptx", ".pdf"))  # fmt: skip


requires_bench = pytest.mark.skipif(not BENCH.is_dir(), reason=f"benchmark documents absent: {BENCH}")


@functools.cache
def bench_parse(name: str) -> ParsedDocument | ParseFailure:
    path = next(p for p in _bench_files() if p.name == name)
    # OCR is exercised separately (scanned pages below); here it would only add minutes of CPU.
    try:
        return parse_document(path.read_bytes(), path.name, limits=NO_OCR)
    except ParseFailure as exc:
        return exc


def bench_doc(name: str) -> ParsedDocument:
    result = bench_parse(name)
    assert isinstance(result, ParsedDocument), result
    return result


@requires_bench
def test_every_benchmark_document_parses_or_fails_typed() -> None:
    files = _bench_files()
    assert len(files) >= 40
    failed = []
    for path in files:
        result = bench_parse(path.name)
        if isinstance(result, ParseFailure):
            failed.append((path.name, result.code))
            continue
        assert result.blocks and all(block.text.strip() for block in result.blocks), path.name
    # only the scanned PDF (no text layer) has nothing without OCR
    assert failed == [("unstructured-table-multi-row-column-cells.pdf", "empty")]


GOLD_ROWS: dict[str, list[tuple[str, ...]]] = {
    "docling-word_tables.docx": [
        ("Cell 1.0", "Merged Cell 1.1 1.2", "Merged Cell 1.1 1.2"),
        ("Cell 2.0", "Merged Cell 1.1 2.1", "Cell 2.2"),
        ("Cell 4.0", "Merged Cell 3.1 4.1", "Cell 4.2"),
    ],
    "docling-powerpoint_sample.pptx": [("R1", "True", "False", "False", "True", "True")],
    "docling-xlsx_01.xlsx": [("4", "2", "0"), ("5", "10", "15", "20")],
    "docling-tablecell.docx": [("Tab1", "Tab2", "Tab3"), ("D", "E", "F")],
}


def _gold_md_rows(name: str) -> list[tuple[str, ...]]:
    gold = BENCH / "gold" / f"{name}.groundtruth.md"
    rows = []
    for line in gold.read_text().splitlines():
        if line.startswith("| ") and not line.startswith("| -"):
            cells = tuple(c.strip() for c in line.strip()[1:-1].split(" | "))
            if sum(1 for c in cells if c) >= 2:
                rows.append(cells)
    return rows


@requires_bench
@pytest.mark.parametrize(
    "name",
    ["docling-word_tables.docx", "docling-powerpoint_sample.pptx", "docling-xlsx_01.xlsx", "docling-tablecell.docx"],
)
def test_tables_match_gold_rows(name: str) -> None:
    doc = bench_doc(name)
    for row in GOLD_ROWS[name]:
        assert has_row(doc, *row), row
    gold = _gold_md_rows(name)
    found = sum(1 for row in gold if has_row(doc, *[c for c in row if c]))
    assert gold and found / len(gold) >= 0.8, (found, len(gold))


@requires_bench
@pytest.mark.parametrize(
    ("name", "csv_name"),
    [
        ("tabula-schools.pdf", "tabula-schools.expected.csv"),
        ("tabula-frx_2012_disclosure.pdf", "tabula-frx_2012_disclosure.expected.csv"),
    ],
)
def test_pdf_tables_match_tabula_gold(name: str, csv_name: str) -> None:
    doc = bench_doc(name)
    with open(BENCH / "gold" / csv_name, newline="") as handle:
        gold = [[cell.strip() for cell in row if cell.strip()] for row in csv.reader(handle)]
    body = [row for row in gold if len(row) >= 3]
    found = sum(1 for row in body if has_row(doc, *row[:3]))
    assert found / len(body) >= 0.8, (found, len(body))


@requires_bench
def test_icdar_tables_rows_are_kept() -> None:
    """Cell pairs from the ICDAR-2013 gold structure appear in one Markdown row of our output."""
    total = found = 0
    for gold_path in sorted((BENCH / "icdar2013-eu").glob("*-str.xml")):
        pdf = gold_path.with_name(gold_path.name.replace("-str.xml", ".pdf"))
        if not pdf.exists():
            continue
        doc = bench_doc(pdf.name)
        for region in ElementTree.parse(gold_path).getroot().iter("region"):
            rows: dict[int, list[tuple[int, str]]] = {}
            for cell in region.iter("cell"):
                content = " ".join((cell.findtext("content") or "").split())
                if content:
                    column = int(cell.get("start-col", "0"))
                    rows.setdefault(int(cell.get("start-row", "0")), []).append((column, content))
            for cells in rows.values():
                if len(cells) >= 2:
                    total += 1
                    pair = [text for _, text in sorted(cells)[:2]]
                    found += has_row(doc, *pair)
    assert total > 200
    assert found / total >= 0.65, (found, total)  # 670 of 924 rows when written


@requires_bench
def test_markitdown_expected_substrings() -> None:
    vectors = json.loads((BENCH / "gold" / "markitdown-expected-substrings.json").read_text())["files"]
    for name, expected in vectors.items():
        if not name.endswith((".docx", ".xlsx", ".xls", ".pptx")):
            continue
        text = document_text(bench_doc(name))
        for needle in expected["must_include"]:
            needle = needle.lstrip("# ").strip()
            if needle.startswith(("data:image", "![", "<!--")):
                continue  # markitdown's own image placeholders
            assert needle in text, (name, needle)


@requires_bench
def test_scanned_benchmark_pdf_is_read_by_ocr() -> None:
    path = BENCH / "pdf" / "unstructured-table-multi-row-column-cells.pdf"
    doc = parse_document(path.read_bytes(), path.name)
    text = document_text(doc)
    assert {b.kind for b in doc.blocks} == {"image_text", "table"}
    for word in ("Disability", "Participants", "Blind", "Dexterity"):
        assert word in text
    # the scanned table keeps its rows and columns (the gold CSV beside it)
    assert has_row(doc, "Blind", "5", "1", "4", "34.5%, n=1", "1199 sec, n=1")
    assert has_row(doc, "Mobility", "3", "3", "0", "95.4%, n=3", "1416 sec, n=3")


def test_multi_page_tiff_frames_are_pages() -> None:
    buffer = io.BytesIO()
    first, second = text_image("FIRST PAGE"), text_image("SECOND PAGE")
    first.save(buffer, "TIFF", save_all=True, append_images=[second])
    doc = parse_document(buffer.getvalue(), "fax.tif")
    assert doc.page_count == 2
    assert [(b.page, b.text.upper()) for b in doc.blocks] == [(1, "FIRST PAGE"), (2, "SECOND PAGE")]
