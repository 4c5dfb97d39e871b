"""Structured import in the browser: a CSV file of questions becomes one document per row, the columns chosen in a
dialog by keyboard, a bad row reported with its line, and a search hit showing the row's metadata."""

from __future__ import annotations

import uuid

from playwright.sync_api import FilePayload, Page, expect

from tests.browser.conftest import Live, shoot, sign_in_as
from tests.browser.test_knowledge import add_embedding_model

FAQ = (
    b"id,question,answer,Category\n"
    b"q1,How do I descale the machine?,Run the descaling programme every two months.,care\n"
    b"q2,Which beans for espresso?,A medium-dark roast ground fine.,beans\n"
    b"q3,This row has too few values\n"
    b"q4,How hot should the milk be?,About sixty degrees; hotter milk tastes burnt.,milk\n"
)


def test_a_csv_file_becomes_one_document_per_row(page: Page, live: Live) -> None:
    tokens = live.register()
    token = tokens["access_token"]
    add_embedding_model(live, token)
    kb = live.api("POST", "/api/knowledge-bases", token, json={"name": f"FAQ {uuid.uuid4().hex[:6]}"})
    assert kb.status_code == 201, kb.text
    sign_in_as(page, tokens)
    page.goto(f"/knowledge/base?id={kb.json()['id']}")

    faq: FilePayload = {"name": "faq.csv", "mimeType": "text/csv", "buffer": FAQ}
    # Escape cancels the import: nothing is uploaded.
    with page.expect_file_chooser() as chooser:
        page.get_by_text("Click or drag files here to upload").click()
    chooser.value.set_files(faq)
    # The dialog takes the focus (on its first choice): keyboard users start there.
    expect(page.get_by_role("dialog", name="Import faq.csv").get_by_label("One document per row")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Import faq.csv")).to_be_hidden()
    expect(page.get_by_text("faq.csv: not uploaded.")).to_be_visible()
    expect(page.get_by_text("No documents yet")).to_be_visible()

    with page.expect_file_chooser() as chooser:
        page.get_by_text("Click or drag files here to upload").click()
    chooser.value.set_files(faq)

    # The dialog offers the file's columns; "id" is the id column already. Metadata is chosen by keyboard.
    dialog = page.get_by_role("dialog", name="Import faq.csv")
    expect(dialog.get_by_label("One document per row")).to_be_checked()
    expect(dialog.locator(".ant-select-content[title='id']")).to_be_visible()
    dialog.get_by_label("Metadata columns").focus()
    page.keyboard.type("Categ")
    # Enter picks the active option once the list shows it (on a busy machine the list comes a moment later).
    expect(page.get_by_role("option", name="Category → category")).to_be_attached()
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")  # closes the list, not the dialog
    chosen = dialog.locator(".ant-select-selection-item-content").filter(has_text="Category → category")
    expect(chosen).to_be_visible()
    shoot(page, "knowledge-row-import")
    dialog.get_by_role("button", name="Upload").click()
    expect(dialog).to_be_hidden()

    # The bad row, with its line and reason; the good rows as documents.
    refused = page.get_by_role("alert").filter(has_text="faq.csv, line 4")
    expect(refused).to_contain_text(
        "faq.csv, line 4 was not imported: The row does not have as many values as the header has columns."
    )
    for row_id in ("q1", "q2", "q4"):
        expect(page.get_by_role("row").filter(has_text=f"faq.csv#{row_id}")).to_contain_text("Ready", timeout=60_000)
    expect(page.get_by_role("row").filter(has_text="faq.csv#q3")).to_have_count(0)

    # A search hit shows the row's text and its metadata.
    page.get_by_role("tab", name="Search playground").click()
    page.get_by_label("Search query").fill("milk degrees")
    page.get_by_role("button", name="Search", exact=True).click()
    region = page.get_by_role("region", name="BM25 (keywords) results")
    first = region.get_by_role("listitem").first
    expect(first).to_contain_text("faq.csv#q4")
    expect(first).to_contain_text("answer: About sixty degrees")
    expect(first).to_contain_text("category: milk")
    shoot(page, "knowledge-row-search")
