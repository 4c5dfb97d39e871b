"""Journeys of agent versions in the studio: publishing by keyboard (refused first, with the server's reasons),
the published status, the versions panel with its comparison, rolling back, disabling a version, the test chat
running the draft, the list's published column, and the panel in Chinese."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import Live, allow_console_error, check_accessibility, shoot, sign_in_as
from tests.browser.test_keyboard import tab_to
from tests.support.model_server import ChatReply


def api_ok(live: Live, method: str, path: str, token: str, **kwargs: Any) -> dict[str, Any]:
    response = live.api(method, path, token, **kwargs)
    assert response.status_code in (200, 201), response.text
    data: dict[str, Any] = response.json()
    return data


def test_publish_compare_roll_back_and_disable_versions(page: Page, live: Live) -> None:
    tokens = live.register()
    token = tokens["access_token"]
    live.add_model(token, "scripted-llm")
    helper = api_ok(live, "POST", "/api/agents", token, json={"name": "researcher", "display_name": "Researcher"})
    sign_in_as(page, tokens)

    # A new agent with a display name and a sub-agent that is not published yet.
    page.goto("/agents/edit")
    page.get_by_label("Name", exact=True).fill("writer")
    page.get_by_label("Display name").fill("Writing helper")
    page.get_by_label("Duty").fill("Write short answers.\nBe brief.")
    page.get_by_label("Sub-agents").click()
    page.get_by_title("Researcher").click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_text("Writing helper was created.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Writing helper")
    status = page.get_by_test_id("publish-status")
    expect(status).to_have_text("Not published")

    # Publish by keyboard: the dialog opens on Enter with the note focused; Ctrl+Enter publishes. The server refuses
    # while the sub-agent is unpublished, and the dialog says why, with the sub-agent's name.
    allow_console_error(page, "status of 422")
    page.locator("#main").focus()
    tab_to(page, page.get_by_role("button", name="Publish"))
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Publish Writing helper")
    expect(dialog).to_be_visible()
    note = dialog.get_by_label("Note")
    expect(note).to_be_focused()
    page.keyboard.type("first")
    page.keyboard.press("Control+Enter")
    expect(dialog.get_by_role("alert")).to_contain_text("The draft cannot be published yet:")
    expect(dialog.get_by_role("alert")).to_contain_text("Sub-agents: Publish the sub-agent Researcher first.")
    shoot(page, "agent-publish-refused")
    api_ok(live, "POST", f"/api/agents/{helper['id']}/publish", token, json={"note": ""})
    expect(note).to_be_focused()
    page.keyboard.press("Control+Enter")
    expect(page.get_by_text("Published version 1.")).to_be_visible()
    expect(dialog).to_be_hidden()
    # The version pinned the sub-agent and the workspace's default model: that alone is no unpublished change.
    expect(status).to_have_text("Published v1")

    # Change the draft's instructions: the status says the draft differs from what is published.
    page.get_by_label("Duty").fill("Write short answers.\nBe thorough.")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Writing helper was saved.")).to_be_visible()
    expect(status).to_contain_text("Unpublished changes")

    # The versions panel: the list and, by default, the published version against the draft.
    page.get_by_role("tab", name="Versions").click()
    row = page.get_by_role("row", name=re.compile(r"^v1"))
    expect(row).to_contain_text("first")
    expect(row).to_contain_text("Published")
    diff = page.get_by_test_id("version-diff")
    duty = diff.locator("li", has_text="Duty")
    expect(duty.locator("del")).to_have_text("-Be brief.")
    expect(duty.locator("ins")).to_have_text("+Be thorough.")
    expect(diff).to_contain_text("Changed fields: 1")
    shoot(page, "agent-versions")

    # Any two sides: the draft against itself has no differences.
    page.get_by_label("From").click()
    page.get_by_role("option", name="Draft").click()
    expect(diff).to_have_text("No differences")
    page.get_by_role("button", name="Compare version 1 with the draft").click()
    expect(duty.locator("del")).to_have_text("-Be brief.")

    # Roll back to v1: the draft is v1 again, in the form too.
    page.get_by_role("button", name="Roll back to version 1").click()
    page.get_by_role("tooltip").get_by_role("button", name="Roll back").click()
    expect(page.get_by_text("The draft now matches v1. Publish it again to make it live.")).to_be_visible()
    expect(diff).to_have_text("No differences")
    expect(status).to_have_text("Published v1")
    page.get_by_role("tab", name="Settings").click()
    expect(page.get_by_label("Duty")).to_have_value("Write short answers.\nBe brief.")

    # Publish again with the mouse: v2 is the published one.
    page.get_by_role("button", name="Publish").click()
    dialog.get_by_label("Note").fill("second")
    dialog.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published version 2.")).to_be_visible()
    expect(status).to_have_text("Published v2")
    page.get_by_role("tab", name="Versions").click()
    expect(page.get_by_role("row", name=re.compile(r"^v2"))).to_contain_text("Published")
    expect(page.get_by_role("row", name=re.compile(r"^v1"))).not_to_contain_text("Published")

    # Disabling v2 makes v1 the published one again; enabling it brings v2 back.
    page.get_by_role("switch", name="Version 2 enabled").click()
    expect(status).to_have_text("Published v1")
    expect(page.get_by_role("row", name=re.compile(r"^v2"))).to_contain_text("Disabled")
    page.get_by_role("switch", name="Version 2 enabled").click()
    expect(status).to_have_text("Published v2")

    # The test chat runs the draft (the run records no version); chat runs the published one.
    live.llm.server.enqueue(ChatReply.text("A draft answer."), ChatReply.text('"Draft"'))
    chat = page.locator("[data-slot=test-chat]")
    chat.get_by_role("textbox", name="Message").fill("Hello?")
    page.keyboard.press("Enter")
    expect(chat.get_by_test_id("answer")).to_have_text("A draft answer.")
    runs = api_ok(live, "GET", "/api/runs", token, params={"limit": 1})
    assert runs["items"][0]["agent_version"] is None

    # The list shows the display name and the published version; the sub-agent is published too.
    page.get_by_role("link", name="All agents").click()
    writer = page.get_by_role("row", name=re.compile("Writing helper"))
    expect(writer).to_contain_text("v2")
    expect(writer).to_contain_text("writer")
    expect(page.get_by_role("row", name=re.compile("Researcher"))).to_contain_text("v1")
    shoot(page, "agents-versions-list")


def test_versions_panel_in_chinese(page: Page, live: Live) -> None:
    tokens = live.register()
    token = tokens["access_token"]
    live.add_model(token, "scripted-llm")
    agent = api_ok(
        live, "POST", "/api/agents", token, json={"name": "translator", "instructions": {"duty": "Translate."}}
    )
    api_ok(live, "POST", f"/api/agents/{agent['id']}/publish", token, json={"note": "首个版本"})
    api_ok(live, "PATCH", f"/api/agents/{agent['id']}", token, json={"instructions": {"duty": "Translate well."}})
    api_ok(live, "POST", "/api/agents", token, json={"name": "drafty"})
    sign_in_as(page, tokens)
    page.goto("/agents")
    page.evaluate("window.localStorage.setItem('nexent.locale', 'zh')")
    page.reload()
    expect(page.get_by_role("row", name=re.compile("translator"))).to_contain_text("v1")
    expect(page.get_by_role("row", name=re.compile("drafty"))).to_contain_text("仅草稿")

    page.goto(f"/agents/edit?id={agent['id']}&tab=versions")
    expect(page.get_by_test_id("publish-status")).to_have_text("已发布 v1有未发布的更改")
    expect(page.get_by_role("tab", name="版本")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("columnheader", name="说明")).to_be_visible()
    expect(page.get_by_role("columnheader", name="发布时间")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(r"^v1"))).to_contain_text("首个版本")
    expect(page.get_by_role("button", name="回滚 版本 1")).to_be_visible()
    expect(page.get_by_role("switch", name="版本 1 已启用")).to_be_checked()
    diff = page.get_by_test_id("version-diff")
    expect(diff.locator("li", has_text="职责").locator("ins")).to_have_text("+Translate well.")
    shoot(page, "agent-versions-zh")

    # The diff's colours keep their contrast in the dark theme.
    page.evaluate("window.localStorage.setItem('nexent.theme', 'dark')")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(diff.locator("ins")).to_have_text("+Translate well.")
    page.wait_for_timeout(300)  # antd's transitions settle
    check_accessibility(page)
