"""Evaluating a program on a dev set: parallel runs, per-example results, reports, resume.

``Evaluate(devset, metric)(program)`` calls ``program(**example.inputs)`` for every
example, scores each prediction with ``metric(example, prediction)`` and returns an
:class:`EvaluationResult`: the mean score and one :class:`ExampleResult` per example, in
dev-set order whatever ran first.

Errors. An exception raised by the *program* is that example's result: its ``error``
("TypeName: message"), no prediction, ``failure_score`` as its score; the run goes on
(``max_errors`` stops it with :class:`TooManyErrorsError` after that many). An exception
raised by the *metric* is a bug in the metric and is raised at once, as are
``KeyboardInterrupt`` and friends.

Executors. ``"threads"`` runs examples on a pool of ``num_threads`` threads and
``"asyncio"`` as that many asyncio tasks awaiting ``program.acall(...)`` (both through
:mod:`~sigforge.runtime.batch`, so each example sees the caller's settings); ``"ray"``
sends batches of examples to Ray workers as tasks (see :func:`_run_on_ray`).

Resume. With ``results_path`` every finished example is appended to a JSON Lines file at
once (written and flushed, so a crash loses only the examples in flight); with
``resume=True`` a later run reads it, checks that it belongs to this dev set, keeps those
results and runs only the other examples. The file starts with a header line::

    {"sigforge_evaluation": 1, "examples": 3, "devset": "<digest>", "metric": "exact_match_on('answer')"}

then holds one line per finished example::

    {"index": 0, "id": "q0", "example": "<digest of id, inputs, labels>",
     "prediction": {"answer": "Paris", "confidence": 0.9},
     "prediction_type": "generated.qa:AnswerQuestionOutputs",
     "score": 1.0, "feedback": "", "error": null, "duration": 0.41}

The prediction is stored as JSON together with its class; on resume it is rebuilt by
validating the JSON with that class (pydantic models, dataclasses, ...), so resumed
results hold the same typed predictions as fresh ones. Plain JSON values (strings,
numbers, lists, dicts) are stored as they are. A prediction whose class cannot be
imported any more (or no longer validates) is a clear error, never a silent dict.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import io
import json
import math
import os
import pickle
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TextIO, TypeVar, cast

from .batch import _progress_bar, arun_batch, run_batch
from .errors import ConfigurationError, SigforgeError
from .example import Example
from .metrics import MetricValue, Score, as_score

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = [
    "RESULTS_VERSION",
    "Evaluate",
    "EvaluationError",
    "EvaluationResult",
    "ExampleResult",
    "TooManyErrorsError",
]

#: Version of the results files written with ``results_path``.
RESULTS_VERSION = 1

OutT = TypeVar("OutT")

Executor = Literal["threads", "asyncio", "ray"]
_EXECUTORS = ("threads", "asyncio", "ray")


class EvaluationError(SigforgeError):
    """An evaluation cannot start or go on: a results file of another dev set, a program
    Ray cannot ship, ... (the message says what and how to fix it)."""


class TooManyErrorsError(EvaluationError):
    """The program failed on ``max_errors`` examples; the evaluation stopped.

    ``results`` holds the examples finished when the limit was reached (in dev-set
    order; with Ray, the whole batch that reached it). They are also in the results
    file, if any, with the examples that were in flight and finished after it, so
    ``resume=True`` continues from there. The last program error is the ``__cause__``
    (not with Ray: only its message comes back from the worker).
    """

    def __init__(self, message: str, results: list[ExampleResult[Any]]) -> None:
        super().__init__(message)
        self.results = results


@dataclass(frozen=True, slots=True)
class ExampleResult(Generic[OutT]):
    """How the program did on one example."""

    #: position in the dev set
    index: int
    example: Example
    #: what the program returned; ``None`` when it raised
    prediction: OutT | None
    #: the metric's score, or ``failure_score`` (and no feedback) when the program raised
    score: Score
    #: ``"TypeName: message"`` when the program raised
    error: str | None
    #: seconds the program took (the metric not included)
    duration: float


@dataclass(frozen=True)
class EvaluationResult(Generic[OutT]):
    """The mean score and every example's result, in dev-set order."""

    #: mean score over all examples, 0 to 1 (errors count as ``failure_score``)
    score: float
    results: list[ExampleResult[OutT]]

    @property
    def errors(self) -> int:
        """How many examples the program failed on."""
        return sum(result.error is not None for result in self.results)

    @property
    def percent(self) -> float:
        """The score in percent."""
        return self.score * 100

    def table(self, limit: int | None = 20, *, cell_width: int = 30) -> str:
        """A plain-text table for a terminal: one row per example, the first ``limit`` ones.

        Columns: ``#`` (index), ``id`` (when examples have ids), ``input.<name>``,
        ``label.<name>``, ``pred.<field>`` (``pred`` for a prediction without fields),
        ``score``, and ``error`` when an example failed. Cells are cut to
        ``cell_width`` characters (``…``); line breaks show as spaces.
        """
        rows = self.results if limit is None else self.results[: max(limit, 0)]
        columns = _columns(self.results)
        header = ["#", *(["id"] if columns.ids else []), *columns.names(), "score"]
        with_errors = self.errors > 0
        if with_errors:
            header.append("error")
        body = []
        for result in rows:
            cells = [str(result.index), *([result.example.id or ""] if columns.ids else [])]
            cells += [_cell(value) for value in columns.values(result)]
            cells.append(f"{result.score.value:.2f}")
            if with_errors:
                cells.append(result.error or "")
            body.append([_clip(cell, cell_width) for cell in cells])
        widths = [max(_width(row[i]) for row in [header, *body]) for i in range(len(header))]
        lines = [_line(header, widths), "  ".join("-" * width for width in widths)]
        lines += [_line(row, widths) for row in body]
        if len(rows) < len(self.results):
            lines.append(f"... {len(self.results) - len(rows)} more rows")
        lines.append(
            f"score {self.percent:.1f}% over {len(self.results)} examples"
            f" ({self.errors} error{'' if self.errors == 1 else 's'})"
        )
        return "\n".join(lines)

    def to_json(self, path: str | Path) -> None:
        """Write every example's inputs, labels, prediction (as JSON), score and error.

        The file is one JSON object: ``score``, ``percent``, ``examples``, ``errors`` and
        ``results`` (a list of objects with ``index``, ``id``, ``inputs``, ``labels``,
        ``prediction``, ``score``, ``feedback``, ``error``, ``duration``).
        """
        data = {
            "score": self.score,
            "percent": self.percent,
            "examples": len(self.results),
            "errors": self.errors,
            "results": [
                {
                    "index": result.index,
                    "id": result.example.id,
                    "inputs": _jsonable(dict(result.example.inputs)),
                    "labels": _jsonable(dict(result.example.labels)),
                    "prediction": _jsonable(result.prediction),
                    "score": result.score.value,
                    "feedback": result.score.feedback,
                    "error": result.error,
                    "duration": result.duration,
                }
                for result in self.results
            ],
        }
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        Path(path).write_text(text, encoding="utf-8")

    def to_csv(self, path: str | Path) -> None:
        """Write one row per example: the table's columns, uncut, plus feedback and duration.

        Columns: ``index``, ``id``, ``input.<name>``..., ``label.<name>``...,
        ``pred.<field>``..., ``score``, ``feedback``, ``error``, ``duration``. Strings are
        written as they are, other values as JSON; a missing value is an empty cell.
        """
        columns = _columns(self.results)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["index", "id", *columns.names(), "score", "feedback", "error", "duration"])
        for result in self.results:
            writer.writerow(
                [
                    result.index,
                    result.example.id or "",
                    *(_csv_cell(value) for value in columns.values(result)),
                    result.score.value,
                    result.score.feedback,
                    result.error or "",
                    result.duration,
                ]
            )
        Path(path).write_text(buffer.getvalue(), encoding="utf-8", newline="")


