"""Starts a local MCP server under resource limits: `python launcher.py MEMORY_MB CPU_SECONDS OPEN_FILES PID_FILE
-- COMMAND [ARGS...]`.

It sets the limits (address space, CPU time, open files; no core files), which the command inherits, starts the
command on the same standard input and output (the MCP client speaks to it directly), writes the command's process
id to PID_FILE, passes on the signals it gets, and when the command ends writes `EXIT_MARKER <code>` to standard
error (captured in the server's log) and ends with the same code. The command dies with it (`PR_SET_PDEATHSIG`).
Standard library only: it starts before anything else is imported.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import sys

EXIT_MARKER = "nexent launcher: the server exited with code"
_PR_SET_PDEATHSIG = 1


def _limit(memory_mb: int, cpu_seconds: int, open_files: int) -> None:
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str]) -> int:
    try:
        split = argv.index("--")
        memory_mb, cpu_seconds, open_files, pid_file = argv[:split]
        command = argv[split + 1 :]
    except ValueError:
        print("usage: launcher MEMORY_MB CPU_SECONDS OPEN_FILES PID_FILE -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    executable = shutil.which(command[0]) if command else None
    if executable is None:
        print(f"nexent launcher: command not found: {command[0] if command else '(none)'}", file=sys.stderr)
        print(f"{EXIT_MARKER} 127", file=sys.stderr, flush=True)
        return 127
    _limit(int(memory_mb), int(cpu_seconds), int(open_files))
    child = os.fork()
    if child == 0:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            os.execv(executable, command)  # noqa: S606 - no shell: the command line was split into words
        except OSError as exc:
            print(f"nexent launcher: cannot run {command[0]}: {exc.strerror}", file=sys.stderr, flush=True)
        os._exit(126)
    with open(pid_file, "w") as handle:
        handle.write(str(child))
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, lambda received, _frame: os.kill(child, received))
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    print(f"{EXIT_MARKER} {code}", file=sys.stderr, flush=True)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
