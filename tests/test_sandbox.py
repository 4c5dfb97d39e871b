"""The code sandbox (`nexent.runtime.sandbox`): nothing is mocked, every test runs the real worker process.

A canary secret is put in the server's (this process's) environment and in a file outside the sandbox; no output
may ever contain it. The escape attempts come in three batteries:

- through the executor with its default authorized imports: what a model would write, stopped (mostly) by the
  AST interpreter, and the interpreter bypasses (string.Formatter.get_field) stopped by the worker's own layers;
- through the executor with the dangerous modules authorized (os, subprocess, socket, ctypes, ...): the
  interpreter lets them through, so this checks the worker's audit hook, stubs and kernel limits on their own;
- raw Python in a hardened worker process, without the interpreter at all.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from smolagents.default_tools import FinalAnswerTool
from smolagents.tools import Tool

from nexent.runtime.sandbox import (
    DEFAULT_AUTHORIZED_IMPORTS,
    WORKER_SCRIPT,
    SandboxError,
    SandboxExecutor,
    run_script,
)
from nexent.runtime.smol_model import RunCancelled

CANARY = f"canary-{uuid.uuid4().hex}"
PWNED = f"/tmp/nexent-sandbox-pwned-{uuid.uuid4().hex}"  # world-writable place: only the sandbox can stop it
IS_ROOT = os.geteuid() == 0
DANGEROUS_IMPORTS = [
    "builtins",
    "ctypes",
    "gc",
    "http.client",
    "importlib",
    "inspect",
    "io",
    "marshal",
    "mmap",
    "os",
    "pathlib",
    "pickle",
    "pty",
    "resource",
    "shutil",
    "signal",
    "socket",
    "subprocess",
    "sys",
    "threading",
    "types",
    "urllib.request",
]


class LookupTool(Tool):  # type: ignore[misc]
    """A real tool: it records where it ran, so the tests can see it ran here, in the agent's thread."""

    name = "lookup"
    description = "Looks a key up."
    inputs = {
        "key": {"type": "string", "description": "the key"},
        "upper": {"type": "boolean", "description": "upper-case the answer", "nullable": True},
    }
    output_type = "string"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, int, str]] = []

    def forward(self, key: str, upper: bool | None = None) -> str:
        self.calls.append((os.getpid(), threading.get_ident(), key))
        if key == "fail":
            raise ValueError("no such key")
        value = f"value-of-{key}"
        return value.upper() if upper else value


class _Listener:
    """A TCP listener on 127.0.0.1 that the code must not reach (unless the network is allowed)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])

    def accepted(self, wait: float = 0.2) -> bool:
        self.sock.settimeout(wait)
        try:
            conn, _ = self.sock.accept()
        except TimeoutError:
            return False
        conn.close()
        return True


@pytest.fixture(scope="module")
def canary_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEXENT_CANARY_SECRET", CANARY)
        path = tmp_path_factory.mktemp("secrets") / "canary.txt"
        path.write_text(CANARY)
        path.chmod(0o644)
        yield path


@pytest.fixture(scope="module")
def listener() -> Iterator[_Listener]:
    server = _Listener()
    yield server
    server.sock.close()


def _executor(**options: Any) -> SandboxExecutor:
    executor = SandboxExecutor(**{"timeout_seconds": 5, "cpu_seconds": 3, "memory_mb": 384, **options})
    executor.send_tools({"final_answer": FinalAnswerTool(), "lookup": LookupTool()})
    return executor


@pytest.fixture(scope="module")
def executor(canary_file: Path) -> Iterator[SandboxExecutor]:
    executor = _executor(max_output_chars=5000)
    yield executor
    executor.cleanup()


@pytest.fixture(scope="module")
def lenient(canary_file: Path) -> Iterator[SandboxExecutor]:
    """An executor whose interpreter lets the dangerous modules be imported: only the worker's layers are left."""
    executor = _executor(authorized_imports=[*DEFAULT_AUTHORIZED_IMPORTS, *DANGEROUS_IMPORTS])
    yield executor
    executor.cleanup()


def _assert_parent_unaffected(canary_file: Path, cwd: str) -> None:
    assert os.environ.get("NEXENT_CANARY_SECRET") == CANARY
    assert canary_file.read_text() == CANARY
    assert os.getcwd() == cwd
    assert not os.path.exists(PWNED)


def attempt(executor: SandboxExecutor, code: str, canary_file: Path) -> str:
    """Run an escape attempt: it must fail with SandboxError, leak nothing, and leave the executor usable."""
    cwd = os.getcwd()
    with pytest.raises(SandboxError) as failure:
        executor(code)
    message = str(failure.value)
    assert CANARY not in message
    assert CANARY not in str(executor.state.get("_print_outputs"))
    assert "root:x:0:0" not in message  # no /etc/passwd content
    _assert_parent_unaffected(canary_file, cwd)
    assert executor("6 * 7").output == 42  # still (or again) working
    return message


# --- normal code ------------------------------------------------------------------------------------------------


def test_runs_code_captures_prints_and_keeps_variables(executor: SandboxExecutor) -> None:
    result = executor("import math\nx = math.sqrt(16)\nprint('x is', x)\nx * 2")
    assert (result.output, result.logs, result.is_final_answer) == (8.0, "x is 4.0\n", False)
    assert executor("x + 1").output == 5.0
    assert executor("def double(n):\n    return 2 * n\ndouble(21)").output == 42
    assert executor("double(x)").output == 8.0


def test_final_answer(executor: SandboxExecutor) -> None:
    result = executor("answer = {'total': 3, 'items': ['a', 'b']}\nfinal_answer(answer)")
    assert result.is_final_answer
    assert result.output == {"total": 3, "items": ["a", "b"]}


def test_tool_stub_runs_the_real_tool_in_the_parent(executor: SandboxExecutor) -> None:
    tool = executor.tools["lookup"]
    assert isinstance(tool, LookupTool)
    tool.calls.clear()
    result = executor("a = lookup('alpha')\nb = lookup(key='beta', upper=True)\nprint(a, b)\n[a, b]")
    assert result.output == ["value-of-alpha", "VALUE-OF-BETA"]
    assert result.logs == "value-of-alpha VALUE-OF-BETA\n"
    assert tool.calls == [(os.getpid(), threading.get_ident(), "alpha"), (os.getpid(), threading.get_ident(), "beta")]
    assert executor.worker_pid not in (None, os.getpid())


def test_tool_errors_reach_the_code(executor: SandboxExecutor) -> None:
    code = "try:\n    lookup('fail')\nexcept Exception as exc:\n    caught = str(exc)\ncaught"
    assert executor(code).output == "ValueError: no such key"
    with pytest.raises(SandboxError, match="no such key"):
        executor("lookup('fail')")
    with pytest.raises(SandboxError, match="JSON values"):
        executor("lookup({1, 2})")


