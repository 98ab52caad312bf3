"""Source files -> ``{path: content}``: the whole compiler as one pure function.

``generate`` writes what this returns and ``check`` compares it with the disk, so the two
can never disagree.

The stages (parser, checks, lowering, templates) are imported when there is something to
compile: a run whose generated files are all current loads neither Lark, nor Jinja, nor
the runtime's adapters.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import keyword
import os
import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sigforge.runtime._version import __version__

from .ast import Span
from .diagnostics import Diagnostic
from .frozen import frozen_path
from .parallel import usable_processes
from .render import digest_of, render_init

if TYPE_CHECKING:
    from . import ast
    from .check import Exports
    from .model import CheckedModule


@dataclass
class CompileResult:
    #: output path relative to the output folder (forward slashes) -> file content
    files: dict[str, str] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: displayed source path -> text, to render diagnostics with their source lines
    sources: dict[str, str] = field(default_factory=dict)
    #: dotted module path -> checked module, for the modules compiled in this run (none when
    #: the build was spread over processes: ask for ``workers=1`` to have them)
    modules: dict[str, CheckedModule] = field(default_factory=dict)
    #: output paths whose content in ``files`` was read from the output folder in this run
    #: (current generated modules): :func:`.write.write_outputs` need not read them again
    on_disk: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def display_path(path: Path) -> str:
    """The path as a user should see it: relative to the working directory when below it."""
    try:
        return path.resolve().relative_to(_resolved(os.getcwd())).as_posix()
    except ValueError:
        return path.as_posix()


@functools.lru_cache(maxsize=8)
def _resolved(folder: str) -> Path:
    """``folder`` resolved (the working directory: once per directory, not once per file)."""
    return Path(folder).resolve()


def find_sources(src: Path) -> list[Path]:
    return sorted(p for p in src.rglob("*.sig") if p.is_file())


@dataclass
class _Unit:
    """One source file on its way through the compiler."""

    shown: str
    #: the source as the generated header names it (``signatures/qa.sig``)
    label: str
    text: str
    #: the syntax tree, once parsed without errors
    sig_file: ast.SigFile | None
    parsed: bool = False
    #: the frozen-state file next to the source (see :mod:`.frozen`): shown path, text
    frozen: tuple[str, str] | None = None


#: How many new objects start a collection of the young generation during a build (Python's
#: default is 700).
YOUNG_COLLECTION_THRESHOLD = 10_000


@contextmanager
def _few_collections() -> Iterator[None]:
    """While a build runs, the garbage collector looks at the young objects less often.

    A build makes many objects that live until it ends (syntax trees, checked modules,
    the IR, generated texts) and little garbage in reference cycles: each collection
    finds next to nothing to free, yet walks every object made since the last one and,
    every tenth, everything older again. Here the young generation is collected 14x less
    often; cycles are still freed, a little later. The thresholds are put back afterwards
    (a higher one set by the program is kept, and so is 0: no automatic collection)."""
    thresholds = gc.get_threshold()
    if thresholds[0]:
        gc.set_threshold(max(thresholds[0], YOUNG_COLLECTION_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


@_few_collections()
def compile_sources(
    src: Path, out: Path, *, incremental: bool = False, workers: int | None = None
) -> CompileResult:
    """Compile every `.sig` file below ``src`` for the output package ``out``.

    ``incremental``: a module whose generated file in ``out`` carries the digest of its
    current source (and of every module it imports, transitively) is not compiled again;
    its file is returned as it is. ``sigforge check`` compiles everything.

    ``workers``: how many processes generate the modules (the result is the same for any
    number); by default as many as there are CPUs to use, when there are enough modules
    to pay for the processes (see :data:`MODULES_PER_PROCESS`), else one."""
    result = CompileResult()
    root_label = src.resolve().name
    if not out.resolve().name.isidentifier() or keyword.iskeyword(out.resolve().name):
        result.diagnostics.append(
            Diagnostic(
                display_path(out),
                Span(1, 1, 1, 2),
                "E003",
                f"output folder name `{out.resolve().name}` cannot be a Python package name",
                "use letters, digits and `_`, e.g. --out generated",
            )
        )
        return result
    units = _read_sources(src, root_label, result)
    digests = source_digests(
        {m: u.text + (f"\n\0frozen\0{u.frozen[1]}" if u.frozen else "") for m, u in units.items()},
        f"{root_label}>{out.resolve().name}",
    )
    reused = _reusable(out, digests) if incremental else {}
    modules = {_module_file(module): text for module, text in reused.items()}
    if len(reused) < len(units):
        compiled = _compile_units(units, reused, digests, out.resolve().name, result, workers)
        if compiled is None:
            return result
        modules.update(compiled)
    else:  # every generated module is current: nothing to parse
        result.diagnostics.sort(key=Diagnostic.sort_key)
    if not result.ok:
        return result
    modules = dict(sorted(modules.items()))
    result.files = dict(modules)
    result.on_disk = frozenset(_module_file(module) for module in reused)
    package = out.name
    example = next(iter(sorted(modules)), "module.py")[:-3].replace("/", ".")
    folders = {"."}
    for module_path in modules:
        parent = Path(module_path).parent
        folders |= {p.as_posix() for p in (parent, *parent.parents)}
    for folder in sorted(folders):
        init = "__init__.py" if folder == "." else f"{folder}/__init__.py"
        result.files[init] = render_init(root_label, package, example)
    result.files["py.typed"] = ""
    result.files = dict(sorted(result.files.items()))
    return result


def _compile_units(
    units: dict[str, _Unit],
    reused: dict[str, str],
    digests: dict[str, str],
    package: str,
    result: CompileResult,
    workers: int | None,
) -> dict[str, str] | None:
    """Parse, check, lower and render the modules not in ``reused``: their generated files
    by output path. Diagnostics go to ``result``; None when errors stop the run before
    rendering (the checked modules are then unknown).

    A large build is spread over processes (``workers``: see :func:`compile_sources`):
    see :func:`_compile_spread`."""
    needed = sorted(set(units) - set(reused))
    processes = min(_processes(len(needed), workers), len(needed))
    if processes > 1 and result.ok:
        spread = _compile_spread(units, reused, digests, package, needed, processes)
        if spread is not None:
            files, diagnostics = spread
            result.diagnostics += diagnostics
            result.diagnostics.sort(key=Diagnostic.sort_key)
            return files
    checked = _check_units(units, reused, result)
    if checked is None:
        return None
    result.modules = dict(sorted(checked[0].items()))
    return _generate_units(units, reused, digests, package, checked[0], result)


def _check_units(
    units: dict[str, _Unit], reused: Collection[str], result: CompileResult
) -> tuple[dict[str, CheckedModule], dict[str, Exports]] | None:
    """Parse and check the modules not in ``reused`` (and those they import): the checked
    modules and the exports of each, or None when errors stop the run."""
    from .check import Checker
    from .imports import resolve_imports

    _parse_needed(units, set(units) - set(reused), result)
    resolution = resolve_imports(
        {m: u.sig_file for m, u in units.items() if u.parsed}, known_modules=set(units)
    )
    result.diagnostics += resolution.diagnostics
    checked: dict[str, CheckedModule] = {}
    exports: dict[str, Exports] = {}
    for module in resolution.order:
        unit = units[module]
        if unit.sig_file is None or module in resolution.blocked:  # reused, or broken
            continue
        checker = Checker(
            unit.sig_file,
            unit.text,
            module,
            imported=resolution.imported.get(module, {}),
            exports=exports,
        )
        try:
            module_result = checker.run()
        except RecursionError:
            result.diagnostics.append(_too_deep(unit))
            continue
        exports[module] = checker.exports
        result.diagnostics += checker.diagnostics
        if module_result is not None:
            checked[module] = replace(module_result, source=unit.label)
    if result.ok and not reused:  # with errors or skipped modules, usage is not fully known
        result.diagnostics += _unused_types(_declared_types(units, exports), _used_types(exports))
    result.diagnostics.sort(key=Diagnostic.sort_key)
    if not result.ok or (units and not checked and not reused):
        return None
    return checked, exports


def _generate_units(
    units: dict[str, _Unit],
    reused: Collection[str],
    digests: dict[str, str],
    package: str,
    checked: dict[str, CheckedModule],
    result: CompileResult,
) -> dict[str, str]:
    """Lower and render the checked modules not in ``reused``: files by output path."""
    from .extend import extend
    from .frozen import apply_frozen, read_frozen
    from .ir import lower
    from .pytypes import PythonTypes
    from .render import render_module

    types = PythonTypes(checked.values())
    modules: dict[str, str] = {}
    for module, m in sorted(checked.items()):
        if module in reused:
            continue
        try:
            lowered = lower(extend(m), types)
        except RecursionError:
            result.diagnostics.append(_too_deep(units[module]))
            continue
        frozen = units[module].frozen
        if frozen is not None:
            entries, problems = read_frozen(frozen[1], frozen[0])
            if not problems:
                lowered, problems = apply_frozen(
                    lowered, entries, frozen[0], m.source, f"{package}.{module}"
                )
            if problems:
                result.diagnostics += problems
                continue
        modules[_module_file(module)] = render_module(lowered, digests[module])
    return modules


@dataclass
class _Share:
    """What one process compiled of a build spread over processes (see :func:`_compile_spread`)."""

    files: dict[str, str]
    #: the diagnostics (warnings) of its own modules' files
    diagnostics: list[Diagnostic]
    #: for the unused-type warnings of the whole build: its modules' declared types, and
    #: the types their fields use
    declared: list[_DeclaredType]
    used: set[tuple[str, str]]


def _compile_spread(
    units: dict[str, _Unit],
    reused: dict[str, str],
    digests: dict[str, str],
    package: str,
    needed: list[str],
    processes: int,
) -> tuple[dict[str, str], list[Diagnostic]] | None:
    """Compile ``needed`` in ``processes`` processes: generated files and diagnostics (not
    sorted), or None when any process found an error (the caller then compiles in one
    process, so that errors are reported exactly as always).

    Each process compiles a share of the modules from the start: it parses and checks its
    modules and the modules they import (the imported ones again in every process that
    needs them: they are few), lowers and renders its modules, and reports the warnings
    of its own files. The project-wide warning about unused types is made here from every
    share's declared and used types. ``CompileResult.modules`` stays empty."""
    import importlib

    from .parallel import fork_map
    from .parse import load_parser
    from .render import load_templates

    # every stage, the parser's tables and the template are loaded once, before the
    # processes are forked
    for stage in ("parse", "imports", "check", "pytypes", "extend", "ir", "frozen"):
        importlib.import_module(f"{__package__}.{stage}")
    load_parser()
    load_templates()
    shares = [needed[start::processes] for start in range(processes)]

    def compile_share(share: list[str]) -> _Share | None:
        own = set(share)
        mine = {m: replace(u, sig_file=None, parsed=False) for m, u in units.items()}
        others = [m for m in units if m not in own]  # compiled (or current) elsewhere
        sub = CompileResult()
        checked = _check_units(mine, others, sub)
        if checked is None:
            return None
        files = _generate_units(mine, others, digests, package, checked[0], sub)
        if not sub.ok:
            return None
        shown = {mine[m].shown for m in own}
        return _Share(
            files,
            [d for d in sub.diagnostics if d.path in shown],
            _declared_types({m: mine[m] for m in share}, checked[1]),
            _used_types({m: e for m, e in checked[1].items() if m in own}),
        )

    # Everything loaded so far lives until the build ends: frozen, it is never walked by
    # the garbage collector of any process (nor are its pages written to by it, so they
    # stay shared with the children). Not when the program froze objects of its own:
    # unfreezing ours afterwards would thaw those too.
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    try:
        outcomes = fork_map(compile_share, shares, processes)
    finally:
        if freeze:
            gc.unfreeze()
    files: dict[str, str] = {}
    diagnostics: list[Diagnostic] = []
    declared: list[_DeclaredType] = []
    used: set[tuple[str, str]] = set()
    for outcome in outcomes:
        if outcome is None:
            return None
        files.update(outcome.files)
        diagnostics += outcome.diagnostics
        declared += outcome.declared
        used |= outcome.used
    if not reused:
        diagnostics += _unused_types(declared, used)
    return files, diagnostics


