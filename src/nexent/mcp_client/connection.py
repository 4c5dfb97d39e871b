"""Connections to MCP servers, one per server and process: listing tools and calling them with timeouts, a
classified status for every failure, a circuit breaker, and for local servers the supervised child process.

Remote servers (streamable HTTP, SSE) get a fresh MCP session per operation: nothing to keep alive, and a server
that restarts is simply reached again. A local server (stdio) is a child process of the process that uses it,
started on first use through `launcher.py` (resource limits) in its own working folder with a clean environment,
and kept running between calls (fastmcp's keep-alive stdio transport). When it ends unexpectedly it is started
again after a backoff that doubles with each crash in a row (`RESTART_BACKOFF`, up to the configured maximum);
calls during the backoff fail at once. Its standard error goes to a file in its folder that a pump copies, line
by line, into the database (`LogSink`), with what the platform did (started, ended with code N, restarting).

The breaker counts failures of the server (no connection, timeouts, crashes, protocol errors), not the tool's own
errors: after `breaker_failures` in a row it opens and calls fail fast with `circuit_open` for
`breaker_reset_seconds`; then one call is let through (half-open) and its outcome closes or reopens it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx2
import mcp_types
from fastmcp import Client
from fastmcp.client.transports import SSETransport, StdioTransport, StreamableHttpTransport
from mcp.shared._httpx_utils import McpHttpClientFactory, create_mcp_http_client
from mcp.shared.exceptions import MCPError

from nexent.mcp_client import launcher
from nexent.mcp_client.models import ServerStatus, Transport

logger = logging.getLogger("nexent.mcp_client")

T = TypeVar("T")

RESTART_BACKOFF = 0.5  # seconds before the first restart; doubles with every crash in a row
STABLE_SECONDS = 60.0  # a process that ran this long before it ended starts the backoff over
_LOG_FILE_MAX = 1024 * 1024  # the stderr file is emptied once copied past this size
_LINE_MAX = 2000
_EXIT_RE = re.compile(re.escape(launcher.EXIT_MARKER) + r" (-?\d+)")


@dataclass(frozen=True)
class ServerConfig:
    """What a connection needs of a server, secrets decrypted. `version` changes whenever the server is edited."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    transport: str
    url: str | None
    command: str | None
    image: str | None
    headers: dict[str, str] = field(repr=False)
    env: dict[str, str] = field(repr=False)
    call_timeout: float
    memory_mb: int
    cpu_seconds: int
    max_open_files: int
    version: str


@dataclass(frozen=True)
class Limits:
    """Process-wide settings of the connections (`NEXENT_MCP_*`)."""

    list_timeout: float
    breaker_failures: int
    breaker_reset_seconds: float
    restart_backoff_max: float
    work_dir: Path


