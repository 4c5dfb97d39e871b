"""Document previews in the browser: a knowledge base's PDF shows its pages (pager, thumbnails by keyboard), and an
answer's citation of it opens the cited page with the passage outlined where its text is."""

from __future__ import annotations

import time
import uuid

from playwright.sync_api import Page, expect

from tests.browser.conftest import Live, shoot, sign_in_as
from tests.browser.test_citations import wait_for_summary
from tests.browser.test_knowledge import add_embedding_model
from tests.knowledge.test_parsing import pdf_bytes, pdf_text
from tests.support.model_server import ChatReply

POLICY = "Customers may return any crane part within 45 days of delivery"


def handbook_pdf() -> bytes:
    page1 = pdf_text(72, 720, 18, "Parts handbook") + pdf_text(72, 680, 11, "Every part ships with a manual.")
    page2 = (
        pdf_text(250, 430, 18, "Returns")
        + pdf_text(250, 400, 11, POLICY)
        + pdf_text(250, 386, 11, "for a full refund.")
    )
    return pdf_bytes([page1, page2])


def test_a_citation_opens_its_page_with_the_passage_outlined(page: Page, live: Live) -> None:
    tokens = live.register()
    token = tokens["access_token"]
    model = live.add_model(token)
    add_embedding_model(live, token)
    kb = live.api("POST", "/api/knowledge-bases", token, json={"name": f"parts-{uuid.uuid4().hex[:6]}"}).json()
    upload = live.api(
        "POST",
        f"/api/knowledge-bases/{kb['id']}/documents",
        token,
        files={"file": ("handbook.pdf", handbook_pdf(), "application/pdf")},
    )
    assert upload.status_code == 201, upload.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        documents = live.api("GET", f"/api/knowledge-bases/{kb['id']}/documents", token).json()["items"]
        if documents and documents[0]["status"] == "indexed":
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the document was not indexed: {documents}")

    # The knowledge base's document view: the Preview tab shows page 1, the thumbnails go to page 2.
    sign_in_as(page, tokens)
    page.goto(f"/knowledge/base?id={kb['id']}")
    page.get_by_role("button", name="Chunks handbook.pdf").click()
    drawer = page.get_by_role("dialog", name="handbook.pdf")
    drawer.get_by_role("tab", name="Preview").click()
    expect(drawer.get_by_role("img", name="Page 1")).to_be_visible()
    expect(drawer.get_by_text("Page 1 of 2")).to_be_visible()
    go_to_2 = drawer.get_by_role("button", name="Go to page 2")
    go_to_2.focus()
    page.keyboard.press("Enter")
    expect(drawer.get_by_role("img", name="Page 2")).to_be_visible()
    expect(go_to_2).to_have_attribute("aria-current", "page")
    shoot(page, "knowledge-document-preview")
    page.keyboard.press("Escape")

    agent = live.api(
        "POST",
        "/api/agents",
        token,
        json={
            "name": f"parts-desk-{uuid.uuid4().hex[:6]}",
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
        ChatReply.tool_call("knowledge_base_search", {"query": "return crane part refund"}),
        ChatReply.text("Parts may be returned within 45 days [1]."),
        ChatReply.text('"Returns"'),
    )
    page.goto("/chat")
    page.get_by_role("textbox", name="Message").fill("Can I return a crane part?")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("answer")).to_have_text("Parts may be returned within 45 days [1].")
    page.get_by_role("button", name="[1] handbook.pdf").click()
    citation = page.get_by_role("dialog", name="handbook.pdf")
    expect(citation.get_by_test_id("citation-text")).to_contain_text("within 45 days of delivery")
    preview = citation.get_by_role("region", name="Cited page")
    expect(preview.get_by_text("Page 2 of 2")).to_be_visible()
    image = preview.get_by_role("img", name="Page 2")
    highlight = preview.get_by_role("img", name="The cited passage")
    expect(image).to_be_visible()
    expect(highlight).to_be_visible()
    highlight.scroll_into_view_if_needed()

    # The outline sits where the passage is printed: from x = 250 pt of 612, y = 344 pt from the top of 792.
    picture, outline = image.bounding_box(), highlight.bounding_box()
    assert picture and outline
    left = (outline["x"] - picture["x"]) / picture["width"]
    top = (outline["y"] - picture["y"]) / picture["height"]
    assert 0.38 < left < 0.45 and 0.4 < top < 0.47, (left, top)
    assert outline["width"] < picture["width"] * 0.6 and outline["height"] < picture["height"] * 0.1
    shoot(page, "citation-page-preview")
