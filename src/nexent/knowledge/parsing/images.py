"""Images: text read by OCR, one page per frame of multi-frame images (TIFF, GIF)."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageSequence, UnidentifiedImageError

from .base import ParseFailure, ParseLimits
from .ocr import ocr_items
from .structure import Builder

MAX_PIXELS = 120_000_000  # decompression-bomb guard (about 11000 x 11000)


def open_image(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_PIXELS:
                raise ParseFailure("too_large", "The image has too many pixels.")
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ParseFailure("too_large", "The image has too many pixels.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ParseFailure("corrupt_file", "The image could not be decoded.") from exc
    return image


def parse_image(data: bytes, builder: Builder, limits: ParseLimits) -> int:
    """OCR every frame; returns the number of frames."""
    image = open_image(data)
    if not limits.ocr:
        raise ParseFailure("empty", "The image has no text layer and OCR is turned off.")
    frames = 0
    for frame in ImageSequence.Iterator(image):
        if frames and image.format in ("GIF", "WEBP", "PNG"):
            break  # animation frames repeat the first one's text
        frames += 1
        if frames > limits.max_pages:
            raise ParseFailure("too_large", f"The image has more than {limits.max_pages} frames.")
        try:
            items = ocr_items(frame.copy())
        except (OSError, ValueError) as exc:
            raise ParseFailure("corrupt_file", "The image could not be decoded.") from exc
        for item in items:
            if isinstance(item, str):
                builder.add("image_text", item, frames)
            else:
                builder.table(item, frames)
    return frames
