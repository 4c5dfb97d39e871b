"""Journeys of models: add the scripted model server as an OpenAI-compatible model, test it before saving, see a
wrong API key explained in plain words, set the default of a kind, and read the usage charts and table."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import Live, allow_console_error, shoot, sign_in_as


def fill_model(page: Page, live: Live, name: str, api_key: str) -> None:
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Display name").fill(name)
    dialog.get_by_label("Base URL").fill(live.llm.base_url)
    dialog.get_by_label("API key").fill(api_key)
    dialog.get_by_label("Model name").fill("test-chat")


def test_add_check_and_default_models(page: Page, live: Live) -> None:
    tokens = live.register(display_name="Model Owner", tenant_name="Models Team")
    sign_in_as(page, tokens)
    page.goto("/models")
    expect(page.get_by_text("No models yet")).to_be_visible()

    # A working endpoint: the test before saving says it connects, and the saved model checks OK.
    page.get_by_role("button", name="Add model").click()
    fill_model(page, live, "Scripted chat", "sk-test")
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_role("dialog").get_by_role("status")).to_contain_text("Connected in")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    row = page.get_by_role("row", name=re.compile("Scripted chat"))
    expect(row).to_contain_text("Default")  # the first of its kind
    row.get_by_role("button", name="Check Scripted chat").click()
    expect(page.get_by_text(re.compile(r"Connected in \d+ ms"))).to_be_visible()
    expect(row).to_contain_text("OK")

    # A wrong key: the draft test and the saved model's check both say so in plain words.
    page.get_by_role("button", name="Add model").click()
    fill_model(page, live, "Wrong key", "sk-wrong")
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_role("dialog").get_by_role("alert")).to_contain_text("The API key was refused")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    wrong = page.get_by_role("row", name=re.compile("Wrong key"))
    wrong.get_by_role("button", name="Check Wrong key").click()
    expect(wrong).to_contain_text("The API key was refused")

    # The default of the kind moves to the other model.
    wrong.get_by_role("button", name="Set as default: Wrong key").click()
    expect(page.get_by_text("Wrong key is now the default.")).to_be_visible()
    expect(wrong).to_contain_text("Default")
    expect(row).not_to_contain_text("Default")
    shoot(page, "models")

    # A base URL with credentials: the server's own message.
    allow_console_error(page, "status of 422")
    page.get_by_role("button", name="Add model").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Display name").fill("Bad URL")
    dialog.get_by_label("Base URL").fill("https://user:pass@example.com/v1")
    dialog.get_by_label("Model name").fill("x")
    page.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_contain_text("credentials")
    page.get_by_role("button", name="Cancel").click()

    # Usage: the checks made calls; charts with a table of the same numbers.
    page.get_by_role("tab", name="Usage").click()
    expect(page).to_have_url(re.compile(r"tab=usage"))
    table = page.get_by_role("table")
    expect(table).to_contain_text("Calls")
    expect(page.get_by_role("img", name=re.compile("Tokens by day"))).to_be_visible()
    shoot(page, "models-usage")
    page.get_by_label("Group by").click()
    page.get_by_title("Group by: Model").click()
    expect(table).to_contain_text("Scripted chat")

    # Edit keeps the saved key when none is typed; deleting the default passes the role on.
    page.get_by_role("tab", name="Models").click()
    wrong = page.get_by_role("row", name=re.compile("Wrong key"))
    wrong.get_by_role("button", name="Edit Wrong key").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Leave empty to keep the saved key.")).to_be_visible()
    dialog.get_by_label("Display name").fill("Spare chat")
    page.get_by_role("button", name="Save").click()
    spare = page.get_by_role("row", name=re.compile("Spare chat"))
    expect(spare).to_contain_text("Key saved")
    spare.get_by_role("button", name="Delete Spare chat").click()
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(spare).to_have_count(0)
    expect(page.get_by_role("row", name=re.compile("Scripted chat"))).to_contain_text("Default")
