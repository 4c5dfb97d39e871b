"""parse_document: detect the format, run its parser, and turn every failure into a typed ParseFailure."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import logging
import zipfile
import zlib
from email.message import EmailMessage, Message

from .base import Block, ParsedDocument, ParseFailure, ParseLimits
from .containers import check_archive, open_zip, parse_epub, parse_odf
from .detect import ZIP_FORMATS, detect_format
from .images import parse_image
from .legacy import parse_doc, parse_ppt
from .markup import parse_html
from .office import parse_docx, parse_pptx, parse_xls, parse_xlsx
from .pdf import parse_pdf
from .structure import Builder, clean_line
from .text import parse_csv, parse_json, parse_jsonl, parse_markdown, parse_rtf, parse_txt, parse_xml

logger = logging.getLogger(__name__)

MAX_ARCHIVE_DEPTH = 2  # a ZIP inside a ZIP is read; one more level down is skipped
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_IMAGES = {"png", "jpeg", "gif", "bmp", "tiff", "webp"}


def parse_document(
    data: bytes, filename: str, content_type: str | None = None, limits: ParseLimits = ParseLimits()
) -> ParsedDocument:
    """Parse one uploaded file into blocks; raises only ParseFailure for bad input. Thread-safe."""
    if len(data) > limits.max_bytes:
        raise ParseFailure("too_large", f"The file is larger than {limits.max_bytes // (1024 * 1024)} MiB.")
    fmt = detect_format(data, filename, content_type)
    return _parse(data, fmt, limits, depth=0, source=None)


def _parse(data: bytes, fmt: str, limits: ParseLimits, depth: int, source: str | None) -> ParsedDocument:
    builder = Builder(source)
    try:
        if fmt in ZIP_FORMATS and not data.startswith(_OLE_MAGIC):
            check_archive(data, limits, fmt)  # every ZIP-based format, before any parser sees it
        title, pages = _dispatch(data, fmt, builder, limits, depth)
    except ParseFailure:
        raise
    except MemoryError as exc:
        raise ParseFailure("too_large", "The file needs more memory to read than is available.") from exc
    except RecursionError as exc:
        raise ParseFailure("corrupt_file", "The file is nested too deeply to read.") from exc
    except Exception as exc:  # any library error on bad input is a damaged file to the user
        logger.info("parsing a %s file failed: %s: %s", fmt, type(exc).__name__, exc)
        raise ParseFailure("corrupt_file", f"The {fmt.upper()} file is damaged or could not be read.") from exc
    blocks = [block for block in builder.blocks if block.text.strip()]
    if not blocks:
        if fmt in _IMAGES or fmt == "pdf":
            raise ParseFailure("empty", "No text was found in the file (nor by OCR).")
        raise ParseFailure("empty", "The file contains no text.")
    return ParsedDocument(format=fmt, blocks=blocks, title=title, page_count=pages)


def _dispatch(
    data: bytes, fmt: str, builder: Builder, limits: ParseLimits, depth: int
) -> tuple[str | None, int | None]:
    if fmt in ("docx", "xlsx", "pptx") and data.startswith(_OLE_MAGIC):
        raise ParseFailure("encrypted", "The document is protected with a password.")
    title: str | None = None
    pages: int | None = None
    if fmt == "pdf":
        title, pages = parse_pdf(data, builder, limits)
    elif fmt == "docx":
        title = parse_docx(data, builder)
    elif fmt == "pptx":
        title, pages = parse_pptx(data, builder, limits)
    elif fmt == "xlsx":
        title = parse_xlsx(data, builder)
    elif fmt == "xls":
        parse_xls(data, builder)
    elif fmt == "doc":
        parse_doc(data, builder)
    elif fmt == "ppt":
        pages = parse_ppt(data, builder, limits)
    elif fmt in ("odt", "ods", "odp"):
        title, pages = parse_odf(data, builder, limits, fmt)
    elif fmt == "epub":
        title = parse_epub(data, builder, limits)
    elif fmt == "html":
        title = parse_html(data, builder)
    elif fmt == "markdown":
        parse_markdown(data, builder)
    elif fmt == "txt":
        parse_txt(data, builder)
    elif fmt == "csv":
        parse_csv(data, builder, "")
    elif fmt == "json":
        parse_json(data, builder)
    elif fmt == "jsonl":
        parse_jsonl(data, builder)
    elif fmt == "xml":
        parse_xml(data, builder)
    elif fmt == "rtf":
        parse_rtf(data, builder)
    elif fmt == "eml":
        title = _parse_eml(data, builder, limits, depth)
    elif fmt in _IMAGES:
        frames = parse_image(data, builder, limits)
        pages = frames if frames > 1 else None
    elif fmt == "zip":
        _parse_zip(data, builder, limits, depth)
    else:
        raise ParseFailure("unsupported_format", "This file type is not supported.")
    if not builder.blocks and fmt == "pdf" and not limits.ocr:
        raise ParseFailure("empty", "The PDF has no text layer and OCR is turned off.")
    return title, pages


def _child_source(source: str | None, name: str) -> str:
    return f"{source}/{name}" if source else name


def _parse_child(
    data: bytes, name: str, limits: ParseLimits, depth: int, source: str | None
) -> list[Block] | ParseFailure:
    """Blocks of an archive member or attachment, or the reason it was skipped."""
    if len(data) > limits.max_bytes:
        return ParseFailure("too_large", f"{name} is larger than the limit.")
    try:
        fmt = detect_format(data, name)
        if fmt == "zip" and depth >= MAX_ARCHIVE_DEPTH:
            return ParseFailure("unsupported_format", f"{name} is an archive nested too deeply.")
        return _parse(data, fmt, limits, depth, _child_source(source, name)).blocks
    except ParseFailure as failure:
        return failure


def _skipped(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return name.startswith("__MACOSX/") or base.startswith(".") or base in ("Thumbs.db", "desktop.ini")


def _parse_zip(data: bytes, builder: Builder, limits: ParseLimits, depth: int) -> None:
    archive = open_zip(data)
    failures: list[ParseFailure] = []
    encrypted = 0
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir() and not _skipped(info.filename)]
        if len(members) > limits.max_archive_members:
            raise ParseFailure("too_large", f"The archive has more than {limits.max_archive_members} files.")
        if sum(info.file_size for info in members) > limits.max_archive_total_bytes:
            raise ParseFailure("too_large", "The archive expands to more data than allowed.")
        budget = limits.max_archive_total_bytes
        for info in members:
            if info.flag_bits & 0x1:
                encrypted += 1
                continue
            if info.file_size > min(budget, limits.max_bytes):
                failures.append(ParseFailure("too_large", f"{info.filename} is too large."))
                continue
            try:
                with archive.open(info) as handle:
                    content = handle.read(min(budget, limits.max_bytes) + 1)
            # zipfile raises NotImplementedError for compression methods it cannot read, RuntimeError for encryption.
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError):
                failures.append(ParseFailure("corrupt_file", f"{info.filename} is damaged in the archive."))
                continue
            if len(content) > min(budget, limits.max_bytes):
                raise ParseFailure("too_large", "The archive expands to more data than allowed.")
            budget -= len(content)
            child_limits = dataclasses.replace(limits, max_archive_total_bytes=max(budget, 0))
            result = _parse_child(content, info.filename, child_limits, depth + 1, builder.source)
            if isinstance(result, ParseFailure):
                failures.append(result)
            else:
                builder.blocks.extend(result)
    if builder.blocks:
        return
    if encrypted:
        raise ParseFailure("encrypted", "The archive's files are protected with a password.")
    for failure in failures:
        if failure.code != "unsupported_format":
            raise ParseFailure(failure.code, f"No file in the archive could be read: {failure.message}")
    if failures:
        raise ParseFailure("unsupported_format", "The archive holds no supported documents.")
    raise ParseFailure("empty", "The archive is empty.")


def _parse_eml(data: bytes, builder: Builder, limits: ParseLimits, depth: int) -> str | None:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    subject = clean_line(str(message.get("Subject", "") or ""))
    headers = [f"{name}: {clean_line(str(message.get(name)))}" for name in ("From", "To", "Cc", "Date", "Subject")]
    builder.add("paragraph", "\n".join(line for line in headers if message.get(line.split(":", 1)[0])))
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        content = _payload(body)
        if body.get_content_type() == "text/html":
            parse_html(content, builder)
        else:
            charset = body.get_content_charset() or "utf-8"
            try:
                text = content.decode(charset, errors="replace")
            except LookupError:
                text = content.decode("utf-8", errors="replace")
            for paragraph in text.replace("\r\n", "\n").split("\n\n"):
                builder.add("paragraph", paragraph)
    for part in message.iter_attachments():
        name = clean_line(part.get_filename() or "") or "attachment"
        if part.get_content_type() == "message/rfc822" and not name.endswith(".eml"):
            name += ".eml"
        result = _parse_child(_payload(part), name, limits, depth + 1, builder.source)
        if not isinstance(result, ParseFailure):
            builder.blocks.extend(result)
    return subject or None


def _payload(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload(0) if part.is_multipart() else part.get_payload()
        if isinstance(inner, Message):
            return inner.as_bytes()
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""
