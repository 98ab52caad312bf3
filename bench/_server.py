"""The benchmarks' loopback server: ``sigforge.testing.OpenAICompatServer`` in a process of
its own, so that its CPU time is not counted as the clients'.

The benchmark asks it over a pipe for a snapshot of its counts (requests, CPU seconds,
wire-format violations, responder errors, plus whatever the responder's owner counts)
before and after each measured run; :func:`between` turns two snapshots into what the
server did for that run, in particular its own CPU per request, which the benchmarks
report beside the clients' figures. The server stops itself after ``lifetime`` seconds
whatever happens, and when the benchmark's end of the pipe closes.

``setup`` runs in the server's process and returns the responder and a function giving
the extra counts (``{}`` if none); it must be a module-level function, so that the
process (forked) can call it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sigforge.testing import Responder

Setup = Callable[[], "tuple[Responder, Callable[[], dict[str, Any]]]"]


def serve(conn: Connection, setup: Setup, lifetime: float, api_key: str | None) -> None:
    """Serve until told to stop; answer every message with a snapshot of the counts."""
    from sigforge.testing import OpenAICompatServer

    responder, extra = setup()
    with OpenAICompatServer(responder, max_lifetime=lifetime, api_key=api_key) as server:

        def snapshot() -> dict[str, Any]:
            stats = server.stats()
            return {
                "requests": stats.requests,
                "cpu_seconds": stats.cpu_seconds,
                "violations": stats.violations,
                "errors": len(server.errors),
                "running": server.running,
                **extra(),
            }

        conn.send(server.base_url)
        while server.running:
            if not conn.poll(0.5):
                continue
            try:
                message = conn.recv()
            except EOFError:  # the benchmark is gone
                return
            conn.send(snapshot())
            if message == "stop":
                return


class ServerProcess:
    """The server's process and the pipe to ask it for counts."""

    def __init__(self, setup: Setup, lifetime: float, api_key: str | None = None) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=serve, args=(child, setup, lifetime, api_key), daemon=True
        )
        self._process.start()
        if not self._conn.poll(30):
            raise RuntimeError("the loopback server did not start within 30 s")
        self.base_url: str = self._conn.recv()

    def snapshot(self) -> dict[str, Any]:
        self._conn.send("snapshot")
        if not self._conn.poll(30):
            raise RuntimeError("the loopback server stopped answering (its lifetime is over?)")
        answer: dict[str, Any] = self._conn.recv()
        return answer

    def stop(self) -> dict[str, Any] | None:
        """Stop the server; its last snapshot (None if it was already gone)."""
        final = None
        with contextlib.suppress(OSError, EOFError, BrokenPipeError):
            self._conn.send("stop")
            if self._conn.poll(10):
                final = self._conn.recv()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)
        return final

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def between(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What the server did between two snapshots."""
    requests = after["requests"] - before["requests"]
    cpu = after["cpu_seconds"] - before["cpu_seconds"]
    return {
        "requests": requests,
        "server_cpu_us_per_request": cpu / requests * 1e6 if requests else 0.0,
        "violations": after["violations"] - before["violations"],
        "responder_errors": after["errors"] - before["errors"],
    }
