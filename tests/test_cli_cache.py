"""`sigforge cache stats` and `sigforge cache clear`, run as a user runs them: subprocesses."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sigforge.runtime.cache import Cache
from sigforge.runtime.messages import Completion, Usage


def sigforge(*args: str, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "sigforge"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "sigforge.codegen"]
    env = {**os.environ, "SIGFORGE_CACHE_DIR": str(cache_dir)}
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def completion(text: str) -> Completion:
    return Completion(text, Usage(5, 2), model="m", finish_reason="stop")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def filled(cache_dir: Path) -> Path:
    """The default cache file with 3 entries (one written long ago with a 10 s TTL),
    2 hits and 1 miss."""
    path = cache_dir / "cache.sqlite"
    clock = Clock(1_700_000_000.0)
    with Cache(path, ttl=10, clock=clock) as old:
        old.put("old", completion("expired long ago"))
    with Cache(path) as cache:
        cache.put("a", completion("A" * 1000))
        cache.put("b", completion("B"))
        assert cache.get("a") is not None and cache.get("b") is not None
        assert cache.get("nope") is None
    return path


def test_stats_json_reads_the_default_file(filled: Path, cache_dir: Path) -> None:
    run = sigforge("cache", "stats", "--format", "json", cache_dir=cache_dir)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["path"] == str(filled) and data["exists"] is True
    assert (data["entries"], data["hits"], data["misses"], data["evictions"]) == (3, 2, 1, 0)
    assert data["hit_rate"] == pytest.approx(2 / 3)
    assert data["oldest"] == 1_700_000_000.0 and data["newest"] > data["oldest"]
    with sqlite3.connect(filled) as conn:
        stored = conn.execute("SELECT SUM(size) FROM completions").fetchone()[0]
    assert data["stored_bytes"] == stored > 1000
    assert data["file_bytes"] >= filled.stat().st_size


def test_stats_text_for_people(filled: Path, cache_dir: Path) -> None:
    run = sigforge("cache", "stats", "--path", str(filled), cache_dir=cache_dir / "elsewhere")
    assert run.returncode == 0, run.stderr
    lines = dict(line.split(":", 1) for line in run.stdout.splitlines())
    assert lines["cache file"].strip() == str(filled)
    assert lines["entries"].strip() == "3"
    assert lines["hits"].strip() == "2" and lines["misses"].strip() == "1"
    assert lines["hit rate"].strip() == "66.7%"
    assert "KiB (keys and values)" in lines["stored"]
    assert lines["oldest entry"].strip().startswith("2023-11-1")


def test_clear_expired_only_then_everything(filled: Path, cache_dir: Path) -> None:
    run = sigforge("cache", "clear", "--expired-only", cache_dir=cache_dir)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"removed 1 entry whose TTL had passed from {filled}"
    data = json.loads(sigforge("cache", "stats", "--format", "json", cache_dir=cache_dir).stdout)
    assert (data["entries"], data["expired"], data["hits"]) == (2, 1, 2)

    run = sigforge("cache", "clear", cache_dir=cache_dir)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"removed 2 entries from {filled}; counters reset"
    data = json.loads(sigforge("cache", "stats", "--format", "json", cache_dir=cache_dir).stdout)
    assert (data["entries"], data["hits"], data["misses"], data["expired"]) == (0, 0, 0, 0)
    with Cache(filled) as cache:  # the file is still a working cache
        cache.put("c", completion("C"))
        assert cache.get("c") is not None


def test_a_missing_file_is_reported_and_not_created(cache_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "none" / "cache.sqlite"
    stats = sigforge("cache", "stats", "--path", str(missing), cache_dir=cache_dir)
    assert (stats.returncode, stats.stdout.strip()) == (0, f"no cache at {missing}")
    clear = sigforge("cache", "clear", "--path", str(missing), cache_dir=cache_dir)
    assert (clear.returncode, clear.stdout.strip()) == (
        0,
        f"no cache at {missing}: nothing to clear",
    )
    as_json = json.loads(
        sigforge(
            "cache", "stats", "--path", str(missing), "--format", "json", cache_dir=cache_dir
        ).stdout
    )
    assert (as_json["exists"], as_json["entries"]) == (False, 0)
    assert not missing.parent.exists()


@pytest.mark.parametrize("command", [["stats"], ["clear"], ["clear", "--expired-only"]])
def test_a_file_that_is_not_a_cache_is_an_error_and_left_alone(
    command: list[str], cache_dir: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "notes.txt"
    garbage.write_bytes(b"my notes, not a database\n" * 200)
    before = garbage.read_bytes()
    run = sigforge("cache", *command, "--path", str(garbage), cache_dir=cache_dir)
    assert run.returncode == 1
    assert "Error: sigforge cache file" in run.stderr and "file is not a database" in run.stderr
    assert "Traceback" not in run.stderr
    assert garbage.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_an_old_layout_file_is_migrated_and_reported(cache_dir: Path) -> None:
    path = cache_dir / "cache.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE completions (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
        )
        value = {
            "text": "t",
            "prompt_tokens": 1,
            "completion_tokens": 1,
            "model": "m",
            "finish_reason": None,
        }
        conn.execute("INSERT INTO completions VALUES ('k', ?, 1000.0)", (json.dumps(value),))
    conn.close()
    data = json.loads(sigforge("cache", "stats", "--format", "json", cache_dir=cache_dir).stdout)
    assert (data["entries"], data["oldest"]) == (1, 1000.0)
