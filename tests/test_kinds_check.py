"""Checks of the module kinds' options: each mistake one diagnostic at the right place."""

from __future__ import annotations

from pathlib import Path

import pytest

from sigforge.codegen.check import check
from sigforge.codegen.diagnostics import Diagnostic
from sigforge.codegen.model import CheckedModule
from sigforge.codegen.parse import parse
from sigforge.codegen.pipeline import compile_sources

HEAD = """signature S {
  in q: str "Q"
  out a: str "A"
}
tool search(query: str "Q") -> list[str] "Search"
"""


def diagnose(source: str) -> tuple[CheckedModule | None, list[Diagnostic]]:
    sig_file, diags = parse(source, "t.sig")
    assert sig_file is not None and diags == [], diags
    module, diags = check(sig_file, source, "t")
    return module, [d for d in diags if d.severity == "error"]


def only(source: str) -> Diagnostic:
    _, diags = diagnose(source)
    assert len(diags) == 1, [d.render(source) for d in diags]
    return diags[0]


def test_every_kind_with_its_options_and_defaults() -> None:
    source = HEAD + """
predictor A = react(S, tools=[search], max_iters=5, adapter="json")
predictor B = react(S, tools=[search])
predictor C = program_of_thought(S)
predictor D = program_of_thought(S, max_iters=2)
predictor E = multi_chain_comparison(S)
predictor F = multi_chain_comparison(S, m=2)
predictor G = best_of_n(S, n=4)
predictor H = refine(S, n=3, module="chain_of_thought")
"""
    module, diags = diagnose(source)
    assert diags == []
    assert module is not None
    got = {p.name: (p.kind, p.max_iters, p.m, p.n, p.attempt, p.adapter) for p in module.predictors}
    assert got == {
        "A": ("react", 5, None, None, "predict", "json"),
        "B": ("react", 20, None, None, "predict", "chat"),  # DSPy's ReAct default
        "C": ("program_of_thought", 3, None, None, "predict", "chat"),  # DSPy's default
        "D": ("program_of_thought", 2, None, None, "predict", "chat"),
        "E": ("multi_chain_comparison", None, 3, None, "predict", "chat"),  # DSPy's M=3
        "F": ("multi_chain_comparison", None, 2, None, "predict", "chat"),
        "G": ("best_of_n", None, None, 4, "predict", "chat"),
        "H": ("refine", None, None, 3, "chain_of_thought", "chat"),
    }
    assert [u.tool.name for u in module.predictors[0].tools] == ["search"]


@pytest.mark.parametrize(
    ("declaration", "at", "code", "message", "hint"),
    [
        ("react(S, tools=[search], iters=3)", "iters", "E404", "unknown option `iters` for `react`", "max_iters"),
        ("best_of_n(S, n=2, m=3)", "m=", "E404", "unknown option `m` for `best_of_n`", "multi_chain_comparison"),
        ("predict(S, max_iters=3)", "max_iters", "E404", "unknown option `max_iters` for `predict`", "react"),
        ('react(S, tools=[search], max_iters="5")', '"5"', "E405", "`max_iters` takes a whole number", None),
        ("react(S, tools=[search], max_iters=2.5)", "2.5", "E405", "`max_iters` takes a whole number", None),
        ("react(S, tools=[search], max_iters=0)", "0)", "E405", "`max_iters` must be at least 1, got 0", None),
        ("multi_chain_comparison(S, m=-1)", "-1", "E405", "`m` must be at least 1", None),
        ("best_of_n(S, n=0)", "0)", "E405", "`n` must be at least 1", None),
        ("refine(S, n=1000)", "1000", "E405", "`n` is too large", "at most 100"),
        ('best_of_n(S, n=2, module="cot")', '"cot"', "E405", '`module` must be "predict" or "chain_of_thought"', None),
        ('refine(S, n=2, adapter="xml")', '"xml"', "E405", '`adapter` must be "chat" or "json"', None),
        ('react(S, tools="search")', '"search"', "E405", "`tools` takes a list of tool names", "tools=[search]"),
        ("react(S, tools=[])", "[]", "E405", "`tools` takes a list of tool names", None),
        ("react(S, tools=[serch])", "serch", "E407", "unknown tool `serch`", "did you mean `search`?"),
        ("react(S, tools=[S])", "S]", "E407", "`S` is a signature, not a tool", None),
        ('react(S, tools=["search"])', '"search"', "E407", "`tools` lists tool names without quotes", None),
        ("react(S, tools=[search, search])", "search]", "E407", "tool `search` is listed twice", None),
        ("react(S)", "react", "E408", "`react` needs the option `tools`", "react(S, tools=[search])"),
        ("best_of_n(S)", "best_of_n", "E408", "`best_of_n` needs the option `n`", "best_of_n(S, n=3)"),
        ('refine(S, module="predict")', "refine", "E408", "`refine` needs the option `n`", None),
        ("react(S, tools=[search], tools=[search])", "tools=[search])", "E404", "option `tools` is given twice", None),
    ],
)
def test_each_option_mistake_is_one_diagnostic(
    declaration: str, at: str, code: str, message: str, hint: str | None
) -> None:
    line = f"predictor P = {declaration}"
    source = HEAD + line + "\n"
    d = only(source)
    assert (d.span.line, d.span.column, d.code) == (6, line.rindex(at) + 1, code), d.render(source)
    assert d.message.startswith(message), d.message
    if hint is not None:
        assert d.hint is not None and hint in d.hint, d.hint


