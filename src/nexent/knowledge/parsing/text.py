"""Plain-text formats: TXT, Markdown, CSV, JSON, JSONL, XML and RTF."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Callable
from typing import Any, cast
from xml.etree.ElementTree import Element

import charset_normalizer
from defusedxml import ElementTree as SafeET  # type: ignore[import-untyped]
from striprtf.striprtf import rtf_to_text

from .base import ParseFailure
from .structure import Builder, clean_line

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _utf16_without_bom(data: bytes) -> str | None:
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    if odd > 0.4 * half and even < 0.05 * half:
        return "utf-16-le"
    if even > 0.4 * half and odd < 0.05 * half:
        return "utf-16-be"
    return None


def decode_text(data: bytes) -> str | None:
    """Decode text bytes (BOM, UTF-8, UTF-16, else the charset-normalizer guess); None when it is binary."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    utf16 = _utf16_without_bom(data)
    if utf16:
        return data.decode(utf16, errors="replace")
    if b"\x00" in data[:8192]:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        best = charset_normalizer.from_bytes(data[: 256 * 1024]).best()
        encoding = best.encoding if best is not None else "cp1252"
        try:
            text = data.decode(encoding, errors="replace")
        except LookupError:
            text = data.decode("cp1252", errors="replace")
    sample = text[:8192]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f\v\x1b")
    if sample and controls > 0.05 * len(sample):
        return None
    return text


def require_text(data: bytes) -> str:
    text = decode_text(data)
    if text is None:
        raise ParseFailure("corrupt_file", "The file is not readable text.")
    return text


def parse_txt(data: bytes, builder: Builder) -> None:
    for paragraph in re.split(r"\n\s*\n", require_text(data).replace("\r\n", "\n").replace("\r", "\n")):
        builder.add("paragraph", paragraph)


# --- Markdown -----------------------------------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST = re.compile(r"^(\s*)([-*+]|\d{1,9}[.)])[ \t]+(.*)$")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")


def _split_row(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [cell.replace("\\|", "|").strip() for cell in re.split(r"(?<!\\)\|", line)]


def parse_markdown(data: bytes, builder: Builder) -> None:
    lines = require_text(data).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[0].strip() == "---":  # YAML front matter
        for end in range(1, min(len(lines), 200)):
            if lines[end].strip() in ("---", "..."):
                lines = lines[end + 1 :]
                break
    paragraph: list[str] = []
    items: list[tuple[int, str, bool]] = []

    def flush() -> None:
        if paragraph:
            builder.add("paragraph", "\n".join(paragraph))
            paragraph.clear()
        if items:
            builder.list_items(list(items))
            items.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush()
            marker = fence.group(1)
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(marker):
                body.append(lines[i])
                i += 1
            builder.add("code", "\n".join(body), raw=True)
            i += 1
            continue
        atx = _ATX.match(line)
        if atx:
            flush()
            builder.heading(atx.group(2) or "", len(atx.group(1)))
            i += 1
            continue
        if paragraph and not items and _SETEXT.match(line) and line.strip():
            text = "\n".join(paragraph)
            paragraph.clear()
            builder.heading(text, 1 if line.strip().startswith("=") else 2)
            i += 1
            continue
        if "|" in line and i + 1 < len(lines) and _TABLE_SEP.match(lines[i + 1]) and "-" in lines[i + 1]:
            flush()
            rows = [_split_row(line)]
            i += 2
            while i < len(lines) and "|" in lines[i] and lines[i].strip():
                rows.append(_split_row(lines[i]))
                i += 1
            builder.table(rows)
            continue
        if not line.strip():
            flush()
            i += 1
            continue
        item = _LIST.match(line)
        if item and (items or not paragraph):
            if paragraph:
                flush()
            depth = len(item.group(1).expandtabs(4)) // 2
            items.append((depth, item.group(3), item.group(2)[0].isdigit()))
            i += 1
            continue
        if items and line.startswith((" ", "\t")):  # continuation of a list item
            depth, text, ordered = items[-1]
            items[-1] = (depth, text + " " + line.strip(), ordered)
            i += 1
            continue
        if items:
            flush()
        paragraph.append(re.sub(r"^\s{0,3}>\s?", "", line))
        i += 1
    flush()


# --- CSV ----------------------------------------------------------------------------------------------------


def parse_csv(data: bytes, builder: Builder, filename: str) -> None:
    text = require_text(data)
    sample = text[: 64 * 1024]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel_tab if filename.lower().endswith(".tsv") else csv.excel
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), dialect))
    except csv.Error as exc:
        raise ParseFailure("corrupt_file", "The CSV file could not be read.") from exc
    builder.table(rows)


