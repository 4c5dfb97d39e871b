"""The image's HEALTHCHECK: asks the process the container runs whether it is alive.

`nexent serve [--service S] [--port P]`: GET /healthz on its port. `nexent worker`: its metrics port answers
(NEXENT_WORKER_METRICS_PORT, when set to a port). Anything else (`migrate`, operator commands): healthy while it
runs. NEXENT_HEALTH_URL overrides all of this. Standard library only."""

from __future__ import annotations

import os
import socket
import sys
import urllib.request

DEFAULT_PORTS = {"config": 5010, "mcp": 5011, "data-process": 5012, "northbound": 5013, "runtime": 5014}


def command_line() -> list[str]:
    """The arguments after `nexent` of the container's main process (under tini, its child)."""
    for pid in ("1", *sorted(os.listdir("/proc"), key=lambda name: (len(name), name))):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                args = [arg.decode() for arg in file.read().split(b"\0") if arg]
        except OSError:
            continue
        for index, arg in enumerate(args):
            if arg.endswith("/nexent") or arg == "nexent":
                return args[index + 1 :]
    return []


def option(args: list[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def main() -> int:
    url = os.environ.get("NEXENT_HEALTH_URL")
    args = command_line()
    if url is None and args[:1] == ["serve"]:
        service = option(args, "--service")
        port = option(args, "--port") or os.environ.get("NEXENT_PORT") or str(DEFAULT_PORTS.get(service or "", 5010))
        url = f"http://127.0.0.1:{port}/healthz"
    if url is None and args[:1] == ["worker"]:
        port = int(os.environ.get("NEXENT_WORKER_METRICS_PORT", "5019"))
        if port:
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                return 0
        return 0
    if url is None:
        return 0
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (a local URL of this container)
        return 0 if response.status == 200 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        sys.exit(1)
