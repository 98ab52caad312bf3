"""The untrusted-code sandbox, attacked for real: every test starts real sandboxed
interpreters, and every "stopped" is checked on the outside too (the server saw no
connection, the file does not exist, no process is left, the directory is gone).

Each layer is also shown holding on its own: ``Sandbox(_without=...)`` turns the others
off, so a kernel layer is tested without the audit hook in front of it and the hook
without the kernel layers behind it. Tests of a layer this machine lacks are skipped
(``Sandbox().isolation`` says which exist; ``test_isolation_matches_the_kernel`` checks
that it tells the truth).
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigforge.runtime.errors import SigforgeError
from sigforge.runtime.sandbox import (
    DEFAULT_LIMITS,
    LAYERS,
    Sandbox,
    SandboxError,
    SandboxLimits,
    SandboxResult,
    run_python,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the sandbox needs POSIX")

FAST = SandboxLimits(timeout=2.0, cpu_seconds=1, memory_mb=256, output_bytes=4_000)
KERNEL_LAYERS = ("netns", "landlock", "seccomp")


@pytest.fixture(autouse=True)
def _own_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Sandbox directories of this test go to a directory of its own, so the test can
    see that none is left behind."""
    workdirs = tmp_path / "sandboxes"
    workdirs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(workdirs))
    yield workdirs
    assert not list(workdirs.iterdir()), "a sandbox directory was left behind"


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(FAST)


def only(layer: str) -> Sandbox:
    """A sandbox with ``layer`` as its only optional layer (skips if unavailable)."""
    if layer not in Sandbox(FAST).isolation:
        pytest.skip(f"{layer} is not available on this machine")
    others = [other for other in ("audit-hook", *KERNEL_LAYERS) if other != layer]
    return Sandbox(FAST, _without=others)


def children() -> set[int]:
    """Live child processes of this test process."""
    found: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            text = (task / "children").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended between the listing and the read
        found |= {int(pid) for pid in text.split()}
    return found


@pytest.fixture
def server() -> Iterator[socket.socket]:
    """A listening TCP server on 127.0.0.1 that nobody should reach."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        yield listener


def assert_no_connection(listener: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        conn, _ = listener.accept()
        conn.close()


# ----------------------------------------------------------------------------- results
def test_a_normal_program_prints_and_its_final_expression_is_shown(sandbox: Sandbox) -> None:
    result = sandbox.run("total = sum(range(10))\nprint('total', total)\ntotal * 2")
    assert result == SandboxResult(
        ok=True,
        stdout="total 45\n90\n",
        stderr="",
        error=None,
        kind="ok",
        duration=result.duration,
    )
    assert result.duration > 0


def test_a_final_expression_that_is_none_prints_nothing(sandbox: Sandbox) -> None:
    assert sandbox.run("print('a')\nprint('b')").stdout == "a\nb\n"
    assert sandbox.run("x = 1\nNone").stdout == ""


def test_an_exception_gives_its_line_and_a_traceback_of_the_code(sandbox: Sandbox) -> None:
    result = sandbox.run("def f(x):\n    return 1 / x\n\nprint('before')\nf(0)\n")
    assert (result.ok, result.kind) == (False, "exception")
    assert result.error == "ZeroDivisionError: division by zero"
    assert result.stdout == "before\n"
    assert 'File "<code>", line 5, in <module>' in result.stderr
    assert 'File "<code>", line 2, in f' in result.stderr
    assert "return 1 / x" in result.stderr
    assert "<string>" not in result.stderr  # no frames of the sandbox's own bootstrap


def test_a_syntax_error_is_readable(sandbox: Sandbox) -> None:
    result = sandbox.run("x = 1\nprint((x)\n")
    assert result.kind == "exception"
    assert result.error == "SyntaxError: '(' was never closed (line 2)"
    assert result.stderr.startswith('  File "<code>", line 2\n    print((x)\n')
    assert "ast.py" not in result.stderr


def test_sys_exit(sandbox: Sandbox) -> None:
    assert sandbox.run("import sys\nprint('x')\nsys.exit(0)").kind == "ok"
    failed = sandbox.run("import sys\nsys.exit(3)")
    assert (failed.kind, failed.error) == ("exception", "SystemExit: 3")
    exited = sandbox.run("import os\nos._exit(4)")
    assert (exited.kind, exited.error) == ("exception", "the program exited with status 4")


def test_a_crash_is_reported(sandbox: Sandbox) -> None:
    result = sandbox.run("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)")
    assert (result.kind, result.error) == ("crashed", "the interpreter was killed by SIGSEGV")


def test_stdin_is_empty(sandbox: Sandbox) -> None:
    result = sandbox.run("input()")
    assert result.error == "EOFError: EOF when reading a line"


def test_the_standard_library_works(sandbox: Sandbox) -> None:
    code = """
