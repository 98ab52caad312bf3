"""RedisCache against a real redis-server that these tests start on 127.0.0.1.

Each server gets a free port and a temporary directory, persists nothing, runs under
``timeout`` (so it ends even if the test run is killed) and is always stopped. Without
``redis-server`` the tests skip locally and FAIL in CI (``CI=true``), where ``.ci/run``
installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sigforge.runtime import LM, RedisCache, configure
from sigforge.runtime.cache import CacheError, CompletionCache
from sigforge.runtime.messages import Completion, LMRequest, Usage
from sigforge.testing import OpenAICompatServer

MISSING = None
if shutil.which("redis-server") is None:
    MISSING = "redis-server is not on PATH (apt-get install redis-server)"
else:
    try:
        import redis
    except ImportError:
        MISSING = "the redis package is not installed (pip install -e '.[dev]')"


def require_redis() -> None:
    if MISSING is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{MISSING}: CI must run the Redis tests (.ci/run installs redis-server)")
    pytest.skip(MISSING)


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def redis_server(directory: Path, *options: str, port: int | None = None) -> Iterator[Server]:
    """A redis-server on 127.0.0.1 for the ``with`` block (at most 10 minutes)."""
    require_redis()
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    command = [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
        "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "redis.log",
        *options,
    ]  # fmt: skip
    if shutil.which("timeout"):
        command = ["timeout", "600", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    server = Server(port, process)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if server.client().ping():
                    break
            except redis.ConnectionError:
                pass
            log = directory / "redis.log"
            if process.poll() is not None or time.monotonic() > deadline:
                text = log.read_text(errors="replace") if log.exists() else ""
                pytest.fail(f"redis-server did not start on port {port}:\n{text[-2000:]}")
            time.sleep(0.02)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def server(shared_server: Server) -> Iterator[Server]:
    """The module's server, emptied for each test."""
    shared_server.client().flushall()
    yield shared_server


def completion(text: str = "Paris.") -> Completion:
    return Completion(text, Usage(5, 2), model="gpt-4o-mini", finish_reason="stop")


def closed_port() -> int:
    return free_port()  # nothing listens on it once the probe socket is closed


# -- basics ---------------------------------------------------------------------------------


def test_round_trip_and_key_layout(server: Server) -> None:
    with RedisCache(server.url) as cache:
        assert isinstance(cache, CompletionCache)
        assert cache.get("k") is None
        cache.put("k", completion())
        assert cache.get("k") == Completion(
            "Paris.", Usage(5, 2), "gpt-4o-mini", "stop", cached=True
        )
    raw = server.client().get("sigforge:c:k")
    assert raw is not None
    assert json.loads(raw) == {
        "text": "Paris.",
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "model": "gpt-4o-mini",
        "finish_reason": "stop",
    }
    assert server.client().pttl("sigforge:c:k") == -1  # no TTL: never expires


def test_a_foreign_or_damaged_value_is_a_miss(server: Server) -> None:
    server.client().set("sigforge:c:k", b"\xff not json")
    server.client().set("sigforge:c:j", json.dumps({"text": 3}))
    with RedisCache(server.url) as cache:
        assert cache.get("k") is None and cache.get("j") is None
        assert cache.stats().misses == 2


def test_ttl_becomes_the_keys_expiry(server: Server) -> None:
    with RedisCache(server.url, ttl=30) as cache:
        cache.put("k", completion())
        assert 0 < server.client().pttl("sigforge:c:k") <= 30_000
    with RedisCache(server.url, ttl=0.05) as cache:
        cache.put("short", completion())
        deadline = time.monotonic() + 10
        while cache.get("short") is not None:  # Redis removes it once its 50 ms are over
            assert time.monotonic() < deadline, "the entry never expired"
            time.sleep(0.02)
        assert server.client().exists("sigforge:c:short") == 0


def test_prefixes_keep_caches_apart_even_with_glob_characters(server: Server) -> None:
    odd = RedisCache(server.url, prefix="a*[b]:")
    near = RedisCache(server.url, prefix="aX[b]:")
    plain = RedisCache(server.url, prefix="app:")
    for cache in (odd, near, plain):
        cache.put("k1", completion(cache.prefix))
        cache.put("k2", completion(cache.prefix))
    assert odd.stats().entries == 2
    assert odd.clear() == 2
    assert odd.get("k1") is None
    hit = near.get("k1")
    assert hit is not None and hit.text == "aX[b]:"
    assert (near.stats().entries, plain.stats().entries) == (2, 2)
    for cache in (odd, near, plain):
        cache.close()


def test_stats_add_up_the_counters_of_every_client(server: Server) -> None:
    first, second = RedisCache(server.url), RedisCache(server.url)
    first.put("k", completion("x" * 100))
    for _ in range(3):
        assert first.get("k") is not None
    assert first.get("missing") is None
    assert second.get("k") is not None
    second.close()  # sends its counters
    stats = first.stats()
    assert (stats.entries, stats.hits, stats.misses) == (1, 4, 1)
    assert stats.stored_bytes == len("sigforge:c:k") + len(
        server.client().get("sigforge:c:k") or b""
    )
    assert stats.file_bytes is None and stats.oldest is None
    assert first.clear() == 1
    cleared = first.stats()
    assert (cleared.entries, cleared.hits, cleared.misses) == (0, 0, 0)
    assert server.client().exists("sigforge:stats") == 0
    first.close()


def test_clear_expired_only_leaves_expiry_to_redis(server: Server) -> None:
    with RedisCache(server.url, ttl=60) as cache:
        cache.put("k", completion())
        assert cache.clear(expired_only=True) == 0
        assert cache.get("k") is not None


