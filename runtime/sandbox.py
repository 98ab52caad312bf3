"""Run untrusted Python (an LM's ``program_of_thought`` code) in a disposable, locked-down process.

:meth:`Sandbox.run` (blocking) and :meth:`Sandbox.arun` (asyncio) start a fresh
interpreter per snippet and return a :class:`SandboxResult`: what the code printed, and
for a failure an ``error`` line written for the LM (``"ZeroDivisionError: division by
zero"``, ``"timed out after 10s"``, ``"network access is blocked (...)"``). Failures of the
code are results, never exceptions; only misuse of the API (bad limits) or a machine on
which no sandboxed interpreter can start raise :class:`SandboxError`.

Layers (``Sandbox.isolation`` lists the ones active on this machine)
--------------------------------------------------------------------
The child is ``python -I -S -B -X utf8`` (isolated mode, no ``site``, so only the
standard library), started in two stages:

1. **setup** (with ``ctypes``): enters a new user and network namespace
   (``unshare(CLONE_NEWUSER | CLONE_NEWNET)``; the namespace has no interfaces, not even
   an up loopback), sets the resource limits (``RLIMIT_AS``, ``RLIMIT_CPU``,
   ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``, ``RLIMIT_CORE``, and ``RLIMIT_NPROC`` inside the
   namespace), sets ``no_new_privs``, applies a Landlock ruleset (files: read the standard
   library and system libraries, write only the sandbox directory, execute only the
   interpreter; TCP bind/connect denied; no signals or abstract sockets out of the
   sandbox) and a seccomp filter (no new processes, namespaces, mounts, ptrace, BPF,
   io_uring, keyrings or kernel modules), then ``execve``\\ s stage 2: the kernel layers
   stay, ``ctypes`` does not.
2. **run**: installs an audit hook (``sys.addaudithook``) that refuses sockets, process
   creation, ``ctypes``, signals to other processes, file writes outside the sandbox
   directory and reads outside it and the standard library, then runs the code.

The kernel layers are the security boundary; the audit hook is the readable part (it
names what was refused, and the result's ``kind`` is ``"blocked"``) and a second line
where a kernel layer is missing. A layer the kernel does not offer is left out of
``isolation`` (probed once per process by starting one interpreter) rather than faked.
docs/sandbox.md is the threat model: what a snippet can and cannot do, and what to add
in production.

Around the child: a scrubbed environment (no variable of the parent's, so no API key,
reaches it), a fresh temporary working directory that is removed afterwards, its own
session, a wall-clock deadline after which the whole process group is killed, and
stdout/stderr kept up to ``output_bytes`` each (the rest is drained and counted, never
buffered). The child reports its outcome on a private pipe; whatever that report says,
the parent's own observations (deadline, exit signal) decide timeouts and crashes.

``ctypes``, ``subprocess`` and ``asyncio`` are used only by the child or imported when a
run starts, so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import json
import marshal
import math
import os
import shutil
import signal
import stat
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, Literal

from .errors import SigforgeError

__all__ = [
    "DEFAULT_LIMITS",
    "Sandbox",
    "SandboxError",
    "SandboxLimits",
    "SandboxResult",
    "run_python",
]

ResultKind = Literal["ok", "exception", "timeout", "memory", "blocked", "crashed"]

#: the layers a sandbox can have, in the order ``Sandbox.isolation`` lists them
LAYERS: Final = (
    "process",
    "tmpdir",
    "rlimits",
    "netns",
    "landlock",
    "seccomp",
    "audit-hook",
)
#: layers that depend on the kernel (probed) and the audit hook; only these can be missing
_OPTIONAL_LAYERS: Final = frozenset({"netns", "landlock", "seccomp", "audit-hook"})
_KERNEL_LAYERS: Final = ("netns", "landlock", "seccomp")

#: largest file the code may write in its directory (``RLIMIT_FSIZE``)
FILE_SIZE_LIMIT: Final = 64 * 1024 * 1024
#: open files the code may hold (``RLIMIT_NOFILE``)
OPEN_FILES_LIMIT: Final = 256
#: processes and threads the code may run at once (``RLIMIT_NPROC``, set inside the
#: user namespace only: outside one it would count all of the user's processes)
PROCESS_LIMIT: Final = 64
#: smallest ``memory_mb`` an interpreter starts in
MIN_MEMORY_MB: Final = 64
#: how long to wait for the pipes to close after the process was killed
_DRAIN_GRACE: Final = 0.5


class SandboxError(SigforgeError):
    """The sandbox was misused (bad limits, code that is not text) or cannot start Python.

    Problems of the code itself (exceptions, timeouts, blocked operations) are never
    raised: they are :class:`SandboxResult`\\ s with ``ok=False``.
    """


def _check_number(name: str, value: object, minimum: float, *, integer: bool) -> None:
    """Raise SandboxError unless ``value`` is a (finite) number of the right kind >= minimum."""
    valid_type = isinstance(value, int) or (not integer and isinstance(value, float))
    if isinstance(value, bool) or not valid_type:
        expected = "an int" if integer else "a number"
        raise SandboxError(f"SandboxLimits.{name} must be {expected}, not {value!r}")
    assert isinstance(value, int | float)
    if not math.isfinite(value) or value < minimum:
        raise SandboxError(f"SandboxLimits.{name} must be at least {minimum:g}, not {value!r}")


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """What one run may use. Invalid values raise :class:`SandboxError`."""

    #: wall-clock seconds for the whole run (start-up included); then the process group
    #: is killed and the result is ``kind="timeout"``
    timeout: float = 10.0
    #: CPU seconds (``RLIMIT_CPU``); exceeding it is also ``kind="timeout"``
    cpu_seconds: int = 10
    #: address space in MiB (``RLIMIT_AS``); exceeding it is ``kind="memory"``. Each
    #: thread reserves stack and arena space, so threaded code needs more than it uses.
    memory_mb: int = 512
    #: bytes of stdout and of stderr kept each; beyond that the output is counted and
    #: dropped, and a note at the end of the kept text says so
    output_bytes: int = 64_000
    #: allow network access (no network namespace, no socket rules). Never the default.
    network: bool = False

    def __post_init__(self) -> None:
        _check_number("timeout", self.timeout, 0.001, integer=False)
        _check_number("cpu_seconds", self.cpu_seconds, 1, integer=True)
        _check_number("memory_mb", self.memory_mb, MIN_MEMORY_MB, integer=True)
        _check_number("output_bytes", self.output_bytes, 0, integer=True)
        if not isinstance(self.network, bool):
            raise SandboxError(f"SandboxLimits.network must be a bool, not {self.network!r}")


#: the limits of ``Sandbox()`` and ``run_python(code)``
DEFAULT_LIMITS: Final = SandboxLimits()


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """The outcome of one run. ``ok`` is True exactly when ``kind == "ok"``."""

    #: the code ran to completion without an exception
    ok: bool
    #: what the code printed (and the ``repr`` of a final expression that is not None),
    #: with a truncation note at the end when it printed more than ``output_bytes``
    stdout: str
    #: what the code wrote to stderr, including the traceback of an exception
    stderr: str
    #: one short line for the LM, or None when ``ok``: the exception line
    #: (``"ZeroDivisionError: division by zero"``), ``"timed out after 10s"``,
    #: ``"memory limit of 512 MB exceeded"``, ``"network access is blocked (...)"``, ...
    error: str | None
    #: ``"exception"``: the code raised (syntax errors included); ``"timeout"``: wall
    #: clock or CPU limit; ``"memory"``: address-space limit; ``"blocked"``: the code
    #: attempted something the sandbox refuses (even if it caught the error);
    #: ``"crashed"``: the interpreter died of a signal
    kind: ResultKind
    #: seconds from starting the interpreter to its end
    duration: float


# ---------------------------------------------------------------------------------------
# The child program. Stage "setup" applies the kernel layers and execs stage "run" (the
# same source, from sys.orig_argv) in a fresh interpreter that never imported ctypes.
# Only the standard library; written for `python -I -S`.
# ---------------------------------------------------------------------------------------
_CHILD_SOURCE: Final = r'''
import marshal, os, sys

try:
    from _json import encode_basestring_ascii as quote  # json itself costs ~20 ms to import
except ImportError:
    from json.encoder import encode_basestring_ascii as quote

SETUP_FAILED = 70


def encode(value):
    """JSON for the status pipe (str, int, bool, None, lists and dicts of them)."""
    if value is None or value is True or value is False:
        return {None: "null", True: "true", False: "false"}[value]
    if type(value) is str:
        return quote(value)
    if type(value) is int:
        return "%d" % value
    if type(value) is dict:
        return "{%s}" % ", ".join("%s: %s" % (quote(k), encode(v)) for k, v in value.items())
    return "[%s]" % ", ".join(encode(v) for v in value)


def report(fd, record):
    os.write(fd, (encode(record) + "\n").encode())


# ----------------------------------------------------------------------------- setup
def setup(cfg):
    import resource

    fd = cfg["status_fd"]
    best_effort = cfg["probe"]
    applied, missing = [], {}

    def unavailable(layer, reason):
        if not best_effort:
            report(fd, {"setup_error": "%s: %s" % (layer, reason)})
            os._exit(SETUP_FAILED)
        missing[layer] = reason

    def attempt(layer, apply):
        try:
            why = apply()
        except Exception as exc:  # e.g. a libc without unshare, a system without O_PATH
            why = "%s: %s" % (type(exc).__name__, exc)
        if why is None:
            applied.append(layer)
        else:
            unavailable(layer, why)

    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
    except Exception as exc:  # no ctypes in this build: no kernel layers
        for layer in cfg["layers"]:
            unavailable(layer, "ctypes is unavailable (%s)" % exc)
        libc = None

    def errno_text(call):
        return "%s: %s" % (call, os.strerror(ctypes.get_errno()))

    def unshare_network():
        if libc.unshare(ctypes.c_int(0x10000000 | 0x40000000)) != 0:  # NEWUSER | NEWNET
            return errno_text("unshare")
        return None

    executable = os.path.realpath(sys.executable)
    read_dirs, read_files = readable_paths(executable)
    write_files = [p for p in ("/dev/null",) if os.path.exists(p)]
    if libc is not None:
        if "netns" in cfg["layers"]:
            attempt("netns", unshare_network)
        confining = [layer for layer in ("landlock", "seccomp") if layer in cfg["layers"]]
        why = None
        if confining:  # PR_SET_NO_NEW_PRIVS: required by both; no set-uid gains through exec
            try:
                if libc.prctl(ctypes.c_int(38), ctypes.c_ulong(1), ctypes.c_ulong(0),
                              ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
                    why = errno_text("no_new_privs")
            except Exception as exc:
                why = "no_new_privs: %s" % exc
        if why is not None:
            for layer in confining:
                unavailable(layer, why)
        else:
            if "landlock" in confining:
                attempt("landlock", lambda: landlock(libc, ctypes, cfg, read_dirs, read_files,
                                                     write_files, executable))
            if "seccomp" in confining:
                attempt("seccomp", lambda: seccomp(libc, ctypes, cfg["network"]))

    limits = cfg["limits"]

    def cap(which, soft, hard):
        old_soft, old_hard = resource.getrlimit(which)
        if old_hard != resource.RLIM_INFINITY:
            hard = min(hard, old_hard)
        resource.setrlimit(which, (min(soft, hard), hard))

    cap(resource.RLIMIT_CORE, 0, 0)
    cap(resource.RLIMIT_CPU, limits["cpu_seconds"], limits["cpu_seconds"] + 1)
    cap(resource.RLIMIT_FSIZE, limits["file_bytes"], limits["file_bytes"])
    cap(resource.RLIMIT_NOFILE, limits["open_files"], limits["open_files"])
    if "netns" in applied:  # counted per user namespace: only the sandbox's own processes
        cap(resource.RLIMIT_NPROC, limits["processes"], limits["processes"])
    memory = limits["memory_mb"] * 1024 * 1024
    cap(resource.RLIMIT_AS, memory, memory)

    report(fd, {"layers": applied, "missing": missing})
    cfg = dict(cfg, stage="run", layers=applied, read_dirs=read_dirs, read_files=read_files,
               write_files=write_files)
    argv = list(sys.orig_argv)
    argv[-1] = marshal.dumps(cfg).hex()
    try:
        os.execv(executable, argv)
    except OSError as exc:
        report(fd, {"setup_error": "cannot start %s: %s" % (executable, exc)})
        os._exit(SETUP_FAILED)


def readable_paths(executable):
    """Directories and files the code may read: this interpreter's library and the
    shared libraries it (and the standard library's extension modules) load."""
    dirs = []
    for p in list(sys.path) + [os.path.join(sys.base_prefix, "lib"), "/lib", "/lib64",
                               "/usr/lib", "/usr/lib64", "/usr/local/lib",
                               "/usr/share/zoneinfo"]:
        if p and os.path.isdir(p):
            dirs.append(os.path.realpath(p))
    try:
        with open("/proc/self/maps") as maps:  # where this interpreter's libraries live
            for line in maps:
                fields = line.split(None, 5)
                if len(fields) == 6 and fields[5].startswith("/"):
                    path = os.path.realpath(fields[5].strip())
                    if os.path.isfile(path) and path != executable:
                        dirs.append(os.path.dirname(path))
    except OSError:
        pass
    public = ("/etc/localtime", "/etc/ld.so.cache", "/etc/mime.types", "/dev/urandom",
              "/dev/zero")
    files = [executable] + [os.path.realpath(p) for p in public if os.path.exists(p)]
    files += [os.path.realpath(p) for p in sys.path if p and os.path.isfile(p)]
    return sorted(set(dirs)), sorted(set(files))


def landlock(libc, ctypes, cfg, read_dirs, read_files, write_files, executable):
    import stat
    import struct

    def call(*args):
        return libc.syscall(*[a if a is None or not isinstance(a, int) else ctypes.c_long(a)
                              for a in args])

    abi = call(444, None, 0, 1)  # landlock_create_ruleset(NULL, 0, VERSION)
    if abi < 1:
        return "not offered by this kernel (%s)" % os.strerror(ctypes.get_errno())
    fs = (1 << 13) - 1  # ABI 1: execute .. make_sym
    if abi >= 2:
        fs |= 1 << 13  # refer
    if abi >= 3:
        fs |= 1 << 14  # truncate
    if abi >= 5:
        fs |= 1 << 15  # ioctl_dev
    net = 3 if abi >= 4 and not cfg["network"] else 0  # bind_tcp | connect_tcp
    scoped = 3 if abi >= 6 else 0  # abstract unix sockets | signals
    if abi >= 6:
        attr = struct.pack("=QQQ", fs, net, scoped)
    elif abi >= 4:
        attr = struct.pack("=QQ", fs, net)
    else:
        attr = struct.pack("=Q", fs)
    attr_buf = ctypes.create_string_buffer(attr, len(attr))
    ruleset = call(444, attr_buf, len(attr), 0)
    if ruleset < 0:
        return "create_ruleset: " + os.strerror(ctypes.get_errno())
    execute, write_file, read_file, read_dir = 1, 2, 4, 8
    file_rights = (execute | write_file | read_file | (1 << 14) | (1 << 15)) & fs
    everything_but = fs & ~(execute | (1 << 6) | (1 << 11) | (1 << 15))  # no exec, devices, ioctl

    def allow(path, access):
        try:
            pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return None  # nothing there: nothing to allow
        try:
            if not stat.S_ISDIR(os.fstat(pfd).st_mode):
                access &= file_rights
            rule = struct.pack("=Qi", access & fs, pfd)
            rule_buf = ctypes.create_string_buffer(rule, len(rule))
            if call(445, ruleset, 1, rule_buf, 0) != 0:  # LANDLOCK_RULE_PATH_BENEATH
                return "add_rule %s: %s" % (path, os.strerror(ctypes.get_errno()))
        finally:
            os.close(pfd)
        return None

    rules = [(cfg["root"], everything_but)]
    rules += [(path, execute | read_file) for path in [executable] + elf_interpreter(executable)]
    rules += [(d, read_file | read_dir) for d in read_dirs]
    rules += [(f, read_file) for f in read_files]
    rules += [(f, read_file | write_file | (1 << 14)) for f in write_files]
    try:
        for path, access in rules:
            why = allow(path, access)
            if why is not None:
                return why
        if call(446, ruleset, 0) != 0:  # landlock_restrict_self
            return "restrict_self: " + os.strerror(ctypes.get_errno())
    finally:
        os.close(ruleset)
    return None


def elf_interpreter(executable):
    """The dynamic loader the kernel opens (and Landlock checks for execute) when it
    starts ``executable``: its ELF PT_INTERP, as a list of zero or one path."""
    import struct
    try:
        with open(executable, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit ELF only
                return []
            order = "<" if head[5] == 1 else ">"
            phoff, = struct.unpack_from(order + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(order + "HH", head, 54)
            for i in range(phnum):
                f.seek(phoff + i * phentsize)
                kind, _, offset, _, _, size = struct.unpack(order + "IIQQQQ", f.read(40))
                if kind == 3:  # PT_INTERP
                    f.seek(offset)
                    path = f.read(size).rstrip(b"\0").decode()
                    return [os.path.realpath(path)] if os.path.isfile(path) else []
    except (OSError, ValueError, struct.error):
        pass
    return []


# x86_64 system calls the code never needs and a sandbox must not allow
DENIED_SYSCALLS = (
    57, 58,  # fork, vfork (clone is checked below: threads only)
    101, 310, 311,  # ptrace, process_vm_readv, process_vm_writev
    165, 166, 155, 161, 428, 429, 430, 431, 432, 433, 442,  # mount family, chroot
    272, 308,  # unshare, setns
    321, 298, 323,  # bpf, perf_event_open, userfaultfd
    248, 249, 250,  # add_key, request_key, keyctl
    246, 320, 175, 313, 176, 169,  # kexec_*, *_module, reboot
    425, 426, 427,  # io_uring
    303, 304,  # name_to_handle_at, open_by_handle_at
    167, 168, 163, 172, 173,  # swapon, swapoff, acct, iopl, ioperm
)


def seccomp(libc, ctypes, network):
    import struct
    if os.uname().machine != "x86_64":
        return "no filter for %s" % os.uname().machine
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, kill = 0x7FFF0000, 0x80000000
    eperm, enosys = 0x00050000 | 1, 0x00050000 | 38
    prog = [
        (ld, 0, 0, 4),  # seccomp_data.arch
        (jeq, 1, 0, 0xC000003E),  # AUDIT_ARCH_X86_64
        (ret, 0, 0, kill),
        (ld, 0, 0, 0),  # seccomp_data.nr
        (jge, 0, 1, 0x40000000),  # x32 system calls
        (ret, 0, 0, eperm),
    ]
    for nr in DENIED_SYSCALLS:
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, eperm)]
    # socket(): none without network (socketpair stays: asyncio needs it); with network,
    # IPv4/IPv6 only. Either way no AF_UNIX socket(), so no connect() to a socket file
    # (/var/run/docker.sock, ...), which the network namespace would not stop.
    if network:
        prog += [
            (jeq, 0, 5, 41),  # socket
            (ld, 0, 0, 16),  # args[0], the domain
            (jeq, 2, 0, 2),  # AF_INET
            (jeq, 1, 0, 10),  # AF_INET6
            (ret, 0, 0, eperm),
            (ret, 0, 0, allow),
        ]
    else:
        prog += [(jeq, 0, 1, 41), (ret, 0, 0, eperm)]
    prog += [
        (jeq, 0, 1, 435), (ret, 0, 0, enosys),  # clone3: flags out of reach, libc falls back
        (jeq, 0, 4, 56),  # clone
        (ld, 0, 0, 16),  # low half of args[0], the flags
        (jset, 0, 1, 0x00010000),  # CLONE_THREAD: a thread, not a process
        (ret, 0, 0, allow),
        (ret, 0, 0, eperm),
        (ret, 0, 0, allow),
    ]
    code = b"".join(struct.pack("=HBBI", *insn) for insn in prog)
    buf = ctypes.create_string_buffer(code, len(code))

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    program = Program(len(prog), ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(ctypes.c_int(22), ctypes.c_ulong(2), ctypes.byref(program),  # SET_SECCOMP, FILTER
                  ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        return "prctl: " + os.strerror(ctypes.get_errno())
    return None


# ------------------------------------------------------------------------------- run
class SandboxViolation(PermissionError):
    """The sandbox refused an operation."""


# modules that reach native code, processes or files beyond the audit events (pairs, not a
# dict: everything the hook holds is immutable)
BLOCKED_IMPORTS = (
    ("ctypes", "loading native code is blocked"),
    ("_ctypes", "loading native code is blocked"),
    ("_posixsubprocess", "starting processes is blocked"),  # imported (and disarmed) before
    ("_multiprocessing", "starting processes is blocked"),
    ("_posixshmem", "shared memory is blocked"),
    ("_xxsubinterpreters", "subinterpreters are blocked"),  # they would run without the hook
    ("_xxinterpchannels", "subinterpreters are blocked"),
    ("_sqlite3", "sqlite3 is not available in the sandbox"),  # ATTACH opens files unaudited
    ("_dbm", "dbm is not available in the sandbox"),
    ("_gdbm", "dbm is not available in the sandbox"),
    ("readline", "readline is not available in the sandbox"),
    ("_tkinter", "tkinter is not available in the sandbox"),
    ("_curses", "curses is not available in the sandbox"),
    ("_curses_panel", "curses is not available in the sandbox"),
    ("syslog", "syslog is not available in the sandbox"),
)
PROCESS_EVENTS = frozenset({
    "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.system",
    "subprocess.Popen", "pty.spawn", "os.startfile",
})
NETWORK_EVENTS = frozenset({
    "socket.bind", "socket.connect", "socket.sendto", "socket.sendmsg",
    "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
    "socket.getnameinfo", "socket.sethostname", "urllib.Request",
})
# events that change files, and the path argument(s) each changes (the first, or two)
WRITE_EVENTS = frozenset({
    "os.remove", "os.rmdir", "os.mkdir", "os.truncate", "os.chmod", "os.chown", "os.utime",
    "os.setxattr", "os.removexattr", "os.chflags", "os.lchflags", "os.rename",
})
READ_EVENTS = frozenset({"os.listdir", "os.scandir", "glob.glob", "glob.glob/2", "os.chdir"})


def make_hook(cfg, violations):
    """The audit hook. Everything it uses is bound here, so code that later patches
    builtins or modules (os.path.realpath, isinstance, ...) cannot change its answers."""
    import _posixsubprocess
    import _stat

    root = cfg["root"]
    read_dirs = tuple(cfg["read_dirs"])
    read_files = frozenset(cfg["read_files"])
    write_files = frozenset(cfg["write_files"])
    network = cfg["network"]
    getcwd, lstat, stat_, readlink = os.getcwd, os.lstat, os.stat, os.readlink
    fs_encoding = sys.getfilesystemencoding()  # os.fsdecode is Python and looks up builtins
    is_link, is_dir = _stat.S_ISLNK, _stat.S_ISDIR
    fspath, str_, bytes_, int_, tuple_, type_, len_ = os.fspath, str, bytes, int, tuple, type, len
    join = "".join  # "".join((s,)) is an exact str even for a str subclass
    getframe = sys._getframe
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    blocked_imports = BLOCKED_IMPORTS
    write_events, read_events = WRITE_EVENTS, READ_EVENTS
    process_events, network_events = PROCESS_EVENTS, NETWORK_EVENTS
    own_pid = os.getpid()
    record = violations.append
    Violation = SandboxViolation

    def deny(message):
        record(message)
        raise Violation(message)

    def resolve(path):
        """The absolute path with every symbolic link resolved (lexically where a
        component does not exist)."""
        done, todo, links = [], path.split("/")[::-1], 0
        while todo:
            part = todo.pop()
            if part == "" or part == ".":
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            here = "/" + "/".join(done + [part])
            try:
                mode = lstat(here).st_mode
            except (OSError, ValueError):
                done.append(part)
                continue
            if is_link(mode):
                links += 1
                target = readlink(here) if links <= 40 else "/"
                if target.startswith("/"):
                    done = []
                todo.extend(target.split("/")[::-1])
                continue
            done.append(part)
        return "/" + "/".join(done)

    def targets(raw):
        """Where a path argument may point: relative paths are resolved both from the
        working directory and from the sandbox root (a dir_fd can only be in there)."""
        try:
            raw = fspath(raw)  # a path object's __fspath__ runs here: see docs/sandbox.md
        except TypeError:
            deny("not a path: %s" % type_(raw).__name__)
        if type_(raw) is bytes_:
            path = raw.decode(fs_encoding, "surrogateescape")
        else:
            path = join((raw,))  # no str subclass methods from here on
        if path.startswith("/"):
            return (resolve(path),)
        return (resolve(getcwd() + "/" + path), resolve(root + "/" + path))

    def within(path, base):
        return path == base or path.startswith(base + "/") or base == "/"

    def may_write(path):
        return within(path, root) or path in write_files

    def may_read(path):
        if may_write(path) or path in read_files:
            return True
        for d in read_dirs:
            if within(path, d):
                return True
        return False

    def check_write(raw, what):
        if raw is None or type_(raw) is int_:
            return  # an open file descriptor: checked when it was opened
        for p in targets(raw):
            if not may_write(p):
                deny("writing outside the sandbox directory is blocked: %s (%s)" % (p, what))

    def check_read(raw, what):
        if raw is None or type_(raw) is int_:
            return
        for p in targets(raw):
            if not may_read(p):
                deny("reading outside the sandbox directory and the Python library is "
                     "blocked: %s (%s)" % (p, what))

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            if path is None or type_(path) is int_:
                return
            writing = (type_(flags) is int_ and flags & write_flags) or (
                type_(mode) is str_ and ("w" in mode or "a" in mode or "x" in mode
                                         or "+" in mode))
            if writing:
                check_write(path, "open")
                return
            check_read(path, "open")
            if mode is None:  # os.open: no directory handles outside (dir_fd escapes)
                for p in targets(path):
                    if not within(p, root):
                        try:
                            directory = is_dir(stat_(p).st_mode)
                        except (OSError, ValueError):
                            directory = False
                        if directory:
                            deny("opening directories outside the sandbox directory is "
                                 "blocked: %s" % p)
        elif event in write_events:
            check_write(args[0], event)
            if event == "os.rename":
                check_write(args[1], event)
        elif event in read_events:
            check_read(args[0], event)
        elif event == "os.link" or event == "os.symlink":
            deny("creating links is blocked (%s)" % event)
        elif event in process_events or event == "cpython.PyInterpreterState_New":
            deny("starting processes is blocked (%s)" % event)
        elif event == "import":
            name = join((args[0],))
            for blocked, reason in blocked_imports:
                if name == blocked:
                    deny("%s (import %s)" % (reason, name))
        elif event.startswith("ctypes."):
            deny("loading native code is blocked (%s)" % event)
        elif event == "os.kill" or event == "os.killpg":
            if type_(args[0]) is not int_ or (args[0] != own_pid and args[0] != 0):
                deny("sending signals to other processes is blocked (%s)" % event)
        elif event.startswith("gc.get_"):
            deny("inspecting the interpreter's objects is blocked (%s)" % event)
        elif event == "resource.setrlimit" or event == "resource.prlimit":
            deny("changing resource limits is blocked (%s)" % event)
        elif event == "sqlite3.connect":
            deny("sqlite3 is not available in the sandbox")
        elif event == "socket.__new__":
            if args[1] == 1:  # AF_UNIX: socketpair() only (asyncio needs it), no socket files
                wrapper = getframe(1)  # socket.socket.__init__, called by socket.socketpair
                caller = wrapper.f_back
                if caller is None or caller.f_code.co_name != "socketpair":
                    deny("network access is blocked (socket.__new__ AF_UNIX)")
            elif not network:
                deny("network access is blocked (socket.__new__)")
        elif event in network_events and not network:
            detail = ""
            address = args[1] if event.startswith("socket.") and len_(args) > 1 else None
            if (type_(address) is tuple_ and len_(address) >= 2
                    and type_(address[0]) is str_ and type_(address[1]) is int_):
                detail = " %s:%d" % (address[0][:100], address[1])
            deny("network access is blocked (%s%s)" % (event, detail))

    def fork_exec(*args, **kwargs):  # _posixsubprocess raises no audit event of its own
        deny("starting processes is blocked (_posixsubprocess.fork_exec)")

    _posixsubprocess.fork_exec = fork_exec
    return hook


def run(cfg):
    import _ast, _signal, builtins, io  # before the hook; traceback only if needed

    # bound now: the code may patch builtins and modules before this reports its outcome
    write, exit_ = os.write, os._exit
    any_error, memory_error, system_exit = BaseException, MemoryError, SystemExit
    fd = cfg["status_fd"]
    os.set_inheritable(fd, False)
    source = sys.stdin.buffer.read().decode("utf-8", "surrogatepass")
    sys.stdin.close()
    sys.stdin = io.StringIO()
    stdout, stderr = sys.stdout, sys.stderr
    for stream in (stdout, stderr):  # line buffered: output survives a kill
        stream.reconfigure(line_buffering=True, errors="backslashreplace")
    _signal.signal(_signal.SIGXFSZ, _signal.SIG_IGN)  # a too large file: OSError, not death
    report(fd, {"started": True})

    violations = []
    if cfg["hook"]:
        sys.addaudithook(make_hook(cfg, violations))

    main = type(sys)("__main__")
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    user_globals = main.__dict__
    kind, error = "ok", None
    try:
        tree = compile(source, "<code>", "exec", _ast.PyCF_ONLY_AST)
        tail = None
        if tree.body and type(tree.body[-1]) is _ast.Expr:  # shown like the REPL does
            tail = compile(_ast.Expression(tree.body.pop().value), "<code>", "eval")
        body = compile(tree, "<code>", "exec")
    except memory_error:
        kind, error = "memory", "MemoryError"
    except any_error as exc:  # SyntaxError, ValueError (null bytes), RecursionError
        kind, error = "exception", describe(exc, source, stderr, frames=False)
    else:
        try:
            exec(body, user_globals)
            if tail is not None:
                value = eval(tail, user_globals)
                if value is not None:
                    print(repr(value), file=stdout)
        except system_exit as exc:
            if exc.code is not None and exc.code != 0:
                kind, error = "exception", "SystemExit: %s" % (exc.code,)
        except memory_error:
            user_globals.clear()
            kind, error = "memory", "MemoryError"
            try:
                stderr.write("MemoryError\n")
            except any_error:
                pass
        except any_error as exc:
            kind, error = "exception", describe(exc, source, stderr)
    if violations:
        kind, error = "blocked", violations[0]
    for stream in (stdout, stderr):
        try:
            stream.flush()
        except any_error:
            pass
    text = "null"
    if error is not None:
        try:
            text = quote(error[:2000])
        except any_error:
            text = '"an error that cannot be shown"'
    write(fd, ('{"kind": "%s", "error": %s}\n' % (kind, text)).encode())
    exit_(0)


def describe(exc, source, stderr, frames=True):
    """Print the traceback (the code's frames only: none of this bootstrap's, none of
    the compiler's for a syntax error) and return its last line."""
    try:
        import linecache, traceback

        linecache.cache["<code>"] = (len(source), None, source.splitlines(True), "<code>")
        te = traceback.TracebackException(type(exc), exc, exc.__traceback__)
        seen, todo = set(), [te]
        while todo:
            t = todo.pop()
            if t is None or id(t) in seen:
                continue
            seen.add(id(t))
            t.stack = traceback.StackSummary.from_list(
                [f for f in t.stack if frames and f.filename != "<string>"])
            todo += [t.__cause__, t.__context__]
        lines = list(te.format())
        stderr.write("".join(lines))
        line = lines[-1].strip() if lines else exc.__class__.__name__
        if isinstance(exc, SyntaxError) and exc.lineno:
            line += " (line %d)" % exc.lineno
        return line
    except BaseException:  # the code broke what formatting needs
        return exc.__class__.__name__


cfg = marshal.loads(bytes.fromhex(sys.argv[-1]))
if cfg["stage"] == "setup":
    setup(cfg)
else:
    run(cfg)
'''


# ---------------------------------------------------------------------------------------
# Parent side
# ---------------------------------------------------------------------------------------
class _Capture:
    """One output stream: the first ``limit`` bytes kept, the rest counted and dropped."""

    __slots__ = ("kept", "limit", "parts", "total")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.kept = 0
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.limit - self.kept
        if room > 0:
            piece = data[:room]
            self.parts.append(piece)
            self.kept += len(piece)

    def text(self) -> str:
        text = b"".join(self.parts).decode("utf-8", "replace")
        if self.total > self.kept:
            text += (
                f"\n[output truncated: {self.total:,} bytes written, the first {self.kept:,} kept]"
            )
        return text


@dataclass(slots=True)
class _Launch:
    """One child process to start: command, environment, directory, status pipe, input."""

    argv: list[str]
    env: dict[str, str]
    workdir: str
    status_read: int
    status_write: int
    stdin: bytes

    def started(self) -> None:
        """Close the parent's copy of the status pipe's write end (the child has its own),
        so that reading it ends when the child does."""
        if self.status_write >= 0:
            os.close(self.status_write)
            self.status_write = -1

    def close(self) -> None:
        """Release the status pipe and remove the working directory."""
        self.started()
        if self.status_read >= 0:
            os.close(self.status_read)
            self.status_read = -1
        _remove_tree(self.workdir)


@dataclass(slots=True)
class _Observed:
    """What the parent saw of one child, before it is judged by :func:`_outcome`."""

    timed_out: bool
    returncode: int | None
    records: list[dict[str, Any]]
    stdout: _Capture
    stderr: _Capture
    duration: float


@cache
def _python() -> str:
    if os.name != "posix":
        raise SandboxError("the sandbox needs a POSIX system (Linux for its kernel layers)")
    if not sys.executable:
        raise SandboxError(
            "no Python interpreter to run the sandbox with (sys.executable is empty)"
        )
    return os.path.realpath(sys.executable)


def _prepare(
    code: str,
    limits: SandboxLimits,
    layers: Iterable[str],
    *,
    hook: bool,
    probe: bool = False,
) -> _Launch:
    """Create the working directory and status pipe and build the child's command."""
    python = _python()
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="sigforge-sandbox-"))
    status_read, status_write = os.pipe()
    os.set_blocking(status_read, False)
    config = {
        "stage": "setup",
        "probe": probe,
        "layers": list(layers),
        "hook": hook,
        "root": workdir,
        "network": limits.network,
        "status_fd": status_write,
        "limits": {
            "cpu_seconds": limits.cpu_seconds,
            "memory_mb": limits.memory_mb,
            "file_bytes": FILE_SIZE_LIMIT,
            "open_files": OPEN_FILES_LIMIT,
            "processes": PROCESS_LIMIT,
        },
    }
    return _Launch(
        argv=[
            python,
            "-I",
            "-S",
            "-B",
            "-X",
            "utf8",
            "-c",
            _CHILD_SOURCE,
            marshal.dumps(config).hex(),
        ],
        # nothing of the parent's environment: no API keys, no PYTHON* settings
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir},
        workdir=workdir,
        status_read=status_read,
        status_write=status_write,
        stdin=code.encode("utf-8", "surrogatepass"),
    )


def _read_status(fd: int) -> list[dict[str, Any]]:
    """The records the child wrote on its status pipe (read without blocking)."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    records = []
    for line in b"".join(chunks).splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _kill_group(pid: int) -> None:
    """SIGKILL the child's process group (its own session: the child and anything it
    started). Called only while the child is unreaped or members of its group still hold
    its pipes, so the group id cannot have been reused by an unrelated process."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _remove_tree(path: str) -> None:
    """Remove the working directory, whatever permissions the code left inside it."""

    def retry(failed: str) -> None:
        for p in (os.path.dirname(failed), failed):
            with contextlib.suppress(OSError, NotImplementedError):
                os.chmod(p, stat.S_IRWXU, follow_symlinks=False)
        if os.path.isdir(failed) and not os.path.islink(failed):
            shutil.rmtree(failed, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(failed)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=lambda func, failed, exc: retry(failed))
    else:
        shutil.rmtree(path, onerror=lambda func, failed, info: retry(failed))
    if os.path.lexists(path):
        shutil.rmtree(path, ignore_errors=True)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _outcome(limits: SandboxLimits, seen: _Observed) -> SandboxResult:
    """Judge a run: the parent's own observations (deadline, exit signal) first, then
    the child's report. Raises SandboxError when the sandboxed Python never started."""
    for record in seen.records:
        if "setup_error" in record:
            raise SandboxError(f"could not set up the sandbox: {record['setup_error']}")
    started = any(record.get("started") for record in seen.records)
    final = next((r for r in reversed(seen.records) if "kind" in r), None)
    returncode = seen.returncode
    kind: ResultKind
    error: str | None
    if seen.timed_out:
        kind, error = "timeout", f"timed out after {limits.timeout:g}s"
    elif final is not None and final["kind"] in ("ok", "exception", "memory", "blocked"):
        kind = final["kind"]
        reported = final.get("error")
        if kind == "ok":
            error = None
        elif kind == "memory":
            error = f"memory limit of {limits.memory_mb} MB exceeded"
        else:
            error = reported if isinstance(reported, str) and reported else kind
    elif returncode == -signal.SIGXCPU:
        kind, error = "timeout", f"CPU time limit of {limits.cpu_seconds}s exceeded"
    elif not started:
        tail = seen.stderr.text().strip().splitlines()[-3:]
        raise SandboxError(
            f"Python could not start in the sandbox (exit status {returncode})"
            + (": " + " | ".join(tail) if tail else "")
        )
    elif returncode == 0:
        kind, error = "ok", None
    elif returncode is not None and returncode > 0:
        kind, error = "exception", f"the program exited with status {returncode}"
    else:
        name = _signal_name(-(returncode or 0))
        kind, error = "crashed", f"the interpreter was killed by {name}"
    return SandboxResult(
        ok=kind == "ok",
        stdout=seen.stdout.text(),
        stderr=seen.stderr.text(),
        error=error,
        kind=kind,
        duration=seen.duration,
    )


def _observe(launch: _Launch, limits: SandboxLimits) -> _Observed:
    """Start the child, feed it the code and collect its output until it ends or the
    deadline passes, then kill what is left of it. Blocking; one thread, a selector."""
    import selectors
    import subprocess

    out, err = _Capture(limits.output_bytes), _Capture(limits.output_bytes)
    start = time.monotonic()
    deadline = start + limits.timeout
    try:
        proc = subprocess.Popen(
            launch.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=launch.workdir,
            env=launch.env,
            pass_fds=(launch.status_write,),
            start_new_session=True,
        )
    except OSError as exc:
        raise SandboxError(f"cannot start {launch.argv[0]}: {exc}") from exc
    finally:
        launch.started()
    stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr
    assert stdin is not None and stdout is not None and stderr is not None
    pending = memoryview(launch.stdin)
    timed_out = False
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(stdout.fileno(), selectors.EVENT_READ, out)
            selector.register(stderr.fileno(), selectors.EVENT_READ, err)
            if pending:
                os.set_blocking(stdin.fileno(), False)
                selector.register(stdin.fileno(), selectors.EVENT_WRITE, None)
            else:
                stdin.close()
            killed_at: float | None = None
            while selector.get_map():
                now = time.monotonic()
                if killed_at is None and now >= deadline:
                    timed_out, killed_at = True, now
                    _kill_group(proc.pid)
                if killed_at is not None and now >= killed_at + _DRAIN_GRACE:
                    break  # something outside the group holds the pipes: stop reading
                until = deadline if killed_at is None else killed_at + _DRAIN_GRACE
                for key, _ in selector.select(max(until - now, 0.0)):
                    if key.data is None:  # stdin: the code, in pieces the pipe accepts
                        try:
                            pending = pending[os.write(key.fd, pending[:65536]) :]
                        except BlockingIOError:
                            continue
                        except BrokenPipeError:
                            pending = pending[:0]
                        if not pending:
                            selector.unregister(key.fd)
                            stdin.close()
                    elif chunk := os.read(key.fd, 65536):
                        key.data.feed(chunk)
                    else:
                        selector.unregister(key.fd)
        if not timed_out:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:  # closed its output but kept running
                timed_out = True
    finally:
        # past the deadline, or interrupted (KeyboardInterrupt, ...): nothing outlives
        # the call. Not yet reaped, so the group id is still the child's.
        if proc.returncode is None:
            _kill_group(proc.pid)
            proc.wait()
        for stream in (stdin, stdout, stderr):
            stream.close()
    return _Observed(
        timed_out=timed_out,
        returncode=proc.returncode,
        records=_read_status(launch.status_read),
        stdout=out,
        stderr=err,
        duration=time.monotonic() - start,
    )


async def _aobserve(launch: _Launch, limits: SandboxLimits) -> _Observed:
    """:func:`_observe` with an asyncio subprocess: nothing blocks the event loop."""
    import asyncio

    out, err = _Capture(limits.output_bytes), _Capture(limits.output_bytes)
    start = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *launch.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=launch.workdir,
            env=launch.env,
            pass_fds=(launch.status_write,),
            start_new_session=True,
        )
    except OSError as exc:
        raise SandboxError(f"cannot start {launch.argv[0]}: {exc}") from exc
    finally:
        launch.started()
    stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr
    assert stdin is not None and stdout is not None and stderr is not None

    async def feed() -> None:
        try:
            stdin.write(launch.stdin)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            stdin.close()

    async def drain(stream: asyncio.StreamReader, capture: _Capture) -> None:
        while chunk := await stream.read(65536):
            capture.feed(chunk)

    waiter = asyncio.ensure_future(proc.wait())
    tasks = [
        asyncio.ensure_future(feed()),
        asyncio.ensure_future(drain(stdout, out)),
        asyncio.ensure_future(drain(stderr, err)),
        waiter,
    ]
    try:
        # asyncio.wait, not gather: a timeout leaves the readers running to collect
        # what the child printed until it is killed
        _, unfinished = await asyncio.wait(tasks, timeout=limits.timeout)
        timed_out = bool(unfinished)
    finally:
        # past the deadline, or cancelled: nothing outlives the call. The child is
        # unreaped or still holds its pipes, so the group id is still its own.
        if not all(task.done() for task in tasks):
            _kill_group(proc.pid)
            await asyncio.shield(proc.wait())
            await asyncio.wait(tasks, timeout=_DRAIN_GRACE)
            for task in tasks:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:  # an unexpected failure of a reader is a bug: let it show
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error
    return _Observed(
        timed_out=timed_out,
        returncode=proc.returncode,
        records=_read_status(launch.status_read),
        stdout=out,
        stderr=err,
        duration=time.monotonic() - start,
    )


@cache
def _available_layers() -> frozenset[str]:
    """The kernel layers this machine offers, found by starting one sandboxed interpreter.

    A layer the kernel refuses is simply absent. If the interpreter cannot start with all
    of them (say its libraries live where Landlock's read rules do not reach), the probe
    retries without Landlock, then without seccomp, and warns.
    """
    limits = SandboxLimits(timeout=30.0)
    failures = []
    for dropped in ((), ("landlock",), ("landlock", "seccomp")):
        wanted = [layer for layer in _KERNEL_LAYERS if layer not in dropped]
        launch = _prepare("pass", limits, wanted, hook=True, probe=True)
        try:
            seen = _observe(launch, limits)
            result = _outcome(limits, seen)
        except SandboxError as exc:
            failures.append(str(exc))
            continue
        finally:
            launch.close()
        if not result.ok:
            failures.append(f"{result.kind}: {result.error}")
            continue
        if dropped:
            warnings.warn(
                f"sigforge sandbox: Python does not start with {' and '.join(dropped)} "
                f"({failures[0]}); running without (see Sandbox.isolation)",
                RuntimeWarning,
                stacklevel=4,
            )
        applied: list[str] = next((r["layers"] for r in seen.records if "layers" in r), [])
        return frozenset(layer for layer in applied if layer in _KERNEL_LAYERS)
    raise SandboxError("Python could not start in the sandbox: " + "; ".join(failures))


class Sandbox:
    """Runs untrusted Python snippets, each in a fresh sandboxed interpreter.

    One object serves any number of runs, from threads and asyncio tasks at once; it holds
    nothing but its limits and its layers. The first sandbox of a process probes which
    kernel layers exist (one interpreter start, ~60 ms).
    """

    __slots__ = ("_hook", "_kernel_layers", "isolation", "limits")

    #: the limits of every run
    limits: SandboxLimits
    #: the layers active for this sandbox on this machine, in :data:`LAYERS` order, e.g.
    #: ``("process", "tmpdir", "rlimits", "netns", "landlock", "seccomp", "audit-hook")``;
    #: ``"netns"`` is absent with ``network=True``, and a kernel layer the machine does
    #: not offer is absent rather than pretended
    isolation: tuple[str, ...]

    def __init__(
        self, limits: SandboxLimits = DEFAULT_LIMITS, *, _without: Iterable[str] = ()
    ) -> None:
        """``_without`` turns optional layers off (``"netns"``, ``"landlock"``,
        ``"seccomp"``, ``"audit-hook"``). It exists for tests that show each layer
        holding on its own; never use it to make code run."""
        if not isinstance(limits, SandboxLimits):
            raise SandboxError(f"limits must be a SandboxLimits, not {limits!r}")
        without = frozenset(_without)
        if without - _OPTIONAL_LAYERS:
            raise SandboxError(
                f"these layers cannot be turned off: {sorted(without - _OPTIONAL_LAYERS)}"
            )
        available = _available_layers()
        self.limits = limits
        self._kernel_layers = tuple(
            layer
            for layer in _KERNEL_LAYERS
            if layer in available
            and layer not in without
            and not (layer == "netns" and limits.network)
        )
        self._hook = "audit-hook" not in without
        active = {"process", "tmpdir", "rlimits", *self._kernel_layers}
        if self._hook:
            active.add("audit-hook")
        self.isolation = tuple(layer for layer in LAYERS if layer in active)

    def __repr__(self) -> str:
        return f"Sandbox({self.limits!r}, isolation={self.isolation!r})"

    def _launch(self, code: str) -> _Launch:
        if not isinstance(code, str):
            raise SandboxError(f"code must be a str, not {type(code).__name__}")
        return _prepare(code, self.limits, self._kernel_layers, hook=self._hook)

    def run(self, code: str) -> SandboxResult:
        """Run ``code`` and wait for its result: at most ``limits.timeout`` seconds, plus
        the moment it takes to kill the child and remove its directory."""
        launch = self._launch(code)
        try:
            return _outcome(self.limits, _observe(launch, self.limits))
        finally:
            launch.close()

    async def arun(self, code: str) -> SandboxResult:
        """:meth:`run` for asyncio: the child is an asyncio subprocess, so many runs
        proceed at once on one event loop. Cancelling the call kills the child."""
        import asyncio

        launch = self._launch(code)
        try:
            return _outcome(self.limits, await _aobserve(launch, self.limits))
        finally:
            await asyncio.to_thread(launch.close)


def run_python(code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``code`` once in a :class:`Sandbox` with ``limits`` (default :data:`DEFAULT_LIMITS`)."""
    return Sandbox(DEFAULT_LIMITS if limits is None else limits).run(code)
