"""Evaluate(executor="ray") on a local Ray instance that these tests start (one per module).

The program is the generated ``QuickAnswer`` predictor over the scripted task of
tests/test_evaluate.py, run by Ray workers (separate processes): over a ``ScriptedLM``
and over HTTP against the loopback OpenAI-compatible server. Results must equal the
local executor's. Without Ray the tests skip locally and FAIL in CI (``CI=true``),
where ``pip install -e '.[dev]'`` installs it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_evaluate
from support import ROOT
from test_evaluate import (
    DEVSET,
    METRIC,
    SCORE,
    Counting,
    Interrupted,
    essentials,
    finished_indices,
    program,
    respond_http,
)

from generated.qa import AnswerQuestionOutputs, QuickAnswer
from sigforge.runtime import LM, configure
from sigforge.runtime.evaluate import (
    Evaluate,
    EvaluationError,
    EvaluationResult,
    TooManyErrorsError,
)
from sigforge.runtime.example import Example
from sigforge.testing import OpenAICompatServer

MISSING = None
if importlib.util.find_spec("ray") is None:
    MISSING = "ray is not installed (pip install -e '.[dev]' or '.[ray]')"


def require_ray() -> None:
    if MISSING is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{MISSING}: CI must run the Ray tests")
    pytest.skip(MISSING)


@pytest.fixture(scope="module", autouse=True)
def ray_session() -> Iterator[None]:
    """One local Ray instance for the module; workers run this module's helpers by value."""
    require_ray()
    import ray
    from ray import cloudpickle

    # Workers can import the project (their working directory is the driver's) but not
    # the tests folder; ship the scripted task's code with the program instead.
    cloudpickle.register_pickle_by_value(test_evaluate)  # type: ignore[no-untyped-call]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        cloudpickle.unregister_pickle_by_value(test_evaluate)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def reference() -> EvaluationResult[AnswerQuestionOutputs]:
    return Evaluate(DEVSET, METRIC, num_threads=1)(program())


def test_ray_gives_the_local_results_in_devset_order(
    reference: EvaluationResult[AnswerQuestionOutputs], capsys: pytest.CaptureFixture[str]
) -> None:
    import ray

    assert ray.is_initialized()
    evaluate = Evaluate(
        DEVSET, METRIC, executor="ray", num_threads=2, ray_batch_size=5, progress=True
    )
    result = evaluate(program())
    assert essentials(result) == essentials(reference)
    assert result.score == pytest.approx(SCORE) and result.errors == 2
    assert result.results[5].error is not None
    assert result.results[5].error.startswith("OutputParseError: ")
    err = capsys.readouterr().err
    assert "12/12" in err and "score 66.7%" in err


def test_examples_run_in_ray_workers_in_batches() -> None:
    class WhereAmI(Counting):
        def forward(self, *, context: list[str], question: str) -> AnswerQuestionOutputs:
            out = super().forward(context=context, question=question)
            return out.model_copy(update={"answer": f"{os.getpid()}:{threading.get_ident()}"})

    def metric(example: Example, prediction: AnswerQuestionOutputs) -> float:
        return 1.0

    result = Evaluate(DEVSET, metric, executor="ray", num_threads=1, ray_batch_size=4)(WhereAmI())
    places = [r.prediction.answer for r in result.results if r.prediction is not None]
    pids = {place.split(":")[0] for place in places}
    assert str(os.getpid()) not in pids  # not in this process
    # batches of 4 on one thread each: each batch's examples share a worker thread
    for start in range(0, 12, 4):
        batch = {r.prediction.answer for r in result.results[start : start + 4] if r.prediction}
        assert len(batch) == 1


