"""Structured logs: one JSON object per line, with the request id when there is one.

A database error is logged without its message: SQLAlchemy adds the statement's parameters to it (unless the engine
hides them, as ours do) and PostgreSQL quotes values in its own (`Key (key_hash)=(...) already exists`,
`invalid input syntax for type integer: "..."`). Its type, SQLSTATE and the names of the constraint, table and
column it concerns are kept, with the statement (placeholders, no values).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from sqlalchemy.exc import StatementError

from nexent.core.context import current_request_id
from nexent.core.tracing import current_span_ids

# Modules of the database drivers and of SQLAlchemy's adapters around them: their errors may quote values.
_DATABASE_ERROR_MODULES = ("asyncpg", "sqlite3", "aiosqlite", "psycopg", "sqlalchemy.dialects", "sqlalchemy.connectors")
_DATABASE_ERROR_FACTS = ("sqlstate", "constraint_name", "table_name", "column_name")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]

# Attributes every LogRecord has; anything else was passed through `extra=` and belongs in the output.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", "taskName", "color_message"}
)


def is_database_error(exc: BaseException) -> bool:
    return isinstance(exc, StatementError) or type(exc).__module__.startswith(_DATABASE_ERROR_MODULES)


def describe_database_error(exc: BaseException) -> str:
    """A database error's type and what names the failure, never its message (which may carry values)."""
    facts = [f"{type(exc).__module__}.{type(exc).__qualname__}: message withheld (it may quote SQL values)"]
    # The driver's own error, under SQLAlchemy's and its adapter's, names the constraint, table and column.
    origins: list[object] = [exc]
    if isinstance(exc, StatementError):
        origins += [exc.orig, exc.orig.__cause__] if isinstance(exc.orig, BaseException) else [exc.orig]
    for attr in _DATABASE_ERROR_FACTS:
        value = next((v for o in origins if isinstance(v := getattr(o, attr, None), str) and v), None)
        if value:
            facts.append(f"{attr}={value}")
    if isinstance(exc, StatementError) and exc.statement:
        facts.append(f"statement: {exc.statement}")
    return "; ".join(facts)


def format_exception(ei: ExcInfo) -> str:
    """A traceback like Python's, with each database error in the chain reduced to `describe_database_error`."""
    _, exc, _ = ei
    if exc is None:
        return ""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, "The above exception was the direct cause of the following exception:"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, "During handling of the above exception, another exception occurred:"
        else:
            current = None
    lines: list[str] = []
    # From the first exception to the last, as Python prints them; each but the last is followed by its link.
    for error, link in reversed(chain):
        if error.__traceback__ is not None:
            lines.append("Traceback (most recent call last):\n")
            lines.extend(traceback.format_tb(error.__traceback__))
        if is_database_error(error):
            lines.append(describe_database_error(error) + "\n")
        else:
            lines.extend(traceback.format_exception_only(type(error), error))
        if link:
            lines.append(f"\n{link}\n\n")
    return "".join(lines).rstrip("\n")


class ConsoleFormatter(logging.Formatter):
    """The console format, with tracebacks from `format_exception`."""

    def formatException(self, ei: Any) -> str:
        return format_exception(ei)


class JsonFormatter(logging.Formatter):
    """Format a record as a single JSON line."""

    def formatException(self, ei: Any) -> str:
        return format_exception(ei)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id:
            entry["request_id"] = request_id
        ids = current_span_ids()
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route the root logger (and uvicorn's) to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(ConsoleFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "celery"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Requests are logged once by our middleware, with the request id; uvicorn's access log would repeat them.
    logging.getLogger("uvicorn.access").disabled = True