class Evaluate(Generic[OutT]):
    """Runs a program over a dev set and scores it: ``Evaluate(devset, metric)(program)``.

    ``num_threads``: examples in flight at once (threads, asyncio tasks, or threads per
    Ray task). ``executor``: ``"threads"``, ``"asyncio"`` (awaits ``program.acall``) or
    ``"ray"``. ``progress``: a progress bar with the running score on stderr (default:
    when stderr is a terminal). ``display_table``: print :meth:`EvaluationResult.table`
    after the run (``True``: 20 rows, a number: that many). ``results_path`` and
    ``resume``: see the module documentation. ``max_errors``: raise
    :class:`TooManyErrorsError` once the program has failed on that many examples in
    this run. ``failure_score``: the score of an example the program failed on.
    ``ray_batch_size``: examples per Ray task (default ``4 * num_threads``).
    """

    def __init__(
        self,
        devset: Sequence[Example],
        metric: Callable[[Example, OutT], MetricValue],
        *,
        num_threads: int = 8,
        executor: Executor = "threads",
        progress: bool | None = None,
        display_table: bool | int = False,
        results_path: str | Path | None = None,
        resume: bool = False,
        max_errors: int | None = None,
        failure_score: float = 0.0,
        ray_batch_size: int | None = None,
    ) -> None:
        if num_threads < 1:
            raise ValueError("num_threads must be at least 1")
        if executor not in _EXECUTORS:
            raise ValueError(
                f"executor must be one of {', '.join(map(repr, _EXECUTORS))}, not {executor!r}"
            )
        if max_errors is not None and max_errors < 1:
            raise ValueError("max_errors must be at least 1 (or None: never stop)")
        if resume and results_path is None:
            raise ValueError("resume=True needs results_path= (the file to resume from)")
        if ray_batch_size is not None and ray_batch_size < 1:
            raise ValueError("ray_batch_size must be at least 1")
        self.devset = list(devset)
        self.metric = metric
        self.num_threads = num_threads
        self.executor: Executor = executor
        self.progress = progress
        self.display_table = display_table
        self.results_path = None if results_path is None else Path(results_path)
        self.resume = resume
        self.max_errors = max_errors
        self.failure_score = float(failure_score)
        self.ray_batch_size = ray_batch_size or 4 * num_threads

    def __call__(
        self, program: Callable[..., OutT], *, devset: Sequence[Example] | None = None
    ) -> EvaluationResult[OutT]:
        """Evaluate ``program`` on the dev set (or on ``devset`` for this call)."""
        if self.executor == "asyncio":
            import asyncio

            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return asyncio.run(self.acall(program, devset=devset))
            raise EvaluationError(
                "Evaluate(executor='asyncio') was called inside a running event loop; "
                "use `await evaluate.acall(program)` there"
            )
        run = self._start(devset)
        try:
            if self.executor == "ray":
                _run_on_ray(self, run, program)
            else:
                self._run_threads(run, program)
        finally:
            run.close()
        return self._finish(run)

    async def acall(
        self, program: Callable[..., OutT], *, devset: Sequence[Example] | None = None
    ) -> EvaluationResult[OutT]:
        """Evaluate without blocking the event loop.

        With ``executor="asyncio"`` each example awaits ``program.acall(**inputs)``;
        with the other executors the whole evaluation runs in a worker thread.
        """
        if self.executor != "asyncio":
            import asyncio

            return await asyncio.to_thread(self.__call__, program, devset=devset)
        acall = getattr(program, "acall", None)
        if not callable(acall):
            raise EvaluationError(
                f"executor='asyncio' awaits program.acall(...), but {type(program).__name__} "
                f"has no acall method; use executor='threads'"
            )
        run = self._start(devset)
        try:
            await self._run_tasks(run, acall)
        finally:
            run.close()
        return self._finish(run)

    # ------------------------------------------------------------ executors
    def _run_threads(self, run: _Run, program: Callable[..., Any]) -> None:
        def one(index: int) -> None:
            outcome = _evaluate_one(
                program, self.metric, run.devset[index], index, self.failure_score
            )
            run.finish(outcome)

        run_batch(
            one, run.todo, concurrency=self.num_threads, return_exceptions=False, progress=False
        )

    async def _run_tasks(self, run: _Run, acall: Callable[..., Any]) -> None:
        async def one(index: int) -> None:
            example = run.devset[index]
            started = time.perf_counter()
            try:
                prediction = await acall(**example.inputs)
            except Exception as error:
                outcome = _failed(index, error, started, self.failure_score)
            else:
                outcome = _scored(self.metric, example, index, prediction, started)
            run.finish(outcome)

        await arun_batch(
            one, run.todo, concurrency=self.num_threads, return_exceptions=False, progress=False
        )

    # ------------------------------------------------------------ bookkeeping
    def _start(self, devset: Sequence[Example] | None) -> _Run:
        examples = self.devset if devset is None else list(devset)
        for index, example in enumerate(examples):
            if not isinstance(example, Example):
                raise TypeError(
                    f"the dev set must hold Example objects; item {index} is a "
                    f"{type(example).__name__} (build them with Example(inputs, labels) or load_jsonl)"
                )
        return _Run(self, examples)

    def _finish(self, run: _Run) -> EvaluationResult[OutT]:
        results = run.results()
        score = math.fsum(r.score.value for r in results) / len(results) if results else 0.0
        evaluation = EvaluationResult(score, results)
        if self.display_table is not False:
            rows = 20 if self.display_table is True else int(self.display_table)
            if rows > 0:
                print(evaluation.table(rows), file=sys.stdout, flush=True)
        return evaluation


