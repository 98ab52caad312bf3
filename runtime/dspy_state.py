"""Importing what DSPy 3.x's ``program.save("x.json")`` wrote into generated predictors.

Teams moving from DSPy keep their optimized prompts: the instructions and demos of each
DSPy predictor are loaded into the matching predictor of a sigforge program, and
checked against the generated signature on the way in.

What DSPy writes (state-only JSON, DSPy 3.x):

* a lone ``Predict`` saves its state at the top level: ``demos``, ``signature``
  (``instructions`` and ``fields``: one ``{"prefix", "description"}`` per field, inputs
  then outputs, *without field names*), ``lm``, ``traces``, ``train``;
* any other module saves ``{predictor name: state}`` for each named predictor, e.g.
  ``answer.predict`` for a ``ChainOfThought`` held in the attribute ``answer``, or just
  ``predict`` for a lone ``ChainOfThought``;
* both add ``metadata.dependency_versions``.

How names are matched: a trailing ``.predict`` is dropped (DSPy's ``ChainOfThought``
wraps a ``Predict`` in that attribute; sigforge generates the extended signature
instead), a lone DSPy predictor maps to a lone sigforge predictor (``self``), and
``names={"dspy name": "sigforge name"}`` overrides the rule. Each DSPy predictor must
map to exactly one predictor of the program and the reverse.

How fields are matched: DSPy saves no field names, so the saved prefixes are compared
in order with the generated signature's (``Question:``, ``Reasoning:``, ...); a
different count or prefix means the program was saved for another signature and is a
:class:`~sigforge.runtime.errors.StateError`. Demo keys are field names and are
validated like any demo; DSPy's bookkeeping key ``augmented`` is dropped. Nothing is
loaded unless everything fits. DSPy's ``lm`` settings are not applied (a sigforge
program gets its LM in code); :func:`load_dspy` reports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import StateError
from .module import Program, _load_predictor_states, read_program_file
from .predictors import STATE_VERSION, Predict

__all__ = ["DspyImport", "load_dspy"]

_STATE_KEYS = frozenset({"demos", "signature"})
#: keys DSPy adds to bootstrapped demos that are not fields
_DEMO_BOOKKEEPING = frozenset({"augmented"})


@dataclass(frozen=True, slots=True)
class DspyImport:
    """What :func:`load_dspy` loaded."""

    #: DSPy predictor name -> sigforge predictor name
    names: dict[str, str]
    #: demos loaded per sigforge predictor
    demos: dict[str, int]
    #: the DSPy version that saved the file, if recorded
    dspy_version: str | None
    #: things in the file that were not applied, e.g. an LM's settings
    notes: list[str] = field(default_factory=list)


def load_dspy(
    program: Program, path: str | Path, *, names: Mapping[str, str] | None = None
) -> DspyImport:
    """Load a DSPy-saved program's instructions and demos into ``program`` (all or nothing)."""
    data = read_program_file(path)
    metadata = data.pop("metadata", None)
    version = None
    if isinstance(metadata, dict):
        versions = metadata.get("dependency_versions")
        if isinstance(versions, dict) and isinstance(versions.get("dspy"), str):
            version = versions["dspy"]
    saved = {"": data} if data.keys() >= _STATE_KEYS else data
    if not saved or not all(isinstance(s, dict) and s.keys() >= _STATE_KEYS for s in saved.values()):
        raise StateError(
            f"{path}: not a DSPy-saved program (expected a predictor state with `demos` and "
            f"`signature`, or an object of such states by predictor name)"
        )
    ours = dict(program.named_predictors())
    mapping = _match_names(list(saved), list(ours), dict(names or {}), str(path))
    states: dict[str, Any] = {}
    notes: list[str] = []
    for dspy_name, our_name in mapping.items():
        where = f"{path}: DSPy predictor {dspy_name or '(top level)'!r} -> {our_name!r}"
        states[our_name] = _our_state(saved[dspy_name], ours[our_name], where)
        if saved[dspy_name].get("lm"):
            model = saved[dspy_name]["lm"].get("model", "?")
            notes.append(
                f"{dspy_name or 'the program'} was saved with LM {model!r}: not applied; give "
                f"the predictor an LM in code (`lm=` or `configure(lm=...)`)"
            )
    _load_predictor_states(program, states, str(path))
    return DspyImport(
        names={dspy or "(top level)": ours_ for dspy, ours_ in mapping.items()},
        demos={name: len(state["demos"]) for name, state in states.items()},
        dspy_version=version,
        notes=notes,
    )


def _match_names(
    dspy_names: list[str], our_names: list[str], explicit: dict[str, str], where: str
) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for dspy_name in dspy_names:
        if dspy_name in explicit:
            target = explicit[dspy_name]
        elif len(dspy_names) == 1 and len(our_names) == 1:
            target = our_names[0]
        else:
            target = dspy_name.removesuffix(".predict") or "self"
            if dspy_name == "predict":
                target = "self"
        if target not in our_names:
            raise StateError(
                f"{where}: DSPy predictor {dspy_name!r} has no match in the program (looked for "
                f"{target!r}; the program has {', '.join(map(repr, our_names))}); pass "
                f"names={{{dspy_name!r}: '<predictor name>'}}"
            )
        if target in mapping.values():
            raise StateError(f"{where}: two DSPy predictors map to {target!r}")
        mapping[dspy_name] = target
    unmatched = [name for name in our_names if name not in mapping.values()]
    if unmatched:
        raise StateError(
            f"{where}: the DSPy program has no predictor for {', '.join(map(repr, unmatched))}"
        )
    return mapping


def _our_state(saved: dict[str, Any], predictor: Predict[Any, Any], where: str) -> dict[str, Any]:
    sig = predictor.signature
    signature = saved.get("signature")
    if not isinstance(signature, dict):
        raise StateError(f"{where}: `signature` must be an object")
    fields = signature.get("fields", [])
    ours = (*sig.input_fields, *sig.output_fields)
    saved_prefixes = [f.get("prefix") if isinstance(f, dict) else None for f in fields]
    our_prefixes = [spec.prefix for spec in ours]
    if saved_prefixes != our_prefixes:
        raise StateError(
            f"{where}: the DSPy signature's fields {saved_prefixes} do not match "
            f"{sig.name}'s {our_prefixes} (saved for another signature?)"
        )
    instructions = signature.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise StateError(f"{where}: `signature.instructions` must be a string")
    demos = saved.get("demos")
    if not isinstance(demos, list) or not all(isinstance(d, dict) for d in demos):
        raise StateError(f"{where}: `demos` must be a list of objects")
    return {
        "sigforge_state": STATE_VERSION,
        "signature": sig.name,
        "instructions": instructions,
        "demos": [{k: v for k, v in d.items() if k not in _DEMO_BOOKKEEPING} for d in demos],
    }
