"""Office Open XML documents: DOCX (python-docx), PPTX (python-pptx), XLSX (openpyxl) and legacy XLS (xlrd)."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from typing import Any

import openpyxl  # type: ignore[import-untyped]
import xlrd  # type: ignore[import-untyped]
from docx import Document
from pptx import Presentation
from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER

from .base import ParseFailure, ParseLimits
from .structure import Builder, clean_line

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_M = "http://schemas.openxmlformats.org/officeDocument/2006/math"
_MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
_A = "http://schemas.openxmlformats.org/drawingml/2006/main"


def _w(tag: str) -> str:
    return f"{{{_W}}}{tag}"


def cell_value(value: object) -> str:
    """A spreadsheet value as the text a reader expects (integral floats without `.0`, dates in ISO form)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return format(value, ".15g")
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def split_at_blank_rows(rows: list[list[str]]) -> list[list[list[str]]]:
    """Tables of a sheet: runs of rows separated by fully empty rows."""
    tables: list[list[list[str]]] = [[]]
    for row in rows:
        if any(cell.strip() for cell in row):
            tables[-1].append(row)
        elif tables[-1]:
            tables.append([])
    return [table for table in tables if table]


# --- DOCX ---------------------------------------------------------------------------------------------------


class _Docx:
    def __init__(self, data: bytes, builder: Builder) -> None:
        self.document = Document(io.BytesIO(data))
        self.builder = builder
        self.style_levels: dict[str, int] = {}
        self.style_lists: set[str] = set()
        for style in self.document.styles:
            style_id = style.style_id
            name = (style.name or "").lower()
            level = self._style_outline(style.element)
            match = re.match(r"^(heading|überschrift|titre|titolo|título|kop)\s*(\d)$", name)
            if match:
                level = int(match.group(2))
            elif name == "title":
                level = 1
            if level:
                self.style_levels[style_id] = level
            if name.startswith("list"):
                self.style_lists.add(style_id)
        self.ordered_nums = self._ordered_numbering()

    @staticmethod
    def _style_outline(element: Any) -> int:
        found = element.find(f"{_w('pPr')}/{_w('outlineLvl')}")
        if found is None:
            return 0
        try:
            value = int(found.get(_w("val")))
        except (TypeError, ValueError):
            return 0
        return value + 1 if 0 <= value < 6 else 0

    def _ordered_numbering(self) -> set[tuple[str, str]]:
        ordered: set[tuple[str, str]] = set()
        try:
            numbering = self.document.part.numbering_part.element
        # python-docx raises NotImplementedError for a document without a numbering part.
        except (KeyError, NotImplementedError, AttributeError):
            return ordered
        abstract: dict[str, dict[str, str]] = {}
        for node in numbering.findall(_w("abstractNum")):
            levels = {}
            for lvl in node.findall(_w("lvl")):
                fmt = lvl.find(_w("numFmt"))
                levels[lvl.get(_w("ilvl")) or "0"] = fmt.get(_w("val")) if fmt is not None else "bullet"
            abstract[node.get(_w("abstractNumId")) or ""] = levels
        for num in numbering.findall(_w("num")):
            ref = num.find(_w("abstractNumId"))
            levels = abstract.get(ref.get(_w("val")) if ref is not None else "", {})
            for ilvl, fmt in levels.items():
                if fmt not in ("bullet", "none"):
                    ordered.add((num.get(_w("numId")) or "", ilvl))
        return ordered

    def text_of(self, element: Any) -> str:
        parts: list[str] = []
        self._collect(element, parts)
        return "".join(parts)

    def _collect(self, element: Any, parts: list[str]) -> None:
        for child in element:
            tag = child.tag
            if not isinstance(tag, str):
                continue
            if tag == f"{{{_MC}}}Fallback" or tag == _w("delText"):
                continue
            if tag in (_w("t"), f"{{{_M}}}t"):
                parts.append(child.text or "")
            elif tag == _w("tab"):
                parts.append("\t")
            elif tag in (_w("br"), _w("cr")):
                parts.append("\n")
            elif tag == _w("p") and parts:
                parts.append("\n")
                self._collect(child, parts)
            else:
                self._collect(child, parts)

    def run(self) -> None:
        self._emit(self.document.element.body)

    def _emit(self, parent: Any) -> None:
        items: list[tuple[int, str, bool]] = []
        for element in self._body_elements(parent):
            if element.tag == _w("p"):
                kind, level, item = self._paragraph(element)
                if kind == "list" and item is not None:
                    items.append(item)
                    continue
                if items:
                    self.builder.list_items(items)
                    items = []
                text = self.text_of(element)
                if kind == "heading":
                    self.builder.heading(text, level)
                else:
                    self.builder.add("paragraph", text)
            elif element.tag == _w("tbl"):
                if items:
                    self.builder.list_items(items)
                    items = []
                cells = [tc for tr in element.findall(_w("tr")) for tc in tr.findall(_w("tc"))]
                if len(cells) == 1 and cells[0].find(_w("tbl")) is not None:
                    self._emit(cells[0])  # a one-cell table used as a frame around other tables
                else:
                    self.builder.table(self._table(element))
        if items:
            self.builder.list_items(items)

    def _body_elements(self, parent: Any) -> Iterator[Any]:
        for child in parent:
            if child.tag in (_w("p"), _w("tbl")):
                yield child
            elif child.tag in (_w("sdt"), _w("sdtContent"), _w("customXml"), _w("ins"), _w("tc")):
                yield from self._body_elements(child)

    def _paragraph(self, p: Any) -> tuple[str, int, tuple[int, str, bool] | None]:
        ppr = p.find(_w("pPr"))
        style_id = ""
        if ppr is not None:
            style = ppr.find(_w("pStyle"))
            style_id = style.get(_w("val")) if style is not None else ""
            level = self._style_outline(p)
            if level:
                return "heading", level, None
        if style_id in self.style_levels:
            return "heading", self.style_levels[style_id], None
        numpr = ppr.find(f"{_w('numPr')}") if ppr is not None else None
        if numpr is not None or style_id in self.style_lists:
            ilvl_node = numpr.find(_w("ilvl")) if numpr is not None else None
            num_node = numpr.find(_w("numId")) if numpr is not None else None
            ilvl = ilvl_node.get(_w("val")) if ilvl_node is not None else "0"
            num_id = num_node.get(_w("val")) if num_node is not None else ""
            if num_id == "0":  # numbering explicitly removed
                return "paragraph", 0, None
            depth = int(ilvl) if (ilvl or "").isdigit() else 0
            text = self.text_of(p)
            if text.strip():
                return "list", 0, (depth, text, (num_id, ilvl) in self.ordered_nums)
        return "paragraph", 0, None

    def _table(self, tbl: Any) -> list[list[str]]:
        rows: list[list[str]] = []
        above: dict[int, str] = {}
        for tr in tbl.iter(_w("tr")):
            if tr.getparent() is not tbl:
                continue
            row: list[str] = []
            grid_before = tr.find(f"{_w('trPr')}/{_w('gridBefore')}")
            if grid_before is not None and (grid_before.get(_w("val")) or "").isdigit():
                row.extend([""] * int(grid_before.get(_w("val"))))
            for tc in tr.iter(_w("tc")):
                if tc.getparent() is not tr and tc.getparent().getparent() is not tr:
                    continue
                tcpr = tc.find(_w("tcPr"))
                span = 1
                merge = None
                if tcpr is not None:
                    span_node = tcpr.find(_w("gridSpan"))
                    if span_node is not None and (span_node.get(_w("val")) or "").isdigit():
                        span = max(1, min(int(span_node.get(_w("val"))), 64))
                    merge_node = tcpr.find(_w("vMerge"))
                    if merge_node is not None:
                        merge = merge_node.get(_w("val")) or "continue"
                text = clean_line(self.text_of(tc))
                column = len(row)
                if merge == "continue":
                    text = above.get(column, text)
                for offset in range(span):
                    above[column + offset] = text
                    row.append(text)
            rows.append(row)
        return rows


