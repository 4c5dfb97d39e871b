"""Previews of knowledge documents and where a chunk sits on its PDF page.

Pure functions over bytes, with no database and no storage: rendering PDF pages and images to WebP (a page at
`PAGE_WIDTH` pixels wide, a thumbnail at `THUMBNAIL_WIDTH`), and locating a chunk's text on its first PDF page as a
box normalised to the page (0..1, origin at the top left). The service stores what these make (`preview_key`).

PDFium is not thread-safe: every call into it takes the parser's `PDFIUM_LOCK`.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pypdfium2.raw as pdfium_c  # type: ignore[import-untyped]
from PIL import Image, ImageSequence

from nexent.knowledge.parsing.pdf import PDFIUM_LOCK

PREVIEW_VERSION = 1  # part of every ETag: a change in rendering changes it
PAGE_WIDTH = 1000  # pixels of a page image's width
MAX_PAGE_HEIGHT = 4000  # a very tall page is scaled down to this height instead
THUMBNAIL_WIDTH = 200
# Decoded in the server's process (the parser's limit is 120 megapixels, in its workers): at most 200 MB of RGBA.
MAX_IMAGE_PIXELS = 50_000_000
TEXT_PREVIEW_CHARS = 64 * 1024
EAGER_PAGES = 20  # pages rendered by the background job; later ones on first request
WEBP_QUALITY = 80
IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "bmp", "tiff", "webp"})
_NEEDLE = 40  # characters (letters and digits) that locate a chunk's start and end on its page
_MIN_NEEDLE = 8

Box = tuple[float, float, float, float]  # x0, y0, x1, y1: fractions of the page, from its top left corner


class PreviewFailed(Exception):
    """The file cannot be previewed (damaged, encrypted, too large); `code` is stable, `message` safe to show."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def preview_kind(format: str | None) -> str:
    """`pdf` (page images), `image` (the image's frames as pages), else `text` (the parsed text only)."""
    if format == "pdf":
        return "pdf"
    if format in IMAGE_FORMATS:
        return "image"
    return "text"


def _webp(image: Image.Image, width: int) -> bytes:
    image = image.convert("RGB") if image.mode not in ("RGB", "RGBA", "L") else image
    if image.width > width:
        height = max(1, round(image.height * width / image.width))
        if height > MAX_PAGE_HEIGHT:
            height, width = MAX_PAGE_HEIGHT, max(1, round(image.width * MAX_PAGE_HEIGHT / image.height))
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=WEBP_QUALITY, method=2)
    return out.getvalue()


