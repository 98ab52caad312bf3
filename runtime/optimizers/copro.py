"""COPRO: instructions proposed by an LM, scored, and improved from the scored attempts
(DSPy's ``COPRO``).

How it compiles, as in DSPy:

1. For every predictor of the program, the prompt model proposes ``breadth - 1`` new
   instructions from the one in use (the :class:`~sigforge.runtime.optimizers.prompts.copro.InstructionProposer`
   prompt, at ``init_temperature``, each proposal a separate answer through its own
   ``rollout_id``); the instruction in use is a candidate too.
2. ``depth`` rounds. In each, predictor by predictor, every candidate instruction is
   put into the program (the other predictors keep their best instruction so far) and
   the program is scored on the training set (the ``valset`` if given) with
   :class:`~sigforge.runtime.evaluate.Evaluate`; the predictor then keeps its best
   instruction. With one predictor only the newest candidates are scored; with several,
   all of them again (their score depends on the other predictors' instructions). After
   each round but the last, the prompt model proposes ``breadth`` new instructions per
   predictor from the ``breadth`` best attempts so far, listed with their scores from the
   lowest to the highest (the :class:`~sigforge.runtime.optimizers.prompts.copro.AttemptsProposer`
   prompt).
3. The program is the best-scored candidate of all (the first of equals).

Differences from DSPy:

* DSPy 3's COPRO also proposes a *prefix* for the last output field; neither DSPy 3's
  chat and JSON adapters nor sigforge's put field prefixes into prompts, so only
  instructions are proposed.
* The proposer also sees ``examples_shown`` training examples with their labels (a
  separate seeded sample for each proposal): a proposer that sees only the current
  instruction can rephrase it but never learn what the task's data shows.
  ``examples_shown=0`` shows none.
* The ``n`` proposals DSPy asks for in one request are ``n`` requests here (with
  distinct ``rollout_id`` values), made on up to ``num_threads`` threads.
* A candidate program scored before (the same instructions everywhere) is not run
  again; DSPy runs it again and its LM cache answers.
* ``track_stats`` puts DSPy's per-depth statistics (``results_best``,
  ``results_latest``) into the optimization record; ``total_calls`` (the number of
  candidate evaluations) is always there.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..example import Example
from ..metrics import Metric
from ._proposer import (
    Scorer,
    clean_instruction,
    example_text,
    instructions_of,
    proposer_config,
    run_all,
    with_instructions,
)
from .base import Optimizer, ProgramT, callable_name, deep_copy, progress_bar, tracked_calls

if TYPE_CHECKING:
    import random

    from sigforge.runtime.lm import BaseLM  # the name the generated prompt predictors use

__all__ = ["COPRO"]


@dataclass(frozen=True, slots=True)
class _Evaluated:
    """One scored candidate: the instructions of every predictor, and its score."""

    predictor: str
    instruction: str
    instructions: dict[str, str]
    score: float
    depth: int


class COPRO(Optimizer):
    """Coordinate ascent over instructions proposed by the prompt model (see the module doc)."""

    def __init__(
        self,
        metric: Metric,
        *,
        breadth: int = 10,
        depth: int = 3,
        init_temperature: float = 1.4,
        prompt_model: BaseLM | None = None,
        track_stats: bool = False,
        examples_shown: int = 5,
        max_errors: int | None = None,
        seed: int = 0,
        num_threads: int = 1,
        progress: bool | None = None,
    ) -> None:
        super().__init__(seed=seed, num_threads=num_threads, progress=progress)
        if breadth <= 1:
            raise ValueError("breadth must be greater than 1")
        if depth < 1:
            raise ValueError("depth must be at least 1")
        if examples_shown < 0:
            raise ValueError("examples_shown must not be negative")
        self.metric = metric
        self.breadth = breadth
        self.depth = depth
        self.init_temperature = init_temperature
        self.prompt_model = prompt_model
        self.track_stats = track_stats
        self.examples_shown = examples_shown
        self.max_errors = max_errors

    def settings(self) -> dict[str, Any]:
        return {
            "metric": callable_name(self.metric),
            "breadth": self.breadth,
            "depth": self.depth,
            "init_temperature": self.init_temperature,
            "prompt_model": None if self.prompt_model is None else self.prompt_model.model,
            "track_stats": self.track_stats,
            "examples_shown": self.examples_shown,
            "max_errors": self.max_errors,
            **super().settings(),
        }

    def compile(
        self,
        student: ProgramT,
        *,
        trainset: Sequence[Example],
        valset: Sequence[Example] | None = None,
    ) -> ProgramT:
        """The student (a copy, demos kept) with the best instructions found; candidates
        are scored on ``valset``, or on ``trainset`` when it is not given (as DSPy)."""
        if not trainset:
            raise ValueError("COPRO needs a non-empty trainset")
        evalset = list(valset) if valset else list(trainset)
        rng = self._rng()
        scorer = Scorer(self.metric, num_threads=self.num_threads, max_errors=self.max_errors)
        with tracked_calls() as usage:
            program = deep_copy(student)
            names = [name for name, _ in program.named_predictors()]
            if not names:
                raise ValueError("the program has no predictors to optimize")
            evaluated, stats, evaluations = self._search(program, names, trainset, evalset, scorer, rng)
        ranked = sorted(
            (entry for name in names for entry in evaluated[name].values()),
            key=lambda entry: -entry.score,
        )
        best = ranked[0]
        metric_calls = scorer.metric_calls
        baseline = scorer.score(program, evalset)  # scored in round one: no new run
        extra: dict[str, Any] = {}
        if self.track_stats:
            extra["stats"] = stats
        return self._finish(
            with_instructions(program, best.instructions),
            usage,
            trainset=trainset,
            valset=valset,
            scores={"best": best.score, "baseline": baseline},
            total_calls=evaluations,
            metric_calls=metric_calls,
            candidates=[
                {
                    "predictor": entry.predictor,
                    "instruction": entry.instruction,
                    "score": entry.score,
                    "depth": entry.depth,
                }
                for entry in _without_duplicates(ranked)
            ],
            **extra,
        )

    # ------------------------------------------------------------ the algorithm
    def _search(
        self,
        program: ProgramT,
        names: list[str],
        trainset: Sequence[Example],
        evalset: list[Example],
        scorer: Scorer,
        rng: random.Random,
    ) -> tuple[dict[str, dict[str, _Evaluated]], dict[str, Any], int]:
        base = instructions_of(program)
        # every candidate of each predictor, and the ones proposed last
        everything = {
            name: [*self._propose(rng, trainset, self.breadth - 1, basic=base[name]), base[name]]
            for name in names
        }
        latest = {name: list(found) for name, found in everything.items()}
        evaluated: dict[str, dict[str, _Evaluated]] = {name: {} for name in names}
        stats: dict[str, Any] = {
            "results_best": {name: _stats_table() for name in names},
            "results_latest": {name: _stats_table() for name in names},
        }
        current = dict(base)  # the best instruction of each predictor so far
        evaluations = 0
        bar = progress_bar(self.progress, self._evaluations_planned(len(names)), self.name)
        try:
            for depth in range(self.depth):
                for name in names:
                    pool = latest[name] if len(names) == 1 else everything[name]
                    latest_scores: list[float] = []
                    for index, instruction in enumerate(pool):
                        trial = {**current, name: instruction}
                        score = scorer.score(with_instructions(program, trial), evalset)
                        evaluations += 1
                        if bar is not None:
                            bar.update(1)
                        known = evaluated[name].get(instruction)
                        if known is None or known.score < score:
                            evaluated[name][instruction] = _Evaluated(
                                name, instruction, trial, score, depth
                            )
                        if len(pool) - self.breadth <= index:
                            latest_scores.append(score)
                    _add_stats(stats["results_latest"][name], depth, latest_scores)
                    best = max(evaluated[name].values(), key=lambda entry: entry.score)
                    current[name] = best.instruction
                if depth == self.depth - 1:
                    break
                for name in names:
                    ranked = sorted(evaluated[name].values(), key=lambda entry: -entry.score)
                    _add_stats(stats["results_best"][name], depth, [e.score for e in ranked[:10]])
                    attempts = self._attempts(ranked[: self.breadth])
                    fresh = self._propose(rng, trainset, self.breadth, attempts=attempts)
                    latest[name] = fresh
                    everything[name].extend(fresh)
        finally:
            if bar is not None:
                bar.close()
        for name in names:
            ranked = sorted(evaluated[name].values(), key=lambda entry: -entry.score)
            _add_stats(stats["results_best"][name], self.depth - 1, [e.score for e in ranked[:10]])
        return evaluated, stats, evaluations

    def _evaluations_planned(self, predictors: int) -> int:
        if predictors == 1:
            return self.breadth * self.depth
        return predictors * sum(self.breadth * (d + 1) for d in range(self.depth))

    @staticmethod
    def _attempts(best_first: Sequence[_Evaluated]) -> list[str]:
        """The attempts as the proposer sees them: lowest score first, numbered from 1."""
        lines: list[str] = []
        for number, entry in enumerate(reversed(best_first), 1):
            lines.append(f"Instruction #{number}: {entry.instruction}")
            lines.append(f"Resulting score #{number}: {entry.score}")
        return lines

    def _propose(
        self,
        rng: random.Random,
        trainset: Sequence[Example],
        count: int,
        *,
        basic: str | None = None,
        attempts: list[str] | None = None,
    ) -> list[str]:
        """``count`` proposals: from the instruction in use (``basic``) or from ``attempts``."""
        from .prompts.copro import AttemptsProposer, InstructionProposer

        shown = min(self.examples_shown, len(trainset))
        plans = [
            (
                "\n\n".join(example_text(e) for e in rng.sample(list(trainset), shown)),
                rng.randint(0, 10**9),
            )
            for _ in range(count)
        ]

        def one(index: int) -> str:
            examples, rollout_id = plans[index]
            config = proposer_config(self.init_temperature, rollout_id)
            if attempts is None:
                assert basic is not None
                first = InstructionProposer(lm=self.prompt_model, config=config)
                return first(basic_instruction=basic, task_examples=examples).proposed_instruction
            more = AttemptsProposer(lm=self.prompt_model, config=config)
            return more(
                attempted_instructions=attempts, task_examples=examples
            ).proposed_instruction

        proposals = [clean_instruction(text) for text in run_all(one, count, self.num_threads)]
        fallback = basic if basic is not None else ""
        return [text or fallback for text in proposals if text or fallback]


def _stats_table() -> dict[str, list[float]]:
    return {"depth": [], "max": [], "average": [], "min": [], "std": []}


def _add_stats(table: dict[str, list[float]], depth: int, scores: Sequence[float]) -> None:
    if not scores:
        return
    table["depth"].append(depth)
    table["max"].append(max(scores))
    table["average"].append(sum(scores) / len(scores))
    table["min"].append(min(scores))
    table["std"].append(statistics.pstdev(scores))


def _without_duplicates(ranked: Sequence[_Evaluated]) -> list[_Evaluated]:
    """The ranked candidates without repeats of the same program (DSPy drops candidates of
    equal score whose instructions are the same everywhere)."""
    seen: set[tuple[tuple[str, str], ...]] = set()
    kept: list[_Evaluated] = []
    for entry in ranked:
        key = tuple(sorted(entry.instructions.items()))
        if key not in seen:
            seen.add(key)
            kept.append(entry)
    return kept