def test_common_library_code_works(executor: SandboxExecutor) -> None:
    code = """
import collections, csv, datetime, decimal, enum, fractions, json, re, statistics, string, textwrap
from collections import Counter, namedtuple
Point = namedtuple('Point', 'x y')
Color = enum.Enum('Color', 'RED GREEN')
rows = list(csv.reader(['a,b', '1,2']))
summary = {
    'point': Point(1, 2).x,
    'common': Counter('abracadabra').most_common(1)[0][0],
    'date': datetime.datetime.strptime('2024-02-29', '%Y-%m-%d').strftime('%d/%m'),
    'decimal': str(decimal.Decimal('0.1') + decimal.Decimal('0.2')),
    'fraction': str(fractions.Fraction(1, 3) * 3),
    'json': json.loads(json.dumps({'k': [1, 2]})),
    'regex': re.findall(r'\\d+', 'a1b22'),
    'mean': statistics.mean([1, 2, 3]),
    'letters': string.ascii_lowercase[:3],
    'wrapped': textwrap.wrap('one two three', 7),
    'csv': rows,
    'color': Color.GREEN.value,
    'utf16': len('h\u00e9'.encode('utf-16')),
}
summary
"""
    assert executor(code).output == {
        "point": 1,
        "common": "a",
        "date": "29/02",
        "decimal": "0.3",
        "fraction": "1",
        "json": {"k": [1, 2]},
        "regex": ["1", "22"],
        "mean": 2,
        "letters": "abc",
        "wrapped": ["one two", "three"],
        "csv": [["a", "b"], ["1", "2"]],
        "color": 2,
        "utf16": 6,
    }


def test_variables_cross_as_json_and_survive_a_restart(canary_file: Path) -> None:
    executor = _executor(timeout_seconds=1.5)
    try:
        executor.send_variables({"limit": 3, "names": ["a", "b"], "handle": object(), "_private": 1})
        assert executor("[limit, names]").output == [3, ["a", "b"]]
        with pytest.raises(SandboxError, match="handle"):
            executor("handle")
        executor("mine = 1")
        with pytest.raises(SandboxError, match="time limit"):
            executor("import time\ntime.sleep(20)")
        assert executor("limit").output == 3  # the agent's variables are sent again to the new worker
        with pytest.raises(SandboxError, match="mine"):
            executor("mine")  # the code's own variables are gone, as the error said
    finally:
        executor.cleanup()


def test_worker_process_is_isolated(executor: SandboxExecutor) -> None:
    executor("0")
    pid = executor.worker_pid
    assert pid is not None
    info = executor.worker_info
    assert info["audit_hook"] is True
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert CANARY.encode() not in environ
    assert not [v for v in environ.split(b"\0") if v and not v.startswith((b"LC_CTYPE=", b"PYTHON"))]
    assert os.getpgid(pid) == pid  # its own process group, killed as a whole
    cwd = os.readlink(f"/proc/{pid}/cwd")
    assert Path(cwd).name.startswith("nexent-sandbox-")
    assert info["limits"]["RLIMIT_AS"][0] == 384 << 20
    assert info["limits"]["RLIMIT_NPROC"] == [0, 0]
    open_fds = os.listdir(f"/proc/{pid}/fd")
    assert len(open_fds) <= 6  # stdin, stdout, stderr, two pipes (and maybe one more): no server sockets
    if IS_ROOT:
        assert info["uid"] == info["gid"] == 65534
        assert info["privileges_dropped"] is True
        status = Path(f"/proc/{pid}/status").read_text()
        assert "Uid:\t65534\t65534\t65534\t65534" in status


def test_cleanup_kills_the_worker_and_removes_its_directory(canary_file: Path) -> None:
    executor = _executor()
    executor("open_files = 1")
    pid = executor.worker_pid
    assert pid is not None
    cwd = os.readlink(f"/proc/{pid}/cwd")
    executor.cleanup()
    assert executor.worker_pid is None
    assert not os.path.exists(cwd)
    assert not os.path.exists(f"/proc/{pid}") or "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    assert executor("2 + 2").output == 4  # starts a new one on demand
    executor.cleanup()


def test_cancel_kills_running_code(canary_file: Path) -> None:
    cancel = threading.Event()
    executor = _executor(cancel=cancel, timeout_seconds=30)
    try:
        executor("0")
        pid = executor.worker_pid
        timer = threading.Timer(0.5, cancel.set)
        timer.start()
        started = time.monotonic()
        with pytest.raises(RunCancelled):
            executor("import time\ntime.sleep(20)")
        assert time.monotonic() - started < 15  # stopped, not slept out (with room for a loaded machine)
        assert executor.worker_pid is None
        assert pid is not None and not Path(f"/proc/{pid}/cmdline").exists()
        with pytest.raises(RunCancelled):
            executor("1")
        cancel.clear()
        assert executor("1").output == 1
    finally:
        executor.cleanup()


# --- battery 1: what a model would write, default authorized imports ------------------------------------------

