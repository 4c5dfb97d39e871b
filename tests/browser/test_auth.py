"""Journeys of accounts: sign up, sign out, sign in, switch language, and the pages before sign-in."""

from __future__ import annotations

import json
import re
import uuid

from playwright.sync_api import Page, expect

from tests.browser.conftest import Live, allow_console_error, shoot, sign_out, store_session
from tests.browser.test_keyboard import tab_to
from tests.support.identity import PASSWORD


def test_sign_up_sign_out_and_sign_in(page: Page, live: Live) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/signin"))
    expect(page.get_by_role("heading", name="Sign in to Nexent")).to_be_visible()
    shoot(page, "signin")
    page.get_by_role("link", name="Create account").click()
    expect(page.get_by_role("heading", name="Create your Nexent account")).to_be_visible()
    # Checked before sending: each field says what is wrong.
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Required")).to_have_count(2)
    page.get_by_label("Email").fill("not an address")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Enter a valid email address")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Email").fill("browser-user@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Your name").fill("Browser User")
    page.get_by_label("Workspace name").fill("Browser Team")
    shoot(page, "signup")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/chat"))

    page.get_by_role("button", name="Account").click()
    page.get_by_role("menuitem", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/signin"))

    # A wrong password: the server's own words, and the form stays.
    allow_console_error(page, "status of 401")
    page.get_by_label("Email").fill("browser-user@example.com")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").filter(has_text="password")).to_be_visible()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/chat"))


def test_language_switch_is_remembered(page: Page, live: Live) -> None:
    page.goto("/signin")
    page.get_by_label("Language").click()
    page.get_by_title("中文").click()
    expect(page.get_by_role("heading", name="登录 Nexent")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="登录 Nexent")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")


def test_chinese_browsers_get_chinese_and_unknown_pages_the_404_page(page: Page, live: Live) -> None:
    page.context.add_init_script("Object.defineProperty(navigator, 'languages', {get: () => ['zh-CN', 'zh']})")
    page.goto("/signup")
    expect(page.get_by_role("heading", name="创建 Nexent 账号")).to_be_visible()
    allow_console_error(page, "status of 404")
    response = page.goto("/no/such/page")
    assert response is not None and response.status == 404
    expect(page.get_by_text("页面不存在")).to_be_visible()


def test_the_404_page_says_so_and_leads_to_the_start(page: Page, live: Live) -> None:
    allow_console_error(page, "status of 404")
    response = page.goto("/agents/no-such-page")
    assert response is not None and response.status == 404
    expect(page.get_by_text("Page not found")).to_be_visible()
    expect(page.get_by_text("There is no page at this address.")).to_be_visible()
    shoot(page, "not-found")
    page.get_by_role("link", name="Go to the start page").click()
    expect(page).to_have_url(re.compile(r"/signin"))  # the start page sends someone signed out to sign in


def test_two_tabs_refreshing_at_once_both_stay_signed_in(page: Page, live: Live) -> None:
    tokens = live.register()
    other = page.context.new_page()
    for tab in (page, other):
        tab.goto("/signin")
    # An access token that has expired: each tab refreshes before its first call, both with the same refresh token.
    session = {"accessToken": tokens["access_token"], "refreshToken": tokens["refresh_token"], "expiresAt": 0}
    page.evaluate("session => window.localStorage.setItem('nexent.session', JSON.stringify(session))", session)
    for tab in (page, other):
        tab.evaluate("window.location.assign('/team')")  # both navigations under way at once
    for tab in (page, other):
        expect(tab.get_by_role("tab", name="Members")).to_be_visible()
        expect(tab).to_have_url(re.compile(r"/team"))
    stored = json.loads(page.evaluate("window.localStorage.getItem('nexent.session')"))
    assert stored["refreshToken"] != tokens["refresh_token"]
    # The session lives on: a reload of either tab works with the pair the tabs now share.
    other.reload()
    expect(other.get_by_role("tab", name="Members")).to_be_visible()


