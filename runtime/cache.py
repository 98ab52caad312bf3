"""Completion caches: the :class:`CompletionCache` interface and :class:`Cache` (SQLite).

Keys come from :func:`cache_key`, a sha256 over everything that determines an answer
(the LM's :meth:`~sigforge.runtime.lm.BaseLM.cache_identity` plus the request), so they
are stable across processes and interpreter runs and never involve an API key.

:class:`Cache` is an in-memory LRU in front of a SQLite file in WAL mode:

* **Many threads, many processes.** One connection per process, serialised by a lock;
  every change is one SQLite transaction (``BEGIN IMMEDIATE`` where it reads and then
  writes), so concurrent processes see whole entries or none, and a process killed
  mid-write leaves the file as it was before that transaction. Every value carries a
  CRC-32: a value damaged on disk is a miss (and is deleted), never a wrong answer.
* **Cheap hits.** A hit from memory touches no file. A hit is not written back at once:
  an entry's access time (what the LRU eviction orders by) is refreshed only when it is
  older than ``touch_interval``, and those refreshes, like the hit/miss counters, are
  written in one small transaction with the next ``put``, or after 512 lookups or 10
  seconds, or at ``close()`` and interpreter exit.
* **Bounded.** ``max_entries`` / ``max_bytes`` (default 1 GiB of stored keys and
  values): a ``put`` that crosses a limit removes expired entries and then the least
  recently used ones, down to 90% of the limit, so evictions come in batches.
  Entry count and size are kept in a ``meta`` table by triggers, in the same
  transaction as the change, so checking a limit costs one indexed read.
* **Optional TTL.** An entry written with ``ttl`` set expires ``ttl`` seconds later;
  expired entries are misses, and are removed when found, when a limit is reached, or
  by ``clear(expired_only=True)`` (``sigforge cache clear --expired-only``).
* **Versioned schema.** ``PRAGMA user_version`` holds the schema version; files of the
  first, unversioned layout are migrated in place on first open. A file written by a
  newer sigforge, or a SQLite database that is not a sigforge cache, is left untouched.
* **Disk problems never fail an LM call.** An unwritable directory, a full disk or a
  corrupt file is reported once as a ``RuntimeWarning`` and the cache continues in
  memory (``on_error="raise"`` raises :class:`CacheError` instead; the CLI uses it).
  A file that stays locked by another process past ``busy_timeout`` only skips that one
  read or write.

Nothing touches the disk until the first ``get``/``put``. ``sqlite3``, ``platformdirs``
(see :mod:`.cache_dir`) and ``pathlib`` are imported only when a cache is created or
used, which keeps importing this module cheap. docs/cache.md is the user's guide.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import json
import os
import threading
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Final, Literal, Self, TypeAlias, TypeVar

from .cache_dir import CACHE_DIR_ENV, cache_dir
from .errors import SigforgeError
from .messages import Completion, LMRequest, Usage

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path
    from types import TracebackType

__all__ = [
    "CACHE_DIR_ENV",
    "DEFAULT_MAX_BYTES",
    "Cache",
    "CacheError",
    "CacheStats",
    "CompletionCache",
    "cache_key",
    "default_cache_path",
]

CACHE_FILE_NAME = "cache.sqlite"

#: default ``max_bytes`` of a :class:`Cache`: 1 GiB of stored keys and values
DEFAULT_MAX_BYTES: Final = 1 << 30

# Part of every key: bump it when the key recipe or the stored format changes, so old
# entries are simply never found again instead of being misread.
_KEY_VERSION = "sigforge-cache-v1"

#: ``PRAGMA user_version`` of the current file layout (the first layout had none: 0)
SCHEMA_VERSION: Final = 2
#: ``PRAGMA application_id`` marking a SQLite file as a sigforge cache ("SGFC")
_APPLICATION_ID: Final = 0x53474643

# Pending hit/miss counts and access times are written after this many lookups, or when
# this many seconds have passed since the last write (checked on lookups).
_FLUSH_EVERY = 512
_FLUSH_SECONDS = 10.0

# SQLite result codes (the low byte of extended codes) that mean "someone else holds the
# lock": the operation is skipped, the file is not given up.
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6

OnError: TypeAlias = Literal["warn", "raise"]

_T = TypeVar("_T")

# The canonical JSON of a key; built once (``json.dumps`` with options builds one per call).
_KEY_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


class CacheError(SigforgeError):
    """A cache's storage cannot be used (raised only by caches made with ``on_error="raise"``)."""