ESCAPES: dict[str, str] = {
    "os_environ": "import os\nos.environ",
    "os_getenv": "import os\nos.getenv('NEXENT_CANARY_SECRET')",
    "proc_self_environ": "open('/proc/self/environ').read()",
    "etc_passwd": "open('/etc/passwd').read()",
    "canary_file_absolute": "open('{canary}').read()",
    "path_traversal": "open('../../../../../../etc/passwd').read()",
    "write_file": "f = open('{pwned}', 'w')\nf.write('x')",
    "subprocess_run": "import subprocess\nsubprocess.run(['touch', '{pwned}'])",
    "os_system": "import os\nos.system('touch {pwned}')",
    "os_popen": "import os\nos.popen('cat /etc/passwd').read()",
    "os_fork": "import os\nos.fork()",
    "os_execv": "import os\nos.execv('/bin/sh', ['sh', '-c', 'touch {pwned}'])",
    "pty_spawn": "import pty\npty.spawn('/bin/sh')",
    "fork_bomb": "import os\nwhile True:\n    os.fork()",
    "multiprocessing": "import multiprocessing\nmultiprocessing.Process(target=print).start()",
    "socket_connect": "import socket\nsocket.create_connection(('127.0.0.1', {port}))",
    "urllib_urlopen": "from urllib.request import urlopen\nurlopen('http://127.0.0.1:{port}/').read()",
    "http_client": "from http.client import HTTPConnection\nHTTPConnection('127.0.0.1', {port}).request('GET', '/')",
    "dunder_import": "__import__('os').system('touch {pwned}')",
    "subclasses": "().__class__.__bases__[0].__subclasses__()",
    "lambda_globals": "(lambda: 0).__globals__",
    "tool_globals": "final_answer.__globals__",
    "print_self": "print.__self__",
    "builtins_subscript": "__builtins__['eval']('1')",
    "getattr_builtins_exec": "getattr(__builtins__, 'exec')('import os')",
    "getattr_dunder": "getattr(lookup, '__glo' + 'bals__')",
    "eval": "eval('1 + 1')",
    "exec": "exec('import os')",
    "compile": "compile('import os', 'x', 'exec')",
    "globals": "globals()",
    "vars": "vars()",
    "locals": "locals()",
    "type_mro_subclasses": "base = type(1).mro()[-1]\ngetattr(base, '__subcl' + 'asses__')()",
    "type_new_class_dunder": "C = type('C', (), {{}})\nC.__init__.__globals__",
    "ctypes": "import ctypes\nctypes.CDLL(None)",
    "importlib": "import importlib\nimportlib.import_module('os')",
    "sys_modules": "import sys\nsys.modules['os']",
    "builtins_open": "import builtins\nbuiltins.open('/etc/passwd').read()",
    "pickle_loads": "import pickle\npickle.loads(b\"cos\\nsystem\\n(S'touch {pwned}'\\ntR.\")",
    "marshal_loads": "import marshal\nmarshal.loads(b'\\xe3' + b'\\x00' * 40)",
    "io_open": "import io\nio.open('/etc/passwd').read()",
    "pathlib_read": "import pathlib\npathlib.Path('/etc/passwd').read_text()",
    "shutil_copy": "import shutil\nshutil.copy('{canary}', 'stolen.txt')",
    "signal": "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)",
    "resource": "import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))",
    "gc_objects": "import gc\ngc.get_objects()",
    "inspect_frames": "import inspect\ninspect.currentframe().f_back.f_globals",
    "threading": "import threading\nthreading.Thread(target=print).start()",
    # Bypasses of the AST interpreter: string.Formatter.get_field reads dunder attributes in C. What they reach
    # must still be stopped by the worker's layers.
    "formatter_builtins_open": (
        "import string\n"
        "opener = string.Formatter().get_field('0.__globals__[__builtins__][open]', [final_answer], {{}})[0]\n"
        "list(map(opener, ['/etc/passwd']))"
    ),
    "formatter_os_system": (
        "import string\n"
        "system = string.Formatter().get_field('0.__globals__[inspect].os.system', [final_answer], {{}})[0]\n"
        "system('touch {pwned}')"
    ),
    "formatter_fork_exec": (
        "import string\n"
        "path = '0.__globals__[inspect].sys.modules[_posixsubprocess].fork_exec'\n"
        "string.Formatter().get_field(path, [final_answer], {{}})[0]()"
    ),
    "formatter_popen_class": (
        "import string, functools\n"
        "subclasses = string.Formatter().get_field('0.__class__.__base__.__subclasses__', [1], {{}})[0]\n"
        "popen = [c for c in functools.partial(subclasses)() if 'subprocess.Popen' in str(c)][0]\n"
        "popen(['touch', '{pwned}'])"
    ),
    "formatter_traceback_frame": (
        "import string\n"
        "try:\n    1 / 0\nexcept Exception as exc:\n"
        "    frame = string.Formatter().get_field('0.__traceback__.tb_frame', [exc], {{}})[0]\n"
        "frame"
    ),
    "formatter_sys_module": (
        "import string\nstring.Formatter().get_field('0.__globals__[inspect].sys', [lookup], {{}})[0]"
    ),
    "recursion_bomb": "def f(n):\n    return f(n + 1)\nf(0)",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_escape_attempt_fails_safely(
    name: str, executor: SandboxExecutor, canary_file: Path, listener: _Listener
) -> None:
    code = ESCAPES[name].format(canary=canary_file, pwned=PWNED, port=listener.port)
    attempt(executor, code, canary_file)
    assert not listener.accepted(0.01)


def test_escape_battery_is_large_enough() -> None:
    assert len(ESCAPES) >= 30
    assert len(LENIENT_ESCAPES) >= 30
    assert len(RAW_ATTEMPTS) >= 30


def test_reads_that_succeed_leak_nothing(executor: SandboxExecutor, lenient: SandboxExecutor) -> None:
    # str.format reads dunder attributes too, but only yields text; the worker holds no secret to show.
    text = executor("'{0.__globals__}'.format(final_answer)").output
    assert isinstance(text, str) and "smolagents" in text and CANARY not in text
    text = executor("'{0.__globals__}'.format(lookup)").output
    assert CANARY not in text
    assert lenient("import os\ndict(os.environ)").output == {}
    # an audit hook cannot be added (the worker's hook vetoes it; CPython then drops the new hook silently)
    code = (
        "import sys, marshal\nseen = []\nsys.addaudithook(lambda event, args: seen.append(event))\n"
        "marshal.dumps(1)\nlen(seen)"
    )
    assert lenient(code).output == 0
    assert lenient("import os\nos.getenv('NEXENT_CANARY_SECRET')").output is None


# --- battery 2: dangerous modules authorized, only the worker's layers are left ----------------------------------

# name -> (code, what the error must contain)
LENIENT_ESCAPES: dict[str, tuple[str, str]] = {
    "os_system": ("import os\nos.system('touch {pwned}')", "sandbox: os.system"),
    "os_popen": ("import os\nos.popen('id').read()", "sandbox: os.popen"),
    "os_fork": ("import os\nos.fork()", "sandbox: os.fork"),
    "fork_bomb": ("import os\nwhile True:\n    os.fork()", "sandbox: os.fork"),
    "os_execv": ("import os\nos.execv('/bin/sh', ['sh', '-c', 'touch {pwned}'])", "sandbox: os.execv"),
    "os_posix_spawn": ("import os\nos.posix_spawn('/bin/touch', ['touch', '{pwned}'], {{}})", "sandbox: os.posix"),
    "os_kill_parent": ("import os\nos.kill(os.getppid(), 9)", "sandbox: os.kill"),
    "subprocess_run": ("import subprocess\nsubprocess.run(['touch', '{pwned}'])", "sandbox: subprocess"),
    "pty_spawn": ("import pty\npty.spawn('/bin/sh')", "sandbox: pty.spawn"),
    "os_open_passwd": ("import os\nos.open('/etc/passwd', os.O_RDONLY)", "sandbox: open outside"),
    "proc_environ": ("import pathlib\npathlib.Path('/proc/self/environ').read_bytes()", "sandbox: open outside"),
    "canary_file": ("import io\nio.open('{canary}').read()", "sandbox: open outside"),
    "io_fileio": ("import io\nio.FileIO('/etc/passwd').read()", "sandbox: open outside"),
    "pathlib_read": ("import pathlib\npathlib.Path('/etc/passwd').read_text()", "sandbox: open outside"),
    "path_traversal": ("import pathlib\npathlib.Path('../../../../etc/passwd').read_text()", "sandbox: open outside"),
    "write_outside": ("import io\nio.open('{pwned}', 'w').write('x')", "sandbox: open outside"),
    "listdir_root": ("import os\nos.listdir('/')", "sandbox: os.listdir outside"),
    "chdir": ("import os\nos.chdir('/')", "sandbox: os.chdir"),
    "symlink": ("import os\nos.symlink('/etc/passwd', 'link')", "sandbox: os.symlink"),
    "shutil_copy": ("import shutil\nshutil.copy('{canary}', 'stolen.txt')", "sandbox: shutil.copyfile"),
    "shutil_rmtree": ("import shutil\nshutil.rmtree('/tmp')", "sandbox: shutil.rmtree"),
    "socket_connect": ("import socket\nsocket.create_connection(('127.0.0.1', {port}))", "sandbox: socket."),
    "socket_raw": ("import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM)", "sandbox: socket.__new__"),
    "urllib": ("from urllib.request import urlopen\nurlopen('http://127.0.0.1:{port}/')", "sandbox: "),
    "http_client": (
        "from http.client import HTTPConnection\nHTTPConnection('127.0.0.1', {port}).request('GET', '/')",
        "sandbox: http.client.connect",
    ),
    "ctypes": ("import ctypes\nctypes.CDLL(None).system(b'touch {pwned}')", "ctypes"),
    "importlib_new_module": ("import importlib\nimportlib.import_module('multiprocessing')", "multiprocessing"),
    "sys_modules_os": ("import sys\nsys.modules['os'].system('id')", "sandbox: os.system"),
    "sys_getframe": ("import sys\nsys._getframe().f_globals", "sandbox: frame access"),
    "sys_settrace": ("import sys\nsys.settrace(print)", "sandbox: sys.settrace"),
    "inspect_frame": ("import inspect\ninspect.currentframe()", "sandbox: frame access"),
    "builtins_open": ("import builtins\nlist(map(builtins.open, ['/etc/passwd']))", "sandbox: open outside"),
    "pickle": ("import pickle\npickle.loads(b\"cos\\nsystem\\n(S'touch {pwned}'\\ntR.\")", "sandbox: pickle"),
    "marshal": ("import marshal\nmarshal.loads(b'\\xe3' + b'\\x00' * 40)", "sandbox: marshal.loads"),
    "gc_objects": ("import gc\ngc.get_objects()", "sandbox: gc.get_objects"),
    "gc_referrers": ("import gc\ngc.get_referrers(lookup)", "sandbox: gc.get_referrers"),
    "signal_ignore_xcpu": ("import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)", "sandbox: signal"),
    "signal_block_xcpu": (
        "import signal\nsignal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGXCPU])",
        "sandbox: signal",
    ),
    "rlimit_raise_memory": ("import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))", "sandbox: resource"),
    "rlimit_raise_cpu": (
        "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (10**6, resource.getrlimit(resource.RLIMIT_CPU)[1]))",
        "sandbox: resource.setrlimit",
    ),
    "mmap": ("import mmap\nmmap.mmap(-1, 4096)", "sandbox: mmap"),
    "setuid_root": ("import os\nos.setuid(0)", "sandbox: os.setuid"),
    "big_file": (
        "import os\nfd = os.open('big.bin', os.O_WRONLY | os.O_CREAT)\nwhile True:\n    os.write(fd, b'x' * (1 << 20))",
        "File too large",
    ),
    "many_files": (
        "import os\nfds = []\nfor i in range(1000):\n    fds.append(os.open('many.txt', os.O_RDONLY | os.O_CREAT))",
        "Too many open files",
    ),
}


@pytest.mark.parametrize("name", sorted(LENIENT_ESCAPES))
def test_escape_attempt_with_dangerous_modules_authorized(
    name: str, lenient: SandboxExecutor, canary_file: Path, listener: _Listener
) -> None:
    code, expected = LENIENT_ESCAPES[name]
    message = attempt(lenient, code.format(canary=canary_file, pwned=PWNED, port=listener.port), canary_file)
    assert expected in message
    assert not listener.accepted(0.01)
    if name in ("big_file", "many_files"):
        lenient.cleanup()  # let go of the descriptors the attempt left open


def test_threads_are_refused_by_the_process_limit(lenient: SandboxExecutor, canary_file: Path) -> None:
    if not lenient.worker_info or lenient.worker_info.get("uid") == 0:
        lenient("0")
    if lenient.worker_info["uid"] == 0:
        pytest.skip("RLIMIT_NPROC does not bind root")
    message = attempt(lenient, "import threading\nthreading.Thread(target=print).start()", canary_file)
    assert "can't start new thread" in message


def test_network_only_when_allowed(canary_file: Path, listener: _Listener) -> None:
    imports = [*DEFAULT_AUTHORIZED_IMPORTS, "socket"]
    code = f"import socket\ns = socket.create_connection(('127.0.0.1', {listener.port}), timeout=5)\ns.close()\n'ok'"
    closed = _executor(authorized_imports=imports)
    try:
        message = attempt(closed, code, canary_file)
        assert "sandbox: socket" in message
        assert not listener.accepted()
    finally:
        closed.cleanup()
    opened = _executor(authorized_imports=imports, allow_network=True)
    try:
        assert opened(code).output == "ok"
        assert listener.accepted(2)
        assert opened.worker_info["network_isolated"] is False
    finally:
        opened.cleanup()


def test_worker_runs_in_its_own_empty_network_namespace(executor: SandboxExecutor, listener: _Listener) -> None:
    # Seen from outside, by the kernel, not by the worker's own report or its audit hook: a different network
    # namespace than the server's, holding no interface but the loopback one, so even code that got past the
    # audit hook could not reach the server's 127.0.0.1 (the listener) or anything else.
    if not IS_ROOT:
        pytest.skip("the network namespace needs root")
    executor("0")
    pid = executor.worker_pid
    assert pid is not None
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    interfaces = [line.split(":")[0].strip() for line in Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]]
    assert interfaces == ["lo"]
    assert f":{listener.port:04X} " not in Path(f"/proc/{pid}/net/tcp").read_text()  # the server's sockets: unseen
    assert executor.worker_info["network_isolated"] is True


