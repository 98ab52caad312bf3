"""``sigforge evaluate`` and ``sigforge optimize``: run programs from the command line.

Both take the program as a Python entry point, ``package.module:name``, naming a
generated predictor class or a :class:`~sigforge.runtime.module.Module` subclass (built
with no arguments), a function returning a program (the place to give it an LM), or a
program object. The working directory is importable, as with ``python -m``.

Datasets are JSON Lines files; ``--inputs`` names the keys passed to the program, every
other key is a label for the metric. The metric is an entry point to a callable
``metric(example, prediction)`` or a built-in ``NAME:FIELD``: ``exact_match:answer``,
``f1:answer``, ``answer_match:answer``, ``passage_match:context`` (see
:mod:`sigforge.runtime.metrics`).
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

if TYPE_CHECKING:
    from sigforge.runtime.evaluate import EvaluationResult
    from sigforge.runtime.example import Example
    from sigforge.runtime.metrics import Metric
    from sigforge.runtime.module import Program
    from sigforge.runtime.optimizers import Optimizer

#: ``--optimizer`` names -> (module, class) in ``sigforge.runtime.optimizers``
OPTIMIZERS: dict[str, tuple[str, str]] = {
    "labeled": ("labeled", "LabeledFewShot"),
    "bootstrap": ("bootstrap", "BootstrapFewShot"),
    "random_search": ("random_search", "BootstrapFewShotWithRandomSearch"),
    "copro": ("copro", "COPRO"),
    "mipro": ("mipro", "MIPROv2"),
    "gepa": ("gepa", "GEPA"),
}

#: built-in ``--metric NAME:FIELD`` -> factory name in ``sigforge.runtime.metrics``
BUILTIN_METRICS = {
    "exact_match": "exact_match_on",
    "f1": "f1_on",
    "answer_match": "answer_match_on",
    "passage_match": "passage_match_on",
}


# ---------------------------------------------------------------- loading
def load_entry_point(spec: str, what: str) -> Any:
    """The object named ``package.module:attribute`` (dots allowed in the attribute)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise click.BadParameter(f"{spec!r}: expected `package.module:name` for the {what}")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"{spec!r}: cannot import `{module_name}` ({exc})") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise click.BadParameter(f"{spec!r}: `{module_name}` has no `{attribute}`") from None
    return target


def load_program(spec: str) -> Program:
    """A program from an entry point: a class or factory is called with no arguments."""
    from sigforge.runtime.module import Module
    from sigforge.runtime.predictors import Predict

    target = load_entry_point(spec, "program")
    if isinstance(target, Module | Predict):
        return target
    if callable(target):
        try:
            target = target()
        except TypeError as exc:
            raise click.BadParameter(
                f"{spec!r}: could not build the program with no arguments ({exc}); point at a "
                f"function that builds it"
            ) from None
    if not isinstance(target, Module | Predict):
        raise click.BadParameter(
            f"{spec!r}: expected a generated predictor or a Module, got {type(target).__name__}"
        )
    return target


def _callable(program: Program) -> Callable[..., Any]:
    """A program as Evaluate calls it (generated predictors and modules are callable)."""
    return cast("Callable[..., Any]", program)


def load_metric(spec: str) -> Metric:
    """A built-in ``NAME:FIELD`` metric, or a callable from an entry point."""
    name, _, field = spec.partition(":")
    if name in BUILTIN_METRICS and field.isidentifier():
        from sigforge.runtime import metrics

        factory: Callable[[str], Metric] = getattr(metrics, BUILTIN_METRICS[name])
        return factory(field)
    target = load_entry_point(spec, "metric")
    if not callable(target):
        raise click.BadParameter(f"{spec!r}: the metric must be callable")
    return target  # type: ignore[no-any-return]