def default_cache_path() -> Path:
    """``cache.sqlite`` in :func:`cache_dir`."""
    return cache_dir() / CACHE_FILE_NAME


def cache_key(identity: Mapping[str, Any], request: LMRequest) -> str:
    """A stable hex sha256 naming the answer to ``request`` from the LM described by ``identity``.

    The hash covers canonical JSON (sorted keys, no whitespace, no ASCII escaping), so it
    does not depend on dict order, ``PYTHONHASHSEED`` or the process.
    """
    import hashlib

    payload: dict[str, Any] = {
        "v": _KEY_VERSION,
        "identity": identity,
        "messages": request.messages,
        "params": request.params,
    }
    if request.rollout_id is not None:
        # only when set, so ordinary requests keep the keys they always had
        payload["rollout"] = request.rollout_id
    try:
        canonical = _KEY_ENCODER.encode(payload)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"cannot build a cache key: the LM identity and request params must be plain "
            f"JSON data ({exc})"
        ) from exc
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheStats:
    """What a cache holds and how it has been used.

    For a :class:`Cache` with a file the counters are cumulative over every process that
    used the file since it was created or last cleared (this process's latest lookups
    included); for a memory-only cache they count this object's lookups.
    """

    #: entries stored (in the file, or in memory for a memory-only cache)
    entries: int
    #: lookups answered from the cache
    hits: int
    #: lookups that found nothing usable
    misses: int
    #: entries removed to stay within a size limit (Redis: the server's ``evicted_keys``)
    evictions: int = 0
    #: entries removed because their TTL had passed (Redis: the server's ``expired_keys``)
    expired: int = 0
    #: size of the stored keys and values in bytes (what ``max_bytes`` limits)
    stored_bytes: int = 0
    #: size of the cache's files on disk (database and WAL); ``None`` without files
    file_bytes: int | None = None
    #: when the oldest / newest stored entry was written (Unix time); ``None`` if unknown
    oldest: float | None = None
    newest: float | None = None

    @property
    def hit_rate(self) -> float | None:
        """``hits / (hits + misses)``, or ``None`` before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None

    def as_dict(self) -> dict[str, Any]:
        """The fields (and ``hit_rate``) as plain JSON data."""
        return {**asdict(self), "hit_rate": self.hit_rate}


class CompletionCache(abc.ABC):
    """What an LM needs of a completion cache: :class:`Cache` (SQLite) and
    :class:`~sigforge.runtime.redis_cache.RedisCache` implement it.

    Implementations are safe to share between threads, and never let a storage problem
    fail an LM call: ``get`` then misses and ``put`` is dropped (with a warning).
    """

    @abc.abstractmethod
    def get(self, key: str) -> Completion | None:
        """The stored completion for ``key`` (with ``cached=True``), or ``None``."""

    @abc.abstractmethod
    def put(self, key: str, completion: Completion) -> None:
        """Store ``completion`` under ``key`` (replacing any earlier value)."""

    @abc.abstractmethod
    def clear(self, *, expired_only: bool = False) -> int:
        """Delete every entry and reset the counters; returns how many entries went.

        ``expired_only`` deletes just the entries whose TTL has passed and keeps the
        counters.
        """

    @abc.abstractmethod
    def stats(self) -> CacheStats:
        """What is stored and how lookups went."""

    @abc.abstractmethod
    def close(self) -> None:
        """Write what is pending and release connections; the cache reopens on next use."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# A memory-level entry: the completion, when it expires (or None), and the access time
