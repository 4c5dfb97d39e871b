"""The code worker of `nexent.runtime.sandbox`: runs a CodeAgent's code in a separate, locked-down process.

Started by `SandboxExecutor` as a script (`python -I -B -X utf8 sandbox_worker.py CONFIG_JSON`), never imported by
the server: it depends on the standard library and smolagents only. It is trusted until `harden()` returns; from
then on it runs model-written code and must be assumed hostile. In order, it

1. imports everything it will ever need (smolagents' AST interpreter, the authorized modules, their lazy helpers):
   after hardening no module can be imported any more;
2. when running as root: moves itself into a new, empty network namespace (unless the network is allowed) and a
   new mount namespace where its scratch directory is a tmpfs of `disk_mb` (the disk quota, enforced by the kernel),
   hands that directory to an unprivileged user and drops to that user (uid/gid 65534, no supplementary groups);
3. sets resource limits: address space, per-step CPU time (soft, re-armed before each step) and a lifetime CPU cap
   (hard), file size, open files, processes, no core dumps;
4. replaces the process-spawning functions of `os`/`posix`/`_posixsubprocess`/`pty` with stubs that raise;
5. installs an audit hook (PEP 578; it cannot be removed) that denies by default: only a short list of harmless
   events passes, file events only inside the scratch directory, network events only when allowed, no imports,
   no ctypes, no gc/frame introspection, no code-object or function forging, no marshal/pickle loading. Without
   the tmpfs (not root, or the mount failed) the hook enforces the disk quota itself: a file may not be opened for
   writing, nor a directory made, once the scratch directory holds `disk_mb` or `MAX_SCRATCH_ENTRIES` entries, so
   the code can exceed the quota by at most what its files already open for writing grow to (each capped by
   RLIMIT_FSIZE).

The protocol with the server is JSON lines over two inherited pipes (never stdin/stdout). Tools are stubs that
ask the server to run the real tool and wait for its answer.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

# Modules preloaded in every worker besides the authorized ones: lazy imports of the standard library that
# authorized code commonly triggers (datetime.strptime, Counter.most_common, codecs, ...). After hardening an
# import of anything not yet loaded fails.
PRELOADED_HELPERS = (
    "_strptime",
    "bisect",
    "calendar",
    "copy",
    "encodings.ascii",
    "encodings.cp1252",
    "encodings.idna",
    "encodings.latin_1",
    "encodings.raw_unicode_escape",
    "encodings.unicode_escape",
    "encodings.utf_16",
    "encodings.utf_32",
    "encodings.utf_8_sig",
    "heapq",
    "locale",
    "numbers",
    "reprlib",
    "resource",
    "stringprep",
)

# Audit events that always pass. Everything else is denied unless handled explicitly in the hook.
_ALLOWED_EVENTS = frozenset(
    {
        "builtins.id",
        "compile",  # ast.parse, and namedtuple's generated methods
        "exec",  # namedtuple's generated methods
        "time.sleep",
        "marshal.dumps",
        "sys.excepthook",
        "sys.unraisablehook",
        "cpython._PySys_ClearAuditHooks",
    }
)
# File events whose path arguments (at these positions) must lie inside the scratch directory; any *dir_fd
# argument must be absent (None, or -1: CPython's audit events report a missing dir_fd as -1, so insisting on None
# refused every mkdir, remove and rename in the scratch directory).
_PATH_EVENTS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "open": ((0,), ()),
    "os.listdir": ((0,), ()),
    "os.scandir": ((0,), ()),
    "os.mkdir": ((0,), (2,)),
    "os.remove": ((0,), (1,)),
    "os.rmdir": ((0,), (1,)),
    "os.rename": ((0, 1), (2, 3)),
    "os.truncate": ((0,), ()),
}
_NETWORK_PREFIXES = (
    "socket.",
    "urllib.",
    "http.client.",
    "ftplib.",
    "smtplib.",
    "poplib.",
    "imaplib.",
    "nntplib.",
    "telnetlib.",
)
# Attributes that may not be set or deleted on functions and classes (code injection, class surgery).
_GUARDED_ATTRIBUTES = frozenset(
    {
        "__bases__",
        "__builtins__",
        "__class__",
        "__closure__",
        "__code__",
        "__defaults__",
        "__dict__",
        "__globals__",
        "__kwdefaults__",
        "__mro__",
    }
)
# Process-spawning (and privilege, namespace, signal) functions replaced by stubs. The audit hook denies most of
# them too, but `_posixsubprocess.fork_exec` and the signal functions raise no audit event at all: for them the
# stub is the only guard besides RLIMIT_NPROC and the wall clock.
_SPAWN_FUNCTIONS = (
    "system",
    "popen",
    "fork",
    "forkpty",
    "vfork",
    "execv",
    "execve",
    "execl",
    "execle",
    "execlp",
    "execlpe",
    "execvp",
    "execvpe",
    "spawnl",
    "spawnle",
    "spawnlp",
    "spawnlpe",
    "spawnv",
    "spawnve",
    "spawnvp",
    "spawnvpe",
    "posix_spawn",
    "posix_spawnp",
    "kill",
    "killpg",
    "setuid",
    "setgid",
    "setresuid",
    "setresgid",
    "chroot",
    "unshare",
    "setns",
)
_SIGNAL_FUNCTIONS = (
    "signal",
    "pthread_sigmask",
    "pthread_kill",
    "raise_signal",
    "siginterrupt",
    "set_wakeup_fd",
    "setitimer",
    "alarm",
    "sigwait",
    "sigwaitinfo",
    "sigtimedwait",
)
_CLONE_NEWNET = 0x40000000
_CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x8, 0x4000, 0x40000
MAX_SCRATCH_ENTRIES = 4096  # files and directories in the scratch directory (tmpfs nr_inodes, or the hook's count)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_NOBODY = 65534
_EMERGENCY_RESERVE_BYTES = 1 << 20


class SandboxViolation(PermissionError):
    """Raised by the audit hook (and the spawn stubs) for an operation the sandbox does not allow."""


class _ImportDenied(ImportError):
    pass


class _FrameAccessDenied(ValueError):
    """sys._getframe: a ValueError, which namedtuple and enum catch (they only want the caller's module name)."""


class ToolCallError(RuntimeError):
    """A tool called from the code failed in the server."""


class _Channel:
    """JSON lines over two pipes (raw fds: reading and writing them raises no audit event)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.buffer = bytearray()

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, ensure_ascii=False, default=_unencodable) + "\n").encode("utf-8", "replace")
        view = memoryview(data)
        while view:
            written = os.write(self.write_fd, view)
            view = view[written:]

    def recv(self) -> dict[str, Any]:
        while True:
            newline = self.buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self.buffer[:newline])
                del self.buffer[: newline + 1]
                message: dict[str, Any] = json.loads(line)
                return message
            chunk = os.read(self.read_fd, 1 << 16)
            if not chunk:  # the server went away
                os._exit(0)
            self.buffer += chunk


def _unencodable(value: Any) -> Any:
    raise TypeError(f"a value of type {type(value).__name__} cannot be sent")


# --- configuration, preloading and hardening ------------------------------------------------------------------


def preload(config: dict[str, Any]) -> None:
    """Import everything the code may use: nothing can be imported once the audit hook is in place."""
    import smolagents.local_python_executor  # noqa: F401 - the interpreter and everything it imports

    for name in (*PRELOADED_HELPERS, *config["authorized_imports"]):
        importlib.import_module(name)


def _isolate(network: bool, workdir: str, disk_mb: int, owner: int) -> tuple[bool, bool]:
    """Root only, best effort: a new, empty network namespace (when `network`), and a new mount namespace where the
    scratch directory is a tmpfs of `disk_mb` (nosuid, nodev, noexec) owned by `owner`. Returns what was done.
    Needs ctypes, which is unloaded afterwards."""
    network_done = quota_done = False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if network:
            network_done = bool(libc.unshare(_CLONE_NEWNET) == 0)
        # Private propagation first: mounts of a new namespace would otherwise reach the server's (systemd makes
        # "/" shared).
        if libc.unshare(_CLONE_NEWNS) == 0 and libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) == 0:
            options = f"size={disk_mb}m,nr_inodes={MAX_SCRATCH_ENTRIES},mode=0700,uid={owner},gid={owner}"
            flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
            quota_done = libc.mount(b"tmpfs", os.fsencode(workdir), b"tmpfs", flags, options.encode()) == 0
        del libc
    except (OSError, AttributeError):
        pass
    for name in [m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))]:
        del sys.modules[name]
    return network_done, quota_done


def _drop_privileges(workdir: str, uid: int, gid: int) -> bool:
    try:
        os.chown(workdir, uid, gid)
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError:
        return False
    return os.getuid() == uid


def _set_limits(config: dict[str, Any]) -> dict[str, Any]:
    import resource

    def limit(which: int, soft: int, hard: int | None = None) -> None:
        hard = soft if hard is None else hard
        try:
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError):
            # Cannot raise above the current hard limit: lower the soft limit only.
            _, current_hard = resource.getrlimit(which)
            cap = soft if current_hard == resource.RLIM_INFINITY else min(soft, current_hard)
            resource.setrlimit(which, (cap, current_hard))

    used = math.ceil(time.process_time())
    cpu = int(config["cpu_seconds"])
    limit(resource.RLIMIT_CPU, used + cpu, used + int(config["cpu_lifetime_seconds"]))
    limit(resource.RLIMIT_AS, int(config["memory_mb"]) << 20)
    limit(resource.RLIMIT_FSIZE, min(int(config["file_size_mb"]), int(config["disk_mb"])) << 20)
    limit(resource.RLIMIT_NOFILE, int(config["max_open_files"]))
    limit(resource.RLIMIT_NPROC, 0)
    limit(resource.RLIMIT_CORE, 0)
    return {
        name: list(resource.getrlimit(getattr(resource, name)))
        for name in ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE")
    }


def _denied(name: str) -> Callable[..., Any]:
    def stub(*args: Any, **kwargs: Any) -> Any:
        raise SandboxViolation(f"sandbox: {name} is not allowed")

    stub.__name__ = stub.__qualname__ = name.rsplit(".", 1)[-1]
    return stub


def _remove_dangerous_functions() -> None:
    for module_name in ("os", "posix"):
        module = sys.modules.get(module_name)
        for name in _SPAWN_FUNCTIONS:
            if module is not None and hasattr(module, name):
                setattr(module, name, _denied(f"{module_name}.{name}"))
    for module_name, names in (
        ("_posixsubprocess", ("fork_exec",)),
        ("pty", ("fork", "spawn")),
        ("subprocess", ("Popen", "run", "call", "check_call", "check_output", "getoutput", "getstatusoutput")),
        ("signal", _SIGNAL_FUNCTIONS),  # ignoring or blocking SIGXCPU would void the per-step CPU limit
        ("_signal", _SIGNAL_FUNCTIONS),
    ):
        module = sys.modules.get(module_name)
        for name in names:
            if module is not None and hasattr(module, name):
                setattr(module, name, _denied(f"{module_name}.{name}"))


def _scratch_usage(root: str) -> tuple[int, int]:
    """Bytes (allocated blocks) and entries under the scratch directory; links are not followed."""
    used = entries = 0
    pending = [root]
    while pending:
        with os.scandir(pending.pop()) as listing:
            for entry in listing:
                entries += 1
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                used += max(info.st_blocks * 512, info.st_size if entry.is_file(follow_symlinks=False) else 0)
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
    return used, entries


def _make_audit_hook(
    workdir: str, allow_network: bool, cpu_seconds: int, cpu_hard: int, disk_quota_bytes: int | None
) -> Callable[[str, tuple[Any, ...]], None]:
    """The hook closes over immutable values only and is reachable from no module global. `disk_quota_bytes` (None
    when a tmpfs enforces the quota) is checked before a file is opened for writing or a directory made."""
    import pathlib
    import resource

    root = os.path.realpath(workdir)
    path_types = (str, bytes, pathlib.PosixPath, pathlib.PurePosixPath)
    rlimit_cpu = resource.RLIMIT_CPU
    getrlimit = resource.getrlimit
    process_time = time.process_time
    realpath = os.path.realpath
    join = os.path.join
    fsdecode = os.fsdecode
    sep = os.sep
    allowed = _ALLOWED_EVENTS
    path_events = _PATH_EVENTS
    guarded = _GUARDED_ATTRIBUTES
    network_prefixes = _NETWORK_PREFIXES
    write_flags = _WRITE_FLAGS
    usage = _scratch_usage
    max_entries = MAX_SCRATCH_ENTRIES

    def writes(event: str, args: tuple[Any, ...]) -> bool:
        if event == "os.mkdir":
            return True
        mode, flags = (args[1], args[2]) if len(args) > 2 else (None, None)
        if type(mode) is str:
            return any(letter in mode for letter in "wax+")
        return type(flags) is not int or bool(flags & write_flags)

    def check_quota(event: str, args: tuple[Any, ...]) -> None:
        if disk_quota_bytes is None or not writes(event, args):
            return
        used, entries = usage(root)
        if used >= disk_quota_bytes or entries >= max_entries:
            raise SandboxViolation(
                f"sandbox: the scratch directory's disk quota ({disk_quota_bytes >> 20} MB, {max_entries} files) "
                "is used up"
            )

    def inside(path: Any) -> bool:
        # Exact types only: a str subclass or a custom os.PathLike could answer differently when open() asks.
        if type(path) not in path_types:
            return False
        text = fsdecode(path) if type(path) is bytes else str(path)
        if "\x00" in text:
            return False
        resolved = realpath(join(root, text))
        return resolved == root or resolved.startswith(root + sep)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in allowed:
            return
        spec = path_events.get(event)
        if spec is not None:
            paths, dir_fds = spec
            if all(inside(args[i]) for i in paths if i < len(args)) and all(
                args[i] is None or (type(args[i]) is int and args[i] == -1) for i in dir_fds if i < len(args)
            ):
                if event in ("open", "os.mkdir"):
                    check_quota(event, args)
                return
            raise SandboxViolation(f"sandbox: {event} outside the scratch directory is not allowed")
        if event == "import":
            raise _ImportDenied(f"sandbox: importing {args[0]!r} is not allowed")
        if event == "sys._getframe":
            raise _FrameAccessDenied("sandbox: frame access is not allowed")
        # Arguments the code chose are trusted only when of an exact built-in type: a subclass could compare,
        # hash or iterate differently here than when CPython uses them after the hook.
        if event in ("object.__setattr__", "object.__delattr__"):
            name = args[1] if len(args) > 1 else None
            if type(name) is str and name not in guarded:
                return
            raise SandboxViolation(f"sandbox: changing {name if type(name) is str else '?'} is not allowed")
        if event == "resource.setrlimit" and len(args) == 2 and args[0] == rlimit_cpu:
            limits = args[1]
            if type(limits) is tuple and len(limits) == 2 and all(type(value) is int for value in limits):
                soft, hard = limits
                if hard == getrlimit(rlimit_cpu)[1] == cpu_hard and soft <= process_time() + cpu_seconds + 1:
                    return
        if allow_network and event.startswith(network_prefixes):
            return
        raise SandboxViolation(f"sandbox: {event} is not allowed")

    return hook


def harden(config: dict[str, Any]) -> dict[str, Any]:
    """Lock the process down (see the module docstring). Returns what was achieved, for the server's records."""
    workdir = config["workdir"]
    os.environ.clear()
    is_root = os.geteuid() == 0
    network_isolated = disk_quota_mounted = False
    if is_root:
        owner = _NOBODY if config["drop_privileges"] else 0
        network_isolated, disk_quota_mounted = _isolate(
            not config["allow_network"], workdir, int(config["disk_mb"]), owner
        )
    os.chdir(workdir)  # after the mount: into the tmpfs
    dropped = False
    if is_root and config["drop_privileges"]:
        dropped = _drop_privileges(workdir, _NOBODY, _NOBODY)
    limits = _set_limits(config)
    _remove_dangerous_functions()
    quota_bytes = None if disk_quota_mounted else int(config["disk_mb"]) << 20
    sys.addaudithook(
        _make_audit_hook(
            workdir,
            bool(config["allow_network"]),
            int(config["cpu_seconds"]),
            limits["RLIMIT_CPU"][1],
            quota_bytes,
        )
    )
    return {
        "pid": os.getpid(),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "privileges_dropped": dropped,
        "network_isolated": network_isolated,
        "disk_quota": "tmpfs" if disk_quota_mounted else "audit_hook",
        "limits": limits,
        "audit_hook": True,
    }


# --- running code -----------------------------------------------------------------------------------------------


def _capped_print_container(max_chars: int) -> type:
    from smolagents.local_python_executor import PrintContainer

    class CappedPrintContainer(PrintContainer):  # type: ignore[misc]
        """smolagents' print buffer, keeping at most `max_chars` characters."""

        def __init__(self) -> None:
            super().__init__()
            self.dropped = 0

        def _add(self, text: str) -> CappedPrintContainer:
            room = max_chars - len(self.value)
            if room >= len(text):
                self.value += text
            else:
                if room > 0:
                    self.value += text[:room]
                self.dropped += len(text) - max(room, 0)
            return self

        def append(self, text: str) -> CappedPrintContainer:
            return self._add(text)

        def __iadd__(self, other: object) -> CappedPrintContainer:
            return self._add(str(other))

        def __str__(self) -> str:
            if self.dropped:
                return f"{self.value}\n[output truncated: {self.dropped} more characters]"
            return str(self.value)

    return CappedPrintContainer


def _encode_output(value: Any, max_chars: int) -> dict[str, Any]:
    import reprlib

    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            text = None
        if text is not None and len(text) <= max_chars:
            return {"json": value}
    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = shortener.maxlong = max_chars
    shortener.maxlist = shortener.maxtuple = shortener.maxdict = shortener.maxset = 1000
    try:
        text = shortener.repr(value)
    except Exception as exc:
        text = f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
    if len(text) > max_chars:
        text = text[:max_chars] + f"... [truncated, {len(text) - max_chars} more characters]"
    return {"repr": text}


def _is_memory_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, MemoryError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return "MemoryError" in str(exc)[:10_000]


def _set_step_cpu_limit(cpu_seconds: int) -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    soft = math.ceil(time.process_time()) + cpu_seconds
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def serve(config: dict[str, Any], channel: _Channel, info: dict[str, Any]) -> None:
    from smolagents import local_python_executor as interpreter

    max_chars = int(config["max_output_chars"])
    cpu_seconds = int(config["cpu_seconds"])
    authorized = list(config["authorized_imports"])
    interpreter.PrintContainer = _capped_print_container(max_chars)
    state: dict[str, Any] = {"__name__": "__main__"}
    custom_tools: dict[str, Any] = {}
    static_tools: dict[str, Any] = dict(interpreter.BASE_PYTHON_TOOLS)
    reserve: list[bytearray] = [bytearray(_EMERGENCY_RESERVE_BYTES)]

    def remote(name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                request = {"op": "call", "tool": name, "args": list(args), "kwargs": kwargs}
                json.dumps(request, default=_unencodable)
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"the arguments of {name}() must be JSON values (str, numbers, lists, dicts): {exc}"
                ) from None
            channel.send(request)
            reply = channel.recv()
            if reply.get("ok"):
                return reply.get("value")
            raise ToolCallError(str(reply.get("error")))

        call.__name__ = call.__qualname__ = name
        return call

    channel.send({"op": "ready", "info": info})
    while True:
        message = channel.recv()
        op = message.get("op")
        if op == "tools":
            tools = {name: remote(name) for name in message["names"]}
            static_tools = {**tools, **interpreter.BASE_PYTHON_TOOLS}
            channel.send({"op": "ok"})
        elif op == "vars":
            state.update(message["vars"])
            channel.send({"op": "ok"})
        elif op == "exec":
            _set_step_cpu_limit(cpu_seconds)
            try:
                output, is_final = interpreter.evaluate_python_code(
                    message["code"],
                    static_tools=static_tools,
                    custom_tools=custom_tools,
                    state=state,
                    authorized_imports=authorized,
                    max_print_outputs_length=max_chars + 200,
                    timeout_seconds=None,  # the server enforces the wall clock (by killing this process)
                )
                reply: dict[str, Any] = {
                    "op": "done",
                    "output": _encode_output(output, max_chars),
                    "final": bool(is_final),
                    "logs": str(state.get("_print_outputs", "")),
                }
            except BaseException as exc:
                reserve.clear()  # room to report a MemoryError
                kind = "memory" if _is_memory_error(exc) else "error"
                try:
                    text = str(exc)
                except BaseException:
                    text = f"{type(exc).__name__} (unprintable)"
                if "No space left on device" in text[-10_000:] or "File too large" in text[-10_000:]:
                    text += (
                        f"\nThe scratch directory holds at most {config['disk_mb']} MB in all and "
                        f"{min(int(config['file_size_mb']), int(config['disk_mb']))} MB per file; remove files to "
                        "make room."
                    )
                reply = {
                    "op": "error",
                    "kind": kind,
                    "error": text[: max_chars * 2],
                    "logs": str(state.get("_print_outputs", "")),
                }
            channel.send(reply)
            if not reserve:
                reserve.append(bytearray(_EMERGENCY_RESERVE_BYTES))
        else:
            channel.send({"op": "error", "kind": "protocol", "error": f"unknown request {op!r}", "logs": ""})


def main(argv: list[str]) -> None:
    config: dict[str, Any] = json.loads(argv[1])
    channel = _Channel(int(config["read_fd"]), int(config["write_fd"]))
    preload(config)
    info = harden(config)
    serve(config, channel, info)


if __name__ == "__main__":
    main(sys.argv)
