"""The tool registry and the built-in tools: calculator, current_time, workspace files and fetch_webpage (against
a real HTTP server on 127.0.0.1; no traffic leaves the machine)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import gzip
import ipaddress
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from nexent.engines.storage.local import LocalStorage
from nexent.tools import registry, workspace
from nexent.tools.builtin import FetchWebpageSettings
from nexent.tools.netguard import (
    check_url,
    guarded_client,
    host_allowed,
    is_public_address,
    normalize_domain,
    resolve_checked,
    validate_url,
)
from nexent.tools.registry import (
    StrictArguments,
    ToolContext,
    ToolError,
    ToolRegistry,
    ToolResult,
    ToolSettings,
    ToolSettingsError,
    ToolSpec,
    UnknownTool,
)

BUILTIN_NAMES = [
    "calculator",
    "current_time",
    "fetch_webpage",
    "knowledge_base_search",
    "workspace_list",
    "workspace_read",
    "workspace_write",
]


@pytest.fixture
async def storage(tmp_path: Path) -> LocalStorage:
    store = LocalStorage(tmp_path / "objects")
    await store.start()
    return store


@pytest.fixture
def context(storage: LocalStorage) -> ToolContext:
    return ToolContext(tenant_id=uuid.uuid4(), storage=storage, conversation_id=uuid.uuid4())


async def run(name: str, arguments: Any, context: ToolContext) -> ToolResult:
    return await registry.execute(name, arguments, context)


# --- registry -------------------------------------------------------------------------------------------------


def test_builtin_tools_are_registered_with_openai_specs() -> None:
    assert [tool.name for tool in registry.all_tools()] == BUILTIN_NAMES
    spec = registry.openai_spec("calculator")
    assert spec["type"] == "function"
    function = spec["function"]
    assert function["name"] == "calculator"
    assert function["description"]
    parameters = function["parameters"]
    assert parameters["type"] == "object"
    assert parameters["required"] == ["expression"]
    assert parameters["additionalProperties"] is False
    assert parameters["properties"]["expression"]["type"] == "string"
    assert "title" not in parameters
    assert "title" not in parameters["properties"]["expression"]
    list_params = registry.openai_spec("workspace_list")["function"]["parameters"]
    assert list_params["properties"]["prefix"]["default"] == ""
    assert "required" not in list_params


def test_registry_lookups_and_registration_rules() -> None:
    with pytest.raises(UnknownTool):
        registry.get("no_such_tool")
    with pytest.raises(UnknownTool):
        registry.openai_spec("no_such_tool")
    local = ToolRegistry()
    local.register(_echo_tool())
    with pytest.raises(ValueError, match="already registered"):
        local.register(_echo_tool())
    with pytest.raises(ValueError, match="snake_case"):
        _echo_tool(name="Bad-Name")
    with pytest.raises(ValueError, match="description"):
        _echo_tool(description=" ")


def test_validate_settings() -> None:
    settings = registry.validate_settings("fetch_webpage", {"allowed_domains": ["Example.COM", "*.docs.python.org"]})
    assert isinstance(settings, FetchWebpageSettings)
    assert settings.allowed_domains == ["docs.python.org", "example.com"]
    assert settings.max_chars == 20_000
    assert isinstance(registry.validate_settings("calculator", None), BaseModel)
    with pytest.raises(ToolSettingsError, match="max_chars") as bad:
        registry.validate_settings("fetch_webpage", {"max_chars": 5})
    assert bad.value.status == 400
    assert bad.value.code == "invalid_tool_settings"
    with pytest.raises(ToolSettingsError, match="allowed_domain"):
        registry.validate_settings("fetch_webpage", {"allowed_domain": ["example.com"]})
    with pytest.raises(ToolSettingsError, match="not a domain"):
        registry.validate_settings("fetch_webpage", {"allowed_domains": ["http://example.com/path"]})
    with pytest.raises(ToolSettingsError):
        registry.validate_settings("calculator", {"anything": 1})
    with pytest.raises(UnknownTool):
        registry.validate_settings("no_such_tool", {})


async def test_unknown_tool_is_a_failed_result(context: ToolContext) -> None:
    result = await run("rm_rf", {}, context)
    assert not result.ok
    assert result.error_code == "unknown_tool"
    assert "calculator" in result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "expression: Field required"),
        ({"expression": "1+1", "extra": True}, "extra: Extra inputs are not permitted"),
        ({"expression": 5}, "expression: Input should be a valid string"),
        ({"expression": ""}, "expression: String should have at least 1 character"),
        ("1+1", "must be a JSON object"),
        (None, "must be a JSON object"),
    ],
)
async def test_invalid_arguments_are_failed_results(context: ToolContext, arguments: Any, message: str) -> None:
    result = await run("calculator", arguments, context)
    assert not result.ok
    assert result.error_code == "invalid_arguments"
    assert message in result.output


async def test_wrong_types_for_other_tools(context: ToolContext) -> None:
    result = await run("workspace_read", {"path": "a.txt", "offset": "3"}, context)
    assert result.error_code == "invalid_arguments"
    assert "offset" in result.output
    result = await run("current_time", {"timezone": ["UTC"]}, context)
    assert result.error_code == "invalid_arguments"


class EchoArgs(StrictArguments):
    text: str = ""
    sleep: float = 0.0
    fail: str | None = None


async def _echo(args: EchoArgs, context: ToolContext) -> ToolResult:
    if args.sleep:
        await asyncio.sleep(args.sleep)
    if args.fail == "tool_error":
        raise ToolError("You asked for it.", "asked")
    if args.fail == "bug":
        raise RuntimeError("secret internal detail")
    return ToolResult(output=args.text, data={"settings": type(context.settings).__name__})


def _echo_tool(name: str = "echo", description: str = "Echo text.") -> ToolSpec[EchoArgs, ToolSettings]:
    return ToolSpec(name=name, description=description, arguments=EchoArgs, settings_schema=ToolSettings, run=_echo)


async def test_execute_limits_and_errors(storage: LocalStorage) -> None:
    local = ToolRegistry()
    local.register(_echo_tool())
    base = ToolContext(tenant_id=uuid.uuid4(), storage=storage)

    result = await local.execute("echo", {"text": "hi"}, base)
    assert result.ok
    assert result.output == "hi"
    assert result.data == {"settings": "ToolSettings"}  # defaults filled in

    result = await local.execute("echo", {"text": "x" * (registry.MAX_OUTPUT_CHARS + 10)}, base)
    assert len(result.output) < registry.MAX_OUTPUT_CHARS + 100
    assert result.output.endswith("[output truncated: 10 more characters]")

    result = await local.execute("echo", {"fail": "tool_error"}, base)
    assert (result.ok, result.error_code, result.output) == (False, "asked", "You asked for it.")

    result = await local.execute("echo", {"fail": "bug"}, base)
    assert (result.ok, result.error_code) == (False, "tool_failed")
    assert "secret" not in result.output

    started = time.monotonic()
    slow = ToolContext(tenant_id=uuid.uuid4(), storage=storage, deadline=time.monotonic() + 0.2)
    result = await local.execute("echo", {"sleep": 5}, slow)
    assert (result.ok, result.error_code) == (False, "timeout")
    assert time.monotonic() - started < 2

    expired = ToolContext(tenant_id=uuid.uuid4(), storage=storage, deadline=time.monotonic() - 1)
    result = await local.execute("echo", {"text": "late"}, expired)
    assert result.error_code == "timeout"

    stop = asyncio.Event()
    cancellable = ToolContext(tenant_id=uuid.uuid4(), storage=storage, cancel_event=stop)
    asyncio.get_running_loop().call_later(0.1, stop.set)
    result = await local.execute("echo", {"sleep": 5}, cancellable)
    assert (result.ok, result.error_code) == (False, "cancelled")
    result = await local.execute("echo", {"text": "again"}, cancellable)
    assert result.error_code == "cancelled"

    with pytest.raises(TypeError):
        await local.execute("echo", {}, ToolContext(uuid.uuid4(), storage, settings=EchoArgs()))


def test_result_to_dict() -> None:
    result = ToolResult(output="x", data={"a": 1}, citations=[registry.Citation(title="t", url="https://e.x/")])
    assert result.to_dict() == {
        "ok": True,
        "output": "x",
        "data": {"a": 1},
        "citations": [{"title": "t", "url": "https://e.x/", "snippet": None, "metadata": {}}],
        "error_code": None,
    }


# --- calculator -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("7 / 2", "3.5"),
        ("7 // 2", "3"),
        ("-7 % 3", "2"),
        ("2 ** 10", "1024"),
        ("-2 ** 2", "-4"),
        ("+-+3", "-3"),
        ("0.1 + 0.2", "0.3"),
        ("sqrt(16) + log(e) + log(8, 2)", "8"),
        ("round(sin(pi / 2) + cos(0), 3)", "2"),
        ("abs(-3) + max(1, 5, 2) - min(4, 2)", "6"),
        ("2 ** 100", "1267650600228229401496703205376"),
        ("1e3 * 1.5", "1500"),
        ("10 / 3", "3.33333333333333"),
        ("factorial(5) × 2 ÷ 4", "60"),  # noqa: RUF001
    ],
)
async def test_calculator(context: ToolContext, expression: str, expected: str) -> None:
    result = await run("calculator", {"expression": expression}, context)
    assert result.ok, result.output
    assert result.output == expected


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        ("__import__('os')", "invalid_expression"),
        ("__import__('os').system('true')", "invalid_expression"),
        ("(1).__class__", "invalid_expression"),
        ("math.pi", "invalid_expression"),
        ("x + 1", "invalid_expression"),
        ("open('/etc/passwd')", "invalid_expression"),
        ("sqrt(x=4)", "invalid_expression"),
        ("[1, 2]", "invalid_expression"),
        ("'a' * 3", "invalid_expression"),
        ("lambda: 1", "invalid_expression"),
        ("1 if 1 else 2", "invalid_expression"),
        ("1 < 2", "invalid_expression"),
        ("True + 1", "invalid_expression"),
        ("2 ^ 3", "invalid_expression"),
        ("1 << 100000", "invalid_expression"),
        ("1; 2", "invalid_expression"),
        ("sqrt(-1)", "invalid_expression"),
        ("(-8) ** 0.5", "invalid_expression"),
        ("1 +", "invalid_expression"),
        ("9**9**9", "overflow"),
        ("2 ** 100000", "overflow"),
        ("10 ** 3000 * 10 ** 3000", "overflow"),
        ("1.5 ** 100000", "overflow"),
        ("factorial(100000)", "invalid_expression"),
        ("1 / 0", "division_by_zero"),
        ("1 // 0", "division_by_zero"),
        ("5 % 0", "division_by_zero"),
        ("0 ** -1", "division_by_zero"),
        ("+".join(["1"] * 400), "invalid_expression"),
        ("(" * 300 + "1" + ")" * 300, "invalid_expression"),
    ],
)
async def test_calculator_refusals(context: ToolContext, expression: str, code: str) -> None:
    result = await run("calculator", {"expression": expression}, context)
    assert not result.ok
    assert result.error_code == code, result.output


# --- current_time ---------------------------------------------------------------------------------------------


async def test_current_time(context: ToolContext) -> None:
    result = await run("current_time", {}, context)
    assert result.ok
    assert result.data is not None
    utc = dt.datetime.fromisoformat(result.data["iso"])
    assert utc.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - utc).total_seconds()) < 5
    assert result.data["weekday"] == utc.strftime("%A")
    assert result.output.startswith(result.data["iso"])

    result = await run("current_time", {"timezone": "Asia/Kolkata"}, context)
    assert result.ok
    assert result.data is not None
    local = dt.datetime.fromisoformat(result.data["iso"])
    assert local.utcoffset() == dt.timedelta(hours=5, minutes=30)
    assert result.data["weekday"] == dt.datetime.now(ZoneInfo("Asia/Kolkata")).strftime("%A")
    assert "Asia/Kolkata" in result.output


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "/etc/localtime", "", "Europe"])
async def test_current_time_unknown_zone(context: ToolContext, zone: str) -> None:
    result = await run("current_time", {"timezone": zone}, context)
    assert not result.ok
    assert result.error_code == "unknown_timezone"
    assert "time zone" in result.output


# --- workspace ------------------------------------------------------------------------------------------------


async def test_workspace_round_trip(context: ToolContext, storage: LocalStorage) -> None:
    result = await run("workspace_list", {}, context)
    assert (result.ok, result.output) == (True, "No files.")

    result = await run("workspace_write", {"path": "notes/plan.md", "content": "# Plan\nstep one ✓\n"}, context)
    assert result.ok, result.output
    assert result.data == {"path": "notes/plan.md", "size": len("# Plan\nstep one ✓\n".encode())}
    assert (await run("workspace_write", {"path": "a.txt", "content": "A"}, context)).ok

    result = await run("workspace_read", {"path": "notes/plan.md"}, context)
    assert (result.ok, result.output) == (True, "# Plan\nstep one ✓\n")

    assert (await run("workspace_write", {"path": "a.txt", "content": "replaced"}, context)).ok
    assert (await run("workspace_read", {"path": "a.txt"}, context)).output == "replaced"

    result = await run("workspace_list", {}, context)
    assert result.data == {"files": [{"path": "a.txt", "size": 8}, {"path": "notes/plan.md", "size": 20}]}
    assert result.output == "a.txt (8 bytes)\nnotes/plan.md (20 bytes)"
    result = await run("workspace_list", {"prefix": "notes/"}, context)
    assert result.data == {"files": [{"path": "notes/plan.md", "size": 20}]}

    key = f"workspaces/{context.tenant_id}/{context.conversation_id}/notes/plan.md"
    assert await storage.exists(key)

    result = await run("workspace_read", {"path": "missing.txt"}, context)
    assert (result.ok, result.error_code) == (False, "not_found")


async def test_workspace_read_in_parts(context: ToolContext) -> None:
    await run("workspace_write", {"path": "long.txt", "content": "0123456789"}, context)
    result = await run("workspace_read", {"path": "long.txt", "max_chars": 4}, context)
    assert result.output.startswith("0123\n[6 more characters; read on with offset=4]")
    result = await run("workspace_read", {"path": "long.txt", "offset": 8}, context)
    assert result.output == "89"


async def test_workspace_limits(context: ToolContext, monkeypatch: pytest.MonkeyPatch, storage: LocalStorage) -> None:
    big = "x" * (workspace.MAX_FILE_BYTES + 1)
    result = await run("workspace_write", {"path": "big.txt", "content": big}, context)
    assert (result.ok, result.error_code) == (False, "file_too_large")
    result = await run(
        "workspace_write", {"path": "big.txt", "content": "é" * (workspace.MAX_FILE_BYTES // 2 + 1)}, context
    )
    assert result.error_code == "file_too_large"

    monkeypatch.setattr(workspace, "MAX_FILES", 3)
    for index in range(3):
        assert (await run("workspace_write", {"path": f"f{index}.txt", "content": "x"}, context)).ok
    result = await run("workspace_write", {"path": "f3.txt", "content": "x"}, context)
    assert (result.ok, result.error_code) == (False, "too_many_files")
    assert (await run("workspace_write", {"path": "f0.txt", "content": "overwrite is fine"}, context)).ok

    result = await run("workspace_write", {"path": "f0.txt/inner.txt", "content": "x"}, context)
    assert result.error_code in ("invalid_path", "too_many_files")
    monkeypatch.setattr(workspace, "MAX_FILES", 200)
    result = await run("workspace_write", {"path": "f0.txt/inner.txt", "content": "x"}, context)
    assert (result.ok, result.error_code) == (False, "invalid_path")
    assert (await run("workspace_write", {"path": "dir/inner.txt", "content": "x"}, context)).ok
    result = await run("workspace_write", {"path": "dir", "content": "x"}, context)
    assert (result.ok, result.error_code) == (False, "invalid_path")

    key = f"workspaces/{context.tenant_id}/{context.conversation_id}/binary.bin"
    await storage.put(key, b"\xff\xfe\x00")
    result = await run("workspace_read", {"path": "binary.bin"}, context)
    assert (result.ok, result.error_code) == (False, "not_text")


@pytest.mark.parametrize(
    "path",
    [
        "../escape.txt",
        "../../../../etc/passwd",
        "a/../../b.txt",
        "a/./b.txt",
        "./a.txt",
        "/etc/passwd",
        "~/x",
        "a//b",
        "a/",
        "a\\..\\b",
        "a\x00b",
        "line\nbreak",
        "C:/x",
        " a.txt",
        "x" * 300,
        "/".join(["d"] * 100) + "/" + "x" * 200,
        "sneaky.nexent-tmp",
    ],
)
async def test_workspace_path_refusals(context: ToolContext, path: str) -> None:
    for tool, arguments in (
        ("workspace_write", {"path": path, "content": "x"}),
        ("workspace_read", {"path": path}),
    ):
        result = await run(tool, arguments, context)
        assert not result.ok
        assert result.error_code in ("invalid_path", "invalid_arguments"), result.output


@pytest.mark.parametrize("prefix", ["../", "/", "a/../", "../other-conversation/"])
async def test_workspace_list_prefix_refusals(context: ToolContext, prefix: str) -> None:
    result = await run("workspace_list", {"prefix": prefix}, context)
    assert (result.ok, result.error_code) == (False, "invalid_path")


async def test_workspace_needs_a_conversation(storage: LocalStorage) -> None:
    no_conversation = ToolContext(tenant_id=uuid.uuid4(), storage=storage)
    for tool, arguments in (
        ("workspace_write", {"path": "a.txt", "content": "x"}),
        ("workspace_read", {"path": "a.txt"}),
        ("workspace_list", {}),
    ):
        result = await run(tool, arguments, no_conversation)
        assert (result.ok, result.error_code) == (False, "no_conversation")


async def test_workspace_isolation(storage: LocalStorage) -> None:
    tenant_a, tenant_b = uuid.uuid4(), uuid.uuid4()
    conversation = uuid.uuid4()
    a1 = ToolContext(tenant_id=tenant_a, storage=storage, conversation_id=conversation)
    a2 = ToolContext(tenant_id=tenant_a, storage=storage, conversation_id=uuid.uuid4())
    b1 = ToolContext(tenant_id=tenant_b, storage=storage, conversation_id=conversation)  # same conversation id
    assert (await run("workspace_write", {"path": "secret.txt", "content": "a1 only"}, a1)).ok
    assert (await run("workspace_write", {"path": "other.txt", "content": "a2 only"}, a2)).ok

    for other in (a2, b1):
        result = await run("workspace_read", {"path": "secret.txt"}, other)
        assert (result.ok, result.error_code) == (False, "not_found")
    assert (await run("workspace_list", {}, b1)).data == {"files": []}
    assert (await run("workspace_list", {}, a2)).data == {"files": [{"path": "other.txt", "size": 7}]}
    assert (await run("workspace_list", {}, a1)).data == {"files": [{"path": "secret.txt", "size": 7}]}
    assert (await run("workspace_read", {"path": "secret.txt"}, a1)).output == "a1 only"


# --- SSRF guards ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("2606:4700:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("127.255.0.9", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("239.255.255.250", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("192.0.2.1", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("fd12:3456::1", False),
        ("ff02::1", False),
        ("fec0::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("2002:7f00:1::", False),
        ("2002:a00:1::", False),
        ("64:ff9b::7f00:1", False),
        ("64:ff9b::a9fe:a9fe", False),
        ("2001:db8::1", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.0.0.1:8080/admin",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://10.0.0.1/",
        "http://192.168.0.1/",
        "https://[fe80::1]/",
        "file:///etc/passwd",
        "ftp://example.com/file",
        "gopher://example.com/",
        "javascript:alert(1)",
        "http://user:pass@example.com/",
        "example.com/no-scheme",
        "http:///nohost",
    ],
)
async def test_urls_refused_without_resolving(url: str) -> None:
    with pytest.raises(ToolError) as refused:
        validate_url(url)
    assert refused.value.code in ("url_refused", "invalid_url")


@pytest.mark.parametrize(
    "url",
    ["http://localhost/", "http://localhost:1/", "http://LOCALHOST/x", "http://127.1/", "http://2130706433/"],
)
async def test_hop_check_resolves_and_refuses_loopback(url: str) -> None:
    """`check_url` is what validates every redirect hop: a public page that redirects here is refused."""
    with pytest.raises(ToolError) as refused:
        await check_url(url)
    assert refused.value.code == "url_refused"
    assert (await check_url(url, allow_private_network=True)).scheme == "http"


async def test_resolve_checked() -> None:
    with pytest.raises(ToolError, match="private"):
        await resolve_checked("localhost", 80, allow_private_network=False)
    assert await resolve_checked("localhost", 80, allow_private_network=True) == ["127.0.0.1"]
    assert await resolve_checked("8.8.8.8", 80, allow_private_network=False) == ["8.8.8.8"]  # a literal: no lookup


def test_allowed_domains() -> None:
    allowed = [normalize_domain("Example.com"), normalize_domain("*.docs.python.org"), normalize_domain("bücher.de")]
    assert allowed == ["example.com", "docs.python.org", "xn--bcher-kva.de"]
    assert host_allowed("example.com", allowed)
    assert host_allowed("www.example.com", allowed)
    assert host_allowed("EXAMPLE.com.", allowed)
    assert host_allowed("docs.python.org", allowed)
    assert host_allowed("xn--bcher-kva.de", allowed)
    assert not host_allowed("python.org", allowed)
    assert not host_allowed("evilexample.com", allowed)
    assert not host_allowed("example.com.evil.net", allowed)
    assert host_allowed("anything.net", None)
    assert not host_allowed("anything.net", [])
    with pytest.raises(ToolError, match="allowed domains"):
        validate_url("https://evil.example.net/", allowed_domains=allowed)
    assert validate_url("https://sub.example.com/x", allowed_domains=allowed).host == "sub.example.com"
    assert validate_url("https://bücher.de/", allowed_domains=allowed).raw_host == b"xn--bcher-kva.de"
    for bad in ("", "exa mple.com", "http://x.com", "a/b", "[::1]"):
        with pytest.raises(ValueError, match="not a domain"):
            normalize_domain(bad)


# --- fetch_webpage against a local server ---------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head><title>Test  Page</title>
<style>body { color: red; }</style>
<script>var secret = "do not show";</script>
</head>
<body><h1>Hello &amp; welcome</h1><p>First paragraph.</p>
<noscript>enable js</noscript>
<ul><li>one</li><li>two</li></ul><script type="module">alert(1)</script><p>Last   words.</p></body></html>
"""
HUGE_BYTES = 5 * 1024 * 1024


