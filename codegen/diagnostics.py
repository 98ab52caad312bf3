"""Compiler diagnostics: ``path:line:col: error[CODE]: message``, the source line, a caret, a hint."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from .ast import Span

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    path: str
    span: Span
    code: str
    message: str
    hint: str | None = None
    severity: Severity = "error"

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.span.line, self.span.column, self.code)

    def render(self, source: str | None) -> str:
        """Human form: header line, then the offending source line with a caret span, then the hint."""
        return self._render(_source_lines(source))

    def _render(self, lines: list[str]) -> str:
        """:meth:`render` with the source already split into lines."""
        s = self.span
        out = [f"{self.path}:{s.line}:{s.column}: {self.severity}[{self.code}]: {self.message}"]
        if 1 <= s.line <= len(lines):
            text = lines[s.line - 1].rstrip("\r").expandtabs(1).replace("\f", " ")
            width = (s.end_column - s.column) if s.end_line == s.line else len(text) - s.column + 1
            width = max(1, width)
            gutter = str(s.line)
            out.append(f" {gutter} | {text}")
            out.append(f" {' ' * len(gutter)} | {' ' * (s.column - 1)}{'^' * width}")
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)

    def to_json(self) -> str:
        s = self.span
        return json.dumps(
            {
                "path": self.path,
                "line": s.line,
                "column": s.column,
                "end_line": s.end_line,
                "end_column": s.end_column,
                "severity": self.severity,
                "code": self.code,
                "message": self.message,
                "hint": self.hint,
            },
            ensure_ascii=False,
        )


def _source_lines(source: str | None) -> list[str]:
    # spans count lines by "\n" only (not by \f, \x85, \u2028, ... as splitlines does)
    return source.split("\n") if source is not None else []


def render_diagnostics(diagnostics: Iterable[Diagnostic], sources: Mapping[str, str]) -> str:
    """The human form of each diagnostic (its source from ``sources``, by path), a blank
    line between them. Each source is split into lines once, not once per diagnostic: a
    project can have thousands of warnings."""
    lines: dict[str, list[str]] = {}
    rendered = []
    for d in diagnostics:
        if d.path not in lines:
            lines[d.path] = _source_lines(sources.get(d.path))
        rendered.append(d._render(lines[d.path]))
    return "\n\n".join(rendered)


class CompileError(Exception):
    """Raised by the pipeline when any error diagnostic was produced; carries all of them."""

    def __init__(self, diagnostics: list[Diagnostic], sources: dict[str, str]) -> None:
        super().__init__(f"{sum(d.severity == 'error' for d in diagnostics)} error(s)")
        self.diagnostics = diagnostics
        self.sources = sources

    def render(self) -> str:
        return render_diagnostics(self.diagnostics, self.sources)
