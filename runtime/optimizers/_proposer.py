"""What the instruction optimizers (COPRO, MIPROv2, GEPA) share.

* **Their own LM programs.** The prompts they send (propose an instruction, describe
  the data, reflect on feedback) are sigforge signatures: ``.sig`` files in
  ``runtime/optimizers/signatures/`` generated into the package
  :mod:`sigforge.runtime.optimizers.prompts` (``sigforge check --src
  runtime/optimizers/signatures --out runtime/optimizers/prompts`` keeps it fresh). A
  proposer predictor runs on the optimizer's ``prompt_model`` (``None``: the configured
  LM) with :func:`proposer_config`: a temperature and a ``rollout_id``, so that several
  proposals for the same prompt are separate answers (also through a cache).
* **Text for those prompts.** :func:`example_text` / :func:`demo_text` write an example
  or a demo as ``field: value`` lines; :func:`program_outline` writes what a program is
  made of (its source when Python can find it, and each predictor's kind, fields and
  instructions); :func:`clean_instruction` tidies a proposed instruction.
* **Candidates.** A candidate is a program that differs from the student only in its
  instructions (and, for MIPROv2, demos): :func:`instructions_of` reads them,
  :func:`with_instructions` makes the copy.
* **Scoring.** :class:`Scorer` scores candidates on sets of examples through
  :class:`~sigforge.runtime.evaluate.Evaluate` (``num_threads`` in parallel) and keeps
  every example's outcome, with the steps each predictor took (for GEPA's reflection).
  It remembers outcomes by the candidate's state (instructions, demos and config of
  every predictor) and the example, so a candidate met again is not run again -- as a
  cache would answer DSPy's repeated evaluations -- and counts the examples it scored
  (``metric_calls``) and those it had to run (``runs``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel

from ..example import Example
from ..metrics import Metric, Score
from ..module import Program
from ..predictors import ChainOfThought, Demo, Predict
from ..trace import recording
from .base import DEFAULT_MAX_ERRORS, ProgramT, deep_copy

__all__ = [
    "Outcome",
    "Scorer",
    "Step",
    "clean_instruction",
    "demo_text",
    "example_text",
    "instructions_of",
    "mean",
    "predictor_outline",
    "program_outline",
    "proposer_config",
    "run_all",
    "state_key",
    "value_text",
    "with_instructions",
]


def proposer_config(temperature: float, rollout_id: int | None = None) -> dict[str, Any]:
    """Request parameters of one proposal: its ``temperature`` and, when given, a
    ``rollout_id`` (a separate answer to an otherwise identical request)."""
    config: dict[str, Any] = {"temperature": temperature}
    if rollout_id is not None:
        config["rollout_id"] = rollout_id
    return config


# ---------------------------------------------------------------- text for prompts


def value_text(value: Any) -> str:
    """A field value as prompt text: strings as they are, models and containers as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    from pydantic_core import to_jsonable_python

    return json.dumps(to_jsonable_python(value), ensure_ascii=False, default=str)


def _lines(values: Mapping[str, Any]) -> str:
    return "\n".join(f"{name}: {value_text(value)}" for name, value in values.items())


def example_text(example: Example) -> str:
    """An example as ``field: value`` lines: its inputs, then its labels."""
    return _lines(example.to_dict())


def demo_text(demo: Demo) -> str:
    """A demo as ``field: value`` lines, in the demo's field order."""
    return _lines(demo.values)


_LABEL = re.compile(
    r"^\s*(?:\*\*)?(?:(?:new|proposed|improved|updated|revised|final)\s+)?instructions?"
    r"(?:\*\*)?\s*:\s*(?:\*\*)?\s*",
    re.IGNORECASE,
)


def clean_instruction(text: str) -> str:
    """A proposed instruction without surrounding quotes, a code fence or a leading label
    such as ``Proposed instruction:`` (models often add them)."""
    cleaned = text.strip()
    if cleaned.startswith("```"):
        cleaned = cleaned[3:].removesuffix("```")
        first, newline, rest = cleaned.partition("\n")
        if newline and first.strip() and " " not in first.strip():
            cleaned = rest  # a language tag after the opening fence
    cleaned = _LABEL.sub("", cleaned.strip(), count=1)
    if len(cleaned) > 1 and cleaned[0] == cleaned[-1] and cleaned[0] in "\"'":
        cleaned = cleaned[1:-1]
    return cleaned.strip()


def _kind(predictor: Predict[Any, Any]) -> str:
    return "chain_of_thought" if isinstance(predictor, ChainOfThought) else "predict"


def predictor_outline(name: str, predictor: Predict[Any, Any]) -> str:
    """One predictor: ``name = Class: kind(Signature)(inputs) -> outputs`` and its instructions."""
    sig = predictor.signature
    inputs = ", ".join(f"{f.name}: {f.type_name}" for f in sig.input_fields)
    outputs = ", ".join(f"{f.name}: {f.type_name}" for f in sig.output_fields)
    return (
        f"{name} = {type(predictor).__name__}: {_kind(predictor)}({sig.name})"
        f"({inputs}) -> {outputs}\n"
        f"    instructions: {predictor.instructions}"
    )