async def _page(request: Request) -> Response:
    return HTMLResponse(PAGE)


def _origin(request: Request) -> str:
    return f"http://127.0.0.1:{request.url.port}"


async def _redirect(request: Request) -> Response:
    return RedirectResponse(f"{_origin(request)}/page", status_code=302)


async def _relative_redirect(request: Request) -> Response:
    return RedirectResponse("/redirect", status_code=301)


async def _to_localhost(request: Request) -> Response:
    return RedirectResponse(f"http://localhost:{request.url.port}/page", status_code=307)


async def _to_file(request: Request) -> Response:
    return RedirectResponse("file:///etc/passwd", status_code=302)


async def _loop(request: Request) -> Response:
    return RedirectResponse("/loop", status_code=302)


async def _huge(request: Request) -> Response:
    return PlainTextResponse("a" * HUGE_BYTES)


async def _bomb(request: Request) -> Response:
    body = gzip.compress(b"0" * (50 * 1024 * 1024))
    return Response(body, media_type="text/plain", headers={"Content-Encoding": "gzip"})


async def _gzipped(request: Request) -> Response:
    return Response(gzip.compress(b"compressed text"), media_type="text/plain", headers={"Content-Encoding": "gzip"})


async def _binary(request: Request) -> Response:
    return Response(b"\x89PNG\r\n", media_type="image/png")