def parse_docx(data: bytes, builder: Builder) -> str | None:
    parser = _Docx(data, builder)
    parser.run()
    title = parser.document.core_properties.title
    return clean_line(title) if title else None


# --- PPTX ---------------------------------------------------------------------------------------------------

_BODY_PLACEHOLDERS = {PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT, PP_PLACEHOLDER.VERTICAL_BODY}
_TITLE_PLACEHOLDERS = {PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE, PP_PLACEHOLDER.VERTICAL_TITLE}


def _position(shape: Any) -> tuple[int, int]:
    return (shape.top or 0, shape.left or 0)


class _Pptx:
    def __init__(self, builder: Builder) -> None:
        self.builder = builder

    def shape(self, shape: Any, page: int) -> None:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            for child in sorted(shape.shapes, key=_position):
                self.shape(child, page)
            return
        if getattr(shape, "has_table", False) and shape.has_table:
            self.builder.table(self._table(shape.table), page)
            return
        if getattr(shape, "has_chart", False) and shape.has_chart:
            self._chart(shape.chart, page)
            return
        if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            self._text_frame(shape, page)
        elif shape.shape_type == MSO_SHAPE_TYPE.PICTURE:
            description = shape._element.xpath("./p:nvPicPr/p:cNvPr/@descr")
            if description:
                self.builder.add("paragraph", str(description[0]), page)  # alt text, often a caption

    def _text_frame(self, shape: Any, page: int) -> None:
        placeholder_type = None
        if shape.is_placeholder:
            try:
                placeholder_type = shape.placeholder_format.type
            except ValueError:
                placeholder_type = None
        if placeholder_type in _TITLE_PLACEHOLDERS:
            self.builder.add("paragraph", shape.text_frame.text, page)
            return
        inherited_bullets = placeholder_type in _BODY_PLACEHOLDERS
        lines: list[str] = []
        items: list[tuple[int, str, bool]] = []
        for paragraph in shape.text_frame.paragraphs:
            text = paragraph.text
            if not text.strip():
                continue
            ppr = paragraph._p.pPr
            bullet, ordered = inherited_bullets, False
            if ppr is not None:
                if ppr.find(f"{{{_A}}}buAutoNum") is not None:
                    bullet = ordered = True
                elif ppr.find(f"{{{_A}}}buChar") is not None or ppr.find(f"{{{_A}}}buBlip") is not None:
                    bullet = True
                elif ppr.find(f"{{{_A}}}buNone") is not None:
                    bullet = False
            if bullet:
                if lines:
                    self.builder.add("paragraph", "\n".join(lines), page)
                    lines = []
                items.append((paragraph.level, text, ordered))
            else:
                if items:
                    self.builder.list_items(items, page)
                    items = []
                lines.append(text)
        if lines:
            self.builder.add("paragraph", "\n".join(lines), page)
        if items:
            self.builder.list_items(items, page)

    @staticmethod
    def _table(table: Any) -> list[list[str]]:
        grid = [[clean_line(cell.text) for cell in row.cells] for row in table.rows]
        for r, row in enumerate(table.rows):
            for c, cell in enumerate(row.cells):
                if cell.is_merge_origin:
                    for rr in range(r, min(r + cell.span_height, len(grid))):
                        for cc in range(c, min(c + cell.span_width, len(grid[rr]))):
                            grid[rr][cc] = grid[r][c]
        return grid

    def _chart(self, chart: Any, page: int) -> None:
        try:
            if chart.has_title and chart.chart_title.has_text_frame:
                self.builder.add("paragraph", chart.chart_title.text_frame.text, page)
            plot = chart.plots[0]
            categories = [cell_value(c) for c in plot.categories]
            series = list(plot.series)
            rows: list[list[str]] = [["", *[clean_line(s.name or "") for s in series]]]
            for i, category in enumerate(categories):
                rows.append([category, *[cell_value(s.values[i]) if i < len(s.values) else "" for s in series]])
        except (IndexError, KeyError, ValueError, AttributeError, TypeError):
            return  # a chart without readable data is skipped, not an error
        self.builder.table(rows, page)