#: Modules each process must have to generate for a build to be spread over processes:
#: forking and collecting the results costs about as much as generating a few modules.
MODULES_PER_PROCESS = 4


def _processes(modules: int, workers: int | None) -> int:
    """How many processes generate ``modules`` modules: ``workers`` when given, else as
    many as may run at once here, with at least :data:`MODULES_PER_PROCESS` each."""
    if workers is not None:
        return max(1, workers)
    return max(1, min(usable_processes(), modules // MODULES_PER_PROCESS))


def _too_deep(unit: _Unit) -> Diagnostic:
    return Diagnostic(
        unit.shown,
        Span(1, 1, 1, 2),
        "E105",
        "brackets are nested deeper than the compiler can follow",
        "nest types and values less deeply (a few hundred levels is the limit)",
    )


def _module_file(module: str) -> str:
    return module.replace(".", "/") + ".py"


def _read_sources(src: Path, root_label: str, result: CompileResult) -> dict[str, _Unit]:
    """Every readable `.sig` file below ``src`` by dotted module path (not parsed yet)."""
    units: dict[str, _Unit] = {}
    sources = find_sources(src)
    module_paths = {p.relative_to(src).with_suffix("").as_posix() for p in sources}
    # every folder that holds a module, at any depth (a file may not be named like one)
    folders = {m[:i] for m in module_paths for i, ch in enumerate(m) if ch == "/"}
    for path in sources:
        rel = path.relative_to(src)
        shown = display_path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            result.diagnostics.append(
                Diagnostic(shown, Span(1, 1, 1, 2), "E001", f"file is not valid UTF-8 ({exc.reason})")
            )
            continue
        result.sources[shown] = text
        parts = [*rel.parent.parts, rel.stem]
        bad = [p for p in parts if not p.isidentifier() or keyword.iskeyword(p) or p.startswith("__")]
        clash = "/".join(parts) in folders
        if bad or clash:
            message = (
                f"`{bad[0]}` cannot be a generated module name"
                if bad
                else f"`{rel.stem}.sig` and the folder `{rel.stem}/` would both become the module `{rel.stem}`"
            )
            result.diagnostics.append(
                Diagnostic(
                    shown,
                    Span(1, 1, 1, 2),
                    "E002",
                    message,
                    "name .sig files and folders like Python modules (letters, digits, `_`; "
                    "no leading `__`), and do not give a file and a folder the same name",
                )
            )
            continue
        unit = _Unit(shown, f"{root_label}/{rel.as_posix()}", text, None)
        frozen_file = frozen_path(path)
        if frozen_file.is_file():
            frozen_shown = display_path(frozen_file)
            try:
                frozen_text = frozen_file.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                frozen_text = ""
                result.diagnostics.append(
                    Diagnostic(frozen_shown, Span(1, 1, 1, 2), "E501", f"file is not valid UTF-8 ({exc.reason})")
                )
            result.sources[frozen_shown] = frozen_text
            unit.frozen = (frozen_shown, frozen_text)
        units[".".join(parts)] = unit
    return units


def _parse_needed(units: dict[str, _Unit], needed: set[str], result: CompileResult) -> None:
    """Parse the modules to compile and, transitively, the modules they import from."""
    from .parse import parse

    pending = sorted(needed)
    while pending:
        module = pending.pop()
        unit = units[module]
        if unit.parsed:
            continue
        try:
            sig_file, diags = parse(unit.text, unit.shown)
        except RecursionError:
            sig_file, diags = None, [_too_deep(unit)]
        unit.parsed = True
        result.diagnostics += diags
        if any(d.severity == "error" for d in diags):
            continue
        unit.sig_file = sig_file
        assert sig_file is not None
        pending += [i.module for i in sig_file.imports if i.module in units]


# `from a.b import ...` anywhere in a source: enough to know what a digest depends on
# (a false match only makes a module rebuild more often).
_IMPORT_LINE = re.compile(r"^\s*from\s+([A-Za-z_][\w.]*)\s+import\b", re.MULTILINE)


def source_digests(texts: dict[str, str], context: str) -> dict[str, str]:
    """Per module, a digest of its text, of the texts of everything it imports
    (transitively), of ``context`` and of the generator version."""
    own = {m: hashlib.sha256(t.encode("utf-8")).hexdigest() for m, t in texts.items()}
    deps = {m: sorted(set(_IMPORT_LINE.findall(t)) & set(texts)) for m, t in texts.items()}
    digests: dict[str, str] = {}
    for module in texts:
        seen: set[str] = set()
        stack = [module]
        while stack:  # the closure of imports (cycles are errors, but must terminate here)
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack += deps[current]
        key = "\n".join([__version__, context, *(f"{m}:{own[m]}" for m in sorted(seen))])
        digests[module] = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return digests


def _reusable(out: Path, digests: dict[str, str]) -> dict[str, str]:
    """Generated files in ``out`` that carry the current digest of their source."""
    reused: dict[str, str] = {}
    for module, digest in digests.items():
        path = out / _module_file(module)
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if b"\r" in data:  # read as text would read it, with line endings translated
            data = data.decode("utf-8", "surrogateescape").replace("\r\n", "\n").replace(
                "\r", "\n"
            ).encode("utf-8", "surrogateescape")
        if digest_of(data) == digest:
            try:
                reused[module] = data.decode("utf-8")
            except UnicodeDecodeError:
                continue
    return reused


#: an enum or class declared in a module: module, its file as shown, kind, the declaration
_DeclaredType = tuple[str, str, str, "ast.EnumDecl | ast.ClassDecl"]


def _declared_types(units: dict[str, _Unit], exports: dict[str, Exports]) -> list[_DeclaredType]:
    """The enums and classes of the checked modules among ``units``, in file order."""
    from . import ast

    found: list[_DeclaredType] = []
    for module, unit in units.items():
        if unit.sig_file is None or module not in exports:
            continue
        for decl in unit.sig_file.declarations:
            if isinstance(decl, ast.EnumDecl | ast.ClassDecl):
                kind = "enum" if isinstance(decl, ast.EnumDecl) else "class"
                found.append((module, unit.shown, kind, decl))
    return found


def _used_types(exports: dict[str, Exports]) -> set[tuple[str, str]]:
    """(module, name) of every declared type that a field of these modules refers to."""
    return set().union(*(e.used_types for e in exports.values())) if exports else set()


def _unused_types(declared: list[_DeclaredType], used: set[tuple[str, str]]) -> list[Diagnostic]:
    """W102 for each declared enum or class that no field of the project refers to."""
    return [
        Diagnostic(
            shown,
            decl.name_span,
            "W102",
            f"{kind} `{decl.name}` is not used by any field",
            "use it as a field type, or remove it",
            "warning",
        )
        for module, shown, kind, decl in declared
        if (module, decl.name) not in used
    ]
