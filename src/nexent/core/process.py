"""What one process holds for all its requests and runs, in one object instead of module globals.

`ProcessState` keeps one instance of each *part* a domain needs process-wide (the batch writer, the logs of the
runs this process executes, the queue of conversation titles, ...), made on first use and closed, newest first, when
the process stops. A process has one, `engines.process`; the app's lifespan closes it (before the engines), as does
`Engines.close` for processes without an app (workers, tests).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

logger = logging.getLogger("nexent.process")


class Part(Protocol):
    async def close(self) -> None: ...


P = TypeVar("P", bound=Part)


class ProcessState:
    def __init__(self) -> None:
        self._parts: dict[type[Any], Part] = {}

    def part(self, kind: type[P], make: Callable[[], P]) -> P:
        """This process's `kind`, made by `make` the first time."""
        found = self._parts.get(kind)
        if found is None:
            found = self._parts[kind] = make()
        return cast(P, found)

    def find(self, kind: type[P]) -> P | None:
        """This process's `kind` if it was made."""
        return cast(P | None, self._parts.get(kind))

    async def close(self) -> None:
        """Close every part, newest first (a part made later may use one made before)."""
        parts, self._parts = list(self._parts.values()), {}
        for part in reversed(parts):
            try:
                await part.close()
            except Exception:
                logger.exception("could not close a part of the process state", extra={"part": type(part).__name__})
