"""Predictions per second against an instant loopback server, next to a raw httpx loop.

The server (sigforge.testing.OpenAICompatServer, answering every request at once with
the same chat reply) runs in its own process, so its CPU does not count as the
client's; its CPU per request is measured there and reported separately. Caches are
off. Workloads, each run for sigforge and for the raw-httpx ceiling in alternation
(A B A B ...) after a warm-up:

* sequential: one blocking call after another (raw: ``httpx.Client.post`` + JSON decode);
* threads-16: 16 threads (sigforge: ``predictor.batch(concurrency=16)``);
* asyncio-16 / asyncio-64: that many requests in flight on one event loop (sigforge:
  ``await predictor.abatch(concurrency=N)``; raw: ``httpx.AsyncClient`` + semaphore).

Reported per workload: median, min and max requests/s over the rounds, client CPU per
request, and the ratio sigforge/raw (the headline: the machine is shared and noisy).
Target (runtime issue): sequential >= 0.8 of raw httpx in the same run.

    python bench/throughput.py [--rounds 5] [--requests 600] [--out bench/results/throughput-<date>.json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generated.qa import AnswerQuestionInputs, QuickAnswer  # noqa: E402
from sigforge.runtime import LM, configure  # noqa: E402
from sigforge.runtime.history import set_history_limit  # noqa: E402

REPLY = "[[ ## answer ## ]]\nFrank Herbert\n\n[[ ## confidence ## ]]\n0.9\n\n[[ ## completed ## ]]"
INPUTS = AnswerQuestionInputs(
    context=["Dune is a 1965 novel by Frank Herbert."], question="Who wrote Dune?"
)


def serve(conn: Connection) -> None:
    """Run the loopback server until told to stop; report its CPU per request."""
    from sigforge.testing import OpenAICompatServer, Reply

    with OpenAICompatServer(default=Reply(content=REPLY), max_lifetime=3600) as server:
        conn.send(server.base_url)
        conn.recv()  # "stop"
        cpu = getattr(server, "cpu_seconds", None)
        conn.send({"requests": len(server.requests), "cpu_seconds": cpu})


# -- the clients -------------------------------------------------------------------------


def raw_body() -> dict[str, Any]:
    messages = QuickAnswer().format(INPUTS, adapter="chat")
    return {"model": "bench", "messages": messages}


def raw_sequential(base_url: str, n: int) -> None:
    import httpx

    body = raw_body()
    with httpx.Client(timeout=30) as client:
        for _ in range(n):
            reply = client.post(f"{base_url}/chat/completions", json=body).json()
            assert reply["choices"][0]["message"]["content"]


def raw_threads(base_url: str, n: int, workers: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    body = raw_body()
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    with httpx.Client(timeout=30, limits=limits) as client:

        def one(_: int) -> None:
            reply = client.post(f"{base_url}/chat/completions", json=body).json()
            assert reply["choices"][0]["message"]["content"]

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, range(n)))


def raw_asyncio(base_url: str, n: int, in_flight: int) -> None:
    import httpx

    body = raw_body()

    async def main() -> None:
        limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            gate = asyncio.Semaphore(in_flight)

            async def one() -> None:
                async with gate:
                    response = await client.post(f"{base_url}/chat/completions", json=body)
                    assert response.json()["choices"][0]["message"]["content"]

            await asyncio.gather(*(one() for _ in range(n)))

    asyncio.run(main())


def sigforge_lm(base_url: str) -> LM:
    return LM("openai/bench", base_url=base_url, api_key="", cache=False, max_retries=0)


def check(results: list[Any]) -> None:
    errors = [r for r in results if isinstance(r, Exception)]
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(results)} predictions failed: {errors[0]!r}")


def sigforge_sequential(base_url: str, n: int) -> None:
    with sigforge_lm(base_url) as lm:
        predictor = QuickAnswer(lm=lm)
        for _ in range(n):
            assert predictor.run(INPUTS).answer


def sigforge_threads(base_url: str, n: int, workers: int) -> None:
    with sigforge_lm(base_url) as lm:
        results = QuickAnswer(lm=lm).batch([INPUTS] * n, concurrency=workers, progress=False)
        check(results)


def sigforge_asyncio(base_url: str, n: int, in_flight: int) -> None:
    async def main() -> None:
        async with sigforge_lm(base_url) as lm:
            results = await QuickAnswer(lm=lm).abatch(
                [INPUTS] * n, concurrency=in_flight, progress=False
            )
            check(results)

    asyncio.run(main())


WORKLOADS: dict[str, tuple[Callable[[str, int], None], Callable[[str, int], None]]] = {
    "sequential": (sigforge_sequential, raw_sequential),
    "threads-16": (
        lambda url, n: sigforge_threads(url, n, 16),
        lambda url, n: raw_threads(url, n, 16),
    ),
    "asyncio-16": (
        lambda url, n: sigforge_asyncio(url, n, 16),
        lambda url, n: raw_asyncio(url, n, 16),
    ),
    "asyncio-64": (
        lambda url, n: sigforge_asyncio(url, n, 64),
        lambda url, n: raw_asyncio(url, n, 64),
    ),
}


def timed(run: Callable[[str, int], None], base_url: str, n: int) -> tuple[float, float]:
    """(requests per second, client CPU seconds per request) of one run."""
    wall, cpu = time.perf_counter(), time.process_time()
    run(base_url, n)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, cpu / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    configure(cache=False)
    set_history_limit(200)
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(child,), daemon=True)
    server.start()
    base_url = parent.recv()
    results: dict[str, Any] = {}
    try:
        for name in args.workloads.split(","):
            ours, raw = WORKLOADS[name]
            timed(ours, base_url, max(50, args.requests // 5))  # warm-up
            timed(raw, base_url, max(50, args.requests // 5))
            samples: dict[str, list[tuple[float, float]]] = {"sigforge": [], "raw_httpx": []}
            for _ in range(args.rounds):
                samples["sigforge"].append(timed(ours, base_url, args.requests))
                samples["raw_httpx"].append(timed(raw, base_url, args.requests))
            row: dict[str, Any] = {}
            for client, runs in samples.items():
                rates = [rate for rate, _ in runs]
                row[client] = {
                    "median_rps": statistics.median(rates),
                    "min_rps": min(rates),
                    "max_rps": max(rates),
                    "cpu_us_per_request": statistics.median(cpu for _, cpu in runs) * 1e6,
                }
            row["ratio"] = row["sigforge"]["median_rps"] / row["raw_httpx"]["median_rps"]
            results[name] = row
            print(
                f"{name:12s} sigforge {row['sigforge']['median_rps']:7.0f}/s "
                f"(cpu {row['sigforge']['cpu_us_per_request']:5.0f} us/req)   raw httpx "
                f"{row['raw_httpx']['median_rps']:7.0f}/s "
                f"(cpu {row['raw_httpx']['cpu_us_per_request']:5.0f} us/req)   "
                f"ratio {row['ratio']:.2f}",
                flush=True,
            )
    finally:
        parent.send("stop")
        stats = parent.recv()
        server.join(timeout=10)
    if stats.get("cpu_seconds") is not None and stats["requests"]:
        per_request = stats["cpu_seconds"] / stats["requests"] * 1e6
        results["server_cpu_us_per_request"] = per_request
        print(f"server CPU per request: {per_request:.0f} us ({stats['requests']} requests)")
    out = args.out or ROOT / "bench" / "results" / f"throughput-{datetime.date.today()}.json"
    out.write_text(json.dumps({"rounds": args.rounds, "requests": args.requests, **results}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