@pytest.fixture
def victim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A file outside the scratch directory that the worker's user could change if only the kernel decided: owned
    by that user (65534 when the server runs as root) and writable by everyone, in a directory it can reach."""
    folder = Path(tempfile.mkdtemp(prefix="nexent-sandbox-victim-"))
    folder.chmod(0o755)
    path = folder / "victim.txt"
    path.write_text("untouched")
    path.chmod(0o666)
    if IS_ROOT:
        os.chown(path, 65534, 65534)
    os.utime(path, (1_000_000_000, 1_000_000_000))
    yield path
    subprocess.run(["rm", "-rf", str(folder)], check=False)


# chmod, chown and utime are refused everywhere, in the scratch directory too: the audit hook denies their events
# (os.chmod, os.chown, os.utime) by default, and nothing the code does needs them.
METADATA_CHANGES: dict[str, tuple[str, str]] = {
    "chmod": ("os.chmod({path!r}, 0o4777)", "os.chmod"),
    "fchmod": (
        "fd = os.open({path!r}, os.O_RDONLY)\ntry:\n    os.fchmod(fd, 0o4777)\nfinally:\n    os.close(fd)",
        "os.chmod",
    ),
    "pathlib_chmod": ("pathlib.Path({path!r}).chmod(0o777)", "os.chmod"),
    "chown": ("os.chown({path!r}, 0, 0)", "os.chown"),
    "lchown": ("os.lchown({path!r}, os.getuid(), os.getgid())", "os.chown"),
    "utime": ("os.utime({path!r}, (0, 0))", "os.utime"),
    "utime_now": ("os.utime({path!r}, None)", "os.utime"),
    "copystat": ("pathlib.Path('other.txt').write_text('')\nshutil.copystat('other.txt', {path!r})", "shutil.copystat"),
}


@pytest.mark.parametrize(
    ("name", "where"),
    # fchmod needs a descriptor, and opening a file outside the scratch directory is refused before it is reached
    [
        (name, where)
        for name in sorted(METADATA_CHANGES)
        for where in ("outside", "scratch")
        if (name, where) != ("fchmod", "outside")
    ],
)
def test_file_metadata_changes_are_refused(
    name: str, where: str, lenient: SandboxExecutor, canary_file: Path, victim: Path
) -> None:
    if where == "outside":
        path, before = str(victim), victim.stat()
        setup = ""
    else:
        path, before = "mine.txt", None
        setup = "pathlib.Path('mine.txt').write_text('mine')\n"
    change, event = METADATA_CHANGES[name]
    message = attempt(lenient, "import os, pathlib, shutil\n" + setup + change.format(path=path), canary_file)
    assert f"sandbox: {event}" in message
    if before is not None:
        after = victim.stat()
        assert (after.st_mode, after.st_uid, after.st_gid, after.st_mtime) == (
            before.st_mode,
            before.st_uid,
            before.st_gid,
            before.st_mtime,
        )
        assert victim.read_text() == "untouched"


# --- exhaustion: time, memory, output -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tight(canary_file: Path) -> Iterator[SandboxExecutor]:
    executor = _executor(timeout_seconds=2, cpu_seconds=1, memory_mb=256, max_output_chars=1000)
    yield executor
    executor.cleanup()


def test_infinite_loop_is_stopped(tight: SandboxExecutor, canary_file: Path) -> None:
    started = time.monotonic()
    message = attempt(tight, "while True:\n    pass", canary_file)
    assert time.monotonic() - started < 30  # stopped by a limit, which the message names
    assert "CPU time limit" in message or "time limit" in message or "iterations" in message


def test_cpu_burn_in_c_is_stopped_by_the_cpu_limit(canary_file: Path) -> None:
    executor = _executor(timeout_seconds=20, cpu_seconds=1)
    try:
        executor("0")
        started = time.monotonic()
        message = attempt(executor, "sum(range(10**14))", canary_file)
        assert time.monotonic() - started < 20  # well before the 20 s step deadline: the CPU limit stopped it
        assert "CPU time limit (1 s per step)" in message
    finally:
        executor.cleanup()


def test_sleeping_code_is_stopped_by_the_wall_clock(tight: SandboxExecutor, canary_file: Path) -> None:
    tight("kept = 1")
    pid = tight.worker_pid
    started = time.monotonic()
    message = attempt(tight, "import time\ntime.sleep(60)", canary_file)
    assert time.monotonic() - started < 30  # stopped, not slept out
    assert "time limit of 2 seconds" in message
    assert tight.worker_pid != pid
    with pytest.raises(SandboxError, match="kept"):
        tight("kept")


@pytest.mark.parametrize(
    "code",
    [
        "x = ' ' * 10**10",
        "x = [0] * 10**9",
        "chunks = []\nfor i in range(10**5):\n    chunks.append('y' * 10**6)",
        "d = dict.fromkeys(range(10**8))",
    ],
    ids=["string", "list", "list_growth", "dict_growth"],
)
def test_memory_bombs_are_stopped(code: str, tight: SandboxExecutor, canary_file: Path) -> None:
    message = attempt(tight, code, canary_file)
    assert "memory" in message.lower()


FILL_SCRATCH = (
    "import io\nwritten = 0\nfor i in range(64):\n    with io.open(f'fill-{{i}}.bin', 'wb') as handle:\n"
    "        handle.write(b'x' * {size})\n    written += {size}\n"
)
SCRATCH_USED = "import os\nsum(os.stat(name).st_size for name in os.listdir('.'))"


def test_disk_quota_stops_writes_and_the_worker_survives(canary_file: Path) -> None:
    # Files of 1 MiB each, below the per-file limit: only the quota of all files together stops them.
    executor = _executor(authorized_imports=[*DEFAULT_AUTHORIZED_IMPORTS, "io", "os"], disk_mb=4)
    try:
        message = attempt(executor, FILL_SCRATCH.format(size=1 << 20), canary_file)
        if IS_ROOT:
            assert executor.worker_info["disk_quota"] == "tmpfs"
            assert "No space left on device" in message
        else:
            assert "disk quota" in message
        assert "at most 4 MB in all" in message or "disk quota (4 MB" in message
        assert executor(SCRATCH_USED).output <= 4 << 20  # the same worker, its files kept
        executor("import os\nfor name in os.listdir('.'):\n    os.remove(name)")
        assert (
            executor(FILL_SCRATCH.format(size=1 << 20).replace("64", "3") + "written").output == 3 << 20
        )  # room again
    finally:
        executor.cleanup()


def test_disk_quota_without_root_is_kept_by_the_audit_hook(canary_file: Path) -> None:
    # No tmpfs without root (or where mounting is not allowed, as in a container without CAP_SYS_ADMIN): the hook
    # refuses to open a file for writing (or make a directory) once the scratch directory holds the quota. The
    # runner takes the mount away, as such a host would; the hook and the kernel's limits are the real ones.
    workdir = tempfile.mkdtemp(prefix="nexent-sandbox-test-")
    try:
        config = {**SandboxExecutor(memory_mb=384, disk_mb=2).worker_config(), "workdir": workdir}
        attempts = {
            "fill": FILL_SCRATCH.format(size=1 << 20) + "result = written",
            "mkdir": "os.mkdir('more')",
            "append": "open('fill-0.bin', 'ab').write(b'x')",
            "read": "result = len(open('fill-0.bin', 'rb').read())",
            "used": "result = " + SCRATCH_USED.split("\n")[1],
        }
        no_mount = "worker._isolate = lambda network, *rest: (False, False)\ninfo = worker.harden(config)"
        runner = RAW_RUNNER.replace("info = worker.harden(config)", no_mount)
        done = subprocess.run(
            [
                sys.executable,
                "-I",
                "-B",
                "-c",
                runner,
                str(WORKER_SCRIPT),
                json.dumps(config),
                json.dumps(attempts),
            ],
            env={},
            cwd=workdir,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        report = json.loads(done.stdout)
        results = report["results"]
        assert report["info"]["disk_quota"] == "audit_hook"
        for name in ("fill", "mkdir", "append"):
            assert "disk quota (2 MB" in results[name], results
        assert results["read"] == f"ok: {1 << 20}"
        assert results["used"] == f"ok: {2 << 20}"
    finally:
        subprocess.run(["rm", "-rf", workdir], check=False)


def test_huge_output_is_truncated(tight: SandboxExecutor) -> None:
    result = tight("for i in range(10**4):\n    print('x' * 100)\n'y' * 10**6")
    assert len(result.logs) < 1200
    assert "output truncated" in result.logs
    assert isinstance(result.output, str) and len(result.output) < 1200
    assert tight("1 + 1").output == 2


def test_recursion_bomb_leaves_the_worker_running(tight: SandboxExecutor, canary_file: Path) -> None:
    tight("0")
    pid = tight.worker_pid
    message = attempt(tight, "def f(n):\n    return f(n + 1)\nf(0)", canary_file)
    assert "recursion" in message.lower()
    assert tight.worker_pid == pid


# --- battery 3: raw Python in a hardened worker, no interpreter at all ---------------------------------------------

RAW_RUNNER = r"""
import importlib.util, json, os, sys
import ctypes, gc, io, marshal, mmap, pathlib, pickle, pty, resource, shutil, signal, socket, subprocess
import threading, types, _posixsubprocess
Popen = subprocess.Popen  # the class itself, as escaped code could find it (object.__subclasses__())
spec = importlib.util.spec_from_file_location("sandbox_worker", sys.argv[1])
worker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(worker)
config, attempts = json.loads(sys.argv[2]), json.loads(sys.argv[3])
worker.preload(config)
info = worker.harden(config)
scope = dict(globals())
results = {}
for name, code in attempts.items():
    namespace = dict(scope)
    try:
        exec(code, namespace)
        results[name] = "ok: " + repr(namespace.get("result"))[:200]
    except BaseException as exc:
        results[name] = f"{type(exc).__name__}: {exc}"[:300]
