"""``program_of_thought``: write Python, run it in the sandbox, answer from its output
(DSPy's ProgramOfThought).

Three chain-of-thought predictors, over signatures generated from the declared one (for
a predictor ``P``): ``generate`` (``PGenerate``: the inputs -> ``reasoning``,
``generated_code``), ``regenerate`` (``PRegenerate``: adds ``previous_code`` and
``error``) and ``answer`` (``PAnswer``: adds ``final_generated_code`` and
``code_output`` -> ``reasoning`` and the outputs).

The code of a reply is the first fenced block (```` ```python ... ``` ````, or any fence)
when there is one, else the whole field. It runs in a :class:`~sigforge.runtime.sandbox.Sandbox`
(a fresh locked-down process: no network, a throwaway directory, time and memory limits;
``limits=`` on the constructor); what it prints is its output. Code that fails (an
exception, a timeout, a blocked operation, empty code, or no output at all) is sent back
with its error to ``regenerate``; after ``max_iters`` attempts in all (default: the
``.sig`` file's, else DSPy's 3) the run ends with :class:`ProgramOfThoughtError` naming
the last error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic

from ..errors import SigforgeError
from ..module import Module
from ..predictors import InT, OutT, Predict
from ..signature import Signature
from ._episode import Effect, Episode, adrive, drive, predict

if TYPE_CHECKING:
    from ..adapters import Adapter
    from ..callbacks import Callback
    from ..lm import BaseLM
    from ..sandbox import Sandbox, SandboxLimits, SandboxResult

__all__ = ["ProgramOfThought", "ProgramOfThoughtError", "extract_code"]

#: an opening fence with an optional language, the code, a closing fence on its own line
#: (or the end of the text: a reply cut short still has its code)
_FENCE = re.compile(r"```[ \t]*[\w+.-]*[ \t]*\n(.*?)(?:^[ \t]*```|\Z)", re.DOTALL | re.MULTILINE)


class ProgramOfThoughtError(SigforgeError):
    """No generated code ran successfully within ``max_iters`` attempts.

    ``code`` is the last code tried and ``error`` what went wrong with it."""

    def __init__(self, message: str, *, code: str, error: str, attempts: int) -> None:
        super().__init__(message)
        self.code = code
        self.error = error
        self.attempts = attempts


def extract_code(text: str) -> str:
    """The code in a ``generated_code`` value: its first fenced block, else all of it."""
    match = _FENCE.search(text)
    code = match.group(1) if match else text
    return code.strip("\n").rstrip()


@dataclass(frozen=True, slots=True)
class RunsCode(Effect):
    """Run code in the sandbox (its failures are results, not exceptions)."""

    sandbox: Sandbox
    code: str

    def run(self) -> SandboxResult:
        return self.sandbox.run(self.code)

    async def arun(self) -> SandboxResult:
        return await self.sandbox.arun(self.code)


class ProgramOfThought(Module, Generic[InT, OutT]):
    """Base class of generated program_of_thought predictors (see the module docstring).

    ``limits`` are the sandbox's (:class:`~sigforge.runtime.sandbox.SandboxLimits`:
    ``timeout``, ``memory_mb``, ...; default: the sandbox's defaults).
    """

    signature: ClassVar[type[Signature]]
    generate_predictor: ClassVar[type[Predict[Any, Any]]]
    regenerate_predictor: ClassVar[type[Predict[Any, Any]]]
    answer_predictor: ClassVar[type[Predict[Any, Any]]]
    default_max_iters: ClassVar[int] = 3

    def __init__(
        self,
        *,
        max_iters: int | None = None,
        limits: SandboxLimits | None = None,
        lm: BaseLM | None = None,
        adapter: Adapter | str | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        from ..sandbox import DEFAULT_LIMITS, Sandbox

        self.max_iters = self.default_max_iters if max_iters is None else max_iters
        if self.max_iters < 1:
            raise ValueError("max_iters must be at least 1")
        self.sandbox = Sandbox(DEFAULT_LIMITS if limits is None else limits)
        self.generate = self.generate_predictor(lm=lm, adapter=adapter, callbacks=callbacks)
        self.regenerate = self.regenerate_predictor(lm=lm, adapter=adapter, callbacks=callbacks)
        self.answer = self.answer_predictor(lm=lm, adapter=adapter, callbacks=callbacks)

    def run(self, inputs: InT) -> OutT:
        """Generate, run and repair code, then answer (the generated ``forward``)."""
        return drive(self._episode(inputs))

    async def arun(self, inputs: InT) -> OutT:
        """Async :meth:`run` (the sandbox runs the code as an asyncio subprocess)."""
        return await adrive(self._episode(inputs))

    def _episode(self, inputs: InT) -> Episode[OutT]:
        values = dict(inputs)
        generated = yield from predict(self.generate, self.generate.signature.inputs(**values))
        code = extract_code(generated.generated_code)
        output, error = yield from self._execute(code)
        attempts = 1
        while error is not None:
            if attempts >= self.max_iters:
                raise ProgramOfThoughtError(
                    f"{type(self).__name__}: no code ran successfully in {attempts} attempt"
                    f"{'s' if attempts > 1 else ''}; the last error: {error}",
                    code=code,
                    error=error,
                    attempts=attempts,
                )
            repair = self.regenerate.signature.inputs(**values, previous_code=code, error=error)
            generated = yield from predict(self.regenerate, repair)
            code = extract_code(generated.generated_code)
            output, error = yield from self._execute(code)
            attempts += 1
        answer_inputs = self.answer.signature.inputs(
            **values, final_generated_code=code, code_output=output
        )
        answered: OutT = yield from predict(self.answer, answer_inputs)
        return answered

    def _execute(self, code: str) -> Episode[tuple[str, str | None]]:
        """The code's output, or an error for the model to repair."""
        if not code.strip():
            return "", "the generated code is empty; write Python code in `generated_code`"
        result: SandboxResult = yield RunsCode(self.sandbox, code)
        if not result.ok:
            return "", result.error or f"the code failed ({result.kind})"
        output = result.stdout.strip()
        if not output:
            return "", "the code printed nothing; print the values the answer needs"
        return output, None