def parse_pptx(data: bytes, builder: Builder, limits: ParseLimits) -> tuple[str | None, int]:
    presentation = Presentation(io.BytesIO(data))
    slides = list(presentation.slides)
    if len(slides) > limits.max_pages:
        raise ParseFailure("too_large", f"The presentation has more than {limits.max_pages} slides.")
    parser = _Pptx(builder)
    for number, slide in enumerate(slides, start=1):
        builder.reset_headings()
        title_shape = slide.shapes.title
        if title_shape is not None and title_shape.has_text_frame and title_shape.text_frame.text.strip():
            builder.heading(title_shape.text_frame.text, 1, number)
        for shape in sorted(slide.shapes, key=_position):
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            parser.shape(shape, number)
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                builder.add("paragraph", "Notes: " + notes.text, number)
    title = presentation.core_properties.title
    return (clean_line(title) if title else None), len(slides)


# --- XLSX and XLS -------------------------------------------------------------------------------------------

_READ_ONLY_ABOVE = 8 * 1024 * 1024  # larger workbooks stream their rows (merged cells are then not filled)


def _add_sheet(builder: Builder, name: str, rows: list[list[str]]) -> None:
    tables = split_at_blank_rows(rows)
    if not tables:
        return
    builder.source = name
    builder.reset_headings()
    builder.heading(name, 1)
    for table in tables:
        builder.table(table)