@pytest.mark.parametrize(
    ("kind", "field", "direction"),
    [
        ("react(S, tools=[search])", "trajectory", "in"),
        ("react(S, tools=[search])", "thought", "out"),
        ("react(S, tools=[search])", "next_call", "out"),
        ("react(S, tools=[search])", "reasoning", "out"),
        ("program_of_thought(S)", "generated_code", "out"),
        ("program_of_thought(S)", "error", "in"),
        ("program_of_thought(S)", "code_output", "in"),
        ("multi_chain_comparison(S)", "reasoning_attempt_3", "in"),
        ("multi_chain_comparison(S)", "rationale", "out"),
        ("best_of_n(S, n=2, module=\"chain_of_thought\")", "reasoning", "out"),
        ("refine(S, n=2)", "hint_", "in"),
    ],
)
def test_a_field_the_kind_adds_must_be_free(kind: str, field: str, direction: str) -> None:
    source = f"""signature S {{
  in q: str "Q"
  {direction} {field}: str "taken"
  out a: str "A"
}}
tool search(query: str "Q") -> list[str] "Search"
predictor P = {kind}
"""
    d = only(source)
    assert (d.span.line, d.code) == (7, "E406"), d.render(source)
    name = kind.split("(")[0]
    assert d.message.startswith(f"`{name}` adds a field `{field}`, but `S` already has a field `{field}` (line 3)")
    assert d.hint is not None and "rename that field" in d.hint


def test_fields_that_only_other_kinds_add_are_fine() -> None:
    source = """signature S {
  in q: str "Q"
  out reasoning_attempt_9: str "fine for m=3"
  out hint_: str "fine without refine"
}
predictor A = multi_chain_comparison(S)
predictor B = best_of_n(S, n=2)
"""
    _, diags = diagnose(source)
    assert diags == []


def test_tool_rules_for_agents() -> None:
    d = only(HEAD + "tool finish() -> str\npredictor P = react(S, tools=[finish])\n")
    assert (d.code, d.span.line) == ("E407", 7)
    assert d.message == "a react predictor cannot call a tool named `finish`"
    # a call model names its tool in `tool`: no argument may take that name
    d = only(HEAD + 'tool pick(tool: str "which") -> str\n')
    assert (d.code, d.span.line, d.span.column) == ("E208", 6, 11)
    assert "cannot be named `tool`" in d.message


def test_names_a_kind_generates_are_reserved() -> None:
    _, diags = diagnose(HEAD + "predictor Agent = react(S, tools=[search])\nsignature AgentStep {\n  out x: str \"X\"\n}\n")
    assert {d.code for d in diags} == {"E210"} and len(diags) == 4  # the signature and its 3 models
    assert diags[0].message.startswith("`AgentStep` would generate `AgentStep`, which `Agent` (line 6)")
    d = only(HEAD + "predictor Best = best_of_n(S, n=2)\nclass BestAttemptPredictor {\n  x: str\n}\n")
    assert d.code == "E210"
    d = only(HEAD + "class SearchCall {\n  x: str\n}\n")  # the tool's call model
    assert d.code == "E210" and "SearchCall" in d.message


def test_all_mistakes_of_a_file_in_one_run() -> None:
    source = HEAD + """
predictor A = react(S, tools=[nothing], max_iters=0)
predictor B = best_of_n(S)
predictor C = multi_chain_comparison(S, m="3", n=2)
"""
    _, diags = diagnose(source)
    assert [(d.span.line, d.code) for d in diags] == [
        (7, "E407"), (7, "E405"), (8, "E408"), (9, "E405"), (9, "E404")
    ]


def test_imported_tools_and_signatures(tmp_path: Path) -> None:
    src = tmp_path / "signatures"
    src.mkdir()
    (src / "tools.sig").write_text('tool search(query: str "Q") -> list[str] "Search"\n')
    (src / "base.sig").write_text('signature S {\n  in q: str "Q"\n  out a: str "A"\n}\n')
    (src / "agent.sig").write_text(
        "from tools import search\nfrom base import S\n"
        "predictor Agent = react(S, tools=[search])\n"
        "predictor Judge = multi_chain_comparison(S, m=2)\n"
        'predictor Better = refine(S, n=2, module="chain_of_thought")\n'
    )
    result = compile_sources(src, tmp_path / "out")
    assert result.ok, [d.render(result.sources.get(d.path)) for d in result.diagnostics]
    agent = result.files["agent.py"]
    assert "from .tools import (" in agent and "    SearchCall,\n" in agent
    assert "AgentToolCall = Annotated[SearchCall | Finish, Field(discriminator=\"tool\")]" in agent
    assert "class AgentTools:" in agent and "    search: SearchFunction | SearchAsyncFunction\n" in agent
    # derived signatures of an imported signature are generated here, with its instructions
    assert "class JudgeCompare(Signature):" in agent and "class SWithReasoning(Signature):" in agent
    assert "class BetterHinted(Signature):" in agent
    unused = [d for d in result.diagnostics if d.code == "W103"]
    assert unused == []  # tools listed in `tools=[...]` count as used
