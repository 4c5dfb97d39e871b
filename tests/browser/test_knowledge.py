"""Journeys of knowledge bases: create one, upload good and bad files, watch them being processed, read a document's
chunks, compare the search modes in the playground."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import FilePayload, Page, expect

from tests.browser.conftest import Live, allow_console_error, shoot, sign_in_as

GUIDE = b"""# Espresso guide

## Grinding

Grind the beans finely, just before brewing. A burr grinder gives an even grind.

## Brewing

Brew at nine bars of pressure for about twenty-five seconds. The crema should be golden.
"""


def add_embedding_model(live: Live, token: str) -> dict[str, Any]:
    """The scripted model server's embedding model as the tenant's default embedding model."""
    return live.add_model(token, "Test embed", kind="embedding", model="test-embed")


def signed_in(page: Page, tokens: dict[str, Any]) -> None:
    sign_in_as(page, tokens)


def test_create_upload_watch_chunks_and_search(page: Page, live: Live) -> None:
    tokens = live.register()
    add_embedding_model(live, tokens["access_token"])
    signed_in(page, tokens)

    page.goto("/knowledge")
    expect(page.get_by_text("No knowledge bases yet")).to_be_visible()
    page.get_by_role("button", name="New knowledge base").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("Espresso handbook")
    dialog.get_by_label("Description").fill("How we make coffee.")
    # The workspace's default embedding model is chosen already.
    expect(dialog.locator(".ant-select-content[title='Test embed']")).to_be_visible()
    dialog.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/knowledge/base\?id="), timeout=30_000)
    expect(page.get_by_role("heading", name="Espresso handbook")).to_be_visible()
    expect(page.get_by_text("No documents yet")).to_be_visible()

    # Three files at once through the file chooser: a good one, one named .pdf that is not a PDF, an empty one.
    with page.expect_file_chooser() as chooser:
        page.get_by_text("Click or drag files here to upload").click()
    files: list[FilePayload] = [
        {"name": "guide.md", "mimeType": "text/markdown", "buffer": GUIDE},
        {"name": "broken.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\nthis is not really a pdf\n"},
        {"name": "empty.txt", "mimeType": "text/plain", "buffer": b""},
    ]
    chooser.value.set_files(files)
    # The empty file is refused at once, with its reason in plain words.
    refused = page.get_by_role("alert").filter(has_text="empty.txt")
    expect(refused).to_contain_text("empty.txt was not accepted: No text was found in this file.")
    good = page.get_by_role("row").filter(has_text="guide.md")
    bad = page.get_by_role("row").filter(has_text="broken.pdf")
    expect(good).to_contain_text("Ready", timeout=60_000)
    expect(bad).to_contain_text("Failed", timeout=60_000)
    expect(bad).to_contain_text("The file is damaged or is not what its name says.")
    expect(page.get_by_text("Live")).to_be_visible()
    shoot(page, "knowledge-base")

    # The good document's chunks, in a drawer with its own address.
    page.get_by_role("button", name="Chunks guide.md").click()
    expect(page).to_have_url(re.compile(r"&doc="))
    drawer = page.get_by_role("dialog", name="guide.md")
    expect(drawer.get_by_role("tab", name="Chunks")).to_have_attribute("aria-selected", "true")
    expect(drawer).to_contain_text("Grind the beans finely")
    drawer.get_by_role("button", name="Edit chunk 1").click()
    drawer.get_by_label("Text of chunk 1").fill("Grind the beans finely, just before brewing, with a burr grinder.")
    drawer.get_by_role("button", name="Save").click()
    expect(drawer.get_by_text("Edited", exact=True)).to_be_visible()
    shoot(page, "knowledge-chunks")
    drawer.get_by_role("button", name="Close").click()
    expect(page).not_to_have_url(re.compile(r"&doc="))

    # The playground: one query, three modes side by side.
    page.get_by_role("tab", name="Search playground").click()
    page.get_by_label("Search query").fill("burr grinder")
    page.get_by_role("button", name="Search", exact=True).click()
    for mode in ("BM25 (keywords)", "Vector (meaning)", "Hybrid"):
        region = page.get_by_role("region", name=f"{mode} results")
        expect(region).to_contain_text("guide.md")
        expect(region).to_contain_text("Score")
    shoot(page, "knowledge-search")

    # The list shows the base with its documents by state.
    page.get_by_role("link", name="All knowledge bases").click()
    row = page.get_by_role("row").filter(has_text="Espresso handbook")
    expect(row).to_contain_text("2 documents")
    expect(row).to_contain_text("Ready 1")
    expect(row).to_contain_text("Failed 1")
    expect(row).to_contain_text("Test embed")
    shoot(page, "knowledge-list")


def test_a_base_without_a_name_or_model_shows_why(page: Page, live: Live) -> None:
    tokens = live.register()
    signed_in(page, tokens)
    page.goto("/knowledge")
    page.get_by_role("button", name="New knowledge base").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("This workspace has no embedding model yet")).to_be_visible()
    dialog.get_by_label("Name").fill("No model")
    allow_console_error(page, "status of 422")
    dialog.get_by_role("button", name="Create").click()
    # The server's own words: there is no embedding model to use.
    expect(dialog.get_by_role("alert").filter(has_text="default embedding model")).to_contain_text(
        "This tenant has no default embedding model"
    )


def test_share_poll_when_the_stream_fails_and_delete(page: Page, live: Live) -> None:
    tokens = live.register()
    token = tokens["access_token"]
    add_embedding_model(live, token)
    group = live.api("POST", "/api/groups", token, json={"name": "Baristas"})
    assert group.status_code == 201, group.text
    kb = live.api("POST", "/api/knowledge-bases", token, json={"name": "Shared beans"})
    assert kb.status_code == 201, kb.text
    signed_in(page, tokens)
    # The progress stream cannot be opened: the page reads the documents every 2 s instead.
    page.route(re.compile(r"/events(\?|$)"), lambda route: route.abort())
    allow_console_error(page, "ERR_FAILED")

    page.goto("/knowledge")
    page.get_by_role("button", name="Share Shared beans").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Access for Baristas").click()
    page.get_by_title("Can edit").click()
    expect(page.get_by_text("Saved")).to_be_visible()
    shares = live.api("GET", f"/api/knowledge-bases/{kb.json()['id']}/shares", token).json()
    assert [(s["group_id"], s["permission"]) for s in shares] == [(group.json()["id"], "edit")]
    dialog.get_by_role("button", name="Close").click()

    page.get_by_role("link", name="Shared beans").click()
    with page.expect_file_chooser() as chooser:
        page.get_by_text("Click or drag files here to upload").click()
    guide: FilePayload = {"name": "guide.md", "mimeType": "text/markdown", "buffer": GUIDE}
    chooser.value.set_files(guide)
    expect(page.get_by_text("Refreshing every 2 s")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="guide.md")).to_contain_text("Ready", timeout=60_000)

    page.get_by_role("button", name="Delete guide.md").click()
    page.locator(".ant-popconfirm").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No documents yet")).to_be_visible()

    page.get_by_role("link", name="All knowledge bases").click()
    page.get_by_role("button", name="Delete Shared beans").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    # Deleting drops the index and the stored files: seconds on a busy machine.
    expect(page.get_by_text("No knowledge bases yet")).to_be_visible(timeout=30_000)
