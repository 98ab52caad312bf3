"""The SQLite cache in production conditions: limits, TTL, statistics, old and damaged
files, several processes at once, and a writer killed with SIGKILL.

The subprocesses run this very file (``python tests/test_cache_sqlite.py worker ...``), so
the values they write and the checks the tests make come from one ``text_for``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigforge.runtime.cache import SCHEMA_VERSION, Cache, CacheError, CacheStats, cache_key
from sigforge.runtime.messages import Completion, LMRequest, Usage


def text_for(key: str) -> str:
    """The text stored under ``key``: derived from it, 70 bytes to ~40 KB long."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key}|" + digest * (1 + int(digest[:3], 16) % 600)


def completion_for(key: str) -> Completion:
    return Completion(text_for(key), Usage(len(key), 7), model="m", finish_reason="stop")


def completion(text: str = "Paris.") -> Completion:
    return Completion(text, Usage(5, 2), model="gpt-4o-mini", finish_reason="stop")


class Clock:
    """A settable time source for TTL and LRU tests (no sleeping)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "cache.sqlite"


def rows(path: Path) -> list[tuple[str, float, float | None, int]]:
    """(key, accessed, expires, size) of every entry, read with plain sqlite3."""
    with sqlite3.connect(path) as conn:
        return list(
            conn.execute("SELECT key, accessed, expires, size FROM completions ORDER BY key")
        )


def meta(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT name, value FROM meta"))


def assert_counts_consistent(path: Path) -> None:
    """The trigger-maintained entry count and size equal the table's real ones."""
    with sqlite3.connect(path) as conn:
        count, total = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM completions"
        ).fetchone()
        real = conn.execute(
            "SELECT COALESCE(SUM(length(CAST(key AS BLOB)) + length(value)), 0) FROM completions"
        ).fetchone()[0]
    assert (meta(path)["entries"], meta(path)["bytes"]) == (count, total)
    assert total == real


@pytest.fixture
def no_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# -- the file ------------------------------------------------------------------------------


def test_a_new_file_is_versioned_wal_and_marked_as_a_sigforge_cache(path: Path) -> None:
    with Cache(path) as cache:
        cache.put("k", completion())
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x53474643
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    assert_counts_consistent(path)


V1_SCHEMA = (
    "CREATE TABLE completions (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
)


def v1_value(text: str) -> str:
    """A value as the first, unversioned layout stored it."""
    return json.dumps(
        {
            "text": text,
            "prompt_tokens": 5,
            "completion_tokens": 2,
            "model": "m",
            "finish_reason": "stop",
        },
        ensure_ascii=False,
    )


def test_a_file_of_the_first_layout_is_migrated_in_place(path: Path, no_warnings: None) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(V1_SCHEMA)
        conn.executemany(
            "INSERT INTO completions VALUES (?, ?, ?)",
            [(f"k{i}", v1_value(f"answer {i} é"), 1000.0 + i) for i in range(3)],
        )
    conn.close()

    with Cache(path, memory_entries=0) as cache:
        hit = cache.get("k1")
        assert hit is not None and (hit.text, hit.usage, hit.cached) == (
            "answer 1 é",
            Usage(5, 2),
            True,
        )
        stats = cache.stats()
        assert (stats.entries, stats.oldest, stats.newest) == (3, 1000.0, 1002.0)
        cache.put("new", completion())
        assert cache.get("new") is not None
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        names = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    assert names == {"completions", "meta"}
    assert_counts_consistent(path)
    assert meta(path)["entries"] == 4


def test_a_file_of_a_newer_layout_is_left_untouched(path: Path) -> None:
    with Cache(path) as cache:
        cache.put("k", completion())
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()

    cache = Cache(path)
    with pytest.warns(RuntimeWarning, match="newer sigforge.*caching in memory only"):
        assert cache.get("k") is None
    cache.put("k2", completion("memory"))
    assert cache.get("k2") == Completion("memory", Usage(5, 2), "gpt-4o-mini", "stop", cached=True)
    cache.close()
    assert path.read_bytes() == before


