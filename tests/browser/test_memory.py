"""Memory in the browser: a fact said in one conversation is learned ("Learned: ..."), recalled in the next
("Remembered 1 thing"), found on the Memory page by meaning, edited and deleted; one added by hand; the user level
turned off, after which a new conversation recalls nothing; the page in Chinese."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Live, shoot, sign_in_as, start_live
from tests.support.model_server import ChatReply

DOG = "The user's dog is called Rex."
CAT = "The user's cat is called Tom."


class Scripted:
    """The model's side: memory's extraction prompt answers with `facts`, its decision prompt with no decision (the
    test's facts have no similar memories to decide against), a title prompt with a title, every agent turn
    `Noted.`."""

    def __init__(self) -> None:
        self.facts: list[dict[str, str]] = []

    def respond(self, request: Any) -> ChatReply:
        text = json.dumps(request.messages)
        if "Read the conversation turn below" in text:
            return ChatReply.text(json.dumps({"facts": self.facts}))
        if "New facts were learned" in text:
            return ChatReply.text('{"decisions": []}')
        if "Write a title" in text:
            return ChatReply.text('"A title"')
        return ChatReply.text("Noted.")


@pytest.fixture(scope="module")
def live(web_build: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """This module's own server, with memory on (the shared one has it off)."""
    with start_live(tmp_path_factory.mktemp("memory"), NEXENT_MEMORY_ENABLED="true") as server:
        yield server


@pytest.fixture
def scripted(live: Live) -> Iterator[Scripted]:
    live.llm.server.reset()
    model = Scripted()
    live.llm.server.responder = model.respond
    yield model
    live.llm.server.responder = None


@pytest.fixture
def owner(live: Live) -> dict[str, Any]:
    """A new tenant with the scripted chat and embedding models as its defaults and one agent."""
    tokens = live.register()
    model = live.add_model(tokens["access_token"])
    live.add_model(tokens["access_token"], "Test embed", kind="embedding", model="test-embed")
    agent = live.api(
        "POST",
        "/api/agents",
        tokens["access_token"],
        json={"name": f"pal-{uuid.uuid4().hex[:6]}", "model_id": model["id"], "greeting": "I remember things."},
    )
    assert agent.status_code == 201, agent.text
    return {**tokens, "agent": agent.json()}


def say(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Message").fill(text)
    page.keyboard.press("Enter")


def new_chat(page: Page) -> None:
    page.get_by_role("button", name="New chat").click()
    expect(page.get_by_text("I remember things.")).to_be_visible()


def test_learned_recalled_managed_and_turned_off(
    page: Page, live: Live, owner: dict[str, Any], scripted: Scripted
) -> None:
    sign_in_as(page, owner)
    scripted.facts = [{"text": DOG, "level": "user"}]
    page.goto("/chat")
    expect(page.get_by_text("I remember things.")).to_be_visible()
    say(page, "My dog is called Rex.")
    expect(page.get_by_test_id("answer")).to_have_text("Noted.")
    learned = page.get_by_test_id("memory-learned")
    expect(learned).to_contain_text(f"Learned: {DOG}", timeout=30_000)
    expect(page.get_by_test_id("memory-recalled")).to_have_count(0)

    # A second conversation recalls it before the answer, folded away until opened.
    scripted.facts = []
    new_chat(page)
    say(page, "What is my dog called?")
    expect(page.get_by_test_id("answer")).to_have_text("Noted.")
    recalled = page.get_by_test_id("memory-recalled")
    expect(recalled).to_contain_text("Remembered 1 thing")
    expect(recalled.get_by_text(DOG)).to_be_hidden()
    recalled.get_by_role("button", name=re.compile("Remembered 1 thing")).click()
    expect(recalled.get_by_text(DOG)).to_be_visible()
    shoot(page, "chat-memory")

    # The run's timeline lists what it recalled.
    page.get_by_role("link", name="Run timeline").last.click()
    expect(page.get_by_test_id("timeline-memory")).to_contain_text(DOG)

    # The Memory page: found by meaning, edited in place by keyboard, deleted after a confirmation.
    page.goto("/memory")
    expect(page.get_by_role("heading", name="Memory", exact=True)).to_be_visible()
    items = page.get_by_test_id("memory-item")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("Learned in a conversation")
    search = page.get_by_label("Search memories by meaning")
    search.fill("what is the name of my dog")
    search.press("Enter")
    expect(items.first.get_by_test_id("memory-text")).to_have_text(DOG)
    expect(items.first).to_contain_text("relevance")
    items.first.get_by_role("button", name=re.compile(r"^Edit")).click()
    editor = page.get_by_role("textbox", name="Text of the memory")
    expect(editor).to_be_focused()
    editor.fill("The user's dog is called Max.")
    editor.press("Control+Enter")
    expect(page.get_by_text("Memory updated.")).to_be_visible()
    expect(items.first.get_by_test_id("memory-text")).to_have_text("The user's dog is called Max.")
    shoot(page, "memory")
    items.first.get_by_role("button", name=re.compile(r"^Delete")).click()
    page.locator(".ant-popconfirm").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Memory deleted.")).to_be_visible()
    expect(page.get_by_text("No memory matches.")).to_be_visible()
    search.fill("")
    search.press("Enter")
    expect(page.get_by_text("Nothing remembered yet")).to_be_visible()
    expect(page.get_by_text(re.compile(r"it learns the fact after its answer"))).to_be_visible()

    # One added by hand, then the user level turned off: a new conversation recalls nothing.
    page.get_by_role("button", name="Add a memory").first.click()
    dialog = page.get_by_role("dialog", name="Add a memory")
    dialog.get_by_label("What to remember").fill(CAT)
    dialog.get_by_role("button", name="Add a memory").click()
    expect(dialog).to_be_hidden()
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("Added by hand")
    mine = page.get_by_role("switch", name="Mine", exact=True)
    expect(mine).to_be_checked()
    mine.focus()
    page.keyboard.press("Space")
    expect(page.get_by_text("Memory switches saved.")).to_be_visible()
    expect(mine).not_to_be_checked()
    settings = live.api("GET", "/api/memory/settings", owner["access_token"]).json()
    assert settings["levels"]["user"] is False

    page.goto("/chat")
    expect(page.get_by_text("I remember things.")).to_be_visible()
    say(page, "What is my cat called?")
    expect(page.get_by_test_id("answer")).to_have_text("Noted.")
    expect(page.get_by_test_id("memory-recalled")).to_have_count(0)
    agent_prompts = [
        json.dumps(r.messages)
        for r in live.llm.server.chat_requests
        if "long-term memory" not in json.dumps(r.messages) and "What is my cat called?" in json.dumps(r.messages)
    ]
    assert agent_prompts and CAT not in agent_prompts[-1]

    # The page in Chinese.
    page.goto("/memory")
    page.get_by_label("Language").click()
    page.get_by_title("中文").click()
    expect(page.get_by_role("heading", name="记忆", exact=True)).to_be_visible()
    expect(page.get_by_role("switch", name="我的", exact=True)).not_to_be_checked()
    expect(page.get_by_test_id("memory-item").first).to_contain_text("手动添加")
    shoot(page, "memory-zh")


def test_a_manager_turns_an_agents_memory_off_in_the_studio(page: Page, live: Live, owner: dict[str, Any]) -> None:
    agent = owner["agent"]
    page.context.add_init_script("window.localStorage.setItem('nexent.theme', 'dark')")
    sign_in_as(page, owner)
    page.goto(f"/agents/edit?id={agent['id']}")
    use = page.get_by_role("checkbox", name="Use memory")
    expect(use).to_be_checked()
    use.focus()
    page.keyboard.press("Space")
    expect(page.get_by_text("Memory turned off for this agent.")).to_be_visible()
    expect(use).not_to_be_checked()
    setting = live.api("GET", f"/api/memory/agents/{agent['id']}", owner["access_token"])
    assert setting.json() == {"agent_id": agent["id"], "enabled": False}

    # The Memory page (in the dark theme) says so beside the member's own switches.
    page.goto("/memory")
    expect(page.get_by_text(f"Turned off for everyone by an admin: {agent['name']}")).to_be_visible()
    expect(page.get_by_text("Nothing remembered yet")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    shoot(page, "memory-empty-dark")
