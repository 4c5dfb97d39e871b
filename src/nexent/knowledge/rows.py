"""Structured import: a CSV or JSON Lines file whose rows are records becomes one document per row.

`split_rows` reads the whole file in the upload request (it is bounded by the file size and row limits) and
answers the good rows, each with its id, searchable text and metadata, and the bad ones, each with its line and
a typed reason. A file that cannot be read as rows at all (its format, encoding, header, an unknown column, too
many rows) raises `RowFileRefused`. Pure functions: no database, no storage.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

RowValue = str | int | float | bool
ROW_FORMATS = ("csv", "jsonl")
MAX_ID_CHARS = 200
MAX_METADATA_VALUE_CHARS = 500  # as `MetadataValue` in schemas.py
_EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_DELIMITERS = (",", ";", "\t")
_KEY_RUNS = re.compile(r"[^a-z0-9]+")
_METADATA_KEY = re.compile(r"^[a-z0-9_]{1,64}$")


class RowFileRefused(Exception):
    """The file as a whole cannot be imported row by row; `code` and `message` say why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidRowOptions(ValueError):
    """The row options of an upload contradict themselves, whatever the file."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RowOptions:
    """How to cut a file into rows: which column holds the id (else the line number is the id), which columns
    become metadata (each with its metadata key) and which form the searchable text (default: the others)."""

    id_column: str | None = None
    metadata_columns: dict[str, str] = field(default_factory=dict)  # column -> metadata key
    text_columns: tuple[str, ...] = ()

    @classmethod
    def build(cls, id_column: str | None, metadata_columns: Sequence[str], text_columns: Sequence[str]) -> RowOptions:
        """Options from an upload's form fields; raises `InvalidRowOptions` for names that cannot work."""
        id_name = (id_column or "").strip() or None
        metadata = _unique([c.strip() for c in metadata_columns if c.strip()])
        text = _unique([c.strip() for c in text_columns if c.strip()])
        keys: dict[str, str] = {}
        for column in metadata:
            key = metadata_key(column)
            if key is None:
                raise InvalidRowOptions(
                    "invalid_metadata_column",
                    f"The column {column!r} cannot be a metadata key (lowercase letters, digits and _, at most 64): "
                    "rename it in the file.",
                )
            if key in ("format", "kind", "page"):
                raise InvalidRowOptions(
                    "invalid_metadata_column", f"The column {column!r} would be the reserved metadata key {key!r}."
                )
            if key in keys.values():
                other = next(c for c, k in keys.items() if k == key)
                raise InvalidRowOptions(
                    "invalid_metadata_column", f"The columns {other!r} and {column!r} both become metadata key {key!r}."
                )
            keys[column] = key
        if len(keys) > 20:
            raise InvalidRowOptions("invalid_metadata_column", "At most 20 metadata columns.")
        for column in text:
            if column == id_name or column in keys:
                raise InvalidRowOptions(
                    "invalid_text_column", f"The column {column!r} is the id or a metadata column, not text."
                )
        return cls(id_column=id_name, metadata_columns=keys, text_columns=tuple(text))


@dataclass(frozen=True)
class Row:
    line: int
    id: str
    text: str
    metadata: dict[str, RowValue]


@dataclass(frozen=True)
class RowError:
    line: int
    id: str | None
    code: str
    message: str


@dataclass
class SplitFile:
    format: str
    columns: list[str]
    rows: list[Row] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


@dataclass(frozen=True)
class RowLimits:
    max_rows: int = 10_000
    max_row_chars: int = 20_000


def metadata_key(column: str) -> str | None:
    """The metadata key a column name becomes: lowercase, runs of other characters as `_`; None when nothing is
    left (a name in another script) or it is longer than 64."""
    key = _KEY_RUNS.sub("_", column.strip().lower()).strip("_")
    return key if _METADATA_KEY.match(key) else None


