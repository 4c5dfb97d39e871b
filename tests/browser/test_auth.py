"""Journeys of accounts: sign up, sign out, sign in, switch language, and the pages before sign-in."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import Live, allow_console_error, shoot
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
