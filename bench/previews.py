"""Previews and chunk positions on the real PDFs of the parsing benchmark: the cost of rendering a page image and a
thumbnail, of locating every chunk on its page, and the share of chunks that get a box.

Reads `../shared/bench/parsing/pdf/*.pdf` (never copied; `--data` points elsewhere), parses each in this process
(OCR off: chunks of scanned pages have no text layer to locate and are left out of the share), chunks it with the
default settings, then times `render_pdf_page` (page 1 at 1000 px, WebP), the thumbnail (200 px) and
`locate_chunks` (all chunks), each the median of `--repeat` runs.

    .venv/bin/python -m bench.previews [--data DIR] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from nexent.knowledge.chunking import ChunkSettings, chunk_document, document_text
from nexent.knowledge.parsing import ParseFailure, ParseLimits, parse_document
from nexent.knowledge.previews import THUMBNAIL_WIDTH, ChunkSpan, locate_chunks, render_pdf_page

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "bench" / "parsing" / "pdf"


def median_ms(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'document':48} {'pages':>5} {'chunks':>6} {'boxed':>6} {'page ms':>8} {'thumb ms':>8} {'locate ms':>9}")
    totals = [0, 0]
    for path in sorted(args.data.glob("*.pdf")):
        data = path.read_bytes()
        try:
            doc = parse_document(data, path.name, limits=ParseLimits(ocr=False))
        except ParseFailure as failure:
            print(f"{path.name[:48]:48} skipped: {failure.code}")
            continue
        text = document_text(doc)
        chunks = chunk_document(doc, ChunkSettings())
        spans = [ChunkSpan(text[c.start : c.end], c.page, c.page_end) for c in chunks]
        boxes = locate_chunks(data, spans)
        boxed = sum(box is not None for box in boxes)
        totals[0] += boxed
        totals[1] += len(chunks)
        page_ms = median_ms(args.repeat, partial(render_pdf_page, data, 1))
        thumb_ms = median_ms(args.repeat, partial(render_pdf_page, data, 1, THUMBNAIL_WIDTH))
        locate_ms = median_ms(args.repeat, partial(locate_chunks, data, spans))
        print(
            f"{path.name[:48]:48} {doc.page_count or 0:>5} {len(chunks):>6} {boxed:>6} "
            f"{page_ms:>8.1f} {thumb_ms:>8.1f} {locate_ms:>9.1f}"
        )
    print(f"chunks with a box: {totals[0]} of {totals[1]}")


if __name__ == "__main__":
    main()
