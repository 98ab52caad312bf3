"""LabeledFewShot: demos taken straight from the training set (DSPy's ``LabeledFewShot``).

Every predictor of the program gets ``k`` training examples as demos: a seeded random
sample (``sample=True``, the default) or the first ``k``. Nothing is run; no LM call is
made.

Difference from DSPy: an example becomes a demo of a predictor through
:func:`~sigforge.runtime.optimizers.base.demo_for` -- the predictor keeps the example's
values of its own fields, and an example with none of its inputs or none of its outputs
is left out (DSPy keeps it in the list and its adapter skips it when formatting: the
prompt is the same). With ``seed=0`` the sample is DSPy's (``random.Random(0)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..example import Example
from .base import Optimizer, ProgramT, demo_for, reset_copy, tracked_calls

__all__ = ["LabeledFewShot"]


class LabeledFewShot(Optimizer):
    """Up to ``k`` labeled demos per predictor, sampled with the seed (or the first ``k``)."""

    def __init__(self, k: int = 16, *, sample: bool = True, seed: int = 0) -> None:
        super().__init__(seed=seed)
        if k < 0:
            raise ValueError("k must not be negative")
        self.k = k
        self.sample = sample

    def settings(self) -> dict[str, Any]:
        return {"k": self.k, "sample": self.sample}

    def compile(
        self,
        student: ProgramT,
        *,
        trainset: Sequence[Example],
        valset: Sequence[Example] | None = None,
    ) -> ProgramT:
        with tracked_calls() as usage:
            program = self.label(student, trainset)
        return self._finish(program, usage, trainset=trainset)

    def label(self, student: ProgramT, trainset: Sequence[Example]) -> ProgramT:
        """A reset copy of ``student`` with the labeled demos (no optimization record)."""
        program = reset_copy(student)
        if not trainset:
            return program
        rng = self._rng()
        size = min(self.k, len(trainset))
        for predictor in [p for _, p in program.named_predictors()]:
            chosen = rng.sample(list(trainset), size) if self.sample else list(trainset[:size])
            demos = (demo_for(predictor, example) for example in chosen)
            predictor.demos = [demo for demo in demos if demo is not None]
        return program
