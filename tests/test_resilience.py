"""RateLimiter and CircuitBreaker with real threads and real asyncio, on a manual clock.

The manual clock stands still between the test's steps, so every admission a step lets
through happens at exactly the step's time: the tests check the budget over every window
of those times, not how long anything took on the wall clock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from sigforge.runtime.errors import CircuitOpenError, LMError
from sigforge.runtime.resilience import (
    BreakerState,
    CircuitBreaker,
    RateLimiter,
    breaker_for,
    reset_breakers,
)


class ManualClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def wait_until(condition: Callable[[], bool], what: str, limit: float = 20.0) -> None:
    """Poll until ``condition`` holds; a guard against hangs, not a timing assertion."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.001)


class LoopThread:
    """An asyncio event loop running in its own thread, for tasks that wait alongside threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, None]) -> concurrent.futures.Future[None]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.close()


@pytest.fixture(autouse=True)
def _fresh_breakers() -> Iterator[None]:
    reset_breakers()
    yield
    reset_breakers()


# ------------------------------------------------------------------------------------------
# RateLimiter
# ------------------------------------------------------------------------------------------


def test_limiter_rejects_nonsense_settings() -> None:
    for bad in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="requests_per_minute"):
            RateLimiter(requests_per_minute=bad)
        with pytest.raises(ValueError, match="tokens_per_minute"):
            RateLimiter(tokens_per_minute=bad)
        with pytest.raises(ValueError, match="burst_seconds"):
            RateLimiter(60, burst_seconds=bad)
    limiter = RateLimiter(60)
    with pytest.raises(ValueError, match="negative"):
        limiter.acquire(-1)
    with pytest.raises(ValueError, match="negative"):
        limiter.settle(-1, 3)


def test_unlimited_limiter_never_waits() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock)
    for _ in range(1000):
        limiter.acquire(10**6)
    asyncio.run(limiter.aacquire(10**6))
    assert limiter.waiting == 0


def test_a_full_bucket_lets_a_burst_through_then_paces() -> None:
    clock = ManualClock()
    limiter = RateLimiter(requests_per_minute=120, burst_seconds=5, clock=clock)  # 2/s, 10 at once
    for _ in range(10):
        limiter.acquire()  # the whole burst goes at once (the clock never moved)
    done = threading.Event()
    thread = threading.Thread(daemon=True, target=lambda: (limiter.acquire(), done.set()))
    thread.start()
    wait_until(lambda: limiter.waiting == 1, "the 11th caller to queue")
    clock.advance(0.25)
    limiter.wake()
    assert not done.wait(0.05)
    assert limiter.waiting == 1
    clock.advance(0.25)  # 0.5 s refill one request
    limiter.wake()
    assert done.wait(10)
    thread.join(10)
    assert limiter.waiting == 0


@dataclass
class _Run:
    """Admissions recorded by the workers of one contention test: (clock time, tokens)."""

    clock: ManualClock
    admissions: list[tuple[float, int, str]] = field(default_factory=list)
    finished: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def admitted(self, tokens: int, who: str) -> None:
        with self.lock:
            self.admissions.append((self.clock(), tokens, who))

    def finish(self) -> None:
        with self.lock:
            self.finished += 1


def _drive(limiter: RateLimiter, run: _Run, workers: int, step: float, max_steps: int) -> int:
    """Move the clock step by step until every worker is done; returns the steps taken.

    Before each step the system is quiescent: every unfinished worker is queued in the
    limiter (so every admission at the current time has been recorded).
    """
    for steps in range(max_steps):
        wait_until(
            lambda: limiter.waiting + run.finished == workers, "the workers to queue or finish"
        )
        if run.finished == workers:
            return steps
        clock = run.clock
        clock.advance(step)
        limiter.wake()
    raise AssertionError(f"workers still waiting after {max_steps} steps")


def _assert_within_budget(
    admissions: list[tuple[float, int, str]], capacity: float, per_second: float, weight: int
) -> None:
    """Over every window [t1, t2] of admission times, admitted <= capacity + rate * (t2 - t1)."""
    times = sorted({t for t, _, _ in admissions})
    amount = {t: 0 for t in times}
    for t, tokens, _ in admissions:
        amount[t] += tokens if weight else 1
    for i, t1 in enumerate(times):
        total = 0
        for t2 in times[i:]:
            total += amount[t2]
            assert total <= capacity + per_second * (t2 - t1) + 1e-6, (t1, t2, total)


def test_threads_and_tasks_share_the_budget_within_every_window(loop_thread: LoopThread) -> None:
    clock = ManualClock()
    # 60 requests/min (1/s) and 600 tokens/min (10/s); at most 5 s of either at once.
    limiter = RateLimiter(60, 600, burst_seconds=5, clock=clock)
    run = _Run(clock)
    rounds = 4
    sizes = [0, 3, 7, 12, 50]  # 50 tokens is a full token bucket

    def thread_worker(tokens: int, name: str) -> None:
        for _ in range(rounds):
            limiter.acquire(tokens)
            run.admitted(tokens, name)
        run.finish()

    async def task_worker(tokens: int, name: str) -> None:
        for _ in range(rounds):
            await limiter.aacquire(tokens)
            run.admitted(tokens, name)
        run.finish()

    threads = [
        threading.Thread(daemon=True, target=thread_worker, args=(sizes[i % len(sizes)], f"thread{i}"))
        for i in range(6)
    ]
    for thread in threads:
        thread.start()
    tasks = [loop_thread.submit(task_worker(sizes[(i + 2) % len(sizes)], f"task{i}")) for i in range(6)]
    workers = len(threads) + len(tasks)

    steps = _drive(limiter, run, workers, step=0.25, max_steps=4000)
    for thread in threads:
        thread.join(10)

    assert len(run.admissions) == workers * rounds
    _assert_within_budget(run.admissions, capacity=5, per_second=1, weight=0)
    _assert_within_budget(run.admissions, capacity=50, per_second=10, weight=1)
    assert steps * 0.25 >= (sum(t for _, t, _ in run.admissions) - 50) / 10  # implied by the budget
    # every worker, including those asking for a whole bucket of tokens, got through
    assert {who for _, _, who in run.admissions} == {f"thread{i}" for i in range(6)} | {
        f"task{i}" for i in range(6)
    }


def test_a_saturated_request_budget_is_used_to_the_full(loop_thread: LoopThread) -> None:
    clock = ManualClock()
    limiter = RateLimiter(requests_per_minute=240, burst_seconds=1, clock=clock)  # 4 at once, 4/s
    run = _Run(clock)

    def thread_worker() -> None:
        for _ in range(3):
            limiter.acquire()
            run.admitted(0, "thread")
        run.finish()

    async def task_worker() -> None:
        for _ in range(3):
            await limiter.aacquire()
            run.admitted(0, "task")
        run.finish()

    threads = [threading.Thread(daemon=True, target=thread_worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for _ in range(6):
        loop_thread.submit(task_worker())
    # 36 requests: 4 at once, then exactly one per quarter second, no step left unused
    steps = _drive(limiter, run, 12, step=0.25, max_steps=1000)
    assert steps == 32
    per_time: dict[float, int] = {}
    for t, _, _ in run.admissions:
        per_time[t] = per_time.get(t, 0) + 1
    start = min(per_time)
    assert per_time == {start: 4, **{start + 0.25 * k: 1 for k in range(1, 33)}}


def test_waiters_are_served_in_arrival_order_so_large_requests_are_not_starved(
    loop_thread: LoopThread,
) -> None:
    clock = ManualClock()
    limiter = RateLimiter(tokens_per_minute=600, burst_seconds=1, clock=clock)  # 10 at once, 10/s
    limiter.acquire(10)  # drain the bucket
    order: list[str] = []
    order_lock = threading.Lock()

    def note(name: str) -> None:
        with order_lock:
            order.append(name)

    def thread_caller(tokens: int, name: str) -> None:
        limiter.acquire(tokens)
        note(name)

    async def task_caller(tokens: int, name: str) -> None:
        await limiter.aacquire(tokens)
        note(name)

    # a large request first, then a crowd of small ones from threads and tasks
    plan = [(10, "big-thread"), (1, "t1"), (1, "a1"), (2, "t2"), (10, "big-task"), (1, "a2"), (1, "t3")]
    threads: list[threading.Thread] = []
    futures = []
    for tokens, name in plan:
        queued = limiter.waiting
        if name.startswith(("t", "big-thread")):
            thread = threading.Thread(daemon=True, target=thread_caller, args=(tokens, name))
            thread.start()
            threads.append(thread)
        else:
            futures.append(loop_thread.submit(task_caller(tokens, name)))
        wait_until(lambda q=queued: limiter.waiting == q + 1, f"{name} to queue")  # type: ignore[misc]

    for _ in range(200):
        if len(order) == len(plan):
            break
        clock.advance(0.1)  # one token at a time
        limiter.wake()
        wait_until(
            lambda: len(order) + limiter.waiting == len(plan), "admitted callers to report"
        )
    for thread in threads:
        thread.join(10)
    assert order == [name for _, name in plan]


def test_settle_gives_back_over_estimates_and_charges_under_estimates() -> None:
    clock = ManualClock()
    limiter = RateLimiter(tokens_per_minute=600, burst_seconds=1, clock=clock)  # 10 at once, 10/s
    limiter.acquire(10)
    done = threading.Event()
    thread = threading.Thread(daemon=True, target=lambda: (limiter.acquire(9), done.set()))
    thread.start()
    wait_until(lambda: limiter.waiting == 1, "the caller to queue")
    limiter.settle(10, 2)  # 8 tokens come back: not yet enough for 9
    assert not done.wait(0.05)
    clock.advance(0.125)
    limiter.wake()  # 9.25 tokens now
    assert done.wait(10)
    thread.join(10)

    # the bucket is empty; an under-estimate of 25 tokens leaves it 25 in debt
    limiter.settle(0, 25)
    done.clear()
    thread = threading.Thread(daemon=True, target=lambda: (limiter.acquire(0), done.set()))
    thread.start()
    wait_until(lambda: limiter.waiting == 1, "the caller to queue")
    clock.advance(2.25)
    limiter.wake()
    assert not done.wait(0.05)  # still 2.5 tokens in debt: nobody goes, not even tokens=0
    clock.advance(0.25)
    limiter.wake()
    assert done.wait(10)
    thread.join(10)


def test_settle_never_fills_beyond_capacity() -> None:
    clock = ManualClock()
    limiter = RateLimiter(tokens_per_minute=600, burst_seconds=1, clock=clock)
    limiter.settle(1000, 0)  # a refund into a full bucket is lost, not banked
    limiter.acquire(10)
    done = threading.Event()
    thread = threading.Thread(daemon=True, target=lambda: (limiter.acquire(1), done.set()))
    thread.start()
    wait_until(lambda: limiter.waiting == 1, "the caller to queue")
    assert not done.wait(0.05)
    clock.advance(0.125)
    limiter.wake()
    assert done.wait(10)
    thread.join(10)
    # without a token budget settle is a no-op
    RateLimiter(60, clock=clock).settle(5, 500)


def test_a_request_larger_than_the_bucket_goes_when_full_and_leaves_debt() -> None:
    clock = ManualClock()
    limiter = RateLimiter(tokens_per_minute=600, burst_seconds=1, clock=clock)  # capacity 10
    limiter.acquire(35)  # full bucket: goes at once, 25 in debt
    done = threading.Event()
    thread = threading.Thread(daemon=True, target=lambda: (limiter.acquire(1), done.set()))
    thread.start()
    wait_until(lambda: limiter.waiting == 1, "the caller to queue")
    clock.advance(2.5)  # -25 + 25 = 0 tokens: not yet 1
    limiter.wake()
    assert not done.wait(0.05)
    clock.advance(0.125)
    limiter.wake()
    assert done.wait(10)
    thread.join(10)


def test_cancelled_task_leaves_the_queue_and_the_next_caller_moves_up() -> None:
    clock = ManualClock()
    limiter = RateLimiter(requests_per_minute=60, burst_seconds=1, clock=clock)  # 1 at once, 1/s

    async def main() -> list[str]:
        await limiter.aacquire()
        served: list[str] = []

        async def caller(name: str) -> None:
            await limiter.aacquire()
            served.append(name)

        first = asyncio.create_task(caller("first"))
        second = asyncio.create_task(caller("second"))
        while limiter.waiting < 2:
            await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert limiter.waiting == 1
        clock.advance(1)
        limiter.wake()
        await second
        return served

    assert asyncio.run(main()) == ["second"]


def test_a_task_cancelled_after_its_grant_gives_the_grant_back() -> None:
    clock = ManualClock()
    limiter = RateLimiter(requests_per_minute=60, burst_seconds=1, clock=clock)

    async def main() -> None:
        await limiter.aacquire()
        waiting = asyncio.create_task(limiter.aacquire())
        while limiter.waiting < 1:
            await asyncio.sleep(0)
        clock.advance(1)
        limiter.wake()  # grants the task (its wake-up is scheduled on this loop) ...
        waiting.cancel()  # ... but it is cancelled before it runs again
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # the unused request came back: the next caller goes at once
        await asyncio.wait_for(limiter.aacquire(), 10)

    asyncio.run(main())


def test_real_clock_waits_end_by_themselves(loop_thread: LoopThread) -> None:
    # 6000/min with 10 ms of burst: one request at once, then one per 10 ms of real time
    limiter = RateLimiter(requests_per_minute=6000, tokens_per_minute=60000, burst_seconds=0.01)
    count = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal count
        for _ in range(3):
            limiter.acquire(5)
            with lock:
                count += 1

    async def aworker() -> None:
        nonlocal count
        for _ in range(3):
            await limiter.aacquire(5)
            with lock:
                count += 1

    threads = [threading.Thread(daemon=True, target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    futures = [asyncio.run_coroutine_threadsafe(aworker(), loop_thread.loop) for _ in range(3)]
    for thread in threads:
        thread.join(20)
    for future in futures:
        future.result(20)
    assert count == 18
    assert limiter.waiting == 0


# ------------------------------------------------------------------------------------------
# CircuitBreaker
# ------------------------------------------------------------------------------------------


def _open(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        breaker.before_call()
        breaker.record_failure()


def test_breaker_opens_after_consecutive_failures_only() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(3, 10.0, endpoint="https://api.example/v1", clock=clock)
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # breaks the run
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 2
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN

    clock.advance(4)
    with pytest.raises(CircuitOpenError) as caught:
        breaker.before_call()
    error = caught.value
    assert isinstance(error, LMError)
    assert error.retry_after == pytest.approx(6.0)
    assert "https://api.example/v1" in str(error)
    assert "3 consecutive failures" in str(error)
    assert not error.retryable


def test_breaker_half_open_probe_success_closes() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(2, 5.0, clock=clock)
    _open(breaker)
    clock.advance(5)
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpenError, match="probe request is in flight") as caught:
        breaker.before_call()
    assert caught.value.retry_after == pytest.approx(5.0)
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 0
    breaker.before_call()
    breaker.before_call()


def test_breaker_half_open_probe_failure_reopens_for_a_new_cool_down() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(2, 5.0, clock=clock)
    _open(breaker)
    clock.advance(7)
    breaker.before_call()
    clock.advance(1)
    breaker.record_failure()  # one failure is enough as the probe
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as caught:
        breaker.before_call()
    assert caught.value.retry_after == pytest.approx(5.0)
    clock.advance(5)
    breaker.before_call()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_reports_while_open_are_ignored() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(1, 5.0, clock=clock)
    _open(breaker)
    clock.advance(2)
    breaker.record_success()  # a slow call let through before the breaker opened
    breaker.record_failure()  # must not restart the cool-down either
    assert breaker.state is BreakerState.OPEN
    clock.advance(3)
    assert breaker.state is BreakerState.HALF_OPEN


def test_a_probe_that_never_reports_stops_blocking_after_another_recovery_time() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(1, 5.0, clock=clock)
    _open(breaker)
    clock.advance(5)
    breaker.before_call()  # probe, whose caller then vanishes
    clock.advance(4.5)
    with pytest.raises(CircuitOpenError) as caught:
        breaker.before_call()
    assert caught.value.retry_after == pytest.approx(0.5)
    clock.advance(0.5)
    breaker.before_call()  # the next caller becomes the probe
    with pytest.raises(CircuitOpenError):
        breaker.before_call()


def test_concurrent_callers_in_half_open_let_exactly_one_probe_through(
    loop_thread: LoopThread,
) -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(2, 5.0, endpoint="ep", clock=clock)
    _open(breaker)
    clock.advance(5)
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(9)

    def attempt() -> None:
        try:
            breaker.before_call()
            result = "probe"
        except CircuitOpenError:
            result = "fast-fail"
        with lock:
            outcomes.append(result)

    def thread_caller() -> None:
        start.wait(10)
        attempt()

    async def task_callers() -> None:
        await asyncio.to_thread(start.wait, 10)
        await asyncio.gather(*(asyncio.to_thread(attempt) for _ in range(2)))
        for _ in range(4):  # and plain coroutines on the loop
            attempt()
            await asyncio.sleep(0)

    threads = [threading.Thread(daemon=True, target=thread_caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    loop_thread.submit(task_callers())
    for thread in threads:
        thread.join(10)
    wait_until(lambda: len(outcomes) == 14, "every caller to finish")
    assert outcomes.count("probe") == 1
    assert outcomes.count("fast-fail") == 13
    assert breaker.state is BreakerState.HALF_OPEN


def test_concurrent_failures_open_the_breaker_exactly_once() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(50, 5.0, clock=clock)
    start = threading.Barrier(8)

    def fail() -> None:
        start.wait(10)
        for _ in range(25):
            breaker.record_failure()

    threads = [threading.Thread(daemon=True, target=fail) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    # 50 failures opened it; the other 150 arrived while open and were ignored
    assert breaker.state is BreakerState.OPEN
    assert breaker.consecutive_failures == 50
    with pytest.raises(CircuitOpenError) as caught:
        breaker.before_call()
    assert caught.value.retry_after == pytest.approx(5.0)


def test_breaker_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(0)
    with pytest.raises(ValueError, match="recovery_time"):
        CircuitBreaker(3, -1)
    with pytest.raises(ValueError, match="recovery_time"):
        CircuitBreaker(3, float("nan"))


def test_breaker_for_shares_one_breaker_per_endpoint(caplog: pytest.LogCaptureFixture) -> None:
    first = breaker_for("https://a.example/v1", failure_threshold=2, recovery_time=1.0)
    assert breaker_for("https://a.example/v1", failure_threshold=2, recovery_time=1.0) is first
    other = breaker_for("https://b.example/v1")
    assert other is not first
    assert (other.failure_threshold, other.recovery_time) == (5, 30.0)
    assert first.endpoint == "https://a.example/v1"

    with caplog.at_level(logging.WARNING, logger="sigforge"):
        again = breaker_for("https://a.example/v1", failure_threshold=9, recovery_time=1.0)
        breaker_for("https://a.example/v1", failure_threshold=9, recovery_time=1.0)
    assert again is first
    assert (first.failure_threshold, first.recovery_time) == (2, 1.0)  # the first settings win
    warnings = [r for r in caplog.records if "already exists" in r.getMessage()]
    assert len(warnings) == 1
    assert "failure_threshold=9" in warnings[0].getMessage()

    # what one client learns, every client of the endpoint sees
    first.record_failure()
    first.record_failure()
    with pytest.raises(CircuitOpenError, match=r"a\.example"):
        breaker_for("https://a.example/v1").before_call()

    reset_breakers()
    fresh = breaker_for("https://a.example/v1")
    assert fresh is not first
    assert fresh.state is BreakerState.CLOSED


def test_breaker_for_is_safe_under_concurrent_first_use() -> None:
    results: list[CircuitBreaker] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def get() -> None:
        start.wait(10)
        breaker = breaker_for("https://c.example/v1")
        with lock:
            results.append(breaker)

    threads = [threading.Thread(daemon=True, target=get) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 8
    assert all(b is results[0] for b in results)
