"""Recording which predictors ran, with what inputs and outputs, while a program runs.

Optimizers need to see inside a program: BootstrapFewShot turns the steps of a
successful run into demos for each predictor, and evaluation keeps them for reports.
Inside ``with recording() as steps:`` every successful predictor call appends one
:class:`TraceStep` to ``steps``, in the order the calls ended.

The recording lives in a :mod:`contextvars` variable, so it follows the code into
asyncio tasks and into threads run in a copied context, and two threads that each record
their own run never see each other's steps. When nothing records, a predictor call pays
one context-variable read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .predictors import Predict

__all__ = ["TraceStep", "record", "recording"]


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One successful predictor call: the predictor object, its inputs and its outputs."""

    predictor: Predict[Any, Any]
    inputs: BaseModel
    outputs: BaseModel


_steps: ContextVar[list[TraceStep] | None] = ContextVar("sigforge_trace", default=None)


@contextmanager
def recording() -> Iterator[list[TraceStep]]:
    """Record the predictor calls made inside the block (nested blocks record separately)."""
    steps: list[TraceStep] = []
    token = _steps.set(steps)
    try:
        yield steps
    finally:
        _steps.reset(token)


def record(predictor: Predict[Any, Any], inputs: BaseModel, outputs: BaseModel) -> None:
    """Called by predictors after a successful call; does nothing unless a block records."""
    steps = _steps.get()
    if steps is not None:
        steps.append(TraceStep(predictor, inputs, outputs))
