"""Journeys of the team: members and roles, groups, an invitation and an API key shown once, and the audit log
that lists them."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import Live, shoot, sign_in_as


def test_team_tabs_invitation_api_key_and_audit_log(page: Page, live: Live) -> None:
    owner = live.register(display_name="Team Owner", tenant_name="Team Tabs")
    # A second member, by invitation over the API, to manage from the UI.
    created = live.api("POST", "/api/invitations", owner["access_token"], json={"role": "user"})
    assert created.status_code == 201, created.text
    live.register(display_name="Second Person", invitation_code=created.json()["code"])
    sign_in_as(page, owner)

    page.goto("/team")
    members = page.get_by_role("table")
    expect(members).to_contain_text("Team Owner (you)")
    second = page.get_by_role("row", name=re.compile("Second Person"))
    second.get_by_label("Role: Second Person").click()
    page.get_by_title("Developer").click()
    expect(page.get_by_text("Second Person is now Developer.")).to_be_visible()
    shoot(page, "team-members")

    # Groups: create, add a member, rename.
    page.get_by_role("tab", name="Groups").click()
    expect(page).to_have_url(re.compile(r"tab=groups"))
    page.get_by_role("button", name="New group").first.click()
    page.get_by_role("dialog").get_by_label("Name").fill("Support")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Support")).to_be_visible()
    page.get_by_label("Add a member: Support").click()
    page.get_by_title(re.compile("Second Person")).click()
    expect(page.get_by_text("1 members")).to_be_visible()
    page.get_by_role("button", name="Rename Support").click()
    page.get_by_role("dialog").get_by_label("Name").fill("Customer support")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Customer support")).to_be_visible()
    shoot(page, "team-groups")

    # An invitation: its code and link once, then only its prefix in the list.
    page.get_by_role("tab", name="Invitations").click()
    page.get_by_role("button", name="New invitation").click()
    page.get_by_role("dialog").get_by_label("Only for this email (optional)").fill("not an email")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_text("Enter a valid email address")).to_be_visible()
    page.get_by_role("dialog").get_by_label("Only for this email (optional)").fill("")
    page.get_by_role("button", name="Create").click()
    code = page.get_by_label("Code", exact=True)
    expect(code).to_have_value(re.compile(r".{16,}"))
    invitation_code = code.input_value()
    expect(page.get_by_label("Link", exact=True)).to_have_value(re.compile(r"/invite\?code="))
    expect(page.get_by_text("it is shown only once")).to_be_visible()
    page.get_by_role("button", name="Close").first.click()
    expect(page.get_by_text("Invitation created")).to_be_hidden()
    expect(page.get_by_role("table")).not_to_contain_text(invitation_code)
    expect(page.get_by_role("table")).to_contain_text(invitation_code[:4])
    shoot(page, "team-invitations")

    # An API key: a missing name is refused; the secret is shown once with a warning, and gone after closing.
    page.get_by_role("tab", name="API keys").click()
    expect(page.get_by_text("No API keys yet")).to_be_visible()
    # Where OpenAI clients reach the agents (the embedded app's own origin), with an example.
    base_url = page.get_by_label("Base URL", exact=True)
    expect(base_url).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/v1$"))
    expect(page.get_by_label("Example (Python, the openai package)")).to_contain_text("chat.completions.create")
    page.get_by_role("button", name="New API key").click()
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("dialog").get_by_text("Required")).to_be_visible()
    page.get_by_role("dialog").get_by_label("Name").fill("CI bot")
    page.get_by_role("dialog").get_by_label("Requests per minute (optional)").fill("60")
    page.get_by_role("button", name="Create").click()
    secret = page.get_by_label("Secret", exact=True)
    expect(secret).to_have_value(re.compile(r"^nxk_"))
    secret_value = secret.input_value()
    expect(page.get_by_text("it is shown only once and cannot be recovered")).to_be_visible()
    # Beside it, the key's MCP connection URL, on the platform's address; the MCP server takes it.
    mcp_url = page.get_by_label("MCP connection URL", exact=True)
    expect(mcp_url).to_have_value(f"{live.url}/mcp/k/{secret_value}")
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    answer = httpx.post(
        mcp_url.input_value(), json=initialize, headers={"Accept": "application/json, text/event-stream"}
    )
    assert answer.status_code == 200, answer.text
    # The example for OpenAI clients carries the new key.
    example = page.get_by_role("dialog").get_by_label("Example (Python, the openai package)")
    expect(example).to_contain_text(secret_value)
    page.get_by_role("button", name="Close").first.click()
    expect(page.get_by_text(secret_value)).to_have_count(0)
    expect(page.get_by_label("Secret", exact=True)).to_have_count(0)
    row = page.get_by_role("row", name=re.compile("CI bot"))
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text("60/min")
    shoot(page, "team-api-keys")

    # The audit log lists what was done, newest first.
    page.get_by_role("tab", name="Audit log").click()
    audit = page.get_by_role("table")
    expect(audit).to_contain_text("api_key")
    expect(audit).to_contain_text("invitation")
    expect(audit).to_contain_text("group")
    shoot(page, "team-audit")

    # Revoking the key: the list says so.
    page.goto("/team?tab=api-keys")
    page.get_by_role("button", name="Revoke CI bot").click()
    page.get_by_role("button", name="Revoke", exact=True).click()
    expect(page.get_by_role("row", name=re.compile("CI bot"))).to_contain_text("Revoked")


def test_a_user_sees_only_the_tabs_their_role_allows(page: Page, live: Live) -> None:
    owner = live.register(display_name="Boss", tenant_name="Roles Team")
    created = live.api("POST", "/api/invitations", owner["access_token"], json={"role": "user"})
    member = live.register(display_name="Plain User", invitation_code=created.json()["code"])
    sign_in_as(page, member)
    page.goto("/team?tab=audit")
    expect(page.get_by_role("tab", name="Members")).to_be_visible()
    expect(page.get_by_role("tab", name="Audit log")).to_have_count(0)
    expect(page.get_by_role("tab", name="Invitations")).to_have_count(0)
    expect(page.get_by_role("tab", name="Workspace")).to_have_count(0)
    expect(page.get_by_role("table")).to_contain_text("Boss")
    expect(page.get_by_role("button", name="Remove")).to_have_count(0)
    page.goto("/models")
    expect(page.get_by_text("Only owners and admins can change models.")).to_be_visible()
    expect(page.get_by_role("button", name="Add model")).to_have_count(0)

    # In Chinese.
    page.evaluate("window.localStorage.setItem('nexent.locale', 'zh')")
    page.goto("/team")
    expect(page.get_by_role("heading", name="团队")).to_be_visible()
    expect(page.get_by_role("tab", name="成员")).to_be_visible()


def test_an_owner_lets_skill_scripts_use_the_network(page: Page, live: Live) -> None:
    owner = live.register(display_name="Net Owner", tenant_name="Network Team")
    assert live.api("GET", "/api/tenant", owner["access_token"]).json()["skills_network"] is False
    sign_in_as(page, owner)

    page.goto("/team")
    page.get_by_role("tab", name="Workspace").click()
    expect(page).to_have_url(re.compile(r"tab=workspace"))
    switch = page.get_by_role("switch", name="Skill scripts may use the network")
    expect(switch).not_to_be_checked()
    expect(page.get_by_text("network: true")).to_be_visible()
    # By keyboard, once the tenant is read: it saves at once and says so.
    expect(switch).to_be_enabled()
    switch.focus()
    page.keyboard.press("Space")
    expect(page.get_by_text("Skill scripts may now use the network.")).to_be_visible()
    expect(switch).to_be_checked()

    page.reload()
    expect(page.get_by_role("switch", name="Skill scripts may use the network")).to_be_checked()
    assert live.api("GET", "/api/tenant", owner["access_token"]).json()["skills_network"] is True
    shoot(page, "team-workspace")