def program_outline(program: Program) -> str:
    """What a program is made of, for a proposer that reads programs (MIPROv2's
    ``program_code``): a module's Python source when it can be found, then its predictors."""
    parts: list[str] = []
    if not isinstance(program, Predict):
        try:
            parts.append(inspect.getsource(type(program)).rstrip())
        except (OSError, TypeError):
            parts.append(f"class {type(program).__name__}(Module): (source not available)")
    parts.append("Language-model calls:")
    parts.extend(predictor_outline(name, p) for name, p in program.named_predictors())
    return "\n".join(parts)


# ---------------------------------------------------------------- candidates


def instructions_of(program: Program) -> dict[str, str]:
    """Each predictor's instructions in use, by predictor name."""
    return {name: p.instructions for name, p in program.named_predictors()}


def with_instructions(
    program: ProgramT,
    instructions: Mapping[str, str],
    demos: Mapping[str, Sequence[Demo]] | None = None,
) -> ProgramT:
    """A copy of ``program`` whose named predictors get these instructions (and demos)."""
    new = deep_copy(program)
    for name, predictor in new.named_predictors():
        if name in instructions:
            predictor.instructions = instructions[name]
        if demos is not None and name in demos:
            predictor.demos = list(demos[name])
    return new


# ---------------------------------------------------------------- scoring


@dataclass(frozen=True, slots=True)
class Step:
    """One predictor call of a scored run: the predictor's name, inputs and outputs."""

    predictor: str
    inputs: BaseModel
    outputs: BaseModel


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a candidate did on one example."""

    score: Score
    prediction: Any
    #: ``"TypeName: message"`` when the program raised
    error: str | None
    #: the predictor calls of the run, in the order they ended
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class _TracedRun:
    prediction: Any
    steps: tuple[Step, ...]


class _Traced:
    """A program that returns its prediction together with the steps it took."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.names = {id(p): name for name, p in program.named_predictors()}

    def __call__(self, **inputs: Any) -> _TracedRun:
        with recording() as steps:
            prediction = cast(Callable[..., Any], self.program)(**inputs)
        return _TracedRun(
            prediction,
            tuple(
                Step(self.names[id(s.predictor)], s.inputs, s.outputs)
                for s in steps
                if id(s.predictor) in self.names
            ),
        )


def state_key(program: Program) -> str:
    """A digest of what makes candidates differ: every predictor's state and config."""
    from pydantic_core import to_jsonable_python

    data = [
        (name, p.dump_state(), to_jsonable_python(p.config, fallback=repr))
        for name, p in program.named_predictors()
    ]
    text = json.dumps(data, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _example_key(example: Example) -> str:
    text = json.dumps([example.id, example.to_dict()], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


class Scorer:
    """Scores candidate programs on examples (see the module docstring)."""

    def __init__(
        self,
        metric: Metric,
        *,
        num_threads: int,
        max_errors: int | None = None,
        failure_score: float = 0.0,
    ) -> None:
        self.metric = metric
        self.num_threads = num_threads
        self.max_errors = DEFAULT_MAX_ERRORS if max_errors is None else max_errors
        self.failure_score = failure_score
        #: examples scored (memory hits included) and examples run
        self.metric_calls = 0
        self.runs = 0
        self._memory: dict[tuple[str, str], Outcome] = {}
        self._lock = threading.Lock()

    def _metric(self, example: Example, run: _TracedRun) -> Any:
        return self.metric(example, run.prediction)

    def outcomes(self, program: Program, examples: Sequence[Example]) -> list[Outcome]:
        """Every example's outcome, in order; only the ones not met before are run."""
        from ..evaluate import Evaluate

        key = state_key(program)
        keys = [(key, _example_key(example)) for example in examples]
        with self._lock:
            known = {k: self._memory[k] for k in keys if k in self._memory}
        todo: dict[tuple[str, str], Example] = {}
        for example, k in zip(examples, keys, strict=True):
            if k not in known:
                todo.setdefault(k, example)
        missing = list(todo.values())
        if missing:
            evaluate = Evaluate(
                missing,
                self._metric,
                num_threads=self.num_threads,
                progress=False,
                max_errors=self.max_errors,
                failure_score=self.failure_score,
            )
            traced = _Traced(program)
            result = evaluate(traced)
            for k, done in zip(todo, result.results, strict=True):
                run = done.prediction
                known[k] = Outcome(
                    done.score,
                    None if run is None else run.prediction,
                    done.error,
                    () if run is None else run.steps,
                )
            with self._lock:
                self._memory.update({k: known[k] for k in keys})
                self.runs += len(missing)
        with self._lock:
            self.metric_calls += len(examples)
        return [known[k] for k in keys]

    def score(self, program: Program, examples: Sequence[Example]) -> float:
        """The mean score of ``program`` on ``examples`` (as :class:`Evaluate` computes it)."""
        return mean([o.score.value for o in self.outcomes(program, examples)])


def mean(values: Sequence[float]) -> float:
    """The mean of ``values`` (0.0 for none)."""
    return math.fsum(values) / len(values) if values else 0.0


def run_all(fn: Callable[[int], str], count: int, num_threads: int) -> list[str]:
    """``fn(0) .. fn(count - 1)`` on up to ``num_threads`` threads, in order; the first
    failure is raised."""
    from ..batch import run_batch

    results = run_batch(
        fn, list(range(count)), concurrency=num_threads, return_exceptions=False, progress=False
    )
    return [str(r) for r in results]
