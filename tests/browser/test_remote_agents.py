"""Journey of the remote agents page with a real sample A2A agent (built with the `a2a-sdk`): added by its card URL
with the API key its card declares (by keyboard), checked, its card read, a card that is not A2A 1.0 refused, the
remote agent picked as a sub-agent in the studio, the page in Chinese and at phone width, and the remote agent
removed."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Live, allow_console_error, shoot, sign_in_as
from tests.support.a2a_agents import API_KEY, SampleAgents, serve_sample_agents


@pytest.fixture(scope="module")
def samples() -> Iterator[SampleAgents]:
    with serve_sample_agents() as served:
        yield served


def test_add_check_and_use_a_remote_agent(page: Page, live: Live, samples: SampleAgents) -> None:
    tokens = live.register(display_name="Remote Owner", tenant_name="Remote Team")
    live.add_model(tokens["access_token"])
    sign_in_as(page, tokens)
    page.goto("/remote-agents")
    expect(page.get_by_role("heading", name="Remote agents", level=2)).to_be_visible()
    expect(page.get_by_text("No remote agents yet")).to_be_visible()

    # A card that is not an A2A 1.0 card is refused, with the reason in the dialog.
    allow_console_error(page, "422")
    page.get_by_role("button", name="Add a remote agent").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Agent card URL").fill(samples.card_url("old"))
    dialog.get_by_role("button", name="Add a remote agent").click()
    expect(dialog.get_by_test_id("remote-add-error")).to_contain_text("1.0")

    # The guarded agent, with its API key, added by keyboard.
    dialog.get_by_label("Agent card URL").fill(samples.card_url("guarded"))
    dialog.get_by_label("API key (if the card asks for one)").fill(API_KEY)
    dialog.get_by_label("API key (if the card asks for one)").press("Enter")
    row = page.get_by_role("row", name=re.compile("guarded_agent"))
    expect(row).to_contain_text("Guarded Agent")
    expect(row.get_by_test_id("remote-status")).to_have_text("Not checked")

    row.get_by_role("button", name="Check guarded_agent").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("remote-check-result")).to_contain_text("guarded_agent: OK")
    expect(row.get_by_test_id("remote-status")).to_have_text("OK")
    shoot(page, "remote-agents")

    # The card's details: skills, what it asks for, which header holds the stored key (never the key).
    row.get_by_role("button", name="Card of guarded_agent").click()
    drawer = page.get_by_role("dialog")
    expect(drawer.get_by_test_id("remote-skills")).to_contain_text("Repeats the text it is given.")
    expect(drawer).to_contain_text("api_key:header:X-API-Key")
    expect(drawer).to_contain_text("Stored: X-API-Key")
    expect(drawer).to_contain_text("guarded_agent__agent")
    expect(drawer).not_to_contain_text(API_KEY)
    shoot(page, "remote-agent-card")
    page.keyboard.press("Escape")

    # In the studio, the remote agent is offered beside the local sub-agents.
    page.goto("/agents/edit")
    page.get_by_label("Name", exact=True).fill("Delegator")
    page.get_by_label("Model").click()
    page.get_by_title("test-chat (default)").click()
    page.get_by_label("Remote agents (A2A)").click()
    page.get_by_title(re.compile("^guarded_agent")).click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_text("Delegator was created.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/agents/edit\?id="))
    page.reload()
    picker = page.get_by_test_id("remote-agent-picker")
    expect(picker).to_contain_text("guarded_agent")
    agents = live.api("GET", "/api/agents", tokens["access_token"]).json()["items"]
    assert [t["name"] for t in agents[0]["tools"]] == ["guarded_agent__agent"]
    shoot(page, "agent-studio-remote-agents")

    # In Chinese, at phone width too (shoot takes both widths); then removed.
    page.evaluate("window.localStorage.setItem('nexent.locale', 'zh')")
    page.goto("/remote-agents")
    expect(page.get_by_role("heading", name="远程智能体", level=2)).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("guarded_agent")).get_by_test_id("remote-status")).to_have_text(
        "正常"
    )
    shoot(page, "remote-agents-zh")
    page.get_by_role("button", name="删除 guarded_agent").click()
    page.get_by_role("button", name=re.compile(r"^删 ?除$")).click()
    expect(page.get_by_text("还没有远程智能体")).to_be_visible()
