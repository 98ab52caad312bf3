"""What the completion cache costs: LM calls answered from it, and raw get/put.

Cases, each timed as `--ops` operations per round; reported is the median per-operation
time over `--rounds` rounds (the rounds of all cases interleave, so a busy moment of the
machine spreads over them):

* `lm hit, memory`: `ScriptedLM.complete` of a cached request with the default `Cache`
  (key hashing + memory hit + usage + history): the cache-hit path of every LM call;
* `lm hit, file`: the same with `memory_entries=0`, so every hit reads SQLite;
* `lm call, cache off`: the same call with caching off (the in-process LM answers at once),
  for comparison;
* `get hit, memory` / `get hit, file` / `get miss, file`: `Cache.get` alone;
* `put, file`: `Cache.put` of new 1 KB entries (one SQLite transaction each);
* `put, file, evicting`: the same at `max_entries=2000`, where every ~200th put evicts a
  batch of 200 least recently used entries;
* with `--redis` (needs `redis-server` on PATH; one is started on a free local port):
  `RedisCache` get hit / get miss / put, and `lm hit, redis`.

    python bench/cache_bench.py [--rounds 15] [--ops 2000] [--redis]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path

from _stats import summary

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sigforge.runtime import Cache, CompletionCache  # noqa: E402
from sigforge.runtime.cache import CACHE_DIR_ENV  # noqa: E402
from sigforge.runtime.history import set_history_limit  # noqa: E402
from sigforge.runtime.messages import Completion, LMRequest, Usage  # noqa: E402
from sigforge.testing import ScriptedLM  # noqa: E402

REQUEST = LMRequest(
    (
        {"role": "system", "content": "Answer the question using only the given context. " * 8},
        {"role": "user", "content": "[[ ## question ## ]]\nWho wrote Dune?\n\n" * 4},
    )
)
ANSWER = "[[ ## answer ## ]]\nFrank Herbert\n\n[[ ## completed ## ]]" + " " * 900


def completion(i: int) -> Completion:
    return Completion(f"{i}:{ANSWER}", Usage(120, 30), model="bench", finish_reason="stop")


def lm_hit(cache: CompletionCache | bool) -> Callable[[], None]:
    lm = ScriptedLM(lambda _request: ANSWER, cache=cache)  # type: ignore[arg-type]
    lm.complete(REQUEST)  # stored; every timed call is a hit (or a call, when off)

    def call() -> None:
        lm.complete(REQUEST)

    return call


def getter(cache: CompletionCache, key: str) -> Callable[[], None]:
    def get() -> None:
        cache.get(key)

    return get


def putter(cache: CompletionCache) -> Callable[[], None]:
    numbers = count()

    def put() -> None:
        i = next(numbers)
        cache.put(f"put-{i}", completion(i))

    return put


def misser(cache: CompletionCache) -> Callable[[], None]:
    numbers = count()

    def get() -> None:
        cache.get(f"missing-{next(numbers)}")

    return get


@contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    if shutil.which("redis-server") is None:
        raise SystemExit("--redis needs redis-server on PATH (apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        import redis

        client = redis.Redis(port=port)
        for _ in range(500):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--redis", action="store_true", help="also time RedisCache")
    args = parser.parse_args()
    set_history_limit(200)

    with tempfile.TemporaryDirectory() as tmp, _maybe_redis(args.redis, Path(tmp)) as url:
        folder = Path(tmp)
        os.environ[CACHE_DIR_ENV] = tmp  # the default cache is never used; keep it here anyway
        memory = Cache(folder / "memory.sqlite")
        file_only = Cache(folder / "file.sqlite", memory_entries=0)
        puts = Cache(folder / "puts.sqlite", memory_entries=0, max_bytes=None)
        evicting = Cache(folder / "evicting.sqlite", memory_entries=0, max_entries=2000)
        for cache in (memory, file_only):
            cache.put("hit", completion(0))
        cases: dict[str, Callable[[], None]] = {
            "lm hit, memory": lm_hit(memory),
            "lm hit, file": lm_hit(file_only),
            "lm call, cache off": lm_hit(False),
            "get hit, memory": getter(memory, "hit"),
            "get hit, file": getter(file_only, "hit"),
            "get miss, file": misser(file_only),
            "put, file": putter(puts),
            "put, file, evicting": putter(evicting),
        }
        if url is not None:
            from sigforge.runtime import RedisCache

            remote = RedisCache(url)
            remote.put("hit", completion(0))
            cases |= {
                "lm hit, redis": lm_hit(remote),
                "redis get hit": getter(remote, "hit"),
                "redis get miss": misser(remote),
                "redis put": putter(remote),
            }
        for call in cases.values():  # warm-up
            for _ in range(100):
                call()
        samples: dict[str, list[float]] = {name: [] for name in cases}
        gc.collect()
        for _ in range(args.rounds):
            for name, call in cases.items():
                start = time.perf_counter()
                for _ in range(args.ops):
                    call()
                samples[name].append((time.perf_counter() - start) / args.ops * 1e6)
        evictions = evicting.stats().evictions
        assert memory.stats().hits > args.rounds * args.ops, "the LM calls did not hit the cache"
        for cache in (memory, file_only, puts, evicting):
            cache.close()
        if url is not None:
            remote.close()

    stats = {name: summary(s) for name, s in samples.items()}
    for name, st in stats.items():
        print(
            f"{name:>22}: median {st['median']:7.2f} us/op "
            f"(min {st['min']:.2f}, max {st['max']:.2f})"
        )
    print(f"{'':>22}  ({evictions} entries evicted in batches during `put, file, evicting`)")
    print(json.dumps({"stats_us": stats, "rounds": args.rounds, "ops": args.ops}))


@contextmanager
def _maybe_redis(wanted: bool, folder: Path) -> Iterator[str | None]:
    if not wanted:
        yield None
        return
    with redis_server(folder) as url:
        yield url


if __name__ == "__main__":
    main()
