"""Few-shot optimizers on the honest operator task (sigforge.testing.tasks).

The simulated LM learns an operator word only from what its prompt shows, so a dev-set
score can rise only through the demos an optimizer chose.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sigforge.runtime import ServerError
from sigforge.runtime.evaluate import Evaluate
from sigforge.runtime.example import Example
from sigforge.runtime.messages import LMRequest
from sigforge.runtime.metrics import Score
from sigforge.runtime.module import Program, load_program
from sigforge.runtime.optimizers import (
    BootstrapFewShot,
    BootstrapFewShotWithRandomSearch,
    Ensemble,
    EnsembleProgram,
    LabeledFewShot,
    OptimizerError,
    majority,
)
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


@pytest.fixture
def world() -> OperatorWorld:
    return OperatorWorld()


def score(program: Any, devset: list[Example], task: OperatorTask) -> float:
    return Evaluate(devset, task.metric, num_threads=2, progress=False)(program).score


def state(program: Program) -> str:
    return json.dumps({n: p.dump_state() for n, p in program.named_predictors()}, sort_keys=True)


def demos_of(program: Program) -> dict[str, list[dict[str, Any]]]:
    return {n: [dict(d.values) for d in p.demos] for n, p in program.named_predictors()}


# ---------------------------------------------------------------- LabeledFewShot


def test_labeled_few_shot_raises_the_score(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], devset: list[Example],
    world: OperatorWorld,
) -> None:
    student = gen.Solve(lm=world.lm())
    before = state(student)
    baseline = score(student, devset, task)
    compiled = LabeledFewShot(k=16).compile(student, trainset=trainset)
    optimized = score(compiled, devset, task)
    assert baseline < 0.1 and optimized > baseline + 0.6, (baseline, optimized)
    assert state(student) == before and student.optimization is None
    assert compiled is not student and type(compiled) is type(student)
    assert len(compiled.demos) == 16
    assert compiled.optimization == {
        "optimizer": "LabeledFewShot",
        "settings": {"k": 16, "sample": True},
        "seed": 0,
        "scores": {},
        "lm_calls": 0,
        "cached_lm_calls": 0,
        "trainset_size": 24,
    }
    again = LabeledFewShot(k=16).compile(student, trainset=trainset)
    assert state(again) == state(compiled)
    assert state(LabeledFewShot(k=16, seed=1).compile(student, trainset=trainset)) != state(compiled)
    first = LabeledFewShot(k=3, sample=False).compile(student, trainset=trainset)
    assert demos_of(first)["self"] == [e.to_dict() for e in trainset[:3]]


def test_labeled_demos_keep_each_predictors_own_fields(
    task: OperatorTask, trainset: list[Example], world: OperatorWorld
) -> None:
    compiled = LabeledFewShot(k=4).compile(SolveAndCheck(lm=world.lm()), trainset=trainset)
    demos = demos_of(compiled)
    assert all(set(d) == {"question", "answer"} for d in demos["solve"])
    # `check` also takes `proposed`, which examples do not have: partial demos
    assert all(set(d) == {"question", "answer"} for d in demos["check"])
    assert len(demos["solve"]) == len(demos["check"]) == 4
    # examples with none of a predictor's inputs give it no demo
    only_labels = [Example({"other": 1}, {"answer": 3})]
    assert demos_of(LabeledFewShot(k=4).compile(SolveAndCheck(), trainset=only_labels)) == {
        "solve": [],
        "check": [],
    }


# ---------------------------------------------------------------- BootstrapFewShot


def test_bootstrap_raises_the_score_with_traced_reasoning(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], devset: list[Example],
    world: OperatorWorld,
) -> None:
    student = gen.SolveStepByStep(lm=world.lm())
    before = state(student)
    baseline = score(student, devset, task)
    world.reset_counts()
    optimizer = BootstrapFewShot(task.metric, max_bootstrapped_demos=4, max_labeled_demos=8)
    compiled = optimizer.compile(student, trainset=trainset)
    calls = world.total_calls
    optimized = score(compiled, devset, task)
    assert baseline < 0.1 and optimized > baseline + 0.5, (baseline, optimized)
    assert state(student) == before
    demos = demos_of(compiled)["self"]
    assert len(demos) == 8
    # the first four are the teacher's traces, with the reasoning it produced
    assert all("means" in d["reasoning"] and "from the examples" in d["reasoning"] for d in demos[:4])
    assert all("reasoning" not in d for d in demos[4:])  # then labeled demos
    record = compiled.optimization
    assert record is not None
    assert record["optimizer"] == "BootstrapFewShot"
    assert record["settings"]["metric"] == "OperatorTask.metric"
    assert record["stats"]["bootstrapped"] == 4
    assert record["lm_calls"] == calls == record["stats"]["rounds_run"]
    assert record["trainset_size"] == 24


def test_bootstrap_is_seeded_and_threads_change_nothing(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], world: OperatorWorld
) -> None:
    student = gen.Solve(lm=world.lm())

    def compile_with(**options: Any) -> Program:
        optimizer = BootstrapFewShot(task.metric, max_bootstrapped_demos=3, max_labeled_demos=10, **options)
        return optimizer.compile(student, trainset=trainset)

    reference = compile_with()
    assert state(compile_with()) == state(reference)
    threaded = compile_with(num_threads=4)
    assert state(threaded) == state(reference)
    assert reference.optimization is not None and threaded.optimization is not None
    assert threaded.optimization["lm_calls"] == reference.optimization["lm_calls"]
    assert threaded.optimization["stats"] == reference.optimization["stats"]
    assert state(compile_with(seed=7)) != state(reference)  # another labeled sample


def test_bootstrap_two_predictor_module(
    task: OperatorTask, trainset: list[Example], devset: list[Example], world: OperatorWorld
) -> None:
    student = SolveAndCheck(lm=world.lm())
    before = state(student)
    baseline = score(student, devset, task)
    compiled = BootstrapFewShot(task.metric, max_bootstrapped_demos=4, max_labeled_demos=6).compile(
        student, trainset=trainset
    )
    optimized = score(compiled, devset, task)
    assert baseline < 0.1 and optimized > baseline + 0.5, (baseline, optimized)
    assert state(student) == before
    assert isinstance(compiled, SolveAndCheck) and compiled.solve is not student.solve
    demos = demos_of(compiled)
    # traced demos go to the predictor that made them, with its own fields
    assert all(set(d) == {"question", "answer"} for d in demos["solve"][:4])
    assert all(set(d) == {"question", "proposed", "answer"} for d in demos["check"][:4])
    assert [d["question"] for d in demos["solve"][:4]] == [d["question"] for d in demos["check"][:4]]
    assert len(demos["solve"]) == len(demos["check"]) == 6


def test_teacher_runs_never_see_their_own_example(
    gen: ModuleType, task: OperatorTask, world: OperatorWorld
) -> None:
    # one example per word: an example's only evidence is its own labeled demo
    words = sorted(task.meanings)
    trainset = [task.example(word, 7, 3) for word in words]
    compiled = BootstrapFewShot(task.metric, max_labeled_demos=4).compile(
        gen.Solve(lm=world.lm()), trainset=trainset
    )
    assert compiled.optimization is not None
    assert compiled.optimization["stats"]["bootstrapped"] == 0
    assert len(compiled.demos) == 4  # labeled demos only


def test_a_given_teacher_bootstraps_for_the_student(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], devset: list[Example],
    world: OperatorWorld,
) -> None:
    lm = world.lm()
    student = gen.Solve(lm=lm)
    alone = BootstrapFewShot(task.metric, max_labeled_demos=0).compile(student, trainset=trainset)
    assert alone.optimization is not None and alone.optimization["stats"]["bootstrapped"] == 0
    teacher = gen.Solve(lm=lm, instructions=task.instructions())
    taught = BootstrapFewShot(task.metric, max_bootstrapped_demos=8, max_labeled_demos=0).compile(
        student, trainset=trainset, teacher=teacher
    )
    assert taught.instructions == student.instructions  # the student's own instructions
    assert len(taught.demos) == 8
    assert score(taught, devset, task) > 0.5 > score(alone, devset, task)
    with pytest.raises(ValueError, match="structure"):
        BootstrapFewShot(task.metric).compile(student, trainset=trainset, teacher=SolveAndCheck(lm=lm))


def test_later_rounds_ask_for_a_fresh_answer(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], world: OperatorWorld
) -> None:
    lm = world.lm()
    never: Callable[[Example, Any], bool] = lambda example, prediction: False  # noqa: E731
    compiled = BootstrapFewShot(never, max_rounds=3, max_labeled_demos=0).compile(
        gen.Solve(lm=lm), trainset=trainset[:2]
    )
    assert compiled.optimization is not None
    assert compiled.optimization["stats"] == {
        "bootstrapped": 0, "examples_run": 2, "rounds_run": 6, "errors": 0
    }
    seen = [(r.rollout_id, r.params.get("temperature")) for r in lm.requests]
    assert seen == [(None, None), (1, 1.0), (2, 1.0)] * 2


def test_metric_threshold(gen: ModuleType, task: OperatorTask, trainset: list[Example], world: OperatorWorld) -> None:
    half: Callable[[Example, Any], Score] = lambda example, prediction: Score(0.5)  # noqa: E731
    student = gen.Solve(lm=world.lm())
    passes = BootstrapFewShot(half, metric_threshold=0.5, max_labeled_demos=0).compile(student, trainset=trainset)
    fails = BootstrapFewShot(half, metric_threshold=0.6, max_labeled_demos=0).compile(student, trainset=trainset)
    assert len(passes.demos) == 4 and len(fails.demos) == 0


def test_errors_count_against_max_errors(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], world: OperatorWorld
) -> None:
    word = sorted(task.meanings)[0]

    def flaky(request: LMRequest) -> str:
        if f" {word} " in str(request.messages[-1]["content"]):
            raise ServerError("the server fell over", status=500)
        return world.responder(request)

    failing = sum(f" {word} " in e.inputs["question"] for e in trainset[:12])
    assert failing >= 2
    student = gen.Solve(lm=ScriptedLM(flaky))
    always: Callable[[Example, Any], bool] = lambda example, prediction: True  # noqa: E731
    optimizer = BootstrapFewShot(always, max_bootstrapped_demos=12, max_labeled_demos=0)
    compiled = optimizer.compile(student, trainset=trainset[:12])
    assert compiled.optimization is not None
    assert compiled.optimization["stats"]["errors"] == failing
    assert compiled.optimization["stats"]["bootstrapped"] == 12 - failing
    with pytest.raises(OptimizerError, match="max_errors=2") as raised:
        BootstrapFewShot(task.metric, max_bootstrapped_demos=12, max_errors=2).compile(
            student, trainset=trainset[:12]
        )
    assert isinstance(raised.value.__cause__, ServerError) and raised.value.errors == 2

    def broken_metric(example: Example, prediction: Any) -> bool:
        raise KeyError("no such label")

    with pytest.raises(OptimizerError) as raised:
        BootstrapFewShot(broken_metric, max_errors=3).compile(
            gen.Solve(lm=world.lm()), trainset=trainset
        )
    assert isinstance(raised.value.__cause__, KeyError) and raised.value.errors == 3


def test_progress_bar_on_request(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], world: OperatorWorld,
    capsys: pytest.CaptureFixture[str],
) -> None:
    BootstrapFewShot(task.metric, progress=True).compile(gen.Solve(lm=world.lm()), trainset=trainset)
    assert "BootstrapFewShot: bootstrapping" in capsys.readouterr().err
    BootstrapFewShot(task.metric, progress=False).compile(gen.Solve(lm=world.lm()), trainset=trainset)
    assert capsys.readouterr().err == ""


def test_the_record_is_saved_and_loaded(
    task: OperatorTask, trainset: list[Example], world: OperatorWorld, tmp_path: Path
) -> None:
    compiled = BootstrapFewShot(task.metric, max_labeled_demos=6).compile(
        SolveAndCheck(lm=world.lm()), trainset=trainset
    )
    path = tmp_path / "solve_and_check.optimized.json"
    compiled.save(path)
    fresh = SolveAndCheck(lm=world.lm())
    load_program(fresh, path)
    assert fresh.optimization == compiled.optimization
    assert state(fresh) == state(compiled)
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["optimization"]["optimizer"] == "BootstrapFewShot"


# ---------------------------------------------------------------- random search


def test_random_search_picks_the_best_candidate(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], devset: list[Example],
    world: OperatorWorld,
) -> None:
    student = gen.Solve(lm=world.lm())
    before = state(student)
    valset = task.devset(60)[40:]
    optimizer = BootstrapFewShotWithRandomSearch(
        task.metric, max_bootstrapped_demos=3, max_labeled_demos=3, num_candidate_programs=4,
        num_threads=2, progress=False,
    )
    compiled = optimizer.compile(student, trainset=trainset, valset=valset)
    assert state(student) == before
    record = compiled.optimization
    assert record is not None
    assert [c["seed"] for c in record["candidates"]] == [-3, -2, -1, 0, 1, 2, 3]
    scores = [c["score"] for c in record["candidates"]]
    assert record["scores"]["best"] == max(scores) > record["scores"]["baseline"] == scores[0] == 0.0
    assert record["candidates"][0]["demos"] == 0 and record["valset_size"] == 20
    assert optimizer.candidates[0].score == max(scores)
    assert state(optimizer.candidates[0].program) == state(compiled)
    assert [c.score for c in optimizer.candidates] == sorted(scores, reverse=True)
    assert score(compiled, devset, task) > 0.5
    again = BootstrapFewShotWithRandomSearch(
        task.metric, max_bootstrapped_demos=3, max_labeled_demos=3, num_candidate_programs=4
    ).compile(student, trainset=trainset, valset=valset)
    assert state(again) == state(compiled)
    assert again.optimization is not None
    assert again.optimization["candidates"] == record["candidates"]


def test_random_search_stops_early_and_restricts(
    gen: ModuleType, task: OperatorTask, trainset: list[Example], world: OperatorWorld
) -> None:
    student = gen.Solve(lm=world.lm())
    optimizer = BootstrapFewShotWithRandomSearch(
        task.metric, max_labeled_demos=16, num_candidate_programs=8, stop_at_score=0.9
    )
    compiled = optimizer.compile(student, trainset=trainset)  # scored on the trainset
    assert compiled.optimization is not None
    assert [c["seed"] for c in compiled.optimization["candidates"]] == [-3, -2]
    only = BootstrapFewShotWithRandomSearch(task.metric, num_candidate_programs=2).compile(
        student, trainset=trainset, restrict=[-3, 1]
    )
    assert only.optimization is not None
    assert [c["seed"] for c in only.optimization["candidates"]] == [-3, 1]
    with pytest.raises(ValueError, match="restrict"):
        optimizer.compile(student, trainset=trainset, restrict=[99])


# ---------------------------------------------------------------- ensemble


def test_majority_vote(gen: ModuleType) -> None:
    outs = [gen.SolveOperatorOutputs(answer=n) for n in (3, 4, 4, 3)]
    assert majority(outs) is outs[0]  # a tie goes to the value seen first
    assert majority(outs[1:]) is outs[1]
    cot = [
        gen.SolveOperatorWithReasoningOutputs(reasoning=r, answer=a)
        for r, a in (("x", 1), ("The", 2), ("a", 2))
    ]
    assert majority(cot) is cot[1]  # the last field: answer
    # reasoning "The" and "a" normalize to nothing (articles): ignored; "x" wins
    assert majority(cot, field="reasoning") is cot[0]
    assert majority([{"label": "Yes!"}, {"label": "no"}, {"label": "yes"}])["label"] == "Yes!"
    with pytest.raises(ValueError):
        majority([])


def test_ensemble_votes_and_samples_reproducibly(
    gen: ModuleType, task: OperatorTask, devset: list[Example], world: OperatorWorld,
    tmp_path: Path,
) -> None:
    lm = world.lm()
    words = sorted(task.meanings)
    # each member knows three of the four words; a majority always knows the word asked
    members = [
        gen.Solve(lm=lm, instructions=task.instructions([w for w in words if w != skip]))
        for skip in words[:3]
    ]
    before = [state(m) for m in members]
    ensemble = Ensemble().compile(members)
    assert isinstance(ensemble, EnsembleProgram)
    assert [state(m) for m in members] == before
    assert max(score(m, devset, task) for m in members) < 1.0
    assert score(ensemble, devset, task) == 1.0
    assert ensemble.optimization is not None
    assert ensemble.optimization["settings"] == {"reduce_fn": "majority", "size": None, "programs": 3}
    assert [n for n, _ in ensemble.named_predictors()] == ["programs[0]", "programs[1]", "programs[2]"]
    path = tmp_path / "ensemble.json"
    ensemble.save(path)
    loaded = Ensemble().compile([gen.Solve(lm=lm) for _ in range(3)])
    loaded.load(path)
    assert state(loaded) == state(ensemble) and loaded.optimization == ensemble.optimization

    sampled = Ensemble(size=2, seed=5).compile(members)
    inputs = devset[0].inputs
    picks = sampled.chosen(inputs)
    assert len(picks) == 2 and sampled.chosen(inputs) == picks
    assert len({tuple(map(id, sampled.chosen(e.inputs))) for e in devset}) > 1
    all_outputs = Ensemble(reduce_fn=None).compile(members)(question=inputs["question"])
    assert isinstance(all_outputs, list) and len(all_outputs) == 3
    with pytest.raises(ValueError, match="size"):
        Ensemble(size=4).compile(members)
