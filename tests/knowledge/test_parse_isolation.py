"""Parsing in worker processes with a memory ceiling (`nexent.knowledge.parsing.isolation`): real workers, real
documents."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexent.knowledge.parsing import ParseFailure, ParserPool, parse_document
from tests.support.bombs import big_docx, office_bomb, plain_document


@pytest.fixture(scope="module")
def small_pool() -> Iterator[ParserPool]:
    pool = ParserPool(memory_mb=256, size=1)
    yield pool
    pool.close()


def _worker_pids(pool: ParserPool) -> list[int]:
    return [worker.proc.pid for worker in pool._idle]


def test_the_pool_parses_like_the_parser(small_pool: ParserPool) -> None:
    for fmt in ("docx", "xlsx", "pptx"):
        data = plain_document(fmt)
        assert small_pool.parse(data, f"plain.{fmt}") == parse_document(data, f"plain.{fmt}")
    with pytest.raises(ParseFailure) as caught:
        small_pool.parse(b"%PDF-1.7 broken", "broken.pdf")
    assert caught.value.code == "corrupt_file"
    with pytest.raises(ParseFailure) as caught:
        small_pool.parse(office_bomb("docx"), "bomb.docx")  # the archive caps apply in the worker too
    assert caught.value.code == "too_large"


def test_a_document_past_the_memory_ceiling_fails_and_the_worker_is_replaced(small_pool: ParserPool) -> None:
    # 10 MiB of XML that deflates only eightfold: no bomb by the archive caps, but python-docx holds one object
    # per paragraph (measured: 0.45 GB for this file). Under a 256 MiB ceiling it fails; the server's process
    # (this one) never holds it.
    small_pool.parse(plain_document("docx"), "warm.docx")
    (pid,) = _worker_pids(small_pool)
    limits = Path(f"/proc/{pid}/limits").read_text()
    assert f"Max data size             {256 << 20}" in limits
    with pytest.raises(ParseFailure) as caught:
        small_pool.parse(big_docx(10 << 20), "big.docx")
    assert caught.value.code == "too_large"
    assert pid not in _worker_pids(small_pool)
    assert not os.path.exists(f"/proc/{pid}") or "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    assert small_pool.parse(plain_document("docx"), "after.docx").blocks  # a fresh worker takes over


def test_the_same_document_parses_under_a_larger_ceiling() -> None:
    pool = ParserPool(memory_mb=2048, size=1)
    try:
        assert len(pool.parse(big_docx(10 << 20), "big.docx").blocks) > 100_000
    finally:
        pool.close()
