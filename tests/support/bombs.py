"""Decompression bombs built from real office documents: one part of the ZIP swollen with repeated XML
elements, which deflate squeezes a thousandfold (the audit's 61 KB DOCX held 40 MiB of XML)."""

from __future__ import annotations

import io
import secrets
import zipfile

import docx
import openpyxl  # type: ignore[import-untyped]
import pptx

# format -> (the part to swell, the closing tag the elements go before, one element)
_SWELL: dict[str, tuple[str, bytes, bytes]] = {
    "docx": ("word/document.xml", b"<w:sectPr", b"<w:p><w:r><w:t>bomb</w:t></w:r></w:p>"),
    "xlsx": ("xl/worksheets/sheet1.xml", b"</sheetData>", b'<row><c t="inlineStr"><is><t>bomb</t></is></c></row>'),
    "pptx": ("ppt/slides/slide1.xml", b"</p:txBody>", b"<a:p><a:r><a:t>bomb</a:t></a:r></a:p>"),
}


def plain_document(fmt: str) -> bytes:
    """A small valid document of the format, with one line of text."""
    buffer = io.BytesIO()
    if fmt == "docx":
        document = docx.Document()
        document.add_paragraph("A harmless line.")
        document.save(buffer)
    elif fmt == "xlsx":
        workbook = openpyxl.Workbook()
        workbook.active.append(["A harmless line."])
        workbook.save(buffer)
    else:
        presentation = pptx.Presentation()
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.placeholders[1].text_frame.text = "A harmless line."
        presentation.save(buffer)
    return buffer.getvalue()


def swell(document: bytes, part: str, before: bytes, element: bytes, inflated_bytes: int, level: int = 9) -> bytes:
    """The document with `element` repeated before the first `before` of `part`, until the part holds about
    `inflated_bytes`."""
    source = zipfile.ZipFile(io.BytesIO(document))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == part:
                at = data.index(before)
                data = data[:at] + element * (inflated_bytes // len(element)) + data[at:]
            target.writestr(info.filename, data)
    return out.getvalue()


def office_bomb(fmt: str, inflated_bytes: int = 16 << 20) -> bytes:
    """A DOCX, XLSX or PPTX whose main part inflates to `inflated_bytes` of XML."""
    part, before, element = _SWELL[fmt]
    return swell(plain_document(fmt), part, before, element, inflated_bytes)


def big_docx(inflated_bytes: int) -> bytes:
    """A DOCX of `inflated_bytes` of XML that compresses only about eightfold (random words): no bomb by its
    ratio, but one paragraph object per 60 bytes for the parser to hold."""
    part, before, _ = _SWELL["docx"]
    count = inflated_bytes // 60
    words = secrets.token_hex(count * 4).encode()
    paragraphs = b"".join(b"<w:p><w:r><w:t>" + words[i * 8 : (i + 1) * 8] + b"</w:t></w:r></w:p>" for i in range(count))
    return swell(plain_document("docx"), part, before, paragraphs, len(paragraphs), level=1)
