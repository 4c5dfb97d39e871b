"""Serving the web UI's static export: pages by name, cache headers, the 404 page, and API paths kept apart."""

from __future__ import annotations

import gzip
from pathlib import Path

from nexent.settings import Service
from tests.conftest import make_settings, serve_in_process
from tests.test_http import assert_problem


def _export(root: Path) -> Path:
    """A small export laid out as `next build` writes one."""
    out = root / "out"
    (out / "_next" / "static" / "chunks").mkdir(parents=True)
    (out / "agents").mkdir()
    (out / "index.html").write_text("<html>start</html>")
    (out / "404.html").write_text("<html>not found page</html>")
    (out / "chat.html").write_text("<html>chat page</html>")
    (out / "agents" / "edit.html").write_text("<html>studio</html>")
    (out / "favicon.svg").write_text("<svg/>")
    script = out / "_next" / "static" / "chunks" / "app-1a2b.js"
    script.write_text("console.log('app')")
    script.with_name("app-1a2b.js.gz").write_bytes(gzip.compress(script.read_bytes()))
    return out


async def test_pages_assets_and_cache_headers(tmp_path: Path) -> None:
    async with serve_in_process(make_settings(tmp_path, web_dir=_export(tmp_path))) as client:
        home = await client.get("/")
        assert home.status_code == 200 and home.text == "<html>start</html>"
        assert home.headers["cache-control"] == "no-cache"
        chat = await client.get("/chat", params={"c": "some-id"})
        assert chat.text == "<html>chat page</html>" and chat.headers["content-type"].startswith("text/html")
        assert (await client.get("/agents/edit")).text == "<html>studio</html>"
        script = await client.get("/_next/static/chunks/app-1a2b.js", headers={"Accept-Encoding": "gzip"})
        assert script.status_code == 200 and script.text == "console.log('app')"  # httpx undoes the gzip
        assert script.headers["content-encoding"] == "gzip"
        assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert "javascript" in script.headers["content-type"]
        plain = await client.get("/_next/static/chunks/app-1a2b.js", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.text == "console.log('app')"
        policy = chat.headers["content-security-policy"]
        assert "connect-src 'self';" in policy and "frame-ancestors 'none'" in policy
        assert "content-security-policy" not in script.headers  # pages only
        head = await client.head("/chat")
        assert head.status_code == 200 and head.content == b""


async def test_unknown_paths_get_the_404_page_and_api_paths_never_html(tmp_path: Path) -> None:
    async with serve_in_process(make_settings(tmp_path, web_dir=_export(tmp_path))) as client:
        for path in ["/nope", "/agents/nope", "/_next/static/chunks/missing.js", "/..%2f..%2fetc%2fpasswd"]:
            page = await client.get(path)
            assert page.status_code == 404 and page.text == "<html>not found page</html>", path
            assert page.headers["cache-control"] == "no-cache"
        # The gzipped copies are the server's own business, not pages.
        assert (await client.get("/_next/static/chunks/app-1a2b.js.gz")).status_code == 404
        for path in ["/api/nope", "/api", "/mcp/nope"]:
            assert_problem(await client.get(path), 404, "not_found")
        assert_problem(await client.get("/a2a/x"), 404, "agent_not_found")  # the A2A mount: no such exposed agent
        # The OpenAI-compatible API answers in OpenAI's error shape, the MCP server asks for its key: never a page.
        for path, status in [("/v1/nope", 404), ("/v1", 404), ("/v1/models", 401)]:
            answer = await client.get(path)
            assert answer.status_code == status and "code" in answer.json()["error"], path
        assert_problem(await client.get("/mcp"), 401, "unauthorized")
        assert_problem(await client.post("/chat"), 404, "not_found")
        # Routes keep answering as before, with their own methods.
        assert (await client.get("/healthz")).json()["status"] == "ok"
        me = await client.put("/api/me")
        assert me.status_code == 405 and me.headers["allow"] == "GET, PATCH"


async def test_status_page_while_the_ui_is_not_built(tmp_path: Path) -> None:
    async with serve_in_process(make_settings(tmp_path, web_dir=tmp_path / "missing")) as client:
        home = await client.get("/")
        assert home.status_code == 200 and "Server status" in home.text
        assert_problem(await client.get("/chat"), 404, "not_found")


async def test_runtime_configuration_names_each_service(tmp_path: Path) -> None:
    async with serve_in_process(make_settings(tmp_path)) as client:
        config = (await client.get("/api/ui/config")).json()
        assert config["services"]["runtime"] == {"url": "", "routes": []}
        assert config["sso"] is False and config["open_signup"] is True
    split = make_settings(tmp_path, service_urls={"runtime": "https://runtime.example/base"}, web_dir=_export(tmp_path))
    async with serve_in_process(split, service=Service.CONFIG) as client:
        # The pages may connect to the services' origins too.
        policy = (await client.get("/chat")).headers["content-security-policy"]
        assert "connect-src 'self' https://runtime.example;" in policy
        config = (await client.get("/api/ui/config")).json()
        runtime = config["services"]["runtime"]
        assert runtime["url"] == "https://runtime.example/base"
        assert ["POST", "/api/agents/{agent_id}/runs"] in runtime["routes"]
        assert ["GET", "/api/runs/{run_id}/events"] in runtime["routes"]
        assert config["services"]["config"] == {"url": "", "routes": []}


async def test_only_the_config_service_serves_the_ui(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, web_dir=_export(tmp_path), auto_migrate=True)
    async with serve_in_process(settings) as client:  # migrates the database for the split services below
        assert (await client.get("/chat")).status_code == 200
    async with serve_in_process(settings, service=Service.RUNTIME) as client:
        assert_problem(await client.get("/chat"), 404, "not_found")
        assert_problem(await client.get("/api/ui/config"), 404, "not_found")
    async with serve_in_process(settings, service=Service.CONFIG) as client:
        assert (await client.get("/chat")).text == "<html>chat page</html>"
