"""Every action works by keyboard: journeys done with Tab, Shift+Tab, Enter, Space, arrows and Escape only (no
mouse, no `.click()`, no `.fill()`), and the focused control shows a focus ring."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import SCREENSHOTS, Live, check_accessibility, sign_in_as
from tests.support.identity import PASSWORD
from tests.support.model_server import ChatReply

MAX_PRESSES = 80


def focused(target: Locator) -> bool:
    """Whether `target` (or something inside it) has the keyboard focus now."""
    if target.count() == 0:
        return False
    return bool(target.first.evaluate("e => e === document.activeElement || e.contains(document.activeElement)"))


def tab_to(page: Page, target: Locator, *, key: str = "Tab") -> None:
    """Press `key` (Tab by default) until `target` has the focus; fails if it never does."""
    for _ in range(MAX_PRESSES):
        page.keyboard.press(key)
        if focused(target):
            return
    raise AssertionError(f"{target} is not reachable with {key}")


def type_into(page: Page, target: Locator, text: str) -> None:
    """Tab to a field, clear it and type `text`, key by key."""
    tab_to(page, target)
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type(text)


@pytest.fixture
def owner(live: Live) -> dict[str, Any]:
    """A new tenant with the scripted model as its default and an agent to chat with."""
    tokens = live.register()
    model = live.add_model(tokens["access_token"])
    agent = live.api(
        "POST",
        "/api/agents",
        tokens["access_token"],
        json={"name": f"helper-{uuid.uuid4().hex[:6]}", "model_id": model["id"], "greeting": "Ask me anything."},
    )
    assert agent.status_code == 201, agent.text
    return {**tokens, "model": model, "agent": agent.json()}


def test_sign_in_skip_link_and_navigation_by_keyboard(page: Page, live: Live) -> None:
    email = f"k{uuid.uuid4().hex[:10]}@example.com"
    live.register(email)
    page.goto("/signin")
    expect(page.get_by_role("heading", name="Sign in to Nexent")).to_be_visible()
    type_into(page, page.get_by_label("Email"), email)
    type_into(page, page.get_by_label("Password"), PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/chat"))

    # The first Tab reaches the skip link, which moves the focus to the main content.
    page.goto("/agents")
    expect(page.get_by_text("No agents yet")).to_be_visible()
    skip = page.get_by_role("link", name="Skip to content")
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()

    # The focused control shows a focus ring (an outline or a box shadow).
    menu = page.get_by_role("navigation", name="Menu")
    tab_to(page, menu.get_by_role("link", name="Knowledge"), key="Shift+Tab")
    ring = page.evaluate(
        """() => {
            const style = getComputedStyle(document.activeElement.closest('li') ?? document.activeElement);
            const own = getComputedStyle(document.activeElement);
            return [own.outlineStyle, own.outlineWidth, style.outlineStyle, style.outlineWidth, own.boxShadow,
                    style.boxShadow].join(' ');
        }"""
    )
    assert re.search(r"solid|auto|rgb", ring), ring
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "keyboard-focus-ring.png"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/knowledge$"))

    # At phone width the menu button opens the navigation drawer, with the focus in it; a link there goes on.
    page.set_viewport_size({"width": 390, "height": 800})
    menu_button = page.get_by_role("button", name="Menu")
    expect(menu_button).to_be_visible()
    page.locator("#main").focus()
    tab_to(page, menu_button, key="Shift+Tab")
    page.keyboard.press("Enter")
    drawer = page.get_by_role("dialog")
    expect(drawer).to_be_visible()
    tab_to(page, drawer.get_by_role("link", name="Models"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/models$"))
    expect(drawer).to_be_hidden()

    # Escape closes the drawer without going anywhere, and the focus goes back to the menu button.
    tab_to(page, menu_button, key="Shift+Tab")
    page.keyboard.press("Enter")
    expect(drawer).to_be_visible()
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    expect(menu_button).to_be_focused()


def test_chat_send_and_rename_by_keyboard(page: Page, live: Live, owner: dict[str, Any]) -> None:
    live.llm.server.enqueue(ChatReply.text("Hello from the keyboard test."), ChatReply.text('"Keyboard hello"'))
    sign_in_as(page, owner)
    page.goto("/chat")
    expect(page.get_by_text("Ask me anything.")).to_be_visible()
    tab_to(page, page.get_by_role("textbox", name="Message"))
    page.keyboard.type("Say hello.")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("answer")).to_have_text("Hello from the keyboard test.")

    # The conversation's menu: reached by Tab, opened with Enter, its items with Tab and the arrows.
    # The model titles the conversation in a quiet moment: wait for it (it takes the queued reply), then reload.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items = live.api("GET", "/api/conversations", owner["access_token"]).json()["items"]
        if items and items[0]["title"] == "Keyboard hello":
            break
        time.sleep(0.5)
    page.reload()
    conversations = page.get_by_role("navigation", name="Conversations")
    expect(conversations.get_by_text("Keyboard hello")).to_be_visible()
    actions = conversations.get_by_role("button", name="Actions: Keyboard hello")
    tab_to(page, actions, key="Shift+Tab")
    page.keyboard.press("Enter")
    rename = page.get_by_role("menuitem", name="Rename")
    expect(rename).to_be_visible()
    page.keyboard.press("Tab")  # into the menu
    expect(rename).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("menuitem", name="Delete")).to_be_focused()
    page.keyboard.press("ArrowUp")
    expect(rename).to_be_focused()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Rename")
    expect(dialog).to_be_visible()
    type_into(page, dialog.get_by_role("textbox", name="Name"), "Greetings")
    tab_to(page, dialog.get_by_role("button", name="Save"))
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(conversations.get_by_text("Greetings")).to_be_visible()

    # A conversation in the list opens with Enter.
    tab_to(page, page.get_by_role("button", name="New chat"), key="Shift+Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("answer")).to_have_count(0)
    tab_to(page, conversations.get_by_role("link", name="Greetings"))
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("answer")).to_have_text("Hello from the keyboard test.")


def test_agent_studio_and_api_key_by_keyboard(page: Page, live: Live, owner: dict[str, Any]) -> None:
    sign_in_as(page, owner)
    page.goto("/agents")
    expect(page.get_by_role("row", name=re.compile(owner["agent"]["name"]))).to_be_visible()
    page.locator("#main").focus()
    tab_to(page, page.get_by_role("button", name="New agent"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/agents/edit$"))
    type_into(page, page.get_by_label("Name", exact=True), "Keyboard agent")
    calculator = page.get_by_role("checkbox", name="calculator")
    tab_to(page, calculator)
    page.keyboard.press("Space")
    expect(calculator).to_be_checked()
    tab_to(page, page.get_by_role("button", name="Create agent"))
    page.keyboard.press("Enter")
    expect(page.get_by_text("Keyboard agent was created.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/agents/edit\?id="))

    # Team: the tabs by arrows, a new API key, and the secret's dialog closed with Escape.
    page.goto("/team")
    members = page.get_by_role("tab", name="Members")
    expect(members).to_be_visible()
    page.locator("#main").focus()
    tab_to(page, members)
    keys_tab = page.get_by_role("tab", name="API keys")
    tab_to(page, keys_tab, key="ArrowRight")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"tab=api-keys"))
    expect(page.get_by_text("No API keys yet")).to_be_visible()
    tab_to(page, page.get_by_role("button", name="New API key"))
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="New API key")
    expect(dialog).to_be_visible()
    type_into(page, dialog.get_by_label("Name"), "Keyboard bot")
    tab_to(page, dialog.get_by_role("button", name="Create"))
    page.keyboard.press("Enter")
    secret = page.get_by_label("Secret", exact=True)
    expect(secret).to_have_value(re.compile(r"^nxk_"))
    page.keyboard.press("Escape")
    expect(secret).to_have_count(0)
    expect(page.get_by_role("row", name=re.compile("Keyboard bot"))).to_contain_text("Active")


def test_main_pages_pass_axe_in_the_dark_theme(page: Page, live: Live, owner: dict[str, Any]) -> None:
    page.context.add_init_script("window.localStorage.setItem('nexent.theme', 'dark')")
    page.goto("/signin")
    expect(page.get_by_role("heading", name="Sign in to Nexent")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    check_accessibility(page)

    live.llm.server.enqueue(ChatReply.text("A dark answer."), ChatReply.text('"Dark"'))
    sign_in_as(page, owner)
    page.goto("/chat")
    tab_to(page, page.get_by_role("textbox", name="Message"))
    page.keyboard.type("Hello in the dark.")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("answer")).to_have_text("A dark answer.")
    check_accessibility(page)

    for path, ready in [
        ("/agents", page.get_by_role("row", name=re.compile(owner["agent"]["name"]))),
        (f"/agents/edit?id={owner['agent']['id']}", page.get_by_role("checkbox", name="calculator")),
        ("/knowledge", page.get_by_role("heading", name="Knowledge bases")),
        ("/models", page.get_by_role("heading", name="Models", exact=True)),
        ("/team", page.get_by_role("tab", name="Members")),
    ]:
        page.goto(path)
        expect(ready).to_be_visible()
        page.wait_for_timeout(300)  # antd's transitions settle
        check_accessibility(page)