def parse_xlsx(data: bytes, builder: Builder) -> str | None:
    read_only = len(data) > _READ_ONLY_ABOVE
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=read_only, data_only=True)
    base_source = builder.source
    try:
        for sheet in workbook.worksheets:
            rows = [[cell_value(v) for v in row] for row in sheet.iter_rows(values_only=True)]
            if not read_only:
                offset_row, offset_col = sheet.min_row, sheet.min_column
                for merged in sheet.merged_cells.ranges:
                    value = cell_value(sheet.cell(merged.min_row, merged.min_col).value)
                    for r in range(merged.min_row, merged.max_row + 1):
                        for c in range(merged.min_col, merged.max_col + 1):
                            rr, cc = r - offset_row, c - offset_col
                            if 0 <= rr < len(rows) and 0 <= cc < len(rows[rr]):
                                rows[rr][cc] = value
            name = f"{base_source}/{sheet.title}" if base_source else sheet.title
            _add_sheet(builder, name, rows)
        title = workbook.properties.title
    finally:
        workbook.close()
    builder.source = base_source
    return clean_line(title) if title else None


def parse_xls(data: bytes, builder: Builder) -> None:
    try:
        book = xlrd.open_workbook(file_contents=data, formatting_info=True, on_demand=True)
    except xlrd.XLRDError as exc:
        if "encrypt" in str(exc).lower():
            raise ParseFailure("encrypted", "The workbook is protected with a password.") from exc
        raise
    base_source = builder.source
    try:
        for index in range(book.nsheets):
            sheet = book.sheet_by_index(index)
            rows: list[list[str]] = []
            for r in range(sheet.nrows):
                row = []
                for c in range(sheet.ncols):
                    cell = sheet.cell(r, c)
                    if cell.ctype == xlrd.XL_CELL_DATE:
                        try:
                            row.append(cell_value(xlrd.xldate_as_datetime(cell.value, book.datemode)))
                        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
                            row.append(cell_value(cell.value))
                    elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                        row.append(cell_value(bool(cell.value)))
                    elif cell.ctype in (xlrd.XL_CELL_ERROR, xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                        row.append("")
                    else:
                        row.append(cell_value(cell.value))
                rows.append(row)
            for r0, r1, c0, c1 in sheet.merged_cells:
                for r in range(r0, min(r1, len(rows))):
                    for c in range(c0, min(c1, len(rows[r]))):
                        rows[r][c] = rows[r0][c0]
            name = f"{base_source}/{sheet.name}" if base_source else sheet.name
            _add_sheet(builder, name, rows)
            book.unload_sheet(index)
    finally:
        book.release_resources()
    builder.source = base_source
