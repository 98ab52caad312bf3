"""Source files -> ``{path: content}``: the whole compiler as one pure function.

``generate`` writes what this returns and ``check`` compares it with the disk, so the two
can never disagree.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import ast
from .ast import Span
from .check import Checker, Exports
from .diagnostics import Diagnostic
from .extend import extend
from .imports import resolve_imports
from .ir import lower
from .model import CheckedModule
from .parse import parse
from .pytypes import PythonTypes
from .render import render_init, render_module


@dataclass
class CompileResult:
    #: output path relative to the output folder (forward slashes) -> file content
    files: dict[str, str] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: displayed source path -> text, to render diagnostics with their source lines
    sources: dict[str, str] = field(default_factory=dict)

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
    sig_file: ast.SigFile | None


def compile_sources(src: Path, out: Path) -> CompileResult:
    """Compile every `.sig` file below ``src`` for the output package ``out``."""
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
    units = _read_and_parse(src, root_label, result)
    resolution = resolve_imports(
        {m: u.sig_file for m, u in units.items()}, known_modules=set(units)
    )
    result.diagnostics += resolution.diagnostics
    checked: dict[str, CheckedModule] = {}
    exports: dict[str, Exports] = {}
    for module in resolution.order:
        unit = units[module]
        if unit.sig_file is None or module in resolution.blocked:
            continue
        checker = Checker(
            unit.sig_file,
            unit.text,
            module,
            imported=resolution.imported.get(module, {}),
            exports=exports,
        )
        module_result = checker.run()
        exports[module] = checker.exports
        result.diagnostics += checker.diagnostics
        if module_result is not None:
            checked[module] = replace(module_result, source=unit.label)
    if result.ok:  # with errors, what is used is not fully known
        result.diagnostics += _unused_types(units, exports)
    result.diagnostics.sort(key=Diagnostic.sort_key)
    if not result.ok or (not checked and units):
        return result
    types = PythonTypes(checked.values())
    modules = {
        module.replace(".", "/") + ".py": render_module(lower(extend(m), types))
        for module, m in sorted(checked.items())
    }
    result.files = dict(modules)
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


def _read_and_parse(src: Path, root_label: str, result: CompileResult) -> dict[str, _Unit]:
    """Every readable `.sig` file below ``src`` by dotted module path, parsed."""
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
        sig_file, diags = parse(text, shown)
        result.diagnostics += diags
        if any(d.severity == "error" for d in diags):
            sig_file = None
        units[".".join(parts)] = _Unit(shown, f"{root_label}/{rel.as_posix()}", text, sig_file)
    return units


def _unused_types(units: dict[str, _Unit], exports: dict[str, Exports]) -> list[Diagnostic]:
    """W102 for each enum or class that no field of the project refers to."""
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
