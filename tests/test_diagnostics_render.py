"""render_diagnostics: many diagnostics rendered at once read exactly as one by one."""

from __future__ import annotations

from sigforge.codegen.ast import Span
from sigforge.codegen.diagnostics import CompileError, Diagnostic, render_diagnostics


def test_many_diagnostics_of_several_files_render_as_each_alone() -> None:
    sources = {
        "a.sig": "signature A {\n    out x: str\n}\n",
        "b.sig": "signature B {\r\n\tin  y: strr\r\n    out z: int\n}",
    }
    diagnostics = [
        Diagnostic("a.sig", Span(2, 9, 2, 10), "W101", "output `x` has no description", "add one", "warning"),
        Diagnostic("b.sig", Span(2, 9, 2, 13), "E201", "unknown type `strr`", "did you mean `str`?"),
        Diagnostic("a.sig", Span(1, 11, 3, 2), "E205", "signature `A` has no inputs"),
        Diagnostic("b.sig", Span(9, 1, 9, 2), "E999", "a line past the end of the file"),
        Diagnostic("gone.sig", Span(1, 1, 1, 2), "E001", "file is not valid UTF-8"),
    ]
    expected = "\n\n".join(d.render(sources.get(d.path)) for d in diagnostics)
    assert render_diagnostics(diagnostics, sources) == expected
    assert " 2 |  in  y: strr" in expected  # the source line, tab expanded, \r dropped
    assert CompileError(diagnostics, sources).render() == expected


def test_no_diagnostics_render_as_nothing() -> None:
    assert render_diagnostics([], {"a.sig": "x"}) == ""
