"""``best_of_n`` and ``refine``: sample a predictor up to N times, keep the best (DSPy's
BestOfN and Refine).

Each attempt runs the attempt predictor (``predict`` of the signature, or its
``chain_of_thought`` with ``module="chain_of_thought"``) at temperature 1.0 with its own
rollout id (see :func:`~._episode.sampling_config`), so attempts are distinct requests,
for the LM and for the cache. ``reward_fn(inputs, outputs) -> float`` scores each
attempt; the first attempt reaching ``threshold`` is returned at once, else the best of
all. An attempt that fails with a :class:`SigforgeError` (an LM error, a reply that does
not parse) counts against ``fail_count`` (default N): one failure more than that raises
the error; when every attempt failed, :class:`AttemptsFailedError` is raised. Errors of
``reward_fn`` itself are bugs and propagate.

``refine`` also asks for advice after every attempt below the threshold but the last:
the feedback predictor (``PFeedback``: the module's definition, inputs, outputs, the
reward function's code, threshold and reward -> ``discussion``, ``advice``) reads the
attempt, and the next attempt runs with the advice as the ``hint_`` input of the hinted
signature (``PHinted``: the attempt's signature plus ``hint_``), with the attempt
predictor's instructions, demos, LM, adapter and configuration.

Inside a trace recording (:mod:`sigforge.runtime.trace`) only the steps of the returned
attempt are recorded, as DSPy keeps only the best attempt's trace (the advice calls are
not recorded either); a hinted attempt is recorded as a step of the attempt predictor,
without the hint, so an optimizer can turn it into a demo of that predictor.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, cast

from ..adapters.prompts import describe_fields
from ..adapters.values import jsonable
from ..errors import SigforgeError
from ..module import Module
from ..predictors import InT, OutT, Predict
from ..signature import Signature
from ..trace import TraceStep, record, recording
from ._episode import Episode, adrive, drive, predict, sampling_config

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ..adapters import Adapter
    from ..callbacks import Callback
    from ..lm import BaseLM

__all__ = ["AttemptsFailedError", "BestOfN", "Refine"]

logger = logging.getLogger("sigforge")

#: the input of hinted attempts (DSPy's name)
HINT = "hint_"


class AttemptsFailedError(SigforgeError):
    """Every attempt of a best_of_n or refine predictor failed; ``errors`` holds each error."""

    def __init__(self, message: str, errors: Sequence[SigforgeError]) -> None:
        super().__init__(message)
        self.errors = list(errors)


class BestOfN(Module, Generic[InT, OutT]):
    """Base class of generated best_of_n predictors (see the module docstring).

    ``reward_fn`` scores an attempt from the typed inputs and outputs; ``threshold`` is
    the reward that ends the search early; ``n`` overrides the ``.sig`` file's count;
    ``fail_count`` is how many failed attempts are tolerated (default: ``n``).
    """

    signature: ClassVar[type[Signature]]
    attempt_predictor: ClassVar[type[Predict[Any, Any]]]
    default_n: ClassVar[int]

    def __init__(
        self,
        *,
        reward_fn: Callable[[InT, OutT], float],
        threshold: float,
        n: int | None = None,
        fail_count: int | None = None,
        lm: BaseLM | None = None,
        adapter: Adapter | str | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.n = self.default_n if n is None else n
        if self.n < 1:
            raise ValueError("n must be at least 1")
        self.reward_fn = reward_fn
        self.threshold = threshold
        self.fail_count = self.n if fail_count is None else fail_count
        self._build(lm, adapter, callbacks)

    def _build(self, lm: BaseLM | None, adapter: Adapter | str | None, callbacks: Sequence[Callback]) -> None:
        """Make the inner predictors (attributes, so ``named_predictors`` finds them)."""
        self.attempt = self.attempt_predictor(lm=lm, adapter=adapter, callbacks=callbacks)

    def run(self, inputs: InT) -> OutT:
        """The first attempt reaching the threshold, else the best (generated ``forward``)."""
        return drive(self._episode(inputs))

    async def arun(self, inputs: InT) -> OutT:
        """Async :meth:`run`."""
        return await adrive(self._episode(inputs))

    def _episode(self, inputs: InT) -> Episode[OutT]:
        search = _Search(self, inputs)
        for index in range(self.n):
            with recording() as steps:
                try:
                    outputs = yield from predict(self.attempt, inputs, sampling_config(self.attempt, index))
                except SigforgeError as error:
                    search.failed(index, error)
                    continue
            if search.scored(outputs, steps):
                break
        return search.best()


class Refine(BestOfN[InT, OutT]):
    """Base class of generated refine predictors: :class:`BestOfN` with advice between
    attempts (see the module docstring). The feedback predictor is the ``feedback``
    attribute; give it a stronger LM with ``refine.feedback.lm = ...``."""

    hinted_predictor: ClassVar[type[Predict[Any, Any]]]
    feedback_predictor: ClassVar[type[Predict[Any, Any]]]

    _reward_code: str | None = None

    def _build(self, lm: BaseLM | None, adapter: Adapter | str | None, callbacks: Sequence[Callback]) -> None:
        super()._build(lm, adapter, callbacks)
        self.feedback = self.feedback_predictor(lm=lm, adapter=adapter, callbacks=callbacks)

    def _episode(self, inputs: InT) -> Episode[OutT]:
        search = _Search(self, inputs)
        hinted = self._hinted()
        advice: str | None = None
        for index in range(self.n):
            predictor, attempt_inputs = self.attempt, cast("BaseModel", inputs)
            if advice is not None:
                predictor = hinted
                attempt_inputs = hinted.signature.inputs(**dict(inputs), **{HINT: advice})
            with recording() as steps:
                try:
                    outputs = yield from predict(predictor, attempt_inputs, sampling_config(self.attempt, index))
                except SigforgeError as error:
                    search.failed(index, error)
                    continue
            if search.scored(outputs, steps) or index == self.n - 1:
                break
            try:
                with recording():  # advice is not part of the run's trace
                    feedback = yield from predict(
                        self.feedback, self._feedback_inputs(inputs, outputs, search.last_reward)
                    )
            except SigforgeError as error:
                search.failed(index, error)
                continue
            advice = str(feedback.advice)
        return search.best(hinted=hinted)

    def _hinted(self) -> Predict[Any, Any]:
        """The predictor of hinted attempts: the attempt predictor's state, ``hint_`` added."""
        attempt = self.attempt
        return self.hinted_predictor(
            lm=attempt.lm,
            adapter=attempt.adapter,
            instructions=attempt.instructions,
            demos=attempt.demos,
            callbacks=attempt.callbacks,
            config=attempt.config,
        )

    def _feedback_inputs(self, inputs: InT, outputs: OutT, reward: float) -> BaseModel:
        if self._reward_code is None:
            self._reward_code = _source(self.reward_fn)
        return self.feedback.signature.inputs(
            module_definition=module_definition(self.attempt),
            program_inputs=_json(inputs),
            program_outputs=_json(outputs),
            reward_code=self._reward_code,
            target_threshold=self.threshold,
            reward_value=reward,
        )


