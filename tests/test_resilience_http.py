"""The LM under faults and load, over real HTTP: fault injection, circuit breaking, rate limits.

The headline test: a batch of 1000 predictions against a server that injects 20% faults
(500, 429, stalls past the read timeout, malformed bodies, truncated replies, dropped
connections) ends with every input accounted for -- a result or a typed error, in its
own slot, none lost or duplicated -- after a bounded number of attempts.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import pytest

from generated.qa import AnswerQuestionInputs, AnswerQuestionOutputs, QuickAnswer
from sigforge.runtime import (
    LM,
    BadResponseError,
    CircuitOpenError,
    LMConnectionError,
    LMRequest,
    LMTimeoutError,
    RateLimitError,
    ServerError,
    SigforgeError,
    Timeout,
    TruncatedOutputError,
)
from sigforge.runtime.resilience import (
    BreakerState,
    CircuitBreaker,
    RateLimiter,
    breaker_for,
    reset_breakers,
)
from sigforge.testing import FaultInjector, OpenAICompatServer, RecordedRequest, Reply


@pytest.fixture(autouse=True)
def _fresh_breakers() -> None:
    reset_breakers()


def question_of(request: RecordedRequest) -> str:
    return request.last_text.split("[[ ## question ## ]]\n", 1)[1].split("\n", 1)[0]


def answer(request: RecordedRequest) -> str:
    question = question_of(request)
    return f"[[ ## answer ## ]]\nanswer to {question}\n\n[[ ## confidence ## ]]\n0.5\n\n[[ ## completed ## ]]"


def ask(text: str = "hi") -> LMRequest:
    return LMRequest(({"role": "user", "content": text},))


MAX_RETRIES = 3


def test_a_thousand_predictions_under_twenty_percent_faults_lose_nothing() -> None:
    faults = FaultInjector(answer, seed=2026, rate=0.2, timeout_delay=2.0, retry_after=0.0)
    inputs = [AnswerQuestionInputs(context=["c"], question=f"q{i}") for i in range(1000)]
    with OpenAICompatServer(faults, max_lifetime=300) as server:
        lm = LM(
            "openai/faulty",
            base_url=server.base_url,
            api_key="sk-test",
            cache=False,
            max_retries=MAX_RETRIES,
            timeout=Timeout(connect=2.0, read=0.25),
            backoff_base=0.001,
            backoff_max=0.005,
            # 20% random faults must not open the breaker: that is what outages are for
            circuit_breaker=CircuitBreaker(failure_threshold=50, recovery_time=1.0),
        )
        with lm:
            results = QuickAnswer(lm=lm).batch(inputs, concurrency=16, progress=False)
        requests = server.requests

    # every input has exactly its own outcome
    assert len(results) == 1000
    ok = [r for r in results if isinstance(r, AnswerQuestionOutputs)]
    failed = [r for r in results if isinstance(r, SigforgeError)]
    assert len(ok) + len(failed) == 1000
    for item, result in zip(inputs, results, strict=True):
        if isinstance(result, AnswerQuestionOutputs):
            assert result.answer == f"answer to {item.question}"
    # bounded attempts: no input asked more than 1 + MAX_RETRIES times
    per_question = Counter(question_of(r) for r in requests)
    assert set(per_question) == {i.question for i in inputs}
    assert max(per_question.values()) <= 1 + MAX_RETRIES
    assert len(faults.records) == len(requests)
    # the failures are exactly the typed ones the faults explain
    kinds = Counter(type(r).__name__ for r in failed)
    allowed = {
        TruncatedOutputError,  # a truncated reply is an answer, never retried at the HTTP level
        ServerError,
        RateLimitError,
        LMTimeoutError,
        LMConnectionError,
        BadResponseError,
    }
    assert all(type(r) in allowed for r in failed), kinds
    truncated = sum(1 for r in faults.records if r.kind == "truncated")
    assert kinds["TruncatedOutputError"] <= truncated
    assert len(ok) > 750  # ~80% clean answers plus most faults recovered by retries
    injected = Counter(r.kind for r in faults.records if r.kind is not None)
    assert set(injected) == {"500", "429", "timeout", "malformed", "truncated", "disconnect"}


def test_the_circuit_opens_when_the_server_is_down_and_a_probe_closes_it() -> None:
    clock = [0.0]
    breaker = CircuitBreaker(failure_threshold=3, recovery_time=10.0, clock=lambda: clock[0])
    with OpenAICompatServer(default="fine") as server:
        lm = LM(
            "openai/m",
            base_url=server.base_url,
            api_key="k",
            cache=False,
            max_retries=5,
            backoff_base=0.001,
            backoff_max=0.002,
            circuit_breaker=breaker,
        )
        with lm:
            server.take_down()  # every request: HTTP 503
            with pytest.raises(CircuitOpenError) as caught:
                lm.complete(ask())
            assert len(server.requests) == 3  # the retries stopped at the threshold
            assert breaker.state is BreakerState.OPEN
            error = caught.value
            assert error.retry_after == pytest.approx(10.0)
            assert "circuit open" in str(error) and error.provider == "openai"
            with pytest.raises(CircuitOpenError):
                lm.complete(ask())  # fails fast: no request at all
            with pytest.raises(CircuitOpenError):
                asyncio.run(lm.acomplete(ask()))
            assert len(server.requests) == 3
            server.bring_up()
            clock[0] += 10.0  # the cool-down passes: the next call is the probe
            assert lm.complete(ask()).text == "fine"
            assert breaker.state is BreakerState.CLOSED


def test_refused_connections_open_the_breaker_too() -> None:
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=60.0)
    with OpenAICompatServer(default="fine") as server:
        lm = LM(
            "openai/m",
            base_url=server.base_url,
            api_key="k",
            cache=False,
            max_retries=3,
            backoff_base=0.001,
            backoff_max=0.002,
            circuit_breaker=breaker,
        )
        server.take_down(refuse=True)
        with lm, pytest.raises(CircuitOpenError):
            lm.complete(ask())
    assert breaker.state is BreakerState.OPEN


def test_client_errors_and_rate_limits_do_not_open_the_breaker() -> None:
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=60.0)
    script = [Reply(status=400)] * 3 + [Reply(status=429, retry_after=0)] * 3 + ["ok"]
    with OpenAICompatServer(script) as server:
        lm = LM(
            "openai/m",
            base_url=server.base_url,
            api_key="k",
            cache=False,
            max_retries=3,
            backoff_base=0.001,
            circuit_breaker=breaker,
        )
        with lm:
            for _ in range(3):
                with pytest.raises(SigforgeError):
                    lm.complete(ask())
            assert lm.complete(ask()).text == "ok"  # after three 429s, retried
    assert breaker.state is BreakerState.CLOSED


def test_by_default_lms_of_one_server_share_a_breaker() -> None:
    with OpenAICompatServer(default="ok") as server:
        one = LM("openai/a", base_url=server.base_url, api_key="k")
        two = LM("openai/b", base_url=server.base_url, api_key="k", temperature=0.5)
        other = LM("openai/a", base_url=server.base_url + "/other", api_key="k")
        assert one.circuit_breaker is two.circuit_breaker
        assert one.circuit_breaker is breaker_for(f"openai:{server.base_url}")
        assert other.circuit_breaker is not one.circuit_breaker
        assert (
            LM("openai/c", base_url=server.base_url, circuit_breaker=False).circuit_breaker is None
        )


def test_a_broken_stream_counts_against_the_breaker() -> None:
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=60.0)
    broken = Reply(chunks=["a", "b"], break_after=1)
    with OpenAICompatServer([broken, broken, "never"]) as server:
        lm = LM(
            "openai/m",
            base_url=server.base_url,
            api_key="k",
            cache=False,
            max_retries=5,
            backoff_base=0.001,
            circuit_breaker=breaker,
        )
        with lm, pytest.raises(CircuitOpenError):
            list(lm.stream(ask()))
        assert len(server.requests) == 2
    assert breaker.state is BreakerState.OPEN


# -- rate limiting --------------------------------------------------------------------------


def test_the_rate_limiter_holds_requests_back_until_the_budget_refills() -> None:
    clock = [0.0]
    limiter = RateLimiter(requests_per_minute=60, burst_seconds=1.0, clock=lambda: clock[0])
    with OpenAICompatServer(default="ok") as server:
        lm = LM(
            "openai/m", base_url=server.base_url, api_key="k", cache=False, rate_limiter=limiter
        )
        with lm:
            assert lm.complete(ask()).text == "ok"  # the bucket holds one request
            second = threading.Thread(target=lm.complete, args=(ask(),))
            second.start()
            for _ in range(500):  # wait until it queues at the limiter
                if limiter.waiting:
                    break
                threading.Event().wait(0.005)
            assert limiter.waiting == 1 and len(server.requests) == 1
            clock[0] += 1.0  # a second later the budget has refilled
            limiter.wake()
            second.join(timeout=10)
            assert not second.is_alive() and len(server.requests) == 2


def test_token_budgets_are_charged_an_estimate_and_settled_with_the_real_usage() -> None:
    clock = [0.0]  # a clock that never moves: nothing refills during the test
    limiter = RateLimiter(tokens_per_minute=10_000, clock=lambda: clock[0])
    reply = Reply(content="ok", prompt_tokens=30, completion_tokens=20)
    with OpenAICompatServer(default=reply) as server:
        lm = LM(
            "openai/m",
            base_url=server.base_url,
            api_key="k",
            cache=False,
            rate_limiter=limiter,
            max_tokens=500,
        )
        with lm:
            request = ask("x" * 400)  # ~100 prompt tokens + 500 max_tokens estimated
            assert lm._estimate(request) == 600
            lm.complete(request)
    # After settling only the 50 tokens really used are spent, so 9,950 more go at
    # once; had the 600-token estimate stuck, this would wait for a refill forever.
    rest = threading.Thread(target=limiter.acquire, args=(9_950,), daemon=True)
    rest.start()
    rest.join(timeout=10)
    assert not rest.is_alive()
    assert limiter.waiting == 0