def test_ray_over_http_with_the_configured_lm(
    reference: EvaluationResult[AnswerQuestionOutputs],
) -> None:
    with OpenAICompatServer(respond_http, max_lifetime=120) as server:
        lm = LM("openai/gpt-4o-mini", base_url=server.base_url, api_key="sk-test", cache=False)
        try:
            QuickAnswer(lm=lm)(context=["warm-up"], question="Is this LM in use?")
            configure(lm=lm)  # used, with open connections: workers get a fresh copy
            result = Evaluate(DEVSET, METRIC, executor="ray", num_threads=3, ray_batch_size=4)(
                QuickAnswer()
            )
        finally:
            lm.close()
        assert essentials(result) == essentials(reference)
        assert not server.violations
        asked = [str(r.messages[-1]["content"]) for r in server.requests]
        for example in DEVSET:
            assert any(example.inputs["question"] in text for text in asked)
        assert all(r.headers.get("authorization") == "Bearer sk-test" for r in server.requests)


def test_a_metric_error_in_a_worker_is_raised_here() -> None:
    def broken(example: Example, prediction: AnswerQuestionOutputs) -> float:
        if prediction.answer == "Tokyo":
            raise LookupError(f"no score for {prediction.answer}")
        return 1.0

    with pytest.raises(LookupError, match="no score for Tokyo") as caught:
        Evaluate(DEVSET, broken, executor="ray", ray_batch_size=3)(program())
    assert "raised by the metric broken on example 1 (id 'c1')" in caught.value.__notes__


def test_a_program_that_cannot_be_pickled_is_a_clear_error() -> None:
    class Streaming(Counting):
        def __init__(self) -> None:
            super().__init__()
            self.log = (line for line in ["a", "b"])  # generators do not pickle

    with pytest.raises(EvaluationError) as caught:
        Evaluate(DEVSET, METRIC, executor="ray")(Streaming())
    message = str(caught.value)
    assert "sends the program to Ray workers by pickling it, but it cannot be pickled" in message
    assert "generator" in message and "executor='threads'" in message

    lines = (line for line in ["a"])

    def reading(example: Example, prediction: AnswerQuestionOutputs) -> float:
        return float(next(lines, "") == example.id)

    with pytest.raises(EvaluationError, match="sends the metric to Ray workers"):
        Evaluate(DEVSET, reading, executor="ray")(program())


def test_max_errors_and_resume_across_executors(
    reference: EvaluationResult[AnswerQuestionOutputs], tmp_path: Path
) -> None:
    path = tmp_path / "run.jsonl"
    with pytest.raises(TooManyErrorsError, match="max_errors=1") as caught:
        Evaluate(
            DEVSET, METRIC, executor="ray", ray_batch_size=6, num_threads=1, max_errors=1,
            results_path=path,
        )(program())  # fmt: skip
    done = finished_indices(path)
    assert sorted(r.index for r in caught.value.results) == sorted(done)
    # the batch with the first error to come back was recorded whole; the other cancelled
    assert set(done) in (set(range(6)), set(range(6, 12)))
    counting = Counting()
    resumed = Evaluate(DEVSET, METRIC, results_path=path, resume=True)(counting)
    assert sorted(counting.asked) == sorted(
        e.inputs["question"] for i, e in enumerate(DEVSET) if i not in done
    )
    assert essentials(resumed) == essentials(reference)

    # and the other way round: interrupted locally, finished on Ray
    local = tmp_path / "local.jsonl"
    with pytest.raises(KeyboardInterrupt):
        Evaluate(DEVSET, METRIC, num_threads=1, results_path=local)(Interrupted(4))
    assert finished_indices(local) == [0, 1, 2, 3]
    on_ray = Evaluate(DEVSET, METRIC, executor="ray", results_path=local, resume=True)(program())
    assert essentials(on_ray) == essentials(reference)
    assert sorted(finished_indices(local)) == list(range(12))


AUTO_START = """
import json, sys
import ray
from test_evaluate import DEVSET, METRIC, program
from sigforge.runtime.evaluate import Evaluate

assert not ray.is_initialized()
result = Evaluate(DEVSET, METRIC, executor="ray")(program())
print(json.dumps({"started": ray.is_initialized(), "score": result.score, "errors": result.errors}))
ray.shutdown()
"""


def test_without_a_session_a_local_instance_is_started() -> None:
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"} | {
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])
    }
    done = subprocess.run(
        [sys.executable, "-c", AUTO_START], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"started": True, "score": pytest.approx(SCORE), "errors": 2}
