"""``sigforge freeze``: record an optimized predictor state in its module's frozen file.

The command validates the artifact against the generated class as it is now (every
field, type and demo, through the runtime's own state loading), then writes the entry
into ``<source>.frozen.json`` (see :mod:`.frozen`) and lets the generator bake it in.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from .frozen import dump_frozen, entry_data, frozen_path, read_frozen


class FreezeError(Exception):
    """Why a predictor cannot be frozen (or unfrozen); the message is for the user."""


def _source_of(target: str, src: Path, out: Path) -> tuple[str, str, Path]:
    """``generated.qa:Answerer`` -> (module path ``generated.qa``, class ``Answerer``, ``src/qa.sig``)."""
    module, sep, name = target.partition(":")
    if not sep or not module or not name.isidentifier():
        raise FreezeError(f"{target!r}: expected PACKAGE.MODULE:PREDICTOR, e.g. generated.qa:Answerer")
    package = out.resolve().name
    if not module.startswith(f"{package}."):
        raise FreezeError(
            f"{target!r}: the module must be in the generated package `{package}` (--out {out})"
        )
    relative = module[len(package) + 1 :]
    source = src / (relative.replace(".", "/") + ".sig")
    if not source.is_file():
        raise FreezeError(f"{target!r}: no source {source} for module `{module}`")
    return module, name, source


def _predictor_class(module: str, name: str, out: Path) -> Any:
    from sigforge.runtime.predictors import Predict

    parent = str(out.resolve().parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    importlib.invalidate_caches()
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise FreezeError(f"cannot load {module}:{name} ({exc})") from None
    if not (isinstance(cls, type) and issubclass(cls, Predict)):
        raise FreezeError(
            f"{module}:{name} is not a predictor class; freeze the predictors a module kind runs "
            f"(e.g. its `...StepPredictor` and `...ExtractPredictor` classes) one by one"
        )
    return cls


def _state_from(artifact: Path, which: str | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    from sigforge.runtime.errors import StateError
    from sigforge.runtime.module import read_program_file

    try:
        data = read_program_file(artifact)
    except StateError as exc:
        raise FreezeError(str(exc)) from None
    if "sigforge_program" not in data:
        if "sigforge_state" in data and which is None:
            return data, None
        raise FreezeError(f"{artifact}: not a sigforge program file")
    states = data.get("predictors")
    if not isinstance(states, dict) or not states:
        raise FreezeError(f"{artifact}: the file holds no predictor states")
    if which is None:
        if len(states) != 1:
            raise FreezeError(
                f"{artifact} holds {len(states)} predictors ({', '.join(states)}): choose one "
                f"with --predictor"
            )
        which = next(iter(states))
    if which not in states or not isinstance(states[which], dict):
        raise FreezeError(f"{artifact} has no predictor {which!r} (it has: {', '.join(states)})")
    optimization = data.get("optimization")
    return states[which], optimization if isinstance(optimization, dict) else None


def _entries(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    entries, problems = read_frozen(path.read_text(encoding="utf-8"), str(path))
    if problems:
        raise FreezeError(f"{path}: {problems[0].message}; fix or delete it first")
    return {
        name: entry_data(e.fields, e.instructions, e.demos, e.optimization, e.artifact)
        for name, e in entries.items()
    }


def _write(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    if not entries:
        path.unlink(missing_ok=True)
        return
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(dump_frozen(entries), encoding="utf-8")
    temporary.replace(path)


class FrozenFile:
    """The frozen file of one target's module, edited step by step and restorable.

    ``sigforge freeze`` first takes the target's old entry out (so an entry made stale
    by a signature change cannot block the regeneration that the validation needs), then
    validates and adds the new one; on any failure :meth:`restore` puts the file back
    exactly as it was.
    """

    def __init__(self, target: str, *, src: Path, out: Path) -> None:
        self.target = target
        self.out = out
        self.module, self.name, source = _source_of(target, src, out)
        self.path = frozen_path(source)
        self.original = self.path.read_text(encoding="utf-8") if self.path.exists() else None
        self.entries = _entries(self.path)

    def drop(self, *, required: bool) -> None:
        """Take the target's entry out of the file (an error if ``required`` and absent)."""
        if self.name not in self.entries:
            if required:
                raise FreezeError(f"{self.name} has no frozen state in {self.path}")
            return
        del self.entries[self.name]
        _write(self.path, self.entries)

    def add(self, artifact: Path, which: str | None) -> None:
        """Validate the artifact's state against the generated class and record it."""
        from sigforge.runtime.errors import StateError

        cls = _predictor_class(self.module, self.name, self.out)
        state, optimization = _state_from(artifact, which)
        try:
            cls().load_state(state)  # the runtime's own validation: fields, types, demos
        except StateError as exc:
            raise FreezeError(f"{artifact} does not fit {self.module}:{self.name}: {exc}") from None
        signature = cls.signature
        fields = {f.name: f.type_name for f in (*signature.input_fields, *signature.output_fields)}
        self.entries[self.name] = entry_data(
            fields, state.get("instructions"), list(state.get("demos", [])), optimization, artifact.name
        )
        _write(self.path, self.entries)

    def restore(self) -> None:
        """Put the file back as it was before."""
        if self.original is None:
            self.path.unlink(missing_ok=True)
        else:
            self.path.write_text(self.original, encoding="utf-8")
