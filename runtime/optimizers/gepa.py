"""GEPA: reflective prompt evolution over a Pareto frontier (DSPy's ``GEPA``, after
Agrawal et al., "GEPA: Reflective Prompt Evolution Can Outperform Reinforcement Learning").

A *candidate* is one instruction per predictor. GEPA keeps a pool of candidates, each
scored on every validation example, and a budget of metric calls (examples scored).

1. The student's instructions are the first candidate, scored on the whole valset.
2. Until the budget is spent, each iteration:

   * **selects a parent**: with ``candidate_selection="pareto"``, the *Pareto frontier*
     is, for every validation example, the candidates with the best score on it;
     candidates dominated by others on every example where they are best are dropped,
     and the parent is drawn from the rest with a probability proportional to the
     number of examples it is best on. ``"current_best"`` takes the best mean score.
   * **runs it on a minibatch** of ``reflection_minibatch_size`` training examples
     (epoch by epoch through a seeded shuffle), recording each predictor's inputs and
     outputs. With ``skip_perfect_score``, a minibatch where it scored
     ``perfect_score`` everywhere ends the iteration.
   * **reflects**: one predictor, in turn (round robin per candidate), gets a new
     instruction from the ``reflection_lm`` (the
     :class:`~sigforge.runtime.optimizers.prompts.gepa.Reflector` prompt), shown the
     current instruction and, per minibatch example, that predictor's inputs, its
     outputs and the metric's feedback (:attr:`Score.feedback
     <sigforge.runtime.metrics.Score.feedback>`; without feedback, a sentence giving
     the score).
   * **accepts or drops the child** (the parent with the new instruction): scored on the
     same minibatch, it joins the pool -- scored on the whole valset, the frontier
     updated -- only when its minibatch sum beats the parent's.
   * **merges** (``use_merge``, up to ``max_merge_invocations``; tried in the iteration
     after a child was accepted): two frontier candidates that descend from a common
     ancestor, neither from the other, are combined predictor by predictor -- where one
     changed an instruction of the ancestor and the other did not, the change is taken;
     where both changed it, the better candidate's -- and the merge, scored on 5
     validation examples that tell the two apart, joins the pool when it does at least as
     well there as the better of the two.

3. The program returned is the student (a copy, demos kept) with the instructions of the
   candidate with the best mean validation score.

The budget: ``max_metric_calls``, or ``max_full_evals`` times the size of the training
plus validation sets, or ``auto`` (``"light"``, ``"medium"``, ``"heavy"``: DSPy's
estimate of what MIPROv2 would spend with 6, 12 or 18 candidates). An iteration that
starts within the budget finishes, so a run may exceed it by one iteration.

Differences from DSPy:

* The metric is an ordinary sigforge metric ``metric(example, prediction)``; its
  :class:`~sigforge.runtime.metrics.Score` feedback is about the whole program, and is
  what every predictor reflects on (DSPy's metric may also be asked per predictor).
* ``reflection_lm=None`` uses the configured LM. Each reflection is a separate answer (a
  ``rollout_id`` drawn from the seed), so a reflection prompt met again is not answered
  from a cache.
* A candidate scored before on an example is not run again; it still counts in the
  budget, as it would in DSPy.

The optimization record holds the budget and the metric calls made, every candidate (its
instructions, parents, mean validation score and the metric calls spent before it was
found), the frontier (per validation example, the candidates best on it), the best
candidate, and counts of iterations, proposals and merges.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..example import Example
from ..metrics import Metric
from ..module import Program
from ._proposer import (
    Outcome,
    Scorer,
    clean_instruction,
    instructions_of,
    mean,
    value_text,
    with_instructions,
)
from .base import Optimizer, ProgramT, callable_name, deep_copy, progress_bar, tracked_calls

if TYPE_CHECKING:
    from tqdm import tqdm

    from sigforge.runtime.lm import BaseLM  # the name the generated prompt predictors use

__all__ = ["GEPA", "auto_budget"]

#: ``auto`` presets: the number of candidates DSPy's budget estimate assumes
AUTO_RUN_SETTINGS: dict[str, int] = {"light": 6, "medium": 12, "heavy": 18}

_MERGE_SUBSAMPLE = 5
_MERGE_ATTEMPTS = 10


def auto_budget(
    predictors: int,
    candidates: int,
    valset_size: int,
    *,
    minibatch_size: int = 35,
    full_eval_steps: int = 5,
) -> int:
    """Metric calls for ``auto``: one full evaluation, 5 bootstrapping runs per
    candidate, ``num_trials`` minibatches and the periodic full evaluations of a
    MIPROv2 run with ``candidates`` candidates (DSPy's estimate)."""
    trials = int(max(2 * (predictors * 2) * math.log2(candidates), 1.5 * candidates))
    total = valset_size + candidates * 5 + trials * minibatch_size
    periodic = (trials + 1) // full_eval_steps + 1
    final = 1 if trials < full_eval_steps else 0
    return total + (periodic + final) * valset_size


@dataclass
class _Candidate:
    instructions: dict[str, str]
    parents: list[int]
    #: score on each validation example
    scores: list[float]
    discovered_at: int
    #: the predictor to reflect on next (an index into the names)
    next_predictor: int = 0

    @property
    def score(self) -> float:
        return mean(self.scores)


@dataclass
class _Pool:
    """The candidates and the frontier (per validation example: best score, and who)."""

    candidates: list[_Candidate] = field(default_factory=list)
    best: list[float] = field(default_factory=list)
    front: list[set[int]] = field(default_factory=list)

    def add(self, candidate: _Candidate) -> int:
        index = len(self.candidates)
        self.candidates.append(candidate)
        if not self.best:
            self.best = list(candidate.scores)
            self.front = [{index} for _ in candidate.scores]
            return index
        for example, score in enumerate(candidate.scores):
            if score > self.best[example]:
                self.best[example] = score
                self.front[example] = {index}
            elif score == self.best[example]:
                self.front[example].add(index)
        return index

    def dominators(self) -> list[int]:
        """The frontier's candidates that no others dominate (see the module doc)."""
        on_front = sorted({i for front in self.front for i in front}, key=lambda i: self.candidates[i].score)
        dropped: set[int] = set()
        changed = True
        while changed:
            changed = False
            for candidate in on_front:
                if candidate in dropped:
                    continue
                others = set(on_front) - dropped - {candidate}
                fronts = [front for front in self.front if candidate in front]
                if all(front & others for front in fronts):
                    dropped.add(candidate)
                    changed = True
                    break
        return [i for i in on_front if i not in dropped]

    def pareto_choice(self, rng: random.Random) -> int:
        """A parent drawn from the dominators, weighted by how many examples each is best on."""
        kept = set(self.dominators())
        counts: Counter[int] = Counter()
        for front in self.front:
            for candidate in sorted(front & kept):
                counts[candidate] += 1
        draw = [candidate for candidate, count in counts.items() for _ in range(count)]
        return rng.choice(draw)

    def best_index(self) -> int:
        scores = [c.score for c in self.candidates]
        return scores.index(max(scores))

    def ancestors(self, index: int) -> set[int]:
        found: set[int] = set()
        todo = list(self.candidates[index].parents)
        while todo:
            parent = todo.pop()
            if parent not in found:
                found.add(parent)
                todo.extend(self.candidates[parent].parents)
        return found


class _Minibatches:
    """Training-set minibatches, epoch by epoch through a seeded shuffle (padded with the
    least used examples to a whole number of minibatches)."""

    def __init__(self, size: int, count: int, rng: random.Random) -> None:
        self.size = size
        self.count = count
        self.rng = rng
        self.order: list[int] = []
        self.epoch = -1

    def __call__(self, iteration: int) -> list[int]:
        start = iteration * self.size
        epoch = start // len(self.order) if self.order else 0
        if not self.order or epoch > self.epoch:
            self.epoch = epoch
            self._shuffle()
        start %= len(self.order)
        return self.order[start : start + self.size]

    def _shuffle(self) -> None:
        order = list(range(self.count))
        self.rng.shuffle(order)
        uses = Counter(order)
        while len(order) % self.size:
            least = min(range(self.count), key=lambda i: (uses[i], i))
            order.append(least)
            uses[least] += 1
        self.order = order


class GEPA(Optimizer):
    """Reflective prompt evolution (see the module doc)."""

    def __init__(
        self,
        metric: Metric,
        *,
        auto: Literal["light", "medium", "heavy"] | None = None,
        max_full_evals: int | None = None,
        max_metric_calls: int | None = None,
        reflection_lm: BaseLM | None = None,
        reflection_minibatch_size: int = 3,
        candidate_selection: Literal["pareto", "current_best"] = "pareto",
        skip_perfect_score: bool = True,
        perfect_score: float = 1.0,
        use_merge: bool = True,
        max_merge_invocations: int = 5,
        failure_score: float = 0.0,
        max_errors: int | None = None,
        seed: int = 0,
        num_threads: int = 1,
        progress: bool | None = None,
    ) -> None:
        super().__init__(seed=seed, num_threads=num_threads, progress=progress)
        given = [auto is not None, max_full_evals is not None, max_metric_calls is not None]
        if sum(given) != 1:
            raise ValueError(
                "give exactly one budget: auto, max_full_evals or max_metric_calls "
                f"(got auto={auto!r}, max_full_evals={max_full_evals!r}, "
                f"max_metric_calls={max_metric_calls!r})"
            )
        if auto is not None and auto not in AUTO_RUN_SETTINGS:
            raise ValueError(f"auto must be one of {', '.join(AUTO_RUN_SETTINGS)}, not {auto!r}")
        if (max_full_evals is not None and max_full_evals < 1) or (
            max_metric_calls is not None and max_metric_calls < 1
        ):
            raise ValueError("max_full_evals and max_metric_calls must be at least 1")
        if reflection_minibatch_size < 1:
            raise ValueError("reflection_minibatch_size must be at least 1")
        if candidate_selection not in ("pareto", "current_best"):
            raise ValueError(
                f"candidate_selection must be 'pareto' or 'current_best', not {candidate_selection!r}"
            )
        if max_merge_invocations < 0:
            raise ValueError("max_merge_invocations must not be negative")
        self.metric = metric
        self.auto = auto
        self.max_full_evals = max_full_evals
        self.max_metric_calls = max_metric_calls
        self.reflection_lm = reflection_lm
        self.reflection_minibatch_size = reflection_minibatch_size
        self.candidate_selection = candidate_selection
        self.skip_perfect_score = skip_perfect_score
        self.perfect_score = perfect_score
        self.use_merge = use_merge
        self.max_merge_invocations = max_merge_invocations
        self.failure_score = failure_score
        self.max_errors = max_errors

    def settings(self) -> dict[str, Any]:
        return {
            "metric": callable_name(self.metric),
            "auto": self.auto,
            "max_full_evals": self.max_full_evals,
            "max_metric_calls": self.max_metric_calls,
            "reflection_lm": None if self.reflection_lm is None else self.reflection_lm.model,
            "reflection_minibatch_size": self.reflection_minibatch_size,
            "candidate_selection": self.candidate_selection,
            "skip_perfect_score": self.skip_perfect_score,
            "perfect_score": self.perfect_score,
            "use_merge": self.use_merge,
            "max_merge_invocations": self.max_merge_invocations,
            "failure_score": self.failure_score,
            "max_errors": self.max_errors,
            **super().settings(),
        }

    def budget(self, predictors: int, trainset_size: int, valset_size: int | None) -> int:
        """The metric calls this optimizer may spend (``valset_size=None``: no separate
        valset, the trainset serves as both)."""
        if self.max_metric_calls is not None:
            return self.max_metric_calls
        if self.max_full_evals is not None:
            return self.max_full_evals * (trainset_size + (valset_size or 0))
        assert self.auto is not None
        return auto_budget(
            max(predictors, 1),
            AUTO_RUN_SETTINGS[self.auto],
            trainset_size if valset_size is None else valset_size,
        )

    def compile(
        self,
        student: ProgramT,
        *,
        trainset: Sequence[Example],
        valset: Sequence[Example] | None = None,
    ) -> ProgramT:
        """The student (a copy, demos kept) with the best candidate's instructions.

        Reflection minibatches come from ``trainset``; the frontier and the final choice
        from ``valset`` (the trainset when not given)."""
        if not trainset:
            raise ValueError("GEPA needs a non-empty trainset")
        if valset is not None and not valset:
            raise ValueError("the valset must hold at least one example")
        program = deep_copy(student)
        names = [name for name, _ in program.named_predictors()]
        if not names:
            raise ValueError("the program has no predictors to optimize")
        budget = self.budget(len(names), len(trainset), None if valset is None else len(valset))
        run = _Run(self, program, names, list(trainset), list(valset or trainset), budget)
        with tracked_calls() as usage:
            run.run()
        pool = run.pool
        best = pool.best_index()
        return self._finish(
            with_instructions(program, pool.candidates[best].instructions),
            usage,
            trainset=trainset,
            valset=valset,
            scores={"best": pool.candidates[best].score, "baseline": pool.candidates[0].score},
            budget=budget,
            metric_calls=run.scorer.metric_calls,
            iterations=run.iterations,
            proposals=run.proposals,
            merges={"attempted": run.merges_attempted, "accepted": run.merges_accepted},
            best_candidate=best,
            candidates=[
                {
                    "instructions": c.instructions,
                    "parents": c.parents,
                    "score": c.score,
                    "discovered_at": c.discovered_at,
                }
                for c in pool.candidates
            ],
            frontier=[sorted(front) for front in pool.front],
        )


class _Run:
    """One compile's state and steps."""

    def __init__(
        self,
        owner: GEPA,
        program: Program,
        names: list[str],
        trainset: list[Example],
        valset: list[Example],
        budget: int,
    ) -> None:
        self.owner = owner
        self.program = program
        self.names = names
        self.trainset = trainset
        self.valset = valset
        self.budget = budget
        self.rng = owner._rng()
        self.scorer = Scorer(
            owner.metric,
            num_threads=owner.num_threads,
            max_errors=owner.max_errors,
            failure_score=owner.failure_score,
        )
        self.pool = _Pool()
        self.minibatches = _Minibatches(owner.reflection_minibatch_size, len(trainset), self.rng)
        self.iterations = 0
        self.proposals = 0
        self.merges_due = 0
        self.merges_attempted = 0
        self.merges_accepted = 0
        self.found_new = False
        self._merges_tried: set[tuple[int, int, int]] = set()
        self._merges_made: set[tuple[int, int, tuple[int, ...]]] = set()
        self._bar: tqdm[Any] | None = None
        self._shown = 0

    # ------------------------------------------------------------ scoring
    def _outcomes(self, instructions: dict[str, str], examples: Sequence[Example]) -> list[Outcome]:
        outcomes = self.scorer.outcomes(with_instructions(self.program, instructions), examples)
        if self._bar is not None:
            self._bar.update(min(self.scorer.metric_calls, self.budget) - self._shown)
            self._shown = min(self.scorer.metric_calls, self.budget)
        return outcomes

    def _add(self, instructions: dict[str, str], parents: list[int]) -> int:
        found_at = self.scorer.metric_calls  # before its valset evaluation, as GEPA counts
        scores = [o.score.value for o in self._outcomes(instructions, self.valset)]
        next_predictor = max((self.pool.candidates[p].next_predictor for p in parents), default=0)
        return self.pool.add(
            _Candidate(dict(instructions), parents, scores, found_at, next_predictor)
        )

    # ------------------------------------------------------------ the loop
    def run(self) -> None:
        """Score the student's instructions, then iterate until the budget is spent."""
        owner = self.owner
        self._bar = progress_bar(owner.progress, self.budget, f"{owner.name}: metric calls")
        try:
            self._add(instructions_of(self.program), [])
            while self.scorer.metric_calls < self.budget:
                iteration = self.iterations
                self.iterations += 1
                merge_due = owner.use_merge and self.merges_due > 0 and self.found_new
                self.found_new = False
                if merge_due and self._merge():
                    continue  # a scored merge ends the iteration
                self._reflect(iteration)
        finally:
            if self._bar is not None:
                self._bar.close()

    def _select(self) -> int:
        if self.owner.candidate_selection == "current_best":
            return self.pool.best_index()
        return self.pool.pareto_choice(self.rng)

    def _reflect(self, iteration: int) -> None:
        parent_index = self._select()
        parent = self.pool.candidates[parent_index]
        batch = [self.trainset[i] for i in self.minibatches(iteration)]
        before = self._outcomes(parent.instructions, batch)
        owner = self.owner
        if owner.skip_perfect_score and all(
            o.score.value >= owner.perfect_score for o in before
        ):
            return
        name = self.names[parent.next_predictor]
        parent.next_predictor = (parent.next_predictor + 1) % len(self.names)
        shown = self._reflective_examples(name, before)
        if not shown:
            return  # the predictor did not run on this minibatch: nothing to reflect on
        new = self._propose(parent.instructions[name], shown)
        self.proposals += 1
        child = {**parent.instructions, name: new}
        after = self._outcomes(child, batch)
        if sum(o.score.value for o in after) > sum(o.score.value for o in before):
            self._add(child, [parent_index])
            self.found_new = True
            if self.merges_accepted < owner.max_merge_invocations:
                self.merges_due += 1

    def _reflective_examples(self, name: str, outcomes: Sequence[Outcome]) -> list[str]:
        """Per example where ``name`` ran: its inputs, outputs and the feedback."""
        shown: list[str] = []
        for outcome in outcomes:
            if outcome.error is not None:
                continue
            steps = [step for step in outcome.steps if step.predictor == name]
            if not steps:
                continue
            step = steps[0] if len(steps) == 1 else self.rng.choice(steps)
            feedback = outcome.score.feedback or (
                f"This answer scored {outcome.score.value} (no feedback was given)."
            )
            parts = [f"# Example {len(shown) + 1}", "## Inputs"]
            parts += [f"### {key}\n{value_text(value)}" for key, value in step.inputs]
            parts.append("## Generated Outputs")
            parts += [f"### {key}\n{value_text(value)}" for key, value in step.outputs]
            parts += ["## Feedback", feedback]
            shown.append("\n".join(parts))
        return shown

    def _propose(self, current: str, shown: list[str]) -> str:
        from .prompts.gepa import Reflector

        reflector = Reflector(
            lm=self.owner.reflection_lm, config={"rollout_id": self.rng.randint(0, 10**9)}
        )
        reply = reflector(current_instruction=current, examples_with_feedback="\n\n".join(shown))
        return clean_instruction(reply.new_instruction) or current

    # ------------------------------------------------------------ merging
    def _merge(self) -> bool:
        """Try one merge; ``True`` when a merge was scored (the iteration is over)."""
        found = self._merge_candidate()
        if found is None:
            return False
        merged, first, second = found
        self.merges_attempted += 1
        ids = self._merge_subsample(first, second)
        examples = [self.valset[i] for i in ids]
        scores = [o.score.value for o in self._outcomes(merged, examples)]
        pool = self.pool.candidates
        before = max(
            sum(pool[first].scores[i] for i in ids), sum(pool[second].scores[i] for i in ids)
        )
        if sum(scores) >= before:
            self._add(merged, [first, second])
            self.merges_due -= 1
            self.merges_accepted += 1
        return True

    def _merge_candidate(self) -> tuple[dict[str, str], int, int] | None:
        pool = self.pool
        choices = pool.dominators()
        if len(choices) < 2 or len(pool.candidates) < 3 or len(self.valset) < _MERGE_SUBSAMPLE:
            return None
        for _ in range(_MERGE_ATTEMPTS):
            pair = self._merge_pair(choices)
            if pair is None:
                continue
            first, second, ancestor = pair
            self._merges_tried.add((first, second, ancestor))
            merged, sources = self._combine(first, second, ancestor)
            if (first, second, sources) in self._merges_made:
                continue
            self._merges_made.add((first, second, sources))
            return merged, first, second
        return None

    def _merge_pair(self, choices: list[int]) -> tuple[int, int, int] | None:
        pool = self.pool
        for _ in range(_MERGE_ATTEMPTS):
            first, second = sorted(self.rng.sample(choices, 2))
            first_up, second_up = pool.ancestors(first), pool.ancestors(second)
            if first in second_up or second in first_up:
                continue
            common = [
                a
                for a in sorted(first_up & second_up)
                if (first, second, a) not in self._merges_tried
                and pool.candidates[a].score <= pool.candidates[first].score
                and pool.candidates[a].score <= pool.candidates[second].score
                and self._complementary(a, first, second)
            ]
            if common:
                weights = [pool.candidates[a].score for a in common]
                if sum(weights) > 0:
                    ancestor = self.rng.choices(common, weights=weights)[0]
                else:
                    ancestor = self.rng.choice(common)
                return first, second, ancestor
        return None

    def _complementary(self, ancestor: int, first: int, second: int) -> bool:
        """Whether some predictor was changed by one descendant and kept by the other."""
        pool = self.pool.candidates
        for name in self.names:
            old = pool[ancestor].instructions[name]
            one, two = pool[first].instructions[name], pool[second].instructions[name]
            if old in (one, two) and one != two:
                return True
        return False

    def _combine(
        self, first: int, second: int, ancestor: int
    ) -> tuple[dict[str, str], tuple[int, ...]]:
        pool = self.pool.candidates
        merged: dict[str, str] = {}
        sources: list[int] = []
        for name in self.names:
            old = pool[ancestor].instructions[name]
            one, two = pool[first].instructions[name], pool[second].instructions[name]
            if old in (one, two) and one != two:
                source = second if old == one else first
            elif old not in (one, two):
                if pool[first].score != pool[second].score:
                    source = first if pool[first].score > pool[second].score else second
                else:
                    source = self.rng.choice([first, second])
            else:
                source = first
            merged[name] = pool[source].instructions[name]
            sources.append(source)
        return merged, tuple(sources)

    def _merge_subsample(self, first: int, second: int) -> list[int]:
        """Up to 5 validation examples: some where each is better, some where they tie."""
        one, two = self.pool.candidates[first].scores, self.pool.candidates[second].scores
        ids = range(len(one))
        buckets = [
            [i for i in ids if one[i] > two[i]],
            [i for i in ids if two[i] > one[i]],
            [i for i in ids if one[i] == two[i]],
        ]
        each = max(1, math.ceil(_MERGE_SUBSAMPLE / 3))
        chosen: list[int] = []
        for bucket in buckets:
            room = min(each, _MERGE_SUBSAMPLE - len(chosen), len(bucket))
            if room > 0:
                chosen += self.rng.sample(bucket, room)
        rest = [i for i in ids if i not in chosen]
        missing = _MERGE_SUBSAMPLE - len(chosen)
        if missing > 0:
            chosen += self.rng.sample(rest, min(missing, len(rest)))
        return chosen
