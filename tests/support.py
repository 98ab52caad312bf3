"""Helpers shared by the tests: generating packages into temporary folders, paths."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from sigforge.codegen.pipeline import compile_sources
from sigforge.codegen.write import write_outputs

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
DSPY_FIXTURES = ROOT.parent / "shared" / "fixtures" / "dspy"


def generate_package(src: Path, parent: Path, package: str) -> Path:
    """Compile ``src`` into ``parent/package`` and make it importable; fails on diagnostics."""
    out = parent / package
    result = compile_sources(src, out)
    assert result.ok, "\n".join(d.render(result.sources.get(d.path)) for d in result.diagnostics)
    write_outputs(out, result.files)
    if str(parent) not in sys.path:
        sys.path.insert(0, str(parent))
    importlib.invalidate_caches()
    return out


def import_generated(package: str, module: str) -> ModuleType:
    return importlib.import_module(f"{package}.{module}")
