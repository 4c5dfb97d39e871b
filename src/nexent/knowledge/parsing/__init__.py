"""Document parsing for knowledge bases: 27 formats to structured blocks (headings, paragraphs, tables, OCR text)."""

from .base import FAILURE_CODES, Block, ParsedDocument, ParseFailure, ParseLimits
from .core import parse_document
from .detect import SUPPORTED_FORMATS, detect_format
from .isolation import ParserPool, parser_pool

__all__ = [
    "FAILURE_CODES",
    "SUPPORTED_FORMATS",
    "Block",
    "ParseFailure",
    "ParseLimits",
    "ParsedDocument",
    "ParserPool",
    "detect_format",
    "parse_document",
    "parser_pool",
]