# ---------------------------------------------------------------- one example
@dataclass(slots=True)
class _Outcome:
    """One finished example, as the executors hand it to :meth:`_Run.finish`."""

    index: int
    prediction: Any
    score: Score
    error: str | None
    duration: float
    #: the program's exception (kept locally for ``__cause__``; never sent by Ray)
    exception: BaseException | None = None


def _evaluate_one(
    program: Callable[..., Any],
    metric: Callable[[Example, Any], MetricValue],
    example: Example,
    index: int,
    failure_score: float,
) -> _Outcome:
    started = time.perf_counter()
    try:
        prediction = program(**example.inputs)
    except Exception as error:
        return _failed(index, error, started, failure_score)
    return _scored(metric, example, index, prediction, started)


def _failed(index: int, error: Exception, started: float, failure_score: float) -> _Outcome:
    message = str(error)
    described = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return _Outcome(
        index, None, Score(failure_score), described, time.perf_counter() - started, error
    )


def _scored(
    metric: Callable[[Example, Any], MetricValue],
    example: Example,
    index: int,
    prediction: Any,
    started: float,
) -> _Outcome:
    duration = time.perf_counter() - started
    try:
        score = as_score(metric(example, prediction))
    except Exception as error:
        name = getattr(metric, "__name__", type(metric).__name__)
        error.add_note(f"raised by the metric {name} on example {index} (id {example.id!r})")
        raise
    return _Outcome(index, prediction, score, None, duration)


