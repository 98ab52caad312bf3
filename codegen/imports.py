"""Imports between `.sig` files: resolve ``from module import Name`` across a project.

A module path is relative to the source root (``from shared.types import Citation`` reads
``signatures/shared/types.sig``). A missing module, a missing or unimportable name and an
import cycle are each reported at the import that causes them.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import ast
from .check import Symbol, did_you_mean, symbol_kind
from .diagnostics import Diagnostic


@dataclass
class Resolution:
    #: module -> imported name -> symbol
    imported: dict[str, dict[str, Symbol]] = field(default_factory=dict)
    #: modules in an order where every module comes after the modules it imports from
    #: (modules in a cycle come in file order)
    order: list[str] = field(default_factory=list)
    #: modules that import from a module that failed to parse (not checked: their
    #: imports cannot be resolved, and the real error is reported where it is)
    blocked: set[str] = field(default_factory=set)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def resolve_imports(
    files: Mapping[str, ast.SigFile | None], known_modules: set[str]
) -> Resolution:
    """``files``: module -> parsed file (None when it failed to parse).

    ``known_modules`` are all modules with a source file, parsed or not."""
    result = Resolution()
    edges: dict[str, list[tuple[str, ast.ImportDecl]]] = {}
    for module, sig_file in files.items():
        if sig_file is None:
            continue
        imported = result.imported.setdefault(module, {})
        edges[module] = []
        for imp in sig_file.imports:
            target = files.get(imp.module)
            if imp.module not in known_modules:
                result.diagnostics.append(
                    Diagnostic(
                        sig_file.path,
                        imp.module_span,
                        "E501",
                        f"no module `{imp.module}`: there is no `{imp.module.replace('.', '/')}.sig`",
                        did_you_mean(imp.module, sorted(known_modules))
                        or "module paths are relative to the source folder, e.g. `from common import X`",
                    )
                )
                continue
            if target is None:
                result.blocked.add(module)
                continue
            edges[module].append((imp.module, imp))
            declared = {d.name: d for d in target.declarations}
            for name in imp.names:
                decl = declared.get(name.name)
                if decl is None:
                    result.diagnostics.append(
                        Diagnostic(
                            sig_file.path,
                            name.span,
                            "E502",
                            f"`{imp.module}` has no declaration `{name.name}`",
                            did_you_mean(name.name, sorted(declared)),
                        )
                    )
                elif isinstance(decl, ast.PredictorDecl):
                    result.diagnostics.append(
                        Diagnostic(
                            sig_file.path,
                            name.span,
                            "E504",
                            f"`{name.name}` is a predictor, which cannot be imported into a .sig file",
                            "import its signature and declare a predictor here, or import the "
                            "predictor in Python",
                        )
                    )
                else:
                    imported.setdefault(
                        name.name, Symbol(symbol_kind(decl), decl.name, imp.module, decl)
                    )
    _order(edges, files, result)
    return result


def _order(
    edges: Mapping[str, list[tuple[str, ast.ImportDecl]]],
    files: Mapping[str, ast.SigFile | None],
    result: Resolution,
) -> None:
    """Depth-first: dependencies first; each cycle is reported at each of its imports."""
    state: dict[str, str] = {}  # "active" while on the stack, "done" after
    stack: list[str] = []
    reported: set[tuple[str, int]] = set()

    def visit(module: str) -> None:
        state[module] = "active"
        stack.append(module)
        for target, _ in edges.get(module, []):
            if state.get(target) == "active":
                cycle = [*stack[stack.index(target) :], target]
                _report_cycle(cycle, edges, files, result, reported)
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"
        result.order.append(module)

    for module in sorted(edges):
        if module not in state:
            visit(module)


def _report_cycle(
    cycle: list[str],
    edges: Mapping[str, list[tuple[str, ast.ImportDecl]]],
    files: Mapping[str, ast.SigFile | None],
    result: Resolution,
    reported: set[tuple[str, int]],
) -> None:
    path = " -> ".join(cycle)
    for importer, target in itertools.pairwise(cycle):
        sig_file = files[importer]
        assert sig_file is not None
        for t, imp in edges[importer]:
            key = (importer, imp.span.line)
            if t == target and key not in reported:
                reported.add(key)
                result.diagnostics.append(
                    Diagnostic(
                        sig_file.path,
                        imp.span,
                        "E503",
                        f"import cycle: {path}",
                        "move the shared declarations into a module that both import",
                    )
                )
