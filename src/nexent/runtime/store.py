"""The process's group-commit writer lives in `nexent.core.batch`; these names stay importable from here."""

from __future__ import annotations

from nexent.core.batch import FLUSH_INTERVAL_SECONDS, BatchWriter, Write, writer_for

__all__ = ["FLUSH_INTERVAL_SECONDS", "BatchWriter", "Write", "writer_for"]
