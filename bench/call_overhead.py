"""Per-call overhead of a generated predictor: format + LM interface + parse + validate.

The LM is sigforge.testing.ScriptedLM, which answers instantly in-process (no HTTP), and
the cache is off, so what is timed is sigforge's own work per call. Cases: Predict in the
chat and JSON formats with 0 and 3 demos, and ChainOfThought (chat, 0 demos), on the
generated `generated.qa` module. Each round times `--calls` calls; reported is the median
per-call time over `--rounds` rounds. Targets (foundation issue): Predict, chat format,
under 57 us with no demos and 93 us with three (1/10 of DSPy 3.4's 570 / 930 us here).

    python bench/call_overhead.py [--rounds 15] [--calls 2000]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _drivers import HISTORY_LIMIT, SIMPLE, chat_reply, demos, json_reply
from _stats import summary

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generated.qa import Answerer, AnswerQuestionInputs, QuickAnswer  # noqa: E402
from sigforge.runtime import configure  # noqa: E402
from sigforge.runtime.history import set_history_limit  # noqa: E402
from sigforge.testing import ScriptedLM  # noqa: E402

# the same replies and demos as DSPy gets in bench/run.py (bench/_drivers.py)
CHAT = chat_reply(SIMPLE)
COT = chat_reply(SIMPLE, reasoning=True)
JSON_REPLY = json_reply(SIMPLE)
DEMOS = demos(SIMPLE, 3, reasoning=False)
COT_DEMOS = demos(SIMPLE, 3, reasoning=True)


def case(
    make: Callable[[], Any], reply: str, inputs: dict[str, Any] = SIMPLE["inputs"]
) -> Callable[[], Any]:
    """One call of a fresh predictor from ``make``, answered by an instant ScriptedLM."""
    predictor = make()
    # the test LM keeps the requests it gets, for tests to inspect: only the last few here
    # (like the history), so that neither the time nor the memory measured is its record
    lm = ScriptedLM(lambda _request: reply, cache=False, keep_requests=HISTORY_LIMIT)
    predictor.lm = lm

    def call() -> Any:
        return predictor(**inputs)

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    configure(cache=False)
    set_history_limit(HISTORY_LIMIT)
    cases = {
        "predict/chat/0 demos": case(lambda: QuickAnswer(), CHAT),
        "predict/chat/3 demos": case(lambda: QuickAnswer(demos=DEMOS), CHAT),
        "predict/json/0 demos": case(lambda: QuickAnswer(adapter="json"), JSON_REPLY),
        "predict/json/3 demos": case(lambda: QuickAnswer(adapter="json", demos=DEMOS), JSON_REPLY),
        "cot/chat/0 demos": case(lambda: Answerer(), COT),
        "cot/chat/3 demos": case(lambda: Answerer(demos=COT_DEMOS), COT),
    }
    AnswerQuestionInputs(context=["x"], question="warm")
    for call in cases.values():  # warm-up
        for _ in range(200):
            call()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    gc.collect()
    for _ in range(args.rounds):
        for name, call in cases.items():
            start = time.perf_counter()
            for _ in range(args.calls):
                call()
            samples[name].append((time.perf_counter() - start) / args.calls * 1e6)
    stats = {name: summary(s) for name, s in samples.items()}
    targets = {"predict/chat/0 demos": 57.0, "predict/chat/3 demos": 93.0}
    for name, st in stats.items():
        target = targets.get(name)
        verdict = "" if target is None else f"  target < {target:.0f} us: {'met' if st['median'] < target else 'MISSED'}"
        print(f"{name:>22}: median {st['median']:6.1f} us/call (min {st['min']:.1f}, max {st['max']:.1f}){verdict}")
    print(json.dumps({"stats_us": stats, "targets_us": targets}))


if __name__ == "__main__":
    main()
