"""Knowledge bases over HTTP, end to end on the embedded shape: uploads, the document state machine with typed
errors, live progress, search in every mode, chunk edits, re-embedding with another model, sharing."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.providers import pool
from tests.conftest import REDIS_URL, S3_ACCESS_KEY, S3_SECRET_KEY, make_settings, serve_in_process, wait_until
from tests.support.bombs import office_bomb, plain_document
from tests.support.identity import bearer, invite_and_register, register
from tests.support.model_server import ChatReply, RunningModelServer, ServiceReply, run_model_server
from tests.test_http import assert_problem

GUIDE = """# Espresso guide

## Grinding

Grind the beans finely, just before brewing. A burr grinder gives an even grind.

## Brewing

Brew at nine bars of pressure for about twenty-five seconds. The crema should be golden.
"""
PRICES = "item,price,currency\nespresso,2.50,EUR\ncappuccino,3.20,EUR\nflat white,3.60,EUR\n"
NOTES = "Milk steaming: keep the wand just under the surface to stretch the milk into microfoam."


@pytest.fixture(autouse=True)
def _fresh(embedder: RunningModelServer) -> None:
    embedder.server.reset()
    embedder.server.embedding_dim = 64
    pool._unhealthy_until.clear()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, builtin_models=False, knowledge_max_attempts=2, knowledge_max_file_bytes=200_000)
    async with serve_in_process(settings) as http:
        yield http


async def add_model(
    client: httpx.AsyncClient, token: str, server: RunningModelServer, kind: str = "embedding", name: str = "Embedder"
) -> str:
    """A model of the tenant served by the scripted model server; returns its id."""
    response = await client.post(
        "/api/models",
        json={"name": name, "kind": kind, "model": f"scripted-{kind}", "base_url": server.base_url},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def new_owner(client: httpx.AsyncClient, embedder: RunningModelServer) -> dict[str, Any]:
    """A new tenant's owner with an embedding model: tokens, `headers` and `model_id`."""
    pair = await register(client, f"kb-{uuid.uuid4().hex[:6]}@example.com")
    model_id = await add_model(client, pair["access_token"], embedder)
    return {**pair, "model_id": model_id, "headers": bearer(pair["access_token"])}


async def create_kb(client: httpx.AsyncClient, owner: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/knowledge-bases",
        json={"name": f"KB {uuid.uuid4().hex[:6]}", "embedding_model_id": owner["model_id"], **body},
        headers=owner["headers"],
    )
    assert response.status_code == 201, response.text
    kb: dict[str, Any] = response.json()
    return kb


async def upload(
    client: httpx.AsyncClient, owner: dict[str, Any], kb_id: str, files: list[tuple[str, bytes, str]], **form: str
) -> httpx.Response:
    return await client.post(
        f"/api/knowledge-bases/{kb_id}/documents",
        files=[("file", (name, data, content_type)) for name, data, content_type in files],
        data=form,
        headers=owner["headers"],
    )


async def settled(client: httpx.AsyncClient, owner: dict[str, Any], kb_id: str) -> dict[str, dict[str, Any]]:
    """Follow the progress stream until no document is in processing; then the documents by file name."""
    async with client.stream(
        "GET", f"/api/knowledge-bases/{kb_id}/events", params={"until_idle": "true"}, headers=owner["headers"]
    ) as stream:
        assert stream.status_code == 200
        async for _ in stream.aiter_lines():
            pass
    listing = await client.get(f"/api/knowledge-bases/{kb_id}/documents", headers=owner["headers"])
    assert listing.status_code == 200
    return {doc["file_name"]: doc for doc in listing.json()["items"]}


async def index_guide_and_notes(client: httpx.AsyncClient, owner: dict[str, Any], kb_id: str) -> None:
    """Upload the espresso guide and the milk notes and wait until they are processed."""
    files = [("guide.md", GUIDE.encode(), "text/markdown"), ("notes.txt", NOTES.encode(), "text/plain")]
    await upload(client, owner, kb_id, files)
    await settled(client, owner, kb_id)