os.write(1, json.dumps({"info": info, "results": results}).encode())
"""

SANDBOX = "sandbox: "
# name -> (code, what the outcome must contain)
RAW_ATTEMPTS: dict[str, tuple[str, str]] = {
    "os_system": ("os.system('touch {pwned}')", SANDBOX),
    "posix_system": ("sys.modules['posix'].system('touch {pwned}')", SANDBOX),
    "os_popen": ("os.popen('id')", SANDBOX),
    "os_fork": ("os.fork()", SANDBOX),
    "os_forkpty": ("os.forkpty()", SANDBOX),
    "os_execv": ("os.execv('/bin/sh', ['sh'])", SANDBOX),
    "os_posix_spawn": ("os.posix_spawn('/bin/touch', ['touch', '{pwned}'], {{}})", SANDBOX),
    "fork_exec": ("_posixsubprocess.fork_exec()", SANDBOX),
    "subprocess_popen_class": ("Popen(['touch', '{pwned}'])", SANDBOX),
    "reimport_extension": ("del sys.modules['_posixsubprocess']\nimport _posixsubprocess", "sandbox: |ModuleNotFound"),
    "pty_fork": ("pty.fork()", SANDBOX),
    "kill_parent": ("os.kill(os.getppid(), 0)", SANDBOX),
    "open_passwd": ("open('/etc/passwd').read()", SANDBOX),
    "open_proc_environ": ("open('/proc/self/environ', 'rb').read()", SANDBOX),
    "open_parent_environ": ("open(f'/proc/{{os.getppid()}}/environ', 'rb').read()", SANDBOX),
    "open_canary": ("open('{canary}').read()", SANDBOX),
    "open_fd_path": ("open('/proc/self/fd/0').read()", SANDBOX),
    "open_fd_number": ("open(0).read()", SANDBOX),
    "os_open": ("os.open('/etc/passwd', os.O_RDONLY)", SANDBOX),
    "fileio": ("io.FileIO('/etc/passwd')", SANDBOX),
    "pathlib": ("pathlib.Path('/etc/passwd').read_text()", SANDBOX),
    "traversal": ("open('../../../../../etc/passwd')", SANDBOX),
    "write_outside": ("open('{pwned}', 'w')", SANDBOX),
    "listdir_root": ("os.listdir('/')", SANDBOX),
    "scandir_root": ("list(os.scandir('/'))", SANDBOX),
    "chdir": ("os.chdir('/')", SANDBOX),
    "symlink": ("os.symlink('/etc/passwd', 'link')", SANDBOX),
    "hardlink": ("os.link('/etc/passwd', 'link')", SANDBOX),
    "rename_out": ("open('mine.txt', 'w').close()\nos.rename('mine.txt', '{pwned}')", SANDBOX),
    "socket_new": ("socket.socket()", SANDBOX),
    "socket_connect": ("socket.create_connection(('127.0.0.1', {port}))", SANDBOX),
    "getaddrinfo": ("socket.getaddrinfo('localhost', 80)", SANDBOX),
    "import_new_module": ("import xml.dom.minidom", "sandbox: |ModuleNotFound"),
    "ctypes_dlopen": ("ctypes.CDLL(None)", SANDBOX),
    "ctypes_memory": ("ctypes.string_at(id(1), 8)", SANDBOX),
    "gc_objects": ("gc.get_objects()", SANDBOX),
    "gc_referrers": ("gc.get_referrers(os)", SANDBOX),
    "getframe": ("sys._getframe()", SANDBOX),
    "traceback_frame": ("try:\n    1 / 0\nexcept Exception as exc:\n    result = exc.__traceback__.tb_frame", SANDBOX),
    "generator_frame": ("result = (x for x in []).gi_frame", SANDBOX),
    "function_code": ("result = (lambda: 0).__code__", SANDBOX),
    "set_function_code": ("def f(): pass\nf.__defaults__ = (1,)", SANDBOX),
    "code_new": ("result = compile('1', 'x', 'eval').replace(co_name='y')", SANDBOX),
    "function_new": ("types.FunctionType(compile('1', 'x', 'eval'), {{}})", SANDBOX),
    "marshal_loads": ("marshal.loads(marshal.dumps(compile('1', 'x', 'eval')))", SANDBOX),
    "pickle_loads": ("pickle.loads(b\"cos\\nsystem\\n(S'touch {pwned}'\\ntR.\")", SANDBOX),
    "setrlimit_memory": ("resource.setrlimit(resource.RLIMIT_AS, (-1, -1))", SANDBOX),
    "setrlimit_cpu": ("resource.setrlimit(resource.RLIMIT_CPU, (10**6, resource.getrlimit(0)[1]))", SANDBOX),
    "setrlimit_cpu_tuple_subclass": (
        "class Limits(tuple):\n    pass\n"
        "resource.setrlimit(resource.RLIMIT_CPU, Limits((10**6, resource.getrlimit(resource.RLIMIT_CPU)[1])))",
        SANDBOX,
    ),
    "prlimit": ("resource.prlimit(0, resource.RLIMIT_NOFILE, (10**5, 10**5))", SANDBOX),
    "signal_ignore": ("signal.signal(signal.SIGXCPU, signal.SIG_IGN)", SANDBOX),
    "signal_block": ("signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGXCPU])", SANDBOX),
    "settrace": ("sys.settrace(print)", SANDBOX),
    "setprofile": ("sys.setprofile(print)", SANDBOX),
    "current_frames": ("sys._current_frames()", SANDBOX),
    "addaudithook": ("seen = []\nsys.addaudithook(lambda *a: seen.append(a))\nid(1)\nresult = len(seen)", "ok: 0"),
    "mmap": ("mmap.mmap(-1, 4096)", SANDBOX),
    "setuid": ("os.setuid(0)", SANDBOX),
    "big_file": (
        "fd = os.open('big.bin', os.O_WRONLY | os.O_CREAT)\n"
        "try:\n    while True:\n        os.write(fd, bytes(1 << 20))\nfinally:\n    os.close(fd)",
        "File too large",
    ),
    "many_files": (
        "fds = []\ntry:\n    for i in range(1000):\n        fds.append(os.open('many.txt', os.O_RDONLY | os.O_CREAT))\n"
        "finally:\n    [os.close(fd) for fd in fds]",
        "Too many open files",
    ),
    "memory": ("result = bytearray(10**9)", "MemoryError"),
    # positive controls: what the sandbox allows
    "environment_is_empty": ("result = dict(os.environ)", "ok: {}"),
    "scratch_files_work": ("open('note.txt', 'w').write('hi')\nresult = open('note.txt').read()", "ok: 'hi'"),
    "namedtuple_works": ("import collections\nresult = collections.namedtuple('P', 'x')(1).x", "ok: 1"),
}


@pytest.fixture(scope="module")
def raw_results(canary_file: Path, listener: _Listener) -> dict[str, Any]:
    workdir = tempfile.mkdtemp(prefix="nexent-sandbox-test-")
    try:
        config = {**SandboxExecutor(memory_mb=384).worker_config(), "workdir": workdir}
        attempts = {
            name: code.format(canary=canary_file, pwned=PWNED, port=listener.port)
            for name, (code, _) in RAW_ATTEMPTS.items()
        }
        done = subprocess.run(
            [
                sys.executable,
                "-I",
                "-B",
                "-X",
                "utf8",
                "-c",
                RAW_RUNNER,
                str(WORKER_SCRIPT),
                *map(json.dumps, [config, attempts]),
            ],
            env={},
            cwd=workdir,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        results: dict[str, Any] = json.loads(done.stdout)
        return results
    finally:
        subprocess.run(["rm", "-rf", workdir], check=False)


@pytest.mark.parametrize("name", sorted(RAW_ATTEMPTS))
def test_raw_attempt_in_hardened_worker(name: str, raw_results: dict[str, Any], canary_file: Path) -> None:
    outcome = raw_results["results"][name]
    assert any(expected in outcome for expected in RAW_ATTEMPTS[name][1].split("|")), outcome
    assert CANARY not in outcome
    assert "root:x:0:0" not in outcome
    _assert_parent_unaffected(canary_file, os.getcwd())


def test_raw_worker_dropped_privileges(raw_results: dict[str, Any]) -> None:
    info = raw_results["info"]
    assert info["audit_hook"] is True
    if IS_ROOT:
        assert info["uid"] == 65534


def test_forged_protocol_messages_cannot_hang_the_server(tight: SandboxExecutor, canary_file: Path) -> None:
    # Through the interpreter bypass, the code reaches the worker's channel and asks for a tool call whose answer
    # (over 64 KiB) it never reads: the server must give up at the step's deadline, not block on the pipe.
    grab = (
        "import string, time\n"
        "cells = string.Formatter().get_field('0.__wrapped__.__closure__', [lookup], {})[0]\n"
        "channel = [c.cell_contents for c in cells if not isinstance(c.cell_contents, str)][0]\n"
    )
    code = grab + "channel.send({'op': 'call', 'tool': 'lookup', 'args': ['k' * 200000], 'kwargs': {}})\ntime.sleep(30)"
    started = time.monotonic()
    message = attempt(tight, code, canary_file)
    assert time.monotonic() - started < 20  # the step's deadline, not the 30 s sleep
    assert "stopped reading" in message, message
    # A malformed call is refused without running anything.
    forged = grab + "channel.send({'op': 'call', 'tool': 'no_such_tool', 'args': 1, 'kwargs': []})\nchannel.recv()"
    assert tight(forged).output == {"op": "result", "ok": False, "error": "NameError: no tool named 'no_such_tool'"}


# --- script mode: a skill's scripts (run_script) ----------------------------------------------------------------

SCRIPT_ESCAPES: dict[str, str] = {
    "server environment": "import os\nprint(dict(os.environ))\nprint(open('/proc/self/environ').read())",
    "parent environment": "print(open('/proc/1/environ').read())",
    "write the skill folder": (
        "for target in ('/skill/SKILL.md', '/skill/new.txt', '/skill/scripts/x.py'):\n"
        "    try:\n        open(target, 'a').write('pwned'); print('ESCAPED', target)\n"
        "    except OSError as exc:\n        print('refused', target, exc)\n"
        "import os\ntry:\n    os.chmod('/skill/SKILL.md', 0o666); print('ESCAPED chmod')\nexcept OSError as exc:\n"
        "    print('refused chmod', exc)"
    ),
    "read files outside": (
        "import os\nfor target in ({canary!r}, '/etc/shadow', '/proc/1/cmdline', {source!r}):\n"
        "    try:\n        print('ESCAPED', open(target).read()[:100])\n"
        "    except OSError as exc:\n        print('refused', target, type(exc).__name__)\n"
        "print(sorted(os.listdir('/')))"
    ),
    "write outside": "open({pwned!r}, 'w').write('x')\nprint('ESCAPED')",
    "mount or chroot back": (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "print('mount', libc.mount(b'/', b'/scratch', None, 0x1000, None))\n"
        "print('chroot', libc.chroot(b'/scratch'))\nos.setuid(0)\nprint('ESCAPED')"
    ),
    "memory bomb": "x = bytearray(4 << 30)\nprint('ESCAPED', len(x))",
}


@pytest.fixture(scope="module")
def script_files() -> dict[str, bytes]:
    return {"SKILL.md": b"---\nname: s\ndescription: d\n---\n", "scripts/info.py": b"print('ok')\n"}


def _script(files: dict[str, bytes], source: str, args: list[str] | None = None, **options: Any) -> dict[str, Any]:
    path = "scripts/attempt.sh" if source.startswith("#!/bin/sh") else "scripts/attempt.py"
    return dict(run_script({**files, path: source.encode()}, path, args or [], **{"timeout_seconds": 10, **options}))


def _processes_with(marker: str) -> list[int]:
    """Processes whose command line holds `marker` (the machine may run other sandboxes as uid 65534 too)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if marker.encode() in handle.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


