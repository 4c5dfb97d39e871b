"""The agent studio's A2A section: exposing a published agent to API keys, then publicly (after a warning), the
card's URL and a preview fetched from the card endpoint, switching it off (the card is gone), and the section in
Chinese; screenshots at 1280 and 390 pixels."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import Live, shoot, sign_in_as


def api_ok(live: Live, method: str, path: str, token: str, **kwargs: Any) -> dict[str, Any]:
    response = live.api(method, path, token, **kwargs)
    assert response.status_code in (200, 201), response.text
    data: dict[str, Any] = response.json()
    return data


def test_expose_an_agent_over_a2a_and_preview_its_card(page: Page, live: Live) -> None:
    tokens = live.register()
    token = tokens["access_token"]
    live.add_model(token, "scripted-llm")
    body = {"name": "concierge", "display_name": "Concierge", "description": "Books tables."}
    agent = api_ok(live, "POST", "/api/agents", token, json=body)
    api_ok(live, "POST", f"/api/agents/{agent['id']}/publish", token, json={"note": ""})
    card_url = f"{live.url}/a2a/{agent['id']}/.well-known/agent-card.json"
    sign_in_as(page, tokens)
    page.goto(f"/agents/edit?id={agent['id']}")

    section = page.locator(".ant-card", has=page.get_by_role("heading", name="A2A", exact=True))
    exposure = section.get_by_role("radiogroup", name="A2A exposure")
    expect(exposure.get_by_role("radio", name="Off")).to_be_checked()
    expect(section.get_by_text(card_url)).to_have_count(0)

    # To API keys: saved at once; the card URL shows and its preview is the card the endpoint serves.
    exposure.get_by_text("API key").click()
    expect(page.get_by_text("Saved")).to_be_visible()
    expect(section.get_by_text(card_url)).to_be_visible()
    section.get_by_role("button", name="Preview card").click()
    preview = section.get_by_label("Agent card")
    expect(preview).to_contain_text('"name": "Concierge"')
    expect(preview).to_contain_text('"description": "Books tables."')
    expect(preview).to_contain_text('"securitySchemes"')
    assert api_ok(live, "GET", f"/api/agents/{agent['id']}", token)["a2a_exposure"] == "api_key"

    # Public: a warning to confirm first; cancelling keeps the API-key exposure.
    exposure.get_by_text("Public").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Anyone who knows the URL can call this agent without credentials.")
    dialog.get_by_role("button", name="Cancel").click()
    expect(exposure.get_by_role("radio", name="API key")).to_be_checked()
    exposure.get_by_text("Public").click()
    page.get_by_role("dialog").get_by_role("button", name="Make public").click()
    expect(exposure.get_by_role("radio", name="Public")).to_be_checked()
    expect(section.get_by_role("alert")).to_contain_text("Anyone who knows the URL")
    section.get_by_role("button", name="Preview card").click()
    expect(preview).not_to_contain_text("securitySchemes")
    shoot(page, "agent-a2a-public")

    # Off: the card is gone (404), and the section shows no URL.
    exposure.get_by_text("Off").click()
    expect(exposure.get_by_role("radio", name="Off")).to_be_checked()
    expect(section.get_by_text(card_url)).to_have_count(0)
    assert httpx.get(card_url).status_code == 404

    # In Chinese.
    page.evaluate("window.localStorage.setItem('nexent.locale', 'zh')")
    page.reload()
    zh = page.get_by_role("radiogroup", name="A2A 开放方式")
    expect(zh.get_by_role("radio", name="关闭")).to_be_checked()
    zh.get_by_text("API 密钥").click()
    expect(page.get_by_text("智能体卡片网址")).to_be_visible()
    shoot(page, "agent-a2a-zh")
