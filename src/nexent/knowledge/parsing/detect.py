"""Format detection: by content first (magic bytes, container structure), the name and content type as hints."""

from __future__ import annotations

import io
import json
import re
import zipfile

import olefile  # type: ignore[import-untyped]

from .base import ParseFailure
from .text import decode_text

SUPPORTED_FORMATS: tuple[str, ...] = (
    "pdf", "docx", "doc", "xlsx", "xls", "csv", "pptx", "ppt", "odt", "ods", "odp", "epub", "rtf", "html",
    "markdown", "txt", "json", "jsonl", "xml", "eml", "png", "jpeg", "gif", "bmp", "tiff", "webp", "zip",
)  # fmt: skip

_EXTENSIONS = {
    "pdf": "pdf", "docx": "docx", "docm": "docx", "dotx": "docx", "doc": "doc", "dot": "doc", "xlsx": "xlsx",
    "xlsm": "xlsx", "xltx": "xlsx", "xls": "xls", "csv": "csv", "tsv": "csv", "pptx": "pptx", "pptm": "pptx",
    "ppsx": "pptx", "ppt": "ppt", "pps": "ppt", "odt": "odt", "ods": "ods", "odp": "odp", "epub": "epub",
    "rtf": "rtf", "html": "html", "htm": "html", "xhtml": "html", "md": "markdown", "markdown": "markdown",
    "txt": "txt", "text": "txt", "log": "txt", "json": "json", "jsonl": "jsonl", "ndjson": "jsonl", "xml": "xml",
    "eml": "eml", "png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif", "bmp": "bmp", "tif": "tiff",
    "tiff": "tiff", "webp": "webp", "zip": "zip",
}  # fmt: skip

_CONTENT_TYPES = {
    "application/pdf": "pdf", "text/csv": "csv", "text/tab-separated-values": "csv", "text/html": "html",
    "application/xhtml+xml": "html", "text/markdown": "markdown", "text/x-markdown": "markdown",
    "text/plain": "txt", "application/json": "json", "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl", "application/xml": "xml", "text/xml": "xml", "message/rfc822": "eml",
    "application/rtf": "rtf", "text/rtf": "rtf", "application/msword": "doc",
    "application/vnd.ms-excel": "xls", "application/vnd.ms-powerpoint": "ppt", "application/zip": "zip",
}  # fmt: skip

_JSON_CHECK_CHARS = 4 * 1024 * 1024
ZIP_FORMATS = {"docx", "xlsx", "pptx", "odt", "ods", "odp", "epub", "zip"}
_OLE_FORMATS = {"doc", "xls", "ppt"}

_ODF_MIMETYPES = {
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.text-template": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.spreadsheet-template": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
    "application/vnd.oasis.opendocument.presentation-template": "odp",
    "application/epub+zip": "epub",
}

_UNSUPPORTED_MAGIC = (
    (b"MZ", "a Windows executable"),
    (b"\x7fELF", "an executable"),
    (b"\xfe\xed\xfa", "an executable"),
    (b"\xcf\xfa\xed\xfe", "an executable"),
    (b"\xce\xfa\xed\xfe", "an executable"),
    (b"\xca\xfe\xba\xbe", "an executable"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"SQLite format 3\x00", "a database"),
    (b"ID3", "an audio file"),
    (b"OggS", "a media file"),
    (b"fLaC", "an audio file"),
    (b"\x00\x00\x01\xba", "a video file"),
    (b"\x1aE\xdf\xa3", "a video file"),
    (b"%!PS", "a PostScript file"),
    (b"\x00asm", "a WebAssembly module"),
)

_EML_HEADER = re.compile(
    rb"^(received|return-path|from|to|subject|date|message-id|mime-version|delivered-to|reply-to|cc|x-[\w-]+)"
    rb"[ \t]*:",
    re.IGNORECASE,
)


def hint_format(filename: str, content_type: str | None = None) -> str | None:
    """The format the name (or else the content type) suggests, if any."""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension in _EXTENSIONS:
        return _EXTENSIONS[extension]
    if content_type:
        return _CONTENT_TYPES.get(content_type.split(";", 1)[0].strip().lower())
    return None


