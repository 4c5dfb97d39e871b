"""Parsing in worker processes with a memory ceiling: a document that needs more memory fails with `too_large`
instead of taking the server down.

A `ParserPool` keeps up to `size` worker processes (`python -m nexent.knowledge.parsing.worker`), each limited by
RLIMIT_DATA to `memory_mb` (its heap and anonymous mappings: what parsing allocates, not the code of its
libraries). Workers are long-lived because the OCR engine takes seconds to load (measured 4.7 s on the 2-core
development machine) and ~650 MB once loaded; a worker that came close to its ceiling, failed or died is replaced.

The protocol is length-prefixed bytes over two pipes (`multiprocessing.connection.Connection.send_bytes`): a
JSON header, then the file's bytes; the answer is JSON. Nothing the worker sends is unpickled, so a parser
compromised by a hostile file cannot run code in the server through the answer.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from .base import Block, ParsedDocument, ParseFailure, ParseLimits

_WORKER_MODULE = "nexent.knowledge.parsing.worker"


class _Worker:
    def __init__(self, memory_mb: int) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our interpreter and module, no shell
                [sys.executable, "-m", _WORKER_MODULE, str(to_child_r), str(from_child_w), str(memory_mb)],
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the server's terminal is the server's to handle
            )
        except BaseException:
            for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
                os.close(fd)
            raise
        os.close(to_child_r)
        os.close(from_child_w)
        self.send = Connection(to_child_w, readable=False)
        self.recv = Connection(from_child_r, writable=False)

    def parse(self, data: bytes, filename: str, content_type: str | None, limits: ParseLimits) -> dict[str, Any]:
        """The worker's answer; raises EOFError/OSError when it died."""
        header = {
            "filename": filename,
            "content_type": content_type,
            "limits": {
                "max_bytes": limits.max_bytes,
                "max_pages": limits.max_pages,
                "max_archive_members": limits.max_archive_members,
                "max_archive_total_bytes": limits.max_archive_total_bytes,
                "max_document_parts": limits.max_document_parts,
                "max_inflate_ratio": limits.max_inflate_ratio,
                "ocr": limits.ocr,
            },
        }
        self.send.send_bytes(json.dumps(header).encode())
        self.send.send_bytes(data)
        answer: dict[str, Any] = json.loads(self.recv.recv_bytes())
        return answer

    def death(self) -> int | None:
        """The exit status once the process is gone (negative: the signal), None if it still runs after 5 s."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.proc.wait(timeout=5)
        return None

    def stop(self) -> None:
        for connection in (self.send, self.recv):
            with contextlib.suppress(OSError):
                connection.close()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def _document(answer: dict[str, Any]) -> ParsedDocument:
    blocks = [
        Block(
            kind=str(item["kind"]),
            text=str(item["text"]),
            level=int(item["level"]),
            page=None if item["page"] is None else int(item["page"]),
            heading_path=tuple(str(part) for part in item["heading_path"]),
            source=None if item["source"] is None else str(item["source"]),
            caption=None if item.get("caption") is None else str(item["caption"]),
        )
        for item in answer["blocks"]
    ]
    title, pages = answer.get("title"), answer.get("page_count")
    return ParsedDocument(
        format=str(answer["format"]),
        blocks=blocks,
        title=None if title is None else str(title),
        page_count=None if pages is None else int(pages),
    )


class ParserPool:
    """Up to `size` parsing worker processes with `memory_mb` each (see the module docstring). Thread-safe."""

    def __init__(self, memory_mb: int, size: int) -> None:
        if memory_mb < 64 or size < 1:
            raise ValueError("memory_mb >= 64 and size >= 1")
        self.memory_mb = memory_mb
        self.size = size
        self._idle: list[_Worker] = []
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._closed = False

    def parse(
        self, data: bytes, filename: str, content_type: str | None = None, limits: ParseLimits = ParseLimits()
    ) -> ParsedDocument:
        """Like `parse_document`, in a worker: raises only ParseFailure for bad input (`too_large` past the
        ceiling). Blocks while all `size` workers are busy."""
        if len(data) > limits.max_bytes:  # not worth a trip to the worker
            raise ParseFailure("too_large", f"The file is larger than {limits.max_bytes // (1024 * 1024)} MiB.")
        with self._slots:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the parser pool is closed")
                worker = self._idle.pop() if self._idle else None
            if worker is None or worker.proc.poll() is not None:
                if worker is not None:
                    worker.stop()
                worker = _Worker(self.memory_mb)
            try:
                answer = worker.parse(data, filename, content_type, limits)
            except (EOFError, OSError, ValueError):
                worker.stop()
                status = worker.death()
                if status is not None and status < 0 and -status in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT):
                    # SIGKILL: the kernel's OOM killer; SIGSEGV/SIGABRT: a C library that did not survive a
                    # failed allocation (measured: lxml reports it as "unknown error", others abort).
                    raise ParseFailure(
                        "too_large", "Reading the file needed more memory than allowed, or crashed the reader."
                    ) from None
                raise ParseFailure("corrupt_file", "The file could not be read (its reader stopped).") from None
            except BaseException:
                worker.stop()
                raise
            if answer.get("recycle"):
                worker.stop()
            else:
                with self._lock:
                    if self._closed:
                        worker.stop()
                    else:
                        self._idle.append(worker)
        if not answer.get("ok"):
            raise ParseFailure(str(answer["code"]), str(answer["message"]))
        return _document(answer)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()


_pools: dict[tuple[int, int, int], ParserPool] = {}
_pools_lock = threading.Lock()


def parser_pool(memory_mb: int, size: int) -> ParserPool:
    """The process's pool for these settings (created on first use, closed at exit). Keyed by process id too: a
    forked process (Celery's prefork children) must not share its parent's workers and their pipes."""
    key = (os.getpid(), memory_mb, size)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ParserPool(memory_mb, size)
        return pool


@atexit.register
def _close_pools() -> None:
    with _pools_lock:
        for (pid, _, _), pool in _pools.items():
            if pid == os.getpid():
                pool.close()
        _pools.clear()
