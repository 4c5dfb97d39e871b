"""A parsing worker process of `isolation.ParserPool`: `python -m nexent.knowledge.parsing.worker READ_FD WRITE_FD
MEMORY_MB`. It limits its own memory, then parses the documents it is sent, one at a time, until its pipe closes."""

from __future__ import annotations

import json
import resource
import sys
from multiprocessing.connection import Connection
from typing import Any

from .base import ParseFailure, ParseLimits
from .core import parse_document

# A failure while the worker's peak memory came this close to the ceiling is taken for a memory failure: libxml2
# (python-docx, python-pptx, openpyxl) reports a refused allocation as an XMLSyntaxError "unknown error", which
# the parser turns into `corrupt_file` (measured: the 40 MiB DOCX bomb under a 500 MB ceiling peaked at 474 MB).
NEAR_CEILING = 0.75
# A worker whose peak memory passed this share of the ceiling is replaced after answering: the allocator keeps
# some of what it took, and the next document should start from a small process.
RECYCLE_AT = 0.5
_TOO_LARGE = "Reading the file needs more memory than allowed."


def _peak_bytes() -> int:
    """Peak resident memory since the last `_reset_peak` (VmHWM)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM (Linux 4.0+)
    except OSError:
        pass


def _answer(header: dict[str, Any], data: bytes, ceiling: int) -> dict[str, Any]:
    limits = ParseLimits(**header["limits"])
    _reset_peak()
    failure: ParseFailure | None = None
    try:
        parsed = parse_document(data, str(header["filename"]), header.get("content_type"), limits)
    except ParseFailure as exc:
        failure = exc
    except MemoryError:
        failure = ParseFailure("too_large", _TOO_LARGE)
    peak = _peak_bytes()
    recycle = peak > RECYCLE_AT * ceiling
    if failure is not None:
        if failure.code != "too_large" and peak > NEAR_CEILING * ceiling:
            failure = ParseFailure("too_large", _TOO_LARGE)
        return {"ok": False, "code": failure.code, "message": failure.message, "recycle": recycle}
    return {
        "ok": True,
        "format": parsed.format,
        "title": parsed.title,
        "page_count": parsed.page_count,
        "blocks": [
            {
                "kind": block.kind,
                "text": block.text,
                "level": block.level,
                "page": block.page,
                "heading_path": list(block.heading_path),
                "source": block.source,
                "caption": block.caption,
            }
            for block in parsed.blocks
        ],
        "recycle": recycle,
    }


def main(argv: list[str]) -> None:
    read_fd, write_fd, memory_mb = (int(value) for value in argv[1:4])
    ceiling = memory_mb << 20
    # RLIMIT_DATA rather than RLIMIT_AS: it counts the heap and private writable mappings, not the address space
    # that shared libraries and thread arenas reserve (OCR measured 1.4 GB of address space for 0.8 GB of data).
    resource.setrlimit(resource.RLIMIT_DATA, (ceiling, ceiling))
    incoming = Connection(read_fd, writable=False)
    outgoing = Connection(write_fd, readable=False)
    while True:
        try:
            header = json.loads(incoming.recv_bytes())
            data = incoming.recv_bytes()
        except (EOFError, OSError):
            return  # the server went away
        try:
            answer = _answer(header, data, ceiling)
            del data
            payload = json.dumps(answer).encode()
        except MemoryError:  # the answer itself (every block, as JSON) did not fit
            answer = {"ok": False, "code": "too_large", "message": _TOO_LARGE, "recycle": True}
            payload = json.dumps(answer).encode()
        outgoing.send_bytes(payload)
        if answer["recycle"]:
            return


if __name__ == "__main__":
    main(sys.argv)
