"""Fetching a web page as plain text, through the SSRF guards of `netguard`."""

from __future__ import annotations

import asyncio
import codecs
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import httpx

from nexent.tools.netguard import guarded_client, validate_url
from nexent.tools.registry import ToolError

__all__ = ["FetchedPage", "fetch_page", "html_to_text"]

MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_REDIRECTS = 5
FETCH_TIMEOUT = 15.0
USER_AGENT = "NexentBot/0.1 (+https://nexent.dev; fetch_webpage)"
_REDIRECT_STATUSES = (301, 302, 303, 307, 308)
_TEXT_TYPES = (
    "application/json",
    "application/ld+json",
    "application/xml",
    "application/xhtml+xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/javascript",
)
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas"})
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt", "figcaption",
        "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav",
        "ol", "p", "pre", "section", "summary", "table", "tbody", "td", "th", "thead", "tr", "ul",
    }
)  # fmt: skip


@dataclass(frozen=True)
class FetchedPage:
    url: str
    status: int
    content_type: str
    title: str | None
    text: str
    truncated: bool


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title_parts.append(data)
        else:
            self.parts.append(data)


def _tidy(text: str) -> str:
    lines = (re.sub(r"\s+", " ", line).strip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> tuple[str | None, str]:
    """The title and readable text of an HTML document (scripts, styles and markup removed)."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    title = _tidy("".join(parser.title_parts)) or None
    return title, _tidy("".join(parser.parts))


def _is_text(content_type: str) -> bool:
    return not content_type or content_type.startswith("text/") or content_type in _TEXT_TYPES


def _looks_like_html(content_type: str, body: bytes) -> bool:
    if content_type in ("text/html", "application/xhtml+xml"):
        return True
    head = body[:512].lstrip().lower()
    return not content_type and (head.startswith(b"<!doctype html") or head.startswith(b"<html"))


def _decode(body: bytes, charset: str | None) -> str:
    encoding = "utf-8"
    if charset:
        try:
            encoding = codecs.lookup(charset).name
        except LookupError:
            encoding = "utf-8"
    return body.decode(encoding, errors="replace")


async def _read_limited(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """The body, decoded from gzip or deflate, cut at `limit` bytes (and whether it was cut). Decompression is
    bounded too, so a small compressed bomb cannot inflate past the limit."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    decompressor: Any = None
    if encoding in ("gzip", "x-gzip", "deflate"):
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib or gzip header, detected
    elif encoding not in ("", "identity"):
        raise ToolError(f"The page uses an unsupported content encoding ({encoding}).", "unsupported_content")
    out = bytearray()
    raw_size = 0
    async for chunk in response.aiter_raw():
        raw_size += len(chunk)
        if decompressor is not None:
            try:
                chunk = decompressor.decompress(chunk, limit + 1 - len(out))
            except zlib.error:
                raise ToolError("The page's compressed body is corrupt.", "bad_response") from None
        out += chunk
        if len(out) > limit or raw_size > limit:
            return bytes(out[:limit]), True
    return bytes(out), False


async def fetch_page(
    url: str,
    *,
    allowed_domains: Sequence[str] | None = None,
    allow_private_network: bool = False,
    time_limit: float = FETCH_TIMEOUT,
    max_bytes: int = MAX_BODY_BYTES,
    max_redirects: int = MAX_REDIRECTS,
) -> FetchedPage:
    """GET `url` and return it as text, checking every redirect hop; raises `ToolError` for anything refused or
    failed. `time_limit` (seconds) bounds the whole fetch."""
    target = validate_url(url, allowed_domains=allowed_domains, allow_private_network=allow_private_network)
    headers = {
        "User-Agent": USER_AGENT,
        "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5",
        "Accept-Encoding": "gzip, deflate",
    }
    try:
        async with asyncio.timeout(time_limit):
            async with guarded_client(allow_private_network=allow_private_network, timeout=time_limit) as client:
                for _ in range(max_redirects + 1):
                    request = client.build_request("GET", target, headers=headers)
                    response = await client.send(request, stream=True)
                    try:
                        location = response.headers.get("location")
                        if response.status_code in _REDIRECT_STATUSES and location:
                            target = validate_url(
                                response.url.join(location),
                                allowed_domains=allowed_domains,
                                allow_private_network=allow_private_network,
                            )
                            continue
                        return await _page(response, max_bytes)
                    finally:
                        await response.aclose()
    except TimeoutError:
        raise ToolError(f"Fetching the page took longer than {time_limit:g} seconds.", "timeout") from None
    except httpx.TimeoutException:
        raise ToolError("The server did not answer in time.", "timeout") from None
    except httpx.HTTPError as exc:
        raise ToolError(f"The page could not be fetched ({type(exc).__name__}).", "network_error") from None
    raise ToolError(f"The page redirected more than {max_redirects} times.", "too_many_redirects")


async def _page(response: httpx.Response, max_bytes: int) -> FetchedPage:
    if response.status_code >= 400:
        raise ToolError(f"The server answered HTTP {response.status_code}.", "http_error")
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not _is_text(content_type):
        raise ToolError(f"The page is {content_type}, not text or HTML.", "unsupported_content")
    body, truncated = await _read_limited(response, max_bytes)
    text = _decode(body, response.charset_encoding)
    title: str | None = None
    if _looks_like_html(content_type, body):
        title, text = await asyncio.to_thread(html_to_text, text)
    return FetchedPage(
        url=str(response.url),
        status=response.status_code,
        content_type=content_type or "unknown",
        title=title,
        text=text,
        truncated=truncated,
    )