def load_dataset(path: Path, inputs: str) -> list[Example]:
    from sigforge.runtime.example import DatasetError, load_jsonl

    names = [name.strip() for name in inputs.split(",") if name.strip()]
    if not names:
        raise click.BadParameter("name at least one input key, e.g. --inputs question")
    try:
        examples = load_jsonl(path, names)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    if not examples:
        raise click.ClickException(f"{path}: no examples")
    return examples


def _configure_lm(model: str | None, base_url: str | None) -> None:
    if model is None:
        return
    from sigforge.runtime.lm import LM
    from sigforge.runtime.settings import configure

    configure(lm=LM(model, base_url=base_url))


def parse_settings(values: tuple[str, ...]) -> dict[str, Any]:
    """``--set key=value`` pairs; values are JSON when they parse as JSON, else strings."""
    settings: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise click.BadParameter(f"{item!r}: expected key=value, e.g. --set max_rounds=2")
        try:
            settings[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            settings[key.strip()] = raw
    return settings


def build_optimizer(name: str, metric: Metric, settings: dict[str, Any], *, threads: int) -> Optimizer:
    """The optimizer ``name`` with ``settings`` (checked against its constructor)."""
    module_name, class_name = OPTIMIZERS[name]
    try:
        module = importlib.import_module(f"sigforge.runtime.optimizers.{module_name}")
    except ImportError as exc:
        raise click.ClickException(f"optimizer {name!r} is not available here ({exc})") from None
    cls = getattr(module, class_name)
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        options = ", ".join(p for p in accepted if p != "metric")
        raise click.BadParameter(
            f"{class_name} has no setting {', '.join(unknown)} (settings: {options})"
        )
    if "metric" in accepted:
        settings = {"metric": metric, **settings}
    if "num_threads" in accepted:
        settings.setdefault("num_threads", threads)
    try:
        optimizer: Optimizer = cls(**settings)
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(f"{class_name}: {exc}") from None
    return optimizer


# ---------------------------------------------------------------- commands
_program = click.argument("program")
_inputs = click.option(
    "--inputs",
    required=True,
    metavar="KEY[,KEY...]",
    help="Dataset keys passed to the program; every other key is a label.",
)
_metric = click.option(
    "--metric",
    required=True,
    metavar="SPEC",
    help="A built-in NAME:FIELD (exact_match, f1, answer_match, passage_match) or "
    "package.module:function.",
)
_threads = click.option("--threads", default=8, show_default=True, help="Examples in flight at once.")
_lm = click.option(
    "--lm",
    "model",
    metavar="PROVIDER/MODEL",
    help="Configure this LM for predictors without one, e.g. openai/gpt-4o-mini.",
)
_base_url = click.option("--base-url", help="Base URL of an OpenAI-compatible server for --lm.")


@click.command()
@_program
@click.option(
    "--data", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Dev set (JSON Lines).",
)
@_inputs
@_metric
@click.option(
    "--load", "artifact", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Load this program file (e.g. from `sigforge optimize`) into the program first.",
)
@_threads
@click.option(
    "--executor", type=click.Choice(["threads", "asyncio", "ray"]), default="threads",
    show_default=True,
)
@click.option(
    "--results", type=click.Path(dir_okay=False, path_type=Path),
    help="Write each finished example to this JSON Lines file (see --resume).",
)
@click.option("--resume", is_flag=True, help="Skip the examples already in --results.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Export all results as JSON.")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path), help="Export all results as CSV.")
@click.option("--table", default=20, show_default=True, help="Rows of the results table to print (0: none).")
@_lm
@_base_url
def evaluate(
    program: str,
    data: Path,
    inputs: str,
    metric: str,
    artifact: Path | None,
    threads: int,
    executor: str,
    results: Path | None,
    resume: bool,
    json_out: Path | None,
    csv_out: Path | None,
    table: int,
    model: str | None,
    base_url: str | None,
) -> None:
    """Score PROGRAM (package.module:name) on a dev set and print the results."""
    from sigforge.runtime.errors import SigforgeError
    from sigforge.runtime.evaluate import Evaluate

    _configure_lm(model, base_url)
    loaded = load_program(program)
    devset = load_dataset(data, inputs)
    metric_fn = load_metric(metric)
    try:
        if artifact is not None:
            loaded.load(artifact)
        evaluation = Evaluate(
            devset, metric_fn, num_threads=threads, executor=executor,  # type: ignore[arg-type]
            results_path=results, resume=resume,
        )
        outcome = evaluation(_callable(loaded))
    except SigforgeError as exc:
        raise click.ClickException(str(exc)) from None
    if table:
        click.echo(outcome.table(limit=table))
    if json_out is not None:
        outcome.to_json(json_out)
    if csv_out is not None:
        outcome.to_csv(csv_out)
    click.echo(_score_line(outcome, len(devset)))


