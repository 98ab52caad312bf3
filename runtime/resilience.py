"""Client-side protection of LM endpoints: a rate limiter and per-endpoint circuit breakers.

Both are plain in-process objects the LM clients call around each request; neither
sends or delays anything by itself.

Rate limiter
------------
:class:`RateLimiter` is a token bucket per budget (requests per minute, tokens per
minute), shared by every thread *and* every asyncio task of the process that holds it:

* **Refill.** Each bucket refills continuously at ``limit / 60`` per second up to its
  capacity, ``limit * burst_seconds / 60`` (by default a whole minute's budget, which is
  how the providers' own limits replenish). The bucket starts full.
* **Bounded bursts.** In any interval of ``T`` seconds the limiter lets through at most
  ``capacity + rate * T`` of each budget, plus the overshoot of one request larger than
  the whole capacity (see below) and whatever :meth:`RateLimiter.settle` gave back.
* **Fairness.** Waiting callers form one first-in, first-out queue, threads and tasks
  alike; nobody overtakes the caller at its head. A request for more tokens than the
  bucket can ever hold is let through as soon as the bucket is full and leaves the
  bucket in debt, which later callers wait out. So a large request waits at most the
  time to refill one full bucket (plus debt left by others), and can never be starved by
  a stream of small ones; the price is that small requests queued behind a large one
  wait for it too.
* **Correction.** Callers charge an *estimate* of the tokens a request will use
  (prompt plus expected completion); once the response reports the real usage,
  :meth:`RateLimiter.settle` gives back the difference or charges the extra.
* **Waking.** Whoever changes the buckets (an arrival, a settle, a cancelled waiter, or
  the head of the queue whose refill time has come) hands admission to the waiters in
  queue order; only the head of the queue waits on a timer. An admitted thread is woken
  through its ``threading.Event``, an admitted task through its own event loop
  (``call_soon_threadsafe``), so one limiter serves several event loops and threads.

Why not a library (evaluated: aiolimiter 1.3, pyrate-limiter 4.5, limits 5.8):
aiolimiter is asyncio-only (one event loop per limiter, the loop's clock), has no
blocking ``acquire`` for threads, cannot correct a charge afterwards, and serves waiters
smallest request first, so a large token request can wait forever behind small ones.
pyrate-limiter does threads and asyncio with weights, but its in-memory bucket stores
one log entry per unit of weight (100,000 entries for a 100,000-token minute), waiting is
sleep-and-retry without a queue (no fairness), time is integer milliseconds with a
background leak thread, and a charge cannot be corrected. limits counts hits in a
storage and does no waiting at all. The bucket below is about 150 lines and does exactly
what the LM clients need.

Circuit breaker
---------------
:class:`CircuitBreaker` is the usual three-state machine: *closed* (calls go through;
``failure_threshold`` consecutive failures open it), *open* (calls fail fast with
:class:`~sigforge.runtime.errors.CircuitOpenError` until ``recovery_time`` has passed),
*half-open* (exactly one probe call at a time goes through; its success closes the
breaker, its failure opens it again for another ``recovery_time``). The caller decides
what counts as a failure: it calls :meth:`~CircuitBreaker.before_call` before a request
and :meth:`~CircuitBreaker.record_success` or :meth:`~CircuitBreaker.record_failure`
after it. Nothing in it awaits, so sync and async code use the same object.

Why not a library (evaluated: pybreaker 1.4, aiobreaker 1.2, purgatory 3.0): pybreaker
wraps the call (``breaker.call(func)``), supports async only through Tornado, reads
wall-clock datetimes (no injectable clock) and lets every call through while half-open;
aiobreaker and purgatory are asyncio-first with decorator and context-manager APIs and
no explicit before/after calls. The state machine is small enough to own.

:func:`breaker_for` keeps one breaker per endpoint key for the whole process, so every
LM object talking to the same endpoint shares what it learnt.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from .errors import CircuitOpenError

__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "Clock",
    "RateLimiter",
    "breaker_for",
    "reset_breakers",
]

logger = logging.getLogger("sigforge")

#: a monotonic clock in seconds; ``time.monotonic`` unless a test injects another
Clock = Callable[[], float]


# ------------------------------------------------------------------------------------------
# Rate limiter
# ------------------------------------------------------------------------------------------


class _Bucket:
    """One token bucket; not thread-safe on its own (the limiter's lock guards it)."""

    __slots__ = ("capacity", "level", "rate", "updated")

    def __init__(self, per_minute: float, burst_seconds: float, now: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = self.rate * burst_seconds
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def needed(self, amount: float) -> float:
        """The level at which ``amount`` may go (at most a full bucket)."""
        return min(amount, self.capacity)

    def delay(self, amount: float) -> float:
        """Seconds until ``amount`` may go (0 when it may go now)."""
        missing = self.needed(amount) - self.level
        return 0.0 if missing <= 0 else missing / self.rate


@dataclass(eq=False, slots=True)
class _Waiter:
    """A queued caller: what it asks for, whether it was let through, how to wake it."""

    tokens: int
    wake: Callable[[], None]
    granted: bool = False
    #: set when an async waiter's event loop is gone; its grant, if any, is given back
    abandoned: bool = field(default=False)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute budgets shared by threads and asyncio tasks.

    ``requests_per_minute`` / ``tokens_per_minute``: the budgets; ``None`` leaves that
    budget unlimited (with both ``None`` the limiter lets everything through at once).
    ``burst_seconds``: how many seconds' worth of each budget may go at once (the
    buckets' capacity); 60 lets a full minute's budget go in one burst, as the
    providers' own buckets do; lower it to spread calls evenly over the minute.
    ``clock``: a monotonic clock in seconds. Waits are real waits of the computed number
    of seconds; with a manual clock in tests, call :meth:`wake` after moving it.

    See the module docstring for the refill, burst and fairness guarantees.
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        burst_seconds: float = 60.0,
        clock: Clock = time.monotonic,
    ) -> None:
        for name, value in (
            ("requests_per_minute", requests_per_minute),
            ("tokens_per_minute", tokens_per_minute),
        ):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number or None, not {value!r}")
        if not (burst_seconds > 0 and math.isfinite(burst_seconds)):
            raise ValueError(f"burst_seconds must be a positive number, not {burst_seconds!r}")
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.burst_seconds = burst_seconds
        self._clock = clock
        now = clock()
        self._requests = (
            _Bucket(requests_per_minute, burst_seconds, now)
            if requests_per_minute is not None
            else None
        )
        self._tokens = (
            _Bucket(tokens_per_minute, burst_seconds, now) if tokens_per_minute is not None else None
        )
        self._lock = threading.Lock()
        self._queue: deque[_Waiter] = deque()

    def __repr__(self) -> str:
        return (
            f"RateLimiter(requests_per_minute={self.requests_per_minute!r}, "
            f"tokens_per_minute={self.tokens_per_minute!r}, burst_seconds={self.burst_seconds!r})"
        )

    # -- public interface ------------------------------------------------------------------

    def acquire(self, tokens: int = 0) -> None:
        """Block the calling thread until one request and ``tokens`` tokens may go.

        Do not call it from a coroutine (it would block the event loop); use
        :meth:`aacquire` there.
        """
        self._check(tokens)
        event = threading.Event()
        with self._lock:
            if self._try_now(tokens):
                return
            waiter = _Waiter(tokens, event.set)
            self._queue.append(waiter)
            timeout = self._timeout_for(waiter)
        try:
            while True:
                event.wait(timeout)
                with self._lock:
                    if waiter.granted:
                        return
                    event.clear()
                    self._dispatch()
                    if waiter.granted:
                        return
                    timeout = self._timeout_for(waiter)
        except BaseException:  # e.g. KeyboardInterrupt: leave the queue to the others
            with self._lock:
                self._withdraw(waiter)
            raise

    async def aacquire(self, tokens: int = 0) -> None:
        """Wait, without blocking the event loop, until one request and ``tokens`` may go.

        Cancelling the waiting task takes it out of the queue (or gives back what it was
        granted but had not yet used).
        """
        import asyncio  # imported on first use: importing sigforge stays cheap

        self._check(tokens)
        loop = asyncio.get_running_loop()
        event = asyncio.Event()

        def wake() -> None:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop is closed: its task will never come back
                waiter.abandoned = True

        with self._lock:
            if self._try_now(tokens):
                return
            waiter = _Waiter(tokens, wake)
            self._queue.append(waiter)
            timeout = self._timeout_for(waiter)
        try:
            while True:
                try:
                    async with asyncio.timeout(timeout):
                        await event.wait()
                except TimeoutError:
                    pass
                with self._lock:
                    if waiter.granted:
                        return
                    event.clear()
                    self._dispatch()
                    if waiter.granted:
                        return
                    timeout = self._timeout_for(waiter)
        except BaseException:
            with self._lock:
                self._withdraw(waiter)
            raise

    def settle(self, estimated: int, actual: int) -> None:
        """Correct a token charge: ``estimated`` was acquired, ``actual`` was used.

        Over-estimates are given back (up to the bucket's capacity), under-estimates
        charged (the bucket may go into debt, which later callers wait out). Does
        nothing without a tokens-per-minute budget.
        """
        if estimated < 0 or actual < 0:
            raise ValueError(f"token counts must not be negative: {estimated=}, {actual=}")
        if self._tokens is None or estimated == actual:
            return
        with self._lock:
            self._tokens.refill(self._clock())
            self._tokens.level = min(self._tokens.capacity, self._tokens.level + estimated - actual)
            self._dispatch(poke_head=True)

    def wake(self) -> None:
        """Re-examine the queue now.

        Never needed with the default clock; with a manual clock (tests), call it after
        moving the clock so that waiters whose time has come are let through at once.
        """
        with self._lock:
            self._dispatch(poke_head=True)

    @property
    def waiting(self) -> int:
        """How many callers are queued right now."""
        with self._lock:
            return len(self._queue)

    # -- internals (all called with the lock held) -----------------------------------------

    def _check(self, tokens: int) -> None:
        if tokens < 0:
            raise ValueError(f"tokens must not be negative, not {tokens}")

    def _delay(self, tokens: int) -> float:
        """Seconds until one request with ``tokens`` may go, after refilling to now."""
        now = self._clock()
        delay = 0.0
        if self._requests is not None:
            self._requests.refill(now)
            delay = self._requests.delay(1)
        if self._tokens is not None:  # even ``tokens=0`` waits while the bucket is in debt
            self._tokens.refill(now)
            delay = max(delay, self._tokens.delay(tokens))
        return delay

    def _charge(self, tokens: int) -> None:
        if self._requests is not None:
            self._requests.level -= 1
        if self._tokens is not None:
            self._tokens.level -= tokens

    def _try_now(self, tokens: int) -> bool:
        """Let a newcomer through at once when nobody is queued and the budget allows."""
        if self._queue or self._delay(tokens) > 0:
            return False
        self._charge(tokens)
        return True

    def _dispatch(self, *, poke_head: bool = False) -> None:
        """Let queued callers through in order while the budget allows; wake each one.

        When the head changes (or ``poke_head``), the new head is woken so that it starts
        waiting for its own refill time.
        """
        queue = self._queue
        head = queue[0] if queue else None
        while True:
            while queue:
                waiter = queue[0]
                if waiter.abandoned:
                    queue.popleft()
                    continue
                if self._delay(waiter.tokens) > 0:
                    break
                queue.popleft()
                self._charge(waiter.tokens)
                waiter.granted = True
                waiter.wake()
                if waiter.abandoned:  # its event loop closed while it waited
                    self._refund(waiter.tokens)
            if not queue or not (poke_head or queue[0] is not head):
                return
            head = queue[0]
            poke_head = False
            head.wake()
            if not head.abandoned:
                return

    def _timeout_for(self, waiter: _Waiter) -> float | None:
        """How long ``waiter`` sleeps before looking again: the head waits for its refill."""
        if self._queue and self._queue[0] is waiter:
            return self._delay(waiter.tokens)
        return None  # woken when it becomes the head or is let through

    def _refund(self, tokens: int) -> None:
        if self._requests is not None:
            self._requests.level = min(self._requests.capacity, self._requests.level + 1)
        if self._tokens is not None:
            self._tokens.level = min(self._tokens.capacity, self._tokens.level + tokens)

    def _withdraw(self, waiter: _Waiter) -> None:
        """A waiting task was cancelled: leave the queue, or give back an unused grant."""
        if waiter.granted:
            self._refund(waiter.tokens)
            self._dispatch(poke_head=True)
            return
        try:
            self._queue.remove(waiter)
        except ValueError:
            return
        self._dispatch(poke_head=True)


# ------------------------------------------------------------------------------------------
# Circuit breaker
# ------------------------------------------------------------------------------------------


class BreakerState(StrEnum):
    """The states of a :class:`CircuitBreaker`."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Fails fast after ``failure_threshold`` consecutive failures; probes after ``recovery_time``.

    Call :meth:`before_call` before each request (it raises
    :class:`~sigforge.runtime.errors.CircuitOpenError` while calls must not go), then
    :meth:`record_success` or :meth:`record_failure` when the request is over. What
    counts as a failure is the caller's choice (sigforge's LMs count retryable errors:
    5xx, timeouts, connection errors; not 4xx).

    Half-open: the first caller after the cool-down becomes the probe; everyone else
    fails fast until the probe reports. A probe that never reports (its caller died
    without calling ``record_*``) stops blocking others after another ``recovery_time``,
    when the next caller becomes the probe.

    Reports that arrive while the breaker is open (from calls let through before it
    opened) change nothing: only the probe decides when it closes. While half-open any
    report counts: a success closes it, a failure opens it again.

    ``endpoint`` names what is protected in error messages. Thread-safe; never awaits, so
    sync and async code share one breaker.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_time: float = 30.0,
        *,
        endpoint: str = "",
        clock: Clock = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, not {failure_threshold}")
        if not (recovery_time >= 0 and math.isfinite(recovery_time)):
            raise ValueError(f"recovery_time must be a number of seconds >= 0, not {recovery_time!r}")
        self.failure_threshold = failure_threshold
        self.recovery_time = recovery_time
        self.endpoint = endpoint
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        #: when the breaker last opened (state OPEN) or the probe started (HALF_OPEN)
        self._since = 0.0

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(endpoint={self.endpoint!r}, state={self.state.value!r}, "
            f"failure_threshold={self.failure_threshold}, recovery_time={self.recovery_time})"
        )

    @property
    def state(self) -> BreakerState:
        """The state as the next call would find it.

        An open breaker whose cool-down has passed reads as half-open: the next call
        would be let through as the probe.
        """
        with self._lock:
            if self._state is BreakerState.OPEN and self._remaining() <= 0:
                return BreakerState.HALF_OPEN
            return self._state

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success (what opens the breaker at the threshold)."""
        return self._failures

    def before_call(self) -> None:
        """Let a call go, or raise :class:`CircuitOpenError` when it must fail fast."""
        seen = self._state  # the common case, without the lock (one attribute read is atomic)
        if seen is BreakerState.CLOSED:
            return
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return
            remaining = self._remaining()
            if remaining <= 0:  # cool-down over (or the probe never reported): probe now
                self._state = BreakerState.HALF_OPEN
                self._since = self._clock()
                return
            state = self._state
        what = f"the endpoint {self.endpoint}" if self.endpoint else "the endpoint"
        if state is BreakerState.OPEN:
            reason = (
                f"circuit open for {what} after {self.failure_threshold} consecutive "
                f"failures; the next probe request is allowed in {remaining:.1f} s"
            )
        else:
            reason = (
                f"circuit half-open for {what}: a probe request is in flight; failing fast "
                f"for at most {remaining:.1f} s more"
            )
        raise CircuitOpenError(reason, retry_after=remaining)

    def record_success(self) -> None:
        """The call succeeded: reset the failure count; a half-open breaker closes."""
        if self._state is BreakerState.CLOSED and not self._failures:
            return  # nothing to change (a failure racing this one is kept, as it should)
        with self._lock:
            if self._state is BreakerState.OPEN:
                return
            self._state = BreakerState.CLOSED
            self._failures = 0

    def record_failure(self) -> None:
        """The call failed: count it; at the threshold (or as the probe) the breaker opens."""
        with self._lock:
            if self._state is BreakerState.OPEN:
                return
            self._failures += 1
            if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
                self._state = BreakerState.OPEN
                self._since = self._clock()

    def reset(self) -> None:
        """Close the breaker and forget all failures."""
        with self._lock:
            self._state = BreakerState.CLOSED
            self._failures = 0

    def _remaining(self) -> float:
        """Seconds until the cool-down (open) or the probe's lease (half-open) ends."""
        return self._since + self.recovery_time - self._clock()


_breakers_lock = threading.Lock()
_breakers: dict[str, CircuitBreaker] = {}
#: (endpoint, threshold, recovery) combinations already warned about
_mismatch_warned: set[tuple[str, int, float]] = set()


def breaker_for(
    endpoint: str,
    failure_threshold: int = 5,
    recovery_time: float = 30.0,
) -> CircuitBreaker:
    """The process-wide breaker of ``endpoint`` (a key such as a base URL), created on first use.

    The first request for an endpoint decides its settings: a breaker exists to share
    what one client learnt about an endpoint with every other client of it, so later
    requests with other ``failure_threshold`` / ``recovery_time`` get the same breaker
    unchanged (and a warning on the ``sigforge`` logger, once per differing setting).
    :func:`reset_breakers` forgets them all.
    """
    with _breakers_lock:
        breaker = _breakers.get(endpoint)
        if breaker is None:
            breaker = _breakers[endpoint] = CircuitBreaker(
                failure_threshold, recovery_time, endpoint=endpoint
            )
            return breaker
        if (breaker.failure_threshold, breaker.recovery_time) != (failure_threshold, recovery_time):
            key = (endpoint, failure_threshold, recovery_time)
            if key not in _mismatch_warned:
                _mismatch_warned.add(key)
                logger.warning(
                    "circuit breaker for %s already exists with failure_threshold=%d, "
                    "recovery_time=%g; ignoring failure_threshold=%d, recovery_time=%g",
                    endpoint,
                    breaker.failure_threshold,
                    breaker.recovery_time,
                    failure_threshold,
                    recovery_time,
                )
        return breaker


def reset_breakers() -> None:
    """Forget every breaker :func:`breaker_for` made (for tests and long-lived processes)."""
    with _breakers_lock:
        _breakers.clear()
        _mismatch_warned.clear()
