"""What every optimizer shares: the contract, seeding, LM-call accounting, the record.

An optimizer turns a *student* program (a :class:`~sigforge.runtime.module.Module` or a
lone generated predictor) and a training set into a new, compiled program::

    compiled = BootstrapFewShot(metric=exact_match_on("answer"), seed=0).compile(
        student, trainset=trainset
    )

The contract, for every optimizer here:

* **The student is never changed.** Optimizers work on :meth:`~Module.reset_copy` /
  :meth:`~Module.deepcopy` copies (parameters copied, LMs and other resources shared);
  the returned program is a new object of the student's type.
* **Seeded.** All randomness comes from :class:`random.Random` instances made from the
  ``seed`` given to the constructor (a fresh one per :meth:`Optimizer.compile` call):
  the same seed, data and LM answers give the same compiled program and scores.
* **Parallel.** Scored evaluations of candidate programs go through
  :class:`~sigforge.runtime.evaluate.Evaluate` with ``num_threads`` threads; runs that
  are not evaluations (bootstrapping) use the same number of threads.
* **Progress.** ``progress=None`` (the default) shows tqdm bars on stderr when it is a
  terminal; ``True`` / ``False`` force them on or off.
* **Recorded.** The compiled program's ``optimization`` attribute says how it was made
  (:func:`optimization_record`); :func:`~sigforge.runtime.module.save_program` writes
  it with the program's instructions and demos::

      {"optimizer": "BootstrapFewShot", "settings": {"max_bootstrapped_demos": 4, ...},
       "seed": 0, "scores": {...}, "lm_calls": 24, "cached_lm_calls": 0,
       "trainset_size": 20, ...}

  ``lm_calls`` counts the LM calls made during ``compile`` (in this thread and in the
  threads the optimizer starts) that were not answered by the cache; cache hits are
  ``cached_lm_calls``.

Examples become demos with :func:`demo_for`: an :class:`~sigforge.runtime.example.Example`
is a mapping of any field names, a demo may only hold the predictor's own fields, so each
predictor keeps the example's values of its fields (a partial demo when some are
missing) and an example with none of its inputs or none of its outputs gives no demo.
"""

from __future__ import annotations

import abc
import hashlib
import json
import logging
import random
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ..errors import SigforgeError
from ..example import Example
from ..metrics import Metric, Score, as_score
from ..module import Program
from ..predictors import Demo, Predict

if TYPE_CHECKING:
    from tqdm import tqdm

    from ..pricing import UsageTracker

__all__ = [
    "DEFAULT_MAX_ERRORS",
    "ErrorBudget",
    "Optimizer",
    "OptimizerError",
    "ProgramT",
    "callable_name",
    "deep_copy",
    "demo_for",
    "demo_seed",
    "is_compiled",
    "optimization_record",
    "predictor_names",
    "progress_bar",
    "reset_copy",
    "run_program",
    "score_of",
    "tracked_calls",
]

logger = logging.getLogger("sigforge")

#: what ``max_errors=None`` means (DSPy's ``settings.max_errors``)
DEFAULT_MAX_ERRORS = 10

ProgramT = TypeVar("ProgramT", bound=Program)


class OptimizerError(SigforgeError):
    """An optimizer gave up: too many runs of the program or the metric failed.

    The last failure is the ``__cause__``; ``errors`` is how many there were."""

    def __init__(self, message: str, *, errors: int) -> None:
        super().__init__(message)
        self.errors = errors


