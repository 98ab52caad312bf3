"""Independent work items spread over forked processes, results in input order.

A large build compiles many modules, and apart from the modules they import, which are
few, modules compile independently: :func:`fork_map` runs a share of the work in each of a
few child processes forked from the compiler (which therefore already hold the sources,
the imported compiler stages and the loaded template: nothing is sent to them) and
collects the results through pipes. The parent works on a share of its own meanwhile.

The result is the same as a plain loop, whatever the number of processes: results come
back in input order, a share whose child fails (or dies) is computed again in the parent,
so an error is raised there as it would have been, and on any platform without ``fork``
(or inside a multithreaded program, where forking is unsafe) everything runs in the
parent.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def usable_processes(limit: int = 8) -> int:
    """How many processes may work at once here: the CPUs this process may run on (at most
    ``limit``), or 1 where work cannot be forked safely."""
    if sys.platform != "linux" or threading.active_count() > 1:
        return 1
    return max(1, min(limit, len(os.sched_getaffinity(0))))


def fork_map(
    function: Callable[[_Item], _Result], items: Sequence[_Item], processes: int
) -> list[_Result]:
    """``[function(item) for item in items]``, computed by up to ``processes`` processes.

    ``function`` and the results must not depend on which process computes them; results
    must pickle. Items are dealt out in turn (item ``i`` to share ``i % processes``), so
    that shares of similar items cost about the same."""
    processes = max(1, min(processes, len(items)))
    if processes == 1:
        return [function(item) for item in items]
    import pickle

    shares = [list(range(start, len(items), processes)) for start in range(processes)]
    children: list[tuple[int, int, list[int]]] = []
    results: dict[int, _Result] = {}
    try:
        for share in shares[1:]:
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: compute the share, send it, and leave at once
                status = 1
                try:
                    os.close(read_end)
                    data = pickle.dumps([function(items[i]) for i in share], protocol=5)
                    with os.fdopen(write_end, "wb") as pipe:
                        pipe.write(data)
                    status = 0
                finally:
                    os._exit(status)  # no atexit handlers, no flushing of inherited buffers
            os.close(write_end)
            children.append((pid, read_end, share))
        for i in shares[0]:
            results[i] = function(items[i])
        while children:
            pid, read_end, share = children.pop(0)
            with os.fdopen(read_end, "rb") as pipe:
                data = pipe.read()
            _, status = os.waitpid(pid, 0)
            if status == 0 and data:
                for i, result in zip(share, pickle.loads(data), strict=True):
                    results[i] = result
            else:  # the child failed: the parent computes its share (and raises as it would)
                for i in share:
                    results[i] = function(items[i])
    finally:
        for pid, read_end, _ in children:  # only after an error in the parent
            os.close(read_end)
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
    return [results[i] for i in range(len(items))]
