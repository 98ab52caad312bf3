"""The completion cache: keys, LRU, SQLite persistence across processes, LM integration."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sigforge.runtime.cache import Cache, CacheStats, CompletionCache, cache_key
from sigforge.runtime.history import last
from sigforge.runtime.lm import LM
from sigforge.runtime.messages import Completion, LMRequest, Message, Usage
from sigforge.runtime.settings import configure, context, current_cache
from sigforge.testing import OpenAICompatServer

MESSAGES: tuple[Message, ...] = (
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "Capital of France?"},
)
REQUEST = LMRequest(MESSAGES)
IDENTITY: dict[str, Any] = {
    "provider": "openai",
    "model": "gpt-4o-mini",
    "base_url": "https://api.openai.com/v1",
    "params": {"temperature": 0.0},
}


def completion(text: str = "Paris.") -> Completion:
    return Completion(text, Usage(5, 2), model="gpt-4o-mini", finish_reason="stop")


_opened: list[LM] = []


@pytest.fixture(autouse=True)
def _close_lms() -> Iterator[None]:
    """Close the connections of every LM a test made."""
    yield
    while _opened:
        _opened.pop().close()


def make_lm(server: OpenAICompatServer, **kwargs: Any) -> LM:
    lm = LM("openai/test-model", base_url=server.base_url, api_key="sk-test", **kwargs)
    _opened.append(lm)
    return lm


# -- keys --------------------------------------------------------------------------------


def test_key_is_sha256_of_canonical_json() -> None:
    # The recipe, spelled out: it must not change between processes, runs or versions
    # unless it is changed on purpose (and then the version inside the key is bumped).
    canonical = (
        '{"identity":{"base_url":"https://api.openai.com/v1","model":"gpt-4o-mini",'
        '"params":{"temperature":0.0},"provider":"openai"},'
        '"messages":[{"content":"Answer briefly.","role":"system"},'
        '{"content":"Capital of France?","role":"user"}],'
        '"params":{},"v":"sigforge-cache-v1"}'
    )
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert cache_key(IDENTITY, REQUEST) == expected


def test_key_keeps_non_ascii_text_as_is() -> None:
    request = LMRequest(({"role": "user", "content": "Hauptstadt von Österreich?"},))
    canonical = (
        '{"identity":{},"messages":[{"content":"Hauptstadt von Österreich?","role":"user"}],'
        '"params":{},"v":"sigforge-cache-v1"}'
    )
    assert cache_key({}, request) == hashlib.sha256(canonical.encode()).hexdigest()


def test_key_ignores_dict_order() -> None:
    reordered = dict(reversed(list(IDENTITY.items())))
    assert cache_key(reordered, REQUEST) == cache_key(IDENTITY, REQUEST)
    params_a = LMRequest(MESSAGES, {"a": 1, "b": {"x": 1, "y": 2}})
    params_b = LMRequest(MESSAGES, {"b": {"y": 2, "x": 1}, "a": 1})
    assert cache_key(IDENTITY, params_a) == cache_key(IDENTITY, params_b)


@pytest.mark.parametrize(
    ("identity", "request_"),
    [
        ({**IDENTITY, "params": {"temperature": 0.7}}, REQUEST),
        ({**IDENTITY, "model": "gpt-4o"}, REQUEST),
        ({**IDENTITY, "base_url": "http://127.0.0.1:8000/v1"}, REQUEST),
        (IDENTITY, LMRequest((*MESSAGES[:1], {"role": "user", "content": "Capital of Peru?"}))),
        (IDENTITY, LMRequest(MESSAGES[1:])),
        (IDENTITY, LMRequest(MESSAGES, {"response_format": {"type": "json_object"}})),
    ],
)
def test_key_changes_with_anything_that_changes_the_answer(
    identity: dict[str, Any], request_: LMRequest
) -> None:
    assert cache_key(identity, request_) != cache_key(IDENTITY, REQUEST)


def test_lm_keys_follow_settings_but_never_the_api_key() -> None:
    base = LM("openai/gpt-4o-mini", api_key="sk-one", temperature=0.0)
    same = LM("openai/gpt-4o-mini", api_key="sk-two", temperature=0.0, timeout=5, max_retries=0)
    assert base.cache_identity() == same.cache_identity()
    assert cache_key(base.cache_identity(), REQUEST) == cache_key(same.cache_identity(), REQUEST)
    assert "sk-one" not in json.dumps(base.cache_identity())

    for other in (
        base.copy(temperature=0.5),
        base.copy(model="openai/gpt-4o"),
        base.copy(base_url="http://127.0.0.1:1/v1"),
        base.copy(top_p=0.5),
    ):
        assert cache_key(other.cache_identity(), REQUEST) != cache_key(
            base.cache_identity(), REQUEST
        )


def test_key_rejects_non_json_params() -> None:
    with pytest.raises(TypeError, match="plain JSON"):
        cache_key(IDENTITY, LMRequest(MESSAGES, {"bad": object()}))
    with pytest.raises(TypeError, match="plain JSON"):
        cache_key(IDENTITY, LMRequest(MESSAGES, {"temperature": float("nan")}))


# -- the Cache object ------------------------------------------------------------------------


def test_memory_lru_is_bounded() -> None:
    cache = Cache(disk=False, memory_entries=2)
    cache.put("a", completion("A"))
    cache.put("b", completion("B"))
    assert cache.get("a") is not None  # "a" is now the most recently used
    cache.put("c", completion("C"))  # evicts "b"
    assert cache.get("b") is None
    assert [cache.get(k).text for k in ("a", "c")] == ["A", "C"]  # type: ignore[union-attr]
    assert cache.stats().entries == 2
    assert (cache.stats().hits, cache.stats().misses) == (3, 1)


def test_values_come_back_frozen_and_marked_cached(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.sqlite") as cache:
        cache.put("k", completion())
        hit = cache.get("k")
    assert hit == dataclasses.replace(completion(), cached=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        hit.text = "changed"  # type: ignore[misc]


def test_disk_level_survives_a_new_cache_object(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "c.sqlite"
    with Cache(path, memory_entries=0) as writer:
        writer.put("k", completion("from disk"))
    assert path.exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    with Cache(path) as reader:
        hit = reader.get("k")
        assert hit is not None and hit.text == "from disk" and hit.usage == Usage(5, 2)
        assert reader.get("missing") is None
        assert reader.stats().entries == 1
        reader.clear()
        assert reader.get("k") is None
        assert reader.stats().entries == 0


def test_a_corrupt_file_degrades_to_memory_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = Cache(path)
    with pytest.warns(RuntimeWarning, match="caching in memory only"):
        cache.put("k", completion())
    assert cache.get("k") is not None  # still works from memory


def test_threads_share_one_cache(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite", memory_entries=10)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(30):
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
    assert cache.stats().entries == 180
    cache.close()


# -- through the LM --------------------------------------------------------------------------


def test_second_identical_call_makes_no_request() -> None:
    with OpenAICompatServer(["Paris.", "Lima."]) as server:
        lm = make_lm(server, temperature=0.0)
        first = lm.complete(REQUEST)
        second = lm.complete(REQUEST)
        assert len(server.requests) == 1
        other = lm.complete(LMRequest(MESSAGES[1:]))
        assert len(server.requests) == 2

    assert (first.text, first.cached) == ("Paris.", False)
    assert (second.text, second.cached) == ("Paris.", True)
    assert other.text == "Lima."
    assert lm.usage == first.usage + other.usage  # the cache hit cost nothing
    assert [entry.cached for entry in last(3)] == [False, True, False]


def test_default_cache_is_created_lazily(cache_dir: Path) -> None:
    cache = current_cache()
    assert cache is not None and cache.path == cache_dir / "cache.sqlite"
    assert list(cache_dir.iterdir()) == []  # nothing written before the first call
    with OpenAICompatServer(["Paris."]) as server:
        make_lm(server).complete(REQUEST)
    assert (cache_dir / "cache.sqlite").exists()


def test_async_calls_use_the_cache() -> None:
    import asyncio

    with OpenAICompatServer(["Paris."]) as server:
        lm = make_lm(server)
        lm.complete(REQUEST)

        async def main() -> Completion:
            async with lm:
                return await lm.acomplete(REQUEST)

        hit = asyncio.run(main())
        assert len(server.requests) == 1
    assert hit.cached


def test_caching_off_makes_every_call() -> None:
    with OpenAICompatServer(default="again") as server:
        no_cache_lm = make_lm(server, cache=False)
        no_cache_lm.complete(REQUEST)
        no_cache_lm.complete(REQUEST)
        assert len(server.requests) == 2

        cached_lm = make_lm(server)
        with context(cache=False):
            cached_lm.complete(REQUEST)
            cached_lm.complete(REQUEST)
        assert len(server.requests) == 4

        configure(cache=False)
        cached_lm.complete(REQUEST)
        cached_lm.complete(REQUEST)
        assert len(server.requests) == 6


def test_lm_with_its_own_cache(tmp_path: Path, cache_dir: Path) -> None:
    own = Cache(tmp_path / "own.sqlite")
    with OpenAICompatServer(["Paris."]) as server:
        lm = make_lm(server, cache=own)
        lm.complete(REQUEST)
        assert lm.complete(REQUEST).cached
        assert len(server.requests) == 1
    assert own.stats().entries == 1
    assert list(cache_dir.iterdir()) == []  # the default cache was never touched


def test_configured_cache_is_used(tmp_path: Path) -> None:
    shared = Cache(tmp_path / "shared.sqlite")
    configure(cache=shared)
    with OpenAICompatServer(["Paris."]) as server:
        make_lm(server).complete(REQUEST)
        make_lm(server, temperature=None).complete(REQUEST)  # an equal LM: same key
        assert len(server.requests) == 1
    assert shared.stats().hits == 1


CHILD = """
import json, sys
from sigforge.runtime.lm import LM
from sigforge.runtime.messages import LMRequest
lm = LM("openai/test-model", base_url=sys.argv[1], api_key="sk-test", max_retries=0)
done = lm.complete(LMRequest(({"role": "user", "content": "Capital of France?"},)))
print(json.dumps({"text": done.text, "cached": done.cached}))
"""


def run_child(base_url: str, cache_dir: Path, hash_seed: str) -> dict[str, Any]:
    env = {**os.environ, "SIGFORGE_CACHE_DIR": str(cache_dir), "PYTHONHASHSEED": hash_seed}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, base_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def test_a_new_process_reuses_the_disk_cache(tmp_path: Path) -> None:
    shared = tmp_path / "shared-cache"
    with OpenAICompatServer(["Paris."]) as server:
        first = run_child(server.base_url, shared, hash_seed="1")
        assert len(server.requests) == 1
        second = run_child(server.base_url, shared, hash_seed="2")
        assert len(server.requests) == 1  # no new request: the second process hit the cache
    assert first == {"text": "Paris.", "cached": False}
    assert second == {"text": "Paris.", "cached": True}


class DictCache(CompletionCache):
    """A user-written cache: anything implementing CompletionCache can be passed as cache=."""

    def __init__(self) -> None:
        self.data: dict[str, Completion] = {}
        self.lookups = 0

    def get(self, key: str) -> Completion | None:
        self.lookups += 1
        return self.data.get(key)

    def put(self, key: str, completion: Completion) -> None:
        self.data[key] = dataclasses.replace(completion, cached=True)

    def clear(self, *, expired_only: bool = False) -> int:
        removed = 0 if expired_only else len(self.data)
        if not expired_only:
            self.data.clear()
        return removed

    def stats(self) -> CacheStats:
        return CacheStats(entries=len(self.data), hits=0, misses=0)

    def close(self) -> None:
        pass


def test_any_completion_cache_serves_lms_and_settings() -> None:
    own, shared = DictCache(), DictCache()
    with OpenAICompatServer(["Paris.", "Lima.", "Quito."]) as server:
        lm = make_lm(server, cache=own)
        lm.complete(REQUEST)
        assert lm.complete(REQUEST).cached
        configure(cache=shared)
        other = make_lm(server, temperature=0.5)
        other.complete(REQUEST)
        assert other.complete(REQUEST).cached  # from the configured cache
        with context(cache=own):
            assert not other.complete(REQUEST).cached  # own holds only the other LM's key
        assert len(server.requests) == 3
    assert (len(own.data), own.lookups, len(shared.data)) == (2, 3, 1)
    assert own.stats().entries == 2 and own.clear() == 2


def test_settings_refuse_what_is_not_a_cache() -> None:
    with pytest.raises(TypeError, match=r"cache must be a CompletionCache \(Cache, RedisCache\)"):
        configure(cache="redis://localhost")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not dict"), context(cache={}):  # type: ignore[arg-type]
        pass
