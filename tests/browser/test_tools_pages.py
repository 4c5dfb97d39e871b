"""Journeys of the tools pages: an OpenAPI document imported by paste with an API key, its tools listed, one picked
in the agent studio, the import deleted; an MCP server (a real FastMCP server over HTTP, with a token) added,
checked, its tools and logs seen and one of its tools attached in the studio; a local (stdio) server added with a
variable and limits, checked, its standard error read in its logs, edited and removed; both pages in Chinese and
at phone width."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Live, shoot, sign_in_as
from tests.support.inventory_api import API_KEY, Inventory, document, serve_inventory
from tests.support.mcp_servers import SCRIPT as SERVER_SCRIPT
from tests.support.mcp_servers import McpProcess, serve

MCP_TOKEN = "mcp-browser-token"


@pytest.fixture(scope="module")
def inventory() -> Iterator[Inventory]:
    with serve_inventory() as served:
        yield served


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[McpProcess]:
    server = serve("http", token=MCP_TOKEN)
    try:
        yield server
    finally:
        server.stop()


def new_agent_with_tool(page: Page, name: str, group: str, tool: str) -> None:
    """In the studio: a new agent on the scripted model with `tool` (listed under the heading `group`) ticked."""
    page.goto("/agents/edit")
    expect(page.get_by_role("heading", name=group)).to_be_visible()
    expect(page.get_by_role("heading", name="Built-in")).to_be_visible()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Model").click()
    page.get_by_title("test-chat (default)").click()
    page.get_by_role("checkbox", name=tool, exact=True).check()
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_text(f"{name} was created.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/agents/edit\?id="))
    page.reload()
    expect(page.get_by_role("checkbox", name=tool, exact=True)).to_be_checked()


def test_import_an_openapi_document_and_pick_its_tool(page: Page, live: Live, inventory: Inventory) -> None:
    tokens = live.register(display_name="Tools Owner", tenant_name="Tools Team")
    live.add_model(tokens["access_token"])
    sign_in_as(page, tokens)
    page.goto("/tools?tab=openapi")
    expect(page.get_by_text("No OpenAPI imports yet")).to_be_visible()

    page.get_by_role("button", name="Import a document").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("OpenAPI document (JSON or YAML)").fill(document(inventory.base_url))
    dialog.get_by_role("button", name="Read the document").click()
    operations = dialog.get_by_test_id("openapi-operations")
    expect(operations).to_contain_text("/items/{itemId}")
    expect(operations.get_by_role("checkbox")).to_have_count(6)
    upload = operations.get_by_role("listitem").filter(has_text="/upload")
    expect(upload.get_by_role("checkbox")).to_be_disabled()
    expect(upload).to_contain_text("only JSON bodies can be sent")
    # The name is proposed from the title, the base URL from the document's server.
    expect(dialog.get_by_label("Name", exact=True)).to_have_value("inventory_api")
    expect(dialog.get_by_label("Base URL")).to_have_value(inventory.base_url)
    dialog.get_by_label("Name", exact=True).fill("inventory")
    operations.get_by_role("listitem").filter(has_text="/big").get_by_role("checkbox").uncheck()
    dialog.get_by_role("radio", name="API key").check()
    dialog.get_by_label("Header or parameter name").fill("X-Api-Key")
    dialog.get_by_label("Token or key").fill(API_KEY)
    dialog.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Imported inventory: 4 tools.")).to_be_visible()
    expect(dialog).to_be_hidden()

    row = page.get_by_role("row", name=re.compile("inventory"))
    expect(row).to_contain_text("4 tools")
    expect(row).to_contain_text("Secret saved")
    row.get_by_role("button", name=re.compile("Expand row")).click()
    tool = page.get_by_test_id("openapi-tool-inventory__get_item_by_id")
    expect(tool).to_contain_text("Read one item.")
    expect(tool).to_contain_text("itemId")
    expect(page.get_by_test_id("openapi-tool-inventory__get_big")).to_have_count(0)
    shoot(page, "tools-openapi")

    # Editing keeps the saved key unless a new one is typed.
    page.get_by_role("button", name="Edit inventory").click()
    expect(dialog.get_by_text("Leave empty to keep the saved one.")).to_be_visible()
    expect(dialog.get_by_test_id("openapi-operations").get_by_role("checkbox", checked=True)).to_have_count(4)
    dialog.get_by_role("button", name="Cancel").click()

    new_agent_with_tool(page, "Stock keeper", "OpenAPI import inventory", "inventory__get_item_by_id")
    expect(page.get_by_test_id("tool-inventory__get_item_by_id")).to_contain_text("Read one item.")
    shoot(page, "agent-studio-openapi-tools")

    page.evaluate("window.localStorage.setItem('nexent.locale', 'zh')")
    page.goto("/tools?tab=openapi")
    expect(page.get_by_role("heading", name="工具", level=2)).to_be_visible()
    expect(page.get_by_role("tab", name="OpenAPI 导入")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("row", name=re.compile("inventory"))).to_contain_text("4 个工具")
    shoot(page, "tools-openapi-zh")

    # Deleting the import (a draft uses its tool: only published versions hold an import).
    page.get_by_role("button", name="删除 inventory").click()
    page.get_by_role("button", name=re.compile(r"^删 ?除$")).click()  # antd spaces two Chinese characters
    expect(page.get_by_text("还没有 OpenAPI 导入")).to_be_visible()


def test_add_check_and_use_an_mcp_server(page: Page, live: Live, mcp_server: McpProcess) -> None:
    tokens = live.register(display_name="Mcp Owner", tenant_name="Mcp Team")
    live.add_model(tokens["access_token"])
    sign_in_as(page, tokens)
    page.goto("/tools")
    expect(page.get_by_role("tab", name="MCP servers")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_text("No MCP servers yet")).to_be_visible()

    # A remote server with a token, added by keyboard.
    page.get_by_role("button", name="Add server").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("radio", name="Streamable HTTP")).to_be_checked()
    dialog.get_by_label("Name", exact=True).fill("calc")
    dialog.get_by_label("Server URL").fill(mcp_server.url)
    dialog.get_by_label("Bearer token").fill(MCP_TOKEN)
    dialog.get_by_role("button", name="Save").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Added calc.")).to_be_visible()
    row = page.get_by_role("row", name=re.compile("calc"))
    expect(row.get_by_test_id("mcp-status")).to_have_text("Not checked")

    # Check: the classified status, the latency and the tools found.
    row.get_by_role("button", name="Check calc").click()
    result = page.get_by_test_id("mcp-check-result")
    expect(result).to_contain_text(re.compile(r"calc: Healthy in \d+ ms, \d+ tools\."))
    expect(row.get_by_test_id("mcp-status")).to_have_text("Healthy")

    # Its tools with their arguments and its logs, in the details drawer.
    row.get_by_role("button", name="Details of calc").click()
    drawer = page.get_by_role("dialog", name="Details of calc")
    tools = drawer.get_by_test_id("mcp-tools")
    expect(tools).to_contain_text("calc__add")
    expect(tools.get_by_role("listitem").filter(has_text="calc__add").first).to_contain_text("Add two integers.")
    expect(tools).to_contain_text("Cannot be called")  # `broken` declares a schema that is not one
    shoot(page, "tools-mcp-details")
    drawer.get_by_role("tab", name="Logs").click()
    expect(drawer.get_by_role("button", name="Refresh")).to_be_visible()
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()

    # A local server from its command line, with a variable and limits; its standard error is in its logs.
    page.get_by_role("button", name="Add server").click()
    dialog.get_by_role("radio", name="Local command (stdio)").check()
    dialog.get_by_label("Name", exact=True).fill("local")
    dialog.get_by_label("Command line").fill(f"{sys.executable} {SERVER_SCRIPT} stdio")
    dialog.get_by_role("button", name="Add variable").click()
    dialog.get_by_label("Variable 1", exact=True).fill("GREETING")
    dialog.get_by_label("Value 1", exact=True).fill("hello")
    dialog.get_by_label("Memory (MB)").fill("2048")
    dialog.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Added local.")).to_be_visible()
    local = page.get_by_role("row", name=re.compile("local"))
    local.get_by_role("button", name="Check local").click()
    # The check starts the server process first (Python importing FastMCP: seconds on a loaded machine).
    expect(local.get_by_test_id("mcp-status")).to_have_text("Healthy", timeout=30_000)
    local.get_by_role("button", name="Details of local").click()
    drawer = page.get_by_role("dialog", name="Details of local")
    drawer.get_by_role("tab", name="Logs").click()
    expect(drawer.get_by_test_id("mcp-logs")).to_contain_text("test server: started")
    shoot(page, "tools-mcp-logs")
    page.keyboard.press("Escape")

    # Edit: the saved variable's name is shown, not its value; the limits are kept. Then remove it.
    local.get_by_role("button", name="Edit local").click()
    expect(dialog.get_by_text("Saved variables: GREETING.")).to_be_visible()
    expect(dialog.get_by_label("Memory (MB)")).to_have_value("2048")
    expect(dialog).not_to_contain_text("hello")
    dialog.get_by_role("button", name="Cancel").click()
    local.get_by_role("button", name="Delete local").click()
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_role("row", name=re.compile("local"))).to_have_count(0)
    shoot(page, "tools-mcp")

    new_agent_with_tool(page, "Adder", "MCP server calc", "calc__add")
    shoot(page, "agent-studio-mcp-tools")

    page.evaluate("window.localStorage.setItem('nexent.locale', 'zh')")
    page.goto("/tools?tab=mcp")
    expect(page.get_by_role("tab", name="MCP 服务器")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("row", name=re.compile("calc")).get_by_test_id("mcp-status")).to_have_text("正常")
    shoot(page, "tools-mcp-zh")
