"""``multi_chain_comparison``: compare m reasoning attempts, then answer (DSPy's
MultiChainComparison, with the attempts made inside).

The attempt predictor (chain_of_thought of the signature, ``SigWithReasoning``) runs m
times at temperature 1.0 with distinct rollout ids (see
:func:`~._episode.sampling_config`). Each attempt becomes one line, as DSPy writes it:
``«I'm trying to <first line of its reasoning> I'm not sure but my prediction is <first
line of its last output>»``; the compare predictor (``PCompare``: the inputs and
``reasoning_attempt_1..m`` -> ``rationale`` and the outputs) answers from them. The
compare predictor keeps DSPy's temperature of 0.7 unless its ``config`` says otherwise.
An attempt that fails raises its error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic

from ..module import Module
from ..predictors import InT, OutT, Predict
from ..signature import Signature
from ._episode import Episode, adrive, drive, predict, sampling_config

if TYPE_CHECKING:
    from ..adapters import Adapter
    from ..callbacks import Callback
    from ..lm import BaseLM

__all__ = ["MultiChainComparison", "attempt_text"]

#: the temperature of the comparison (DSPy's default)
COMPARE_TEMPERATURE = 0.7


def _first_line(text: str) -> str:
    return text.strip().split("\n")[0].strip()


def attempt_text(reasoning: str, prediction: object) -> str:
    """One attempt as the comparison reads it (DSPy's wording, byte for byte)."""
    return (
        f"«I'm trying to {_first_line(reasoning)} I'm not sure but my prediction is "
        f"{_first_line(str(prediction))}»"
    )


class MultiChainComparison(Module, Generic[InT, OutT]):
    """Base class of generated multi_chain_comparison predictors (see the module docstring).

    ``m`` is fixed by the ``.sig`` file: the compare signature has one input per attempt.
    """

    signature: ClassVar[type[Signature]]
    attempt_predictor: ClassVar[type[Predict[Any, Any]]]
    compare_predictor: ClassVar[type[Predict[Any, Any]]]
    m: ClassVar[int]

    def __init__(
        self,
        *,
        lm: BaseLM | None = None,
        adapter: Adapter | str | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.attempt = self.attempt_predictor(lm=lm, adapter=adapter, callbacks=callbacks)
        self.compare = self.compare_predictor(
            lm=lm, adapter=adapter, callbacks=callbacks, config={"temperature": COMPARE_TEMPERATURE}
        )

    def run(self, inputs: InT) -> OutT:
        """Make the attempts and compare them (the generated ``forward`` builds the inputs)."""
        return drive(self._episode(inputs))

    async def arun(self, inputs: InT) -> OutT:
        """Async :meth:`run`."""
        return await adrive(self._episode(inputs))

    def _episode(self, inputs: InT) -> Episode[OutT]:
        last = self.signature.output_fields[-1].name
        attempts: dict[str, str] = {}
        for index in range(self.m):
            outputs = yield from predict(self.attempt, inputs, sampling_config(self.attempt, index))
            attempts[f"reasoning_attempt_{index + 1}"] = attempt_text(
                outputs.reasoning, getattr(outputs, last)
            )
        compare_inputs = self.compare.signature.inputs(**dict(inputs), **attempts)
        compared: OutT = yield from predict(self.compare, compare_inputs)
        return compared