def row_format(file_name: str, detected: str) -> str | None:
    """`csv` or `jsonl` when the file can be imported row by row: by its extension, else by its detected format."""
    if detected not in ("csv", "jsonl", "json", "txt"):
        return None  # a PDF, an office file, an image ... whatever its name
    lower = file_name.lower()
    for extension, fmt in _EXTENSIONS.items():
        if lower.endswith(extension):
            return fmt
    return detected if detected in ROW_FORMATS else None


def split_rows(data: bytes, fmt: str, file_name: str, options: RowOptions, limits: RowLimits) -> SplitFile:
    """The rows of a CSV (`fmt="csv"`) or JSON Lines file, good and bad."""
    text = _decode(data)
    columns, records, errors = _csv_records(text, file_name, limits) if fmt == "csv" else _jsonl_records(text, limits)
    for wanted in [options.id_column, *options.metadata_columns, *options.text_columns]:
        if wanted is not None and wanted not in columns:
            shown = ", ".join(columns[:30]) or "none"
            raise RowFileRefused("unknown_column", f"The file has no column {wanted!r}; its columns: {shown}.")
    result = SplitFile(format=fmt, columns=columns, errors=errors)
    file_text_columns = options.text_columns or tuple(
        c for c in columns if c != options.id_column and c not in options.metadata_columns
    )
    labelled = len(file_text_columns) != 1
    seen: dict[str, int] = {}
    for line, record in records:
        row = _row(line, record, options, file_text_columns, labelled, limits, seen)
        if isinstance(row, RowError):
            result.errors.append(row)
        else:
            result.rows.append(row)
    result.errors.sort(key=lambda e: e.line)
    return result


# --- reading --------------------------------------------------------------------------------------------------

Records = tuple[list[str], list[tuple[int, dict[str, Any]]], list[RowError]]


def _decode(data: bytes) -> str:
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            data, chosen = data[len(bom) :], encoding
            break
    else:
        chosen = "utf-8"
    try:
        return data.decode(chosen)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RowFileRefused(
            "invalid_encoding", f"The file is not UTF-8 (line {line}); save it as UTF-8 and upload it again."
        ) from None


