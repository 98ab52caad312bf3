"""Optimized instructions and demos baked into generated predictor classes.

``sigforge freeze generated.qa:Answerer qa.optimized.json`` records the optimized
state of a predictor in ``signatures/qa.frozen.json``, next to the ``.sig`` file it was
generated from; from then on the generator reads that file with the source and emits
the state as class attributes (``frozen_instructions``, ``frozen_demos``,
``frozen_optimization``) that every new instance of the class starts from. A deployed
program needs no JSON at run time, the frozen file is reviewed like source, and
``sigforge check`` fails when generated code and frozen file disagree.

The file (written by ``sigforge freeze``; edit it only to remove entries)::

    {
      "sigforge_frozen": 1,
      "predictors": {
        "Answerer": {
          "artifact": "qa.optimized.json",
          "fields": {"context": "list[str]", "question": "str", ...},
          "instructions": "...", "demos": [{...}], "optimization": {...}
        }
      }
    }

Keys of ``predictors`` are generated predictor class names of the module (also the
inner predictors of module kinds, e.g. ``AgentStepPredictor``). ``fields`` are the fields the
state was optimized for: when the signature changes (a field renamed, removed or
retyped), generation fails with ``E503`` until the program is optimized and frozen
again or the entry is removed (``sigforge freeze --remove``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .ast import Span
from .diagnostics import Diagnostic
from .layout import Node, string_node, value_node

if TYPE_CHECKING:
    from .ir import InnerIR, ModuleIR, PredictorIR

FROZEN_VERSION = 1
SUFFIX = ".frozen.json"
_FIRST_LINE = Span(1, 1, 1, 2)


@dataclass(frozen=True, slots=True)
class FrozenEntry:
    """One predictor's frozen state, as read from the frozen file."""

    fields: dict[str, str]
    instructions: str | None
    demos: list[dict[str, Any]]
    optimization: dict[str, Any] | None
    artifact: str
    #: where the entry starts in the file, for diagnostics
    span: Span


def frozen_path(source: Path) -> Path:
    """The frozen file of a ``.sig`` source: ``qa.sig`` -> ``qa.frozen.json``."""
    return source.with_name(source.stem + SUFFIX)


def entry_data(
    fields: dict[str, str],
    instructions: str | None,
    demos: list[dict[str, Any]],
    optimization: dict[str, Any] | None,
    artifact: str,
) -> dict[str, Any]:
    """One entry as the file stores it."""
    return {
        "artifact": artifact,
        "fields": fields,
        "instructions": instructions,
        "demos": demos,
        "optimization": optimization,
    }


def dump_frozen(entries: dict[str, dict[str, Any]]) -> str:
    """The frozen file's text for ``entries`` (class name -> :func:`entry_data`), sorted."""
    data = {"sigforge_frozen": FROZEN_VERSION, "predictors": dict(sorted(entries.items()))}
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def read_frozen(text: str, shown: str) -> tuple[dict[str, FrozenEntry], list[Diagnostic]]:
    """The entries of a frozen file, or the diagnostics that say why it cannot be used."""

    def problem(message: str, span: Span = _FIRST_LINE) -> tuple[dict[str, FrozenEntry], list[Diagnostic]]:
        hint = "re-create it with `sigforge freeze`, or delete it to generate without frozen state"
        return {}, [Diagnostic(shown, span, "E501", message, hint)]

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return problem(f"not valid JSON: {exc.msg}", Span(exc.lineno, exc.colno, exc.lineno, exc.colno + 1))
    if not isinstance(data, dict) or data.get("sigforge_frozen") != FROZEN_VERSION:
        return problem(f"not a frozen-state file of version {FROZEN_VERSION} (`sigforge_frozen` key)")
    predictors = data.get("predictors")
    if not isinstance(predictors, dict):
        return problem("`predictors` must be an object of predictor class name -> state")
    entries: dict[str, FrozenEntry] = {}
    for name, entry in predictors.items():
        span = _key_span(text, name)
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("fields"), dict)
            and all(isinstance(v, str) for v in entry["fields"].values())
            and (entry.get("instructions") is None or isinstance(entry["instructions"], str))
            and isinstance(entry.get("demos"), list)
            and all(isinstance(d, dict) for d in entry["demos"])
            and (entry.get("optimization") is None or isinstance(entry["optimization"], dict))
        ):
            return problem(
                f"the entry of `{name}` must have `fields` (name -> type), `instructions` "
                f"(string or null), `demos` (list of objects) and `optimization` (object or null)",
                span,
            )
        entries[name] = FrozenEntry(
            dict(entry["fields"]),
            entry.get("instructions"),
            list(entry["demos"]),
            entry.get("optimization"),
            str(entry.get("artifact", "")),
            span,
        )
    return entries, []


