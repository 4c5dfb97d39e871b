"""OCR with the PP-OCRv4 models that ship inside the rapidocr-onnxruntime wheel (nothing is downloaded)."""

from __future__ import annotations

import statistics
import threading
from typing import Any

from PIL import Image

from .tables import Word, find_tables

MAX_SIDE = 2400  # larger images are scaled down first: same text, a fraction of the time
MIN_SCORE = 0.5

_engine: Any = None
# One engine for the process, created on first use; calls are serialised because the engine object keeps
# per-call state and onnxruntime already spreads one call over all cores.
_lock = threading.Lock()


def _get_engine() -> Any:
    global _engine
    if _engine is None:
        from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-untyped]

        _engine = RapidOCR()
    return _engine


def prepare(image: Image.Image) -> Image.Image:
    """RGB, and no side longer than MAX_SIDE."""
    if image.mode not in ("RGB", "L"):
        background = Image.new("RGB", image.size, "white")
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        image = background
    elif image.mode == "L":
        image = image.convert("RGB")
    if max(image.size) > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image


def ocr_words(image: Image.Image) -> list[Word]:
    """The text segments OCR reads in an image, with their boxes in the image's pixels."""
    image = prepare(image)
    with _lock:
        result, _ = _get_engine()(image)
    words: list[Word] = []
    for box, text, score in result or []:
        if float(score) < MIN_SCORE or not str(text).strip():
            continue
        ys = [float(point[1]) for point in box]
        xs = [float(point[0]) for point in box]
        words.append(Word(str(text).strip(), min(xs), max(xs), min(ys), max(ys)))
    return words


def ocr_items(image: Image.Image) -> list[str | list[list[str]]]:
    """An image's text in reading order: paragraphs (strings) and tables (rows of cells, header first)."""
    words = ocr_words(image)
    tables = find_tables(words)
    inside = [
        any(t.x0 - 1 <= w.middle <= t.x1 + 1 and t.top - 1 <= (w.top + w.bottom) / 2 <= t.bottom + 1 for t in tables)
        for w in words
    ]
    placed: list[tuple[float, str | list[list[str]]]] = [(t.top, t.rows) for t in tables]
    placed.extend(_paragraphs([w for w, skip in zip(words, inside, strict=True) if not skip]))
    placed.sort(key=lambda item: item[0])
    return [item for _, item in placed]


def _paragraphs(words: list[Word]) -> list[tuple[float, str]]:
    """Segments grouped into lines, and lines into paragraphs at gaps taller than two lines: (top, text)."""
    if not words:
        return []
    boxes = sorted(((w.top + w.bottom) / 2, w.height, w.x0, w.text) for w in words)
    lines: list[list[tuple[float, float, float, str]]] = []
    for item in boxes:
        if lines and abs(item[0] - lines[-1][0][0]) < 0.5 * min(item[1], lines[-1][0][1]):
            lines[-1].append(item)
        else:
            lines.append([item])
    line_height = statistics.median(item[1] for item in boxes) or 1.0
    paragraphs: list[tuple[float, list[str]]] = []
    previous_y: float | None = None
    for line in lines:
        y = line[0][0]
        if previous_y is None or y - previous_y > 1.9 * line_height:
            paragraphs.append((y - line[0][1] / 2, []))
        paragraphs[-1][1].append(" ".join(text for _, _, _, text in sorted(line, key=lambda item: item[2])))
        previous_y = y
    return [(top, "\n".join(texts)) for top, texts in paragraphs if texts]