def test_threads_share_one_cache(server: Server) -> None:
    cache = RedisCache(server.url)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(40):
                cache.put(f"{worker}-{i}", completion(f"{worker}-{i}"))
                got = cache.get(f"{worker}-{i // 2}")
                assert got is not None and got.text == f"{worker}-{i // 2}"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stats = cache.stats()
    assert (stats.entries, stats.hits) == (240, 240)
    cache.close()


WORKER = """
import sys
from sigforge.runtime import RedisCache
from sigforge.runtime.messages import Completion
url, worker = sys.argv[1], sys.argv[2]
cache = RedisCache(url, on_error="raise")
for i in range(100):
    cache.put(f"{worker}-{i}", Completion(f"{worker}:{i}:" + "z" * (i * 37)))
    assert cache.get(f"{worker}-{i}").text.startswith(f"{worker}:{i}:")
cache.close()
"""


def test_processes_share_the_server(server: Server) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, server.url, str(n)], stderr=subprocess.PIPE)
        for n in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    with RedisCache(server.url) as cache:
        for n in range(3):
            for i in range(100):
                assert cache.get(f"{n}-{i}") == Completion(
                    f"{n}:{i}:" + "z" * (i * 37), cached=True
                )
        stats = cache.stats()
    assert (stats.entries, stats.hits, stats.misses) == (300, 600, 0)


# -- through the LM --------------------------------------------------------------------------


REQUEST = LMRequest(({"role": "user", "content": "Capital of France?"},))


def test_lms_use_a_redis_cache(server: Server) -> None:
    cache = RedisCache(server.url)
    with OpenAICompatServer(["Paris."]) as api:
        own = LM("openai/test-model", base_url=api.base_url, api_key="sk-test", cache=cache)
        assert own.complete(REQUEST).cached is False
        assert own.complete(REQUEST).cached is True
        configure(cache=cache)
        shared = LM("openai/test-model", base_url=api.base_url, api_key="sk-test")
        assert shared.complete(REQUEST).text == "Paris."
        assert len(api.requests) == 1
        own.close()
        shared.close()
    assert cache.stats().hits == 2
    cache.close()


# -- failures --------------------------------------------------------------------------------


def test_an_unreachable_server_never_fails_a_call() -> None:
    require_redis()
    cache = RedisCache(f"redis://:s3cret@127.0.0.1:{closed_port()}/0", timeout=0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.get("k") is None
        cache.put("k", completion())
        assert cache.get("k") is None
    assert len(caught) == 1  # once per outage, not per call
    message = str(caught[0].message)
    assert "continuing without it" in message and "s3cret" not in message and ":***@" in message
    with OpenAICompatServer(["Paris.", "Paris."]) as api:
        lm = LM("openai/test-model", base_url=api.base_url, api_key="sk-test", cache=cache)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert lm.complete(REQUEST).text == "Paris."
        lm.close()


def test_on_error_raise() -> None:
    require_redis()
    cache = RedisCache(f"redis://127.0.0.1:{closed_port()}/0", timeout=0.5, on_error="raise")
    with pytest.raises(CacheError, match=r"Redis cache at redis://127\.0\.0\.1:"):
        cache.get("k")


def test_the_cache_comes_back_after_an_outage(tmp_path: Path) -> None:
    port = free_port()
    cache = RedisCache(f"redis://127.0.0.1:{port}/0", retry_interval=0, timeout=0.5)
    with redis_server(tmp_path / "one", port=port):
        cache.put("k", completion())
        assert cache.get("k") is not None
    with pytest.warns(RuntimeWarning, match="failed"):
        assert cache.get("k") is None
    with redis_server(tmp_path / "two", port=port):  # a new, empty server on the same port
        assert cache.get("k") is None
        cache.put("k", completion("again"))
        hit = cache.get("k")
        assert hit is not None and hit.text == "again"
    cache.close()


def test_redis_evicts_by_its_own_maxmemory_policy(tmp_path: Path) -> None:
    with (
        redis_server(tmp_path, "--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru") as server,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("error")  # no put may fail
        cache = RedisCache(server.url, on_error="raise")
        for i in range(400):
            cache.put(f"k{i}", completion(f"{i}:" + "x" * 10_000))
        stats = cache.stats()
        assert stats.evictions > 0
        assert 0 < stats.entries < 400
        assert stats.stored_bytes < 2 * 1024 * 1024
        newest = cache.get("k399")
        assert newest is not None and newest.text.startswith("399:")
        cache.close()


def test_a_full_server_under_noeviction_refuses_writes_but_still_serves(tmp_path: Path) -> None:
    with redis_server(tmp_path, "--maxmemory", "1mb", "--maxmemory-policy", "noeviction") as server:
        cache = RedisCache(server.url)
        cache.put("first", completion("kept"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for i in range(300):
                cache.put(f"k{i}", completion("x" * 10_000))
        assert len(caught) == 1
        message = str(caught[0].message)
        assert "OutOfMemoryError" in message and "maxmemory" in message and "skipped" in message
        assert "xxxx" not in message  # the cached text is not quoted
        hit = cache.get("first")  # reads go on: a refused write is not an outage
        assert hit is not None and hit.text == "kept"
        cache.close()


def test_without_the_redis_package_the_error_says_what_to_install(monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # makes `import redis` fail
    from sigforge.runtime.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"pip install 'sigforge\[redis\]'"):
        RedisCache()
