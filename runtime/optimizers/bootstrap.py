"""BootstrapFewShot: demos from the program's own successful runs (DSPy's ``BootstrapFewShot``).

How it compiles, as in DSPy:

1. The *teacher* is a copy of the given ``teacher`` program, or of the student. Unless
   it was itself compiled (it carries an optimization record), it first gets up to
   ``max_labeled_demos`` labeled demos from the training set (:class:`LabeledFewShot`).
2. The teacher runs on the training examples in order, with its steps recorded
   (:func:`~sigforge.runtime.trace.recording`), each run without the demos that come
   from the example at hand. When the metric passes (its value is truthy, or at least
   ``metric_threshold`` when that is given; no metric: every run passes) each recorded
   step becomes a demo -- the step's inputs and outputs -- of the student predictor of
   the same name (names from ``named_predictors``; a predictor that ran several times
   in one example gives one of its steps, chosen by a seed made from the steps). A
   failed run is tried again up to ``max_rounds`` rounds; rounds after the first ask
   the LM for a fresh answer: ``rollout_id`` set to the round number and ``temperature``
   1.0 (so a cache does not return the same answer). It stops once
   ``max_bootstrapped_demos`` examples succeeded.
3. Each student predictor gets the first ``max_bootstrapped_demos`` bootstrapped demos,
   then labeled demos up to ``max_labeled_demos`` in all, sampled from the training
   examples that were not bootstrapped (shuffled with the seed).

A run that raises (the program, e.g. an LM error, or the metric) counts as a failed
round and is logged; the ``max_errors``-th failure (default 10) stops compiling with an
:class:`~sigforge.runtime.optimizers.base.OptimizerError`.

Differences from DSPy:

* ``num_threads`` runs examples concurrently, in windows no larger than the number of
  bootstrapped examples still missing: every example run is one a sequential run would
  also have made, so the LM calls, the demos and their order are exactly those of the
  sequential algorithm (DSPy runs them one by one).
* The seed (default 0, DSPy's fixed value) drives the shuffle and the labeled sample.
* ``teacher_settings`` has no counterpart: give a ``teacher`` program whose
  predictors use the LM you want (``teacher.set_lm(big_lm)``).
* A student that was already compiled is accepted: its demos are dropped
  (``reset_copy``), its instructions kept.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..batch import run_batch
from ..example import Example
from ..metrics import Metric
from ..module import Program
from ..predictors import Demo
from ..trace import recording
from .base import (
    ErrorBudget,
    Optimizer,
    ProgramT,
    callable_name,
    demo_for,
    demo_seed,
    is_compiled,
    progress_bar,
    reset_copy,
    run_program,
    score_of,
    tracked_calls,
)
from .labeled import LabeledFewShot

__all__ = ["BootstrapFewShot", "Bootstrapped"]


@dataclass
class Bootstrapped:
    """What bootstrapping found: demos per predictor name, and which examples succeeded."""

    demos: dict[str, list[Demo]]
    #: indices (in the training set) of the examples whose run passed the metric
    succeeded: list[int] = field(default_factory=list)
    #: how many examples were run, and how many rounds in all
    examples_run: int = 0
    rounds_run: int = 0
    errors: int = 0


@dataclass
class _Outcome:
    demos: dict[str, list[Demo]] | None  # None: no round passed
    rounds: int
    errors: list[Exception]


class BootstrapFewShot(Optimizer):
    """Demos from the teacher's successful runs on the training set, then labeled demos."""

    def __init__(
        self,
        metric: Metric | None = None,
        *,
        metric_threshold: float | None = None,
        max_bootstrapped_demos: int = 4,
        max_labeled_demos: int = 16,
        max_rounds: int = 1,
        max_errors: int | None = None,
        seed: int = 0,
        num_threads: int = 1,
        progress: bool | None = None,
    ) -> None:
        super().__init__(seed=seed, num_threads=num_threads, progress=progress)
        if max_bootstrapped_demos < 0 or max_labeled_demos < 0:
            raise ValueError("max_bootstrapped_demos and max_labeled_demos must not be negative")
        if max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        self.metric = metric
        self.metric_threshold = metric_threshold
        self.max_bootstrapped_demos = max_bootstrapped_demos
        self.max_labeled_demos = max_labeled_demos
        self.max_rounds = max_rounds
        self.max_errors = max_errors

    def settings(self) -> dict[str, Any]:
        return {
            "metric": callable_name(self.metric),
            "metric_threshold": self.metric_threshold,
            "max_bootstrapped_demos": self.max_bootstrapped_demos,
            "max_labeled_demos": self.max_labeled_demos,
            "max_rounds": self.max_rounds,
            "max_errors": self.max_errors,
            **super().settings(),
        }

    def compile(
        self,
        student: ProgramT,
        *,
        trainset: Sequence[Example],
        valset: Sequence[Example] | None = None,
        teacher: Program | None = None,
    ) -> ProgramT:
        """The student (a copy) with bootstrapped and labeled demos; ``valset`` is not used."""
        with tracked_calls() as usage:
            program, found = self.bootstrap_compile(student, trainset, teacher=teacher)
        return self._finish(
            program,
            usage,
            trainset=trainset,
            stats={
                "bootstrapped": len(found.succeeded),
                "examples_run": found.examples_run,
                "rounds_run": found.rounds_run,
                "errors": found.errors,
            },
        )

    # ------------------------------------------------------------ the algorithm
    def bootstrap_compile(
        self, student: ProgramT, trainset: Sequence[Example], *, teacher: Program | None = None
    ) -> tuple[ProgramT, Bootstrapped]:
        """Steps 1-3 without the optimization record (for optimizers built on this one)."""
        program = reset_copy(student)
        prepared = self._teacher(student if teacher is None else teacher, trainset)
        names = [name for name, _ in program.named_predictors()]
        teacher_names = [name for name, _ in prepared.named_predictors()]
        if names != teacher_names:
            raise ValueError(
                "the teacher must have the student's structure: predictors "
                f"{teacher_names} vs the student's {names}"
            )
        found = self.bootstrap(prepared, trainset, names)
        self._assign(program, trainset, found)
        return program, found

    def _teacher(self, teacher: Program, trainset: Sequence[Example]) -> Program:
        if self.max_labeled_demos and not is_compiled(teacher):
            return LabeledFewShot(self.max_labeled_demos, seed=self.seed).label(teacher, trainset)
        return teacher.deepcopy()

    def bootstrap(
        self, teacher: Program, trainset: Sequence[Example], names: Sequence[str]
    ) -> Bootstrapped:
        """Run ``teacher`` over ``trainset`` until ``max_bootstrapped_demos`` examples pass."""
        found = Bootstrapped({name: [] for name in names})
        budget = ErrorBudget(self.max_errors, self.name)
        wanted = self.max_bootstrapped_demos
        bar = progress_bar(self.progress, len(trainset), f"{self.name}: bootstrapping")
        try:
            start = 0
            while start < len(trainset) and len(found.succeeded) < wanted:
                size = min(self.num_threads, wanted - len(found.succeeded))
                window = list(range(start, min(start + size, len(trainset))))
                outcomes = run_batch(
                    lambda index: self._run_example(teacher, trainset[index]),
                    window,
                    concurrency=self.num_threads,
                    return_exceptions=False,
                    progress=False,
                )
                for index, outcome in zip(window, outcomes, strict=True):
                    assert isinstance(outcome, _Outcome)
                    found.examples_run += 1
                    found.rounds_run += outcome.rounds
                    for error in outcome.errors:
                        found.errors += 1
                        budget.failed(error, trainset[index])
                    if outcome.demos is not None:
                        found.succeeded.append(index)
                        for name, demos in outcome.demos.items():
                            found.demos[name].extend(demos)
                    if bar is not None:
                        bar.update(1)
                start += len(window)
        finally:
            if bar is not None:
                bar.close()
        return found

    def _run_example(self, teacher: Program, example: Example) -> _Outcome:
        """Up to ``max_rounds`` rounds of the teacher on one example (errors are returned)."""
        errors: list[Exception] = []
        for round_index in range(self.max_rounds):
            try:
                demos = self._round(teacher, example, round_index)
            except Exception as error:  # as DSPy: any failure is a failed round
                errors.append(error)
                continue
            if demos is not None:
                return _Outcome(demos, round_index + 1, errors)
        return _Outcome(None, self.max_rounds, errors)

    def _round(
        self, teacher: Program, example: Example, round_index: int
    ) -> dict[str, list[Demo]] | None:
        run = teacher.deepcopy()
        named = run.named_predictors()
        for _, predictor in named:
            own = demo_for(predictor, example)
            predictor.demos = [d for d in predictor.demos if own is None or d != own]
            if round_index > 0:
                predictor.config = {**predictor.config, "rollout_id": round_index, "temperature": 1.0}
        with recording() as steps:
            prediction = run_program(run, example.inputs)
        if self.metric is not None:
            value = score_of(self.metric, example, prediction).value
            passed = value >= self.metric_threshold if self.metric_threshold is not None else bool(value)
            if not passed:
                return None
        by_id = {id(predictor): (name, predictor) for name, predictor in named}
        traces: dict[str, list[Demo]] = {}
        for step in steps:
            if id(step.predictor) not in by_id:
                continue  # a predictor outside the program's named predictors
            name, predictor = by_id[id(step.predictor)]
            traces.setdefault(name, []).append(predictor.make_demo(step.inputs, step.outputs))
        for name, demos in traces.items():
            if len(demos) > 1:  # several calls of one predictor: keep one (DSPy's rule)
                rng = random.Random(demo_seed(demos))
                traces[name] = [rng.choice(demos[:-1]) if rng.random() < 0.5 else demos[-1]]
        return traces

    def _assign(self, program: Program, trainset: Sequence[Example], found: Bootstrapped) -> None:
        succeeded = set(found.succeeded)
        raw = [example for index, example in enumerate(trainset) if index not in succeeded]
        self._rng().shuffle(raw)
        rng = self._rng()  # a second generator from the same seed, as DSPy does
        for name, predictor in program.named_predictors():
            augmented = found.demos[name][: self.max_bootstrapped_demos]
            size = max(0, min(self.max_labeled_demos - len(augmented), len(raw)))
            labeled = (demo_for(predictor, example) for example in rng.sample(raw, size))
            predictor.demos = [*augmented, *(d for d in labeled if d is not None)]
