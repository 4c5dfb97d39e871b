"""Browser tests: Playwright drives Debian's Chromium (no browser download) against a real `nexent serve` started by
the tests, with the scripted model server standing in for a real LLM.

Every page fixture fails its test on any console error or uncaught page error. `shoot` saves a screenshot of the
page at 1280 and 390 pixels wide (into `NEXENT_SCREENSHOTS`, default `build/screenshots`) and checks it with
axe-core: no serious or critical violation.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from tests.conftest import REPO_ROOT
from tests.support.identity import PASSWORD
from tests.support.model_server import RunningModelServer, run_model_server
from tests.test_cli import Server, cli_env

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The flags that keep Chromium from reaching out to the network, which this machine refuses (docs/development.md).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("NEXENT_SCREENSHOTS", REPO_ROOT / "build" / "screenshots"))
AXE = REPO_ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (1280, 390)

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@dataclass
class Live:
    """The platform under test and the scripted model server its models point at."""

    url: str
    llm: RunningModelServer
    data_dir: Path

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def api_stream(self, method: str, path: str, token: str) -> AbstractContextManager[httpx.Response]:
        """A streamed call (a progress stream, say), read within its `with` block."""
        return httpx.stream(method, f"{self.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=60)

    def register(self, email: str | None = None, **extra: Any) -> dict[str, Any]:
        """A new user in a new tenant, over the API; returns the token pair."""
        body = {"email": email or f"u{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD, **extra}
        response = self.api("POST", "/api/auth/register", json=body)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    def add_model(
        self, token: str, name: str = "test-chat", *, kind: str = "llm", model: str = "test-chat"
    ) -> dict[str, Any]:
        """One of the scripted model server's models (its chat model unless said) as the tenant's default of its
        kind, over the API."""
        body = {
            "name": name,
            "kind": kind,
            "model": model,
            "base_url": self.llm.base_url,
            "api_key": "sk-test",
            "is_default": True,
        }
        response = self.api("POST", "/api/models", token, json=body)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data


@pytest.fixture(scope="session")
def web_build() -> None:
    """The UI as `scripts/web` builds it (a no-op when nothing changed since the last build)."""
    subprocess.run([str(REPO_ROOT / "scripts" / "web")], check=True, cwd=REPO_ROOT, timeout=600)


@contextmanager
def start_live(tmp: Path, **extra: str) -> Iterator[Live]:
    """A real server with the built UI and a scripted model server of its own."""
    with run_model_server(api_key="sk-test") as llm:
        # No built-in models: the journeys add the scripted one, and loading the local ones costs seconds.
        # Every test signs up a tenant of its own from this one address: no sign-up throttle.
        env = cli_env(tmp, NEXENT_BUILTIN_MODELS="false", NEXENT_REGISTER_MAX_ATTEMPTS="100000", **extra)
        server = Server(env)
        try:
            yield Live(server.url, llm, Path(env["NEXENT_DATA_DIR"]))
        finally:
            server.stop()


@pytest.fixture(scope="session")
def live(web_build: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    # Without memory (cli_env's default): its extraction asks the model after every run and would take replies
    # queued for the journeys' own calls. The memory journeys start a server of their own with it on.
    with start_live(tmp_path_factory.mktemp("browser")) as server:
        yield server


# Per module, not per session: Playwright's sync API runs an event loop in the main thread while it is started,
# and pytest-asyncio's tests after the browser tests could not run theirs.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as runner:
        yield runner


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@contextmanager
def watched_page(browser: Browser, base_url: str) -> Iterator[Page]:
    """A page in a fresh browser profile at 1280 x 800 in English, against `base_url`; fails the test on any console
    error or page error it did not allow (`allow_console_error`)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=base_url, locale="en-US")
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    _allowed[id(page)] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not any(text in message.text for text in _allowed[id(page)]):
            errors.append(f"console: {message.text} at {message.location}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    try:
        yield page
    finally:
        context.close()
        del _allowed[id(page)]
    assert not errors, "\n".join(errors)


@pytest.fixture
def page(browser: Browser, live: Live) -> Iterator[Page]:
    """A watched page (`watched_page`) against the platform under test."""
    with watched_page(browser, live.url) as page:
        yield page


_allowed: dict[int, list[str]] = {}


def allow_console_error(page: Page, text: str) -> None:
    """A console error the test causes on purpose (the browser logs a 404 answer, say)."""
    _allowed[id(page)].append(text)


def sign_in_as(page: Page, tokens: dict[str, Any]) -> None:
    """Start the browser signed in with `tokens` (as the UI stores them after a sign-in)."""
    session = {
        "accessToken": tokens["access_token"],
        "refreshToken": tokens["refresh_token"],
        "expiresAt": 4_102_444_800_000,
    }
    page.context.add_init_script(f"window.localStorage.setItem('nexent.session', {json.dumps(json.dumps(session))})")


def store_session(page: Page, tokens: dict[str, Any]) -> None:
    """Sign the browser in once with `tokens` (on the sign-in page), unlike `sign_in_as`, whose session comes back
    on every load: for journeys that change the session themselves (a tenant switch, a sign-out)."""
    session = {
        "accessToken": tokens["access_token"],
        "refreshToken": tokens["refresh_token"],
        "expiresAt": 4_102_444_800_000,
    }
    page.goto("/signin")
    page.evaluate("session => window.localStorage.setItem('nexent.session', JSON.stringify(session))", session)


def sign_out(page: Page) -> None:
    """Sign out from the account menu of a signed-in page."""
    page.get_by_role("button", name="Account").click()
    page.get_by_role("menuitem", name="Sign out").click()
    page.wait_for_url(re.compile(r"/signin"))


def check_accessibility(page: Page) -> None:
    """axe-core on the page as it is: no serious or critical violation."""
    page.add_script_tag(path=str(AXE))
    serious: list[str] = []
    # Once more after a moment when something is found: a colour caught in the middle of a transition (a button
    # fading in after a save, seen on a busy machine) is not what users see. A real violation stays.
    for _ in range(2):
        result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
        serious = [
            f"{v['id']} ({v['impact']}): {v['help']} -- {[n['target'] for n in v['nodes']][:5]}"
            for v in result
            if v["impact"] in ("serious", "critical")
        ]
        if not serious:
            return
        page.wait_for_timeout(600)
    assert not serious, "\n".join(serious)


def shoot(page: Page, name: str) -> None:
    """Screenshots of the page at each width (it must keep working at phone width), each checked by axe-core."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size or {"width": 1280, "height": 800}
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": size["height"]})
        page.wait_for_timeout(300)  # layout settles (antd's breakpoints listen to resize)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
        check_accessibility(page)
    page.set_viewport_size(size)