class _Search(Generic[InT, OutT]):
    """The bookkeeping of one best_of_n or refine run."""

    def __init__(self, module: BestOfN[InT, OutT], inputs: InT) -> None:
        self.module = module
        self.inputs = inputs
        self.best_outputs: OutT | None = None
        self.best_reward = float("-inf")
        self.best_steps: list[TraceStep] = []
        self.last_reward = float("-inf")
        self.errors: list[SigforgeError] = []

    def failed(self, index: int, error: SigforgeError) -> None:
        self.errors.append(error)
        name = type(self.module).__name__
        logger.warning("%s: attempt %d of %d failed: %s", name, index + 1, self.module.n, error)
        if len(self.errors) > self.module.fail_count:
            raise error

    def scored(self, outputs: Any, steps: list[TraceStep]) -> bool:
        """Score an attempt; True when it reaches the threshold (the search ends)."""
        reward = float(self.module.reward_fn(self.inputs, cast(OutT, outputs)))
        self.last_reward = reward
        if self.best_outputs is None or reward > self.best_reward:
            self.best_outputs, self.best_reward, self.best_steps = cast(OutT, outputs), reward, list(steps)
        return reward >= self.module.threshold

    def best(self, hinted: Predict[Any, Any] | None = None) -> OutT:
        if self.best_outputs is None:
            raise AttemptsFailedError(
                f"{type(self.module).__name__}: all {len(self.errors)} attempts failed; the last "
                f"error: {self.errors[-1]}",
                self.errors,
            )
        attempt = self.module.attempt
        for step in self.best_steps:
            if hinted is not None and step.predictor is hinted:
                values = {k: v for k, v in step.inputs if k != HINT}
                record(attempt, attempt.signature.inputs(**values), step.outputs)
            else:
                record(step.predictor, step.inputs, step.outputs)
        return self.best_outputs


def module_definition(predictor: Predict[Any, Any]) -> str:
    """A predictor's instructions and fields, as the feedback prompt describes the module."""
    sig = predictor.signature
    return (
        f"Instructions: {predictor.instructions}\n"
        f"Input fields:\n{describe_fields(sig.input_fields)}\n"
        f"Output fields:\n{describe_fields(sig.output_fields)}"
    )


def _json(model: Any) -> str:
    return json.dumps(jsonable(model), indent=2, ensure_ascii=False)


def _source(function: Callable[..., Any]) -> str:
    """The code of the reward function (of its class for a callable object), else its repr."""
    for target in (function, type(function)):
        try:
            return inspect.getsource(target)
        except (OSError, TypeError):
            continue
    return repr(function)