needs_root = pytest.mark.skipif(not IS_ROOT, reason="script mode runs only where the server is root")


@needs_root
def test_a_script_runs_with_its_files_and_arguments(script_files: dict[str, bytes]) -> None:
    source = (
        "import os, sys\nprint(sys.argv[1:], os.getcwd(), os.getuid())\nprint(open('/skill/SKILL.md').read()[:3])\n"
        "open('note.txt', 'w').write('scratch is writable')\nprint(open('note.txt').read())\n"
        "print('err', file=sys.stderr)\nsys.exit(3)"
    )
    result = _script(script_files, source, ["--x", "y z"], max_output_chars=1000)
    assert result["exit_code"] == 3 and result["stderr"] == "err\n"
    assert result["stdout"].splitlines() == ["['--x', 'y z'] /scratch 65534", "---", "scratch is writable"]
    shell = run_script({**script_files, "run.sh": b'echo "shell $1"; id -u; pwd\n'}, "run.sh", ["hi"])
    assert shell["stdout"].split() == ["shell", "hi", "65534", "/scratch"] and shell["exit_code"] == 0


@needs_root
@pytest.mark.parametrize("name", sorted(SCRIPT_ESCAPES))
def test_script_escape_attempt_fails_safely(name: str, script_files: dict[str, bytes], canary_file: Path) -> None:
    source = SCRIPT_ESCAPES[name].format(canary=str(canary_file), pwned=PWNED, source=__file__)
    result = _script(script_files, source)
    everything = json.dumps(result)
    assert "ESCAPED" not in result["stdout"], result
    assert CANARY not in everything and "NEXENT" not in everything and "root:" not in everything
    assert not os.path.exists(PWNED)
    if name == "read files outside":
        assert "['bin', 'dev', 'etc', 'lib'" in result["stdout"] and "scratch" in result["stdout"]
    if name == "memory bomb":
        assert result["exit_code"] != 0 and "MemoryError" in result["stderr"]