import asyncio, datetime, decimal, fractions, gzip, hashlib, json, math, re, statistics
import tempfile, threading, zoneinfo
from concurrent.futures import ThreadPoolExecutor
print(statistics.mean([1, 2, 4]), decimal.Decimal(1) / 8, fractions.Fraction(3, 6))
print(hashlib.sha256(b"x").hexdigest()[:8], math.comb(5, 2), re.findall(r"\\d", "a1b2"))
print(datetime.datetime(2024, 7, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")).utcoffset())
print(asyncio.run(asyncio.sleep(0, "async")))
with ThreadPoolExecutor(4) as pool:
    print(list(pool.map(lambda v: v * v, range(4))))
with tempfile.TemporaryDirectory() as d, gzip.open(d + "/x.gz", "wt") as f:
    f.write(json.dumps({"a": 1}))
"""
    result = sandbox.run(code)
    assert result.kind == "ok", result.stderr
    assert result.stdout.splitlines() == [
        "2.3333333333333335 0.125 1/2",
        "2d711642 10 ['1', '2']",
        "2:00:00",
        "async",
        "[0, 1, 4, 9]",
    ]


def test_the_working_directory_is_fresh_writable_and_removed(
    sandbox: Sandbox, _own_tempdir: Path
) -> None:
    code = (
        "import os\n"
        "print(os.getcwd(), sorted(os.listdir('.')))\n"
        "open('notes.txt', 'w').write('kept?')\n"
        "os.makedirs('a/b')\n"
        "os.chmod('a', 0)\n"  # the parent must still be able to remove it
    )
    first = sandbox.run(code)
    second = sandbox.run(code)
    assert first.kind == second.kind == "ok", first.stderr
    first_dir, first_listing = first.stdout.split(" ", 1)
    second_dir, second_listing = second.stdout.split(" ", 1)
    assert first_listing == second_listing == "[]\n"  # nothing of another run
    assert first_dir != second_dir
    assert Path(first_dir).parent == _own_tempdir
    assert not Path(first_dir).exists() and not Path(second_dir).exists()


def test_huge_output_is_truncated_with_a_note(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "import sys\nprint('x' * 1_000_000)\nsys.stderr.write('e' * 50_000)\nprint('end')"
    )
    assert result.kind == "ok"
    kept, note = result.stdout.rsplit("\n", 1)
    assert kept == "x" * 4_000
    assert note == "[output truncated: 1,000,005 bytes written, the first 4,000 kept]"
    assert result.stderr == "e" * 4_000 + (
        "\n[output truncated: 50,000 bytes written, the first 4,000 kept]"
    )


def test_output_before_a_timeout_is_kept(sandbox: Sandbox) -> None:
    result = sandbox.run("print('step 1')\nwhile True:\n    pass")
    assert result.kind == "timeout"
    assert result.stdout == "step 1\n"


# ---------------------------------------------------------------------- resource limits
def test_a_runaway_loop_is_stopped(sandbox: Sandbox) -> None:
    result = sandbox.run("while True:\n    pass")
    assert (result.ok, result.kind) == (False, "timeout")
    # the CPU limit (1 s) normally fires first; on a loaded machine the wall clock may
    assert result.error in ("CPU time limit of 1s exceeded", "timed out after 2s")


def test_a_sleeping_program_times_out_and_its_process_group_is_killed(
    sandbox: Sandbox, _own_tempdir: Path
) -> None:
    before = children()
    result = sandbox.run("import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)")
    assert (result.kind, result.error) == ("timeout", "timed out after 2s")
    pid = int(result.stdout)
    assert not Path(f"/proc/{pid}").exists()
    assert children() == before


class Interrupted(Exception):
    pass


def test_an_interrupted_run_kills_the_child(_own_tempdir: Path) -> None:
    """KeyboardInterrupt and the like while run() waits: the child dies with the call."""
    sandbox = Sandbox(SandboxLimits(timeout=60.0))
    before = children()

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGUSR1, interrupt)
    try:
        timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGUSR1))
        timer.start()
        with pytest.raises(Interrupted):
            sandbox.run("import time\ntime.sleep(60)")
        timer.join()
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert children() == before


@pytest.mark.parametrize(
    "code",
    [
        "x = bytearray(10**10)",
        "blocks = []\nwhile True:\n    blocks.append(bytearray(10**6))",
        "s = 'x'\nwhile True:\n    s += s",
    ],
    ids=["one-huge-allocation", "growing-list", "doubling-string"],
)
def test_a_memory_bomb_is_stopped(sandbox: Sandbox, code: str) -> None:
    result = sandbox.run(code)
    assert (result.ok, result.kind) == (False, "memory")
    assert result.error == "memory limit of 256 MB exceeded"


def test_a_big_file_fails_with_an_error_not_a_kill(sandbox: Sandbox) -> None:
    result = sandbox.run("with open('big', 'wb') as f:\n    f.write(b'x' * (65 * 2**20))")
    assert (result.kind, result.error) == ("exception", "OSError: [Errno 27] File too large")


# ----------------------------------------------------------------------------- network
CONNECTS = {
    "create_connection": "import socket\nsocket.create_connection(('127.0.0.1', {port}))",
    "raw-socket": "import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))",
    "urllib": "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/')",
    "udp": "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', {port}))",
}


@pytest.mark.parametrize("how", CONNECTS)
def test_network_access_is_blocked(sandbox: Sandbox, server: socket.socket, how: str) -> None:
    port = server.getsockname()[1]
    result = sandbox.run(CONNECTS[how].format(port=port))
    assert (result.ok, result.kind) == (False, "blocked")
    assert result.error is not None
    assert result.error.startswith("network access is blocked (")
    assert_no_connection(server)


def test_a_caught_violation_is_still_reported(sandbox: Sandbox, server: socket.socket) -> None:
    port = server.getsockname()[1]
    code = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}))\n"
        "except OSError as exc:\n"
        "    print('caught', type(exc).__name__)\n"
    )
    result = sandbox.run(code)
    assert result.kind == "blocked"
    assert result.stdout == "caught SandboxViolation\n"
    assert_no_connection(server)


@pytest.mark.parametrize("layer", ["netns", "landlock"])
def test_a_kernel_layer_alone_stops_the_connection(server: socket.socket, layer: str) -> None:
    port = server.getsockname()[1]
    result = only(layer).run(CONNECTS["raw-socket"].format(port=port))
    assert result.kind == "exception"
    expected = {"netns": "Network is unreachable", "landlock": "Permission denied"}[layer]
    assert result.error is not None and expected in result.error
    assert_no_connection(server)


@pytest.fixture
def unix_server(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A listening Unix socket file, like /var/run/docker.sock: a network namespace does
    not separate these."""
    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        listener.listen()
        listener.setblocking(False)
        yield listener, path


UNIX_CONNECT = "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({path!r})"


def test_unix_socket_files_are_unreachable(
    sandbox: Sandbox, unix_server: tuple[socket.socket, str]
) -> None:
    listener, path = unix_server
    result = sandbox.run(UNIX_CONNECT.format(path=path))
    assert result.kind == "blocked"
    assert result.error == "network access is blocked (socket.__new__ AF_UNIX)"
    assert_no_connection(listener)


def test_seccomp_alone_stops_unix_socket_files(unix_server: tuple[socket.socket, str]) -> None:
    listener, path = unix_server
    for sandbox in (only("seccomp"), Sandbox(SandboxLimits(network=True), _without=["audit-hook"])):
        if "seccomp" not in sandbox.isolation:
            pytest.skip("seccomp is not available on this machine")
        result = sandbox.run(UNIX_CONNECT.format(path=path))
        assert result.kind == "exception"
        assert result.error == "PermissionError: [Errno 1] Operation not permitted"
    assert_no_connection(listener)


def test_the_network_can_be_allowed_explicitly(server: socket.socket) -> None:
    sandbox = Sandbox(SandboxLimits(timeout=5.0, network=True))
    assert "netns" not in sandbox.isolation
    port = server.getsockname()[1]
    result = sandbox.run(CONNECTS["raw-socket"].format(port=port) + "\ns.sendall(b'hi')")
    assert result.kind == "ok", result.stderr
    server.setblocking(True)
    server.settimeout(5)
    conn, _ = server.accept()
    with conn:
        assert conn.recv(2) == b"hi"


# ------------------------------------------------------------------------------- files
WRITES = {
    "open": "open({target!r}, 'w').write('pwned')",
    "os.open": "import os\nos.close(os.open({target!r}, os.O_WRONLY | os.O_CREAT))",
    "pathlib": "import pathlib\npathlib.Path({target!r}).write_text('pwned')",
    "relative": "import os\nrel = os.path.relpath({target!r})\nopen(rel, 'w').write('pwned')",
    "rename-out": "open('x', 'w').write('pwned')\nimport os\nos.rename('x', {target!r})",
    "symlink": "import os\nos.symlink({target!r}, 'link')\nopen('link', 'w').write('pwned')",
    "mkdir": "import os\nos.mkdir({target!r})",
    "chdir": "import os\nos.chdir(os.path.dirname({target!r}))\nopen('owned.txt', 'w')",
}


@pytest.mark.parametrize("how", WRITES)
def test_writing_outside_the_sandbox_is_blocked(sandbox: Sandbox, tmp_path: Path, how: str) -> None:
    target = tmp_path / "owned.txt"
    result = sandbox.run(WRITES[how].format(target=str(target)))
    assert (result.ok, result.kind) == (False, "blocked")
    assert result.error is not None
    assert result.error.startswith(
        ("writing outside the sandbox directory is blocked", "creating links is blocked")
    ) or (how == "chdir" and "blocked" in result.error)
    assert not target.exists()


@pytest.mark.parametrize("how", ["open", "os.open", "rename-out", "symlink", "mkdir"])
def test_landlock_alone_stops_writes_outside(tmp_path: Path, how: str) -> None:
    target = tmp_path / "owned.txt"
    result = only("landlock").run(WRITES[how].format(target=str(target)))
    assert result.kind == "exception"
    assert result.error is not None and "PermissionError" in result.error
    assert not target.exists()


def test_a_fifo_outside_is_stopped_by_landlock(tmp_path: Path) -> None:
    """os.mkfifo raises no audit event: the full sandbox relies on the kernel here."""
    if "landlock" not in Sandbox(FAST).isolation:
        pytest.skip("landlock is not available on this machine")
    target = tmp_path / "fifo"
    result = Sandbox(FAST).run(f"import os\nos.mkfifo({str(target)!r})")
    assert result.kind == "exception" and "PermissionError" in (result.error or "")
    assert not target.exists()


def test_reading_files_outside_is_blocked(sandbox: Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t")
    for code in (
        f"print(open({str(secret)!r}).read())",
        f"import os\nprint(os.listdir({str(tmp_path)!r}))",
        "print(open('/etc/passwd').read())",
    ):
        result = sandbox.run(code)
        assert result.kind == "blocked", code
        assert result.error is not None and result.error.startswith(
            "reading outside the sandbox directory and the Python library is blocked"
        )
        assert "s3cr3t" not in result.stdout + result.stderr


def test_landlock_alone_stops_reads_outside(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t")
    result = only("landlock").run(f"print(open({str(secret)!r}).read())")
    assert result.kind == "exception" and "Permission denied" in (result.error or "")
    assert "s3cr3t" not in result.stdout


# -------------------------------------------------------------------------- processes
SPAWNS = {
    "subprocess": "import subprocess\nsubprocess.run(['echo', 'escaped'])",
    "os.system": "import os\nos.system('echo escaped')",
    "os.fork": "import os\nif os.fork() == 0:\n    print('escaped')",
    "os.execv": "import os\nos.execv('/bin/echo', ['echo', 'escaped'])",
    "posix_spawn": "import os\nos.posix_spawn('/bin/echo', ['echo', 'escaped'], {})",
    "fork_exec": "import _posixsubprocess\n_posixsubprocess.fork_exec(*[None] * 23)",
    "fork-bomb": "import os\nwhile True:\n    os.fork()",
    "multiprocessing": "import multiprocessing\nmultiprocessing.Process(target=print, args=('escaped',)).start()",
}


@pytest.mark.parametrize("how", SPAWNS)
def test_starting_processes_is_blocked(sandbox: Sandbox, how: str) -> None:
    before = children()
    result = sandbox.run(SPAWNS[how])
    assert (result.ok, result.kind) == (False, "blocked")
    assert result.error is not None and (result.error.startswith("starting processes is blocked"))
    assert "escaped" not in result.stdout
    assert children() == before


@pytest.mark.parametrize("how", ["os.fork", "fork-bomb", "subprocess", "posix_spawn"])
def test_seccomp_alone_stops_new_processes(how: str) -> None:
    result = only("seccomp").run(SPAWNS[how])
    assert result.kind == "exception"
    assert result.error is not None and "Operation not permitted" in result.error
    assert "escaped" not in result.stdout


def test_threads_are_still_allowed_under_seccomp() -> None:
    code = "import threading\nt = threading.Thread(target=print, args=('thread',))\nt.start()\nt.join()"
    assert only("seccomp").run(code).stdout == "thread\n"


def test_signals_to_other_processes_are_blocked(sandbox: Sandbox) -> None:
    result = sandbox.run("import os, signal\nos.kill(os.getppid(), signal.SIGTERM)")
    assert result.kind == "blocked"
    assert result.error == "sending signals to other processes is blocked (os.kill)"


def test_landlock_alone_stops_signals_to_other_processes() -> None:
    result = only("landlock").run("import os\nos.kill(os.getppid(), 0)")
    assert result.kind == "exception"
    assert result.error is not None and "Operation not permitted" in result.error


# ---------------------------------------------------------------- environment, native code
def test_the_parents_environment_never_reaches_the_code(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-leak-0123456789")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-leak-0123456789")
    monkeypatch.setenv("PYTHONPATH", "/nowhere")
    result = sandbox.run(
        "import json, os, sys\nprint(json.dumps(dict(os.environ)))\nprint(sys.path)"
    )
    assert result.kind == "ok"
    environ_line, path_line = result.stdout.splitlines()
    environ = json.loads(environ_line)
    assert set(environ) == {"PATH", "LANG", "HOME", "TMPDIR"}
    assert "leak" not in result.stdout
    assert "/nowhere" not in path_line


def test_the_parents_environment_cannot_be_read_through_proc(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-leak-0123456789")
    code = "import os\nprint(open(f'/proc/{os.getppid()}/environ', 'rb').read())"
    result = sandbox.run(code)
    assert result.kind == "blocked"
    assert "leak" not in result.stdout + result.stderr
    kernel_only = Sandbox(FAST, _without=["audit-hook"])
    if {"landlock", "netns"} & set(kernel_only.isolation):
        result = kernel_only.run(code)
        assert result.kind == "exception" and "Permission denied" in (result.error or "")
        assert "leak" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "code",
    [
        "import ctypes",
        "import importlib\nimportlib.import_module('_ctypes')",
        "import sqlite3\nsqlite3.connect('/tmp/x.db')",
    ],
)
def test_native_code_and_sqlite_are_blocked(sandbox: Sandbox, code: str) -> None:
    result = sandbox.run(code)
    assert result.kind == "blocked"
    assert result.error is not None
    assert result.error.startswith(
        ("loading native code is blocked", "sqlite3 is not available in the sandbox")
    )


def test_the_hook_ignores_patched_helpers(sandbox: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "owned.txt"
    code = (
        "import builtins, os, os.path, posixpath\n"
        "os.path.realpath = posixpath.realpath = lambda p, **k: os.getcwd() + '/x'\n"
        "os.readlink = lambda p: '.'\n"
        "builtins.isinstance = lambda *a: True\n"
        "builtins.type = lambda *a: str\n"
        f"open({str(target)!r}, 'w').write('pwned')\n"
    )
    result = sandbox.run(code)
    assert result.kind == "blocked"
    assert not target.exists()


def test_the_hook_alone_blocks_with_readable_errors(tmp_path: Path, server: socket.socket) -> None:
    hook_only = Sandbox(FAST, _without=KERNEL_LAYERS)
    assert hook_only.isolation == ("process", "tmpdir", "rlimits", "audit-hook")
    target = tmp_path / "owned.txt"
    port = server.getsockname()[1]
    for code in (
        WRITES["open"].format(target=str(target)),
        CONNECTS["raw-socket"].format(port=port),
        SPAWNS["os.fork"],
    ):
        assert hook_only.run(code).kind == "blocked"
    assert not target.exists()
    assert_no_connection(server)


# ------------------------------------------------------------------------------- asyncio
def test_arun_runs_several_in_parallel_without_blocking_the_loop() -> None:
    sandbox = Sandbox(SandboxLimits(timeout=10.0))
    code = "import time\nprint(time.monotonic())\ntime.sleep(1.5)\nprint(time.monotonic())"

    async def main() -> tuple[list[SandboxResult], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.ensure_future(ticker())
        results = await asyncio.gather(*(sandbox.arun(code) for _ in range(3)))
        ticking.cancel()
        return list(results), ticks

    results, ticks = asyncio.run(main())
    assert [r.kind for r in results] == ["ok"] * 3
    spans = [tuple(float(v) for v in r.stdout.split()) for r in results]
    assert max(start for start, _ in spans) < min(end for _, end in spans)  # all at once
    assert ticks > 10  # the event loop kept running meanwhile


def test_arun_gives_the_same_results_as_run(sandbox: Sandbox, server: socket.socket) -> None:
    port = server.getsockname()[1]
    codes = [
        "print(6 * 7)",
        "1 / 0",
        "x = bytearray(10**10)",
        CONNECTS["raw-socket"].format(port=port),
        "print('y' * 10_000)",
    ]

    async def main() -> list[SandboxResult]:
        return list(await asyncio.gather(*(sandbox.arun(code) for code in codes)))

    for sync, result in zip(
        [sandbox.run(code) for code in codes], asyncio.run(main()), strict=True
    ):
        assert (result.kind, result.error, result.stdout) == (sync.kind, sync.error, sync.stdout)
    assert_no_connection(server)


def test_arun_times_out_and_kills_the_child(sandbox: Sandbox) -> None:
    before = children()
    code = "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)"
    result = asyncio.run(sandbox.arun(code))
    assert (result.kind, result.error) == ("timeout", "timed out after 2s")
    assert not Path(f"/proc/{int(result.stdout)}").exists()
    assert children() == before


def test_runs_from_several_threads_at_once(sandbox: Sandbox) -> None:
    from concurrent.futures import ThreadPoolExecutor

    codes = [f"print({i} * {i})" for i in range(6)] + ["1 / 0", "import os\nos.fork()"]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(sandbox.run, codes))
    assert [r.stdout for r in results[:6]] == [f"{i * i}\n" for i in range(6)]
    assert [r.kind for r in results[6:]] == ["exception", "blocked"]


def test_cancelling_arun_kills_the_child(sandbox: Sandbox, _own_tempdir: Path) -> None:
    before = children()

    async def main() -> None:
        task = asyncio.ensure_future(sandbox.arun("import time\ntime.sleep(60)"))
        while not list(_own_tempdir.iterdir()) or children() == before:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert children() == before


# ---------------------------------------------------------------------- API and layers
@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": 0},
        {"timeout": -1.0},
        {"timeout": float("inf")},
        {"timeout": "10"},
        {"cpu_seconds": 0},
        {"cpu_seconds": 1.5},
        {"cpu_seconds": True},
        {"memory_mb": 16},
        {"output_bytes": -1},
        {"network": "no"},
    ],
)
def test_bad_limits_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(SandboxError, match=f"SandboxLimits.{next(iter(kwargs))}"):
        SandboxLimits(**kwargs)  # type: ignore[arg-type]


def test_misuse_raises_a_typed_error() -> None:
    assert issubclass(SandboxError, SigforgeError)
    with pytest.raises(SandboxError, match="code must be a str"):
        Sandbox(FAST).run(b"print(1)")  # type: ignore[arg-type]
    with pytest.raises(SandboxError, match="must be a SandboxLimits"):
        Sandbox({"timeout": 1})  # type: ignore[arg-type]
    with pytest.raises(SandboxError, match="cannot be turned off"):
        Sandbox(FAST, _without=["process"])


def test_run_python_uses_the_defaults() -> None:
    assert SandboxLimits() == DEFAULT_LIMITS
    assert DEFAULT_LIMITS.network is False
    assert run_python("print('hi')").stdout == "hi\n"
    assert run_python("1/0", FAST).error == "ZeroDivisionError: division by zero"


def _kernel_offers(layer: str) -> bool:
    """Ask the kernel directly (not through the sandbox) whether a layer is possible."""
    if layer == "netns":
        unshare = shutil.which("unshare")
        return unshare is not None and subprocess.run([unshare, "-rn", "true"]).returncode == 0
    if layer == "landlock":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        abi = libc.syscall(ctypes.c_long(444), None, ctypes.c_long(0), ctypes.c_long(1))
        return int(abi) >= 1
    status = Path("/proc/self/status").read_text()
    return platform.machine() == "x86_64" and "Seccomp:" in status


@pytest.mark.skipif(platform.system() != "Linux", reason="kernel layers are Linux's")
def test_isolation_matches_the_kernel() -> None:
    isolation = Sandbox().isolation
    assert list(isolation) == [layer for layer in LAYERS if layer in isolation]
    assert {"process", "tmpdir", "rlimits", "audit-hook"} <= set(isolation)
    for layer in KERNEL_LAYERS:
        assert (layer in isolation) == _kernel_offers(layer), layer
    assert "netns" not in Sandbox(SandboxLimits(network=True)).isolation
    assert Sandbox(_without=["seccomp", "audit-hook"]).isolation == tuple(
        layer for layer in isolation if layer not in ("seccomp", "audit-hook")
    )


def test_the_limits_are_set_in_the_child(sandbox: Sandbox) -> None:
    code = (
        "import resource\n"
        "for name in ('RLIMIT_AS', 'RLIMIT_CPU', 'RLIMIT_FSIZE', 'RLIMIT_NOFILE', 'RLIMIT_CORE'):\n"
        "    print(name, *resource.getrlimit(getattr(resource, name)))\n"
    )
    result = sandbox.run(code)
    assert result.stdout.splitlines() == [
        f"RLIMIT_AS {256 * 2**20} {256 * 2**20}",
        "RLIMIT_CPU 1 2",
        f"RLIMIT_FSIZE {64 * 2**20} {64 * 2**20}",
        "RLIMIT_NOFILE 256 256",
        "RLIMIT_CORE 0 0",
    ]
    raised = sandbox.run("import resource\nresource.setrlimit(resource.RLIMIT_CPU, (2, 2))")
    assert raised.kind == "blocked"


def test_no_process_is_left_after_many_runs(sandbox: Sandbox) -> None:
    before = children()
    for code in ("print(1)", "1/0", "import os\nos.fork()", "x = bytearray(10**10)"):
        sandbox.run(code)
    assert children() == before
