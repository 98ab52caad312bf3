"""BootstrapFewShotWithRandomSearch: many bootstrapped candidates, the best on the valset.

DSPy's ``BootstrapFewShotWithRandomSearch``: candidate programs are built for the
candidate seeds ``-3 .. num_candidate_programs - 1``, each is scored on the validation
set (the training set when none is given) with
:class:`~sigforge.runtime.evaluate.Evaluate`, and the first one with the highest score
is returned:

* ``-3``: the student with no demos (zero-shot);
* ``-2``: labeled demos only (:class:`LabeledFewShot` with ``max_labeled_demos``);
* ``-1``: :class:`BootstrapFewShot` on the training set as given;
* ``0, 1, ...``: :class:`BootstrapFewShot` on the training set shuffled with the
  candidate's seed, with ``max_bootstrapped_demos`` drawn between 1 and the setting.

Evaluations stop after ``max_errors`` failed examples (default 10, as DSPy), with
:class:`~sigforge.runtime.evaluate.TooManyErrorsError`. ``stop_at_score`` stops as soon as a candidate reaches it; ``restrict`` builds only the
candidate seeds it names. The record's ``scores`` holds the best and the zero-shot
(``baseline``) scores, and ``candidates`` every candidate's seed, demo count and score
in the order they were built; after ``compile``, :attr:`candidates` also holds the
candidate programs, best first.

The random generator of candidate seed ``s`` is ``random.Random(seed * 1_000_003 + s)``:
with the default ``seed=0``, DSPy's ``random.Random(s)``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Generic, cast

from ..example import Example
from ..metrics import Metric
from ..module import Program
from .base import DEFAULT_MAX_ERRORS, Optimizer, ProgramT, callable_name, reset_copy, tracked_calls
from .bootstrap import BootstrapFewShot
from .labeled import LabeledFewShot

__all__ = ["BootstrapFewShotWithRandomSearch", "Candidate"]


@dataclass(frozen=True)
class Candidate(Generic[ProgramT]):
    """One candidate program and its validation score."""

    seed: int
    score: float
    program: ProgramT
    #: every validation example's score, in valset order
    subscores: tuple[float, ...]


class BootstrapFewShotWithRandomSearch(Optimizer):
    """Bootstrap several candidate programs and keep the best on the validation set."""

    def __init__(
        self,
        metric: Metric,
        *,
        max_bootstrapped_demos: int = 4,
        max_labeled_demos: int = 16,
        max_rounds: int = 1,
        num_candidate_programs: int = 16,
        max_errors: int | None = None,
        stop_at_score: float | None = None,
        metric_threshold: float | None = None,
        seed: int = 0,
        num_threads: int = 1,
        progress: bool | None = None,
    ) -> None:
        super().__init__(seed=seed, num_threads=num_threads, progress=progress)
        if num_candidate_programs < 0:
            raise ValueError("num_candidate_programs must not be negative")
        if max_bootstrapped_demos < 1:
            raise ValueError("max_bootstrapped_demos must be at least 1")
        self.metric = metric
        self.max_bootstrapped_demos = max_bootstrapped_demos
        self.max_labeled_demos = max_labeled_demos
        self.max_rounds = max_rounds
        self.num_candidate_programs = num_candidate_programs
        self.max_errors = max_errors
        self.stop_at_score = stop_at_score
        self.metric_threshold = metric_threshold
        #: after :meth:`compile`: the candidates, best first (ties: the earlier built)
        self.candidates: list[Candidate[Any]] = []

    def settings(self) -> dict[str, Any]:
        return {
            "metric": callable_name(self.metric),
            "metric_threshold": self.metric_threshold,
            "max_bootstrapped_demos": self.max_bootstrapped_demos,
            "max_labeled_demos": self.max_labeled_demos,
            "max_rounds": self.max_rounds,
            "num_candidate_programs": self.num_candidate_programs,
            "max_errors": self.max_errors,
            "stop_at_score": self.stop_at_score,
            **super().settings(),
        }

    def compile(
        self,
        student: ProgramT,
        *,
        trainset: Sequence[Example],
        valset: Sequence[Example] | None = None,
        teacher: Program | None = None,
        restrict: Collection[int] | None = None,
        labeled_sample: bool = True,
    ) -> ProgramT:
        """The best candidate (a new program); ``student`` is left unchanged."""
        from ..evaluate import Evaluate

        seeds = range(-3, self.num_candidate_programs)
        if restrict is not None and not set(restrict) & set(seeds):
            raise ValueError(
                f"restrict={sorted(restrict)!r} names none of the candidate seeds "
                f"{seeds.start}..{seeds.stop - 1}"
            )
        evalset = list(valset) if valset else list(trainset)
        if not evalset:
            raise ValueError("nothing to score candidates on: the valset and trainset are empty")
        evaluate = Evaluate(
            evalset,
            self.metric,
            num_threads=self.num_threads,
            progress=self.progress,
            max_errors=DEFAULT_MAX_ERRORS if self.max_errors is None else self.max_errors,
        )
        built: list[Candidate[ProgramT]] = []
        best: Candidate[ProgramT] | None = None
        with tracked_calls() as usage:
            for candidate_seed in seeds:
                if restrict is not None and candidate_seed not in restrict:
                    continue
                program = self._candidate(
                    student, trainset, teacher, candidate_seed, labeled_sample=labeled_sample
                )
                # generated predictors and modules are callable with the example's inputs
                result = evaluate(cast(Callable[..., Any], program))
                candidate = Candidate(
                    candidate_seed,
                    result.score,
                    program,
                    tuple(r.score.value for r in result.results),
                )
                built.append(candidate)
                if best is None or candidate.score > best.score:
                    best = candidate
                if self.stop_at_score is not None and candidate.score >= self.stop_at_score:
                    break
        assert best is not None
        self.candidates = sorted(built, key=lambda c: -c.score)
        baseline = next((c.score for c in built if c.seed == -3), None)
        return self._finish(
            best.program,
            usage,
            trainset=trainset,
            valset=evalset,
            scores={"best": best.score, "baseline": baseline, "best_seed": best.seed},
            candidates=[
                {
                    "seed": c.seed,
                    "score": c.score,
                    "demos": sum(len(p.demos) for _, p in c.program.named_predictors()),
                }
                for c in built
            ],
        )

    def _candidate(
        self,
        student: ProgramT,
        trainset: Sequence[Example],
        teacher: Program | None,
        candidate_seed: int,
        *,
        labeled_sample: bool,
    ) -> ProgramT:
        if candidate_seed == -3:
            return reset_copy(student)
        if candidate_seed == -2:
            labeled = LabeledFewShot(self.max_labeled_demos, sample=labeled_sample, seed=self.seed)
            return labeled.label(student, trainset)
        examples = list(trainset)
        size = self.max_bootstrapped_demos
        if candidate_seed >= 0:
            random_seed = self.seed * 1_000_003 + candidate_seed  # DSPy's with seed=0
            random.Random(random_seed).shuffle(examples)
            size = random.Random(random_seed).randint(1, self.max_bootstrapped_demos)
        bootstrap = BootstrapFewShot(
            self.metric,
            metric_threshold=self.metric_threshold,
            max_bootstrapped_demos=size,
            max_labeled_demos=self.max_labeled_demos,
            max_rounds=self.max_rounds,
            max_errors=self.max_errors,
            seed=self.seed,
            num_threads=self.num_threads,
            progress=False,
        )
        program, _ = bootstrap.bootstrap_compile(student, examples, teacher=teacher)
        return program
