"""The control flow of a module kind, written once for blocking and for async calls.

A kind's logic is a generator, an *episode*: it yields each effect it needs (run a
predictor, call a tool, run code) and receives the effect's result, or has the effect's
exception thrown into it at that ``yield``. :func:`drive` performs the effects with
blocking calls (``predictor.run``), :func:`adrive` awaits them (``predictor.arun``); the
drivers know nothing about the kinds, and the kinds nothing about sync or async. Typed
helpers (:func:`predict`) let an episode write ``outputs = yield from predict(p, inputs)``.

Effects run in the caller's context, so settings, callbacks and trace recording
(:mod:`sigforge.runtime.trace`) apply to them as to any call made directly.
"""

from __future__ import annotations

import abc
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ..predictors import Predict

__all__ = ["Effect", "Episode", "adrive", "drive", "predict", "sampling_config"]

R = TypeVar("R")


class Effect(abc.ABC):
    """Something an episode needs done: done by :meth:`run` or awaited by :meth:`arun`."""

    @abc.abstractmethod
    def run(self) -> Any: ...

    @abc.abstractmethod
    async def arun(self) -> Any: ...


#: an episode yields effects, receives their results, and returns the module's outputs
Episode = Generator[Effect, Any, R]


@dataclass(frozen=True, slots=True)
class Predicts(Effect):
    """Run a predictor on validated inputs, with per-call request parameters."""

    predictor: Predict[Any, Any]
    inputs: BaseModel
    config: Mapping[str, Any] | None = None

    def run(self) -> Any:
        return self.predictor.run(self.inputs, config=self.config)

    async def arun(self) -> Any:
        return await self.predictor.arun(self.inputs, config=self.config)


def predict(
    predictor: Predict[Any, Any], inputs: BaseModel, config: Mapping[str, Any] | None = None
) -> Episode[Any]:
    """``outputs = yield from predict(predictor, inputs)`` inside an episode."""
    return (yield Predicts(predictor, inputs, config))


def sampling_config(predictor: Predict[Any, Any], index: int) -> dict[str, Any]:
    """The request parameters of the ``index``-th of repeated samples: temperature 1.0 and
    a distinct rollout id (from the predictor's own ``rollout_id``, else 0, counting up),
    so the samples are separate answers, also for the cache, as DSPy's BestOfN, Refine
    and the attempts of a MultiChainComparison sample them."""
    start = predictor.config.get("rollout_id")
    first = start if isinstance(start, int) and not isinstance(start, bool) else 0
    return {"temperature": 1.0, "rollout_id": first + index}


def drive(episode: Episode[R]) -> R:
    """Run an episode to its end, performing each effect with a blocking call."""
    result: Any = None
    error: Exception | None = None
    try:
        while True:
            try:
                effect = episode.send(result) if error is None else episode.throw(error)
            except StopIteration as stop:
                return cast(R, stop.value)
            result, error = None, None
            try:
                result = effect.run()
            except Exception as exc:  # the episode decides: handle it, or let it propagate
                error = exc
    finally:
        episode.close()


async def adrive(episode: Episode[R]) -> R:
    """Run an episode to its end, awaiting each effect."""
    result: Any = None
    error: Exception | None = None
    try:
        while True:
            try:
                effect = episode.send(result) if error is None else episode.throw(error)
            except StopIteration as stop:
                return cast(R, stop.value)
            result, error = None, None
            try:
                result = await effect.arun()
            except Exception as exc:
                error = exc
    finally:
        episode.close()
