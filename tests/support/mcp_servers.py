"""Real FastMCP servers that tests use as the tenants' MCP servers, over HTTP (streamable or SSE) and stdio.

Run one: `python tests/support/mcp_servers.py stdio`, or `... http PORT [TOKEN]`, or `... sse PORT`. With a TOKEN,
HTTP requests without `Authorization: Bearer TOKEN` get 401. Tools:

- `add(a, b)`: the sum, and `echo(text)`: the text; `env_secret()`: whether any `NEXENT_*` variable reached it.
- `hang(seconds)`: sleeps (a hung tool); `crash()`: writes a line to standard error and ends the process (code 3).
- `broken`: declares parameters that are not a valid JSON schema.
- `liar()`: declares an integer `value` in its output schema and returns a string there.

`serve(mode, ...)` runs one in a subprocess from a test (`McpProcess`): it answers once the port accepts.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()


def build() -> Any:
    from fastmcp import FastMCP
    from fastmcp.tools import Tool

    mcp = FastMCP("nexent-test")

    @mcp.tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @mcp.tool
    def echo(text: str) -> str:
        """Repeat the text."""
        return f"echo: {text}"

    @mcp.tool
    def env_secret() -> str:
        """Whether the platform's secrets reached this process."""
        leaked = sorted(name for name in os.environ if name.startswith("NEXENT_"))
        return f"leaked: {', '.join(leaked)}" if leaked else "clean"

    @mcp.tool
    async def hang(seconds: float = 3600) -> str:
        """Sleep, then answer."""
        await asyncio.sleep(seconds)
        return "woke up"

    @mcp.tool
    def crash() -> str:
        """End the process in the middle of the call."""
        print("test server: crashing on purpose", file=sys.stderr, flush=True)
        os._exit(3)

    def broken(x: str) -> str:
        """Declared with a schema that is not one."""
        return x

    tool = Tool.from_function(broken)
    mcp.add_tool(tool.model_copy(update={"parameters": {"type": "object", "properties": {"x": {"type": "text"}}}}))

    def liar() -> dict[str, Any]:
        """Promises an integer, returns a string."""
        return {"value": "not a number"}

    lying = Tool.from_function(liar)
    schema = {"type": "object", "properties": {"value": {"type": "integer"}}, "required": ["value"]}
    mcp.add_tool(lying.model_copy(update={"output_schema": schema}))
    return mcp


def main(argv: list[str]) -> None:
    mode = argv[0]
    mcp = build()
    if mode == "stdio":
        print("test server: started", file=sys.stderr, flush=True)
        mcp.run(transport="stdio", show_banner=False)
        return
    import uvicorn
    from starlette.responses import JSONResponse

    port = int(argv[1])
    token = argv[2] if len(argv) > 2 else None
    inner = mcp.http_app(transport="sse" if mode == "sse" else "http")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and token is not None:
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization") != f"Bearer {token}".encode():
                await JSONResponse({"error": "invalid_token"}, status_code=401)(scope, receive, send)
                return
        await inner(scope, receive, send)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")


@dataclass
class McpProcess:
    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def serve(mode: str, token: str | None = None, timeout: float = 30.0) -> McpProcess:
    """Start an HTTP (`http`) or SSE (`sse`) server on a free loopback port; returns once it accepts."""
    return serve_many([(mode, token)], timeout)[0]


def serve_many(specs: list[tuple[str, str | None]], timeout: float = 30.0) -> list[McpProcess]:
    """Start several servers (`(mode, token)` each) at once; returns once each accepts."""
    started: list[tuple[McpProcess, int, str]] = []
    for mode, token in specs:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        args = [sys.executable, str(SCRIPT), mode, str(port), *([token] if token else [])]
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        path = "/sse" if mode == "sse" else "/mcp"
        started.append((McpProcess(process, f"http://127.0.0.1:{port}{path}"), port, mode))
    deadline = time.monotonic() + timeout
    for served, port, mode in started:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if served.process.poll() is not None or time.monotonic() > deadline:
                    for other, _, _ in started:
                        other.process.kill()
                    raise RuntimeError(f"the test MCP server ({mode}) did not start") from None
                time.sleep(0.05)
    return [served for served, _, _ in started]


if __name__ == "__main__":
    main(sys.argv[1:])
