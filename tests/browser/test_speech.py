"""Speech input in the chat composer, in a Chromium with a fake microphone: no microphone button without a
speech-to-text model; with one, a recording (MediaRecorder) is transcribed by the scripted model server and its text
lands in the composer; a failed transcription is said next to the button."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, Live, allow_console_error, shoot, sign_in_as, watched_page

# A fake microphone (a beep), allowed without asking: what a person granting access would give.
FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *FAKE_MEDIA])
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser, live: Live) -> Iterator[Page]:
    with watched_page(browser, live.url) as page:
        yield page


@pytest.fixture
def owner(live: Live) -> dict[str, Any]:
    tokens = live.register()
    model = live.add_model(tokens["access_token"])
    agent = live.api(
        "POST",
        "/api/agents",
        tokens["access_token"],
        json={"name": f"speech-{uuid.uuid4().hex[:6]}", "model_id": model["id"], "greeting": "Speak to me."},
    )
    assert agent.status_code == 201, agent.text
    return tokens


def test_a_dictated_message_lands_in_the_composer(page: Page, live: Live, owner: dict[str, Any]) -> None:
    sign_in_as(page, owner)
    page.goto("/chat")
    expect(page.get_by_text("Speak to me.")).to_be_visible()
    composer = page.get_by_role("textbox", name="Message")
    expect(composer).to_be_visible()
    expect(page.get_by_role("button", name="Dictate a message")).to_have_count(0)  # no speech-to-text model

    live.add_model(owner["access_token"], "Whisper", kind="stt", model="scripted-stt")
    live.llm.server.transcription_text = "What is six times seven?"
    page.reload()
    composer.fill("Question:")
    page.get_by_role("button", name="Dictate a message").click()
    expect(page.get_by_role("status").filter(has_text="Recording")).to_be_visible()
    stop = page.get_by_role("button", name="Stop recording and transcribe")
    expect(stop).to_have_attribute("aria-pressed", "true")
    page.wait_for_timeout(800)  # a moment of the fake microphone's beep
    stop.click()
    expect(composer).to_have_value("Question: What is six times seven?")
    received = live.llm.server.transcriptions[-1]
    assert received["model"] == "scripted-stt" and received["content_type"].startswith("audio/webm")
    assert received["size"] > 0
    shoot(page, "chat-speech")

    # A transcription that fails is said, and the composer keeps what it had.
    allow_console_error(page, "502")
    live.llm.server.api_key = "sk-another"  # the model now refuses the platform's key
    try:
        page.get_by_role("button", name="Dictate a message").click()
        page.wait_for_timeout(400)
        page.get_by_role("button", name="Stop recording and transcribe").click()
        expect(page.get_by_role("alert").filter(has_text="could not be transcribed")).to_be_visible()
    finally:
        live.llm.server.api_key = "sk-test"
    expect(composer).to_have_value("Question: What is six times seven?")
