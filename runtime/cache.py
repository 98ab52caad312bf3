"""A two-level completion cache: an in-memory LRU in front of a SQLite file.

Keys come from :func:`cache_key`, a sha256 over everything that determines an answer
(the LM's :meth:`~sigforge.runtime.lm.BaseLM.cache_identity` plus the request), so they
are stable across processes and interpreter runs and never involve an API key.

Nothing touches the disk until the first ``get``/``put``. ``sqlite3``, ``platformdirs``
and ``pathlib`` are imported only when a cache is created or used, which keeps importing
this module cheap.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from .messages import Completion, LMRequest, Usage

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path
    from types import TracebackType

__all__ = [
    "CACHE_DIR_ENV",
    "Cache",
    "CacheStats",
    "CompletionCache",
    "cache_key",
    "default_cache_path",
]

#: environment variable that overrides the directory of the default cache file
CACHE_DIR_ENV = "SIGFORGE_CACHE_DIR"
CACHE_FILE_NAME = "cache.sqlite"

# Part of every key: bump it when the key recipe or the stored format changes, so old
# entries are simply never found again instead of being misread.
_KEY_VERSION = "sigforge-cache-v1"

_T = TypeVar("_T")


def cache_dir() -> Path:
    """``$SIGFORGE_CACHE_DIR``, else the platform's user cache dir for sigforge."""
    from pathlib import Path

    directory = os.environ.get(CACHE_DIR_ENV)
    if not directory:
        import platformdirs

        directory = platformdirs.user_cache_dir("sigforge")
    return Path(directory)


def default_cache_path() -> Path:
    """``cache.sqlite`` in :func:`cache_dir`."""
    return cache_dir() / CACHE_FILE_NAME