def test_another_programs_database_is_left_untouched(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
    conn.close()
    before = path.read_bytes()
    cache = Cache(path)
    with pytest.warns(RuntimeWarning, match="not a sigforge cache"):
        cache.put("k", completion())
    assert cache.get("k") is not None
    cache.close()
    assert path.read_bytes() == before


def test_on_error_raise_reports_an_unusable_file(path: Path) -> None:
    path.write_bytes(b"garbage" * 1000)
    with pytest.raises(CacheError, match=r"cache\.sqlite is unusable \(file is not a database\)"):
        Cache(path, on_error="raise").stats()


def test_a_damaged_value_is_a_miss_never_a_wrong_answer(path: Path) -> None:
    with Cache(path) as cache:
        cache.put("k", completion("Paris."))
    with sqlite3.connect(path) as conn:  # flip the answer, keep valid JSON: only the CRC knows
        conn.execute(
            "UPDATE completions SET value = CAST(replace(CAST(value AS TEXT), 'Paris', 'Lyons') AS BLOB)"
        )
    conn.close()
    with Cache(path) as cache:
        assert cache.get("k") is None
        assert cache.stats().entries == 0  # the damaged entry was removed
        cache.put("k", completion("Paris."))
        hit = cache.get("k")
        assert hit is not None and hit.text == "Paris."


def test_a_file_with_damaged_pages_never_fails_a_call_or_answers_wrongly(path: Path) -> None:
    keys = [f"k{i}" for i in range(150)]
    with Cache(path) as cache:
        for key in keys:
            cache.put(key, completion_for(key))
    size = path.stat().st_size
    assert size > 200_000
    noise = random.Random(7)
    with path.open("r+b") as damaged:  # keep the 100-byte header, ruin pages further in
        for offset in range(8192, size - 4096, size // 12):
            damaged.seek(offset)
            damaged.write(bytes(noise.randrange(256) for _ in range(3000)))

    cache = Cache(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answers = {key: cache.get(key) for key in keys}
        cache.put("after", completion("still works"))
        after = cache.get("after")
        stats = cache.stats()
    assert {w.category for w in caught} <= {RuntimeWarning}
    for key, answer in answers.items():
        assert answer is None or answer.text == text_for(key), key
    assert after is not None and after.text == "still works"
    assert stats.hits >= 1
    cache.close()


def test_a_file_locked_by_another_process_skips_only_that_write(path: Path) -> None:
    cache = Cache(path, busy_timeout=0.05)
    cache.put("before", completion())
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # holds the write lock
    with pytest.warns(RuntimeWarning, match="locked by another process"):
        cache.put("during", completion())
    assert cache.get("before") is not None  # reads still work in WAL mode
    holder.execute("ROLLBACK")
    holder.close()
    cache.put("after", completion())
    cache.close()
    assert [key for key, *_ in rows(path)] == ["after", "before"]  # the file is still used


# -- limits and eviction -------------------------------------------------------------------


def test_max_entries_evicts_least_recently_used_in_batches(path: Path) -> None:
    clock = Clock()
    cache = Cache(path, memory_entries=0, max_entries=10, touch_interval=0, clock=clock)
    for i in range(10):
        clock.now += 1
        cache.put(f"k{i}", completion(f"v{i}"))
    clock.now += 1
    assert cache.get("k0") is not None and cache.get("k1") is not None  # now most recent
    clock.now += 1
    cache.put("k10", completion("v10"))  # 11 > 10: down to 9 (90%), LRU first
    assert sorted(key for key, *_ in rows(path)) == sorted(
        ["k0", "k1", "k10", "k4", "k5", "k6", "k7", "k8", "k9"]
    )
    assert cache.stats().evictions == 2
    clock.now += 1
    cache.put("k11", completion("v11"))  # 10: within the limit, nothing evicted
    assert cache.stats().entries == 10 and cache.stats().evictions == 2
    cache.close()
    assert_counts_consistent(path)


def test_max_bytes_bounds_the_stored_size(path: Path) -> None:
    cache = Cache(path, memory_entries=0, max_bytes=50_000)
    sizes = []
    for i in range(200):
        key = f"key-{i}"
        cache.put(key, completion_for(key))
        sizes.append(cache.stats().stored_bytes)
    assert max(sizes) <= 50_000
    stats = cache.stats()
    assert stats.evictions > 0 and 0 < stats.entries < 200
    last = "key-199"
    assert cache.get(last) == Completion(
        text_for(last), Usage(len(last), 7), "m", "stop", cached=True
    )
    cache.close()
    assert_counts_consistent(path)


def test_an_entry_larger_than_max_bytes_stays_in_memory(path: Path) -> None:
    with Cache(path, max_bytes=1000) as cache:
        cache.put("big", completion("x" * 5000))
        assert cache.get("big") is not None  # from memory
        assert cache.stats().entries == 0
    assert rows(path) == []


def test_hits_do_not_write_until_the_access_time_is_stale(path: Path) -> None:
    clock = Clock()
    cache = Cache(path, memory_entries=0, touch_interval=60, clock=clock)
    cache.put("k", completion())
    watcher = sqlite3.connect(path)
    version = watcher.execute("PRAGMA data_version").fetchone()[0]
    for _ in range(100):
        assert cache.get("k") is not None
    assert watcher.execute("PRAGMA data_version").fetchone()[0] == version  # nothing written
    assert rows(path)[0][1] == clock.now

    clock.now += 61  # stale: the next hit refreshes the access time, written with the next flush
    assert cache.get("k") is not None
    cache.close()
    assert rows(path)[0][1] == clock.now
    assert meta(path)["hits"] == 101
    watcher.close()


def test_memory_hits_refresh_the_access_time_too(path: Path) -> None:
    clock = Clock()
    with Cache(path, touch_interval=60, clock=clock) as cache:
        cache.put("k", completion())
        clock.now += 100
        assert cache.get("k") is not None  # a memory hit
    assert rows(path)[0][1] == clock.now


# -- TTL -------------------------------------------------------------------------------------


def test_expired_entries_are_misses_and_are_removed(path: Path) -> None:
    clock = Clock()
    cache = Cache(path, ttl=30, clock=clock)
    cache.put("k", completion())
    assert rows(path)[0][2] == clock.now + 30
    clock.now += 29
    assert cache.get("k") is not None
    clock.now += 2
    assert cache.get("k") is None  # memory and file agree
    assert rows(path) == []
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.expired, stats.entries) == (1, 1, 1, 0)

    other = Cache(path, memory_entries=0, clock=clock)  # no ttl: its entries never expire
    other.put("forever", completion())
    clock.now += 10**6
    assert other.get("forever") is not None
    cache.close()
    other.close()


def test_clear_expired_only_keeps_live_entries_and_counters(path: Path) -> None:
    clock = Clock()
    with Cache(path, ttl=10, clock=clock) as short, Cache(path, clock=clock) as forever:
        for i in range(5):
            short.put(f"s{i}", completion())
        forever.put("f", completion())
        assert forever.get("f") is not None
        clock.now += 11
        assert forever.clear(expired_only=True) == 5
        stats = forever.stats()
        assert (stats.entries, stats.expired, stats.hits) == (1, 5, 1)
        assert forever.clear() == 1
        assert forever.stats() == CacheStats(
            entries=0, hits=0, misses=0, file_bytes=forever.stats().file_bytes
        )


def test_clear_gives_the_space_back(path: Path) -> None:
    with Cache(path) as cache:
        for i in range(300):
            cache.put(f"k{i}", completion("x" * 4000))
    full = path.stat().st_size
    with Cache(path) as cache:
        assert cache.clear() == 300
    assert path.stat().st_size < full / 10


def test_a_forked_child_uses_its_own_connection(path: Path) -> None:
    cache = Cache(path, memory_entries=0)
    cache.put("parent", completion("from parent"))
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 only if everything worked
        try:
            found = cache.get("parent")
            cache.put("child", completion("from child"))
            cache.close()
            os._exit(0 if found is not None and found.text == "from parent" else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    hit = cache.get("child")
    assert hit is not None and hit.text == "from child"
    assert cache.get("parent") is not None  # the parent's connection is untouched
    cache.close()


def test_memory_only_cache_has_ttl_and_counts_evictions() -> None:
    clock = Clock()
    cache = Cache(disk=False, memory_entries=2, ttl=5, clock=clock)
    for key in ("a", "b", "c"):
        cache.put(key, completion(key))
    clock.now += 6
    assert cache.get("c") is None
    stats = cache.stats()
    assert (stats.entries, stats.evictions, stats.expired, stats.misses) == (1, 1, 1, 1)
    assert stats.file_bytes is None
    assert cache.clear(expired_only=True) == 1


# -- statistics across processes ---------------------------------------------------------


def run_self(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )


def test_counters_of_every_process_add_up(path: Path) -> None:
    with Cache(path) as cache:
        cache.put("k", completion())
    run_self("lookups", str(path), "k", "3", "missing", "2")
    run_self("lookups", str(path), "k", "4", "missing", "1")  # no put: counters written at exit
    with Cache(path) as cache:
        assert cache.get("k") is not None
        stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (8, 3, 1)
    assert stats.file_bytes is not None and stats.file_bytes >= path.stat().st_size
    assert stats.as_dict()["hit_rate"] == pytest.approx(8 / 11)


def test_stats_report_size_and_age(path: Path) -> None:
    clock = Clock(5000.0)
    with Cache(path, clock=clock) as cache:
        cache.put("a", completion("x" * 100))
        clock.now = 6000.0
        cache.put("b", completion("y" * 100))
        stats = cache.stats()
    assert (stats.oldest, stats.newest) == (5000.0, 6000.0)
    assert stats.stored_bytes == sum(size for *_, size in rows(path))
    assert stats.stored_bytes > 200


# -- several processes, crashes ------------------------------------------------------------


def test_processes_write_and_read_one_file_concurrently(path: Path) -> None:
    workers, count = 4, 120
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "worker", str(path), str(n), str(count), str(workers)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(workers)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out))
    assert sum(o["seen_others"] for o in outputs) > 0  # they read each other's entries

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Cache(path, memory_entries=0) as cache:
            for n in range(workers):
                for i in range(count):
                    key = f"w{n}-{i}"
                    assert cache.get(key) == Completion(
                        text_for(key), Usage(len(key), 7), "m", "stop", cached=True
                    ), key
            stats = cache.stats()
    assert stats.entries == workers * count
    assert stats.hits == sum(o["hits"] for o in outputs) + workers * count
    assert_counts_consistent(path)


@pytest.mark.parametrize("max_entries", [None, 40])
def test_a_writer_killed_mid_write_leaves_only_whole_entries(
    path: Path, max_entries: int | None
) -> None:
    proc = subprocess.Popen(
        [sys.executable, __file__, "crash-writer", str(path), str(max_entries or 0)],
        stdout=subprocess.PIPE,
        text=True,
    )
    acknowledged: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # one line per put that returned
            acknowledged.append(line.strip())
            if len(acknowledged) >= 250:
                break
        proc.send_signal(signal.SIGKILL)  # it is still writing
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(acknowledged) >= 250

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = [key for (key,) in conn.execute("SELECT key FROM completions")]
    conn.close()
    assert_counts_consistent(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # opens without complaint
        with Cache(path, memory_entries=0) as cache:
            for key in stored:
                assert cache.get(key) == Completion(
                    text_for(key), Usage(len(key), 7), "m", "stop", cached=True
                ), key
    if max_entries is None:
        assert set(acknowledged) <= set(stored)  # every acknowledged write survived
    else:
        assert 0 < len(stored) <= max_entries
        assert acknowledged[-1] in stored  # the newest entry is never the one evicted


# -- worker processes (run as `python tests/test_cache_sqlite.py MODE ...`) ---------------------


def _worker(path: str, worker: int, count: int, workers: int) -> None:
    """Write ``count`` entries, read each back, and read random entries of other workers."""
    rng = random.Random(worker)
    seen_others = hits = 0
    with Cache(path, memory_entries=0, touch_interval=0, max_bytes=None) as cache:
        for i in range(count):
            key = f"w{worker}-{i}"
            cache.put(key, completion_for(key))
            assert cache.get(key) == Completion(
                text_for(key), Usage(len(key), 7), "m", "stop", cached=True
            ), key
            other = f"w{rng.randrange(workers)}-{rng.randrange(count)}"
            found = cache.get(other)
            if found is not None:
                assert found.text == text_for(other), other
                seen_others += other.split("-")[0] != f"w{worker}"
                hits += 1
        hits += count
    print(json.dumps({"seen_others": seen_others, "hits": hits}))


def _crash_writer(path: str, max_entries: int) -> None:
    """Write entries until killed (or 100 000 of them), printing each key once stored."""
    cache = Cache(path, memory_entries=0, touch_interval=0, max_entries=max_entries or None)
    for i in range(100_000):
        key = cache_key({"writer": os.getpid()}, LMRequest(({"role": "user", "content": str(i)},)))
        cache.put(key, completion_for(key))
        if i % 3 == 0:
            cache.get(key)
        print(key, flush=True)


def _lookups(path: str, hit_key: str, hits: str, miss_key: str, misses: str) -> None:
    cache = Cache(path)  # never closed: the counters are written at interpreter exit
    for _ in range(int(hits)):
        assert cache.get(hit_key) is not None
    for _ in range(int(misses)):
        assert cache.get(miss_key) is None


if __name__ == "__main__":
    mode, *arguments = sys.argv[1:]
    if mode == "worker":
        _worker(arguments[0], *map(int, arguments[1:]))
    elif mode == "crash-writer":
        _crash_writer(arguments[0], int(arguments[1]))
    elif mode == "lookups":
        _lookups(*arguments)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
