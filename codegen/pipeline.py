"""Source files -> ``{path: content}``: the whole compiler as one pure function.

``generate`` writes what this returns and ``check`` compares it with the disk, so the two
can never disagree.

The stages (parser, checks, lowering, templates) are imported when there is something to
compile: a run whose generated files are all current loads neither Lark, nor Jinja, nor
the runtime's adapters.
"""

from __future__ import annotations

import hashlib
import keyword
import re
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
    #: dotted module path -> checked module, for the modules compiled in this run
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
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


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

    Lowering and rendering, most of the work, are independent per module: a large build
    spreads them over processes (:mod:`.parallel`; ``workers``: see :func:`compile_sources`)."""
    from .check import Checker
    from .extend import extend
    from .frozen import apply_frozen, read_frozen
    from .imports import resolve_imports
    from .ir import lower
    from .parallel import fork_map
    from .pytypes import PythonTypes
    from .render import load_templates, render_module

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
        result.diagnostics += _unused_types(units, exports)
    result.diagnostics.sort(key=Diagnostic.sort_key)
    if not result.ok or (units and not checked and not reused):
        return None
    result.modules = dict(sorted(checked.items()))
    types = PythonTypes(checked.values())

    def generate(module: str) -> tuple[str | None, list[Diagnostic]]:
        """The module's generated file, or the diagnostics that prevent it."""
        m = checked[module]
        try:
            lowered = lower(extend(m), types)
        except RecursionError:
            return None, [_too_deep(units[module])]
        frozen = units[module].frozen
        if frozen is not None:
            entries, problems = read_frozen(frozen[1], frozen[0])
            if not problems:
                lowered, problems = apply_frozen(
                    lowered, entries, frozen[0], m.source, f"{package}.{module}"
                )
            if problems:
                return None, problems
        return render_module(lowered, digests[module]), []

    todo = [module for module in sorted(checked) if module not in reused]
    processes = _processes(len(todo), workers)
    if processes > 1:
        load_templates()  # once, before the workers are forked
    modules: dict[str, str] = {}
    for module, (text, problems) in zip(todo, fork_map(generate, todo, processes), strict=True):
        result.diagnostics += problems
        if text is not None:
            modules[_module_file(module)] = text
    return modules


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
        clash = any(m.startswith(f"{'/'.join(parts)}/") for m in module_paths)
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


def _unused_types(units: dict[str, _Unit], exports: dict[str, Exports]) -> list[Diagnostic]:
    """W102 for each enum or class that no field of the project refers to."""
    from . import ast

    used = set().union(*(e.used_types for e in exports.values())) if exports else set()
    found: list[Diagnostic] = []
    for module, unit in units.items():
        if unit.sig_file is None or module not in exports:
            continue
        for decl in unit.sig_file.declarations:
            if isinstance(decl, ast.EnumDecl | ast.ClassDecl) and (module, decl.name) not in used:
                kind = "enum" if isinstance(decl, ast.EnumDecl) else "class"
                found.append(
                    Diagnostic(
                        unit.shown,
                        decl.name_span,
                        "W102",
                        f"{kind} `{decl.name}` is not used by any field",
                        "use it as a field type, or remove it",
                        "warning",
                    )
                )
    return found
