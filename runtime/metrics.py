"""Metrics: how good a prediction is for an example.

A metric is a plain typed callable ``metric(example, prediction) -> float | bool | Score``.
Return a :class:`Score` to add feedback text: optimizers that reflect on their failures
(GEPA) read it, the others use the value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from .example import Example

__all__ = ["Metric", "MetricValue", "Score", "as_score"]

@dataclass(frozen=True, slots=True)
class Score:
    """A metric's value (0 to 1 by convention; ``True`` counts 1) with optional feedback."""

    value: float
    #: what was wrong or right, in words an LM can act on ("expected 12, got 7")
    feedback: str = ""


MetricValue: TypeAlias = float | bool | Score
#: ``metric(example, prediction)``; the prediction is what the program returned
Metric: TypeAlias = Callable[[Example, Any], MetricValue]


def as_score(value: MetricValue) -> Score:
    """A metric's result as a :class:`Score` (``True`` is 1.0, ``False`` 0.0)."""
    if isinstance(value, Score):
        return value
    if isinstance(value, bool | int | float):
        return Score(float(value))
    raise TypeError(
        f"a metric must return a float, a bool or a Score, not {type(value).__name__}"
    )