# ---------------------------------------------------------------- one run
class _Run:
    """The state of one evaluation run: results so far, the results file, the progress bar."""

    def __init__(self, evaluate: Evaluate[Any], devset: list[Example]) -> None:
        self.devset = devset
        self.max_errors = evaluate.max_errors
        self.done: dict[int, ExampleResult[Any]] = {}
        self._lock = threading.Lock()
        self._new_errors = 0
        self._score_sum = 0.0
        self._log: TextIO | None = None
        self._bar: tqdm[Any] | None = None
        self._fingerprints: list[str] = []
        self._metric = getattr(evaluate.metric, "__name__", type(evaluate.metric).__name__)
        if evaluate.results_path is not None:
            self._fingerprints = [_fingerprint(example) for example in devset]
            self._open_log(evaluate.results_path, evaluate.resume, evaluate.failure_score)
        self._score_sum = math.fsum(r.score.value for r in self.done.values())
        self.todo = [index for index in range(len(devset)) if index not in self.done]
        try:
            self._bar = _progress_bar(evaluate.progress, len(self.todo), "Evaluate")
        except BaseException:
            self.close()
            raise

    def finish(self, outcome: _Outcome) -> None:
        """Record a finished example (file, progress); raise once ``max_errors`` is reached."""
        result = ExampleResult(
            outcome.index,
            self.devset[outcome.index],
            outcome.prediction,
            outcome.score,
            outcome.error,
            outcome.duration,
        )
        line = None if self._log is None else self._line(result)
        with self._lock:
            self.done[outcome.index] = result
            self._score_sum += result.score.value
            if self._log is not None and line is not None:
                self._log.write(line)
                self._log.flush()
            if self._bar is not None:
                self._bar.set_postfix_str(
                    f"score {100 * self._score_sum / len(self.done):.1f}%", refresh=False
                )
                self._bar.update(1)
            if outcome.error is None:
                return
            self._new_errors += 1
            if self._new_errors != self.max_errors:
                return
        stop = TooManyErrorsError(
            f"the program failed on {self.max_errors} examples (max_errors={self.max_errors}); "
            f"the last one, example {outcome.index}: {outcome.error}"
            + (
                ". Finished examples are in the results file: resume=True continues"
                if self._log
                else ""
            ),
            self.results(),
        )
        raise stop from outcome.exception

    def results(self) -> list[ExampleResult[Any]]:
        with self._lock:
            return [self.done[index] for index in sorted(self.done)]

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._log is not None:
            self._log.close()

    # ------------------------------------------------------------ the results file
    def _line(self, result: ExampleResult[Any]) -> str:
        prediction, kind = _stored_prediction(result.prediction, result.index)
        row = {
            "index": result.index,
            "id": result.example.id,
            "example": self._fingerprints[result.index],
            "prediction": prediction,
            "prediction_type": kind,
            "score": result.score.value,
            "feedback": result.score.feedback,
            "error": result.error,
            "duration": result.duration,
        }
        return json.dumps(row, ensure_ascii=False) + "\n"

    def _header(self) -> dict[str, Any]:
        return {
            "sigforge_evaluation": RESULTS_VERSION,
            "examples": len(self.devset),
            "devset": _digest("".join(self._fingerprints)),
            "metric": self._metric,
        }

    def _open_log(self, path: Path, resume: bool, failure_score: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume and path.exists():
            keep = self._read_log(path, failure_score)
            if keep:
                with path.open("r+b") as file:  # drop a line cut off by a crash
                    file.truncate(keep)
                    file.seek(keep - 1)
                    if file.read(1) != b"\n":
                        file.write(b"\n")
                self._log = path.open("a", encoding="utf-8")
                return
        self._log = path.open("w", encoding="utf-8")
        self._log.write(json.dumps(self._header(), ensure_ascii=False) + "\n")
        self._log.flush()

    def _read_log(self, path: Path, failure_score: float) -> int:
        """Load the finished examples of ``path``; returns how many bytes of it to keep.

        0 means nothing worth keeping (an empty file, or a header cut off by a crash).
        """
        lines = path.read_bytes().split(b"\n")
        offset = 0
        header = False
        types: dict[str, Any] = {}
        for number, raw in enumerate(lines, 1):
            last = number == len(lines)
            end = offset + len(raw) + (0 if last else 1)
            if not raw.strip():
                offset = end
                continue
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                if last:  # the line being written when the process died
                    break
                raise EvaluationError(
                    f"{path}:{number}: not a JSON line ({exc}); the file is damaged"
                ) from None
            if not header:
                self._check_header(path, row)
                header = True
            else:
                self._load_row(path, number, row, failure_score, types)
            offset = end
        return offset if header else 0

    def _check_header(self, path: Path, row: Any) -> None:
        if not isinstance(row, dict) or "sigforge_evaluation" not in row:
            raise EvaluationError(f"{path}: not a sigforge results file (no header line)")
        if row["sigforge_evaluation"] != RESULTS_VERSION:
            raise EvaluationError(
                f"{path}: results file version {row['sigforge_evaluation']!r}; "
                f"this runtime reads version {RESULTS_VERSION}"
            )
        header = self._header()
        if row.get("examples") != header["examples"]:
            raise self._mismatch(
                path, f"it has {row.get('examples')} examples, this dev set {header['examples']}"
            )
        if row.get("devset") != header["devset"]:
            raise self._mismatch(path, "the examples' ids, inputs or labels differ")

    def _mismatch(self, path: Path, why: str) -> EvaluationError:
        return EvaluationError(
            f"{path} holds results of another dev set ({why}); resume only with the dev set "
            f"it was made for, or start over with resume=False (which rewrites it)"
        )

    def _load_row(
        self, path: Path, number: int, row: Any, failure_score: float, types: dict[str, Any]
    ) -> None:
        where = f"{path}:{number}"
        try:
            index = row["index"]
            valid = isinstance(index, int) and 0 <= index < len(self.devset)
            if not valid or row["example"] != self._fingerprints[index]:
                raise self._mismatch(path, f"line {number} is not an example of this dev set")
            error = row["error"]
            score = (
                Score(failure_score)
                if error is not None
                else Score(float(row["score"]), str(row["feedback"]))
            )
            prediction = _rebuilt_prediction(
                row["prediction"], row["prediction_type"], types, where
            )
            duration = float(row["duration"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EvaluationError(
                f"{where}: not a results line ({type(exc).__name__}: {exc})"
            ) from None
        self.done[index] = ExampleResult(
            index, self.devset[index], prediction, score, error, duration
        )


# ---------------------------------------------------------------- storing predictions
_JSON_TYPES = (str, int, float, bool, list, dict, type(None))


def _stored_prediction(prediction: Any, index: int) -> tuple[Any, str | None]:
    """``prediction`` as JSON, and the class to rebuild it with (``None``: plain JSON)."""
    from pydantic_core import PydanticSerializationError, to_jsonable_python

    try:
        data = to_jsonable_python(prediction)
    except PydanticSerializationError as exc:
        raise EvaluationError(
            f"the prediction of example {index} ({type(prediction).__name__}) cannot be stored "
            f"as JSON in the results file: {exc}"
        ) from None
    if isinstance(prediction, _JSON_TYPES):
        return data, None
    cls = type(prediction)
    return data, f"{cls.__module__}:{cls.__qualname__}"


def _rebuilt_prediction(data: Any, kind: Any, types: dict[str, Any], where: str) -> Any:
    if kind is None:
        return data
    if not isinstance(kind, str):
        raise TypeError("prediction_type must be a string or null")
    adapter = types.get(kind)
    if adapter is None:
        from pydantic import TypeAdapter

        adapter = types[kind] = TypeAdapter(_import_class(kind, where))
    try:
        return adapter.validate_python(data)
    except Exception as exc:
        raise EvaluationError(
            f"{where}: the stored prediction no longer validates as {kind} ({exc}); "
            f"start over with resume=False"
        ) from None


def _import_class(path: str, where: str) -> type[Any]:
    module_name, _, qualname = path.partition(":")
    try:
        value: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError):
        hint = (
            " (a class defined inside a function cannot be imported)"
            if "<locals>" in qualname
            else ""
        )
        raise EvaluationError(
            f"{where}: cannot rebuild the prediction: class {path} cannot be imported{hint}"
        ) from None
    if not isinstance(value, type):
        raise EvaluationError(f"{where}: cannot rebuild the prediction: {path} is not a class")
    return value


def _fingerprint(example: Example) -> str:
    """A digest of what identifies an example's result: its id, inputs and labels."""
    data = _jsonable([example.id, dict(example.inputs), dict(example.labels)])
    return _digest(json.dumps(data, sort_keys=True, ensure_ascii=False))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def _jsonable(value: Any) -> Any:
    """JSON data for reports; values JSON cannot hold become their repr."""
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value, fallback=repr)


# ---------------------------------------------------------------- tables and exports
@dataclass(frozen=True, slots=True)
class _Columns:
    ids: bool
    inputs: list[str]
    labels: list[str]
    #: prediction fields; ``[""]`` for predictions without fields
    predictions: list[str]

    def names(self) -> list[str]:
        return [
            *(f"input.{name}" for name in self.inputs),
            *(f"label.{name}" for name in self.labels),
            *(f"pred.{name}" if name else "pred" for name in self.predictions),
        ]

    def values(self, result: ExampleResult[Any]) -> list[Any]:
        example = result.example
        predicted = _prediction_fields(result.prediction)
        return [
            *(example.inputs.get(name) for name in self.inputs),
            *(example.labels.get(name) for name in self.labels),
            *(predicted.get(name) for name in self.predictions),
        ]


def _columns(results: Sequence[ExampleResult[Any]]) -> _Columns:
    inputs: dict[str, None] = {}
    labels: dict[str, None] = {}
    predictions: dict[str, None] = {}
    for result in results:
        inputs.update(dict.fromkeys(result.example.inputs))
        labels.update(dict.fromkeys(result.example.labels))
        predictions.update(dict.fromkeys(_prediction_fields(result.prediction)))
    ids = any(result.example.id is not None for result in results)
    return _Columns(ids, list(inputs), list(labels), list(predictions))


def _prediction_fields(prediction: Any) -> dict[str, Any]:
    from pydantic import BaseModel

    if prediction is None:
        return {}
    if isinstance(prediction, BaseModel):
        return {name: getattr(prediction, name) for name in type(prediction).model_fields}
    if isinstance(prediction, Mapping):
        return {str(key): value for key, value in prediction.items()}
    if is_dataclass(prediction) and not isinstance(prediction, type):
        return {f.name: getattr(prediction, f.name) for f in fields(prediction)}
    return {"": prediction}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    return json.dumps(_jsonable(value), ensure_ascii=False)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(_jsonable(value), ensure_ascii=False)


def _char_width(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _width(text: str) -> int:
    return sum(_char_width(char) for char in text)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    if _width(text) <= width:
        return text
    kept, used = [], 0
    for char in text:
        used += _char_width(char)
        if used > width - 1:
            break
        kept.append(char)
    return "".join(kept) + "…"


def _line(cells: list[str], widths: list[int]) -> str:
    return "  ".join(
        cell + " " * (width - _width(cell)) for cell, width in zip(cells, widths, strict=True)
    ).rstrip()


# ---------------------------------------------------------------- Ray
def _run_on_ray(evaluate: Evaluate[Any], run: _Run, program: Callable[..., Any]) -> None:
    """Run the examples still to do as Ray tasks, ``evaluate.ray_batch_size`` per task.

    Connects to the Ray session of this process if there is one (``ray.init`` was
    called), else to the cluster at ``RAY_ADDRESS``, else starts a local instance (left
    running for later evaluations; ``ray.shutdown()`` stops it). The program, the metric
    and the LM and adapter set with ``configure``/``context`` are pickled once
    (:func:`_pickled`) and put in the object store; each task unpickles its own copy and
    runs its examples on ``num_threads`` threads. The driver records each batch as it
    comes back, so the results file and the progress bar advance batch by batch.
    """
    if not run.todo:
        return
    ray = _ray()
    payload = ray.put(_pickled(program, evaluate.metric))
    remote = ray.remote(_evaluate_batch)
    size = evaluate.ray_batch_size
    batches = [run.todo[i : i + size] for i in range(0, len(run.todo), size)]
    pending = [
        remote.remote(
            payload,
            [(i, run.devset[i]) for i in batch],
            evaluate.failure_score,
            evaluate.num_threads,
        )
        for batch in batches
    ]
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            try:
                outcomes: list[_Outcome] = ray.get(ready[0])
            except ray.exceptions.RayTaskError as error:
                cause = getattr(error, "cause", None)
                if isinstance(cause, BaseException):
                    raise cause from error
                raise
            stop: TooManyErrorsError | None = None
            for outcome in outcomes:  # record the whole batch, then stop if need be
                try:
                    run.finish(outcome)
                except TooManyErrorsError as error:
                    stop = error
            if stop is not None:
                stop.results = run.results()  # the whole batch
                raise stop
    finally:
        for ref in pending:
            ray.cancel(ref)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise EvaluationError(
            "executor='ray' needs Ray: pip install 'sigforge[ray]' (or pip install 'ray>=2.40')"
        ) from None
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address)
        else:
            ray.init(address="local", include_dashboard=False)
    return ray


def _pickled(program: Callable[..., Any], metric: Callable[..., Any]) -> bytes:
    """The program, the metric and the LM and adapter in effect, pickled for Ray workers.

    Settings do not travel to other processes by themselves, so the LM and adapter set
    with ``configure``/``context`` go along and are set in the worker (the cache and
    callbacks settings do not: workers use their own). LMs pickle themselves as their
    settings (see :class:`~sigforge.runtime.lm.LM`: no open connections; a key from the
    environment is read again from the worker's). :func:`_dumps` adds one thing to
    cloudpickle: locks, which other parts of a program may hold (circuit breakers, rate
    limiters, embedders, retrievers), are pickled as new locks.
    """
    from .settings import current_adapter, current_lm

    try:
        lm = current_lm()
    except ConfigurationError:
        lm = None
    parts = {
        "the program": program,
        "the metric": metric,
        "the configured LM": lm,
        "the configured adapter": current_adapter(),
    }
    try:
        return _dumps(tuple(parts.values()))
    except Exception:
        for name, value in parts.items():
            try:
                _dumps(value)
            except Exception as exc:
                raise EvaluationError(
                    f"executor='ray' sends {name} to Ray workers by pickling it, but it cannot be "
                    f"pickled ({type(exc).__name__}: {exc}). Give it only picklable parts (LMs, "
                    f"predictors and plain data pickle; open files, sockets and generators do not), "
                    f"or use executor='threads'"
                ) from exc
        raise


_LOCK_TYPES = {type(threading.Lock()): threading.Lock, type(threading.RLock()): threading.RLock}


def _dumps(value: Any) -> bytes:
    """cloudpickle, with each lock pickled as a new lock of its kind."""
    from ray import cloudpickle

    base: Any = cloudpickle.Pickler

    class Pickler(base):  # type: ignore[misc]
        def reducer_override(self, obj: Any) -> Any:
            new_lock = _LOCK_TYPES.get(type(obj))
            if new_lock is not None:
                return new_lock, ()
            return super().reducer_override(obj)

    buffer = io.BytesIO()
    pickler: Any = Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dump(value)
    return buffer.getvalue()


def _evaluate_batch(
    payload: bytes, items: list[tuple[int, Example]], failure_score: float, threads: int
) -> list[_Outcome]:
    """A Ray task: evaluate ``items`` (index, example) on ``threads`` threads."""
    from .settings import context

    program, metric, lm, adapter = pickle.loads(payload)
    overrides = {
        name: value for name, value in (("lm", lm), ("adapter", adapter)) if value is not None
    }

    def one(item: tuple[int, Example]) -> _Outcome:
        return _evaluate_one(program, metric, item[1], item[0], failure_score)

    with context(**overrides):
        outcomes = run_batch(
            one, items, concurrency=threads, return_exceptions=False, progress=False
        )
    done = cast("list[_Outcome]", outcomes)
    for outcome in done:
        outcome.exception = None  # exceptions may not pickle; the message is in `error`
    return done
