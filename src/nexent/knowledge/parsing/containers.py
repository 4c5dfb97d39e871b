"""ZIP-based documents read member by member: OpenDocument (ODT, ODS, ODP) and EPUB."""

from __future__ import annotations

import io
import posixpath
import zipfile
from urllib.parse import unquote
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET  # type: ignore[import-untyped]

from .base import ParseFailure, ParseLimits
from .markup import parse_html
from .structure import Builder, clean_line

_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_PRESENTATION = "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"
_DC = "http://purl.org/dc/elements/1.1/"
_MAX_REPEAT = 1000


def open_zip(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ParseFailure("corrupt_file", "The file is damaged (its ZIP structure cannot be read).") from exc


INFLATE_RATIO_GRACE_BYTES = 1 << 20  # members inflating to less are not checked for their ratio


def check_archive(data: bytes, limits: ParseLimits, fmt: str) -> None:
    """Refuse a ZIP-based file (any format) before a parser reads it: too many members, more inflated bytes than
    `max_archive_total_bytes` all together, or a member expanding more than `max_inflate_ratio` times. The
    sizes are the central directory's; Python's zipfile (which every parser here reads ZIPs with) stops a member at
    its declared size, so a lying header cannot make a parser read more."""
    with open_zip(data) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
    # A plain ZIP's files are counted by the archive reader (max_archive_members, macOS and hidden files left out).
    if fmt != "zip" and len(members) > limits.max_document_parts:
        raise ParseFailure("too_large", f"The file holds more than {limits.max_document_parts} parts.")
    if sum(info.file_size for info in members) > limits.max_archive_total_bytes:
        raise ParseFailure("too_large", "The file expands to more data than allowed.")
    for info in members:
        if info.file_size > INFLATE_RATIO_GRACE_BYTES and info.file_size > limits.max_inflate_ratio * max(
            info.compress_size, 1
        ):
            raise ParseFailure(
                "too_large",
                f"The file expands {info.file_size // max(info.compress_size, 1)} times over (a decompression bomb).",
            )


def read_member(archive: zipfile.ZipFile, name: str, limits: ParseLimits) -> bytes:
    """A member's bytes, refusing members that inflate beyond the archive limit (the header may lie)."""
    try:
        info = archive.getinfo(name)
    except KeyError as exc:
        raise ParseFailure("corrupt_file", "The file is damaged (a part is missing).") from exc
    cap = limits.max_archive_total_bytes
    if info.file_size > cap:
        raise ParseFailure("too_large", "The file expands to more data than allowed.")
    with archive.open(info) as handle:
        content = handle.read(cap + 1)
    if len(content) > cap:
        raise ParseFailure("too_large", "The file expands to more data than allowed.")
    return content


def _xml(content: bytes) -> Element:
    try:
        root: Element = SafeET.fromstring(content)
    except SafeET.ParseError as exc:
        raise ParseFailure("corrupt_file", "The document's XML is damaged.") from exc
    return root


# --- OpenDocument -------------------------------------------------------------------------------------------


def _q(namespace: str, tag: str) -> str:
    return f"{{{namespace}}}{tag}"


def _int(element: Element, namespace: str, name: str, default: int = 1) -> int:
    try:
        return max(int(element.get(_q(namespace, name), default)), 0)
    except ValueError:
        return default


class _Odf:
    def __init__(self, builder: Builder) -> None:
        self.builder = builder
        self.page: int | None = None

    def text(self, element: Element) -> str:
        parts: list[str] = [element.text or ""]
        for child in element:
            tag = child.tag
            if tag == _q(_TEXT, "s"):
                parts.append(" " * min(_int(child, _TEXT, "c"), 100))
            elif tag == _q(_TEXT, "tab"):
                parts.append("\t")
            elif tag == _q(_TEXT, "line-break"):
                parts.append("\n")
            elif tag in (_q(_OFFICE, "annotation"), _q(_TEXT, "note")):
                pass
            else:
                parts.append(self.text(child))
            parts.append(child.tail or "")
        return "".join(parts)

    def list_items(self, element: Element, depth: int, out: list[tuple[int, str, bool]]) -> None:
        for item in element:
            if item.tag not in (_q(_TEXT, "list-item"), _q(_TEXT, "list-header")):
                continue
            for child in item:
                if child.tag == _q(_TEXT, "list"):
                    self.list_items(child, depth + 1, out)
                elif child.tag in (_q(_TEXT, "p"), _q(_TEXT, "h")):
                    out.append((depth, self.text(child), False))

    def table(self, element: Element) -> list[list[str]]:
        rows: list[list[str]] = []
        spans: dict[tuple[int, int], str] = {}
        for row_element in element.iter(_q(_TABLE, "table-row")):
            repeat = min(_int(row_element, _TABLE, "number-rows-repeated"), _MAX_REPEAT)
            row: list[str] = []
            for cell in row_element:
                if cell.tag not in (_q(_TABLE, "table-cell"), _q(_TABLE, "covered-table-cell")):
                    continue
                text = clean_line(" ".join(self.text(p) for p in cell.iter(_q(_TEXT, "p"))))
                count = _int(cell, _TABLE, "number-columns-repeated")
                count = min(count, _MAX_REPEAT) if text else min(count, 64)
                for _ in range(count):
                    key = (len(rows), len(row))
                    if cell.tag == _q(_TABLE, "covered-table-cell"):
                        row.append(spans.get(key, text))
                        continue
                    columns = min(_int(cell, _TABLE, "number-columns-spanned"), 64)
                    span_rows = min(_int(cell, _TABLE, "number-rows-spanned"), _MAX_REPEAT)
                    for r in range(span_rows):
                        for c in range(columns):
                            spans[(key[0] + r, key[1] + c)] = text
                    row.append(text)
            if not any(row):
                repeat = 1
            for _ in range(repeat):
                rows.append(list(row))
        return rows

    def walk(self, element: Element) -> None:
        items: list[tuple[int, str, bool]]
        for child in element:
            tag = child.tag
            if tag == _q(_TEXT, "h"):
                self.builder.heading(self.text(child), _int(child, _TEXT, "outline-level"), self.page)
            elif tag == _q(_TEXT, "p"):
                self.builder.add("paragraph", self.text(child), self.page)
            elif tag == _q(_TEXT, "list"):
                items = []
                self.list_items(child, 0, items)
                self.builder.list_items(items, self.page)
            elif tag == _q(_TABLE, "table"):
                self.builder.table(self.table(child), self.page)
            elif tag == _q(_DRAW, "frame") and child.get(_q(_PRESENTATION, "class")) == "title":
                self.builder.heading(self.text(child), 1, self.page)
            elif tag in (_q(_OFFICE, "annotation"), _q(_TEXT, "tracked-changes"), _q(_OFFICE, "forms")):
                continue
            else:
                self.walk(child)


def parse_odf(data: bytes, builder: Builder, limits: ParseLimits, fmt: str) -> tuple[str | None, int | None]:
    archive = open_zip(data)
    with archive:
        names = set(archive.namelist())
        if "META-INF/manifest.xml" in names:
            manifest = read_member(archive, "META-INF/manifest.xml", limits)
            if b"encryption-data" in manifest:
                raise ParseFailure("encrypted", "The document is protected with a password.")
        if "content.xml" not in names:
            raise ParseFailure("corrupt_file", "The document is damaged (content.xml is missing).")
        root = _xml(read_member(archive, "content.xml", limits))
        title = None
        if "meta.xml" in names:
            found = _xml(read_member(archive, "meta.xml", limits)).find(f".//{{{_DC}}}title")
            title = clean_line(found.text or "") if found is not None else None
    body = root.find(_q(_OFFICE, "body"))
    if body is None:
        raise ParseFailure("corrupt_file", "The document is damaged (it has no body).")
    walker = _Odf(builder)
    pages: int | None = None
    if fmt == "ods":
        base = builder.source
        for sheet in body.iter(_q(_TABLE, "table")):
            name = sheet.get(_q(_TABLE, "name")) or "Sheet"
            builder.source = f"{base}/{name}" if base else name
            builder.reset_headings()
            builder.heading(name, 1)
            builder.table(walker.table(sheet))
        builder.source = base
    elif fmt == "odp":
        pages = 0
        for page in body.iter(_q(_DRAW, "page")):
            pages += 1
            if pages > limits.max_pages:
                raise ParseFailure("too_large", f"The presentation has more than {limits.max_pages} slides.")
            walker.page = pages
            builder.reset_headings()
            walker.walk(page)
    else:
        walker.walk(body)
    return title or None, pages


# --- EPUB ---------------------------------------------------------------------------------------------------

_FONT_OBFUSCATION = ("http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC")


def parse_epub(data: bytes, builder: Builder, limits: ParseLimits) -> str | None:
    archive = open_zip(data)
    with archive:
        names = set(archive.namelist())
        if "META-INF/encryption.xml" in names:
            encryption = _xml(read_member(archive, "META-INF/encryption.xml", limits))
            for method in encryption.iter():
                if method.tag.endswith("EncryptionMethod") and method.get("Algorithm") not in _FONT_OBFUSCATION:
                    raise ParseFailure("encrypted", "The e-book is protected (DRM).")
        if "META-INF/container.xml" not in names:
            raise ParseFailure("corrupt_file", "The e-book is damaged (META-INF/container.xml is missing).")
        container = _xml(read_member(archive, "META-INF/container.xml", limits))
        rootfile = next((e.get("full-path") for e in container.iter() if e.tag.endswith("rootfile")), None)
        if not rootfile or rootfile not in names:
            raise ParseFailure("corrupt_file", "The e-book is damaged (its package file is missing).")
        package = _xml(read_member(archive, rootfile, limits))
        base = posixpath.dirname(rootfile)
        manifest = {
            item.get("id"): posixpath.normpath(posixpath.join(base, unquote(item.get("href") or "")))
            for item in package.iter()
            if item.tag.endswith("}item") and item.get("href")
        }
        title_element = next((e for e in package.iter() if e.tag == f"{{{_DC}}}title"), None)
        title = clean_line(title_element.text or "") if title_element is not None else ""
        spine = [e.get("idref") for e in package.iter() if e.tag.endswith("}itemref")]
        for idref in spine:
            path = manifest.get(idref)
            if path and path in names:
                parse_html(read_member(archive, path, limits), builder)
    return title or None