class McpFailure(Exception):
    """A failure of the server (not of the tool): its classified status and a message for people and models."""

    def __init__(self, status: ServerStatus, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or f"mcp_{status.value}"


LogSink = Callable[[ServerConfig, str, list[str]], Awaitable[None]]
"""Stores lines of a server's log: `(server, stream, lines)`, stream `stderr` or `platform`."""


class Breaker:
    """A circuit breaker: closed, open after `threshold` failures in a row, half-open after `reset_seconds`."""

    def __init__(self, threshold: int, reset_seconds: float) -> None:
        self.threshold = threshold
        self.reset_seconds = reset_seconds
        self.failures = 0
        self.opened_at: float | None = None
        self.trial = False  # a half-open call is under way
        self.last: McpFailure | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if time.monotonic() - self.opened_at >= self.reset_seconds else "open"

    def admit(self) -> None:
        """Raise `McpFailure(circuit_open)` unless a call may go ahead now."""
        state = self.state
        if state == "closed":
            return
        if state == "half_open" and not self.trial:
            self.trial = True
            return
        assert self.opened_at is not None
        wait = max(0.0, self.reset_seconds - (time.monotonic() - self.opened_at))
        last = self.last.message if self.last else "it kept failing"
        raise McpFailure(
            self.last.status if self.last else ServerStatus.UNREACHABLE,
            f"The MCP server is failing ({last}); not calling it again for {wait:.0f} s.",
            code="mcp_circuit_open",
        )

    def success(self) -> None:
        self.failures, self.opened_at, self.trial, self.last = 0, None, False, None

    def failure(self, failure: McpFailure) -> None:
        self.failures += 1
        self.last = failure
        if self.trial or self.failures >= self.threshold:
            self.opened_at = time.monotonic()
        self.trial = False


def classify(exc: BaseException, statuses: list[int]) -> McpFailure:
    """The status of a failed operation. `statuses` are the HTTP statuses the server answered with."""
    if any(code in (401, 403) for code in statuses):
        return McpFailure(ServerStatus.AUTH, "The server refused the credentials (HTTP 401/403).")
    if isinstance(exc, httpx2.HTTPStatusError):
        code = exc.response.status_code
        if code in (401, 403):
            return McpFailure(ServerStatus.AUTH, f"The server refused the credentials (HTTP {code}).")
        return McpFailure(ServerStatus.PROTOCOL, f"The server answered HTTP {code}.")
    if isinstance(exc, TimeoutError):
        return McpFailure(ServerStatus.TIMEOUT, "The server did not answer in time.")
    if isinstance(exc, MCPError):
        if exc.code == -32001 or "timed out" in exc.message:
            return McpFailure(ServerStatus.TIMEOUT, "The server did not answer in time.")
        if exc.message == "Connection closed":
            return McpFailure(ServerStatus.CRASHED, "The server closed the connection.")
        bad = [code for code in statuses if code >= 400]
        detail = f" (HTTP {bad[-1]})" if bad else ""
        return McpFailure(ServerStatus.PROTOCOL, f"The server answered with an error: {exc.message[:300]}{detail}.")
    if isinstance(exc, RuntimeError) and str(exc).startswith("Invalid structured content"):
        return McpFailure(
            ServerStatus.PROTOCOL,
            f"The tool's result does not match the output schema it declares ({_short(exc)}).",
            code="mcp_invalid_result",
        )
    cause = exc.__cause__ or exc
    if isinstance(cause, httpx2.TransportError | ConnectionError | FileNotFoundError | PermissionError):
        return McpFailure(ServerStatus.UNREACHABLE, f"Could not connect: {_short(cause)}.")
    if isinstance(cause, OSError):
        return McpFailure(ServerStatus.UNREACHABLE, f"Could not connect: {_short(cause)}.")
    if isinstance(exc, RuntimeError) and "failed to connect" in str(exc).lower():
        return McpFailure(ServerStatus.UNREACHABLE, f"Could not connect: {_short(exc)}.")
    return McpFailure(ServerStatus.PROTOCOL, f"The server does not speak MCP as expected: {_short(exc)}.")


_docker_checked: tuple[float, bool] | None = None


async def docker_available() -> bool:
    """Whether a Docker engine answers here (`docker info`), asked at most once a minute."""
    global _docker_checked
    if _docker_checked is not None and time.monotonic() - _docker_checked[0] < 60:
        return _docker_checked[1]
    try:
        process = await asyncio.create_subprocess_exec(
            "docker",
            "info",
            "--format",
            "{{.ServerVersion}}",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with asyncio.timeout(10):
                answered = await process.wait() == 0
        except TimeoutError:
            process.kill()
            await process.wait()
            answered = False
    except OSError:  # no docker command
        answered = False
    _docker_checked = (time.monotonic(), answered)
    return answered


def _session_dead(transport: StdioTransport) -> bool:
    """Whether a stdio transport's process is gone (fastmcp notices it on the next connect; we ask now)."""
    task = getattr(transport, "_connect_task", None)
    dead = getattr(transport, "_is_session_dead", None)
    return bool((task is not None and task.done()) or (callable(dead) and dead()))


def _short(exc: BaseException) -> str:
    text = str(exc).split("\n", 1)[0].strip() or type(exc).__name__
    return text[:300]


class Connection:
    """One server in this process. Never raises anything but `McpFailure` from `list_tools` and `call`."""

    def __init__(self, config: ServerConfig, limits: Limits, sink: LogSink, *, local_allowed: bool) -> None:
        self.config = config
        self.limits = limits
        self.sink = sink
        self.local_allowed = local_allowed
        self.breaker = Breaker(limits.breaker_failures, limits.breaker_reset_seconds)
        self._lock = asyncio.Lock()  # one (re)start of the local process at a time
        # The local process
        self._stdio: StdioTransport | None = None
        self._started_at: float | None = None
        self._crashes = 0
        self._restart_at: float | None = None
        self._restarter: asyncio.Task[None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._log_offset = 0
        self._answered = False  # the current process answered an MCP request
        self._closed = False

    @property
    def folder(self) -> Path:
        return self.limits.work_dir / str(self.config.id)

    # --- operations ---------------------------------------------------------------------------------------------

    async def list_tools(self) -> list[mcp_types.Tool]:
        """The server's tools, within the list timeout (the breaker does not hold a check back)."""
        return await self._operate(lambda c: c.list_tools(), self.limits.list_timeout, use_breaker=False)

    async def call(self, name: str, arguments: dict[str, Any], seconds: float) -> mcp_types.CallToolResult:
        """Call tool `name` (its name at the server), within `seconds` of the call itself."""
        return await self._operate(
            lambda c: c.call_tool_mcp(name, arguments, timeout=seconds),
            seconds + self.limits.list_timeout,  # the call, and connecting first
            use_breaker=True,
        )

    async def _operate(
        self, operation: Callable[[Client[Any]], Awaitable[T]], seconds: float, *, use_breaker: bool
    ) -> T:
        if use_breaker:
            self.breaker.admit()
        statuses: list[int] = []
        try:
            client = await self._client(statuses)
            async with asyncio.timeout(seconds):
                async with client:
                    result = await operation(client)
        except McpFailure as refused:
            self.breaker.failure(refused)
            raise
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # anything a broken server causes becomes a classified failure
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise await self._failed(exc, statuses) from None
        self.breaker.success()
        if self._stdio is not None:
            self._answered = True
            await self._copy_logs()
        return result

    async def _failed(self, exc: BaseException, statuses: list[int]) -> McpFailure:
        failure = classify(exc, statuses)
        if self.config.transport == Transport.STDIO:
            failure = await self._after_stdio_failure(failure)
        if failure.code == "mcp_invalid_result":  # the server answered: a wrong answer, not a failing server
            self.breaker.success()
        else:
            self.breaker.failure(failure)
        return failure

    # --- clients ------------------------------------------------------------------------------------------------

    async def _client(self, statuses: list[int]) -> Client[Any]:
        config = self.config
        if config.transport == Transport.STDIO:
            return Client(await self._local_transport())
        assert config.url is not None

        async def record(response: httpx2.Response) -> None:
            statuses.append(response.status_code)

        def make(**kwargs: Any) -> httpx2.AsyncClient:
            client = create_mcp_http_client(
                headers=kwargs.get("headers"), timeout=kwargs.get("timeout"), auth=kwargs.get("auth")
            )
            client.event_hooks.setdefault("response", []).append(record)
            return client

        factory = cast(McpHttpClientFactory, make)  # it also takes `follow_redirects`, which fastmcp passes

        transport: StreamableHttpTransport | SSETransport
        if config.transport == Transport.SSE:
            transport = SSETransport(config.url, headers=dict(config.headers), httpx_client_factory=factory)
        else:
            transport = StreamableHttpTransport(config.url, headers=dict(config.headers), httpx_client_factory=factory)
        return Client(transport)

    async def _local_transport(self) -> StdioTransport:
        """The local server's transport, started (or restarted after its backoff) when needed."""
        if not self.local_allowed:
            raise McpFailure(
                ServerStatus.DISABLED,
                "Local (stdio) MCP servers are not allowed in this process (NEXENT_MCP_STDIO).",
                code="mcp_local_disabled",
            )
        if self._restart_at is not None and time.monotonic() < self._restart_at:
            wait = self._restart_at - time.monotonic()
            raise McpFailure(
                ServerStatus.CRASHED, f"The server's process ended; it restarts in {wait:.1f} s.", code="mcp_crashed"
            )
        async with self._lock:
            if self._stdio is None:
                self._stdio = self._new_transport()
                self._started_at = time.monotonic()
                self._restart_at = None
                await self.sink(self.config, "platform", [f"starting: {self.config.command}"])
                if self._pump is None:
                    self._pump = asyncio.create_task(self._pump_logs(), name=f"mcp-logs-{self.config.id}")
            return self._stdio

    def _new_transport(self) -> StdioTransport:
        if self.config.image:
            return self._container_transport()
        config = self.config
        folder = self.folder
        (folder / "tmp").mkdir(parents=True, exist_ok=True)
        cache = self.limits.work_dir / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        (folder / "stderr.log").touch()
        (folder / "pid").unlink(missing_ok=True)
        argv = shlex.split(config.command or "")
        env = {
            # A clean environment: none of the platform's own (its keys, database URL, tokens).
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(folder),
            "TMPDIR": str(folder / "tmp"),
            "LANG": "C.UTF-8",
            "UV_CACHE_DIR": str(cache / "uv"),
            "npm_config_cache": str(cache / "npm"),
            **config.env,
        }
        args = [
            "-I",
            launcher.__file__,
            str(config.memory_mb),
            str(config.cpu_seconds),
            str(config.max_open_files),
            str(folder / "pid"),
            "--",
            *argv,
        ]
        return StdioTransport(
            sys.executable, args, env=env, cwd=str(folder), keep_alive=True, log_file=folder / "stderr.log"
        )

    def _container_transport(self) -> StdioTransport:
        """`docker run` of the server's image: the limits as the container's (memory, open files, CPU time,
        processes), no capabilities, its environment passed by name (values never on a command line)."""
        config = self.config
        folder = self.folder
        (folder / "tmp").mkdir(parents=True, exist_ok=True)
        (folder / "stderr.log").touch()
        (folder / "pid").unlink(missing_ok=True)
        assert config.image is not None
        args = [
            "run",
            "--rm",
            "-i",
            "--init",
            f"--label=nexent.mcp_server={config.id}",
            f"--memory={config.memory_mb}m",
            f"--ulimit=nofile={config.max_open_files}:{config.max_open_files}",
            f"--ulimit=cpu={config.cpu_seconds}:{config.cpu_seconds}",
            "--pids-limit=256",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            *(f"--env={name}" for name in sorted(config.env)),
            config.image,
            *shlex.split(config.command or ""),
        ]
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(folder),
            **{k: os.environ[k] for k in ("DOCKER_HOST", "DOCKER_CONTEXT") if k in os.environ},
            **config.env,
        }
        return StdioTransport("docker", args, env=env, cwd=str(folder), keep_alive=True, log_file=folder / "stderr.log")

    # --- supervision --------------------------------------------------------------------------------------------

    async def _after_stdio_failure(self, failure: McpFailure) -> McpFailure:
        """After a failed operation: if the process ended, record it and plan its restart (with backoff)."""
        transport = self._stdio
        if failure.code == "mcp_local_disabled" or transport is None:
            return failure
        if failure.status != ServerStatus.CRASHED and not _session_dead(transport):
            await self._copy_logs()
            return failure
        code = await self._exit_code()
        answered, self._answered = self._answered, False
        lived = time.monotonic() - (self._started_at or time.monotonic())
        self._crashes = 1 if lived >= STABLE_SECONDS else self._crashes + 1
        backoff = min(RESTART_BACKOFF * 2 ** (self._crashes - 1), self.limits.restart_backoff_max)
        self._restart_at = time.monotonic() + backoff
        self._stdio = None
        with contextlib.suppress(Exception):
            await transport.close()  # type: ignore[no-untyped-call]
        await self._copy_logs()
        ended = f"with code {code}" if code is not None else "unexpectedly"
        await self.sink(
            self.config, "platform", [f"the process ended {ended}; restart {self._crashes} in {backoff:.1f} s"]
        )
        if self._restarter is None or self._restarter.done():
            self._restarter = asyncio.create_task(self._restart(backoff), name=f"mcp-restart-{self.config.id}")
        if not answered:  # it never got as far as speaking MCP: a command that fails to start
            return McpFailure(
                ServerStatus.UNREACHABLE, f"The server's process ended {ended} before it answered; see its logs."
            )
        return McpFailure(ServerStatus.CRASHED, f"The server's process ended {ended} during the call.")

    async def _exit_code(self) -> int | None:
        """The code the launcher reported for the ended process (it writes it a moment after the pipe closes)."""
        path = self.folder / "stderr.log"
        for _ in range(40):
            try:
                with path.open("rb") as handle:
                    handle.seek(self._log_offset)
                    tail = handle.read().decode("utf-8", "replace")
            except OSError:
                return None
            found = _EXIT_RE.findall(tail)
            if found:
                return int(found[-1])
            await asyncio.sleep(0.025)
        return None

    async def _restart(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._closed:
            return
        self._restart_at = None
        try:
            await self.list_tools()
        except McpFailure as failure:
            logger.info("local MCP server did not restart", extra={"server": str(self.config.id)})
            await self.sink(self.config, "platform", [f"restart failed: {failure.message}"])
            return
        await self.sink(self.config, "platform", [f"restarted (pid {self._pid() or '?'})"])

    def _pid(self) -> int | None:
        """The server's process id (the launcher's child), while it runs."""
        try:
            return int((self.folder / "pid").read_text().strip())
        except (OSError, ValueError):
            return None

    async def _pump_logs(self) -> None:
        """Copy the process's standard error into the log while the connection lives."""
        while not self._closed:
            await asyncio.sleep(0.5)
            await self._copy_logs()

    async def _copy_logs(self) -> None:
        path = self.folder / "stderr.log"
        try:
            size = path.stat().st_size
            if size < self._log_offset:
                self._log_offset = 0
            if size == self._log_offset:
                return
            with path.open("rb") as handle:
                handle.seek(self._log_offset)
                data = handle.read(size - self._log_offset)
            cut = data.rfind(b"\n") + 1  # whole lines only; the rest waits for its end
            if cut == 0 and len(data) < 64 * 1024:
                return
            cut = cut or len(data)
            self._log_offset += cut
            if self._log_offset > _LOG_FILE_MAX:
                path.write_bytes(b"")  # the child appends (O_APPEND): it writes at the new end
                self._log_offset = 0
        except OSError:
            return
        lines = [line[:_LINE_MAX] for line in data[:cut].decode("utf-8", "replace").splitlines() if line.strip()]
        if lines:
            await self.sink(self.config, "stderr", lines)

    async def close(self) -> None:
        self._closed = True
        for task in (self._restarter, self._pump):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._stdio is not None:
            transport, self._stdio = self._stdio, None
            with contextlib.suppress(Exception):
                await transport.close()  # type: ignore[no-untyped-call]
            with contextlib.suppress(Exception):
                await self._copy_logs()

    def snapshot(self) -> dict[str, Any]:
        """What this process knows of the server now (breaker state, local process)."""
        return {
            "breaker": self.breaker.state,
            "failures": self.breaker.failures,
            "running": self._stdio is not None,
            "pid": self._pid() if self._stdio is not None else None,
        }