# --- JSON and JSONL -----------------------------------------------------------------------------------------


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def parse_json(data: bytes, builder: Builder) -> None:
    try:
        value = json.loads(require_text(data))
    except (ValueError, RecursionError) as exc:
        raise ParseFailure("corrupt_file", "The JSON file is not valid JSON.") from exc
    if isinstance(value, dict):
        for key, item in value.items():
            builder.add("code", f"{json.dumps(key, ensure_ascii=False)}: {_pretty(item)}", raw=True)
    elif isinstance(value, list):
        for item in value:
            builder.add("code", _pretty(item), raw=True)
    else:
        builder.add("code", _pretty(value), raw=True)


def parse_jsonl(data: bytes, builder: Builder) -> None:
    valid = invalid = 0
    for line in require_text(data).splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            invalid += 1
            continue
        valid += 1
        builder.add("code", _pretty(value), raw=True)
    if invalid and not valid:
        raise ParseFailure("corrupt_file", "The JSON Lines file has no valid line.")


# --- XML ----------------------------------------------------------------------------------------------------


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _xml_lines(element: Element, path: str, out: list[str]) -> None:
    name = f"{path}/{_local(element.tag)}" if path else _local(element.tag)
    attrs = " ".join(f'{_local(k)}="{clean_line(v)}"' for k, v in element.attrib.items())
    text = clean_line(element.text or "")
    label = f"{name} [{attrs}]" if attrs else name
    if text:
        out.append(f"{label}: {text}")
    elif attrs:
        out.append(label)
    for child in element:
        _xml_lines(child, name, out)
        tail = clean_line(child.tail or "")
        if tail:
            out.append(f"{name}: {tail}")


def parse_xml(data: bytes, builder: Builder) -> None:
    """One paragraph per child of the root, as `path: text` lines."""
    try:
        root = SafeET.fromstring(data)
    except SafeET.ParseError as exc:
        raise ParseFailure("corrupt_file", "The XML file is not well-formed.") from exc
    except (SafeET.DTDForbidden, SafeET.EntitiesForbidden, SafeET.ExternalReferenceForbidden) as exc:
        raise ParseFailure("corrupt_file", "The XML file uses entities or a DTD, which are not accepted.") from exc
    root_lines: list[str] = []
    text = clean_line(root.text or "")
    if text:
        root_lines.append(f"{_local(root.tag)}: {text}")
    if root_lines:
        builder.add("paragraph", "\n".join(root_lines))
    for child in root:
        lines: list[str] = []
        _xml_lines(child, _local(root.tag), lines)
        builder.add("paragraph", "\n".join(lines))


# --- RTF ----------------------------------------------------------------------------------------------------


def parse_rtf(data: bytes, builder: Builder) -> None:
    try:
        text = cast("Callable[..., str]", rtf_to_text)(data.decode("latin-1"), errors="ignore")
    except Exception as exc:
        raise ParseFailure("corrupt_file", "The RTF file could not be read.") from exc
    rows: list[list[str]] = []
    for line in text.split("\n"):  # striprtf ends each RTF paragraph with one line break, table rows too
        stripped = line.strip()
        if stripped.endswith("|") and len(stripped) > 1:  # striprtf writes a table row as `cell|cell|`
            rows.append(stripped[:-1].split("|"))
            continue
        if rows:
            builder.table(rows)
            rows = []
        builder.add("paragraph", line)
    if rows:
        builder.table(rows)
