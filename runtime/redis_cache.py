"""A completion cache on a Redis server, shared by every process and machine that reaches it.

Each entry is one Redis string, ``<prefix>c:<key>``, holding the same JSON as the SQLite
:class:`~sigforge.runtime.cache.Cache`; a TTL becomes the key's own expiry (``SET ... PX``),
so Redis removes expired entries by itself. Hit and miss counters are kept in the hash
``<prefix>stats``: they are counted locally and sent along with the next ``put``, or
with a lookup once 512 lookups or 10 seconds have gathered, so a hit is one ``GET``.

**Size limits are Redis's job.** This class sets no limit of its own: give the server a
``maxmemory`` and an eviction policy. On a Redis used only for caching,
``maxmemory-policy allkeys-lru`` evicts the least recently used entries, which is what
the SQLite cache's ``max_bytes`` does; on a Redis shared with data that must not be
evicted, give the cache a ``ttl`` and use ``volatile-lru`` (only keys with an expiry are
evicted). Redis counts evictions and expiries per server, so :meth:`RedisCache.stats`
reports the server's ``evicted_keys`` and ``expired_keys``, which include keys that are
not this cache's.

**An unreachable server never fails an LM call.** Connecting and each command time out
after ``timeout`` seconds; a failure is reported once as a ``RuntimeWarning``, lookups
miss and writes are dropped, and the server is tried again after ``retry_interval``
seconds. A command the server refuses (say, a write when it is out of memory under
``noeviction``) is just skipped, with one warning. ``on_error="raise"`` raises
:class:`~sigforge.runtime.cache.CacheError` instead. The ``redis`` package is imported only when a ``RedisCache`` is created;
install it with ``pip install 'sigforge[redis]'``.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .cache import CacheError, CacheStats, CompletionCache, OnError, _decode, _encode
from .errors import ConfigurationError
from .messages import Completion

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["RedisCache"]

# Pending hit/miss counts are sent after this many lookups, or this many seconds.
_FLUSH_EVERY = 512
_FLUSH_SECONDS = 10.0
# Keys per SCAN step and per UNLINK/STRLEN batch.
_BATCH = 500


class RedisCache(CompletionCache):
    """Completions in Redis at ``url`` under ``prefix``; see the module docstring.

    ``ttl`` (seconds) makes the entries written by this object expire. ``timeout``
    bounds connecting and every command; after a failure the server is left alone
    for ``retry_interval`` seconds. ``client`` uses a ``redis.Redis`` you configured
    (TLS, Sentinel, ...) instead of connecting to ``url``.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "sigforge:",
        ttl: float | None = None,
        timeout: float = 1.0,
        retry_interval: float = 30.0,
        on_error: OnError = "warn",
        client: Redis | None = None,
    ) -> None:
        if ttl is not None and not ttl > 0:
            raise ValueError("ttl must be a positive number of seconds (or None)")
        if timeout <= 0 or retry_interval < 0:
            raise ValueError("timeout must be positive and retry_interval >= 0")
        if on_error not in ("warn", "raise"):
            raise ValueError("on_error must be 'warn' or 'raise'")
        try:
            import redis
        except ImportError:
            raise ConfigurationError(
                "RedisCache needs the redis package: pip install 'sigforge[redis]'"
            ) from None
        self.url = url if client is None else "<given client>"
        self.prefix = prefix
        self.ttl = ttl
        self.timeout = timeout
        self.retry_interval = retry_interval
        self.on_error: OnError = on_error
        self._client: Redis = client or redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        # Failures that mean the server is out of reach (others are refused commands).
        self._outages: tuple[type[Exception], ...] = (
            redis.ConnectionError,
            redis.TimeoutError,
            OSError,
        )
        self._stats_key = f"{prefix}stats"
        self._lock = threading.Lock()  # guards the counters and the outage state below
        self._hits = self._misses = self._lookups = 0
        self._flushed_at = time.monotonic()
        self._down = False
        self._retry_at = 0.0
        self._refusal_warned = False

    def __repr__(self) -> str:
        ttl = f", ttl={self.ttl!r}" if self.ttl is not None else ""
        return f"RedisCache({_redacted(self.url)!r}, prefix={self.prefix!r}{ttl})"

    def _key(self, key: str) -> str:
        return f"{self.prefix}c:{key}"

    # -- public API ---------------------------------------------------------------

    def get(self, key: str) -> Completion | None:
        """The stored completion for ``key`` (with ``cached=True``), or ``None``."""
        if self._resting():
            self._count(hit=False)
            return None
        counts = self._due_counts()
        try:
            if counts is None:
                raw = self._client.get(self._key(key))
            else:
                pipe = self._client.pipeline(transaction=False)
                pipe.get(self._key(key))
                self._queue_counts(pipe, counts)
                raw = pipe.execute()[0]
        except self._errors as exc:
            self._give_back(counts)
            self._trouble(exc)
            self._count(hit=False)
            return None
        self._reachable()
        found = _decode(raw) if isinstance(raw, bytes | str) else None
        self._count(hit=found is not None)
        return found

    def put(self, key: str, completion: Completion) -> None:
        """Store ``completion`` under ``key``, expiring after ``ttl`` seconds if set."""
        if self._resting():
            return
        stored = completion if completion.cached else replace(completion, cached=True)
        counts = self._take_counts()
        expiry_ms = None if self.ttl is None else max(1, round(self.ttl * 1000))
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.set(self._key(key), _encode(stored), px=expiry_ms)
            self._queue_counts(pipe, counts)
            pipe.execute()
        except self._errors as exc:
            self._give_back(counts)
            self._trouble(exc)
            return
        self._reachable()

    def clear(self, *, expired_only: bool = False) -> int:
        """Delete every entry under the prefix and the counters; returns how many entries
        went. Redis removes expired keys itself, so ``expired_only`` removes nothing."""
        if expired_only:
            return 0
        with self._lock:
            self._hits = self._misses = self._lookups = 0
        removed = 0
        try:
            batch: list[bytes] = []
            for name in self._client.scan_iter(match=self._pattern(), count=_BATCH):
                batch.append(name)
                if len(batch) >= _BATCH:
                    removed += int(self._client.unlink(*batch))
                    batch.clear()
            if batch:
                removed += int(self._client.unlink(*batch))
            self._client.delete(self._stats_key)
        except self._errors as exc:
            self._trouble(exc)
        else:
            self._reachable()
        return removed

    def stats(self) -> CacheStats:
        """Entries and their size (a ``SCAN`` of the prefix: O(entries)), the counters of
        all processes, and the server's eviction and expiry counts."""
        with self._lock:
            local_hits, local_misses = self._hits, self._misses
        try:
            entries = stored = 0
            batch: list[bytes] = []
            for name in self._client.scan_iter(match=self._pattern(), count=_BATCH):
                batch.append(name)
                if len(batch) >= _BATCH:
                    stored += self._stored_bytes(batch)
                    entries += len(batch)
                    batch.clear()
            stored += self._stored_bytes(batch)
            entries += len(batch)
            counters = {
                name.decode() if isinstance(name, bytes) else name: int(value)
                for name, value in self._client.hgetall(self._stats_key).items()
            }
            info: dict[str, Any] = self._client.info("stats")
        except self._errors as exc:
            self._trouble(exc)
            return CacheStats(entries=0, hits=local_hits, misses=local_misses)
        self._reachable()
        return CacheStats(
            entries=entries,
            hits=counters.get("hits", 0) + local_hits,
            misses=counters.get("misses", 0) + local_misses,
            evictions=int(info.get("evicted_keys", 0)),
            expired=int(info.get("expired_keys", 0)),
            stored_bytes=stored,
        )

    def close(self) -> None:
        """Send the pending counters, then close the connections (reopened on next use)."""
        counts = self._take_counts()
        if counts is not None and not self._resting():
            with contextlib.suppress(*self._errors):  # only statistics: closing must not fail
                pipe = self._client.pipeline(transaction=False)
                self._queue_counts(pipe, counts)
                pipe.execute()
        with contextlib.suppress(*self._errors):
            self._client.close()

    # -- helpers ------------------------------------------------------------------

    def _pattern(self) -> str:
        """A ``SCAN MATCH`` pattern for the entry keys (glob characters of the prefix escaped)."""
        escaped = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in self.prefix)
        return f"{escaped}c:*"

    def _stored_bytes(self, names: list[bytes]) -> int:
        if not names:
            return 0
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            pipe.strlen(name)
        return sum(len(name) for name in names) + sum(int(n) for n in pipe.execute())

    def _count(self, *, hit: bool) -> None:
        with self._lock:
            if hit:
                self._hits += 1
            else:
                self._misses += 1
            self._lookups += 1

    def _due_counts(self) -> tuple[int, int] | None:
        """The pending counts to send with this lookup, when enough have gathered."""
        with self._lock:
            due = self._lookups >= _FLUSH_EVERY or (
                time.monotonic() - self._flushed_at >= _FLUSH_SECONDS
            )
        return self._take_counts() if due else None

    def _take_counts(self) -> tuple[int, int] | None:
        with self._lock:
            counts = (self._hits, self._misses)
            self._hits = self._misses = self._lookups = 0
            self._flushed_at = time.monotonic()
        return counts if any(counts) else None

    def _give_back(self, counts: tuple[int, int] | None) -> None:
        """Counts that could not be sent stay pending."""
        if counts is not None:
            with self._lock:
                self._hits += counts[0]
                self._misses += counts[1]

    def _queue_counts(self, pipe: Any, counts: tuple[int, int] | None) -> None:
        if counts is None:
            return
        hits, misses = counts
        if hits:
            pipe.hincrby(self._stats_key, "hits", hits)
        if misses:
            pipe.hincrby(self._stats_key, "misses", misses)

    def _resting(self) -> bool:
        """True while the server is left alone after a failure."""
        return self._down and time.monotonic() < self._retry_at

    def _reachable(self) -> None:
        if self._down:
            with self._lock:
                self._down = False

    def _trouble(self, exc: Exception) -> None:
        # A pipeline's error quotes the command, cached text included: keep only the reason.
        reason = str(exc).rpartition(" caused error: ")[2][:300]
        message = (
            f"sigforge Redis cache at {_redacted(self.url)} failed ({type(exc).__name__}: {reason})"
        )
        if self.on_error == "raise":
            raise CacheError(message) from exc
        outage = isinstance(exc, self._outages)
        with self._lock:
            if outage:  # leave the server alone for a while
                first = not self._down
                self._down = True
                self._retry_at = time.monotonic() + self.retry_interval
            else:  # the server refused this command (e.g. a write when full, under noeviction)
                first = not self._refusal_warned
                self._refusal_warned = True
        if first:
            then = (
                f"continuing without it, trying again every {self.retry_interval:g} s"
                if outage
                else "the command was skipped (further refusals are not reported)"
            )
            warnings.warn(f"{message}; {then}", RuntimeWarning, stacklevel=3)


def _redacted(url: str) -> str:
    """``url`` without its password."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unreadable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
