"""Chat attachments in the browser: a document attached with the button and an image dropped on the chat upload
with their progress (an empty file is refused beside its name, alone), are sent with the message and both used
(the scripted model echoes what it received: the document's text and the image); the message shows them (a
thumbnail, a chip that downloads), the answer says how each was prepared, and they are still there after a
reload."""

from __future__ import annotations

import base64
import io
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import FilePayload, Page, expect

from tests.browser.conftest import Live, allow_console_error, shoot, sign_in_as

NOTES = "The launch code of project Heron is PURPLE-42."


def sign_png() -> bytes:
    image = Image.new("RGB", (240, 120), "white")
    ImageDraw.Draw(image).text((20, 50), "HERON", fill="black")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def owner(live: Live) -> dict[str, Any]:
    """A new tenant whose default LLM (the scripted model) takes images, and an agent on it."""
    tokens = live.register()
    model = live.api(
        "POST",
        "/api/models",
        tokens["access_token"],
        json={
            "name": "Seeing chat",
            "kind": "llm",
            "model": "test-chat",
            "base_url": live.llm.base_url,
            "api_key": "sk-test",
            "is_default": True,
            "accepts_images": True,
        },
    )
    assert model.status_code == 201, model.text
    agent = live.api(
        "POST",
        "/api/agents",
        tokens["access_token"],
        json={"name": f"reader-{uuid.uuid4().hex[:6]}", "model_id": model.json()["id"], "greeting": "I read files."},
    )
    assert agent.status_code == 201, agent.text
    return {**tokens, "agent": agent.json()}


def drop_file(page: Page, name: str, mime: str, data: bytes) -> None:
    """Drop a file on the chat, as a person dragging it from their desktop would."""
    page.get_by_test_id("transcript").evaluate(
        """(target, [name, mime, payload]) => {
            const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: mime }));
            for (const type of ["dragenter", "dragover", "drop"]) {
                target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer }));
            }
        }""",
        [name, mime, base64.b64encode(data).decode()],
    )


def test_a_document_and_an_image_are_attached_sent_and_used(page: Page, live: Live, owner: dict[str, Any]) -> None:
    live.llm.server.reset()
    allow_console_error(page, "status of 422")  # the empty file's refusal
    sign_in_as(page, owner)
    page.goto("/chat")
    expect(page.get_by_text("I read files.")).to_be_visible()

    # The button's file picker: a document, and an empty file that is refused alone.
    files: list[FilePayload] = [
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": NOTES.encode()},
        {"name": "empty.txt", "mimeType": "text/plain", "buffer": b""},
    ]
    page.get_by_test_id("attach-input").set_input_files(files)
    png = sign_png()
    drop_file(page, "sign.png", "image/png", png)
    pending = page.get_by_test_id("pending-attachments")
    expect(pending.locator("li[data-status=done]")).to_have_count(2)
    refused = pending.locator("li[data-status=error]")
    expect(refused).to_contain_text("empty.txt")
    expect(refused.get_by_role("alert")).to_contain_text("empty")
    refused.get_by_role("button", name="Remove empty.txt").click()
    expect(pending.locator("li")).to_have_count(2)

    page.get_by_role("textbox", name="Message").fill("What do the files say?")
    page.keyboard.press("Enter")
    answer = page.get_by_test_id("answer")
    # The first parse starts knowledge's parser worker (seconds on a busy machine).
    expect(answer).to_contain_text("PURPLE-42", timeout=90_000)  # the document reached the model
    expect(answer).to_contain_text("[images: image/png")  # and so did the image
    progress = page.get_by_test_id("attachment-progress")
    expect(progress).to_contain_text("Read notes.txt")
    expect(progress).to_contain_text("Sent the image sign.png to the model")
    [received] = live.llm.server.chat_requests[0].images
    assert received.data == png

    sent = page.get_by_test_id("message-attachments")
    expect(sent.get_by_test_id("attachment-thumbnail").locator("img")).to_have_attribute("src", re.compile("^blob:"))
    expect(sent.get_by_role("button", name="notes.txt · 46 B")).to_be_visible()
    expect(pending).to_have_count(0)
    shoot(page, "chat-attachments")

    # After a reload the history still shows them, and the chip downloads the document.
    page.reload()
    sent = page.get_by_test_id("message-attachments")
    expect(sent.get_by_role("img", name="Image sign.png")).to_be_visible()
    with page.expect_download() as download:
        sent.get_by_role("button", name=re.compile("notes.txt")).click()
    assert download.value.suggested_filename == "notes.txt"
    assert Path(download.value.path()).read_bytes() == NOTES.encode()
