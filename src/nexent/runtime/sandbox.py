"""`SandboxExecutor`: a smolagents `PythonExecutor` that runs a CodeAgent's code in a locked-down worker process.

Use it as `CodeAgent(..., executor=SandboxExecutor(cancel=run_cancel_event),
additional_authorized_imports=list(executor.authorized_imports))` (the latter so that the prompt lists exactly the
modules the worker allows). The agent hands over its tools (and managed agents) with `send_tools` at every run;
the worker gets stubs, and each call is run here, in the agent's thread, by the real `Tool`.

Defense layers, outermost first:

- **A separate process** (`sandbox_worker.py`, `python -I -B -X utf8`): an EMPTY environment (none of the
  server's variables or secrets), no inherited file descriptors but its two protocol pipes (so no database or
  client connections), stdin/stdout on /dev/null and stderr in a private temporary file (read only to explain a
  failed start), its own session and process group (killed as a whole), a fresh scratch directory as cwd
  (removed when the worker goes). The server never unpickles or evaluates anything the worker sends: messages
  are size-capped JSON lines, and writes to a worker that stops reading time out.
- **Limits** enforced by the kernel: RLIMIT_AS (`memory_mb`), RLIMIT_CPU (`cpu_seconds` per step as the soft
  limit, re-armed before each step, and `cpu_seconds * CPU_LIFETIME_FACTOR` over the worker's life as the hard
  limit), RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_NPROC = 0, no core dumps; plus a wall clock per step
  (`timeout_seconds`, time spent in tools not counted) enforced here by killing the process group.
- **A disk quota** (`disk_mb`) on the scratch directory, all files together: as root a tmpfs of that size in the
  worker's own mount namespace (the kernel refuses writes past it: ENOSPC); otherwise the audit hook refuses to
  open files for writing once the directory holds that much.
- **When the server runs as root** (as in CI and containers): the worker moves into a new, empty network
  namespace (unless `allow_network`) and drops to uid/gid 65534 with no supplementary groups, so that the file
  system's permissions and RLIMIT_NPROC apply to it. Best effort: `worker_info` says what was achieved.
- **Inside the worker**: process-spawning functions replaced by stubs, and a PEP 578 audit hook that cannot be
  removed, denying by default (files only inside the scratch directory, no imports, no sockets unless allowed,
  no ctypes, no gc/frame introspection, no code forging, no chmod/chown/utime even in the scratch directory; see
  `sandbox_worker`).
- **The code itself** runs in smolagents' AST interpreter (`evaluate_python_code`): no dunder attributes, only the
  `authorized_imports`, only whitelisted builtins (no open/eval/exec/compile/globals/vars/__import__). It is a
  filter, not a boundary: `string.Formatter().get_field("0.__globals__...")` and the like read dunder attributes
  in C. tests/test_sandbox.py runs such bypasses and shows the layers above stopping what they reach.

Script mode (`run_script`, docs/skills.md): a skill's `.py` or `.sh` script runs as a program, not through the
interpreter, so it gets a root of its own instead of the audit hook: `script_worker.py` builds it (namespaces,
the system read-only, the skill's files read-only, a scratch tmpfs, uid 65534, kernel limits) and this module
adds the wall clock, the stop flag and the output caps. It needs a server running as root; elsewhere it refuses.

Failures (errors in the code, timeouts, memory or CPU exhaustion, a crashed worker) raise `SandboxError`, which
CodeAgent turns into an error observation for the model; a worker that was killed or ran out of memory is
replaced by a fresh one at the next step (variables from earlier steps are then lost, the agent's variables
from `send_variables` are sent again). A stop (`cancel`) kills the worker and raises `RunCancelled`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from smolagents.local_python_executor import CodeOutput, PythonExecutor
from smolagents.tools import Tool

from nexent.runtime.smol_model import RunCancelled

WORKER_SCRIPT = Path(__file__).with_name("sandbox_worker.py")

# The curated default: computation and text only. No module that reaches files, processes or the network (os,
# io, pathlib, shutil, subprocess, socket, urllib, ...), nor anything that introspects or rewrites the
# interpreter (sys, builtins, importlib, inspect, gc, ctypes, pickle, marshal, operator's attrgetter, ...). It
# includes smolagents' BASE_BUILTIN_MODULES, which its CodeAgent prompt always advertises.
DEFAULT_AUTHORIZED_IMPORTS: tuple[str, ...] = (
    "bisect",
    "calendar",
    "cmath",
    "collections",
    "collections.abc",
    "copy",
    "csv",
    "datetime",
    "decimal",
    "difflib",
    "enum",
    "fractions",
    "functools",
    "heapq",
    "itertools",
    "json",
    "math",
    "numbers",
    "queue",
    "random",
    "re",
    "stat",
    "statistics",
    "string",
    "textwrap",
    "time",
    "unicodedata",
)

CPU_LIFETIME_FACTOR = 20  # the worker's total CPU budget, in steps' worth of cpu_seconds
STARTUP_TIMEOUT_SECONDS = 30.0
FILE_SIZE_MB = 8
DEFAULT_DISK_MB = 64  # the scratch directory, all files together (Settings.sandbox_disk_mb)
MAX_OPEN_FILES = 32
MAX_MESSAGE_BYTES = 32 << 20  # a reply from the worker larger than this kills it
_POLL_SECONDS = 0.1


class SandboxError(Exception):
    """The code failed, or its worker did (timeout, resource limit, crash). The message is meant for the model."""


class _WorkerGone(Exception):
    pass


class _Worker:
    """One worker process, its pipes and its scratch directory."""

    def __init__(self, command: list[str], config: dict[str, Any]) -> None:
        self.workdir = tempfile.mkdtemp(prefix="nexent-sandbox-")
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in kill()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        config = {**config, "read_fd": to_child_r, "write_fd": from_child_w, "workdir": self.workdir}
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our interpreter and script, no shell
                [*command, json.dumps(config)],
                pass_fds=(to_child_r, from_child_w),
                env={},
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self.stderr,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
                os.close(fd)
            self.stderr.close()
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise
        os.close(to_child_r)
        os.close(from_child_w)
        os.set_blocking(to_child_w, False)  # a worker that stops reading must not hang the agent's thread
        self.write_fd: int | None = to_child_w
        self.read_fd: int | None = from_child_r
        self.buffer = bytearray()
        self.info: dict[str, Any] = {}

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None and self.read_fd is not None

    def send(self, message: dict[str, Any], deadline: float, cancel: threading.Event | None) -> None:
        """Raises _WorkerGone (also when the worker does not take the message by the deadline), RunCancelled."""
        data = memoryview((json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8", "replace"))
        while data:
            if self.write_fd is None:
                raise _WorkerGone
            if cancel is not None and cancel.is_set():
                raise RunCancelled("stopped while code was running")
            left = deadline - time.monotonic()
            if left <= 0:
                raise _WorkerGone("it stopped reading its requests")
            try:
                _, writable, _ = select.select([], [self.write_fd], [], min(left, _POLL_SECONDS))
                if writable:
                    data = data[os.write(self.write_fd, data) :]
            except BlockingIOError:
                continue
            except OSError:
                raise _WorkerGone from None

    def recv(self, deadline: float, cancel: threading.Event | None) -> dict[str, Any] | None:
        """The next message; None when the deadline passes. Raises _WorkerGone, RunCancelled."""
        while True:
            newline = self.buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self.buffer[:newline])
                del self.buffer[: newline + 1]
                try:
                    message = json.loads(line)
                except (ValueError, RecursionError):
                    raise _WorkerGone("it sent a malformed message") from None
                if not isinstance(message, dict):
                    raise _WorkerGone("it sent a malformed message")
                return message
            if len(self.buffer) > MAX_MESSAGE_BYTES:
                raise _WorkerGone(f"it sent a message larger than {MAX_MESSAGE_BYTES} bytes")
            if cancel is not None and cancel.is_set():
                raise RunCancelled("stopped while code was running")
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if self.read_fd is None:
                raise _WorkerGone
            try:
                ready, _, _ = select.select([self.read_fd], [], [], min(left, _POLL_SECONDS))
                chunk = os.read(self.read_fd, 1 << 16) if ready else None
            except OSError:
                raise _WorkerGone from None
            if chunk is not None:
                if not chunk:
                    raise _WorkerGone
                self.buffer += chunk

    def death_reason(self, memory_mb: int, cpu_seconds: int) -> str:
        """Why the process ended, in words (waits briefly for it to be reaped)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2)
        code = self.proc.returncode
        if code is None:
            return "it stopped answering"
        if code == -signal.SIGXCPU:
            return f"it exceeded its CPU time limit ({cpu_seconds} s per step)"
        if code == -signal.SIGKILL:
            return f"it was killed by the system (memory limit {memory_mb} MB, or its total CPU time)"
        if code < 0:
            return f"it crashed (signal {signal.Signals(-code).name})"
        return f"it exited (status {code})"

    def stderr_tail(self, limit: int = 2000) -> str:
        try:
            self.stderr.seek(0, os.SEEK_END)
            size = self.stderr.tell()
            self.stderr.seek(max(0, size - limit))
            return self.stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for fd in (self.write_fd, self.read_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.write_fd = self.read_fd = None
        with contextlib.suppress(OSError, ValueError):
            self.stderr.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _kill_all(holder: dict[str, _Worker]) -> None:
    worker = holder.pop("worker", None)
    if worker is not None:
        worker.kill()


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[output truncated: {len(text) - limit} more characters]"


class SandboxExecutor(PythonExecutor):  # type: ignore[misc]
    """Runs CodeAgent code in a sandboxed worker process (see the module docstring).

    timeout_seconds: wall clock per code step (time spent in tools excluded); the worker is killed past it.
    cpu_seconds: CPU time per code step (RLIMIT_CPU soft limit, re-armed before each step).
    memory_mb: the worker's address space (RLIMIT_AS), interpreter and preloaded modules (about 70 MB) included.
    disk_mb: the scratch directory's quota, all files together (as root a tmpfs, so it is held in memory).
    max_output_chars: cap on the printed output (logs) and on the text of the step's value.
    allow_network: let the code open sockets (the modules must also be authorized, e.g. "socket").
    authorized_imports: the modules the code may import; DEFAULT_AUTHORIZED_IMPORTS when None. Each must be
        installed; "*" is refused. Authorizing a module does not lift the worker's other layers.
    cancel: the run's stop flag: checked while code runs; when set, the worker is killed and RunCancelled raised.
    drop_privileges: when the server runs as root, run the code as uid/gid 65534 (nobody). Best effort, like the
        network namespace: `worker_info` reports "privileges_dropped" and "network_isolated".

    The worker starts on first use (about 0.4 s) and is reused by later steps and runs until `cleanup()`.
    """

    def __init__(
        self,
        *,
        timeout_seconds: float = 30.0,
        cpu_seconds: int = 20,
        memory_mb: int = 512,
        disk_mb: int = DEFAULT_DISK_MB,
        max_output_chars: int = 20_000,
        allow_network: bool = False,
        authorized_imports: Iterable[str] | None = None,
        cancel: threading.Event | None = None,
        drop_privileges: bool = True,
        python: str | None = None,
    ) -> None:
        if timeout_seconds <= 0 or cpu_seconds < 1 or memory_mb < 128 or max_output_chars < 100 or disk_mb < 1:
            raise ValueError(
                "timeout_seconds > 0, cpu_seconds >= 1, memory_mb >= 128, disk_mb >= 1 and max_output_chars >= 100"
            )
        imports = sorted(set(DEFAULT_AUTHORIZED_IMPORTS if authorized_imports is None else authorized_imports))
        for name in imports:
            if name == "*" or not name or any(not part.isidentifier() for part in name.split(".")):
                raise ValueError(f"not an importable module name: {name!r}")
            if importlib.util.find_spec(name.split(".")[0]) is None:
                raise ValueError(f"authorized module {name!r} is not installed")
        self.timeout_seconds = float(timeout_seconds)
        self.cpu_seconds = int(cpu_seconds)
        self.memory_mb = int(memory_mb)
        self.disk_mb = int(disk_mb)
        self.max_output_chars = int(max_output_chars)
        self.allow_network = bool(allow_network)
        self.authorized_imports: tuple[str, ...] = tuple(imports)
        self.cancel = cancel
        self.drop_privileges = bool(drop_privileges)
        self.python = python or sys.executable
        self.tools: dict[str, Any] = {}
        self.variables: dict[str, Any] = {}
        # CodeAgent reads state["_print_outputs"] for the logs of a step that failed.
        self.state: dict[str, Any] = {"_print_outputs": ""}
        self._holder: dict[str, _Worker] = {}
        self._lock = threading.Lock()
        self._final_value: Any = None
        self._final_called = False
        self._finalizer = weakref.finalize(self, _kill_all, self._holder)

    # --- the worker ---------------------------------------------------------------------------------------------

    @property
    def worker_pid(self) -> int | None:
        worker = self._holder.get("worker")
        return worker.proc.pid if worker is not None and worker.alive else None

    @property
    def worker_info(self) -> dict[str, Any]:
        """What the running worker reported after hardening (pid, uid, limits, network isolation); {} if none."""
        worker = self._holder.get("worker")
        return dict(worker.info) if worker is not None and worker.alive else {}

    def worker_config(self) -> dict[str, Any]:
        """What a worker is started with (`sandbox_worker.main`), less its pipes and scratch directory."""
        return {
            "memory_mb": self.memory_mb,
            "cpu_seconds": self.cpu_seconds,
            "cpu_lifetime_seconds": self.cpu_seconds * CPU_LIFETIME_FACTOR,
            "file_size_mb": FILE_SIZE_MB,
            "disk_mb": self.disk_mb,
            "max_open_files": MAX_OPEN_FILES,
            "max_output_chars": self.max_output_chars,
            "allow_network": self.allow_network,
            "authorized_imports": list(self.authorized_imports),
            "drop_privileges": self.drop_privileges,
        }

    def _stop_worker(self) -> None:
        with self._lock:
            _kill_all(self._holder)

    def _worker(self) -> _Worker:
        """The running worker, started (with the tools and variables sent so far) when there is none."""
        worker = self._holder.get("worker")
        if worker is not None and worker.alive:
            return worker
        self._stop_worker()
        with self._lock:
            worker = _Worker([self.python, "-I", "-B", "-X", "utf8", str(WORKER_SCRIPT)], self.worker_config())
            self._holder["worker"] = worker
        try:
            ready = worker.recv(time.monotonic() + STARTUP_TIMEOUT_SECONDS, self.cancel)
        except _WorkerGone:
            ready = None
        except BaseException:
            self._stop_worker()
            raise
        if ready is None or ready.get("op") != "ready":
            detail = worker.stderr_tail()
            self._stop_worker()
            raise SandboxError(f"The code worker could not start.\n{detail}".strip())
        worker.info = dict(ready.get("info") or {})
        if self.tools:
            self._request(worker, {"op": "tools", "names": sorted(self.tools)}, STARTUP_TIMEOUT_SECONDS)
        if self.variables:
            self._request(worker, {"op": "vars", "vars": self.variables}, STARTUP_TIMEOUT_SECONDS)
        return worker

    def _request(self, worker: _Worker, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send a request and serve the worker's tool calls until its answer. Time spent in tools is not counted.

        Raises SandboxError when the worker fails (it is then stopped), RunCancelled on a stop."""
        try:
            deadline = time.monotonic() + timeout
            worker.send(message, deadline, self.cancel)
            while True:
                reply = worker.recv(deadline, self.cancel)
                if reply is None:
                    self._stop_worker()
                    raise SandboxError(
                        f"Code execution exceeded the time limit of {timeout:g} seconds and was stopped; the "
                        "interpreter was restarted, so variables defined by earlier code are lost."
                    )
                if reply.get("op") != "call":
                    return reply
                started = time.monotonic()
                self._serve_call(worker, reply, deadline)
                deadline += time.monotonic() - started
        except _WorkerGone as gone:
            reason = str(gone) or worker.death_reason(self.memory_mb, self.cpu_seconds)
            self._stop_worker()
            raise SandboxError(
                f"The code worker failed: {reason}. The interpreter was restarted, so variables defined by earlier "
                "code are lost."
            ) from None
        except BaseException:
            self._stop_worker()  # RunCancelled & co: abandon the code
            raise

    def _serve_call(self, worker: _Worker, call: dict[str, Any], deadline: float) -> None:
        name = call.get("tool")
        args = call.get("args")
        kwargs = call.get("kwargs")
        tool = self.tools.get(name) if isinstance(name, str) else None
        started = time.monotonic()
        reply: dict[str, Any]
        if tool is None or not isinstance(args, list) or not isinstance(kwargs, dict):
            reply = {"op": "result", "ok": False, "error": f"NameError: no tool named {name!r}"}
        else:
            try:
                value = tool(*args, **kwargs)
            except Exception as exc:  # reported to the code, which may handle it
                reply = {"op": "result", "ok": False, "error": f"{type(exc).__name__}: {exc}"}
            else:
                if name == "final_answer":
                    self._final_value, self._final_called = value, True
                try:
                    json.dumps(value)
                except (TypeError, ValueError):
                    value = str(value)
                reply = {"op": "result", "ok": True, "value": value}
        worker.send(reply, deadline + (time.monotonic() - started), self.cancel)

    # --- PythonExecutor -----------------------------------------------------------------------------------------

    def send_tools(self, tools: dict[str, Tool]) -> None:
        """CodeAgent.run() calls it with {**agent.tools, **agent.managed_agents} (final_answer included)."""
        for name in tools:
            if not name.isidentifier():
                raise ValueError(f"not a valid tool name: {name!r}")
        self.tools = dict(tools)
        worker = self._holder.get("worker")
        if worker is not None and worker.alive:
            self._request(worker, {"op": "tools", "names": sorted(self.tools)}, STARTUP_TIMEOUT_SECONDS)

    def send_variables(self, variables: dict[str, Any]) -> None:
        """CodeAgent.run() calls it with agent.state (additional_args). Only JSON values cross; others are skipped."""
        sendable: dict[str, Any] = {}
        for key, value in variables.items():
            if not (isinstance(key, str) and key.isidentifier()) or key.startswith("_"):
                continue
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                continue
            sendable[key] = value
        if not sendable:
            return
        self.variables.update(sendable)
        worker = self._holder.get("worker")
        if worker is not None and worker.alive:
            self._request(worker, {"op": "vars", "vars": sendable}, STARTUP_TIMEOUT_SECONDS)

    def __call__(self, code_action: str) -> CodeOutput:
        if self.cancel is not None and self.cancel.is_set():
            raise RunCancelled("stopped before the code ran")
        self.state["_print_outputs"] = ""
        self._final_value, self._final_called = None, False
        worker = self._worker()
        reply = self._request(worker, {"op": "exec", "code": code_action}, self.timeout_seconds)
        logs = _truncate(str(reply.get("logs") or ""), self.max_output_chars + 100)
        self.state["_print_outputs"] = logs
        op = reply.get("op")
        if op == "error":
            error = _truncate(str(reply.get("error") or "unknown error"), self.max_output_chars)
            if reply.get("kind") == "memory":
                self._stop_worker()
                error += (
                    f"\nThe code exceeded the memory limit ({self.memory_mb} MB); the interpreter was restarted, "
                    "so variables defined by earlier code are lost."
                )
            raise SandboxError(error)
        if op != "done":
            self._stop_worker()
            raise SandboxError(f"The code worker failed: unexpected reply {str(op)[:50]!r}; it was restarted.")
        is_final = bool(reply.get("final"))
        if is_final and self._final_called:
            output = self._final_value
        else:
            encoded = reply.get("output")
            encoded = encoded if isinstance(encoded, dict) else {}
            if "json" in encoded:
                output = encoded["json"]
            else:
                output = _truncate(str(encoded.get("repr")), self.max_output_chars)
        return CodeOutput(output=output, logs=logs, is_final_answer=is_final)

    def cleanup(self) -> None:
        """CodeAgent.cleanup() (and `with CodeAgent(...)`) calls it: stops the worker, removes its directory."""
        self._stop_worker()


__all__ = ["DEFAULT_AUTHORIZED_IMPORTS", "SandboxError", "SandboxExecutor"]


# --- script mode: a skill's script (docs/skills.md) -------------------------------------------------------------

SCRIPT_LAUNCHER = Path(__file__).with_name("script_worker.py")
SCRIPT_SETUP_FAILED = 125  # the launcher's status when isolation could not be set up (the script did not run)


class ScriptResult(dict[str, Any]):
    """What a script did: `exit_code`, `stdout`, `stderr` (each cut at the limit), `truncated`, `timed_out`."""


def run_script(
    files: dict[str, bytes],
    path: str,
    args: list[str],
    *,
    timeout_seconds: float = 30.0,
    cpu_seconds: int = 20,
    memory_mb: int = 512,
    disk_mb: int = DEFAULT_DISK_MB,
    max_output_chars: int = 20_000,
    max_processes: int = 32,
    allow_network: bool = False,
    cancel: threading.Event | None = None,
) -> ScriptResult:
    """Run a skill's script (`path`, a `.py` or `.sh` among `files`) in script mode and wait for it (blocking).

    The launcher (`script_worker.py`, whose docstring lists the layers) gives the script a root of its own: the
    system's programs read-only, the skill's files read-only at `/skill`, a `disk_mb` tmpfs at `/scratch` as its
    working directory, no other file of the server's, an empty environment, uid 65534, no network unless
    `allow_network`, a PID namespace (nothing it starts outlives it) and kernel limits (CPU, memory, file size,
    open files, processes). Here: a wall clock (`timeout_seconds`, the process group killed past it), the run's stop
    flag, and output cut at `max_output_chars` per stream (a script that writes more than ten times that is killed).
    Needs a server running as root (as in containers); elsewhere it raises `SandboxError` and runs nothing."""
    if os.geteuid() != 0:
        raise SandboxError(
            "Skill scripts run only where the platform can isolate them (a server running as root, as in its "
            "containers); this one cannot, so the script was not run."
        )
    base = tempfile.mkdtemp(prefix="nexent-script-")
    try:
        os.chmod(base, 0o755)  # noqa: S103 - the script's user (65534) must reach its files; they hold no secret
        skill_dir = os.path.join(base, "skill")
        for relative, data in files.items():
            target = os.path.join(skill_dir, *relative.split("/"))
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            with open(target, "wb") as handle:
                handle.write(data)
            os.chmod(target, 0o644)  # readable by the script's user (65534), writable by nobody there
        root = os.path.join(base, "root")
        os.mkdir(root, 0o755)
        config = {
            "root": root,
            "skill": skill_dir,
            "path": path,
            "args": args,
            "cpu_seconds": cpu_seconds,
            "memory_mb": memory_mb,
            "disk_mb": disk_mb,
            "file_size_mb": min(FILE_SIZE_MB, disk_mb),
            "max_processes": max_processes,
            "allow_network": allow_network,
        }
        return _supervise(
            [sys.executable, "-I", "-B", str(SCRIPT_LAUNCHER), json.dumps(config)],
            timeout_seconds=timeout_seconds,
            max_output_chars=max_output_chars,
            cancel=cancel,
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _supervise(
    command: list[str], *, timeout_seconds: float, max_output_chars: int, cancel: threading.Event | None
) -> ScriptResult:
    proc = subprocess.Popen(  # noqa: S603 - our interpreter and launcher, no shell
        command,
        env={},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    streams = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    seen = dict.fromkeys(streams, 0)
    deadline = time.monotonic() + timeout_seconds
    timed_out = flooded = False
    open_fds = set(streams)
    cap = max_output_chars * 4  # bytes kept per stream (UTF-8), cut to characters below
    try:
        while open_fds:
            if cancel is not None and cancel.is_set():
                _kill_group(proc)
                raise RunCancelled("stopped while a skill script was running")
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select(list(open_fds), [], [], min(left, _POLL_SECONDS))
            for fd in ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    open_fds.discard(fd)
                    continue
                seen[fd] += len(chunk)
                kept = streams[fd]
                kept += chunk[: max(0, cap - len(kept))]
                if seen[fd] > cap * 10:
                    flooded = True
            if flooded:
                break
        if not timed_out and not flooded:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            timed_out = proc.poll() is None
    finally:
        _kill_group(proc)
        proc.stdout.close()
        proc.stderr.close()
    code = proc.returncode
    out, err = (bytes(b).decode("utf-8", "replace") for b in streams.values())
    if code == SCRIPT_SETUP_FAILED and err.startswith("sandbox setup failed"):
        raise SandboxError(f"The script could not be isolated, so it was not run ({err.strip()[:300]}).")
    truncated = any(seen[fd] > len(b) for fd, b in streams.items()) or len(out) > max_output_chars
    return ScriptResult(
        exit_code=None if timed_out or flooded else code,
        stdout=_truncate(out, max_output_chars),
        stderr=_truncate(err, max_output_chars),
        truncated=truncated or len(err) > max_output_chars,
        timed_out=timed_out,
        killed="output limit" if flooded else ("time limit" if timed_out else None),
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
