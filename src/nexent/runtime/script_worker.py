"""The launcher of a skill script in the sandbox's script mode (see `sandbox.run_script`): run as root by the
server (`python -I -B script_worker.py CONFIG`), it builds the script's whole world and then runs the script in it.

1. New namespaces: mount, IPC, UTS, and network (an empty one: no interface but a down loopback) unless the script
   may use the network; a new PID namespace for the script, whose first process it is: when it ends, the kernel
   kills every process it left behind.
2. A new root on a small tmpfs: the system's `/usr` (and `/etc`) bound read-only, the symlinks `/bin`, `/lib`, ...
   as the host has them, `/dev` with null, zero, random and urandom only, the skill's files at `/skill`
   (read-only, nosuid, nodev) and a tmpfs of `disk_mb` at `/scratch` (the working directory, HOME and TMPDIR).
   Nothing else of the server's file system exists there: no data directory, database, keys or sources.
3. In the script's process: `chroot` into that root, drop to uid/gid 65534 with no groups, limits (RLIMIT_CPU,
   RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_NPROC, no core dumps), an environment of PATH, HOME, TMPDIR and
   LANG only, then exec `/usr/bin/python3 -I -B` or `/bin/sh` on the script.

Any step that fails stops the launcher with status 125 and a line on stderr: the script never runs half-isolated.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = (
    0x1,
    0x2,
    0x4,
    0x20,
    0x1000,
    0x4000,
    0x40000,
)
_NOBODY = 65534
_SYSTEM_DIRS = ("usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
_DEVICES = ("null", "zero", "random", "urandom")
SETUP_FAILED = 125


class _SetupFailed(Exception):
    pass


_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        raise _SetupFailed(f"{what}: {os.strerror(ctypes.get_errno())}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _bind_read_only(source: str, target: str) -> None:
    _mount(source, target, None, _MS_BIND | _MS_REC)
    _mount(None, target, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)


def build_root(config: dict[str, object]) -> str:
    """The script's file system (step 2), in the launcher's own mount namespace."""
    root = str(config["root"])
    _mount("tmpfs", root, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m,mode=0755")
    for name in _SYSTEM_DIRS:
        host = f"/{name}"
        inside = os.path.join(root, name)
        if os.path.islink(host):
            os.symlink(os.readlink(host), inside)
        elif os.path.isdir(host):
            os.mkdir(inside)
            _bind_read_only(host, inside)
    os.mkdir(os.path.join(root, "dev"), 0o755)
    for device in _DEVICES:
        inside = os.path.join(root, "dev", device)
        open(inside, "w").close()
        _mount(f"/dev/{device}", inside, None, _MS_BIND)
    skill = os.path.join(root, "skill")
    os.mkdir(skill)
    _bind_read_only(str(config["skill"]), skill)
    scratch = os.path.join(root, "scratch")
    os.mkdir(scratch)
    options = f"size={int(str(config['disk_mb']))}m,nr_inodes=4096,mode=0700,uid={_NOBODY},gid={_NOBODY}"
    _mount("tmpfs", scratch, "tmpfs", _MS_NOSUID | _MS_NODEV, options)
    _mount(None, root, None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
    return root


def _limit(which: int, value: int) -> None:
    resource.setrlimit(which, (value, value))


def enter(root: str, config: dict[str, object]) -> None:
    """Step 3, in the script's process: the new root, the unprivileged user, the limits."""
    _check(_libc.chroot(root.encode()), "chroot")
    os.chdir("/scratch")
    os.setgroups([])
    os.setresgid(_NOBODY, _NOBODY, _NOBODY)
    os.setresuid(_NOBODY, _NOBODY, _NOBODY)
    if os.getuid() != _NOBODY or os.geteuid() != _NOBODY:
        raise _SetupFailed("could not drop privileges")
    _limit(resource.RLIMIT_CPU, int(str(config["cpu_seconds"])))
    _limit(resource.RLIMIT_AS, int(str(config["memory_mb"])) << 20)
    _limit(resource.RLIMIT_FSIZE, int(str(config["file_size_mb"])) << 20)
    _limit(resource.RLIMIT_NOFILE, 64)
    _limit(resource.RLIMIT_NPROC, int(str(config["max_processes"])))
    _limit(resource.RLIMIT_CORE, 0)


def main() -> None:
    config = json.loads(sys.argv[1])
    os.environ.clear()
    try:
        if os.geteuid() != 0:
            raise _SetupFailed("the launcher must run as root")
        flags = _CLONE_NEWNS | _CLONE_NEWIPC | _CLONE_NEWUTS | _CLONE_NEWPID
        if not config["allow_network"]:
            flags |= _CLONE_NEWNET
        _check(_libc.unshare(flags), "unshare")
        _mount("none", "/", None, _MS_REC | _MS_PRIVATE)
        root = build_root(config)
    except (_SetupFailed, OSError) as exc:
        print(f"sandbox setup failed: {exc}", file=sys.stderr)
        os._exit(SETUP_FAILED)
    interpreter = ["/usr/bin/python3", "-I", "-B"] if str(config["path"]).endswith(".py") else ["/bin/sh"]
    argv = [*interpreter, f"/skill/{config['path']}", *[str(a) for a in config["args"]]]
    env = {"PATH": "/usr/bin:/bin", "HOME": "/scratch", "TMPDIR": "/scratch", "LANG": "C.UTF-8"}
    pid = os.fork()
    if pid == 0:  # the first process of the new PID namespace
        try:
            enter(root, config)
            os.execve(argv[0], argv, env)  # noqa: S606 - the interpreter, on the skill's script
        except (_SetupFailed, OSError) as exc:
            print(f"sandbox setup failed: {exc}", file=sys.stderr)
        os._exit(SETUP_FAILED)
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


if __name__ == "__main__":
    main()
