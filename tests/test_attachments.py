"""Chat attachments over HTTP, on SQLite (local object storage) and PostgreSQL (an S3 server), with the scripted
model server as the LLM and the vision model: a document attached and used in the answer, an image sent to a model
that takes images and, for a text-only model, replaced by its OCR text and a caption; bad, oversized and unreadable
files refused or failed alone; who may read an attachment; everything removed with the conversation."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select

from nexent.knowledge.models import KnowledgeBase, KnowledgeDocument
from nexent.providers import pool
from tests.conftest import PostgresDatabases, make_settings, serve_in_process
from tests.support.identity import bearer, invite_and_register
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server
from tests.test_http import assert_problem
from tests.test_runs import make_agent, new_owner, parse_sse, run

S3_ACCESS_KEY, S3_SECRET_KEY = "nexent-test", "nexent-test-secret"
MAX_FILE_BYTES = 300_000
NOTES = "# Launch notes\n\nThe launch code of project Heron is PURPLE-42.\n\nThe launch is on a Tuesday.\n"


@pytest.fixture(scope="module")
def llm() -> Iterator[RunningModelServer]:
    with run_model_server() as served:
        yield served


@pytest.fixture(autouse=True)
def _fresh(llm: RunningModelServer) -> None:
    llm.server.reset()
    pool._unhealthy_until.clear()


@pytest.fixture(params=["sqlite", "postgres"])
async def server(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases, s3_endpoint: str
) -> AsyncIterator[serve_in_process]:
    overrides: dict[str, Any] = (
        {
            "database_url": await pg_databases.create(migrated=True),
            "storage_backend": "s3",
            "s3_endpoint_url": s3_endpoint,
            "s3_bucket": f"att-{uuid.uuid4().hex[:12]}",
            "s3_access_key": S3_ACCESS_KEY,
            "s3_secret_key": S3_SECRET_KEY,
        }
        if request.param == "postgres"
        else {}
    )
    settings = make_settings(tmp_path, builtin_models=False, knowledge_max_file_bytes=MAX_FILE_BYTES, **overrides)
    served = serve_in_process(settings)
    async with served:
        yield served


@pytest.fixture
def client(server: serve_in_process) -> httpx.AsyncClient:
    assert server._client is not None
    return server._client


@pytest.fixture
async def owner(client: httpx.AsyncClient, llm: RunningModelServer) -> dict[str, Any]:
    made = await new_owner(client, llm, f"attach-{uuid.uuid4().hex[:6]}@example.com")
    return {**made, "headers": bearer(made["access_token"])}


async def upload(
    client: httpx.AsyncClient, caller: dict[str, Any], name: str, data: bytes, content_type: str
) -> httpx.Response:
    return await client.post("/api/attachments", files={"file": (name, data, content_type)}, headers=caller["headers"])


async def uploaded(
    client: httpx.AsyncClient, caller: dict[str, Any], name: str, data: bytes, content_type: str
) -> dict[str, Any]:
    response = await upload(client, caller, name, data, content_type)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def text_image(text: str) -> bytes:
    """A PNG with `text` rendered large and black on white, for OCR to read."""
    image = Image.new("RGB", (900, 220), "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 70), text, fill="black", font=ImageFont.load_default(size=64))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e["type"] == kind]


async def test_a_document_is_attached_used_in_the_answer_and_listed_with_the_message(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    agent = await make_agent(client, owner)
    notes = await uploaded(client, owner, "notes.md", NOTES.encode(), "text/markdown")
    assert notes["kind"] == "document" and notes["format"] == "markdown" and notes["size"] == len(NOTES.encode())
    assert notes["conversation_id"] is None and notes["message_id"] is None

    response, events = await run(client, owner, agent["id"], "What is the launch code?", attachment_ids=[notes["id"]])
    assert response.status_code == 200, response.text
    types = [e["type"] for e in events]
    assert types[:3] == ["run.started", "attachment.processing", "attachment.ready"], types
    ready = of_type(events, "attachment.ready")[0]
    assert ready["attachment_id"] == notes["id"] and ready["mode"] == "context" and ready["tokens"] > 0
    # The model read the document, and the (echoing) model's answer uses it.
    assert "PURPLE-42" in llm.server.chat_requests[0].last_user_message
    assert events[-1]["type"] == "run.completed" and "PURPLE-42" in events[-1]["data"]["answer"]

    conversation_id = response.headers["x-conversation-id"]
    detail = (await client.get(f"/api/conversations/{conversation_id}", headers=owner["headers"])).json()
    user_message = detail["messages"][0]
    assert user_message["role"] == "user" and user_message["content"] == "What is the launch code?"
    [listed] = user_message["attachments"]
    assert (listed["id"], listed["name"], listed["kind"], listed["size"]) == (
        notes["id"],
        "notes.md",
        "document",
        notes["size"],
    )
    assert listed["conversation_id"] == conversation_id and listed["message_id"] == user_message["id"]
    assert detail["messages"][1]["attachments"] == []

    download = await client.get(f"/api/attachments/{notes['id']}", headers=owner["headers"])
    assert download.status_code == 200 and download.content == NOTES.encode()
    assert download.headers["content-type"].startswith("text/markdown")
    assert download.headers["cache-control"].startswith("private")
    assert download.headers["content-disposition"].startswith("attachment;")

    # Sent once: a second message cannot carry it again.
    again, _ = await run(client, owner, agent["id"], "Again", attachment_ids=[notes["id"]])
    assert_problem(again, 422, "invalid_attachment")


async def test_regenerating_an_answer_keeps_the_message_s_attachments(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    agent = await make_agent(client, owner)
    notes = await uploaded(client, owner, "notes.md", NOTES.encode(), "text/markdown")
    response, _ = await run(client, owner, agent["id"], "The code?", attachment_ids=[notes["id"]])
    conversation_id = response.headers["x-conversation-id"]
    llm.server.reset()
    again = await client.post(f"/api/conversations/{conversation_id}/regenerate", headers=owner["headers"])
    assert again.status_code == 200, again.text
    events = parse_sse(again.text)
    assert [r["attachment_id"] for r in of_type(events, "attachment.ready")] == [notes["id"]]
    assert "PURPLE-42" in llm.server.chat_requests[0].last_user_message
    detail = (await client.get(f"/api/conversations/{conversation_id}", headers=owner["headers"])).json()
    users = [m for m in detail["messages"] if m["role"] == "user"]
    assert len(users) == 1 and [a["id"] for a in users[0]["attachments"]] == [notes["id"]]


async def test_an_image_goes_to_a_model_that_takes_images(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    vision = await client.post(
        "/api/models",
        json={"name": "Seeing LLM", "kind": "llm", "model": "seeing", "base_url": llm.base_url, "accepts_images": True},
        headers=owner["headers"],
    )
    assert vision.status_code == 201 and vision.json()["accepts_images"] is True, vision.text
    agent = await make_agent(client, owner, model_id=vision.json()["id"])
    png = text_image("HERON 42")
    image = await uploaded(client, owner, "sign.png", png, "image/png")
    assert image["kind"] == "image" and image["content_type"] == "image/png"

    response, events = await run(client, owner, agent["id"], "What does the sign say?", attachment_ids=[image["id"]])
    assert response.status_code == 200, response.text
    assert of_type(events, "attachment.ready")[0]["mode"] == "image"
    [received] = llm.server.chat_requests[0].images
    assert received.media_type == "image/png" and received.data == png
    assert "[images: image/png" in events[-1]["data"]["answer"]

    download = await client.get(f"/api/attachments/{image['id']}", headers=owner["headers"])
    assert download.content == png and download.headers["content-disposition"].startswith("inline;")


async def test_for_a_text_only_model_an_image_is_replaced_by_its_ocr_text_and_a_caption(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    vlm = await client.post(
        "/api/models",
        json={"name": "Describer", "kind": "vlm", "model": "describer", "base_url": llm.base_url},
        headers=owner["headers"],
    )
    assert vlm.status_code == 201, vlm.text
    llm.server.enqueue(ChatReply.text("A white card with black letters."), model="describer")
    agent = await make_agent(client, owner)  # the scripted LLM: text only
    png = text_image("HERON 42")
    image = await uploaded(client, owner, "card.png", png, "image/png")

    response, events = await run(client, owner, agent["id"], "Read the card.", attachment_ids=[image["id"]])
    assert response.status_code == 200, response.text
    ready = of_type(events, "attachment.ready")[0]
    assert ready["mode"] == "ocr" and "OCR" in ready["note"]
    caption_request = next(r for r in llm.server.chat_requests if r.model == "describer")
    assert caption_request.images[0].data == png  # the vision model saw the image
    agent_request = next(r for r in llm.server.chat_requests if r.model != "describer")
    assert agent_request.images == []  # the text-only model did not
    seen = agent_request.last_user_message
    assert "HERON" in seen and "42" in seen and "A white card with black letters." in seen


async def test_bad_files_are_refused_and_an_unreadable_one_fails_alone(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    too_big = await upload(client, owner, "big.txt", b"a" * (MAX_FILE_BYTES + 1), "text/plain")
    assert_problem(too_big, 413, "too_large")
    assert_problem(await upload(client, owner, "empty.txt", b"", "text/plain"), 422, "empty")
    assert_problem(
        await upload(client, owner, "tool.exe", b"MZ\x90\x00" + bytes(range(256)) * 4, "application/octet-stream"),
        415,
        "unsupported_format",
    )
    broken_png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    assert_problem(await upload(client, owner, "broken.png", broken_png, "image/png"), 422, "corrupt_file")

    # A PDF that is not one passes the upload (its header is a PDF's) and fails when read; the other file is used.
    agent = await make_agent(client, owner)
    bad = await uploaded(client, owner, "report.pdf", b"%PDF-1.7\n" + b"garbage " * 50, "application/pdf")
    good = await uploaded(client, owner, "notes.md", NOTES.encode(), "text/markdown")
    response, events = await run(client, owner, agent["id"], "Summarise both.", attachment_ids=[bad["id"], good["id"]])
    assert response.status_code == 200, response.text
    [failed] = of_type(events, "attachment.failed")
    assert failed["attachment_id"] == bad["id"] and failed["code"] == "corrupt_file" and failed["reason"]
    assert [r["attachment_id"] for r in of_type(events, "attachment.ready")] == [good["id"]]
    assert events[-1]["type"] == "run.completed"
    seen = llm.server.chat_requests[0].last_user_message
    assert "PURPLE-42" in seen and 'failed="corrupt_file"' in seen  # the agent is told

    # Unknown ids, and someone else's attachment, are refused with the field named.
    stranger = await run(client, owner, agent["id"], "Hi", attachment_ids=[str(uuid.uuid4())])
    body = assert_problem(stranger[0], 422, "invalid_attachment")
    assert body["errors"][0]["loc"] == ["body", "attachment_ids", 0]  # type: ignore[index]


async def test_attachments_are_readable_only_by_who_reads_the_conversation(
    client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    agent, other_agent = await make_agent(client, owner), await make_agent(client, owner)
    notes = await uploaded(client, owner, "notes.md", NOTES.encode(), "text/markdown")
    pair = await invite_and_register(
        client, owner["access_token"], f"m-{uuid.uuid4().hex[:6]}@example.com", role="developer"
    )
    member = {**pair, "headers": bearer(pair["access_token"])}
    path = f"/api/attachments/{notes['id']}"

    # Unsent: only its uploader reads it, and only its uploader can send it.
    assert_problem(await client.get(path, headers=member["headers"]), 404, "attachment_not_found")
    taken, _ = await run(client, member, agent["id"], "Mine now", attachment_ids=[notes["id"]])
    assert_problem(taken, 422, "invalid_attachment")

    response, _ = await run(client, owner, agent["id"], "Read this", attachment_ids=[notes["id"]])
    assert response.status_code == 200

    stranger = await new_owner(client, llm, f"other-{uuid.uuid4().hex[:6]}@example.com")
    own_key = await client.post(
        "/api/api-keys", json={"name": "same agent", "agent_ids": [agent["id"]]}, headers=owner["headers"]
    )
    other_key = await client.post(
        "/api/api-keys", json={"name": "other agent", "agent_ids": [other_agent["id"]]}, headers=owner["headers"]
    )
    assert own_key.status_code == other_key.status_code == 201
    for headers in (member["headers"], bearer(stranger["access_token"]), bearer(other_key.json()["secret"])):
        assert_problem(await client.get(path, headers=headers), 404, "attachment_not_found")
    assert (await client.get(path, headers=bearer(own_key.json()["secret"]))).status_code == 200
    assert (await client.get(path, headers=owner["headers"])).status_code == 200

    # Lists show it to the same callers only.
    def listed(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert listed(await client.get("/api/attachments", headers=owner["headers"])) == [notes["id"]]
    assert listed(await client.get("/api/attachments", headers=bearer(own_key.json()["secret"]))) == [notes["id"]]
    assert listed(await client.get("/api/attachments", params={"unsent": True}, headers=owner["headers"])) == []
    for headers in (member["headers"], bearer(stranger["access_token"]), bearer(other_key.json()["secret"])):
        assert listed(await client.get("/api/attachments", headers=headers)) == []


async def test_attachments_are_removed_with_their_conversation(
    server: serve_in_process, client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    agent = await make_agent(client, owner)
    notes = await uploaded(client, owner, "notes.md", NOTES.encode(), "text/markdown")
    image = await uploaded(client, owner, "sign.png", text_image("HI"), "image/png")
    response, _ = await run(client, owner, agent["id"], "Keep these", attachment_ids=[notes["id"], image["id"]])
    assert response.status_code == 200
    conversation_id = response.headers["x-conversation-id"]
    storage = server.app.state.engines.storage
    keys = await storage.list("attachments/")
    assert len(keys) == 2

    deleted = await client.delete(f"/api/conversations/{conversation_id}", headers=owner["headers"])
    assert deleted.status_code == 204
    for attachment in (notes, image):
        gone = await client.get(f"/api/attachments/{attachment['id']}", headers=owner["headers"])
        assert_problem(gone, 404, "attachment_not_found")
    assert await storage.list("attachments/") == []


def long_document(needle: str, size: int = 200_000) -> bytes:
    """About `size` bytes of varied plain text with `needle` as one paragraph in the middle."""
    topics = ["harbour", "orchard", "turbine", "lantern", "meadow", "glacier", "quarry", "violin", "compass", "pottery"]
    paragraphs: list[str] = []
    number = 0
    while sum(len(p) + 2 for p in paragraphs) < size:
        topic = topics[number % len(topics)]
        paragraphs.append(
            f"Section {number}. The {topic} report number {number} notes routine observations about the {topic} "
            f"and its upkeep in week {number % 52}; nothing unusual was recorded by the staff on duty that day."
        )
        number += 1
    paragraphs.insert(len(paragraphs) // 2, needle)
    return "\n\n".join(paragraphs).encode()


async def test_a_long_document_is_indexed_for_the_conversation_searched_and_deleted_with_it(
    server: serve_in_process, client: httpx.AsyncClient, owner: dict[str, Any], llm: RunningModelServer
) -> None:
    embedder = await client.post(
        "/api/models",
        json={"name": "Embedder", "kind": "embedding", "model": "scripted-embedding", "base_url": llm.base_url},
        headers=owner["headers"],
    )
    assert embedder.status_code == 201 and embedder.json()["is_default"] is True, embedder.text
    agent = await make_agent(client, owner)
    needle = "The vault of project Osprey opens with the passphrase MARIGOLD-77."
    data = long_document(needle)
    assert 190_000 < len(data) < MAX_FILE_BYTES
    handbook = await uploaded(client, owner, "handbook.txt", data, "text/plain")
    llm.server.enqueue(
        ChatReply.tool_call("attached_documents_search", {"query": "vault Osprey passphrase"}),
        ChatReply.text("The passphrase is MARIGOLD-77 [1]."),
    )

    response, events = await run(
        client, owner, agent["id"], "What opens the Osprey vault?", attachment_ids=[handbook["id"]]
    )
    assert response.status_code == 200, response.text
    types = [e["type"] for e in events]
    assert types[:3] == ["run.started", "attachment.processing", "attachment.ready"], types
    ready = of_type(events, "attachment.ready")[0]
    assert ready["attachment_id"] == handbook["id"] and ready["mode"] == "index" and ready["tokens"] > 6_000
    first = llm.server.chat_requests[0]
    # The agent is told the document is searchable, not given it whole, and its tool names the file.
    assert "attached_documents_search" in first.last_user_message and "MARIGOLD" not in first.last_user_message
    [tool] = [t for t in first.tools or [] if t["function"]["name"] == "attached_documents_search"]
    assert "handbook.txt" in tool["function"]["description"]
    # The search found the needle, the model read it, and the answer uses it with its citation.
    assert "MARIGOLD-77" in str(llm.server.chat_requests[1].messages[-1]["content"])  # the tool's answer
    citations = of_type(events, "citation")
    assert any("MARIGOLD-77" in (c["snippet"] or "") and c["title"] == "handbook.txt" for c in citations), citations
    assert (
        events[-1]["type"] == "run.completed" and events[-1]["data"]["answer"] == "The passphrase is MARIGOLD-77 [1]."
    )

    # The conversation's index is nobody's knowledge base: not listed, not found by id.
    listed = await client.get("/api/knowledge-bases", headers=owner["headers"])
    assert listed.status_code == 200 and listed.json()["total"] == 0 and listed.json()["items"] == []
    engines = server.app.state.engines
    async with engines.sessions() as session:
        [kb] = (await session.scalars(select(KnowledgeBase).where(KnowledgeBase.conversation_id.is_not(None)))).all()
    assert_problem(
        await client.get(f"/api/knowledge-bases/{kb.id}", headers=owner["headers"]), 404, "knowledge_base_not_found"
    )

    # Nor can an agent be given it.
    attach = await client.post(
        "/api/agents",
        json={"name": "Snoop", "model_id": owner["model_id"], "knowledge_base_ids": [str(kb.id)]},
        headers=owner["headers"],
    )
    assert attach.status_code == 422, attach.text

    # A later turn of the conversation keeps the tool.
    conversation_id = response.headers["x-conversation-id"]
    assert str(kb.conversation_id) == conversation_id
    llm.server.reset()
    later, _ = await run(client, owner, agent["id"], "And again?", conversation_id=conversation_id)
    assert later.status_code == 200, later.text
    names = [t["function"]["name"] for t in llm.server.chat_requests[0].tools or []]
    assert "attached_documents_search" in names

    # Deleting the conversation deletes its index: rows, search index and files.
    assert await engines.storage.list(f"knowledge/{kb.tenant_id}/{kb.id}/")
    deleted = await client.delete(f"/api/conversations/{conversation_id}", headers=owner["headers"])
    assert deleted.status_code == 204
    async with engines.sessions() as session:
        assert await session.get(KnowledgeBase, kb.id) is None
        assert (
            await session.scalars(select(KnowledgeDocument).where(KnowledgeDocument.knowledge_base_id == kb.id))
        ).all() == []
    assert await engines.storage.list(f"knowledge/{kb.tenant_id}/{kb.id}/") == []
    assert await engines.storage.list("attachments/") == []