def cache_key(identity: Mapping[str, Any], request: LMRequest) -> str:
    """A stable hex sha256 naming the answer to ``request`` from the LM described by ``identity``.

    The hash covers canonical JSON (sorted keys, no whitespace, no ASCII escaping), so it
    does not depend on dict order, ``PYTHONHASHSEED`` or the process.
    """
    import hashlib

    payload = {
        "v": _KEY_VERSION,
        "identity": identity,
        "messages": request.messages,
        "params": request.params,
    }
    try:
        canonical = json.dumps(
            payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"cannot build a cache key: the LM identity and request params must be plain "
            f"JSON data ({exc})"
        ) from exc
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters of one :class:`Cache` since it was created (or last cleared)."""

    #: entries stored (on disk, or in memory for a memory-only cache)
    entries: int
    hits: int
    misses: int


class CompletionCache(abc.ABC):
    """What an LM needs of a completion cache; :class:`Cache` (SQLite) implements it.

    Implementations are safe to share between threads, and never let a storage problem
    fail an LM call: ``get`` then misses and ``put`` is dropped.
    """

    @abc.abstractmethod
    def get(self, key: str) -> Completion | None:
        """The stored completion for ``key`` (with ``cached=True``), or ``None``."""

    @abc.abstractmethod
    def put(self, key: str, completion: Completion) -> None:
        """Store ``completion`` under ``key`` (replacing any earlier value)."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Delete every entry and reset the counters."""

    @abc.abstractmethod
    def stats(self) -> CacheStats:
        """How many entries are stored and how many lookups hit or missed."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the cache stays usable and reconnects on next use."""

    def __enter__(self) -> CompletionCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Cache(CompletionCache):
    """An LRU of up to ``memory_entries`` completions in front of a SQLite file.

    ``path=None`` means :func:`default_cache_path`; ``disk=False`` keeps everything in
    memory (bounded by ``memory_entries``). Safe to share between threads; several
    processes may use the same file at once (SQLite WAL mode).

    Disk problems (unwritable directory, locked or corrupt file) never fail an LM call:
    they are reported once as a ``RuntimeWarning`` and the cache continues in memory.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        memory_entries: int = 1000,
        disk: bool = True,
    ) -> None:
        if memory_entries < 0:
            raise ValueError("memory_entries must be >= 0")
        self.memory_entries = memory_entries
        self.path: Path | None = None
        if disk:
            from pathlib import Path

            self.path = Path(path) if path is not None else default_cache_path()
        self._memory: OrderedDict[str, Completion] = OrderedDict()
        self._hits = 0
        self._misses = 0
        # One connection shared by all threads, serialised by this lock. Cache reads and
        # writes are tiny, so a per-thread connection would buy little.
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._conn_pid = 0
        self._disk_failed = False

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else "memory only"
        return f"Cache({where!r}, memory_entries={self.memory_entries})"

    # -- public API ---------------------------------------------------------------

    def get(self, key: str) -> Completion | None:
        """The stored completion for ``key`` (with ``cached=True``), or ``None``."""
        with self._lock:
            found = self._memory.get(key)
            if found is not None:
                self._memory.move_to_end(key)
                self._hits += 1
                return found
            found = self._disk_get(key)
            if found is None:
                self._misses += 1
                return None
            self._hits += 1
            self._remember(key, found)
            return found

    def put(self, key: str, completion: Completion) -> None:
        """Store ``completion`` under ``key`` (replacing any earlier value)."""
        stored = completion if completion.cached else replace(completion, cached=True)
        with self._lock:
            self._remember(key, stored)
            self._disk_put(key, stored)

    def clear(self) -> None:
        """Delete every entry (memory and disk) and reset the hit/miss counters."""
        with self._lock:
            self._memory.clear()
            self._hits = self._misses = 0
            conn = self._connection()
            if conn is not None:
                self._run(lambda: conn.execute("DELETE FROM completions"))

    def stats(self) -> CacheStats:
        """How many entries are stored and how many lookups hit or missed."""
        with self._lock:
            entries = len(self._memory)
            conn = self._connection()
            if conn is not None:
                row = self._run(lambda: conn.execute("SELECT COUNT(*) FROM completions").fetchone())
                if row is not None:
                    entries = int(row[0])
            return CacheStats(entries=entries, hits=self._hits, misses=self._misses)

    def close(self) -> None:
        """Close the SQLite connection. The cache stays usable and reopens on next use."""
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                if self._conn_pid == os.getpid():
                    conn.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- memory level (caller holds the lock) --------------------------------------

    def _remember(self, key: str, completion: Completion) -> None:
        if self.memory_entries == 0:
            return
        memory = self._memory
        memory[key] = completion
        memory.move_to_end(key)
        while len(memory) > self.memory_entries:
            memory.popitem(last=False)

    # -- disk level (caller holds the lock) ----------------------------------------

    def _connection(self) -> sqlite3.Connection | None:
        """The open connection, opening the file on first use; ``None`` when memory-only."""
        if self.path is None or self._disk_failed:
            return None
        if self._conn is not None and self._conn_pid == os.getpid():
            return self._conn
        # First use, or we are a forked child: a connection must not cross a fork, so
        # the inherited one is abandoned (not closed: that would disturb the parent).
        import sqlite3

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS completions ("
                " key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
            )
        except (OSError, sqlite3.Error) as exc:
            self._disk_trouble(exc)
            return None
        self._conn, self._conn_pid = conn, os.getpid()
        return conn

    def _run(self, action: Callable[[], _T]) -> _T | None:
        """Run a database ``action``; on failure warn once, go memory-only, return None."""
        import sqlite3

        try:
            return action()
        except sqlite3.Error as exc:
            self._disk_trouble(exc)
            return None

    def _disk_get(self, key: str) -> Completion | None:
        conn = self._connection()
        if conn is None:
            return None
        row = self._run(
            lambda: conn.execute("SELECT value FROM completions WHERE key = ?", (key,)).fetchone()
        )
        if row is None:
            return None
        return _decode(row[0])

    def _disk_put(self, key: str, completion: Completion) -> None:
        conn = self._connection()
        if conn is None:
            return
        import time

        value = _encode(completion)
        self._run(
            lambda: conn.execute(
                "INSERT OR REPLACE INTO completions (key, value, created) VALUES (?, ?, ?)",
                (key, value, time.time()),
            )
        )

    def _disk_trouble(self, exc: Exception) -> None:
        if not self._disk_failed:
            warnings.warn(
                f"sigforge cache file {self.path} is unusable ({exc}); "
                "caching in memory only from now on",
                RuntimeWarning,
                stacklevel=4,
            )
        self._disk_failed = True
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):  # already failing; closing is best effort
                conn.close()


def _encode(completion: Completion) -> str:
    return json.dumps(
        {
            "text": completion.text,
            "prompt_tokens": completion.usage.prompt_tokens,
            "completion_tokens": completion.usage.completion_tokens,
            "model": completion.model,
            "finish_reason": completion.finish_reason,
        },
        ensure_ascii=False,
    )


def _decode(value: str) -> Completion | None:
    """The completion stored as ``value``; ``None`` (a miss) if it cannot be read."""
    try:
        data = json.loads(value)
        return Completion(
            text=str(data["text"]),
            usage=Usage(int(data["prompt_tokens"]), int(data["completion_tokens"])),
            model=str(data["model"]),
            finish_reason=data["finish_reason"],
            cached=True,
        )
    except (ValueError, KeyError, TypeError):
        return None
