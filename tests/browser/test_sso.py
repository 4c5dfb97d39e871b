"""Single sign-on in the browser: the sign-in page offers it when OpenID Connect is configured, and the provider
sends the person back into the UI signed in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import check_accessibility, watched_page
from tests.support.oidc_provider import RunningProvider, run_provider
from tests.test_cli import Server, cli_env


@pytest.fixture
def sso_server(web_build: None, tmp_path: Path) -> Iterator[tuple[Server, RunningProvider]]:
    users = {"carol": {"sub": "carol-sub", "email": "carol@example.com", "name": "Carol Example"}}
    with run_provider(users=users, default_user="carol") as idp:
        env = cli_env(
            tmp_path,
            NEXENT_BUILTIN_MODELS="false",
            NEXENT_OIDC_ISSUER=idp.issuer,
            NEXENT_OIDC_CLIENT_ID=idp.client_id,
            NEXENT_OIDC_CLIENT_SECRET=idp.client_secret,
        )
        server = Server(env)
        try:
            yield server, idp
        finally:
            server.stop()


def test_single_sign_on_returns_to_the_ui_signed_in(
    browser: Browser, sso_server: tuple[Server, RunningProvider]
) -> None:
    server, _ = sso_server
    with watched_page(browser, server.url) as page:  # fails on any console error, as every browser test
        page.goto("/chat")
        expect(page).to_have_url(re.compile(r"/signin\?next="))
        check_accessibility(page)
        page.get_by_role("link", name="Sign in with single sign-on").click()
        # The provider approves at once and sends the browser back through the platform into the UI.
        expect(page).to_have_url(re.compile(r"/chat$"), timeout=20_000)
        page.get_by_role("button", name="Account").click()
        expect(page.get_by_text("carol@example.com")).to_be_visible()
        assert "access_token" not in page.url
