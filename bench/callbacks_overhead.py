"""Cost of the callback dispatch functions per predictor call, with and without callbacks.

One predictor call dispatches four times: ``module_started`` / ``module_ended`` around
it and ``lm_requested`` / ``lm_responded`` around its LM call. Timed per such quartet:

* ``baseline``: four calls of an empty Python function with the same arguments (what
  any hook point costs at all);
* ``no callbacks``: the real dispatch functions with nothing registered: the case every
  user without callbacks pays for, and the one that must cost next to nothing;
* ``one no-op callback``: a registered ``Callback`` whose hooks do nothing (ids,
  call records and the parent context variable are made).

Each round times ``--calls`` quartets of every case in turn (so machine noise hits all
cases alike); reported is the median time per quartet over ``--rounds`` rounds, and the
no-callbacks case minus the baseline.

    python bench/callbacks_overhead.py [--rounds 15] [--calls 20000]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable

from _stats import summary
from pydantic import BaseModel

from sigforge.runtime.callbacks import (
    Callback,
    lm_requested,
    lm_responded,
    module_ended,
    module_started,
)
from sigforge.runtime.messages import Completion, LMRequest, Usage
from sigforge.runtime.settings import configure


class Inputs(BaseModel):
    question: str


class Outputs(BaseModel):
    answer: str


INPUTS = Inputs(question="Who wrote Dune?")
OUTPUTS = Outputs(answer="Frank Herbert")
REQUEST = LMRequest(({"role": "user", "content": "Who wrote Dune?"},))
COMPLETION = Completion("Frank Herbert", Usage(12, 3), "gpt-4o-mini", "stop")


def empty(*_args: object) -> None:
    return None


def baseline() -> None:
    call = empty("Answerer", "AnswerQuestion", INPUTS)
    lm_call = empty("gpt-4o-mini", "openai", REQUEST)
    empty(lm_call, COMPLETION, None)
    empty(call, OUTPUTS, None)


def dispatch() -> None:
    call = module_started("Answerer", "AnswerQuestion", INPUTS)
    lm_call = lm_requested("gpt-4o-mini", "openai", REQUEST)
    lm_responded(lm_call, COMPLETION, None)
    module_ended(call, OUTPUTS, None)


def timed(function: Callable[[], None], calls: int) -> float:
    """Nanoseconds per call of ``function``, over ``calls`` calls."""
    gc.collect()
    gc.disable()
    start = time.perf_counter()
    for _ in range(calls):
        function()
    elapsed = time.perf_counter() - start
    gc.enable()
    return elapsed / calls * 1e9




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()

    cases: dict[str, tuple[list[Callback] | None, Callable[[], None]]] = {
        "baseline": (None, baseline),
        "no callbacks": ([], dispatch),
        "one no-op callback": ([Callback()], dispatch),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, (callbacks, function) in cases.items():
            configure(callbacks=callbacks or [])
            samples[name].append(timed(function, args.calls))
    configure(callbacks=[])
    results = {name: summary(values) for name, values in samples.items()}

    print(f"per predictor call (4 dispatches), median of {args.rounds} rounds x {args.calls}:")
    for name, stats in results.items():
        print(f"  {name:<20} {stats['median']:8.0f} ns  (min {stats['min']:.0f}, max {stats['max']:.0f})")
    extra = results["no callbacks"]["median"] - results["baseline"]["median"]
    print(f"  no callbacks - baseline: {extra:.0f} ns per predictor call")
    print(json.dumps({k: v["median"] for k, v in results.items()}))


if __name__ == "__main__":
    main()