def _key_span(text: str, name: str) -> Span:
    """The span of ``"name":`` in the file (the first line when not found)."""
    needle = json.dumps(name) + ":"
    at = text.find(needle)
    if at < 0:
        return _FIRST_LINE
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    return Span(line, column, line, column + len(needle) - 1)


def apply_frozen(
    module: ModuleIR, entries: dict[str, FrozenEntry], shown: str, source: str, python_module: str
) -> tuple[ModuleIR, list[Diagnostic]]:
    """``module`` with the frozen entries as class attributes of their predictors.

    ``python_module`` is the generated module's import path (``generated.qa``), for hints.

    Every entry must name a predictor class of the module whose signature still has
    exactly the recorded fields; otherwise the diagnostics say which and nothing is
    applied."""
    diagnostics: list[Diagnostic] = []
    classes: dict[str, PredictorIR | InnerIR] = {p.name: p for p in module.predictors}
    classes.update({i.name: i for k in module.kinds for i in k.inner})
    for name, entry in entries.items():
        target = classes.get(name)
        if target is None:
            known = ", ".join(sorted(classes)) or "none"
            diagnostics.append(
                Diagnostic(
                    shown, entry.span, "E502",
                    f"`{name}` is not a predictor class of {source} (its predictors: {known})",
                    f"remove the entry with `sigforge freeze --remove {python_module}:{name}`",
                )
            )
            continue
        problems = _field_problems(entry.fields, dict(target.fields))
        if problems:
            diagnostics.append(
                Diagnostic(
                    shown, entry.span, "E503",
                    f"the frozen state of `{name}` was optimized for other fields: {'; '.join(problems)}",
                    "optimize and freeze again, or remove the entry with "
                    f"`sigforge freeze --remove {python_module}:{name}`",
                )
            )
    if diagnostics:
        return module, diagnostics

    def frozen(target: Any) -> Any:
        entry = entries.get(target.name)
        if entry is None:
            return target
        return replace(target, frozen=_attributes(entry), frozen_note=_note(entry, shown))

    kinds = tuple(replace(k, inner=tuple(frozen(i) for i in k.inner)) for k in module.kinds)
    return replace(
        module, predictors=tuple(frozen(p) for p in module.predictors), kinds=kinds
    ), []


def _field_problems(saved: dict[str, str], now: dict[str, str]) -> list[str]:
    problems = [
        f"`{name}: {kind}` is no longer a field" if name not in now
        else f"`{name}` was `{kind}` and is `{now[name]}` now"
        for name, kind in saved.items()
        if now.get(name) != kind
    ]
    problems += [f"`{name}: {kind}` is new" for name, kind in now.items() if name not in saved]
    return problems


def _attributes(entry: FrozenEntry) -> tuple[Node, ...]:
    lines: list[Node] = []
    if entry.instructions is not None:
        lines.append(string_node("frozen_instructions = ", entry.instructions))
    if entry.demos:
        lines.append(value_node(tuple(entry.demos), "frozen_demos = "))
    if entry.optimization is not None:
        lines.append(value_node(entry.optimization, "frozen_optimization = "))
    return tuple(lines)


def _note(entry: FrozenEntry, shown: str) -> str:
    """The comment above the frozen attributes (text from the file only as ``repr``s)."""
    made = ""
    if entry.optimization is not None:
        made = f", optimizer {str(entry.optimization.get('optimizer'))[:40]!r}"
        if isinstance(entry.optimization.get("seed"), int):
            made += f", seed {entry.optimization['seed']}"
    origin = repr(Path(entry.artifact).name[:60]) if entry.artifact else "an optimized program"
    return f"Frozen by `sigforge freeze` from {origin}{made} ({Path(shown).name!r})."


__all__ = [
    "FROZEN_VERSION",
    "SUFFIX",
    "FrozenEntry",
    "apply_frozen",
    "dump_frozen",
    "entry_data",
    "frozen_path",
    "read_frozen",
]