# the file has for it (refreshed on a hit once it is older than ``touch_interval``).
_Entry: TypeAlias = tuple[Completion, float | None, float]


class _Unusable(Exception):
    """The file is a database we must not use (another program's, or a newer layout)."""


class Cache(CompletionCache):
    """An LRU of up to ``memory_entries`` completions in front of a SQLite file.

    ``path=None`` means :func:`default_cache_path`; ``disk=False`` keeps everything in
    memory (bounded by ``memory_entries``). ``max_entries`` and ``max_bytes`` (stored
    keys plus values; ``None`` for no limit) bound the file, evicting the least
    recently used entries; ``ttl`` (seconds) makes entries written by this object
    expire. ``touch_interval`` is the resolution of the LRU order: an entry's access
    time is written back only when it is older than that. ``busy_timeout`` is how long
    an operation waits for another process's write lock before it is skipped.
    ``clock`` is the time source for TTLs and access times (Unix seconds).

    Safe to share between threads; several processes may use the same file at once.
    See the module docstring for how disk problems are handled (``on_error``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        memory_entries: int = 1000,
        disk: bool = True,
        max_entries: int | None = None,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
        ttl: float | None = None,
        touch_interval: float = 3600.0,
        busy_timeout: float = 10.0,
        on_error: OnError = "warn",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if memory_entries < 0:
            raise ValueError("memory_entries must be >= 0")
        if max_entries is not None and max_entries < 1:
            raise ValueError("max_entries must be >= 1 (or None for no limit)")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be >= 1 (or None for no limit)")
        if ttl is not None and not ttl > 0:
            raise ValueError("ttl must be a positive number of seconds (or None)")
        if touch_interval < 0 or busy_timeout < 0:
            raise ValueError("touch_interval and busy_timeout must be >= 0")
        if on_error not in ("warn", "raise"):
            raise ValueError("on_error must be 'warn' or 'raise'")
        self.memory_entries = memory_entries
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.touch_interval = touch_interval
        self.busy_timeout = busy_timeout
        self.on_error: OnError = on_error
        self.clock = clock
        self.path: Path | None = None
        if disk:
            from pathlib import Path

            self.path = Path(path) if path is not None else default_cache_path()
        self._memory: OrderedDict[str, _Entry] = OrderedDict()
        # One connection shared by all threads, serialised by this lock. Cache reads and
        # writes are tiny, so a per-thread connection would buy little.
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._conn_pid = 0
        self._disk_failed = False
        self._busy_warned = False
        # Not yet written to the file (all there is, for a memory-only cache).
        self._hits = self._misses = self._expired = self._evictions = 0
        self._touched: dict[str, float] = {}
        self._lookups = 0
        self._flushed_at = clock()

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else "memory only"
        limits = "".join(
            f", {name}={value!r}"
            for name, value in (
                ("max_entries", self.max_entries),
                ("max_bytes", self.max_bytes),
                ("ttl", self.ttl),
            )
            if value is not None
        )
        return f"Cache({where!r}, memory_entries={self.memory_entries}{limits})"

    # -- public API ---------------------------------------------------------------

    def get(self, key: str) -> Completion | None:
        """The stored completion for ``key`` (with ``cached=True``), or ``None``."""
        now = self.clock()
        with self._lock:
            self._lookups += 1
            entry = self._memory.get(key)
            if entry is not None:
                completion, expires, touched = entry
                if expires is None or expires > now:
                    self._memory.move_to_end(key)
                    self._hits += 1
                    if now - touched >= self.touch_interval and self.path is not None:
                        self._touched[key] = now
                        self._memory[key] = (completion, expires, now)
                    self._maybe_flush(now)
                    return completion
                del self._memory[key]
                if self.path is None:
                    self._expired += 1
            entry = self._disk_get(key, now)
            if entry is None:
                self._misses += 1
                self._maybe_flush(now)
                return None
            self._hits += 1
            self._remember(key, entry)
            self._maybe_flush(now)
            return entry[0]

    def put(self, key: str, completion: Completion) -> None:
        """Store ``completion`` under ``key`` (replacing any earlier value)."""
        stored = completion if completion.cached else replace(completion, cached=True)
        now = self.clock()
        expires = None if self.ttl is None else now + self.ttl
        with self._lock:
            self._remember(key, (stored, expires, now))
            self._disk_put(key, stored, now, expires)

    def clear(self, *, expired_only: bool = False) -> int:
        """Delete every entry (memory and file) and reset the counters, or with
        ``expired_only`` just the expired entries. Returns how many entries went."""
        now = self.clock()
        with self._lock:
            memory = self._memory
            if expired_only:
                stale = [k for k, (_, exp, _) in memory.items() if exp is not None and exp <= now]
                for key in stale:
                    del memory[key]
                removed = len(stale)
                self._expired += removed if self.path is None else 0
            else:
                removed = len(memory)
                memory.clear()
                self._hits = self._misses = self._expired = self._evictions = 0
                self._touched.clear()
            conn = self._connection()
            if conn is None:
                return removed
            if expired_only:
                return self._transaction(conn, lambda: _delete_expired(conn, now)) or 0
            removed = self._transaction(conn, lambda: _wipe(conn)) or 0
            self._reclaim_space(conn)
            return removed

    def stats(self) -> CacheStats:
        """Entries, stored size, file size, cumulative counters, oldest and newest entry."""
        with self._lock:
            conn = self._connection()
            if conn is None:
                return self._memory_stats()
            found = self._run(lambda: _read_stats(conn))
            if found is None:  # the file just failed
                return self._memory_stats()
            counts, oldest, newest = found
            return CacheStats(
                entries=counts.get("entries", 0),
                hits=counts.get("hits", 0) + self._hits,
                misses=counts.get("misses", 0) + self._misses,
                evictions=counts.get("evictions", 0) + self._evictions,
                expired=counts.get("expired", 0) + self._expired,
                stored_bytes=counts.get("bytes", 0),
                file_bytes=self._file_bytes(),
                oldest=oldest,
                newest=newest,
            )

    def close(self) -> None:
        """Write pending counters and access times, then close the SQLite connection.

        The cache stays usable and reopens the file on next use.
        """
        with self._lock:
            self._close_locked()

    def __del__(self) -> None:
        # Dropped without close(): write the pending counters (caches still alive at
        # interpreter exit are closed by an atexit hook).
        with contextlib.suppress(Exception):
            if self._conn is not None:
                self.close()

    # -- memory level (caller holds the lock) --------------------------------------

    def _remember(self, key: str, entry: _Entry) -> None:
        if self.memory_entries == 0:
            return
        memory = self._memory
        memory[key] = entry
        memory.move_to_end(key)
        while len(memory) > self.memory_entries:
            memory.popitem(last=False)
            if self.path is None:
                self._evictions += 1

    def _memory_stats(self) -> CacheStats:
        created = [touched for _, _, touched in self._memory.values()]
        return CacheStats(
            entries=len(self._memory),
            hits=self._hits,
            misses=self._misses,
            evictions=self._evictions,
            expired=self._expired,
            oldest=min(created, default=None),
            newest=max(created, default=None),
        )

    # -- the file (caller holds the lock) ------------------------------------------

    def _connection(self) -> sqlite3.Connection | None:
        """The open connection, opening the file on first use; ``None`` when memory-only."""
        if self.path is None or self._disk_failed:
            return None
        if self._conn is not None and self._conn_pid == os.getpid():
            return self._conn
        # First use, or we are a forked child: a connection must not cross a fork, so
        # the inherited one is abandoned (not closed: that would disturb the parent),
        # and so are the parent's unwritten counters (the parent writes them).
        if self._conn is not None:
            self._conn = None
            self._hits = self._misses = self._expired = self._evictions = 0
            self._touched.clear()
        import sqlite3

        conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            # auto_vacuum only takes effect in an empty file, so it comes before WAL mode
            # (which writes the first page); on an existing file it would write the header.
            if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            _check_identity(conn)  # before anything is written to someone else's file
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA journal_size_limit = 67108864")
            _prepare_schema(conn)
        except (OSError, sqlite3.Error, _Unusable) as exc:
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            if isinstance(exc, sqlite3.Error) and _is_busy(exc):
                self._busy(exc)  # another process is setting the file up: try again later
            else:
                self._disk_trouble(exc)
            return None
        self._conn, self._conn_pid = conn, os.getpid()
        _open_caches.add(self)
        return conn

    def _run(self, action: Callable[[], _T]) -> _T | None:
        """Run a database ``action``; ``None`` if it failed.

        A lock held too long by another process skips just this action; any other
        error warns once and leaves the file for good (or raises, with ``on_error="raise"``).
        """
        import sqlite3

        try:
            return action()
        except sqlite3.Error as exc:
            if _is_busy(exc):
                self._busy(exc)
            else:
                self._disk_trouble(exc)
            return None

    def _transaction(self, conn: sqlite3.Connection, work: Callable[[], _T]) -> _T | None:
        """``work`` in one write transaction, with the pending counters and access times.

        Takes the write lock at once (``BEGIN IMMEDIATE``), so a read inside ``work``
        cannot be overtaken by another process's write; rolls back if anything fails.
        """
        import sqlite3

        def run() -> _T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._write_pending(conn)  # first: eviction in ``work`` sees fresh access times
                result = work()
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            self._hits = self._misses = self._expired = self._evictions = 0
            self._touched.clear()
            self._lookups = 0
            self._flushed_at = self.clock()
            return result

        return self._run(run)

    def _write_pending(self, conn: sqlite3.Connection) -> None:
        counts = [
            (count, name)
            for count, name in (
                (self._hits, "hits"),
                (self._misses, "misses"),
                (self._expired, "expired"),
                (self._evictions, "evictions"),
            )
            if count
        ]
        if counts:
            conn.executemany("UPDATE meta SET value = value + ? WHERE name = ?", counts)
        if self._touched:
            conn.executemany(
                "UPDATE completions SET accessed = ? WHERE key = ? AND accessed < ?",
                [(when, key, when) for key, when in self._touched.items()],
            )

    def _maybe_flush(self, now: float) -> None:
        """Write pending counters and access times when enough have gathered."""
        if self.path is None or self._disk_failed:
            return
        if self._lookups >= _FLUSH_EVERY or now - self._flushed_at >= _FLUSH_SECONDS:
            self._flush()

    def _flush(self) -> None:
        if not (self._hits or self._misses or self._expired or self._evictions or self._touched):
            return
        conn = self._connection()
        if conn is not None:
            self._transaction(conn, lambda: None)

    def _disk_get(self, key: str, now: float) -> _Entry | None:
        conn = self._connection()
        if conn is None:
            return None
        row = self._run(
            lambda: conn.execute(
                "SELECT expires, accessed, crc, value FROM completions WHERE key = ?", (key,)
            ).fetchone()
        )
        if row is None:
            return None
        expires, accessed, crc, value = row
        if expires is not None and expires <= now:
            self._transaction(conn, lambda: _delete_expired(conn, now, key))
            return None
        import zlib

        completion = _decode(value) if zlib.crc32(value) == crc else None
        if completion is None:  # damaged on disk: never served, and replaced by the next put
            self._transaction(
                conn,
                lambda: conn.execute(
                    "DELETE FROM completions WHERE key = ? AND crc = ?", (key, crc)
                ),
            )
            return None
        if now - accessed >= self.touch_interval:
            self._touched[key] = accessed = now
        return completion, expires, accessed

    def _disk_put(
        self, key: str, completion: Completion, now: float, expires: float | None
    ) -> None:
        conn = self._connection()
        if conn is None:
            return
        import zlib

        value = _encode(completion).encode("utf-8")
        size = len(key.encode("utf-8")) + len(value)
        if self.max_bytes is not None and size > self.max_bytes:
            return  # larger than the whole file may be: kept in memory only

        def write() -> None:
            conn.execute(
                "INSERT INTO completions (key, created, accessed, expires, size, crc, value)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET created = excluded.created,"
                " accessed = excluded.accessed, expires = excluded.expires,"
                " size = excluded.size, crc = excluded.crc, value = excluded.value",
                (key, now, now, expires, size, zlib.crc32(value), value),
            )
            if self.max_entries is not None or self.max_bytes is not None:
                self._enforce_limits(conn, now, keep=key)

        self._transaction(conn, write)

    def _over(self, entries: int, stored: int, *, low: bool = False) -> bool:
        """Whether the counts exceed a limit (with ``low``: exceed 90% of it)."""

        def limit(value: int) -> int:
            return value - value // 10 if low else value

        return (self.max_entries is not None and entries > limit(self.max_entries)) or (
            self.max_bytes is not None and stored > limit(self.max_bytes)
        )

    def _enforce_limits(self, conn: sqlite3.Connection, now: float, *, keep: str) -> None:
        """Inside a write transaction: if a limit is exceeded, remove expired entries,
        then least recently used ones (never ``keep``) until 90% of each limit is left."""
        counts = _counts(conn)
        entries, stored = counts.get("entries", 0), counts.get("bytes", 0)
        if not self._over(entries, stored):
            return
        _delete_expired(conn, now)
        counts = _counts(conn)
        entries, stored = counts.get("entries", 0), counts.get("bytes", 0)
        victims: list[tuple[str]] = []
        rows = conn.execute(
            "SELECT key, size FROM completions WHERE key != ? ORDER BY accessed", (keep,)
        )
        for victim, size in rows:
            if not self._over(entries, stored, low=True):
                break
            victims.append((victim,))
            entries -= 1
            stored -= size
        rows.close()
        conn.executemany("DELETE FROM completions WHERE key = ?", victims)
        _bump(conn, "evictions", len(victims))

    def _reclaim_space(self, conn: sqlite3.Connection) -> None:
        """Give the freed pages back to the file system (files made by this version)."""
        # executescript steps the pragma to the end (execute would free a single page).
        self._run(lambda: conn.executescript("PRAGMA incremental_vacuum;"))

    def _file_bytes(self) -> int:
        assert self.path is not None
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.stat(f"{self.path}{suffix}").st_size
        return total

    def _busy(self, exc: Exception) -> None:
        if self.on_error == "raise":
            raise CacheError(
                f"sigforge cache file {self.path} stayed locked by another process for more "
                f"than {self.busy_timeout:g} s ({exc})"
            ) from exc
        if not self._busy_warned:
            self._busy_warned = True
            warnings.warn(
                f"sigforge cache file {self.path} is locked by another process ({exc}); "
                "skipping cache reads and writes while it stays locked",
                RuntimeWarning,
                stacklevel=5,
            )

    def _disk_trouble(self, exc: Exception) -> None:
        message = f"sigforge cache file {self.path} is unusable ({exc}); " + _remedy(exc)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):  # already failing; closing is best effort
                conn.close()
        if self.on_error == "raise":
            raise CacheError(message) from exc
        if not self._disk_failed:
            warnings.warn(
                f"{message}; caching in memory only from now on", RuntimeWarning, stacklevel=5
            )
        self._disk_failed = True

    def _close_locked(self) -> None:
        if self._conn is None:
            return
        if self._conn_pid == os.getpid():
            self._flush()
        conn, self._conn = self._conn, None
        if conn is not None and self._conn_pid == os.getpid():
            with contextlib.suppress(Exception):
                conn.close()


# -- the file layout ---------------------------------------------------------------------

# Small columns first: reading them never follows a long value's overflow pages. ``value``
# is the UTF-8 JSON of the completion, ``crc`` its CRC-32, ``size`` the bytes of key and
# value.
_SCHEMA = """
CREATE TABLE completions (
    key TEXT PRIMARY KEY,
    created REAL NOT NULL,
    accessed REAL NOT NULL,
    expires REAL,
    size INTEGER NOT NULL,
    crc INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX completions_by_access ON completions (accessed);
CREATE INDEX completions_by_expiry ON completions (expires) WHERE expires IS NOT NULL;
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta (name, value) VALUES
    ('entries', 0), ('bytes', 0), ('hits', 0), ('misses', 0), ('evictions', 0), ('expired', 0);
CREATE TRIGGER completions_added AFTER INSERT ON completions BEGIN
    UPDATE meta SET value = value + 1 WHERE name = 'entries';
    UPDATE meta SET value = value + NEW.size WHERE name = 'bytes';
END;
CREATE TRIGGER completions_removed AFTER DELETE ON completions BEGIN
    UPDATE meta SET value = value - 1 WHERE name = 'entries';
    UPDATE meta SET value = value - OLD.size WHERE name = 'bytes';
END;
CREATE TRIGGER completions_resized AFTER UPDATE OF size ON completions BEGIN
    UPDATE meta SET value = value + NEW.size - OLD.size WHERE name = 'bytes';
END;
"""


def _prepare_schema(conn: sqlite3.Connection) -> None:
    """Create the tables in a new file, or migrate a file of an older layout.

    Raises :class:`_Unusable` for a file of a newer layout or another program's database.
    """
    if _check_identity(conn) == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then see it done
    try:
        if _check_identity(conn) != SCHEMA_VERSION:
            if _tables(conn):
                _migrate_from_v1(conn)
            else:
                for statement in _statements(_SCHEMA):
                    conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        import sqlite3

        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def _check_identity(conn: sqlite3.Connection) -> int:
    """The file's layout version: 0 for an empty file or the first, unversioned layout.

    Only reads, all from one snapshot (another process may be creating the file).
    Raises :class:`_Unusable` for a newer layout or another program's database.
    """
    with _snapshot(conn):
        return _identity(conn)


def _identity(conn: sqlite3.Connection) -> int:
    version = _user_version(conn)
    if version > SCHEMA_VERSION:
        raise _Unusable(
            f"it was written by a newer sigforge (cache layout {version}, this version "
            f"reads up to {SCHEMA_VERSION})"
        )
    application = conn.execute("PRAGMA application_id").fetchone()[0]
    if application == _APPLICATION_ID and version == SCHEMA_VERSION:
        return version
    if application == 0 and version == 0:
        tables = _tables(conn)
        if not tables:
            return 0
        columns = {row[1] for row in conn.execute("PRAGMA table_info(completions)")}
        if tables == {"completions"} and columns == {"key", "value", "created"}:
            return 0
    raise _Unusable("it is a SQLite database, but not a sigforge cache")


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }


def _statements(script: str) -> list[str]:
    """The statements of ``script`` (triggers kept whole), for ``execute`` one by one.

    ``executescript`` would commit the open transaction first.
    """
    import sqlite3

    statements: list[str] = []
    current = ""
    for line in script.strip().splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements


def _migrate_from_v1(conn: sqlite3.Connection) -> None:
    """Layout 0 (``completions(key, value, created)``, no version) to the current one."""
    import zlib

    conn.create_function("sigforge_crc32", 1, zlib.crc32, deterministic=True)
    conn.execute("ALTER TABLE completions RENAME TO completions_v1")
    for statement in _statements(_SCHEMA):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO completions (key, created, accessed, expires, size, crc, value)"
        " SELECT key, created, created, NULL,"
        " length(CAST(key AS BLOB)) + length(CAST(value AS BLOB)),"
        " sigforge_crc32(CAST(value AS BLOB)), CAST(value AS BLOB) FROM completions_v1"
    )
    conn.execute("DROP TABLE completions_v1")


def _is_busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` means another connection holds a lock we need."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)


def _bump(conn: sqlite3.Connection, counter: str, by: int) -> None:
    if by:
        conn.execute("UPDATE meta SET value = value + ? WHERE name = ?", (by, counter))


def _delete_expired(conn: sqlite3.Connection, now: float, key: str | None = None) -> int:
    """Delete the entries (or the entry ``key``) whose TTL has passed; counted in meta."""
    if key is None:
        cursor = conn.execute(
            "DELETE FROM completions WHERE expires IS NOT NULL AND expires <= ?", (now,)
        )
    else:
        cursor = conn.execute("DELETE FROM completions WHERE key = ? AND expires <= ?", (key, now))
    gone: int = cursor.rowcount
    _bump(conn, "expired", gone)
    return gone


def _wipe(conn: sqlite3.Connection) -> int:
    """Delete every entry and zero the counters."""
    gone: int = conn.execute("DELETE FROM completions").rowcount
    conn.execute(
        "UPDATE meta SET value = 0 WHERE name IN ('hits', 'misses', 'evictions', 'expired')"
    )
    return gone


def _user_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {name: int(value) for name, value in conn.execute("SELECT name, value FROM meta")}


def _read_stats(conn: sqlite3.Connection) -> tuple[dict[str, int], float | None, float | None]:
    """The meta counters and the oldest/newest entry's time, from one snapshot."""
    with _snapshot(conn):
        counts = _counts(conn)
        oldest, newest = conn.execute(
            "SELECT MIN(created), MAX(created) FROM completions"
        ).fetchone()
    return counts, oldest, newest


@contextlib.contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """Reads in the block see one state of the file (unless a transaction is already open)."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        import sqlite3

        with contextlib.suppress(sqlite3.Error):
            conn.execute("COMMIT")


def _remedy(exc: Exception) -> str:
    """What the user can do about a file problem, in a few words."""
    if isinstance(exc, _Unusable):
        return "it is left untouched; pass another path"
    if isinstance(exc, OSError):
        return "check that its folder is writable"
    return "if it is a damaged sigforge cache, delete it (it only holds cached answers)"


# -- stored values -----------------------------------------------------------------------


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


def _decode(value: str | bytes) -> Completion | None:
    """The completion stored as ``value``; ``None`` (a miss) if it is not a valid one."""
    try:
        data = json.loads(value)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    text, model, finish = data.get("text"), data.get("model"), data.get("finish_reason")
    prompt, answer = data.get("prompt_tokens"), data.get("completion_tokens")
    if not (
        isinstance(text, str)
        and isinstance(model, str)
        and (finish is None or isinstance(finish, str))
        and type(prompt) is int
        and type(answer) is int
    ):
        return None
    return Completion(text, Usage(prompt, answer), model=model, finish_reason=finish, cached=True)


# -- writing pending counters at exit ----------------------------------------------------

_open_caches: weakref.WeakSet[Cache] = weakref.WeakSet()


@atexit.register
def _close_open_caches() -> None:
    """Write the pending counters of every open cache when the interpreter exits."""
    for cache in list(_open_caches):
        # A daemon thread may still hold a cache's lock: never wait for it for long.
        if cache._lock.acquire(timeout=1.0):
            try:
                cache._close_locked()
            except Exception:  # exiting anyway; the counters are only statistics
                pass
            finally:
                cache._lock.release()