def _csv_records(text: str, file_name: str, limits: RowLimits) -> Records:
    first_line = text.split("\n", 1)[0]
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    delimiter = max(_DELIMITERS, key=lambda d: counts[d]) if any(counts.values()) else ","
    if file_name.lower().endswith(".tsv") and counts["\t"]:
        delimiter = "\t"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', doublequote=True)
    try:
        header = next(reader)
    except StopIteration:
        raise RowFileRefused("empty", "The file is empty.") from None
    except csv.Error as exc:
        raise RowFileRefused("invalid_header", f"The header row could not be read: {exc}.") from None
    columns = [name.strip() for name in header]
    if not any(columns):
        raise RowFileRefused("invalid_header", "The first row must be a header naming the columns.")
    for number, name in enumerate(columns, 1):
        if not name:
            raise RowFileRefused("invalid_header", f"Column {number} of the header row has no name.")
    duplicates = sorted({name for name in columns if columns.count(name) > 1})
    if duplicates:
        raise RowFileRefused("invalid_header", f"The header names a column twice: {', '.join(duplicates)}.")
    records: list[tuple[int, dict[str, Any]]] = []
    errors: list[RowError] = []
    count = 0
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if reader.line_num < start:  # the reader cannot go on
                errors.append(RowError(start, None, "malformed_row", f"The row could not be read: {exc}."))
                break
            errors.append(RowError(start, None, "malformed_row", f"The row could not be read: {exc}."))
            continue
        if not any(value.strip() for value in values):
            continue  # blank line
        count += 1
        _check_count(count, limits)
        if len(values) != len(columns):
            errors.append(
                RowError(
                    start,
                    None,
                    "wrong_column_count",
                    f"The row has {len(values)} values; the header has {len(columns)} columns.",
                )
            )
            continue
        records.append((start, dict(zip(columns, values, strict=True))))
    return columns, records, errors


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _jsonl_records(text: str, limits: RowLimits) -> Records:
    columns: dict[str, None] = {}
    records: list[tuple[int, dict[str, Any]]] = []
    errors: list[RowError] = []
    count = 0
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        count += 1
        _check_count(count, limits)
        try:
            value = json.loads(line, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            errors.append(RowError(number, None, "invalid_json", f"Not valid JSON: {exc.msg} (column {exc.colno})."))
            continue
        except (ValueError, RecursionError) as exc:
            errors.append(RowError(number, None, "invalid_json", f"Not valid JSON: {exc}."))
            continue
        if not isinstance(value, dict):
            errors.append(RowError(number, None, "not_an_object", "The line is not a JSON object."))
            continue
        columns.update(dict.fromkeys(value))
        records.append((number, value))
    if not count:
        raise RowFileRefused("empty", "The file has no rows.")
    return list(columns), records, errors


def _check_count(count: int, limits: RowLimits) -> None:
    if count > limits.max_rows:
        raise RowFileRefused(
            "too_many_rows", f"The file has more than {limits.max_rows} rows; split it into several files."
        )


# --- one row --------------------------------------------------------------------------------------------------


def _row(
    line: int,
    record: dict[str, Any],
    options: RowOptions,
    text_columns: Sequence[str],
    labelled: bool,
    limits: RowLimits,
    seen: dict[str, int],
) -> Row | RowError:
    if options.id_column is None:
        row_id = str(line)
    else:
        raw_id = record.get(options.id_column)
        if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
            return RowError(line, None, "missing_id", f"The row has no value in the id column {options.id_column!r}.")
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int | float):
            return RowError(line, None, "invalid_id", "The id must be a string or a number.")
        row_id = str(raw_id).strip()
        if not row_id.isprintable():
            return RowError(line, None, "invalid_id", "The id holds control characters.")
        if len(row_id) > MAX_ID_CHARS:
            return RowError(
                line, row_id[:MAX_ID_CHARS], "invalid_id", f"The id is longer than {MAX_ID_CHARS} characters."
            )
        if row_id in seen:
            return RowError(line, row_id, "duplicate_id", f"The id {row_id!r} was already used on line {seen[row_id]}.")
    metadata: dict[str, RowValue] = {}
    for column, key in options.metadata_columns.items():
        value = record.get(column)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if isinstance(value, str):
            value = value.strip()
            if len(value) > MAX_METADATA_VALUE_CHARS:
                return RowError(
                    line,
                    row_id,
                    "metadata_too_long",
                    f"The value of {column!r} is longer than {MAX_METADATA_VALUE_CHARS} characters.",
                )
        elif not isinstance(value, int | float | bool):
            return RowError(
                line, row_id, "invalid_metadata", f"The value of {column!r} must be a string, a number or a boolean."
            )
        elif isinstance(value, float) and not math.isfinite(value):
            return RowError(line, row_id, "invalid_metadata", f"The value of {column!r} is not a finite number.")
        metadata[key] = value
    lines = []
    for column in _present(text_columns, record, options):
        value = _text_value(record.get(column))
        if value:
            lines.append(f"{column}: {value}" if labelled else value)
    text = "\n".join(lines)
    if not text:
        return RowError(line, row_id, "empty_text", "The row has no text to index.")
    if len(text) > limits.max_row_chars:
        return RowError(
            line, row_id, "row_too_long", f"The row's text is longer than {limits.max_row_chars} characters."
        )
    seen[row_id] = line
    return Row(line=line, id=row_id, text=text, metadata=metadata)


def _present(columns: Sequence[str], record: dict[str, Any], options: RowOptions) -> Iterator[str]:
    """The text columns of a row, in the file's order (a JSON Lines row: in its own key order)."""
    if options.text_columns:
        yield from options.text_columns
        return
    wanted = set(columns)
    for column in record:
        if column in wanted:
            yield column


def _text_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))
