"""Journeys of the agent studio: the list, creating an agent with a model and tools, editing it, a refused draft
with the server's words, and deleting it."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import Live, allow_console_error, shoot, sign_in_as


def add_model(live: Live, token: str, name: str) -> None:
    """The scripted LLM as the tenant's default chat model (`live.add_model` without the now required `model`)."""
    body = {
        "name": name,
        "kind": "llm",
        "model": "test-chat",
        "base_url": live.llm.base_url,
        "api_key": "sk-test",
        "is_default": True,
    }
    response = live.api("POST", "/api/models", token, json=body)
    assert response.status_code == 201, response.text


def test_create_edit_list_refuse_and_delete_an_agent(page: Page, live: Live) -> None:
    tokens = live.register()
    add_model(live, tokens["access_token"], "scripted-llm")
    sign_in_as(page, tokens)

    # An empty list says what to do next.
    page.goto("/agents")
    expect(page.get_by_text("No agents yet")).to_be_visible()
    page.get_by_role("button", name="New agent").click()
    expect(page).to_have_url(re.compile(r"/agents/edit$"))
    expect(page.get_by_text("The test chat opens here once the agent is saved.")).to_be_visible()

    # A name left empty is refused before anything is sent.
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_text("Give the agent a name.")).to_be_visible()

    page.get_by_label("Name", exact=True).fill("Math helper")
    page.get_by_label("Description").fill("Answers arithmetic questions.")
    page.get_by_label("Model").click()
    page.get_by_title("scripted-llm (default)").click()
    page.get_by_label("Duty").fill("Answer arithmetic questions with the calculator.")
    page.get_by_role("checkbox", name="calculator").check()
    page.get_by_role("checkbox", name="fetch_webpage").check()
    page.get_by_label("Max chars").fill("5000")
    page.get_by_label("Greeting").fill("Ask me a sum.")
    page.get_by_role("button", name="Add a question").click()
    page.get_by_role("textbox", name="Example question 1").fill("What is 6 times 7?")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_text("Math helper was created.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/agents/edit\?id="))
    expect(page.get_by_role("heading", name="Math helper", level=1)).to_be_visible()
    expect(page.get_by_role("checkbox", name="calculator")).to_be_checked()
    expect(page.get_by_label("Max chars")).to_have_value("5000")
    expect(page.get_by_text("scripted-llm (default)")).to_be_visible()
    shoot(page, "agent-studio")

    # Edit the instructions; they are kept.
    page.get_by_label("Duty").fill("Answer arithmetic questions, always with the calculator.")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Math helper was saved.")).to_be_visible()
    page.reload()
    expect(page.get_by_label("Duty")).to_have_value("Answer arithmetic questions, always with the calculator.")

    # The list shows it.
    page.get_by_role("link", name="All agents").click()
    expect(page).to_have_url(re.compile(r"/agents$"))
    row = page.get_by_role("row", name=re.compile("Math helper"))
    expect(row).to_contain_text("Answers arithmetic questions.")
    shoot(page, "agents")

    # A second agent of the same name: the server's words, at the name too.
    allow_console_error(page, "status of 409")
    page.get_by_role("button", name="New agent").click()
    page.get_by_label("Name", exact=True).fill("math helper")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_role("alert").first).to_contain_text("An agent named 'math helper' exists.")

    # Delete it, after confirming.
    page.get_by_role("link", name="All agents").click()
    page.get_by_role("button", name="Delete Math helper").click()
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_text("Math helper was deleted.")).to_be_visible()
    expect(page.get_by_text("No agents yet")).to_be_visible()


def test_the_studio_shares_an_agent_with_a_group(page: Page, live: Live) -> None:
    owner = live.register(display_name="Sharing Owner")
    token = owner["access_token"]
    invitation = live.api("POST", "/api/invitations", token, json={"role": "user"})
    member = live.register(display_name="Plain Member", invitation_code=invitation.json()["code"])
    member_id = live.api("GET", "/api/me", member["access_token"]).json()["user"]["id"]
    group = live.api("POST", "/api/groups", token, json={"name": "Support"}).json()
    assert live.api("PUT", f"/api/groups/{group['id']}/members/{member_id}", token).status_code in (200, 204)
    add_model(live, token, "scripted-llm")
    # Published: members who may not edit it see only its published version.
    agent = live.api("POST", "/api/agents", token, json={"name": "shared-helper"}).json()
    assert live.api("POST", f"/api/agents/{agent['id']}/publish", token, json={}).status_code == 201

    def member_sees_it() -> bool:
        listed = live.api("GET", "/api/agents", member["access_token"]).json()["items"]
        return any(item["id"] == agent["id"] for item in listed)

    assert not member_sees_it()
    sign_in_as(page, owner)
    page.goto(f"/agents/edit?id={agent['id']}")
    access = page.get_by_label("Access of Support")
    expect(access).to_be_visible()
    expect(page.get_by_title("Not shared")).to_be_visible()
    access.click()
    page.get_by_title("Can use").click()
    expect(page.get_by_text("Saved", exact=True)).to_be_visible()
    assert member_sees_it()
    # Kept: the studio shows it again after a reload; taking it back hides the agent from the group again.
    page.reload()
    expect(page.get_by_title("Can use")).to_be_visible()
    page.get_by_label("Access of Support").click()
    page.get_by_title("Not shared").click()
    expect(page.get_by_text("Saved", exact=True)).to_be_visible()
    assert not member_sees_it()
