"""OCR with the PP-OCRv4 models that ship inside the rapidocr-onnxruntime wheel (nothing is downloaded)."""

from __future__ import annotations

import statistics
import threading
from typing import Any

from PIL import Image

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


def ocr_paragraphs(image: Image.Image) -> list[str]:
    """The text of an image as paragraphs, in reading order (top to bottom, then left to right)."""
    image = prepare(image)
    with _lock:
        result, _ = _get_engine()(image)
    boxes: list[tuple[float, float, float, str]] = []  # (y centre, height, x left, text)
    for box, text, score in result or []:
        if float(score) < MIN_SCORE or not str(text).strip():
            continue
        ys = [float(point[1]) for point in box]
        xs = [float(point[0]) for point in box]
        boxes.append(((min(ys) + max(ys)) / 2, max(ys) - min(ys), min(xs), str(text).strip()))
    if not boxes:
        return []
    boxes.sort()
    lines: list[list[tuple[float, float, float, str]]] = []
    for item in boxes:
        if lines and abs(item[0] - lines[-1][0][0]) < 0.5 * min(item[1], lines[-1][0][1]):
            lines[-1].append(item)
        else:
            lines.append([item])
    line_height = statistics.median(item[1] for item in boxes) or 1.0
    paragraphs: list[list[str]] = [[]]
    previous_y: float | None = None
    for line in lines:
        y = line[0][0]
        if previous_y is not None and y - previous_y > 1.9 * line_height:
            paragraphs.append([])
        paragraphs[-1].append(" ".join(text for _, _, _, text in sorted(line, key=lambda item: item[2])))
        previous_y = y
    return ["\n".join(lines_) for lines_ in paragraphs if lines_]
