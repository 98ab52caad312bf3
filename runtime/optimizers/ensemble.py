"""Ensemble: several programs answer, one answer comes out (DSPy's ``Ensemble``).

``Ensemble(reduce_fn=majority, size=None).compile(programs)`` returns an
:class:`EnsembleProgram`, a :class:`~sigforge.runtime.module.Module` holding copies of
the programs (as ``programs[0]``, ``programs[1]``...: saved and loaded with it). A call
runs every program -- or ``size`` of them -- on the same inputs, in order, and passes
the list of predictions to ``reduce_fn``; with ``reduce_fn=None`` the list itself is the
result.

:func:`majority` is the usual ``reduce_fn``: the prediction whose output field (by
default the last field of the prediction, as DSPy takes the signature's last output)
holds the most common value, compared after :func:`~sigforge.runtime.metrics.normalize_text`
(lower case, no punctuation or articles); values that normalize to nothing are ignored
unless all do; a tie goes to the value seen first, and the first prediction with the
winning value is returned.

Differences from DSPy: with ``size``, the programs a call uses are sampled with a
generator seeded from ``seed`` and the call's inputs, so the same inputs always use the
same programs, whatever the order or thread of the calls (DSPy samples with the global
``random`` and refuses ``deterministic=True``). ``Ensemble`` has no training set; it is
not an :class:`~sigforge.runtime.optimizers.base.Optimizer` subclass, as its ``compile``
takes programs, not a student.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..metrics import normalize_text
from ..module import Module, Program
from .base import callable_name, deep_copy, optimization_record, run_program

__all__ = ["Ensemble", "EnsembleProgram", "majority"]


def majority(
    predictions: Sequence[Any],
    *,
    field: str | None = None,
    normalize: Callable[[str], str] | None = normalize_text,
) -> Any:
    """The first prediction holding the most common value of ``field`` (see the module doc).

    Predictions are models or objects with the field as an attribute, or mappings;
    ``field=None`` takes the last field of the first prediction."""
    if not predictions:
        raise ValueError("majority() needs at least one prediction")
    name = field if field is not None else _last_field(predictions[0])
    keys = [_key(_value(p, name), normalize) for p in predictions]
    counted = [k for k in keys if k is not None] or keys
    counts: dict[str | None, int] = {}
    for key in counted:
        counts[key] = counts.get(key, 0) + 1
    winner = max(counts, key=lambda k: counts[k])  # the first of the most common
    return predictions[keys.index(winner)]


def _last_field(prediction: Any) -> str:
    if isinstance(prediction, Mapping):
        names = list(prediction)
    else:
        fields = getattr(type(prediction), "model_fields", None)
        names = list(fields) if fields is not None else list(vars(prediction))
    if not names:
        raise ValueError(f"majority(): {type(prediction).__name__} has no fields to vote on")
    return str(names[-1])


def _value(prediction: Any, name: str) -> Any:
    if isinstance(prediction, Mapping):
        return prediction[name]
    try:
        return getattr(prediction, name)
    except AttributeError:
        raise ValueError(
            f"majority(): {type(prediction).__name__} has no field {name!r}"
        ) from None


def _key(value: Any, normalize: Callable[[str], str] | None) -> str | None:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if normalize is None:
        return text
    return normalize(text) or None


class EnsembleProgram(Module):
    """Runs its programs (or ``size`` of them) and reduces their predictions."""

    def __init__(
        self,
        programs: Sequence[Program],
        *,
        reduce_fn: Callable[[list[Any]], Any] | None = majority,
        size: int | None = None,
        seed: int = 0,
    ) -> None:
        self.programs = list(programs)
        self.reduce_fn = reduce_fn
        self.size = size
        self.seed = seed

    def forward(self, **inputs: Any) -> Any:
        outputs = [run_program(program, inputs) for program in self.chosen(inputs)]
        return self.reduce_fn(outputs) if self.reduce_fn is not None else outputs

    def chosen(self, inputs: Mapping[str, Any]) -> list[Program]:
        """The programs a call with ``inputs`` runs, in order."""
        if self.size is None:
            return list(self.programs)
        text = json.dumps(dict(inputs), sort_keys=True, default=str)
        digest = hashlib.sha256(f"{self.seed}\x00{text}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        picked = sorted(rng.sample(range(len(self.programs)), self.size))
        return [self.programs[index] for index in picked]


class Ensemble:
    """Makes an :class:`EnsembleProgram` of copies of the given programs."""

    def __init__(
        self,
        *,
        reduce_fn: Callable[[list[Any]], Any] | None = majority,
        size: int | None = None,
        seed: int = 0,
    ) -> None:
        if size is not None and size < 1:
            raise ValueError("size must be at least 1 (or None for all programs)")
        self.reduce_fn = reduce_fn
        self.size = size
        self.seed = seed

    def settings(self) -> dict[str, Any]:
        return {"reduce_fn": callable_name(self.reduce_fn), "size": self.size}

    def compile(self, programs: Sequence[Program]) -> EnsembleProgram:
        if not programs:
            raise ValueError("Ensemble needs at least one program")
        if self.size is not None and self.size > len(programs):
            raise ValueError(f"size={self.size} is more than the {len(programs)} programs given")
        ensemble = EnsembleProgram(
            [deep_copy(program) for program in programs],
            reduce_fn=self.reduce_fn,
            size=self.size,
            seed=self.seed,
        )
        ensemble.optimization = optimization_record(
            "Ensemble",
            {**self.settings(), "programs": len(programs)},
            seed=self.seed,
            scores={},
            usage=None,
            trainset_size=0,
        )
        return ensemble