def _score_line(outcome: EvaluationResult[Any], size: int) -> str:
    errors = f", {outcome.errors} failed" if outcome.errors else ""
    return f"score {outcome.percent:.1f}% on {size} examples{errors}"


@click.command()
@_program
@click.option(
    "--optimizer", "optimizer_name", type=click.Choice(sorted(OPTIMIZERS)), required=True,
    help="Which optimizer to run.",
)
@click.option(
    "--train", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Training set (JSON Lines).",
)
@click.option(
    "--val", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Validation set (JSON Lines) for optimizers that score candidates, and for the report.",
)
@_inputs
@_metric
@click.option(
    "--set", "settings", multiple=True, metavar="KEY=VALUE",
    help="An optimizer setting (JSON value), e.g. --set max_bootstrapped_demos=4. Repeatable.",
)
@click.option("--seed", default=0, show_default=True)
@_threads
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the optimized program (e.g. qa.optimized.json).",
)
@click.option(
    "--report", type=click.Path(dir_okay=False, path_type=Path),
    help="Write a JSON report: scores before and after, time, LM calls, the optimization record.",
)
@_lm
@_base_url
def optimize(
    program: str,
    optimizer_name: str,
    train: Path,
    val: Path | None,
    inputs: str,
    metric: str,
    settings: tuple[str, ...],
    seed: int,
    threads: int,
    out: Path,
    report: Path | None,
    model: str | None,
    base_url: str | None,
) -> None:
    """Optimize PROGRAM (package.module:name) on a training set and save it to --out."""
    from sigforge.runtime.errors import SigforgeError
    from sigforge.runtime.evaluate import Evaluate

    _configure_lm(model, base_url)
    student = load_program(program)
    trainset = load_dataset(train, inputs)
    valset = load_dataset(val, inputs) if val is not None else None
    metric_fn = load_metric(metric)
    chosen = parse_settings(settings)
    chosen.setdefault("seed", seed)
    optimizer = build_optimizer(optimizer_name, metric_fn, chosen, threads=threads)
    try:
        before = None
        if valset is not None:
            before = Evaluate(valset, metric_fn, num_threads=threads)(_callable(student))
        started = time.perf_counter()
        compiled = optimizer.compile(student, trainset=trainset, valset=valset)
        seconds = time.perf_counter() - started
        after = None
        if valset is not None:
            after = Evaluate(valset, metric_fn, num_threads=threads)(_callable(compiled))
        compiled.save(out)
    except SigforgeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{optimizer.name}: optimized in {seconds:.1f} s; wrote {out}")
    if before is not None and after is not None:
        click.echo(f"validation score {before.percent:.1f}% -> {after.percent:.1f}% on {len(before.results)} examples")
    if report is not None:
        data = {
            "program": program,
            "optimizer": optimizer.name,
            "seconds": round(seconds, 3),
            "validation": None if before is None or after is None else {
                "before": before.score, "after": after.score, "examples": len(before.results),
            },
            "optimization": compiled.optimization,
            "artifact": str(out),
        }
        report.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