def test_an_invitation_brings_in_a_new_person_and_a_member_of_another_workspace(page: Page, live: Live) -> None:
    owner = live.register(display_name="Inviting Owner", tenant_name="Inviting Team")
    other_email = f"other-{uuid.uuid4().hex[:8]}@example.com"
    live.register(other_email, display_name="Other Person", tenant_name="Other Team")

    # The owner creates an invitation on the Team page and copies its link.
    store_session(page, owner)
    page.goto("/team?tab=invitations")
    page.get_by_role("button", name="New invitation").click()
    page.get_by_role("button", name="Create").click()
    link = page.get_by_label("Link", exact=True)
    expect(link).to_have_value(re.compile(r"/invite\?code="))
    url, code = link.input_value(), page.get_by_label("Code", exact=True).input_value()
    page.get_by_role("button", name="Close").first.click()
    sign_out(page)

    # A new person opens the link: the code is in its labelled field; they create an account with it and land in
    # the owner's workspace.
    page.goto(url)
    expect(page.get_by_role("heading", name="Join a workspace")).to_be_visible()
    expect(page.get_by_label("Invitation code")).to_have_value(code)
    shoot(page, "invite")
    page.get_by_role("link", name="Create an account with this invitation").click()
    expect(page.get_by_role("heading", name="Create an account with this invitation")).to_be_visible()
    expect(page.get_by_label("Workspace name")).to_have_count(0)  # the invitation's workspace, not a new one
    page.get_by_label("Email").fill(f"new-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Your name").fill("New Person")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/chat"))
    page.goto("/team")
    members = page.get_by_role("table")
    expect(members).to_contain_text("New Person (you)")
    expect(members).to_contain_text("Inviting Owner")
    sign_out(page)

    # Someone with an account in another workspace opens a second invitation, signs in from it, comes back to it
    # and accepts: they are moved into the owner's workspace and can switch between the two.
    second = live.api("POST", "/api/invitations", owner["access_token"], json={"role": "user"})
    assert second.status_code == 201, second.text
    page.goto(f"/invite?code={second.json()['code']}")
    expect(page.get_by_role("button", name="Accept the invitation")).to_have_count(0)
    page.get_by_role("link", name="Sign in", exact=True).click()
    page.get_by_label("Email").fill(other_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/invite\?code="))
    expect(page.get_by_label("Invitation code")).to_have_value(second.json()["code"])
    page.get_by_role("button", name="Accept the invitation").click()
    expect(page.get_by_text("You joined Inviting Team.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/chat"))
    expect(page.get_by_label("Workspace")).to_be_visible()
    expect(page.get_by_title("Inviting Team")).to_be_visible()  # the workspace switch shows the one now in use
    page.goto("/team")
    expect(page.get_by_role("table")).to_contain_text("Other Person (you)")
    expect(page.get_by_role("table")).to_contain_text("Inviting Owner")


def test_a_member_of_two_workspaces_switches_between_them_by_mouse_and_by_keyboard(page: Page, live: Live) -> None:
    person = live.register(display_name="Two Hats", tenant_name="Alpha Works")
    assert live.api("POST", "/api/agents", person["access_token"], json={"name": "alpha-helper"}).status_code == 201
    beta = live.register(display_name="Beta Owner", tenant_name="Beta Labs")
    assert live.api("POST", "/api/agents", beta["access_token"], json={"name": "beta-helper"}).status_code == 201
    invitation = live.api("POST", "/api/invitations", beta["access_token"], json={"role": "admin"})
    accepted = live.api(
        "POST", "/api/invitations/accept", person["access_token"], json={"code": invitation.json()["code"]}
    )
    assert accepted.status_code == 200, accepted.text

    store_session(page, person)
    page.goto("/agents")
    agents = page.get_by_role("main")
    expect(agents.get_by_text("alpha-helper")).to_be_visible()
    expect(agents.get_by_text("beta-helper")).to_have_count(0)

    # By mouse: the other workspace's agents, not this one's.
    page.get_by_label("Workspace").click()
    page.get_by_title("Beta Labs").click()
    expect(page.get_by_text("Now in Beta Labs.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/chat"))
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Agents", exact=True).click()
    # The chat (which names its agent twice) stays until the agents page replaces it.
    expect(page).to_have_url(re.compile(r"/agents"))
    expect(agents.get_by_text("beta-helper")).to_be_visible()
    expect(agents.get_by_text("alpha-helper")).to_have_count(0)

    # By keyboard: Tab to the switch, open it with the arrow keys, pick the first workspace with Enter.
    tab_to(page, page.get_by_label("Workspace"))
    page.keyboard.press("ArrowDown")
    active = page.locator(".ant-select-item-option-active")
    expect(active).to_be_visible()
    for _ in range(3):
        if active.inner_text() == "Alpha Works":
            break
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Now in Alpha Works.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/chat"))
    page.goto("/agents")
    expect(agents.get_by_text("alpha-helper")).to_be_visible()
    expect(agents.get_by_text("beta-helper")).to_have_count(0)
    # The switch is remembered: a reload stays in the workspace chosen last.
    page.reload()
    expect(agents.get_by_text("alpha-helper")).to_be_visible()
