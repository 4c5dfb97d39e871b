"""HTML (and the XHTML inside EPUB and e-mail) to blocks: headings, paragraphs, lists, tables, code."""

from __future__ import annotations

import warnings

from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning
from bs4.element import CData, Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag

from .structure import Builder, clean_line

_SKIP = {
    "script", "style", "noscript", "template", "svg", "math", "head", "iframe", "object", "canvas", "button",
    "select", "input", "textarea", "option",
}  # fmt: skip
_BLOCK = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "nav", "li", "dd", "dt", "dl",
    "blockquote", "figure", "figcaption", "address", "form", "fieldset", "details", "summary", "center", "body",
    "html", "hr", "caption", "legend", "tr", "td", "th",
}  # fmt: skip
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BR = "\u2028"
_MAX_SPAN = 200


def _span(cell: Tag, name: str) -> int:
    try:
        return min(max(int(str(cell.get(name) or 1)), 1), _MAX_SPAN)
    except ValueError:
        return 1


def table_rows(table: Tag) -> list[list[str]]:
    """The cells of an HTML table as a grid; a cell spanning rows or columns is repeated in each."""
    rows: list[list[str]] = []
    pending: dict[tuple[int, int], str] = {}
    trs = [tr for tr in table.find_all("tr") if isinstance(tr, Tag) and tr.find_parent("table") is table]
    for r, tr in enumerate(trs):
        row: list[str] = []
        for cell in tr.find_all(["td", "th"], recursive=False):
            if not isinstance(cell, Tag):
                continue
            while (r, len(row)) in pending:
                row.append(pending.pop((r, len(row))))
            text = clean_line(cell.get_text(" "))
            rowspan = _span(cell, "rowspan")
            for _ in range(_span(cell, "colspan")):
                for extra in range(1, rowspan):
                    pending[(r + extra, len(row))] = text
                row.append(text)
        while (r, len(row)) in pending:
            row.append(pending.pop((r, len(row))))
        rows.append(row)
    return rows


class _Walker:
    def __init__(self, builder: Builder) -> None:
        self.builder = builder
        self.inline: list[str] = []

    def flush(self) -> None:
        lines = [clean_line(part) for part in "".join(self.inline).split(_BR)]
        self.inline.clear()
        text = "\n".join(line for line in lines if line)
        if text:
            self.builder.add("paragraph", text)

    def list_items(self, node: Tag, depth: int, ordered: bool, out: list[tuple[int, str, bool]]) -> None:
        for li in node.find_all("li", recursive=False):
            if not isinstance(li, Tag):
                continue
            parts: list[str] = []
            nested: list[Tag] = []
            for child in li.children:
                if isinstance(child, Tag) and child.name in ("ul", "ol"):
                    nested.append(child)
                elif isinstance(child, Tag):
                    if child.name not in _SKIP:
                        parts.append(child.get_text(" "))
                elif isinstance(child, NavigableString) and not isinstance(child, Comment):
                    parts.append(str(child))
            out.append((depth, " ".join(parts), ordered))
            for sub in nested:
                self.list_items(sub, depth + 1, sub.name == "ol", out)

    def walk(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, (Comment, Doctype, Declaration, ProcessingInstruction, CData)):
                continue
            if isinstance(child, NavigableString):
                self.inline.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name
            if name in _SKIP:
                continue
            if name in _HEADINGS:
                self.flush()
                self.builder.heading(child.get_text(" "), _HEADINGS[name])
            elif name in ("ul", "ol"):
                self.flush()
                items: list[tuple[int, str, bool]] = []
                self.list_items(child, 0, name == "ol", items)
                self.builder.list_items(items)
            elif name == "table":
                self.flush()
                self.builder.table(table_rows(child))
            elif name == "pre":
                self.flush()
                self.builder.add("code", child.get_text(), raw=True)
            elif name == "br":
                self.inline.append(_BR)
            elif name == "img":
                alt = clean_line(str(child.get("alt") or ""))
                if alt:
                    self.inline.append(f" {alt} ")
            elif name in _BLOCK:
                self.flush()
                self.walk(child)
                self.flush()
            else:
                self.walk(child)


def parse_html(data: bytes | str, builder: Builder) -> str | None:
    """Add the blocks of an HTML document to `builder`; return its <title>."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(data, "lxml")
    title_tag = soup.find("title")
    title = clean_line(title_tag.get_text(" ")) if isinstance(title_tag, Tag) else ""
    walker = _Walker(builder)
    walker.walk(soup)
    walker.flush()
    return title or None