async def search(
    client: httpx.AsyncClient, owner: dict[str, Any], kb_id: str, query: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/api/knowledge-bases/{kb_id}/search", json={"query": query, **body}, headers=owner["headers"]
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_upload_index_and_search_in_every_mode(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    kb = await create_kb(
        client, owner, description="Coffee know-how", chunking={"target_chars": 300, "overlap_chars": 0}
    )
    assert kb["embedding_dimension"] == 64
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("notes/milk.txt", NOTES)
    response = await upload(
        client,
        owner,
        kb["id"],
        [
            ("guide.md", GUIDE.encode(), "text/markdown"),
            ("prices.csv", PRICES.encode(), "text/csv"),
            ("bundle.zip", archive.getvalue(), "application/zip"),
            ("again.md", GUIDE.encode(), "text/markdown"),  # the same content: a duplicate
            ("empty.txt", b"", "text/plain"),
            ("tool.exe", b"MZ\x90\x00" + bytes(range(256)) * 4, "application/octet-stream"),
        ],
        metadata=json.dumps({"team": "barista"}),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert [(d["document"]["file_name"], d["duplicate"]) for d in body["documents"]] == [
        ("guide.md", False),
        ("prices.csv", False),
        ("bundle.zip", False),
        ("guide.md", True),
    ]
    assert {r["file_name"]: r["error"]["code"] for r in body["rejected"]} == {
        "empty.txt": "empty",
        "tool.exe": "unsupported_format",
    }
    docs = await settled(client, owner, kb["id"])
    assert {name: doc["status"] for name, doc in docs.items()} == dict.fromkeys(
        ["guide.md", "prices.csv", "bundle.zip"], "indexed"
    )
    assert all(doc["progress"] == 1.0 and doc["chunk_count"] >= 1 for doc in docs.values())
    assert docs["guide.md"]["metadata"] == {"team": "barista"}

    for mode in ("hybrid", "bm25", "vector"):
        result = await search(client, owner, kb["id"], "crema pressure brewing", mode=mode, top_k=3)
        assert result["mode"] == mode
        top = result["hits"][0]
        assert top["file_name"] == "guide.md" and "nine bars" in top["text"], (mode, result)
        assert top["heading_path"][-1] == "Brewing"
    # Tables stay tables, and members of archives keep their path.
    prices = (await search(client, owner, kb["id"], "cappuccino price", mode="bm25"))["hits"][0]
    assert prices["file_name"] == "prices.csv" and "| cappuccino | 3.20 | EUR |" in prices["text"]
    milk = (await search(client, owner, kb["id"], "steaming microfoam", mode="bm25"))["hits"][0]
    assert milk["file_name"] == "bundle.zip" and milk["source"] == "notes/milk.txt"
    # Filters by document and metadata.
    only_prices = await search(client, owner, kb["id"], "espresso", document_ids=[docs["prices.csv"]["id"]])
    assert {h["file_name"] for h in only_prices["hits"]} == {"prices.csv"}
    assert (await search(client, owner, kb["id"], "espresso", metadata={"team": "kitchen"}))["hits"] == []
    assert (await search(client, owner, kb["id"], "espresso", metadata={"team": "barista"}))["hits"]

    detail = await client.get(f"/api/knowledge-bases/{kb['id']}", headers=owner["headers"])
    assert detail.json()["document_counts"]["indexed"] == 3


async def test_chunks_can_be_listed_edited_and_deleted(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    kb = await create_kb(client, owner)
    await upload(client, owner, kb["id"], [("notes.txt", NOTES.encode(), "text/plain")])
    doc = (await settled(client, owner, kb["id"]))["notes.txt"]
    chunks = await client.get(f"/api/knowledge-bases/{kb['id']}/documents/{doc['id']}/chunks", headers=owner["headers"])
    assert chunks.status_code == 200
    (chunk,) = chunks.json()["items"]
    assert chunk["text"].startswith("Milk steaming") and chunk["start_offset"] == 0 and not chunk["edited"]

    calls_before = sum(row["calls"] for row in (await client.get("/api/usage", headers=owner["headers"])).json())
    edited = await client.patch(
        f"/api/knowledge-bases/{kb['id']}/chunks/{chunk['id']}",
        json={"text": "Latte art needs silky microfoam and a steady pour."},
        headers=owner["headers"],
    )
    assert edited.status_code == 200 and edited.json()["edited"]
    # The edit's embedding call is metered: its usage report is not left waiting (on SQLite, for a minute, then
    # lost) behind the edit's own uncommitted write.
    calls_after = sum(row["calls"] for row in (await client.get("/api/usage", headers=owner["headers"])).json())
    assert calls_after == calls_before + 1
    hits = (await search(client, owner, kb["id"], "latte art pour", mode="bm25"))["hits"]
    assert hits and hits[0]["chunk_id"] == chunk["id"] and "Latte art" in hits[0]["text"]
    assert (await search(client, owner, kb["id"], "steaming wand", mode="bm25"))["hits"] == []

    blank = await client.patch(
        f"/api/knowledge-bases/{kb['id']}/chunks/{chunk['id']}", json={"text": "  "}, headers=owner["headers"]
    )
    assert_problem(blank, 422, "validation_error")
    deleted = await client.delete(f"/api/knowledge-bases/{kb['id']}/chunks/{chunk['id']}", headers=owner["headers"])
    assert deleted.status_code == 204
    assert (await search(client, owner, kb["id"], "latte art pour", mode="bm25"))["hits"] == []


async def test_a_bad_file_fails_with_a_typed_error_and_the_others_are_indexed(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    kb = await create_kb(client, owner)
    corrupt_pdf = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer\n<<>>\n%%EOF-broken"
    response = await upload(
        client,
        owner,
        kb["id"],
        [("broken.pdf", corrupt_pdf, "application/pdf"), ("notes.txt", NOTES.encode(), "text/plain")],
    )
    assert response.status_code == 201
    docs = await settled(client, owner, kb["id"])
    assert docs["notes.txt"]["status"] == "indexed"
    broken = docs["broken.pdf"]
    assert broken["status"] == "failed" and broken["error"]["code"] == "corrupt_file" and broken["error"]["message"]
    assert broken["chunk_count"] == 0

    # Re-indexing a failed document tries again (and fails the same way, with the same typed error).
    again = await client.post(
        f"/api/knowledge-bases/{kb['id']}/documents/{broken['id']}/reindex", headers=owner["headers"]
    )
    assert again.status_code == 202 and again.json()["status"] == "queued"
    docs = await settled(client, owner, kb["id"])
    assert docs["broken.pdf"]["error"]["code"] == "corrupt_file" and docs["broken.pdf"]["attempts"] == 1


async def test_office_bombs_fail_with_too_large_and_the_server_stays_up(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    # Each under 100 KB, inflating to 16 MiB of XML; uploaded with an ordinary file.
    kb = await create_kb(client, owner)
    bombs = [(f"bomb.{fmt}", office_bomb(fmt), "application/octet-stream") for fmt in ("docx", "xlsx", "pptx")]
    response = await upload(client, owner, kb["id"], [*bombs, ("notes.txt", NOTES.encode(), "text/plain")])
    assert response.status_code == 201, response.text
    docs = await settled(client, owner, kb["id"])
    assert docs["notes.txt"]["status"] == "indexed"
    for name, _, _ in bombs:
        assert (docs[name]["status"], docs[name]["error"]["code"]) == ("failed", "too_large"), docs[name]
        assert docs[name]["chunk_count"] == 0
    # The server, and parsing, go on.
    plain = [("plain.docx", plain_document("docx"), "application/octet-stream")]
    assert (await upload(client, owner, kb["id"], plain)).status_code == 201
    assert (await settled(client, owner, kb["id"]))["plain.docx"]["status"] == "indexed"


async def test_an_embedding_model_that_fails_ends_in_embedding_failed(
    client: httpx.AsyncClient, owner: dict[str, Any], embedder: RunningModelServer
) -> None:
    kb = await create_kb(client, owner)
    # A refused key cannot get better by retrying: the document fails at once.
    embedder.server.enqueue_embeddings(ServiceReply.error(401, "invalid api key"))
    await upload(client, owner, kb["id"], [("notes.txt", NOTES.encode(), "text/plain")])
    doc = (await settled(client, owner, kb["id"]))["notes.txt"]
    assert doc["status"] == "failed" and doc["error"]["code"] == "embedding_failed"
    assert "invalid api key" in doc["error"]["message"].lower() or doc["error"]["message"]
    # A server error is retried (by the client, then by the job) before the document fails.
    embedder.server.enqueue_embeddings(*[ServiceReply.error(500)] * 6)
    await upload(client, owner, kb["id"], [("guide.md", GUIDE.encode(), "text/markdown")])
    doc = (await settled(client, owner, kb["id"]))["guide.md"]
    assert doc["status"] == "failed" and doc["error"]["code"] == "embedding_failed" and doc["attempts"] == 2
    # Once the model answers again, a re-index succeeds.
    await client.post(f"/api/knowledge-bases/{kb['id']}/documents/{doc['id']}/reindex", headers=owner["headers"])
    assert (await settled(client, owner, kb["id"]))["guide.md"]["status"] == "indexed"


async def test_small_documents_of_an_upload_are_processed_as_one_group(
    client: httpx.AsyncClient, owner: dict[str, Any], embedder: RunningModelServer
) -> None:
    """One job takes the small files of an upload together: their texts reach the model in one request, a failed
    call retries the whole group, and a bad file of the group fails alone with its own typed error."""
    kb = await create_kb(client, owner)
    notes = [
        (f"note-{n}.txt", f"Note {n}: descale the machine every {n + 2} weeks.".encode(), "text/plain")
        for n in range(6)
    ]
    broken = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer\n<<>>\n%%EOF-broken"
    embedder.server.enqueue_embeddings(*[ServiceReply.error(500)] * 3)  # the client's three tries of attempt 1
    before = len(embedder.server.embedding_requests)
    response = await upload(
        client,
        owner,
        kb["id"],
        [*notes, ("broken.pdf", broken, "application/pdf"), ("blank.txt", b" \n\n \t\n", "text/plain")],
    )
    assert response.status_code == 201, response.text
    docs = await settled(client, owner, kb["id"])
    for name, _, _ in notes:
        assert docs[name]["status"] == "indexed" and docs[name]["attempts"] == 2 and docs[name]["chunk_count"] == 1
    assert docs["broken.pdf"]["status"] == "failed" and docs["broken.pdf"]["error"]["code"] == "corrupt_file"
    assert docs["blank.txt"]["status"] == "failed" and docs["blank.txt"]["error"]["code"] == "empty"
    calls = [r.body["input"] for r in embedder.server.embedding_requests[before:]]
    assert len(calls) == 4 and all(len(texts) == 6 for texts in calls)  # 3 failed tries, then the group at once
    found = await search(client, owner, kb["id"], "descale every 5 weeks", mode="bm25", top_k=1)
    assert found["hits"][0]["file_name"] == "note-3.txt"


async def test_a_dimension_mismatch_is_caught_before_anything_is_written(
    client: httpx.AsyncClient, owner: dict[str, Any], embedder: RunningModelServer
) -> None:
    kb = await create_kb(client, owner)
    embedder.server.embedding_dim = 32  # the model behind the configuration changed
    await upload(client, owner, kb["id"], [("notes.txt", NOTES.encode(), "text/plain")])
    doc = (await settled(client, owner, kb["id"]))["notes.txt"]
    assert doc["status"] == "failed" and doc["error"]["code"] == "dimension_mismatch"
    assert "32" in doc["error"]["message"] and "64" in doc["error"]["message"]
    embedder.server.embedding_dim = 64
    assert (await search(client, owner, kb["id"], "milk", mode="bm25"))["hits"] == []


async def test_changing_the_embedding_model_re_embeds_every_chunk(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    kb = await create_kb(client, owner)
    await upload(client, owner, kb["id"], [("guide.md", GUIDE.encode(), "text/markdown")])
    await settled(client, owner, kb["id"])
    with run_model_server(embedding_dim=32) as other:
        new_model = await add_model(client, owner["access_token"], other, name="Smaller")
        changed = await client.patch(
            f"/api/knowledge-bases/{kb['id']}", json={"embedding_model_id": new_model}, headers=owner["headers"]
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["reembedding"] == {"embedding_model_id": new_model, "dimension": 32}
        # Searches keep working on the old index meanwhile; then the new one takes over.

        async def switched() -> dict[str, Any] | None:
            current = (await client.get(f"/api/knowledge-bases/{kb['id']}", headers=owner["headers"])).json()
            return current if current["reembedding"] is None else None

        current = await wait_until(switched, timeout=30)
        assert current["embedding_model_id"] == new_model and current["embedding_dimension"] == 32
        hits = (await search(client, owner, kb["id"], "crema brewing pressure", mode="vector"))["hits"]
        assert hits and "nine bars" in hits[0]["text"]
        assert other.server.embedding_requests  # the new model embedded the chunks and the query


async def test_bad_input_gets_clear_errors(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    headers = owner["headers"]
    missing_model = await client.post(
        "/api/knowledge-bases", json={"name": "X", "embedding_model_id": str(uuid.uuid4())}, headers=headers
    )
    assert_problem(missing_model, 422, "invalid_knowledge_base")
    overlap = await client.post(
        "/api/knowledge-bases",
        json={
            "name": "Y",
            "embedding_model_id": owner["model_id"],
            "chunking": {"target_chars": 400, "overlap_chars": 300},
        },
        headers=headers,
    )
    assert_problem(overlap, 422, "validation_error")
    kb = await create_kb(client, owner, name="Unique")
    duplicate = await client.post(
        "/api/knowledge-bases", json={"name": "unique", "embedding_model_id": owner["model_id"]}, headers=headers
    )
    assert_problem(duplicate, 409, "knowledge_base_name_taken")
    bad_metadata = await upload(client, owner, kb["id"], [("a.txt", b"hello", "text/plain")], metadata='{"page": 3}')
    assert_problem(bad_metadata, 422, "invalid_metadata")
    not_json = await upload(client, owner, kb["id"], [("a.txt", b"hello", "text/plain")], metadata="{oops")
    assert_problem(not_json, 422, "invalid_metadata")
    too_big = await upload(client, owner, kb["id"], [("big.txt", b"a" * 200_001, "text/plain")])
    problem = assert_problem(too_big, 422, "no_acceptable_files")
    assert problem["rejected"] == [
        {"file_name": "big.txt", "error": {"code": "too_large", "message": problem["rejected"][0]["error"]["message"]}}  # type: ignore[index]
    ]
    no_file = await client.post(f"/api/knowledge-bases/{kb['id']}/documents", headers=headers)
    assert no_file.status_code == 422
    bad_mode = await client.post(
        f"/api/knowledge-bases/{kb['id']}/search", json={"query": "x", "mode": "fuzzy"}, headers=headers
    )
    assert_problem(bad_mode, 422, "validation_error")
    unknown = await client.get(f"/api/knowledge-bases/{kb['id']}/documents/{uuid.uuid4()}", headers=headers)
    assert_problem(unknown, 404, "document_not_found")


async def test_members_see_knowledge_bases_through_group_shares(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    kb = await create_kb(client, owner)
    await upload(client, owner, kb["id"], [("notes.txt", NOTES.encode(), "text/plain")])
    await settled(client, owner, kb["id"])
    member = await invite_and_register(
        client, owner["access_token"], f"m-{uuid.uuid4().hex[:6]}@example.com", role="user"
    )
    member_headers = bearer(member["access_token"])
    assert (await client.get("/api/knowledge-bases", headers=member_headers)).json()["items"] == []
    hidden = await client.post(
        f"/api/knowledge-bases/{kb['id']}/search", json={"query": "milk"}, headers=member_headers
    )
    assert_problem(hidden, 404, "knowledge_base_not_found")
    denied = await client.post(
        "/api/knowledge-bases", json={"name": "Mine", "embedding_model_id": owner["model_id"]}, headers=member_headers
    )
    assert_problem(denied, 403, "permission_denied")

    group = await client.post("/api/groups", json={"name": "Baristas"}, headers=owner["headers"])
    assert group.status_code == 201, group.text
    group_id = group.json()["id"]
    added = await client.put(f"/api/groups/{group_id}/members/{member['user']['id']}", headers=owner["headers"])
    assert added.status_code in (200, 201, 204), added.text
    shared = await client.put(
        f"/api/knowledge-bases/{kb['id']}/shares/{group_id}", json={"permission": "read"}, headers=owner["headers"]
    )
    assert shared.status_code == 200, shared.text
    listing = (await client.get("/api/knowledge-bases", headers=member_headers)).json()["items"]
    assert [(item["id"], item["can_edit"]) for item in listing] == [(kb["id"], False)]
    found = await client.post(f"/api/knowledge-bases/{kb['id']}/search", json={"query": "milk"}, headers=member_headers)
    assert found.status_code == 200 and found.json()["hits"]
    refused = await client.post(
        f"/api/knowledge-bases/{kb['id']}/documents",
        files=[("file", ("x.txt", b"more text", "text/plain"))],
        headers=member_headers,
    )
    assert_problem(refused, 403, "permission_denied")


async def test_deleting_documents_and_knowledge_bases_removes_them_from_search(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    kb = await create_kb(client, owner)
    await upload(client, owner, kb["id"], [("notes.txt", NOTES.encode(), "text/plain")])
    doc = (await settled(client, owner, kb["id"]))["notes.txt"]
    deleted = await client.delete(f"/api/knowledge-bases/{kb['id']}/documents/{doc['id']}", headers=owner["headers"])
    assert deleted.status_code == 204
    assert (await search(client, owner, kb["id"], "milk steaming", mode="bm25"))["hits"] == []
    # The same file can come back after its document was deleted.
    again = await upload(client, owner, kb["id"], [("notes.txt", NOTES.encode(), "text/plain")])
    assert again.json()["documents"][0]["duplicate"] is False
    await settled(client, owner, kb["id"])
    assert (await client.delete(f"/api/knowledge-bases/{kb['id']}", headers=owner["headers"])).status_code == 204
    gone = await client.post(
        f"/api/knowledge-bases/{kb['id']}/search", json={"query": "milk"}, headers=owner["headers"]
    )
    assert_problem(gone, 404, "knowledge_base_not_found")


async def test_citations_open_one_chunk_and_download_the_original_file(
    client: httpx.AsyncClient, owner: dict[str, Any], embedder: RunningModelServer, tmp_path: Path
) -> None:
    kb = await create_kb(client, owner, chunking={"target_chars": 300, "overlap_chars": 0})
    name = "Café «guide» 50%; x.md"
    files = [(name, GUIDE.encode(), "text/markdown; charset=utf-8"), ("notes.txt", NOTES.encode(), "x<y>/bad")]
    await upload(client, owner, kb["id"], files, metadata=json.dumps({"team": "barista"}))
    docs = await settled(client, owner, kb["id"])
    assert set(docs) == {name, "notes.txt"}, list(docs)
    guide = docs[name]
    hit = (await search(client, owner, kb["id"], "crema pressure brewing", mode="bm25"))["hits"][0]
    base = f"/api/knowledge-bases/{kb['id']}"

    chunk = await client.get(f"{base}/chunks/{hit['chunk_id']}", headers=owner["headers"])
    assert chunk.status_code == 200, chunk.text
    body = chunk.json()
    assert body["id"] == hit["chunk_id"] and body["text"] == hit["text"] and "nine bars" in body["text"]
    assert (body["document_id"], body["file_name"], body["knowledge_base_id"]) == (guide["id"], name, kb["id"])
    assert body["heading_path"][-1] == "Brewing" and body["page"] is None and body["position"] >= 1
    assert body["document_status"] == "indexed" and body["document_metadata"] == {"team": "barista"}
    listed = await client.get(f"{base}/documents/{guide['id']}/chunks", headers=owner["headers"])
    same = next(c for c in listed.json()["items"] if c["id"] == hit["chunk_id"])
    assert {key: body[key] for key in same} == same  # what the document's chunk listing says, and more

    download = await client.get(f"{base}/documents/{guide['id']}/file", headers=owner["headers"])
    assert download.status_code == 200
    assert download.content == GUIDE.encode()
    assert download.headers["content-type"] == "text/markdown"
    assert download.headers["content-disposition"] == (
        'attachment; filename="Caf_ _guide_ 50_; x.md"; '
        "filename*=UTF-8''Caf%C3%A9%20%C2%ABguide%C2%BB%2050%25%3B%20x.md"
    )
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-length"] == str(len(GUIDE.encode()))
    # A content type that is not a plain type/subtype is not echoed.
    notes = await client.get(f"{base}/documents/{docs['notes.txt']['id']}/file", headers=owner["headers"])
    assert notes.content == NOTES.encode() and notes.headers["content-type"] == "application/octet-stream"
    assert notes.headers["content-disposition"] == "attachment; filename=\"notes.txt\"; filename*=UTF-8''notes.txt"

    # Unknown, malformed and foreign ids.
    unknown_chunk = await client.get(f"{base}/chunks/{uuid.uuid4()}", headers=owner["headers"])
    assert_problem(unknown_chunk, 404, "chunk_not_found")
    assert_problem(await client.get(f"{base}/chunks/not-a-uuid", headers=owner["headers"]), 422, "validation_error")
    unknown_doc = await client.get(f"{base}/documents/{uuid.uuid4()}/file", headers=owner["headers"])
    assert_problem(unknown_doc, 404, "document_not_found")
    other_kb = await create_kb(client, owner)
    elsewhere = await client.get(
        f"/api/knowledge-bases/{other_kb['id']}/chunks/{hit['chunk_id']}", headers=owner["headers"]
    )
    assert_problem(elsewhere, 404, "chunk_not_found")
    moved = await client.get(
        f"/api/knowledge-bases/{other_kb['id']}/documents/{guide['id']}/file", headers=owner["headers"]
    )
    assert_problem(moved, 404, "document_not_found")
    stranger = await new_owner(client, embedder)
    for path in (f"{base}/chunks/{hit['chunk_id']}", f"{base}/documents/{guide['id']}/file"):
        assert_problem(await client.get(path, headers=stranger["headers"]), 404, "knowledge_base_not_found")

    # Members read through a share, like the chunk listing; API keys may not.
    member = await invite_and_register(
        client, owner["access_token"], f"m-{uuid.uuid4().hex[:6]}@example.com", role="user"
    )
    member_headers = bearer(member["access_token"])
    hidden = await client.get(f"{base}/documents/{guide['id']}/file", headers=member_headers)
    assert_problem(hidden, 404, "knowledge_base_not_found")
    group = (await client.post("/api/groups", json={"name": "Readers"}, headers=owner["headers"])).json()
    await client.put(f"/api/groups/{group['id']}/members/{member['user']['id']}", headers=owner["headers"])
    shared = await client.put(f"{base}/shares/{group['id']}", json={"permission": "read"}, headers=owner["headers"])
    assert shared.status_code == 200, shared.text
    assert (await client.get(f"{base}/chunks/{hit['chunk_id']}", headers=member_headers)).status_code == 200
    read = await client.get(f"{base}/documents/{guide['id']}/file", headers=member_headers)
    assert read.status_code == 200 and read.content == GUIDE.encode()
    key = (await client.post("/api/api-keys", json={"name": "k"}, headers=owner["headers"])).json()
    keyed = await client.get(f"{base}/documents/{guide['id']}/file", headers=bearer(key["secret"]))
    assert_problem(keyed, 403, "api_key_not_allowed")

    # A stored file that is gone is a 404 problem, not a broken download.
    objects = tmp_path / "data" / "objects"
    stored = [p for p in objects.rglob("*") if p.is_file() and p.read_bytes() == GUIDE.encode()]
    assert len(stored) == 1
    stored[0].unlink()
    missing = await client.get(f"{base}/documents/{guide['id']}/file", headers=owner["headers"])
    assert_problem(missing, 404, "file_missing")


BENCH = Path(__file__).resolve().parents[2] / ".." / "shared" / "bench" / "parsing"
TYPED_FAILURES = {"unsupported_format", "corrupt_file", "encrypted", "empty", "too_large"}


@pytest.mark.skipif(not BENCH.is_dir(), reason=f"benchmark documents absent: {BENCH}")
async def test_the_benchmark_documents_are_indexed_or_fail_with_a_typed_reason(
    tmp_path: Path, embedder: RunningModelServer
) -> None:
    """Every real document of ../shared/bench/parsing goes through upload, parsing (OCR on), chunking,
    embedding and indexing; tables come out as Markdown tables in the chunks."""
    files = sorted(p for sub in ("docx", "xlsx", "pptx", "pdf", "icdar2013-eu") for p in (BENCH / sub).glob("*.*"))
    async with serve_in_process(make_settings(tmp_path, builtin_models=False)) as client:
        owner = await new_owner(client, embedder)
        kb = await create_kb(client, owner)
        for start in range(0, len(files), 50):
            batch = files[start : start + 50]
            response = await upload(
                client, owner, kb["id"], [(p.name, p.read_bytes(), "application/octet-stream") for p in batch]
            )
            assert response.status_code == 201, response.text
            assert response.json()["rejected"] == []
        await settled(client, owner, kb["id"])
        docs: dict[str, dict[str, Any]] = {}
        total = 1
        while len(docs) < total:  # identical files (the same bytes) became one document
            page = await client.get(
                f"/api/knowledge-bases/{kb['id']}/documents",
                params={"limit": 100, "offset": len(docs)},
                headers=owner["headers"],
            )
            total = page.json()["total"]
            docs.update({d["id"]: d for d in page.json()["items"]})
        assert total >= len(files) - 20
        docs = {d["file_name"]: d for d in docs.values()}
        statuses = {name: (d["status"], (d["error"] or {}).get("code")) for name, d in docs.items()}
        assert all(s == "indexed" or (s == "failed" and c in TYPED_FAILURES) for s, c in statuses.values()), statuses
        indexed = [name for name, (s, _) in statuses.items() if s == "indexed"]
        assert len(indexed) >= total - 2, statuses
        sheet = docs["docling-xlsx_01.xlsx"]
        chunks = await client.get(
            f"/api/knowledge-bases/{kb['id']}/documents/{sheet['id']}/chunks", headers=owner["headers"]
        )
        tables = [c for c in chunks.json()["items"] if c["kind"] == "table"]
        assert tables and all("| --- |" in c["text"] or "|---|" in c["text"].replace(" ", "") for c in tables)


async def test_a_model_written_summary_once_a_batch_is_indexed(
    client: httpx.AsyncClient, owner: dict[str, Any], embedder: RunningModelServer
) -> None:
    await add_model(client, owner["access_token"], embedder, kind="llm", name="Writer")
    embedder.server.enqueue(ChatReply.text("Notes on brewing espresso, steaming milk and coffee prices."))
    kb = await create_kb(client, owner, description="Coffee know-how")
    await upload(
        client,
        owner,
        kb["id"],
        [
            ("guide.md", GUIDE.encode(), "text/markdown"),
            ("prices.csv", PRICES.encode(), "text/csv"),
            ("notes.txt", NOTES.encode(), "text/plain"),
        ],
    )
    await settled(client, owner, kb["id"])

    async def summary() -> str | None:
        current = (await client.get(f"/api/knowledge-bases/{kb['id']}", headers=owner["headers"])).json()
        return current["summary"]  # type: ignore[no-any-return]

    assert await wait_until(summary, timeout=20) == "Notes on brewing espresso, steaming milk and coffee prices."
    (request,) = embedder.server.chat_requests  # one summary for the batch, not one per document
    prompt = request.messages[0]["content"]
    assert "Coffee know-how" in prompt and "nine bars" in prompt


async def test_agents_attach_only_knowledge_bases_their_editor_may_read(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    kb = await create_kb(client, owner)
    agent = await client.post(
        "/api/agents", json={"name": "Librarian", "knowledge_base_ids": [kb["id"]]}, headers=owner["headers"]
    )
    assert agent.status_code == 201 and agent.json()["knowledge_base_ids"] == [kb["id"]]
    unknown = await client.patch(
        f"/api/agents/{agent.json()['id']}", json={"knowledge_base_ids": [str(uuid.uuid4())]}, headers=owner["headers"]
    )
    assert_problem(unknown, 422, "invalid_agent")

    member = await invite_and_register(
        client, owner["access_token"], f"editor-{uuid.uuid4().hex[:6]}@example.com", role="user"
    )
    group_id = (await client.post("/api/groups", json={"name": "Editors"}, headers=owner["headers"])).json()["id"]
    await client.put(f"/api/groups/{group_id}/members/{member['user']['id']}", headers=owner["headers"])
    other = await client.post("/api/agents", json={"name": "Helper"}, headers=owner["headers"])
    await client.put(
        f"/api/agents/{other.json()['id']}/shares/{group_id}", json={"permission": "edit"}, headers=owner["headers"]
    )
    attach = {"knowledge_base_ids": [kb["id"]]}
    member_headers = bearer(member["access_token"])
    refused = await client.patch(f"/api/agents/{other.json()['id']}", json=attach, headers=member_headers)
    assert_problem(refused, 422, "invalid_agent")
    await client.put(
        f"/api/knowledge-bases/{kb['id']}/shares/{group_id}", json={"permission": "read"}, headers=owner["headers"]
    )
    allowed = await client.patch(f"/api/agents/{other.json()['id']}", json=attach, headers=member_headers)
    assert allowed.status_code == 200, allowed.text


async def test_the_distributed_engines_end_to_end(
    tmp_path: Path, pg_url: str, redis_prefix: str, s3_endpoint: str, embedder: RunningModelServer
) -> None:
    """PostgreSQL, Redis (progress events), an S3 server (the files) and Milvus (the index), through the API."""
    settings = make_settings(
        tmp_path,
        builtin_models=False,
        database_url=pg_url,
        bus_backend="redis",
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
        storage_backend="s3",
        s3_endpoint_url=s3_endpoint,
        s3_bucket=f"kb-{uuid.uuid4().hex[:12]}",
        s3_access_key=S3_ACCESS_KEY,
        s3_secret_key=S3_SECRET_KEY,
        search_backend="milvus",
        milvus_uri=str(tmp_path / "milvus.db"),
    )
    async with serve_in_process(settings) as client:
        owner = await new_owner(client, embedder)
        kb = await create_kb(client, owner)
        response = await upload(
            client,
            owner,
            kb["id"],
            [("guide.md", GUIDE.encode(), "text/markdown"), ("prices.csv", PRICES.encode(), "text/csv")],
        )
        assert response.status_code == 201, response.text
        docs = await settled(client, owner, kb["id"])
        assert {d["status"] for d in docs.values()} == {"indexed"}
        for mode in ("hybrid", "bm25", "vector"):
            hits = (await search(client, owner, kb["id"], "crema pressure brewing", mode=mode))["hits"]
            assert hits[0]["file_name"] == "guide.md" and "nine bars" in hits[0]["text"], mode
        deleted = await client.delete(
            f"/api/knowledge-bases/{kb['id']}/documents/{docs['guide.md']['id']}", headers=owner["headers"]
        )
        assert deleted.status_code == 204
        remaining = (await search(client, owner, kb["id"], "crema pressure brewing", mode="bm25"))["hits"]
        assert all(h["file_name"] == "prices.csv" for h in remaining)


async def test_a_rerank_model_orders_the_hits(
    client: httpx.AsyncClient, owner: dict[str, Any], embedder: RunningModelServer
) -> None:
    reranker = await add_model(client, owner["access_token"], embedder, kind="rerank", name="Reranker")
    kb = await create_kb(client, owner, rerank_model_id=reranker)
    await index_guide_and_notes(client, owner, kb["id"])
    query = "milk wand surface microfoam"
    reranked = await search(client, owner, kb["id"], query, top_k=2)
    assert reranked["timings"]["rerank_ms"] > 0 and embedder.server.requests_to("/rerank")
    assert reranked["hits"][0]["file_name"] == "notes.txt"
    scores = [h["score"] for h in reranked["hits"]]
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0  # the share of query words in the passage
    plain = await search(client, owner, kb["id"], query, top_k=2, rerank=False)
    assert plain["timings"]["rerank_ms"] == 0
    wrong_kind = await client.patch(
        f"/api/knowledge-bases/{kb['id']}", json={"rerank_model_id": owner["model_id"]}, headers=owner["headers"]
    )
    assert_problem(wrong_kind, 422, "invalid_knowledge_base")
