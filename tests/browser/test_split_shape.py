"""The split shape in the browser: the UI comes from the config service and reaches the runtime service on its own
port (runtime configuration `/api/ui/config`, CORS), with no proxy in between."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.browser.conftest import Live, sign_in_as
from tests.conftest import free_port
from tests.support.identity import PASSWORD
from tests.support.model_server import ChatReply
from tests.test_cli import Server, cli_env, nexent


@pytest.fixture
def split(live: Live, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The config and runtime services on two ports, over one database; returns their base URLs."""
    config_port, runtime_port = free_port(), free_port()
    config_url, runtime_url = f"http://127.0.0.1:{config_port}", f"http://127.0.0.1:{runtime_port}"
    env = cli_env(
        tmp_path,
        NEXENT_BUILTIN_MODELS="false",
        NEXENT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}",
        NEXENT_SERVICE_URLS=json.dumps({"runtime": runtime_url}),
        NEXENT_CORS_ORIGINS=config_url,
    )
    nexent(env, "migrate")
    runtime = Server(env, "--service", "runtime", port=runtime_port)
    config = Server(env, "--service", "config", port=config_port)
    try:
        yield config_url, runtime_url
    finally:
        config.stop()
        runtime.stop()


def test_chat_reaches_the_runtime_service_across_origins(browser: Browser, live: Live, split: tuple[str, str]) -> None:
    config_url, runtime_url = split
    tokens = httpx.post(
        f"{config_url}/api/auth/register",
        json={"email": f"split-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD},
        timeout=30,
    ).json()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    model = httpx.post(
        f"{config_url}/api/models",
        headers=auth,
        json={"name": "chat", "kind": "llm", "model": "test-chat", "base_url": live.llm.base_url, "api_key": "sk-test"},
        timeout=30,
    ).json()
    agent = httpx.post(
        f"{config_url}/api/agents", headers=auth, json={"name": "split", "model_id": model["id"]}, timeout=30
    )
    assert agent.status_code == 201, agent.text
    live.llm.server.enqueue(ChatReply.text("Answered by the runtime service."), ChatReply.text('"Split"'))

    context = browser.new_context(base_url=config_url)
    page: Page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    sign_in_as(page, tokens)
    page.goto("/chat")
    page.get_by_role("textbox", name="Message").fill("Hello?")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("answer")).to_have_text("Answered by the runtime service.")
    expect(page).to_have_url(re.compile(r"/chat\?c="))
    context.close()
    assert any(url.startswith(f"{runtime_url}/api/agents/") for url in requests), requests
    assert any(url.startswith(f"{config_url}/api/me") for url in requests)
    assert not errors, errors
