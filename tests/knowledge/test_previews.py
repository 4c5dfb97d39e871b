"""Document previews over HTTP: page images and thumbnails of PDFs and images, text previews of other formats,
generated in the background after indexing, cached in object storage with ETags, permission-checked, removed with
the document; and where a PDF chunk's text is on its page (checked against pdfplumber's words)."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pdfplumber
import pytest
from PIL import Image, ImageDraw, ImageFont

from nexent.knowledge.chunking import ChunkSettings, chunk_document, document_text
from nexent.knowledge.parsing import parse_document
from nexent.knowledge.previews import ChunkSpan, locate_chunks
from nexent.providers import pool
from tests.conftest import make_settings, serve_in_process, wait_until
from tests.knowledge.test_knowledge_api import create_kb, new_owner, search, settled, upload
from tests.knowledge.test_parsing import image_bytes, pdf_bytes, pdf_text, text_image
from tests.support.identity import bearer, invite_and_register
from tests.support.model_server import RunningModelServer
from tests.test_http import assert_problem

CRANES = "Tower cranes lift steel beams on building sites"
ANCHOR = "The crane stands on a concrete foundation poured weeks before"
TRUCKS = "Mobile cranes ride on trucks and reach the site the same morning"
NOTES = "# Site notes\n\nThe safety officer checks every sling before a lift.\n"


def site_pdf() -> bytes:
    page1 = (
        pdf_text(72, 720, 18, "Crane handbook")
        + pdf_text(72, 680, 11, CRANES + ".")
        + pdf_text(72, 664, 11, "Their jibs turn through a full circle.")
        + pdf_text(300, 330, 18, "Foundations")
        + pdf_text(300, 300, 11, ANCHOR + ".")
    )
    page2 = pdf_text(72, 540, 18, "Mobile cranes") + pdf_text(72, 500, 11, TRUCKS + ".")
    return pdf_bytes([page1, page2])


@pytest.fixture(autouse=True)
def _fresh(embedder: RunningModelServer) -> None:
    embedder.server.reset()
    embedder.server.embedding_dim = 64
    pool._unhealthy_until.clear()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, builtin_models=False, knowledge_max_attempts=2)
    async with serve_in_process(settings) as http:
        yield http


def objects(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "data" / "objects").rglob("*") if p.is_file()]


def preview_objects(tmp_path: Path, doc_id: str) -> list[str]:
    return sorted(
        p.name for p in objects(tmp_path) if f"{doc_id}.preview" in str(p) and not p.name.endswith(".nexent-tmp")
    )


def rendered_all(tmp_path: Path, doc_id: str) -> Callable[[], Awaitable[bool]]:
    async def done() -> bool:
        return len(preview_objects(tmp_path, doc_id)) == 4

    return done


async def index_files(
    client: httpx.AsyncClient, owner: dict[str, Any], files: list[tuple[str, bytes, str]], **kb_body: Any
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    kb = await create_kb(client, owner, **kb_body)
    uploaded = await upload(client, owner, kb["id"], files)
    assert uploaded.status_code == 201, uploaded.text
    docs = await settled(client, owner, kb["id"])
    assert all(d["status"] == "indexed" for d in docs.values()), docs
    return kb, docs


async def test_pdf_pages_and_thumbnails_are_rendered_after_indexing_and_cached(
    client: httpx.AsyncClient, owner: dict[str, Any], tmp_path: Path
) -> None:
    kb, docs = await index_files(client, owner, [("handbook.pdf", site_pdf(), "application/pdf")])
    doc = docs["handbook.pdf"]
    base = f"/api/knowledge-bases/{kb['id']}/documents/{doc['id']}/preview"

    # The background job renders the thumbnail and the pages, beside the stored file.
    async def rendered() -> bool:
        return preview_objects(tmp_path, doc["id"]) == ["page-1.webp", "page-2.webp", "text.txt", "thumbnail.webp"]

    await wait_until(rendered, timeout=30)
    info = await client.get(base, headers=owner["headers"])
    assert info.status_code == 200, info.text
    assert info.json() == {
        "document_id": doc["id"],
        "kind": "pdf",
        "page_count": 2,
        "page_width": 1000,
        "thumbnail": True,
        "text": True,
        "error": None,
    }

    page = await client.get(f"{base}/pages/1", headers=owner["headers"])
    assert page.status_code == 200 and page.headers["content-type"] == "image/webp"
    assert page.headers["cache-control"] == "private, max-age=3600"
    image = Image.open(io.BytesIO(page.content))
    assert image.format == "WEBP" and image.width == 1000 and abs(image.height - 1000 * 792 / 612) <= 1
    # Served from storage: the stored object is what comes back.
    stored = next(p for p in objects(tmp_path) if p.name == "page-1.webp" and doc["id"] in str(p))
    assert stored.read_bytes() == page.content
    thumb = await client.get(f"{base}/thumbnail", headers=owner["headers"])
    assert Image.open(io.BytesIO(thumb.content)).width == 200

    # The ETag: a second request with it gets 304 and no body; another page has another ETag.
    etag = page.headers["etag"]
    again = await client.get(f"{base}/pages/1", headers={**owner["headers"], "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    stale = await client.get(f"{base}/pages/1", headers={**owner["headers"], "If-None-Match": '"other"'})
    assert stale.status_code == 200 and stale.content == page.content
    second = await client.get(f"{base}/pages/2", headers=owner["headers"])
    assert second.status_code == 200 and second.headers["etag"] != etag

    # A preview lost from storage is made again on request.
    stored.unlink()
    remade = await client.get(f"{base}/pages/1", headers=owner["headers"])
    assert remade.status_code == 200 and remade.content == page.content and stored.exists()

    # The text preview of a PDF is its parsed text.
    text = await client.get(f"{base}/text", headers=owner["headers"])
    assert text.status_code == 200 and text.headers["content-type"] == "text/plain; charset=utf-8"
    assert CRANES in text.text and TRUCKS in text.text

    # Bad input: pages out of range, not a number.
    assert_problem(await client.get(f"{base}/pages/3", headers=owner["headers"]), 404, "preview_not_found")
    assert_problem(await client.get(f"{base}/pages/0", headers=owner["headers"]), 422, "validation_error")
    assert_problem(await client.get(f"{base}/pages/first", headers=owner["headers"]), 422, "validation_error")
    unknown = f"/api/knowledge-bases/{kb['id']}/documents/{uuid.uuid4()}/preview"
    assert_problem(await client.get(unknown, headers=owner["headers"]), 404, "document_not_found")

    # Deleting the document removes its previews.
    deleted = await client.delete(f"/api/knowledge-bases/{kb['id']}/documents/{doc['id']}", headers=owner["headers"])
    assert deleted.status_code == 204
    assert preview_objects(tmp_path, doc["id"]) == []
    assert_problem(await client.get(f"{base}/pages/1", headers=owner["headers"]), 404, "document_not_found")


async def test_other_formats_get_a_text_preview_and_images_a_thumbnail(
    client: httpx.AsyncClient, owner: dict[str, Any], tmp_path: Path
) -> None:
    photo = image_bytes(text_image("CRANE LOAD CHART"), "png")
    kb, docs = await index_files(
        client, owner, [("notes.md", NOTES.encode(), "text/markdown"), ("chart.png", photo, "image/png")]
    )
    notes, chart = docs["notes.md"], docs["chart.png"]
    base = f"/api/knowledge-bases/{kb['id']}/documents"

    info = (await client.get(f"{base}/{notes['id']}/preview", headers=owner["headers"])).json()
    assert (info["kind"], info["page_count"], info["thumbnail"], info["text"]) == ("text", 0, False, True)
    text = await client.get(f"{base}/{notes['id']}/preview/text", headers=owner["headers"])
    assert text.status_code == 200 and text.text == "Site notes\n\nThe safety officer checks every sling before a lift."
    again = await client.get(
        f"{base}/{notes['id']}/preview/text", headers={**owner["headers"], "If-None-Match": text.headers["etag"]}
    )
    assert again.status_code == 304
    for part in ("thumbnail", "pages/1"):
        missing = await client.get(f"{base}/{notes['id']}/preview/{part}", headers=owner["headers"])
        assert_problem(missing, 404, "preview_not_found")

    info = (await client.get(f"{base}/{chart['id']}/preview", headers=owner["headers"])).json()
    assert (info["kind"], info["page_count"], info["thumbnail"]) == ("image", 1, True)
    thumb = await client.get(f"{base}/{chart['id']}/preview/thumbnail", headers=owner["headers"])
    assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.content)).size == (200, 40)
    page = await client.get(f"{base}/{chart['id']}/preview/pages/1", headers=owner["headers"])
    assert Image.open(io.BytesIO(page.content)).size == (900, 180)  # never scaled up
    ocr = await client.get(f"{base}/{chart['id']}/preview/text", headers=owner["headers"])
    assert "CRANE" in ocr.text.upper()

    # A knowledge base deleted takes every preview with it.
    assert preview_objects(tmp_path, chart["id"])
    assert (await client.delete(f"/api/knowledge-bases/{kb['id']}", headers=owner["headers"])).status_code == 204
    assert objects(tmp_path) == []


async def test_a_document_indexed_before_previews_gets_them_on_first_request(
    client: httpx.AsyncClient, owner: dict[str, Any], tmp_path: Path
) -> None:
    kb, docs = await index_files(client, owner, [("handbook.pdf", site_pdf(), "application/pdf")])
    doc = docs["handbook.pdf"]
    await wait_until(rendered_all(tmp_path, doc["id"]), timeout=30)
    for stored in objects(tmp_path):
        if f"{doc['id']}.preview" in str(stored):
            stored.unlink()
    base = f"/api/knowledge-bases/{kb['id']}/documents/{doc['id']}/preview"
    text = await client.get(f"{base}/text", headers=owner["headers"])  # parsed again
    assert text.status_code == 200 and ANCHOR in text.text
    assert (await client.get(f"{base}/thumbnail", headers=owner["headers"])).status_code == 200
    assert preview_objects(tmp_path, doc["id"]) == ["text.txt", "thumbnail.webp"]


async def test_a_file_that_cannot_be_rendered_records_its_failure_and_indexing_is_unaffected(
    client: httpx.AsyncClient, owner: dict[str, Any], tmp_path: Path
) -> None:
    kb, docs = await index_files(client, owner, [("handbook.pdf", site_pdf(), "application/pdf")])
    doc = docs["handbook.pdf"]
    await wait_until(rendered_all(tmp_path, doc["id"]), timeout=30)
    # The stored file is damaged after indexing: the pages cannot be made again, the text still reads.
    source = next(p for p in objects(tmp_path) if p.name == doc["id"])
    source.write_bytes(b"%PDF-1.4 garbage")
    (page,) = [p for p in objects(tmp_path) if p.name == "page-2.webp"]
    page.unlink()
    base = f"/api/knowledge-bases/{kb['id']}/documents/{doc['id']}/preview"
    failed = await client.get(f"{base}/pages/2", headers=owner["headers"])
    assert_problem(failed, 409, "preview_failed")
    assert failed.json()["reason"] == "corrupt_file"
    assert (await client.get(f"{base}/pages/1", headers=owner["headers"])).status_code == 200  # still stored
    # The document itself stays indexed and searchable: previews never change its state.
    listing = await client.get(f"/api/knowledge-bases/{kb['id']}/documents", headers=owner["headers"])
    assert listing.json()["items"][0]["status"] == "indexed"


async def test_the_background_job_records_a_failure_and_the_document_stays_indexed(
    client: httpx.AsyncClient, owner: dict[str, Any], tmp_path: Path
) -> None:
    """An image the parser reads (scaled down for OCR) but too large to decode for a preview (over 50 megapixels):
    the job records why, the document is indexed and searchable, its text preview works."""
    poster = Image.new("L", (8000, 7000), color=255)
    ImageDraw.Draw(poster).text((200, 3000), "SAFETY FIRST", fill=0, font=ImageFont.load_default(size=900))
    kb, docs = await index_files(client, owner, [("poster.png", image_bytes(poster, "png"), "image/png")])
    doc = docs["poster.png"]
    base = f"/api/knowledge-bases/{kb['id']}/documents/{doc['id']}/preview"

    async def recorded() -> dict[str, Any] | None:
        info: dict[str, Any] = (await client.get(base, headers=owner["headers"])).json()
        return info if info["error"] else None

    info = await wait_until(recorded, timeout=30)
    assert info["error"] == {"code": "too_large", "message": "The image is too large to preview."}
    assert preview_objects(tmp_path, doc["id"]) == ["error.json", "text.txt"]
    refused = await client.get(f"{base}/thumbnail", headers=owner["headers"])
    assert_problem(refused, 409, "preview_failed")
    assert refused.json()["reason"] == "too_large"
    assert "SAFETY" in (await client.get(f"{base}/text", headers=owner["headers"])).text.upper()
    hits = (await search(client, owner, kb["id"], "safety first", mode="bm25"))["hits"]
    assert [h["document_id"] for h in hits] == [doc["id"]] and hits[0]["box"] is None


async def test_previews_follow_the_documents_permissions(
    client: httpx.AsyncClient, owner: dict[str, Any], embedder: RunningModelServer
) -> None:
    kb, docs = await index_files(client, owner, [("handbook.pdf", site_pdf(), "application/pdf")])
    doc = docs["handbook.pdf"]
    base = f"/api/knowledge-bases/{kb['id']}/documents/{doc['id']}/preview"
    paths = [base, f"{base}/pages/1", f"{base}/thumbnail", f"{base}/text"]

    stranger = await new_owner(client, embedder)  # another tenant
    member = await invite_and_register(
        client, owner["access_token"], f"m-{uuid.uuid4().hex[:6]}@example.com", role="user"
    )
    member_headers = bearer(member["access_token"])
    key = (await client.post("/api/api-keys", json={"name": "k"}, headers=owner["headers"])).json()
    for path in paths:
        assert_problem(await client.get(path, headers=stranger["headers"]), 404, "knowledge_base_not_found")
        assert_problem(await client.get(path, headers=member_headers), 404, "knowledge_base_not_found")
        assert_problem(await client.get(path, headers=bearer(key["secret"])), 403, "api_key_not_allowed")
        assert_problem(await client.get(path), 401, "unauthorized")
    other_kb = await create_kb(client, owner)
    moved = f"/api/knowledge-bases/{other_kb['id']}/documents/{doc['id']}/preview/pages/1"
    assert_problem(await client.get(moved, headers=owner["headers"]), 404, "document_not_found")

    # A read share opens them.
    group = (await client.post("/api/groups", json={"name": "Readers"}, headers=owner["headers"])).json()
    await client.put(f"/api/groups/{group['id']}/members/{member['user']['id']}", headers=owner["headers"])
    shared = await client.put(
        f"/api/knowledge-bases/{kb['id']}/shares/{group['id']}", json={"permission": "read"}, headers=owner["headers"]
    )
    assert shared.status_code == 200, shared.text
    for path in paths:
        assert (await client.get(path, headers=member_headers)).status_code == 200, path


async def test_a_pdf_chunk_knows_its_page_and_box(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    data = site_pdf()
    kb, docs = await index_files(
        client, owner, [("handbook.pdf", data, "application/pdf")], chunking={"target_chars": 200, "overlap_chars": 0}
    )
    doc = docs["handbook.pdf"]
    listing = await client.get(
        f"/api/knowledge-bases/{kb['id']}/documents/{doc['id']}/chunks", headers=owner["headers"]
    )
    chunks = listing.json()["items"]
    assert all(c["box"] is not None for c in chunks), chunks

    words: dict[tuple[int, str], tuple[float, float, float, float]] = {}
    seen: set[tuple[int, str]] = set()
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for number, sheet in enumerate(pdf.pages, start=1):
            for w in sheet.extract_words():
                key = (number, w["text"].strip("."))
                if key in seen:  # a word printed twice on the page: which one is meant is unclear
                    words.pop(key, None)
                    continue
                seen.add(key)
                words[key] = (
                    w["x0"] / sheet.width,
                    w["top"] / sheet.height,
                    w["x1"] / sheet.width,
                    w["bottom"] / sheet.height,
                )

    def holds(box: list[float], word: tuple[float, float, float, float]) -> bool:
        slack = 0.01
        return (
            box[0] - slack <= word[0]
            and box[1] - slack <= word[1]
            and word[2] <= box[2] + slack
            and word[3] <= box[3] + slack
        )

    for phrase, page in ((CRANES, 1), (ANCHOR, 1), (TRUCKS, 2)):
        chunk = next(c for c in chunks if phrase in c["text"] and c["page"] == page)
        for word in [w for w in phrase.split() if (page, w) in words]:
            assert holds(chunk["box"], words[(page, word)]), (phrase, word, chunk["box"], words[(page, word)])
    # The box is tight: the chunk of the anchor sentence (lower right of page 1) does not cover the title.
    anchor = next(c for c in chunks if "foundation" in c["text"])
    assert not holds(anchor["box"], words[(1, "handbook")])
    assert anchor["box"][0] > 0.45 and anchor["box"][1] > 0.55

    # Search hits and the citation's chunk carry it.
    hit = (await search(client, owner, kb["id"], "concrete foundation", mode="bm25"))["hits"][0]
    assert hit["page"] == 1 and hit["box"] == anchor["box"]
    detail = await client.get(f"/api/knowledge-bases/{kb['id']}/chunks/{hit['chunk_id']}", headers=owner["headers"])
    assert detail.json()["box"] == anchor["box"]


def test_locating_chunks_spanning_pages_and_scans() -> None:
    """A chunk that goes on to the next page is boxed to its first page's end; pages without a text layer
    and text that is not on the page give no box."""
    page1 = pdf_text(72, 700, 11, CRANES + ".") + pdf_text(300, 300, 11, ANCHOR + ".")
    data = pdf_bytes([page1, pdf_text(72, 500, 11, TRUCKS + ".")])
    doc = parse_document(data, "handbook.pdf")
    text = document_text(doc)
    chunks = chunk_document(doc, ChunkSettings(target_chars=2000, overlap_chars=0))
    (only,) = chunks
    assert (only.page, only.page_end) == (1, 2)
    (box,) = locate_chunks(data, [ChunkSpan(text[only.start : only.end], only.page, only.page_end)])
    assert box is not None and box[1] < 0.15 and box[3] > 0.6  # from the first line to the anchor sentence
    assert box[2] > 0.8  # the anchor sentence, right of the others
    missing = locate_chunks(
        data, [ChunkSpan("Nothing like this is printed anywhere", 1, 1), ChunkSpan("x", None, None)]
    )
    assert missing == [None, None]
