"""The instruction optimizers (COPRO, MIPROv2, GEPA) on the honest operator task.

The simulated LM (sigforge.testing.tasks) answers a question right only when its prompt's
instructions define the operator word or its demos reveal it; the proposer role writes
instructions from the examples, attempts and feedback its own prompt shows. So a dev-set
score can rise only through what the optimizers put into the prompts.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sigforge.runtime.errors import ConfigurationError
from sigforge.runtime.evaluate import Evaluate
from sigforge.runtime.example import Example
from sigforge.runtime.messages import LMRequest
from sigforge.runtime.module import Module, Program, load_program, save_program
from sigforge.runtime.optimizers._proposer import (
    Scorer,
    clean_instruction,
    example_text,
    program_outline,
)
from sigforge.runtime.optimizers.copro import COPRO
from sigforge.runtime.optimizers.gepa import GEPA, _Pool, auto_budget
from sigforge.runtime.optimizers.mipro import MIPROv2
from sigforge.testing import ScriptedLM
from sigforge.testing.tasks import OperatorTask, OperatorWorld, SolveAndCheck, task_module


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return task_module()


@pytest.fixture(scope="module")
def task() -> OperatorTask:
    return OperatorTask(seed=0)


@pytest.fixture(scope="module")
def trainset(task: OperatorTask) -> list[Example]:
    return task.trainset(24)


@pytest.fixture(scope="module")
def devset(task: OperatorTask) -> list[Example]:
    return task.devset(40)


@pytest.fixture(scope="module")
def valset(task: OperatorTask) -> list[Example]:
    return task.devset(60)[40:]  # disjoint from the devset and the trainset


@pytest.fixture
def world() -> OperatorWorld:
    return OperatorWorld()


def score(program: Any, devset: list[Example], task: OperatorTask) -> float:
    return Evaluate(devset, task.metric, num_threads=2, progress=False)(program).score


def state(program: Program) -> str:
    return json.dumps({n: p.dump_state() for n, p in program.named_predictors()}, sort_keys=True)


def instructions(program: Program) -> dict[str, str]:
    return {n: p.instructions for n, p in program.named_predictors()}


class Split(Module):
    """Two predictors, each answering the questions of half the operator words: both must
    learn for the program to score, and they learn independently (what GEPA merges)."""

    def __init__(self, lm: ScriptedLM) -> None:
        generated = task_module()
        self.low: Any = generated.Solve(lm=lm)
        self.high: Any = generated.Solve(lm=lm)

    def forward(self, *, question: str) -> Any:
        word = question.split()[3]
        return (self.low if word < "f" else self.high)(question=question)


def recorded(world: OperatorWorld, requests: list[LMRequest]) -> ScriptedLM:
    """An LM answering from ``world`` that keeps every request."""

    def respond(request: LMRequest) -> str:
        requests.append(request)
        return world.responder(request)

    return ScriptedLM(respond, model="recorded-world")


def user_text(request: LMRequest) -> str:
    return str(request.messages[-1]["content"])


# ---------------------------------------------------------------- COPRO


def test_copro_raises_the_score_within_its_call_budget(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], devset: list[Example],
    world: OperatorWorld,
) -> None:
    student = gen.Solve(lm=world.lm())
    before = state(student)
    baseline = score(student, devset, task)
    world.reset_counts()
    breadth, depth = 4, 3
    optimizer = COPRO(task.metric, breadth=breadth, depth=depth, prompt_model=world.lm(), num_threads=2)
    compiled = optimizer.compile(student, trainset=trainset)
    calls = world.calls
    optimized = score(compiled, devset, task)
    assert baseline < 0.1 and optimized > baseline + 0.5, (baseline, optimized)
    assert state(student) == before and student.optimization is None
    assert compiled is not student and type(compiled) is type(student)
    assert "means" in compiled.instructions and compiled.demos == []
    record = compiled.optimization
    assert record is not None and record["optimizer"] == "COPRO"
    # one predictor: breadth - 1 first proposals, then breadth per later round
    assert calls["proposer"] == (breadth - 1) + breadth * (depth - 1)
    # breadth candidates scored per round on the 24 training examples (at most: a
    # candidate met again is not run again), one solver call each
    assert record["total_calls"] == breadth * depth
    assert record["metric_calls"] == breadth * depth * len(trainset)
    assert calls["solver"] <= record["metric_calls"] and calls["solver"] % len(trainset) == 0
    assert calls["other"] == 0
    assert record["lm_calls"] == calls["proposer"] + calls["solver"]
    assert record["scores"]["baseline"] == 0.0
    assert record["scores"]["best"] == record["candidates"][0]["score"] > 0.5
    assert record["candidates"][0]["instruction"] == compiled.instructions
    scores = [c["score"] for c in record["candidates"]]
    assert scores == sorted(scores, reverse=True)
    assert "stats" not in record
    assert record["settings"] == {
        "metric": "OperatorTask.metric",
        "breadth": 4,
        "depth": 3,
        "init_temperature": 1.4,
        "prompt_model": "operator-world",
        "track_stats": False,
        "examples_shown": 5,
        "max_errors": None,
        "num_threads": 2,
    }


def test_copro_is_seeded_and_threads_change_nothing(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], world: OperatorWorld
) -> None:
    student = gen.Solve(lm=world.lm())

    def compile_with(**options: Any) -> Program:
        settings: dict[str, Any] = {"breadth": 3, "depth": 2, "prompt_model": world.lm(), **options}
        return COPRO(task.metric, **settings).compile(student, trainset=trainset)

    reference = compile_with(track_stats=True)
    again = compile_with(track_stats=True, num_threads=3)
    assert state(again) == state(reference)
    assert again.optimization is not None and reference.optimization is not None
    assert {k: v for k, v in again.optimization.items() if k != "settings"} == {
        k: v for k, v in reference.optimization.items() if k != "settings"
    }
    stats = reference.optimization["stats"]
    assert stats["results_latest"]["self"]["depth"] == [0, 1]
    assert stats["results_best"]["self"]["max"][-1] == reference.optimization["scores"]["best"]
    others = [compile_with(seed=seed) for seed in (1, 2, 3)]
    assert any(state(other) != state(reference) for other in others)


def test_copro_with_two_predictors_scores_every_candidate_again(
    task: OperatorTask, trainset: list[Example], valset: list[Example], devset: list[Example],
    world: OperatorWorld,
) -> None:
    student = SolveAndCheck(lm=world.lm())
    before = state(student)
    prompt_world = OperatorWorld()
    breadth, depth = 3, 2
    optimizer = COPRO(task.metric, breadth=breadth, depth=depth, prompt_model=prompt_world.lm())
    world.reset_counts()
    compiled = optimizer.compile(student, trainset=trainset, valset=valset)
    assert state(student) == before
    assert score(compiled, devset, task) > score(student, devset, task) + 0.3
    record = compiled.optimization
    assert record is not None
    # the prompt model writes every proposal, the task LM answers every question
    assert prompt_world.calls == {
        "solver": 0,
        "proposer": 2 * ((breadth - 1) + breadth * (depth - 1)),
        "other": 0,
    }
    assert world.calls["proposer"] == world.calls["other"] == 0
    # with several predictors every candidate so far is scored again each round
    assert record["total_calls"] == 2 * (breadth + 2 * breadth)
    assert record["metric_calls"] == record["total_calls"] * len(valset)
    assert world.calls["solver"] <= 2 * record["metric_calls"]  # two predictors per run
    assert {c["predictor"] for c in record["candidates"]} == {"solve", "check"}


def test_copro_shows_the_proposer_examples_and_attempts(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], world: OperatorWorld
) -> None:
    requests: list[LMRequest] = []
    optimizer = COPRO(task.metric, breadth=2, depth=2, prompt_model=recorded(world, requests))
    optimizer.compile(gen.Solve(lm=world.lm()), trainset=trainset)
    first, *later = requests
    assert "[[ ## basic_instruction ## ]]\nAnswer the arithmetic question." in user_text(first)
    assert sum(example_text(e) in user_text(first) for e in trainset) == 5
    assert first.params["temperature"] == 1.4 and first.rollout_id is not None
    assert len(later) == 2
    assert all("Instruction #1:" in user_text(r) and "Resulting score #2:" in user_text(r) for r in later)
    assert len({r.rollout_id for r in requests}) == 3


def test_copro_settings_are_checked(task: OperatorTask) -> None:
    with pytest.raises(ValueError, match="breadth"):
        COPRO(task.metric, breadth=1)
    with pytest.raises(ValueError, match="depth"):
        COPRO(task.metric, depth=0)
    with pytest.raises(ValueError, match="trainset"):
        COPRO(task.metric).compile(task_module().Solve(), trainset=[])


# ---------------------------------------------------------------- MIPROv2


def test_mipro_raises_the_score_within_its_call_budget(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], valset: list[Example],
    devset: list[Example], world: OperatorWorld,
) -> None:
    student = gen.Solve(lm=world.lm())
    before = state(student)
    baseline = score(student, devset, task)
    world.reset_counts()
    optimizer = MIPROv2(task.metric, auto="light", prompt_model=world.lm(), num_threads=2)
    plan = optimizer.planned(1, len(valset))
    # light, demos optimized: 6 demo sets, 3 instructions, trials = max(2*2*log2(6), 9)
    assert plan == {
        "num_trials": int(4 * math.log2(6)),
        "minibatch": False,
        "instruction_candidates": 3,
        "demo_candidates": 6,
        "valset_size": 20,
    }
    compiled = optimizer.compile(student, trainset=trainset, valset=valset)
    calls = world.calls
    optimized = score(compiled, devset, task)
    assert baseline < 0.1 and optimized > baseline + 0.5, (baseline, optimized)
    assert state(student) == before and student.optimization is None
    record = compiled.optimization
    assert record is not None and record["optimizer"] == "MIPROv2" and record["seed"] == 9
    trials = record["trials"]
    assert trials[0] == {"trial": 1, "kind": "full", "params": "student", "score": baseline}
    assert len(trials) == 1 + plan["num_trials"] and all(t["kind"] == "full" for t in trials)
    best = max(t["score"] for t in trials)
    assert record["scores"] == {"best": best, "baseline": baseline}
    chosen = record["best_params"]["self"]
    candidates = record["instruction_candidates"]["self"]
    assert compiled.instructions == candidates[chosen["instruction"]]
    assert len(compiled.demos) == record["demo_candidates"]["self"][chosen["demos"]]
    assert candidates[0] == student.instructions and len(candidates) == 3
    assert record["demo_candidates"]["self"][0] == 0  # set 0: no demos
    # prompt-model calls: 4 for the data summary (24 examples, batches of 10: one
    # description, two more, the summary), 2 describing the program and its predictor,
    # 2 proposals (candidate 0 is the instruction in use)
    assert calls["other"] == 4 + 2 and calls["proposer"] == 2
    # task calls: bootstrapping 4 of the 6 demo sets (at most the trainset each), then
    # the default program and every trial on the valset (at most)
    assert calls["solver"] <= 4 * len(trainset) + (1 + plan["num_trials"]) * len(valset)
    assert record["lm_calls"] == sum(calls.values())


def test_mipro_minibatches_with_periodic_full_evaluations(
    task: OperatorTask, trainset: list[Example], valset: list[Example], devset: list[Example],
    world: OperatorWorld,
) -> None:
    student = SolveAndCheck(lm=world.lm())
    before = state(student)

    def compile_with(**options: Any) -> Program:
        optimizer = MIPROv2(
            task.metric,
            auto=None,
            num_candidates=5,
            num_trials=9,
            minibatch_size=8,
            minibatch_full_eval_steps=3,
            prompt_model=world.lm(),
            **options,
        )
        return optimizer.compile(student, trainset=trainset, valset=valset)

    world.reset_counts()
    compiled = compile_with()
    calls = world.calls
    assert state(student) == before
    assert score(compiled, devset, task) > score(student, devset, task) + 0.5
    record = compiled.optimization
    assert record is not None and record["minibatch"] is True
    kinds = [t["kind"] for t in record["trials"]]
    # DSPy's schedule: a full evaluation after every 3 minibatch trials, and one at the end
    assert kinds == ["full"] + (["minibatch"] * 3 + ["full"]) * 3
    assert [t["trial"] for t in record["trials"]] == list(range(1, 14))
    full = [t for t in record["trials"][1:] if t["kind"] == "full"]
    assert all("minibatch_mean" in t for t in full)
    assert record["scores"]["best"] == max(t["score"] for t in record["trials"] if t["kind"] == "full")
    chosen = record["best_params"]
    assert set(chosen) == {"solve", "check"}
    assert instructions(compiled) == {
        name: record["instruction_candidates"][name][chosen[name]["instruction"]]
        for name in ("solve", "check")
    }
    # task calls: 3 of the 5 demo sets bootstrapped (24 runs at most, 2 calls each), the
    # default and 3 full evaluations on the valset, 9 minibatches of 8, 2 calls per run
    assert calls["solver"] <= 2 * (3 * len(trainset) + 4 * len(valset) + 9 * 8)
    assert calls["proposer"] == 2 * (5 - 1)
    again = compile_with(num_threads=3)
    assert state(again) == state(compiled)
    assert again.optimization is not None
    assert again.optimization["trials"] == record["trials"]


def test_mipro_instructions_only(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], valset: list[Example],
    world: OperatorWorld,
) -> None:
    # with no demos kept, demo sets of 3 bootstrapped demos only inform the proposer;
    # a labeled teacher (a compiled program) makes bootstrapping succeed here
    from sigforge.runtime.optimizers import LabeledFewShot

    student = gen.Solve(lm=world.lm())
    teacher = LabeledFewShot(k=12).compile(student, trainset=trainset)
    requests: list[LMRequest] = []
    optimizer = MIPROv2(
        task.metric,
        auto=None,
        num_candidates=4,
        num_trials=6,
        max_bootstrapped_demos=0,
        max_labeled_demos=0,
        minibatch=False,
        prompt_model=recorded(world, requests),
    )
    compiled = optimizer.compile(student, trainset=trainset, valset=valset, teacher=teacher)
    assert compiled.demos == []
    record = compiled.optimization
    assert record is not None
    assert all("demos" not in t["params"]["self"] for t in record["trials"][1:])
    assert record["scores"]["best"] > record["scores"]["baseline"]
    proposals = [r for r in requests if "proposed_instruction" in str(r.messages[0]["content"])]
    assert len(proposals) == 3
    # the proposer saw bootstrapped demos (question and answer lines) and a tip
    assert all("question: What is" in user_text(r) for r in proposals)
    assert all("[[ ## tip ## ]]" in user_text(r) for r in proposals)


def test_mipro_settings_are_checked(gen: ModuleType, task: OperatorTask, trainset: list[Example]) -> None:
    with pytest.raises(ValueError, match="auto=None"):
        MIPROv2(task.metric, auto=None, num_candidates=3)
    with pytest.raises(ValueError, match="sets num_candidates"):
        MIPROv2(task.metric, num_candidates=3)
    with pytest.raises(ValueError, match="auto must be"):
        MIPROv2(task.metric, auto="huge")  # type: ignore[arg-type]
    optimizer = MIPROv2(task.metric, auto=None, num_candidates=3, num_trials=2, minibatch_size=35)
    with pytest.raises(ValueError, match="minibatch_size=35 is larger than the valset"):
        optimizer.compile(gen.Solve(), trainset=trainset[:10], valset=trainset[10:20])
    with pytest.raises(ValueError, match="at least 2 examples"):
        optimizer.compile(gen.Solve(), trainset=trainset[:1])


def test_mipro_without_optuna_fails_before_any_call(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], world: OperatorWorld,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` raises ImportError
    optimizer = MIPROv2(task.metric, prompt_model=world.lm())
    with pytest.raises(ConfigurationError, match=r"pip install 'sigforge\[optimize\]'"):
        optimizer.compile(gen.Solve(lm=world.lm()), trainset=trainset)
    assert world.total_calls == 0


# ---------------------------------------------------------------- GEPA


def test_gepa_raises_the_score_within_its_budget(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], valset: list[Example],
    devset: list[Example], world: OperatorWorld,
) -> None:
    student = gen.Solve(lm=world.lm())
    before = state(student)
    baseline = score(student, devset, task)
    world.reset_counts()
    budget = 200
    optimizer = GEPA(task.metric, max_metric_calls=budget, reflection_lm=world.lm(), num_threads=2)
    compiled = optimizer.compile(student, trainset=trainset, valset=valset)
    calls = world.calls
    optimized = score(compiled, devset, task)
    assert baseline < 0.1 and optimized > baseline + 0.6, (baseline, optimized)
    assert state(student) == before and student.optimization is None
    record = compiled.optimization
    assert record is not None and record["optimizer"] == "GEPA"
    # the budget: an iteration started within it finishes (two minibatches of 3 and a
    # full valset evaluation at most)
    assert budget <= record["metric_calls"] <= budget + 2 * 3 + len(valset)
    assert calls["solver"] <= record["metric_calls"]
    assert calls["proposer"] == record["proposals"] and calls["other"] == 0
    assert record["lm_calls"] == calls["solver"] + calls["proposer"]
    candidates = record["candidates"]
    assert candidates[0] == {
        "instructions": {"self": student.instructions},
        "parents": [],
        "score": score(student, valset, task),
        "discovered_at": 0,
    }
    # lineage: every candidate descends from earlier ones and was found later
    for index, candidate in enumerate(candidates[1:], 1):
        assert candidate["parents"] and all(p < index for p in candidate["parents"])
        assert candidate["discovered_at"] > candidates[index - 1]["discovered_at"]
    best = record["best_candidate"]
    assert candidates[best]["score"] == record["scores"]["best"] == max(c["score"] for c in candidates)
    assert instructions(compiled) == candidates[best]["instructions"]
    # the frontier: per validation example, the candidates best on it
    assert len(record["frontier"]) == len(valset)
    assert all(front and all(0 <= i < len(candidates) for i in front) for front in record["frontier"])
    assert any(best in front for front in record["frontier"])


def test_gepa_reflects_on_the_metrics_feedback(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], valset: list[Example],
    world: OperatorWorld,
) -> None:
    requests: list[LMRequest] = []
    optimizer = GEPA(task.metric, max_metric_calls=60, reflection_lm=recorded(world, requests))
    optimizer.compile(gen.Solve(lm=world.lm()), trainset=trainset, valset=valset)
    assert requests
    first = user_text(requests[0])
    assert "[[ ## current_instruction ## ]]\nAnswer the arithmetic question." in first
    assert "# Example 1\n## Inputs\n### question\nWhat is " in first
    assert "## Generated Outputs\n### answer\n" in first
    assert "## Feedback\nexpected " in first  # the Score's feedback, word for word
    assert len({r.rollout_id for r in requests}) == len(requests)


def test_gepa_without_feedback_reflects_on_the_score(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], world: OperatorWorld
) -> None:
    def plain(example: Example, prediction: Any) -> bool:
        return bool(prediction.answer == example["answer"])

    requests: list[LMRequest] = []
    optimizer = GEPA(plain, max_metric_calls=30, reflection_lm=recorded(world, requests))
    compiled = optimizer.compile(gen.Solve(lm=world.lm()), trainset=trainset)
    assert requests
    assert "## Feedback\nThis answer scored 0.0 (no feedback was given)." in user_text(requests[0])
    assert compiled.optimization is not None
    assert compiled.optimization["settings"]["metric"].endswith("plain")


def test_gepa_merges_what_two_lineages_learned(
    task: OperatorTask, trainset: list[Example], valset: list[Example], devset: list[Example],
    world: OperatorWorld,
) -> None:
    student = Split(world.lm())
    optimizer = GEPA(task.metric, max_metric_calls=400, reflection_lm=world.lm(), seed=8)
    compiled = optimizer.compile(student, trainset=trainset, valset=valset)
    assert score(compiled, devset, task) > score(student, devset, task) + 0.6
    record = compiled.optimization
    assert record is not None
    assert record["merges"]["accepted"] >= 1
    candidates = record["candidates"]
    merged = [(i, c) for i, c in enumerate(candidates) if len(c["parents"]) == 2]
    assert merged
    for _, candidate in merged:
        first, second = (candidates[p]["instructions"] for p in candidate["parents"])
        # each predictor's instruction comes from one of the two parents, and the merge
        # takes something from each of them
        for name, text in candidate["instructions"].items():
            assert text in (first[name], second[name])
        assert candidate["instructions"] != first and candidate["instructions"] != second


def test_gepa_is_seeded_and_threads_change_nothing(
    task: OperatorTask, trainset: list[Example], valset: list[Example], world: OperatorWorld
) -> None:
    student = SolveAndCheck(lm=world.lm())

    def compile_with(**options: Any) -> Program:
        optimizer = GEPA(task.metric, max_metric_calls=150, reflection_lm=world.lm(), **options)
        return optimizer.compile(student, trainset=trainset, valset=valset)

    reference = compile_with()
    threaded = compile_with(num_threads=4)
    assert state(threaded) == state(reference)
    assert threaded.optimization is not None and reference.optimization is not None
    assert {k: v for k, v in threaded.optimization.items() if k != "settings"} == {
        k: v for k, v in reference.optimization.items() if k != "settings"
    }
    others = [compile_with(seed=seed) for seed in (1, 2, 3)]
    assert any(
        o.optimization is not None
        and o.optimization["candidates"] != reference.optimization["candidates"]
        for o in others
    )


def test_gepa_current_best_selection_and_auto_budget(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], world: OperatorWorld
) -> None:
    optimizer = GEPA(task.metric, auto="light", candidate_selection="current_best", reflection_lm=world.lm())
    # DSPy's estimate for one predictor, 6 candidates, the 24 training examples as valset
    trials = int(max(2 * 2 * math.log2(6), 9))
    assert optimizer.budget(1, 24, None) == auto_budget(1, 6, 24) == (
        24 + 6 * 5 + trials * 35 + ((trials + 1) // 5 + 1) * 24
    )
    assert GEPA(task.metric, max_full_evals=3).budget(2, 24, 20) == 3 * 44
    compiled = optimizer.compile(gen.Solve(lm=world.lm()), trainset=trainset)
    record = compiled.optimization
    assert record is not None and record["budget"] == optimizer.budget(1, 24, None)
    assert record["scores"]["best"] > 0.8 and "valset_size" not in record  # the trainset served
    # current_best reflects on the best candidate so far (the first of equals)
    candidates = record["candidates"]
    assert len(candidates) > 1
    for index, candidate in enumerate(candidates[1:], 1):
        earlier = [c["score"] for c in candidates[:index]]
        assert candidate["parents"] == [earlier.index(max(earlier))]


def test_gepa_settings_are_checked(task: OperatorTask) -> None:
    with pytest.raises(ValueError, match="exactly one budget"):
        GEPA(task.metric)
    with pytest.raises(ValueError, match="exactly one budget"):
        GEPA(task.metric, auto="light", max_metric_calls=10)
    with pytest.raises(ValueError, match="candidate_selection"):
        GEPA(task.metric, max_metric_calls=10, candidate_selection="best")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="trainset"):
        GEPA(task.metric, max_metric_calls=10).compile(task_module().Solve(), trainset=[])


def test_pareto_frontier_drops_dominated_candidates() -> None:
    from sigforge.runtime.optimizers.gepa import _Candidate

    pool = _Pool()
    pool.add(_Candidate({"p": "a"}, [], [1.0, 0.0, 0.0], 0))
    pool.add(_Candidate({"p": "b"}, [0], [1.0, 1.0, 0.0], 1))  # dominates 0
    pool.add(_Candidate({"p": "c"}, [0], [0.0, 0.0, 1.0], 2))
    assert pool.front == [{0, 1}, {1}, {2}]
    assert sorted(pool.dominators()) == [1, 2]
    import random

    rng = random.Random(0)
    draws = [pool.pareto_choice(rng) for _ in range(300)]
    assert set(draws) == {1, 2}
    assert 1.5 < draws.count(1) / draws.count(2) < 2.7  # best on two examples vs one
    assert pool.best_index() == 1


# ---------------------------------------------------------------- shared


@pytest.mark.parametrize("kind", ["copro", "mipro", "gepa"])
def test_records_are_saved_and_loaded(
    kind: str, gen: ModuleType, task: OperatorTask, trainset: list[Example],
    valset: list[Example], world: OperatorWorld, tmp_path: Path,
) -> None:
    student = gen.Solve(lm=world.lm())
    compiled: Program
    if kind == "copro":
        compiled = COPRO(task.metric, breadth=2, depth=1, prompt_model=world.lm()).compile(
            student, trainset=trainset
        )
    elif kind == "mipro":
        compiled = MIPROv2(
            task.metric, auto=None, num_candidates=3, num_trials=3, minibatch=False,
            prompt_model=world.lm(),
        ).compile(student, trainset=trainset, valset=valset)
    else:
        compiled = GEPA(task.metric, max_metric_calls=60, reflection_lm=world.lm()).compile(
            student, trainset=trainset, valset=valset
        )
    path = tmp_path / f"{kind}.json"
    save_program(compiled, path)
    fresh = gen.Solve(lm=world.lm())
    load_program(fresh, path)
    assert state(fresh) == state(compiled)
    assert fresh.optimization == compiled.optimization
    assert json.loads(path.read_text())["optimization"]["optimizer"] == type_name(kind)


def type_name(kind: str) -> str:
    return {"copro": "COPRO", "mipro": "MIPROv2", "gepa": "GEPA"}[kind]


def test_progress_bars_on_request(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], world: OperatorWorld,
    capsys: pytest.CaptureFixture[str],
) -> None:
    GEPA(task.metric, max_metric_calls=40, reflection_lm=world.lm(), progress=True).compile(
        gen.Solve(lm=world.lm()), trainset=trainset
    )
    COPRO(task.metric, breadth=2, depth=1, prompt_model=world.lm(), progress=True).compile(
        gen.Solve(lm=world.lm()), trainset=trainset
    )
    err = capsys.readouterr().err
    assert "GEPA: metric calls" in err and "COPRO" in err
    GEPA(task.metric, max_metric_calls=40, reflection_lm=world.lm(), progress=False).compile(
        gen.Solve(lm=world.lm()), trainset=trainset
    )
    assert capsys.readouterr().err == ""


def test_the_prompt_model_defaults_to_the_configured_lm(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], world: OperatorWorld
) -> None:
    from sigforge.runtime import context

    prompt_world = OperatorWorld()
    with context(lm=prompt_world.lm()):
        COPRO(task.metric, breadth=2, depth=1).compile(gen.Solve(lm=world.lm()), trainset=trainset)
    assert prompt_world.calls["proposer"] == 1 and prompt_world.calls["solver"] == 0
    assert world.calls["proposer"] == 0


def test_scorer_runs_each_candidate_and_example_once(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], world: OperatorWorld
) -> None:
    scorer = Scorer(task.metric, num_threads=2)
    program = gen.Solve(lm=world.lm())
    examples = [trainset[0], trainset[1], trainset[0]]
    outcomes = scorer.outcomes(program, examples)
    assert world.calls["solver"] == 2 and scorer.runs == 2 and scorer.metric_calls == 3
    assert outcomes[0] == outcomes[2]
    assert outcomes[0].steps[0].predictor == "self"
    assert outcomes[0].score.feedback.startswith("expected ")
    copy = program.deepcopy()
    assert scorer.score(copy, trainset[:2]) == 0.0 and world.calls["solver"] == 2
    copy.instructions = task.instructions()
    assert scorer.score(copy, trainset[:2]) == 1.0 and world.calls["solver"] == 4


def test_clean_instruction_and_program_outline(gen: ModuleType) -> None:
    assert clean_instruction('  "Add the numbers."  ') == "Add the numbers."
    assert clean_instruction("Proposed Instruction: Add them.") == "Add them."
    assert clean_instruction("**New instruction:** Add them.") == "Add them."
    assert clean_instruction("```text\nAdd them.\nCarefully.\n```") == "Add them.\nCarefully."
    assert clean_instruction("Follow these instructions: add.") == "Follow these instructions: add."
    outline = program_outline(SolveAndCheck())
    assert "class SolveAndCheck(Module):" in outline and "def forward" in outline
    assert "solve = Solve: predict(SolveOperator)(question: str) -> answer: int" in outline
    assert "check = Check: predict(CheckAnswer)(question: str, proposed: int) -> answer: int" in outline
    single = program_outline(gen.SolveStepByStep())
    assert single.startswith("Language-model calls:\nself = SolveStepByStep: chain_of_thought(")