def _zip_format(data: bytes, hint: str | None) -> str:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return hint if hint in ZIP_FORMATS else "zip"  # the parser reports the damage
    with archive:
        names = set(archive.namelist())
        if "mimetype" in names:
            try:
                mimetype = archive.read("mimetype")[:100].decode("ascii", "replace").strip()
            except (zipfile.BadZipFile, OSError, RuntimeError, ValueError, EOFError):
                mimetype = ""
            if mimetype in _ODF_MIMETYPES:
                return _ODF_MIMETYPES[mimetype]
        if "[Content_Types].xml" in names or any(name.startswith(("word/", "xl/", "ppt/")) for name in names):
            if "word/document.xml" in names or any(n.startswith("word/") for n in names):
                return "docx"
            if "xl/workbook.xml" in names or any(n.startswith("xl/") for n in names):
                return "xlsx"
            if "ppt/presentation.xml" in names or any(n.startswith("ppt/") for n in names):
                return "pptx"
        if "META-INF/container.xml" in names and any(n.endswith(".opf") for n in names):
            return "epub"
    return "zip"


def _ole_format(data: bytes, hint: str | None) -> str:
    try:
        ole = olefile.OleFileIO(data)
    except Exception as exc:  # olefile raises plain OSError and others on damaged files
        if hint in _OLE_FORMATS:
            return hint
        raise ParseFailure("corrupt_file", "The Office file is damaged.") from exc
    try:
        if ole.exists("EncryptionInfo") and ole.exists("EncryptedPackage"):
            # A password-protected DOCX/XLSX/PPTX: the name is the only clue to which.
            return hint if hint in ("docx", "xlsx", "pptx") else "docx"
        if ole.exists("WordDocument"):
            return "doc"
        if ole.exists("Workbook") or ole.exists("Book"):
            return "xls"
        if ole.exists("PowerPoint Document"):
            return "ppt"
    finally:
        ole.close()
    raise ParseFailure("unsupported_format", "This Office file type is not supported.")


def _text_format(text: str, hint: str | None) -> str:
    head = text.lstrip("\ufeff \t\r\n")
    if hint in ("json", "jsonl") or head[:1] in ("{", "["):
        if len(text) <= _JSON_CHECK_CHARS and _is_json(text):
            return "json"
        lines = [line for line in text[:_JSON_CHECK_CHARS].splitlines()[:50] if line.strip()]
        if len(lines) >= 2 and all(_is_json(line) for line in lines):
            return "jsonl"
        if hint in ("json", "jsonl"):
            return hint
        if len(text) > _JSON_CHECK_CHARS and head[:1] in ("{", "["):
            return "json"
    if head.startswith("{\\rtf"):
        return "rtf"
    lower = head[:2048].lower()
    if head.startswith("<"):
        if re.search(r"<!doctype\s+html|<html[\s>]", lower) or hint == "html":
            return "html"
        if re.match(r"<(\?xml|[a-z_][\w.-]*(:[\w.-]+)?[\s>/])", lower):
            return "xml"
    if hint == "eml" or _looks_like_email(head):
        return "eml"
    if hint in ("csv", "markdown", "txt", "html", "xml"):
        return hint
    if re.search(r"<(p|div|table|body|h[1-6])[\s>]", lower):
        return "html"
    if re.search(r"(?m)^#{1,6} \S|^\|.+\|\s*$\n^\|?\s*:?-{3,}", text[:20000]):
        return "markdown"
    return "txt"


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _looks_like_email(head: str) -> bool:
    lines = head[:4096].encode("utf-8", "replace").splitlines()[:12]
    headers = sum(1 for line in lines if _EML_HEADER.match(line))
    return bool(lines) and bool(_EML_HEADER.match(lines[0])) and headers >= 3


def detect_format(data: bytes, filename: str, content_type: str | None = None) -> str:
    """The format id of `data` (one of SUPPORTED_FORMATS); raises ParseFailure for unknown or unsupported data."""
    if not data:
        raise ParseFailure("empty", "The file is empty.")
    hint = hint_format(filename, content_type)
    head = data[:16]
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return _zip_format(data, hint)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _ole_format(data, hint)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if (
        head.startswith(b"BM")
        and len(data) > 26
        and data[14:15] in (b"\x0c", b"\x28", b"\x38", b"\x40", b"\x6c", b"\x7c")
    ):
        return "bmp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"{\\rtf"):
        return "rtf"
    for magic, what in _UNSUPPORTED_MAGIC:
        if head.startswith(magic):
            raise ParseFailure("unsupported_format", f"The file is {what}, which is not a supported document.")
    if head[4:8] in (b"ftyp", b"moov", b"mdat"):
        raise ParseFailure("unsupported_format", "The file is a media file, which is not a supported document.")
    text = decode_text(data)
    if text is None:
        raise ParseFailure("unsupported_format", "The file is binary data of an unknown or unsupported type.")
    return _text_format(text, hint)
