"""Source files -> ``{path: content}``: the whole compiler as one pure function.

``generate`` writes what this returns and ``check`` compares it with the disk, so the two
can never disagree.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field, replace
from pathlib import Path

from .ast import Span
from .check import check
from .diagnostics import Diagnostic
from .extend import extend
from .ir import lower
from .parse import parse
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


def compile_sources(src: Path, out: Path) -> CompileResult:
    """Compile every `.sig` file below ``src`` for the output package ``out``."""
    result = CompileResult()
    modules: dict[str, str] = {}
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
        module_text = _compile_file(text, shown, f"{root_label}/{rel.as_posix()}", ".".join(parts), result)
        if module_text is not None:
            modules["/".join(parts) + ".py"] = module_text
    result.diagnostics.sort(key=Diagnostic.sort_key)
    if not result.ok:
        return result
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


def _compile_file(text: str, shown: str, source: str, module: str, result: CompileResult) -> str | None:
    sig_file, diags = parse(text, shown)
    result.diagnostics.extend(diags)
    if sig_file is None or diags:
        return None
    checked, diags = check(sig_file, text, module)
    result.diagnostics.extend(diags)
    if checked is None:
        return None
    return render_module(lower(extend(replace(checked, source=source))))
