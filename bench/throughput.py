"""Predictions per second against an instant loopback server, next to a raw httpx loop.

The server (sigforge.testing.OpenAICompatServer, answering every request at once with
the same chat reply) runs in its own process, so its CPU does not count as the
client's; its CPU per request is measured there and reported separately. Caches are
off. Workloads, each run for sigforge and for the raw-httpx ceiling in alternation
(A B A B ...) after a warm-up:

* sequential: one blocking call after another (raw: ``httpx.Client.post`` + JSON decode);
* threads-16: 16 threads (sigforge: ``predictor.batch(concurrency=16)``);
* asyncio-16 / asyncio-64: that many requests in flight on one event loop (sigforge:
  ``await predictor.abatch(concurrency=N)``; raw: ``httpx.AsyncClient`` + semaphore with
  httpx's own transport, and raw aiohttp, the ceiling of sigforge's async transport);
* stream-first-partial: a streamed prediction whose reply arrives in 8 pieces 20 ms
  apart; reported is the median latency until the answer's first text can be shown and
  until the whole answer is there (sigforge: the first typed partial with ``answer``
  set, then ``stream.final()``; raw: ``httpx`` + httpx-sse until the accumulated text
  holds the answer's first character, then ``[DONE]``). The difference is sigforge's cost of
  typed partials; the rest is how fast the pieces arrive.

Reported per workload: median, min and max requests/s over the rounds, client CPU per
request, and the ratio of sigforge to each baseline (the headline: the machine is shared
and noisy). Targets (runtime issue): sequential >= 0.8 of raw httpx in the same run;
asyncio with 16 in flight >= 810/s (BAML's generated async client here) and >= 2x DSPy's
best concurrent mode (450/s).

    python bench/throughput.py [--rounds 5] [--requests 600] [--out bench/results/throughput-<date>.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _drivers import SIMPLE, chat_reply  # noqa: E402
from _server import ServerProcess  # noqa: E402
from _stats import new_results_path  # noqa: E402

from generated.qa import AnswerQuestionInputs, QuickAnswer  # noqa: E402
from sigforge.runtime import LM, configure  # noqa: E402
from sigforge.runtime.history import set_history_limit  # noqa: E402

REPLY = chat_reply(SIMPLE)
#: the model every client asks for (the name bench/run.py gives DSPy and BAML too)
MODEL = "openai/gpt-4o-mini"
INPUTS = AnswerQuestionInputs(
    context=["Dune is a 1965 novel by Frank Herbert."], question="Who wrote Dune?"
)


def stream_or_chat() -> tuple[Any, Any]:
    """The server's responder: the streaming workload's model gets its reply in pieces
    20 ms apart, every other request the whole reply at once."""
    from sigforge.testing import RecordedRequest, Reply

    def answer(request: RecordedRequest) -> Reply:
        if request.model == "bench-stream":  # the streaming workload: pieces 20 ms apart
            size = -(-len(REPLY) // STREAM_PIECES)
            return Reply(content=REPLY, chunk_size=size, chunk_delay=STREAM_GAP)
        return Reply(content=REPLY)

    return answer, dict


# -- the clients -------------------------------------------------------------------------


def raw_body() -> dict[str, Any]:
    messages = QuickAnswer().format(INPUTS, adapter="chat")
    return {"model": MODEL.split("/", 1)[1], "messages": messages}


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


def raw_aiohttp(base_url: str, n: int, in_flight: int) -> None:
    import aiohttp

    body = raw_body()

    async def main() -> None:
        connector = aiohttp.TCPConnector(limit=in_flight)
        async with aiohttp.ClientSession(connector=connector) as session:
            gate = asyncio.Semaphore(in_flight)

            async def one() -> None:
                async with gate, session.post(f"{base_url}/chat/completions", json=body) as r:
                    assert (await r.json())["choices"][0]["message"]["content"]

            await asyncio.gather(*(one() for _ in range(n)))

    asyncio.run(main())


def sigforge_lm(base_url: str) -> LM:
    return LM(MODEL, base_url=base_url, api_key="", cache=False, max_retries=0)


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


Run = Callable[[str, int], None]
#: workload -> (sigforge, {baseline name: baseline})
WORKLOADS: dict[str, tuple[Run, dict[str, Run]]] = {
    "sequential": (sigforge_sequential, {"raw_httpx": raw_sequential}),
    "threads-16": (
        lambda url, n: sigforge_threads(url, n, 16),
        {"raw_httpx": lambda url, n: raw_threads(url, n, 16)},
    ),
    "asyncio-16": (
        lambda url, n: sigforge_asyncio(url, n, 16),
        {
            "raw_httpx": lambda url, n: raw_asyncio(url, n, 16),
            "raw_aiohttp": lambda url, n: raw_aiohttp(url, n, 16),
        },
    ),
    "asyncio-64": (
        lambda url, n: sigforge_asyncio(url, n, 64),
        {
            "raw_httpx": lambda url, n: raw_asyncio(url, n, 64),
            "raw_aiohttp": lambda url, n: raw_aiohttp(url, n, 64),
        },
    ),
}

STREAM_PIECES = 8
STREAM_GAP = 0.02
#: where the answer's first character appears in REPLY (after its section marker)
ANSWER_START = "]]\nF"


def stream_latency_sigforge(predictor: QuickAnswer) -> tuple[float, float]:
    """(seconds until the answer's first text, seconds until the final outputs)."""
    started = time.perf_counter()
    stream = predictor.stream(context=INPUTS.context, question=INPUTS.question)
    first = None
    for partial in stream:
        if first is None and partial.answer:
            first = time.perf_counter() - started
    assert stream.final().answer
    return first or 0.0, time.perf_counter() - started


def stream_latency_raw(client: Any, base_url: str) -> tuple[float, float]:
    from httpx_sse import connect_sse

    body = {**raw_body(), "model": "bench-stream", "stream": True}
    started = time.perf_counter()
    first = None
    text = ""
    with connect_sse(client, "POST", f"{base_url}/chat/completions", json=body) as events:
        for event in events.iter_sse():
            if event.data == "[DONE]":
                break
            choices = json.loads(event.data)["choices"]
            if choices:
                text += choices[0]["delta"].get("content") or ""
            if first is None and ANSWER_START in text:
                first = time.perf_counter() - started
    return first or 0.0, time.perf_counter() - started


def stream_workload(base_url: str, rounds: int) -> dict[str, Any]:
    import httpx

    samples: dict[str, list[tuple[float, float]]] = {"sigforge": [], "raw_httpx_sse": []}
    # Connections are opened (and kept alive) before timing, as a service would.
    with (
        LM("openai/bench-stream", base_url=base_url, api_key="", cache=False) as lm,
        httpx.Client(timeout=30) as client,
    ):
        predictor = QuickAnswer(lm=lm)
        stream_latency_sigforge(predictor), stream_latency_raw(client, base_url)  # warm-up
        for _ in range(rounds * 3):
            samples["sigforge"].append(stream_latency_sigforge(predictor))
            samples["raw_httpx_sse"].append(stream_latency_raw(client, base_url))
    row: dict[str, Any] = {}
    for name, runs in samples.items():
        row[name] = {
            "first_ms": statistics.median(first for first, _ in runs) * 1000,
            "final_ms": statistics.median(final for _, final in runs) * 1000,
        }
    return row


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
    parser.add_argument("--workloads", default=",".join([*WORKLOADS, "stream-first-partial"]))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    configure(cache=False)
    set_history_limit(200)
    server = ServerProcess(stream_or_chat, lifetime=3600)
    base_url = server.base_url
    results: dict[str, Any] = {}
    try:
        for name in args.workloads.split(","):
            if name == "stream-first-partial":
                row = stream_workload(base_url, args.rounds)
                results[name] = row
                print(
                    f"{name:12s} sigforge first answer text {row['sigforge']['first_ms']:6.1f} ms, "
                    f"final {row['sigforge']['final_ms']:6.1f} ms   raw httpx-sse first answer "
                    f"text {row['raw_httpx_sse']['first_ms']:6.1f} ms, end "
                    f"{row['raw_httpx_sse']['final_ms']:6.1f} ms",
                    flush=True,
                )
                continue
            ours, baselines = WORKLOADS[name]
            warm = max(50, args.requests // 5)
            timed(ours, base_url, warm)
            for baseline in baselines.values():
                timed(baseline, base_url, warm)
            samples: dict[str, list[tuple[float, float]]] = {"sigforge": []}
            samples.update((label, []) for label in baselines)
            for _ in range(args.rounds):  # alternate: A B (C) A B (C) ...
                samples["sigforge"].append(timed(ours, base_url, args.requests))
                for label, baseline in baselines.items():
                    samples[label].append(timed(baseline, base_url, args.requests))
            row = {}
            for client, runs in samples.items():
                rates = [rate for rate, _ in runs]
                row[client] = {
                    "median_rps": statistics.median(rates),
                    "min_rps": min(rates),
                    "max_rps": max(rates),
                    "cpu_us_per_request": statistics.median(cpu for _, cpu in runs) * 1e6,
                }
            ours_rps = row["sigforge"]["median_rps"]
            row["ratios"] = {label: ours_rps / row[label]["median_rps"] for label in baselines}
            results[name] = row
            line = (
                f"{name:12s} sigforge {ours_rps:7.0f}/s "
                f"(cpu {row['sigforge']['cpu_us_per_request']:5.0f} us/req)"
            )
            for label in baselines:
                line += (
                    f"   {label} {row[label]['median_rps']:7.0f}/s "
                    f"(cpu {row[label]['cpu_us_per_request']:5.0f} us/req, "
                    f"ratio {row['ratios'][label]:.2f})"
                )
            print(line, flush=True)
    finally:
        stats = server.stop() or {}
    if stats.get("cpu_seconds") is not None and stats["requests"]:
        per_request = stats["cpu_seconds"] / stats["requests"] * 1e6
        results["server_cpu_us_per_request"] = per_request
        print(f"server CPU per request: {per_request:.0f} us ({stats['requests']} requests)")
    out = args.out or new_results_path("throughput-")
    out.write_text(json.dumps({"rounds": args.rounds, "requests": args.requests, **results}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