async def _missing(request: Request) -> Response:
    return PlainTextResponse("nope", status_code=404)


async def _slow(request: Request) -> Response:
    await asyncio.sleep(5)
    return PlainTextResponse("too late")


async def _latin1(request: Request) -> Response:
    return Response("café".encode("latin-1"), headers={"Content-Type": "text/plain; charset=iso-8859-1"})


WEB_APP = Starlette(
    routes=[
        Route("/page", _page),
        Route("/redirect", _redirect),
        Route("/relative-redirect", _relative_redirect),
        Route("/to-localhost", _to_localhost),
        Route("/to-file", _to_file),
        Route("/loop", _loop),
        Route("/huge", _huge),
        Route("/bomb", _bomb),
        Route("/gzipped", _gzipped),
        Route("/binary", _binary),
        Route("/missing", _missing),
        Route("/slow", _slow),
        Route("/latin1", _latin1),
    ]
)


@pytest.fixture(scope="module")
def web_server() -> Iterator[str]:
    """The test web app on a free port of 127.0.0.1, served by uvicorn in a thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        WEB_APP, log_level="warning", access_log=False, lifespan="off", loop="asyncio", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test web server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def private_ok(context: ToolContext) -> ToolContext:
    """A context whose platform settings allow private networks (the test server is on loopback)."""
    return ToolContext(
        tenant_id=context.tenant_id,
        storage=context.storage,
        conversation_id=context.conversation_id,
        allow_private_network=True,
    )


async def test_fetch_webpage(web_server: str, private_ok: ToolContext) -> None:
    result = await run("fetch_webpage", {"url": f"{web_server}/page"}, private_ok)
    assert result.ok, result.output
    assert result.data is not None
    assert result.data["title"] == "Test Page"
    assert result.data["status"] == 200
    assert result.data["truncated"] is False
    assert result.output.startswith(f"URL: {web_server}/page\nTitle: Test Page\n")
    body = result.output.split("\n\n", 1)[1]
    assert body == "Hello & welcome\n\nFirst paragraph.\n\none\n\ntwo\n\nLast words."
    for hidden in ("secret", "color", "alert", "enable js", "<"):
        assert hidden not in result.output
    assert [c.url for c in result.citations] == [f"{web_server}/page"]
    assert result.citations[0].title == "Test Page"


async def test_fetch_follows_checked_redirects(web_server: str, private_ok: ToolContext) -> None:
    for path in ("/redirect", "/relative-redirect"):
        result = await run("fetch_webpage", {"url": web_server + path}, private_ok)
        assert result.ok, result.output
        assert result.data is not None
        assert result.data["url"] == f"{web_server}/page"

    result = await run("fetch_webpage", {"url": f"{web_server}/loop"}, private_ok)
    assert (result.ok, result.error_code) == (False, "too_many_redirects")

    result = await run("fetch_webpage", {"url": f"{web_server}/to-file"}, private_ok)
    assert (result.ok, result.error_code) == (False, "url_refused")
    assert "file" in result.output

    # Each hop is checked: the first hop is allowed, the redirect to another host is not.
    only_ip = dataclasses.replace(
        private_ok, settings=registry.validate_settings("fetch_webpage", {"allowed_domains": ["127.0.0.1"]})
    )
    assert (await run("fetch_webpage", {"url": f"{web_server}/page"}, only_ip)).ok
    result = await run("fetch_webpage", {"url": f"{web_server}/to-localhost"}, only_ip)
    assert (result.ok, result.error_code) == (False, "url_refused")
    assert "localhost" in result.output


async def test_fetch_limits(web_server: str, private_ok: ToolContext) -> None:
    result = await run("fetch_webpage", {"url": f"{web_server}/huge"}, private_ok)
    assert result.ok
    assert result.data is not None
    assert result.data["truncated"] is True
    assert result.data["chars"] == 20_000
    assert result.output.endswith("[content truncated]")

    wide = dataclasses.replace(private_ok, settings=FetchWebpageSettings(max_chars=registry.MAX_OUTPUT_CHARS))
    result = await run("fetch_webpage", {"url": f"{web_server}/bomb"}, wide)
    assert result.ok
    assert result.data is not None
    assert result.data["truncated"] is True
    assert len(result.output) < registry.MAX_OUTPUT_CHARS + 200

    small = dataclasses.replace(private_ok, settings=FetchWebpageSettings(max_chars=100))
    result = await run("fetch_webpage", {"url": f"{web_server}/huge"}, small)
    assert result.ok
    assert result.data is not None
    assert result.data["chars"] == 100

    result = await run("fetch_webpage", {"url": f"{web_server}/gzipped"}, private_ok)
    assert result.ok
    assert result.output.endswith("\n\ncompressed text")

    result = await run("fetch_webpage", {"url": f"{web_server}/latin1"}, private_ok)
    assert result.output.endswith("\n\ncafé")

    result = await run("fetch_webpage", {"url": f"{web_server}/binary"}, private_ok)
    assert (result.ok, result.error_code) == (False, "unsupported_content")

    result = await run("fetch_webpage", {"url": f"{web_server}/missing"}, private_ok)
    assert (result.ok, result.error_code) == (False, "http_error")
    assert "404" in result.output

    started = time.monotonic()
    hurried = dataclasses.replace(private_ok, deadline=time.monotonic() + 0.5)
    result = await run("fetch_webpage", {"url": f"{web_server}/slow"}, hurried)
    assert (result.ok, result.error_code) == (False, "timeout")
    assert time.monotonic() - started < 3


async def test_fetch_refuses_private_addresses(web_server: str, context: ToolContext) -> None:
    port = web_server.rsplit(":", 1)[1]
    assert not context.allow_private_network
    for url in (
        f"{web_server}/page",
        f"http://localhost:{port}/page",
        f"http://127.1:{port}/page",
        "http://localhost/",
        "http://[::1]/",
        f"http://[::ffff:127.0.0.1]:{port}/page",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://10.0.0.1/",
        "file:///etc/passwd",
        "ftp://127.0.0.1/",
        "ftp://example.com/",
    ):
        result = await run("fetch_webpage", {"url": url}, context)
        assert not result.ok, url
        assert result.error_code == "url_refused", (url, result.output)


async def test_guarded_client_checks_every_connection(web_server: str) -> None:
    """The address check sits in the connection itself, so a client request that skipped `validate_url` (or a
    host name that re-resolves to something else) cannot reach a private address."""
    async with guarded_client(allow_private_network=False) as client:
        with pytest.raises(ToolError, match="private"):
            await client.get(f"{web_server}/page")
        port = web_server.rsplit(":", 1)[1]
        with pytest.raises(ToolError, match="private"):
            await client.get(f"http://localhost:{port}/page")
    async with guarded_client(allow_private_network=True) as client:
        response = await client.get(f"{web_server}/page")
        assert response.status_code == 200


async def test_fetch_argument_errors(context: ToolContext) -> None:
    result = await run("fetch_webpage", {"url": "http://example.com/" + "a" * 3000}, context)
    assert result.error_code == "invalid_arguments"
    result = await run("fetch_webpage", {"href": "http://example.com/"}, context)
    assert result.error_code == "invalid_arguments"