class Optimizer(abc.ABC):
    """Base class of the optimizers: ``compile(student, trainset=...)`` returns a new program.

    Subclasses take their own settings in the constructor (plus ``seed``,
    ``num_threads`` and ``progress``), report them in :meth:`settings`, and finish
    ``compile`` with :meth:`_finish`.
    """

    def __init__(self, *, seed: int = 0, num_threads: int = 1, progress: bool | None = None) -> None:
        if num_threads < 1:
            raise ValueError("num_threads must be at least 1")
        self.seed = seed
        self.num_threads = num_threads
        self.progress = progress

    @property
    def name(self) -> str:
        return type(self).__name__

    @abc.abstractmethod
    def compile(
        self,
        student: ProgramT,
        *,
        trainset: Sequence[Example],
        valset: Sequence[Example] | None = None,
    ) -> ProgramT:
        """A new program optimized on ``trainset`` (and ``valset`` where the optimizer
        scores candidates); ``student`` is left as it was."""

    def settings(self) -> dict[str, Any]:
        """The optimizer's settings as JSON data, for the optimization record."""
        return {"num_threads": self.num_threads}

    def _rng(self) -> random.Random:
        return random.Random(self.seed)

    def _finish(
        self,
        program: ProgramT,
        usage: UsageTracker,
        *,
        trainset: Sequence[Example],
        valset: Sequence[Example] | None = None,
        scores: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> ProgramT:
        """Set the optimization record on ``program`` and return it."""
        program.optimization = optimization_record(
            self.name,
            self.settings(),
            seed=self.seed,
            scores=scores or {},
            usage=usage,
            trainset_size=len(trainset),
            valset_size=None if valset is None else len(valset),
            **extra,
        )
        return program


def optimization_record(
    optimizer: str,
    settings: Mapping[str, Any],
    *,
    seed: int,
    scores: Mapping[str, Any],
    usage: UsageTracker | None,
    trainset_size: int,
    valset_size: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``optimization`` record of a compiled program (JSON data; see the module doc).

    ``extra`` adds optimizer-specific entries (candidate scores, statistics)."""
    record: dict[str, Any] = {
        "optimizer": optimizer,
        "settings": dict(settings),
        "seed": seed,
        "scores": dict(scores),
        "lm_calls": 0 if usage is None else usage.calls - usage.cached_calls,
        "cached_lm_calls": 0 if usage is None else usage.cached_calls,
        "trainset_size": trainset_size,
    }
    if valset_size is not None:
        record["valset_size"] = valset_size
    record.update(extra)
    json.dumps(record)  # fail here, not when saving, if something is not JSON data
    return record


@contextmanager
def tracked_calls() -> Iterator[UsageTracker]:
    """Count the LM calls of the block (see :func:`~sigforge.runtime.pricing.track_usage`)."""
    from ..pricing import track_usage

    with track_usage() as usage:
        yield usage


# ---------------------------------------------------------------- running programs


def run_program(program: Program, inputs: Mapping[str, Any]) -> Any:
    """Call ``program`` with an example's inputs: a module's ``forward``, or a predictor's
    run on its validated inputs model."""
    if isinstance(program, Predict):
        return program.run(program.signature.inputs.model_validate(dict(inputs)))
    return cast(Any, program)(**inputs)


def reset_copy(program: ProgramT) -> ProgramT:
    """``program.reset_copy()`` (a copy without demos), typed as the program's own type."""
    return cast(ProgramT, program.reset_copy())


def deep_copy(program: ProgramT) -> ProgramT:
    """``program.deepcopy()``, typed as the program's own type."""
    return cast(ProgramT, program.deepcopy())


def score_of(metric: Metric, example: Example, prediction: Any) -> Score:
    """The metric's value for one prediction, as a :class:`Score`."""
    return as_score(metric(example, prediction))


class ErrorBudget:
    """Counts failed runs across threads; the one that reaches ``max_errors`` raises.

    As in DSPy, a failure (the program or the metric raising) counts as a failed run
    and is logged; the ``max_errors``-th one stops the optimizer with an
    :class:`OptimizerError` whose cause is that failure."""

    def __init__(self, max_errors: int | None, what: str) -> None:
        self.max_errors = DEFAULT_MAX_ERRORS if max_errors is None else max_errors
        if self.max_errors < 1:
            raise ValueError("max_errors must be at least 1")
        self.what = what
        self.count = 0
        self._lock = threading.Lock()

    def failed(self, error: Exception, example: Example) -> None:
        with self._lock:
            self.count += 1
            count = self.count
        if count >= self.max_errors:
            raise OptimizerError(
                f"{self.what}: {count} runs failed (max_errors={self.max_errors}); the last, "
                f"on example {example.id or dict(example.inputs)!r}: {type(error).__name__}: {error}",
                errors=count,
            ) from error
        logger.warning(
            "%s: run on example %r failed (%d of max_errors=%d): %s: %s",
            self.what,
            example.id or dict(example.inputs),
            count,
            self.max_errors,
            type(error).__name__,
            error,
        )


def progress_bar(progress: bool | None, total: int, description: str) -> tqdm[Any] | None:
    """A tqdm bar on stderr when ``progress`` says so (``None``: when stderr is a terminal)."""
    from ..batch import _progress_bar

    return _progress_bar(progress, total, description)


# ---------------------------------------------------------------- demos


def demo_for(predictor: Predict[Any, Any], example: Example | Mapping[str, Any]) -> Demo | None:
    """The demo ``example`` gives ``predictor``: its values of the predictor's fields.

    ``None`` when the example has none of the predictor's input fields or none of its
    output fields (an adapter would not show such a demo)."""
    values = example.to_dict() if isinstance(example, Example) else dict(example)
    sig = predictor.signature
    inputs = {f.name: values[f.name] for f in sig.input_fields if f.name in values}
    outputs = {f.name: values[f.name] for f in sig.output_fields if f.name in values}
    if not inputs or not outputs:
        return None
    return predictor._validate_demo({**inputs, **outputs})


def demo_seed(demos: Sequence[Demo]) -> int:
    """A seed that depends only on the demos' values (stable across processes)."""
    from pydantic_core import to_jsonable_python

    text = json.dumps(
        [to_jsonable_python(dict(d.values)) for d in demos], sort_keys=True, default=str
    )
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def callable_name(fn: Callable[..., Any] | None) -> str | None:
    """A readable name of a metric or function for the settings record."""
    if fn is None:
        return None
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))


def is_compiled(program: Program) -> bool:
    """Whether an optimizer made ``program`` (it carries an optimization record)."""
    return program.optimization is not None


def predictor_names(program: Program) -> dict[int, str]:
    """``id(predictor) -> name`` for a program's predictors (to map trace steps to names)."""
    return {id(p): name for name, p in program.named_predictors()}
