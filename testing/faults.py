"""Fault injection for the scripted servers: errors, stalls, garbage and broken streams.

A :class:`FaultInjector` is a responder: pass it as the ``replies`` of any server
(:class:`~sigforge.testing.server.OpenAICompatServer`,
:class:`~sigforge.testing.anthropic.AnthropicServer`,
:class:`~sigforge.testing.gemini.GeminiServer`). For each valid request it decides --
deterministically for its ``seed`` and the request's number -- whether to answer
normally or with a fault, and records what it did, so a test can account for every
request its client made:

.. code-block:: python

    faults = FaultInjector("Paris.", seed=7, rate=0.3, kinds={"500": 1, "timeout": 1},
                           timeout_delay=5.0)
    with OpenAICompatServer(faults) as server:
        ...  # drive the client (with a timeout below 5 s)
    assert [r.kind for r in faults.records] == faults.plan(len(faults.records))

Decision ``n`` (the injector's ``n``-th request, from 1) depends only on ``seed`` and
``n``: the same seed gives the same sequence of faults in every run, and :meth:`plan`
tells it in advance. With ``rate`` the chance of a fault, ``kinds`` weighs the kinds
(default: all equally):

* ``"500"``: HTTP 500 in the provider's error format; in a stream, the provider's
  error event mid-stream.
* ``"429"``: HTTP 429 (``retry_after``: when to retry), before any stream starts.
* ``"timeout"``: the answer waits ``timeout_delay`` seconds; a stream stalls that long
  between two pieces.
* ``"malformed"``: a 200 body that is not JSON; in a stream, an event whose data is not
  JSON.
* ``"truncated"``: the text cut short, with finish reason ``length`` / ``max_tokens`` /
  ``MAX_TOKENS`` (streamed or not).
* ``"disconnect"``: the connection closes without an answer; a stream is dropped
  mid-way.

Mid-stream faults strike after a number of text pieces also drawn from the seed
(:attr:`Injection.at_piece`). ``latency=(lo, hi)`` adds a uniform random delay to
every answer. Set ``timeout_delay`` above the client's timeout; the server cuts the
wait short when it stops.

For a server that is down altogether (every request failing, or connections refused)
use :meth:`~sigforge.testing._core.ScriptedServer.take_down` /
:meth:`~sigforge.testing._core.ScriptedServer.bring_up` on the server.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from ._core import RecordedRequest, Reply, Responder

__all__ = ["FAULT_KINDS", "FaultInjector", "Injection"]

#: every kind of fault, in the order weights are laid out for drawing
FAULT_KINDS = ("500", "429", "timeout", "malformed", "truncated", "disconnect")

#: a 200 body that is cut off in the middle: not JSON, so not a completion of any provider
MALFORMED_BODY = '{"id": "injected-malformed", "choices": [{"message": {"content": "Par'
#: a server-sent event whose data is cut off in the middle
MALFORMED_EVENT = 'data: {"injected": "malformed\n\n'


@dataclass(frozen=True)
class Injection:
    """What the injector did with one request."""

    #: the injector's count of requests, from 1
    number: int
    #: the fault injected, or ``None`` for a normal answer
    kind: str | None
    #: whether the request asked for a stream
    stream: bool
    #: the extra delay drawn from ``latency`` (seconds)
    latency: float
    #: for a fault that strikes mid-stream or cuts the text: how many text pieces came
    #: before it (``None`` otherwise)
    at_piece: int | None
    #: the request
    request: RecordedRequest
    #: the reply given
    reply: Reply


@dataclass(frozen=True)
class _Draw:
    kind: str | None
    latency: float
    position: float


class FaultInjector:
    """A responder that answers with ``reply`` except for the faults it injects.

    ``reply`` is the normal answer: text, a :class:`Reply`, or a responder computing
    it. See the module docstring for the kinds of faults.
    """

    def __init__(
        self,
        reply: str | Reply | Responder = "ok",
        *,
        seed: int | str = 0,
        rate: float = 0.2,
        kinds: Mapping[str, float] | None = None,
        latency: tuple[float, float] | None = None,
        timeout_delay: float = 30.0,
        retry_after: float | None = None,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        weights = {kind: 1.0 for kind in FAULT_KINDS} if kinds is None else dict(kinds)
        unknown = sorted(set(weights) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(
                f"unknown fault kinds {unknown}; the kinds are {', '.join(FAULT_KINDS)}"
            )
        if any(weight < 0 for weight in weights.values()) or not sum(weights.values()) > 0:
            raise ValueError("fault weights must be >= 0 and not all 0")
        if latency is not None and not 0.0 <= latency[0] <= latency[1]:
            raise ValueError("latency must be (lo, hi) with 0 <= lo <= hi")
        if timeout_delay <= 0:
            raise ValueError("timeout_delay must be positive")
        self.reply = reply
        self.seed = seed
        self.rate = rate
        self.weights = {kind: float(weights.get(kind, 0.0)) for kind in FAULT_KINDS}
        self.latency = latency
        self.timeout_delay = timeout_delay
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._count = 0
        self._records: list[Injection] = []

    # -- deciding ------------------------------------------------------------------------------

    def _draw(self, number: int) -> _Draw:
        """The decision for request ``number``: a function of the seed and the number."""
        rng = random.Random(f"sigforge-faults/{self.seed}/{number}")
        faulty = rng.random() < self.rate
        pick = rng.random() * sum(self.weights.values())
        latency = rng.uniform(*self.latency) if self.latency is not None else 0.0
        position = rng.random()
        kind: str | None = None
        if faulty:
            for candidate in FAULT_KINDS:
                pick -= self.weights[candidate]
                if pick < 0 and self.weights[candidate] > 0:
                    kind = candidate
                    break
            else:  # rounding at the very top: the last kind with weight
                kind = [k for k in FAULT_KINDS if self.weights[k] > 0][-1]
        return _Draw(kind, latency, position)

    def plan(self, count: int, *, start: int = 1) -> list[str | None]:
        """The faults requests ``start`` .. ``start + count - 1`` get (``None``: no fault)."""
        return [self._draw(number).kind for number in range(start, start + count)]

    # -- answering -----------------------------------------------------------------------------

    def __call__(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._count += 1
            number = self._count
        draw = self._draw(number)
        base = self._base(request)
        reply, at_piece = self._inject(draw, base, request.stream)
        record = Injection(
            number=number,
            kind=draw.kind,
            stream=request.stream,
            latency=draw.latency,
            at_piece=at_piece,
            request=request,
            reply=reply,
        )
        with self._lock:
            self._records.append(record)
            self._records.sort(key=lambda item: item.number)
        return reply

    def _base(self, request: RecordedRequest) -> Reply:
        reply = self.reply
        if callable(reply):
            reply = reply(request)
        return Reply(content=reply) if isinstance(reply, str) else reply

    def _inject(self, draw: _Draw, base: Reply, stream: bool) -> tuple[Reply, int | None]:
        delay = base.delay + draw.latency
        pieces = base.pieces()
        at = min(int(draw.position * len(pieces)), max(len(pieces) - 1, 0))
        kind = draw.kind
        if kind is None:
            return dataclasses.replace(base, delay=delay), None
        if kind == "429":
            reply = Reply(
                status=429,
                error_message="injected fault: rate limit exceeded",
                retry_after=self.retry_after,
                delay=delay,
            )
            return reply, None
        if kind == "truncated":
            kept = tuple(pieces[: max(at, 1)])
            reply = dataclasses.replace(
                base, delay=delay, chunks=kept, content="".join(kept), finish_reason="length"
            )
            return reply, len(kept)
        if not stream:
            if kind == "500":
                reply = Reply(
                    status=500, error_message="injected fault: internal error", delay=delay
                )
            elif kind == "timeout":
                reply = dataclasses.replace(base, delay=delay + self.timeout_delay)
            elif kind == "malformed":
                reply = Reply(
                    body=MALFORMED_BODY, headers={"Content-Type": "application/json"}, delay=delay
                )
            else:  # disconnect
                reply = Reply(disconnect=True, delay=delay)
            return reply, None
        if kind == "500":
            reply = dataclasses.replace(
                base, delay=delay, break_after=at, stream_error="injected fault: internal error"
            )
        elif kind == "timeout":
            delays = [base.delay_before(index) for index in range(len(pieces))]
            if delays:
                delays[at] += self.timeout_delay
                reply = dataclasses.replace(base, delay=delay, chunk_delay=tuple(delays))
            else:  # nothing to stall between: stall before the answer
                reply = dataclasses.replace(base, delay=delay + self.timeout_delay)
        elif kind == "malformed":
            reply = dataclasses.replace(
                base, delay=delay, break_after=at, stream_garbage=MALFORMED_EVENT
            )
        else:  # disconnect
            reply = dataclasses.replace(base, delay=delay, break_after=at)
        return reply, at

    # -- what tests look at ---------------------------------------------------------------------

    @property
    def records(self) -> list[Injection]:
        """One record per request answered so far, in request order (a snapshot)."""
        with self._lock:
            return list(self._records)

    def counts(self) -> Counter[str | None]:
        """How many requests got each kind of fault (``None``: no fault)."""
        return Counter(record.kind for record in self.records)
