"""A document's tables in the browser: a PDF whose table has no ruling lines is uploaded, its document opened, and
its Tables tab (reached by keyboard) shows the table under its caption; a document of prose says it has none."""

from __future__ import annotations

import uuid

from playwright.sync_api import FilePayload, Page, expect

from tests.browser.conftest import Live, shoot, sign_in_as
from tests.browser.test_knowledge import add_embedding_model
from tests.knowledge.test_document_tables import CAPTION, harbour_pdf, prose_pdf


def test_a_documents_tables_tab_shows_its_borderless_table(page: Page, live: Live) -> None:
    tokens = live.register()
    token = tokens["access_token"]
    add_embedding_model(live, token)
    kb = live.api("POST", "/api/knowledge-bases", token, json={"name": f"Harbour {uuid.uuid4().hex[:6]}"})
    assert kb.status_code == 201, kb.text
    sign_in_as(page, tokens)
    page.goto(f"/knowledge/base?id={kb.json()['id']}")

    with page.expect_file_chooser() as chooser:
        page.get_by_text("Click or drag files here to upload").click()
    files: list[FilePayload] = [
        {"name": "harbour.pdf", "mimeType": "application/pdf", "buffer": harbour_pdf(8)},
        {"name": "prose.pdf", "mimeType": "application/pdf", "buffer": prose_pdf()},
    ]
    chooser.value.set_files(files)
    for name in ("harbour.pdf", "prose.pdf"):
        expect(page.get_by_role("row").filter(has_text=name)).to_contain_text("Ready", timeout=60_000)

    # The document opens on its chunks; the Tables tab is one arrow key away.
    page.get_by_role("button", name="Chunks harbour.pdf").click()
    drawer = page.get_by_role("dialog", name="harbour.pdf")
    chunks_tab = drawer.get_by_role("tab", name="Chunks")
    expect(chunks_tab).to_have_attribute("aria-selected", "true")
    expect(drawer).to_contain_text("Rotterdam 1")
    chunks_tab.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    expect(drawer.get_by_role("tab", name="Tables")).to_have_attribute("aria-selected", "true")

    table = drawer.get_by_role("region", name=CAPTION)
    expect(drawer.get_by_role("heading", name=CAPTION)).to_be_visible()
    expect(table.get_by_role("columnheader", name="Tonnes")).to_be_visible()
    expect(table.get_by_role("cell", name="Rotterdam 1", exact=True)).to_be_visible()
    expect(table.get_by_role("row")).to_have_count(9)  # the header and eight rows
    expect(drawer.get_by_text("8 rows")).to_be_visible()
    # The table's region takes the focus, so a wide table can be scrolled sideways by keyboard.
    table.focus()
    expect(table).to_be_focused()
    shoot(page, "knowledge-document-tables")

    # At a phone's width the page itself does not scroll sideways: a wide table scrolls inside its region.
    page.set_viewport_size({"width": 390, "height": 800})
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert table.evaluate("e => getComputedStyle(e).overflowX") == "auto"
    page.set_viewport_size({"width": 1280, "height": 800})

    # A document of prose has no table.
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    page.get_by_role("button", name="Chunks prose.pdf").click()
    prose = page.get_by_role("dialog", name="prose.pdf")
    prose.get_by_role("tab", name="Tables").click()
    expect(prose.get_by_text("No tables in this document.")).to_be_visible()