def _open_pdf(data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise PreviewFailed("encrypted", "The PDF needs a password.") from None
        raise PreviewFailed("corrupt_file", "The PDF cannot be read.") from None


def render_pdf_page(data: bytes, number: int, width: int = PAGE_WIDTH) -> bytes:
    """Page `number` (1-based) of a PDF as WebP, `width` pixels wide. `IndexError` past the last page."""
    with PDFIUM_LOCK:
        pdf = _open_pdf(data)
        try:
            if not 1 <= number <= len(pdf):
                raise IndexError(number)
            page = pdf[number - 1]
            try:
                page_width, page_height = page.get_size()
                scale = min(width / max(page_width, 1.0), MAX_PAGE_HEIGHT / max(page_height, 1.0))
                bitmap = page.render(scale=scale, may_draw_forms=True)
                image = bitmap.to_pil()
            finally:
                page.close()
        finally:
            pdf.close()
    return _webp(image, width)


def pdf_page_count(data: bytes) -> int:
    with PDFIUM_LOCK:
        pdf = _open_pdf(data)
        try:
            return len(pdf)
        finally:
            pdf.close()


def _image(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise PreviewFailed("too_large", "The image is too large to preview.")
        return image
    except PreviewFailed:
        raise
    except Exception:
        raise PreviewFailed("corrupt_file", "The image cannot be read.") from None


def render_image_frame(data: bytes, number: int, width: int = PAGE_WIDTH) -> bytes:
    """Frame `number` (1-based: a TIFF's pages; one for other images) as WebP. `IndexError` past the last."""
    image = _image(data)
    frames = 1 if image.format == "GIF" else getattr(image, "n_frames", 1)
    if not 1 <= number <= frames:
        raise IndexError(number)
    try:
        frame = ImageSequence.Iterator(image)[number - 1]
        frame.load()
        return _webp(frame.copy(), width)
    except PreviewFailed:
        raise
    except Exception:
        raise PreviewFailed("corrupt_file", "The image cannot be read.") from None


def render_page(kind: str, data: bytes, number: int, width: int = PAGE_WIDTH) -> bytes:
    if kind == "pdf":
        return render_pdf_page(data, number, width)
    if kind == "image":
        return render_image_frame(data, number, width)
    raise IndexError(number)


# --- where a chunk is on its page -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkSpan:
    """A chunk's text (its slice of the document text, without context lines) and its first and last page."""

    text: str
    page: int | None
    page_end: int | None


def _letters(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


@dataclass
class _PageText:
    letters: str  # the page's letters and digits, normalised as `_letters` does
    index: list[int]  # for each of them, the PDFium character it comes from
    textpage: object
    box: Box  # the crop box: left, bottom, right, top in PDF units


def _page_text(page: pdfium.PdfPage) -> _PageText:
    textpage = page.get_textpage()
    count = textpage.count_chars()
    # One UTF-16 unit per character index (PDFium's own text, generated spaces and line breaks included).
    raw = textpage.get_text_range(0, count) if count else ""
    if len(raw) != count:  # characters outside the BMP: read them one by one
        raw = "".join(chr(pdfium_c.FPDFText_GetUnicode(textpage, i) or 32) for i in range(count))
    letters: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(raw):
        if ch.isascii():
            if ch.isalnum():
                letters.append(ch.lower())
                index.append(i)
            continue
        for letter in _letters(ch):
            letters.append(letter)
            index.append(i)
    left, bottom, right, top = page.get_cropbox()
    return _PageText("".join(letters), index, textpage, (left, bottom, right, top))


def _find(haystack: str, text: str, start: int, *, from_end: bool) -> tuple[int, int] | None:
    """Where the first (or last) `_NEEDLE` letters of `text` are in `haystack` from `start`; shorter needles
    when the full one is not found (a hyphenated line break, a ligature PDFium splits differently)."""
    size = min(_NEEDLE, len(text))
    while size >= min(_MIN_NEEDLE, len(text)) and size > 0:
        needle = text[-size:] if from_end else text[:size]
        found = haystack.find(needle, start)
        if found >= 0:
            return found, found + size
        size //= 2
    return None


def _union(page: _PageText, first: int, last: int) -> Box | None:
    left, bottom, right, top = page.box
    width, height = right - left, top - bottom
    if width <= 0 or height <= 0:
        return None
    x0 = y0 = float("inf")
    x1 = y1 = float("-inf")
    for position in range(first, last):
        char_left, char_bottom, char_right, char_top = page.textpage.get_charbox(  # type: ignore[attr-defined]
            page.index[position]
        )
        if char_right <= char_left or char_top <= char_bottom:
            continue
        x0, x1 = min(x0, char_left), max(x1, char_right)
        y0, y1 = min(y0, char_bottom), max(y1, char_top)
    if x0 == float("inf"):
        return None

    def clamp(value: float) -> float:
        return round(min(max(value, 0.0), 1.0), 4)

    return (
        clamp((x0 - left) / width),
        clamp((top - y1) / height),
        clamp((x1 - left) / width),
        clamp((top - y0) / height),
    )


def locate_chunks(data: bytes, spans: Sequence[ChunkSpan]) -> list[Box | None]:
    """For each chunk, the box around its text on its first page: from where its first letters are found to where
    its last ones are (the page's end when it goes on to the next page). `None` where it cannot be placed: no
    page, no text layer (a scan read by OCR), a rotated page, text not found."""
    boxes: list[Box | None] = [None] * len(spans)
    by_page: dict[int, list[int]] = {}
    for position, span in enumerate(spans):
        if span.page is not None:
            by_page.setdefault(span.page, []).append(position)
    if not by_page:
        return boxes
    with PDFIUM_LOCK:
        pdf = _open_pdf(data)
        try:
            for number, positions in by_page.items():
                if not 1 <= number <= len(pdf):
                    continue
                page = pdf[number - 1]
                try:
                    if page.get_rotation() % 360:
                        continue
                    text = _page_text(page)
                    cursor = 0  # chunks of a page come in order; overlap may reach back a little
                    for position in positions:
                        span = spans[position]
                        letters = _letters(span.text)
                        if not letters:
                            continue
                        start = _find(text.letters, letters, max(cursor - 4 * _NEEDLE, 0), from_end=False)
                        if start is None:
                            start = _find(text.letters, letters, 0, from_end=False)
                        if start is None:
                            continue
                        if span.page_end is not None and span.page_end > number:
                            end = len(text.letters)
                        else:
                            found = _find(text.letters, letters, start[0], from_end=True)
                            end = found[1] if found else min(start[0] + len(letters), len(text.letters))
                        boxes[position] = _union(text, start[0], max(end, start[1]))
                        cursor = start[0]
                    text.textpage.close()  # type: ignore[attr-defined]
                finally:
                    page.close()
        finally:
            pdf.close()
    return boxes