@needs_root
def test_scripts_reach_the_network_only_when_allowed(script_files: dict[str, bytes], listener: _Listener) -> None:
    source = (
        f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {listener.port}), timeout=2)\n"
        "    print('CONNECTED')\n"
        "except OSError as exc:\n    print('refused', exc)\n"
    )
    closed = _script(script_files, source)
    assert "CONNECTED" not in closed["stdout"] and not listener.accepted()
    opened = _script(script_files, source, allow_network=True)
    assert "CONNECTED" in opened["stdout"] and listener.accepted(wait=2)


@needs_root
def test_scripts_cannot_spawn_beyond_their_limit_and_leave_nothing_behind(script_files: dict[str, bytes]) -> None:
    spawner = (
        "import subprocess, sys\nstarted = 0\ntry:\n    for _ in range(200):\n"
        "        subprocess.Popen(['/bin/sh', '-c', 'sleep 60; true', sys.argv[1]]); started += 1\n"
        "except OSError as exc:\n    print('refused', type(exc).__name__)\nprint('started', started)\n"
    )
    marker = f"marker-{uuid.uuid4().hex}"
    result = _script(script_files, spawner, [marker], max_processes=16)
    assert "refused" in result["stdout"]
    assert int(result["stdout"].split("started")[1]) < 16
    bomb = _script(script_files, "#!/bin/sh\nbomb() { bomb | bomb & }\nbomb\nsleep 30\n", [marker], timeout_seconds=3)
    assert bomb["timed_out"] or bomb["exit_code"] is not None
    deadline = time.monotonic() + 5
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(marker) == []  # the PID namespace ended with the script: no sleeper, no bomb left


@needs_root
def test_script_limits_time_cpu_and_output(script_files: dict[str, bytes]) -> None:
    started = time.monotonic()
    slept = _script(script_files, "import time\ntime.sleep(60)", timeout_seconds=1)
    assert slept["timed_out"] and slept["exit_code"] is None and time.monotonic() - started < 10
    burned = _script(script_files, "while True:\n    pass", timeout_seconds=20, cpu_seconds=1)
    assert burned["exit_code"] not in (0, None) and not burned["timed_out"]
    flood = _script(script_files, "while True:\n    print('x' * 1000)", max_output_chars=2000)
    assert flood["killed"] == "output limit" and flood["truncated"]
    assert len(flood["stdout"]) < 2200
    disk = _script(script_files, "open('big', 'wb').write(b'x' * (100 << 20))\nprint('ESCAPED')", disk_mb=8)
    assert "ESCAPED" not in disk["stdout"] and disk["exit_code"] != 0


@pytest.mark.skipif(IS_ROOT, reason="as root the script runs")
def test_without_root_scripts_are_refused(script_files: dict[str, bytes]) -> None:
    with pytest.raises(SandboxError, match="not run"):
        run_script(script_files, "scripts/info.py", [])
