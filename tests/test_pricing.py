"""Prices, name matching, user prices, and usage tracking across threads and tasks."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from sigforge.runtime.callbacks import Callback, LMCall, lm_requested, lm_responded
from sigforge.runtime.messages import Completion, LMRequest, Usage
from sigforge.runtime.pricing import (
    _BUILTIN,
    PRICES_AS_OF,
    ModelUsage,
    Price,
    UsageTracker,
    clear_registered_prices,
    price_for,
    register_price,
    track_usage,
)
from sigforge.runtime.settings import configure, current_callbacks

REQUEST = LMRequest(({"role": "user", "content": "hi"},))
DEFAULT_USAGE = Usage(100, 20)


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    configure(callbacks=[])
    clear_registered_prices()
    yield
    configure(callbacks=[])
    clear_registered_prices()


def lm_call(
    model: str,
    provider: str = "openai",
    usage: Usage = DEFAULT_USAGE,
    *,
    response_model: str = "",
    cached: bool = False,
    error: BaseException | None = None,
) -> None:
    """One LM call as the LMs report it through the dispatch functions."""
    call = lm_requested(model, provider, REQUEST)
    if error is not None:
        lm_responded(call, None, error)
    else:
        lm_responded(call, Completion("ok", usage, response_model, "stop", cached=cached))


# ------------------------------------------------------------------------------------------
# prices and matching
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("openai", "gpt-4o-mini", "gpt-4o-mini"),
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
        ("openai", "gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # a dated version priced apart
        ("openai", "gpt-4-0613", "gpt-4"),
        ("openai", "gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
        ("openai", "gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("openai", "gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("openai", "o1-2024-12-17", "o1"),
        ("openai", "o3-mini-2025-01-31", "o3-mini"),
        ("openai", "chatgpt-4o-latest", "chatgpt-4o-latest"),
        ("openai", "openai/gpt-4o-mini", "gpt-4o-mini"),
        ("OpenAI", "GPT-4o-Mini", "gpt-4o-mini"),
        ("anthropic", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("anthropic", "claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
        ("anthropic", "claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),
        ("anthropic", "anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
        ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("anthropic", "claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("anthropic", "claude-3-haiku-20240307", "claude-3-haiku"),
        ("anthropic", "anthropic/claude-haiku-4-5", "claude-haiku-4-5"),
        ("gemini", "gemini-2.5-flash", "gemini-2.5-flash"),
        ("gemini", "gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
        ("gemini", "gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),
        ("gemini", "gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("gemini", "models/gemini-1.5-pro-002", "gemini-1.5-pro"),
        ("google", "gemini-2.0-flash-exp", "gemini-2.0-flash"),
        ("gemini", "google/gemini-2.5-pro", "gemini-2.5-pro"),
    ],
)
def test_names_and_dated_versions_match_the_listed_model(
    provider: str, model: str, expected: str
) -> None:
    table = _BUILTIN["gemini" if provider == "google" else provider.lower()]
    assert price_for(provider, model) == table[expected]


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o-audio-preview"),  # another model, another price
        ("openai", "gpt-4o-realtime-preview-2024-12-17"),
        ("openai", "gpt-3.5-turbo-16k"),
        ("openai", "o3-pro"),
        ("openai", "gpt-4o-mini-tts"),
        ("anthropic", "claude-opus-4-6"),  # not "claude-opus-4" with a suffix
        ("anthropic", "claude-2.1"),
        ("gemini", "gemini-1.5-flash-8b"),
        ("gemini", "gemini-exp-1206"),
        ("openai", "llama-3.1-8b-instruct"),
        ("vllm", "gpt-4o-mini"),  # an unknown provider has no built-in prices
        ("anthropic", "gpt-4o"),  # the right name at the wrong provider
    ],
)
def test_unknown_models_and_variants_get_no_price(provider: str, model: str) -> None:
    assert price_for(provider, model) is None


def test_the_built_in_table_is_dated_and_sane() -> None:
    assert PRICES_AS_OF == "2025-11"
    for provider, table in _BUILTIN.items():
        assert table
        for model, price in table.items():
            assert price_for(provider, model) is price
            assert 0 < price.input <= price.output < 100, (provider, model)


def test_cost_is_per_million_tokens() -> None:
    price = Price(0.15, 0.60)
    assert price.cost(Usage(1_000_000, 500_000)) == pytest.approx(0.45)
    assert price.cost(Usage(1234, 56)) == pytest.approx((1234 * 0.15 + 56 * 0.60) / 1e6)
    assert price.cost(Usage()) == 0.0
    with pytest.raises(ValueError, match="negative"):
        Price(-1.0, 2.0)


def test_registered_prices_override_and_extend_the_table() -> None:
    builtin = price_for("openai", "gpt-4o-mini")
    assert builtin == Price(0.15, 0.60)
    mine = register_price("openai", "gpt-4o-mini", input=0.1, output=0.2)
    assert price_for("openai", "gpt-4o-mini") is mine
    assert price_for("openai", "gpt-4o-mini-2024-07-18") is mine  # versions follow
    assert price_for("openai", "gpt-4o") == Price(2.50, 10.00)  # others untouched

    local = register_price("vLLM", "meta-llama/Llama-3.1-8B-Instruct", input=0.02, output=0.02)
    assert price_for("vllm", "meta-llama/llama-3.1-8b-instruct") is local
    assert price_for("vllm", "vllm/meta-llama/Llama-3.1-8B-Instruct") is local
    with pytest.raises(ValueError, match="negative"):
        register_price("openai", "x", input=-1, output=0)

    clear_registered_prices()
    assert price_for("openai", "gpt-4o-mini") == builtin
    assert price_for("vllm", "meta-llama/llama-3.1-8b-instruct") is None


# ------------------------------------------------------------------------------------------
# usage tracking
# ------------------------------------------------------------------------------------------


def test_track_usage_sums_tokens_and_cost_per_model() -> None:
    with track_usage() as usage:
        lm_call("gpt-4o-mini", usage=Usage(1000, 200))
        lm_call("gpt-4o-mini", usage=Usage(500, 100), response_model="gpt-4o-mini-2024-07-18")
        lm_call("gpt-4o-mini", usage=Usage(999, 999), cached=True)  # free
        lm_call("claude-3-5-haiku", "anthropic", usage=Usage(2000, 400))
        lm_call("claude-3-5-haiku", "anthropic", error=TimeoutError("slow"))
        lm_call("my-local-model", "vllm", usage=Usage(50, 5))  # no price
    lm_call("gpt-4o-mini", usage=Usage(10**6, 10**6))  # after the block: not tracked

    mini = usage.by_model["gpt-4o-mini"]
    assert mini == ModelUsage(
        calls=3,
        cached_calls=1,
        failed_calls=0,
        usage=Usage(1500, 300),
        cost=pytest.approx((1500 * 0.15 + 300 * 0.60) / 1e6),  # type: ignore[arg-type]
        unpriced_calls=0,
    )
    haiku = usage.by_model["claude-3-5-haiku"]
    assert (haiku.calls, haiku.failed_calls, haiku.usage) == (1, 1, Usage(2000, 400))
    assert haiku.cost == pytest.approx((2000 * 0.80 + 400 * 4.00) / 1e6)
    local = usage.by_model["my-local-model"]
    assert (local.calls, local.unpriced_calls, local.cost, local.usage) == (1, 1, 0.0, Usage(50, 5))

    assert usage.calls == 5
    assert usage.cached_calls == 1
    assert usage.usage == Usage(3550, 705)
    assert usage.cost == pytest.approx(mini.cost + haiku.cost)
    assert usage.unpriced_models == ["my-local-model"]
    assert "calls=5" in repr(usage) and "cost=$" in repr(usage)


def test_the_response_model_decides_the_price() -> None:
    with track_usage() as usage:
        # asked for the alias, answered by the dated version that has its own price
        lm_call("gpt-4o", usage=Usage(1_000_000, 0), response_model="gpt-4o-2024-05-13")
        # a response model without a price falls back to the requested one
        lm_call("gpt-4o", usage=Usage(1_000_000, 0), response_model="gpt-4o-custom-build")
    assert usage.cost == pytest.approx(5.00 + 2.50)
    assert usage.unpriced_models == []


def test_track_usage_keeps_other_callbacks_and_nests() -> None:
    seen: list[str] = []

    class Watcher(Callback):
        def on_lm_request(self, call: LMCall) -> None:
            seen.append(call.model)

    watcher = Watcher()
    configure(callbacks=[watcher])
    with track_usage() as outer:
        lm_call("gpt-4o-mini")
        with track_usage() as inner:
            assert current_callbacks() == (watcher, outer, inner)
            lm_call("gpt-4.1-nano")
        lm_call("gpt-4o-mini")
    assert current_callbacks() == (watcher,)
    assert seen == ["gpt-4o-mini", "gpt-4.1-nano", "gpt-4o-mini"]
    assert outer.calls == 3 and inner.calls == 1
    assert set(inner.by_model) == {"gpt-4.1-nano"}


def test_track_usage_includes_tasks_and_copied_threads_started_inside() -> None:
    async def in_tasks() -> None:
        async def one(index: int) -> None:
            await asyncio.sleep(0)
            lm_call("gpt-4o-mini", usage=Usage(10, index))

        await asyncio.gather(*(one(i) for i in range(20)))
        await asyncio.gather(
            *(asyncio.to_thread(lm_call, "gpt-4.1-mini", usage=Usage(7, 1)) for _ in range(5))
        )

    with track_usage() as usage:
        with ThreadPoolExecutor(4) as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, lm_call, "gpt-4o", usage=Usage(3, 3))
                for _ in range(40)
            ]
            for future in futures:
                future.result(10)
        asyncio.run(in_tasks())
        plain = threading.Thread(target=lm_call, args=("o3",))  # starts from the defaults
        plain.start()
        plain.join(10)

    assert usage.by_model["gpt-4o"].calls == 40
    assert usage.by_model["gpt-4o"].usage == Usage(120, 120)
    assert usage.by_model["gpt-4o-mini"].usage == Usage(200, sum(range(20)))
    assert usage.by_model["gpt-4.1-mini"].usage == Usage(35, 5)
    assert "o3" not in usage.by_model
    assert usage.calls == 65


def test_a_tracker_registered_for_the_process_sees_every_thread() -> None:
    tracker = UsageTracker()
    configure(callbacks=[tracker])
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait(10)
        for _ in range(100):
            lm_call("gpt-4o-mini", usage=Usage(2, 1))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert tracker.calls == 800
    assert tracker.usage == Usage(1600, 800)
    assert tracker.cost == pytest.approx(800 * (2 * 0.15 + 1 * 0.60) / 1e6)
