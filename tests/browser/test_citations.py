"""A question answered from a knowledge base: the answer's source opens the cited passage and its document."""

from __future__ import annotations

import time
import uuid

from playwright.sync_api import Page, expect

from tests.browser.conftest import Live, shoot, sign_in_as
from tests.browser.test_knowledge import add_embedding_model
from tests.support.model_server import ChatReply


def wait_for_summary(live: Live, token: str, kb_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if live.api("GET", f"/api/knowledge-bases/{kb_id}", token).json().get("summary"):
            return
        time.sleep(0.3)
    raise AssertionError("the knowledge base got no summary")


GUIDE = b"# Returns policy\n\nCustomers may return any item within 45 days of delivery for a full refund.\n"


def test_an_answer_cites_its_passage_and_document(page: Page, live: Live) -> None:
    tokens = live.register()
    token = tokens["access_token"]
    model = live.add_model(token)
    add_embedding_model(live, token)
    kb = live.api("POST", "/api/knowledge-bases", token, json={"name": f"policies-{uuid.uuid4().hex[:6]}"}).json()
    upload = live.api(
        "POST", f"/api/knowledge-bases/{kb['id']}/documents", token, files={"file": ("returns.md", GUIDE)}
    )
    assert upload.status_code in (201, 202), upload.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        documents = live.api("GET", f"/api/knowledge-bases/{kb['id']}/documents", token).json()["items"]
        if documents and documents[0]["status"] == "indexed":
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the document was not indexed: {documents}")
    agent = live.api(
        "POST",
        "/api/agents",
        token,
        json={
            "name": f"support-{uuid.uuid4().hex[:6]}",
            "model_id": model["id"],
            "knowledge_base_ids": [kb["id"]],
            "tools": [{"name": "knowledge_base_search"}],
        },
    )
    assert agent.status_code == 201, agent.text
    # The knowledge base's summary asks the default model once, a moment after indexing: let it take its (echo)
    # answer first, so that the scripted replies below go to the chat.
    wait_for_summary(live, token, kb["id"])
    live.llm.server.enqueue(
        ChatReply.tool_call("knowledge_base_search", {"query": "return window"}),
        ChatReply.text("You may return items within 45 days [1]."),
        ChatReply.text('"Returns"'),
    )

    sign_in_as(page, tokens)
    page.goto("/chat")
    page.get_by_role("textbox", name="Message").fill("How long do I have to return something?")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("answer")).to_have_text("You may return items within 45 days [1].")
    page.get_by_role("button", name="[1] returns.md").click()
    drawer = page.get_by_role("dialog")
    expect(drawer.get_by_test_id("citation-text")).to_contain_text("within 45 days of delivery for a full refund")
    shoot(page, "citation")
    with page.expect_download() as download:
        drawer.get_by_role("button", name="Download the document").click()
    assert download.value.suggested_filename == "returns.md"
    assert download.value.path().read_bytes() == GUIDE
