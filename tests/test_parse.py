"""The grammar and the Lark -> AST step."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest
from fuzz_strategies import SourceFiles, generated_files, mutated_files, text_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Lark

from sigforge.codegen import ast
from sigforge.codegen.parse import parse

FULL = '''"""Module docstring."""
# a comment
signature AnswerQuestion {  # trailing comment
    """
    Answer the question.

    Be concise.
    """
    in  context: list[str]    (min_items=1)       "Relevant passages"
    in  question: str                             "The user's \\"question\\""
    in  lang: str | None = None
    in  k: int (ge=1, le=10,) = 3
    out answer: str           (max_length=500, pattern="^[A-Z]")
    out confidence: float     (ge=0.0, le=1.0)
    out label: Literal["a", "b", 3, True]
    out scores: dict[str, list[float | None]]
    out tags: list[str] = ["x", "y"]
}

predictor Answerer = chain_of_thought(AnswerQuestion)
predictor QuickAnswer = predict(AnswerQuestion, adapter="json",)
'''


def test_grammar_is_conflict_free_lalr() -> None:
    text = files("sigforge.grammar").joinpath("sig.lark").read_text()
    Lark(text, parser="lalr", strict=True, propagate_positions=True, maybe_placeholders=True)


def test_every_construct_parses_into_the_ast() -> None:
    sig_file, diags = parse(FULL, "full.sig")
    assert diags == []
    assert sig_file is not None
    assert sig_file.doc is not None and sig_file.doc.text == "Module docstring."
    sig, answerer, quick = sig_file.declarations
    assert isinstance(sig, ast.SignatureDecl)
    assert sig.name == "AnswerQuestion"
    assert sig.doc is not None and sig.doc.text == "Answer the question.\n\nBe concise."
    names = [(f.direction, f.name) for f in sig.fields]
    assert names == [
        ("in", "context"),
        ("in", "question"),
        ("in", "lang"),
        ("in", "k"),
        ("out", "answer"),
        ("out", "confidence"),
        ("out", "label"),
        ("out", "scores"),
        ("out", "tags"),
    ]
    context, question, lang, k, answer, confidence, label, scores, tags = sig.fields
    assert context.options[0].name == "min_items"
    assert context.description is not None and context.description.value == "Relevant passages"
    assert question.description is not None
    assert question.description.value == 'The user\'s "question"'
    assert [m.name for m in lang.type.members] == ["str", "None"]
    assert isinstance(lang.default, ast.NameValue) and lang.default.name == "None"
    assert [o.name for o in k.options] == ["ge", "le"]
    assert isinstance(k.default, ast.NumberValue) and k.default.value == 3
    assert isinstance(answer.options[1].value, ast.StringValue)
    assert answer.options[1].value.value == "^[A-Z]"
    ge = confidence.options[0].value
    assert isinstance(ge, ast.NumberValue) and ge.value == 0.0 and isinstance(ge.value, float)
    lit = label.type.members[0]
    assert lit.name == "Literal" and lit.args is not None and len(lit.args) == 4
    assert scores.type.members[0].name == "dict"
    assert isinstance(tags.default, ast.ListValue) and len(tags.default.items) == 2
    assert isinstance(answerer, ast.PredictorDecl)
    assert (answerer.name, answerer.kind, [a.name for a in answerer.args]) == (
        "Answerer",
        "chain_of_thought",
        ["AnswerQuestion"],
    )
    assert isinstance(quick, ast.PredictorDecl)
    (option,) = quick.options
    assert option.name == "adapter"
    assert isinstance(option.value, ast.StringValue) and option.value.value == "json"


def test_spans_are_one_based_and_point_at_the_token() -> None:
    sig_file, _ = parse(FULL, "full.sig")
    assert sig_file is not None
    sig = sig_file.declarations[0]
    assert isinstance(sig, ast.SignatureDecl)
    assert sig.name_span == ast.Span(3, 11, 3, 25)
    question = sig.fields[1]
    assert question.name_span.line == 10
    assert FULL.splitlines()[9][question.name_span.column - 1 :].startswith("question")


@pytest.mark.parametrize(
    ("source", "line", "column", "code", "message", "hint_part"),
    [
        ("signature X {\n    question: str\n}", 2, 5, "E102", "unexpected name `question`", "`in` or `out`"),
        ('signature X {\n  in q: str "open\n}', 2, 13, "E101", "unexpected character '\"'", '"""'),
        ("signature X {\n  in q: str", 2, 12, "E102", "unexpected end of file", "`}`"),
        ("predictor = predict(X)", 1, 11, "E102", "unexpected `=`", "a name"),
        ("signature X { in q: @ }", 1, 21, "E101", "unexpected character '@'", "a name"),
        ('signature X { in q: str "\\q" }', 1, 25, "E103", "invalid escape sequence", "JSON escapes"),
    ],
)
def test_syntax_errors_are_diagnostics(
    source: str, line: int, column: int, code: str, message: str, hint_part: str
) -> None:
    _, diags = parse(source, "bad.sig")
    assert len(diags) == 1
    d = diags[0]
    assert (d.span.line, d.span.column, d.code) == (line, column, code)
    assert d.message.startswith(message)
    assert d.hint is not None and hint_part in d.hint


def test_rendered_diagnostic_shows_line_caret_and_hint() -> None:
    source = "signature X {\n    question: str\n}\n"
    _, diags = parse(source, "signatures/bad.sig")
    assert diags[0].render(source) == (
        "signatures/bad.sig:2:5: error[E102]: unexpected name `question`\n"
        " 2 |     question: str\n"
        "   |     ^^^^^^^^\n"
        "  hint: expected `in` or `out`, `}`, a \"\"\"docstring\"\"\" or a string; "
        "each field starts with `in` or `out`, e.g. `in question: str`"
    )


# ---------------------------------------------------------------- the parser's own lexer

#: text where a keyword, `in` or `out` is a name, with every kind of token and blank
LEXER_CASES = [
    FULL,
    'class C { signature: str  in: str  out: int = 1 }\n',
    "tool t(in: str, tool: int, enum: float = -1.5e3, x: int = +2, y: float = .5,) -> str\n",
    'enum E { signature = "x" "d" }\nenum F { """doc""" a }\n',
    "from a.b import signature, c,\nfrom d import in_\n",
    'signature S {\r\n\tin in_: str # c\r\n\tout out_: tuple[int, ...]\r\n}\r\n# end',
    'signature S { """line\n  \\""" two\n""" in a: Literal["x\\n", 1] }\n',
    "predictor P = predict(S, temperature=0.5, tags=[], n=[1, 2,],)",
]

#: text with a syntax error: Lark's own lexer must raise from the very same place (a
#: keyword is a name only where the parser's state does not accept the keyword)
BROKEN_CASES = [
    'class C { in: str  out: int  signature: str }',
    'enum E { signature tool = "x" }',
    'signature X {\n  in q: str "open\n}',
    "signature X { in q: @ }",
    "signature X {\n    question: str\n}",
    "signatures X { }",
    "signature X { in }",
    "signature X { in q: str = }",
    'signature X { """never closed }',
    "class C { in q: str }",
    "enum E { a = b }",
    "tool t(x: int) -> ",
    "signature X { in q: str } }",
    "from . import x",
    "predictor P = predict(S, 1)",
    "  # only a comment\n\n",
]


@pytest.fixture(scope="module")
def lexers() -> tuple[Lark, Lark]:
    """Parse-tree parsers of the grammar: with the parser's lexer, and with Lark's own."""
    from sigforge.codegen.lark_parser import LarkLexer

    text = files("sigforge.grammar").joinpath("sig.lark").read_text()
    options = {"parser": "lalr", "keep_all_tokens": True, "maybe_placeholders": True}
    return Lark(text, lexer=LarkLexer, **options), Lark(text, lexer="contextual", **options)


def _tokens(tree: object) -> list[tuple[object, ...]]:
    from lark import Token, Tree

    assert isinstance(tree, Tree)
    return [
        (t.type, t.value, t.start_pos, t.line, t.column, t.end_line, t.end_column, t.end_pos)
        for t in tree.scan_values(lambda v: isinstance(v, Token))
    ]


def _sig_files() -> list[str]:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    found = [*root.glob("signatures/*.sig"), *root.glob("tests/**/*.sig")]
    assert found
    return [p.read_text(encoding="utf-8") for p in sorted(found)]


@pytest.mark.parametrize("source", LEXER_CASES)
def test_the_lexer_gives_the_tokens_of_larks_contextual_lexer(
    lexers: tuple[Lark, Lark], source: str
) -> None:
    fast, lark = lexers
    assert _tokens(fast.parse(source)) == _tokens(lark.parse(source))


def test_the_lexer_gives_larks_tokens_for_every_sig_file(lexers: tuple[Lark, Lark]) -> None:
    fast, lark = lexers
    for source in _sig_files():
        assert _tokens(fast.parse(source)) == _tokens(lark.parse(source))


@pytest.mark.parametrize("source", BROKEN_CASES)
def test_the_lexer_fails_where_and_as_larks_lexer_does(
    lexers: tuple[Lark, Lark], source: str
) -> None:
    from lark.exceptions import UnexpectedInput

    def failure(parser: Lark) -> tuple[object, ...]:
        try:
            parser.parse(source)
        except UnexpectedInput as exc:
            token = getattr(exc, "token", None)
            return (
                type(exc),
                exc.line,
                exc.column,
                exc.pos_in_stream,
                sorted(getattr(exc, "allowed", None) or getattr(exc, "expected", None) or ()),
                token and (token.type, token.value, token.line, token.column, token.end_column),
            )
        return ("parsed",)

    fast, lark = lexers
    assert failure(fast) == failure(lark)


def test_the_lexer_falls_back_to_larks_when_larks_internals_differ(
    lexers: tuple[Lark, Lark], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lexer reads Lark's per-state lexers; if another Lark version lays them out
    differently (here: the keyword callback is not the class it expects), Lark's own
    contextual lexer does the lexing, with the same tokens, and nothing crashes."""
    import sigforge.codegen.lark_parser as lark_parser

    class NotLarksCallback:
        pass

    monkeypatch.setattr(lark_parser, "UnlessCallback", NotLarksCallback)
    _, lark = lexers
    text = files("sigforge.grammar").joinpath("sig.lark").read_text()
    options = {"parser": "lalr", "keep_all_tokens": True, "maybe_placeholders": True}
    fallback = Lark(text, lexer=lark_parser.LarkLexer, **options)
    for source in [*_sig_files(), *LEXER_CASES]:
        assert _tokens(fallback.parse(source)) == _tokens(lark.parse(source))
    lexer = fallback.parser.lexer
    assert isinstance(lexer, lark_parser.LarkLexer) and lexer._unknown_internals


# ---------------------------------------------------------------- the parser's own LALR loop

#: texts with a syntax error after a value error (E103, E104: the rule callbacks report
#: them as the parser goes), and texts whose only problems are such errors
DRIVER_CASES = [
    'signature X { in q: str "\\q" }\nsignature Y { in }\n',
    'enum E { a = "\\x" }\nsignature Y { out a: str = }\nclass C { n: int = 1e999999 }',
    'class C { n: float = 1e999999 x: str "\\q" }',
    f"class C {{ n: int = {'9' * 5000} }}",
]


def _example_texts() -> list[str]:
    """Every example file of the repository, the benchmark project's files and the cases
    above."""
    import importlib
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    optimizers = sorted(root.glob("runtime/optimizers/signatures/**/*.sig"))
    sys.path.insert(0, str(root / "bench"))
    try:
        bench = importlib.import_module("codegen_scale")
    finally:
        sys.path.remove(str(root / "bench"))
    return [
        *_sig_files(),
        *(p.read_text(encoding="utf-8") for p in optimizers),
        bench.SIG_COMMON,
        bench.sig_file(0, 100, True),
        *LEXER_CASES,
        *BROKEN_CASES,
        *DRIVER_CASES,
    ]


def _results(texts: list[str]) -> list[str]:
    """What :func:`parse` makes of each text: the AST and the diagnostics, as a repr (which
    also tells an int from an equal float)."""
    return [repr(parse(text, "f.sig")) for text in texts]


@pytest.fixture(scope="module")
def larks_results() -> list[str]:
    """The results with Lark's own parse loop for every text (no driver)."""
    import sigforge.codegen.parse as parse_module

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parse_module, "_driver", lambda: None)
        return _results(_example_texts())


def test_the_driver_parses_every_example_as_larks_parse_loop_does(larks_results: list[str]) -> None:
    from sigforge.codegen.parse import _driver

    texts = _example_texts()
    assert _results(texts) == larks_results
    # ... parsing every text without a syntax error itself, and leaving the others to Lark
    driver = _driver()
    assert driver is not None
    for text, result in zip(texts, larks_results, strict=True):
        syntax_error = any(f"code='{code}'" in result for code in ("E100", "E101", "E102"))
        assert (driver.parse(text) is None) == syntax_error, text
    assert driver.parse("  # only a comment\n\n") == []
    assert driver.parse("signature X { in q: str } # x\n@") is None


@pytest.fixture
def tables_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The tables the parser loads are read from a file of the test (a copy of the shipped
    ones), and no driver is loaded yet (before and after)."""
    import shutil

    import sigforge.codegen.parse as parse_module

    copy = tmp_path / parse_module.TABLES_FILE
    shutil.copy(parse_module._tables_file(), copy)
    monkeypatch.setattr(parse_module, "_tables_file", lambda: copy)
    parse_module._driver.cache_clear()
    yield copy
    monkeypatch.undo()
    parse_module._driver.cache_clear()


def test_the_shipped_tables_are_this_grammars() -> None:
    """grammar/sig.tables.json was compiled from grammar/sig.lark as it is (after a change
    of the grammar: `python -m sigforge.codegen.lark_parser grammar/sig.tables.json`)."""
    import json

    from sigforge.codegen.parse import _tables_file, grammar_digest, grammar_text

    shipped = json.loads(_tables_file().read_text(encoding="utf-8"))
    assert shipped["grammar"] == grammar_digest(grammar_text()), "the tables are stale"


def test_the_shipped_tables_are_what_lark_compiles(tables_file: Path, tmp_path: Path) -> None:
    """Written again now, the tables hold the same states, rules and lexers (Lark names
    its anonymous terminals and numbers its states in hash order, so not byte for byte),
    and the parser loads them without compiling anything."""
    import json

    import sigforge.codegen.parse as parse_module
    from sigforge.codegen.lark_parser import main

    fresh = tmp_path / "fresh.json"
    assert main([str(fresh)]) == 0
    old, new = (json.loads(p.read_text(encoding="utf-8")) for p in (tables_file, fresh))
    assert old["grammar"] == new["grammar"]
    shipped, compiled = parse_module.ParseTables(*old["tables"]), parse_module.ParseTables(*new["tables"])
    # the rules, each with the callback Lark makes for it, are the same
    assert sorted(map(json.dumps, shipped.reduces)) == sorted(map(json.dumps, compiled.reduces))
    assert len(shipped.actions) == len(compiled.actions)
    assert len(shipped.lexers) == len(compiled.lexers)
    with pytest.MonkeyPatch.context() as patch:

        def no_lark(*_: object) -> None:
            raise AssertionError("the tables were compiled")

        patch.setattr("sigforge.codegen.lark_parser.compile_tables", no_lark)
        assert parse_module._driver() is not None


def test_the_tables_call_what_lark_calls(
    tables_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rule's callback is recorded by the name Lark looks it up by (an alias such as
    `keyword_arg`, today the same function as `option`), so a builder method of its own
    for it is what both the tables and Lark call."""
    import sigforge.codegen.parse as parse_module

    shipped = parse_module.ParseTables(*json.loads(tables_file.read_text(encoding="utf-8"))["tables"])
    assert any("keyword_arg" in json.dumps(spec) for _, _, spec in shipped.reduces)

    def keyword_arg(self: object, children: list[object]) -> ast.Option:
        option = parse_module._ToAst.option(self, children)  # type: ignore[arg-type]
        return ast.Option(f"kw_{option.name}", option.value, option.span, option.name_span)

    monkeypatch.setattr(parse_module._ToAst, "keyword_arg", keyword_arg)
    lark_parser = __import__("sigforge.codegen.lark_parser", fromlist=["parser"])
    lark_parser.parser.cache_clear()  # (Lark's callbacks are bound when it is built)
    text = 'signature S { in q: str  out a: str }\npredictor P = predict(S, adapter="json")\n'
    try:
        with_tables = _results([text])
        assert "kw_adapter" in with_tables[0]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(parse_module, "_driver", lambda: None)
            assert _results([text]) == with_tables
    finally:
        monkeypatch.undo()
        lark_parser.parser.cache_clear()


@pytest.mark.parametrize(
    "damage",
    [
        "",
        "{not json",
        "[1, 2, 3]",
        '{"grammar": "0", "tables": []}',
        "stale",
        "bad tables",
        "unknown method",
        "lexer out of range",
        "shift out of range",
    ],
)
def test_stale_or_damaged_tables_are_compiled_from_lark(
    larks_results: list[str], tables_file: Path, damage: str
) -> None:
    """Tables of another grammar, or a file that cannot be read, are not used: the tables
    are compiled from Lark's parser in the process, with the same results."""
    import json

    import sigforge.codegen.parse as parse_module

    shipped = json.loads(tables_file.read_text(encoding="utf-8"))
    if damage == "stale":
        damage = json.dumps({**shipped, "grammar": "0" * 32})
    elif damage == "bad tables":
        damage = json.dumps({**shipped, "tables": ["", 0, [], [], [], [], 0, 0]})
    elif damage == "unknown method":
        text = json.dumps(shipped).replace('["method", "string_value"]', '["method", "no_such"]')
        damage = text.replace('["method","string_value"]', '["method","no_such"]')
        assert damage != json.dumps(shipped)
    elif damage == "lexer out of range":
        tables = list(shipped["tables"])
        tables[3] = [len(tables[2])] * len(tables[3])
        damage = json.dumps({**shipped, "tables": tables})
    elif damage == "shift out of range":
        tables = list(shipped["tables"])
        tables[4] = [{symbol: 10_000 for symbol in row} for row in tables[4]]
        damage = json.dumps({**shipped, "tables": tables})
    tables_file.write_text(damage, encoding="utf-8")
    compiled: list[object] = []
    with pytest.MonkeyPatch.context() as patch:
        from sigforge.codegen import lark_parser

        real = lark_parser.compile_tables

        def counted(lark: object) -> object:
            compiled.append(lark)
            return real(lark)  # type: ignore[arg-type]

        patch.setattr(lark_parser, "compile_tables", counted)
        assert parse_module._driver() is not None
    assert len(compiled) == 1
    assert _results(_example_texts()) == larks_results


def test_a_damaged_lexer_or_goto_hands_the_text_to_lark(
    larks_results: list[str], tables_file: Path
) -> None:
    """Damage that shows only while parsing (a regex that does not compile, a goto the
    tables lack) makes the parser's loop hand the text to Lark: never an exception."""
    import sigforge.codegen.parse as parse_module

    shipped = json.loads(tables_file.read_text(encoding="utf-8"))
    tables = list(shipped["tables"])
    tables[2] = [["(", flags, newlines, keywords] for _, flags, newlines, keywords in tables[2]]
    tables[4] = [{s: a for s, a in row.items() if s != "field"} for row in tables[4]]
    tables_file.write_text(json.dumps({**shipped, "tables": tables}), encoding="utf-8")
    driver = parse_module._driver()
    assert driver is not None  # (these pass the checks made on loading)
    assert driver.parse(FULL) is None
    assert _results(_example_texts()) == larks_results


def test_lark_parses_everything_when_its_internals_differ(
    larks_results: list[str], tables_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tables are read from Lark's parse table; if another Lark version lays it out
    differently (here: a shift is not the action object it expects) and the shipped tables
    cannot be used, there are no tables and Lark's own parse loop does the parsing, with
    the same results."""
    import sigforge.codegen.lark_parser as lark_parser
    import sigforge.codegen.parse as parse_module

    tables_file.unlink()
    monkeypatch.setattr(lark_parser, "Shift", object())
    with pytest.raises(lark_parser.UnknownInternals):
        lark_parser.compile_tables(lark_parser.parser())
    assert parse_module._driver() is None
    assert _results(_example_texts()) == larks_results


def test_no_tables_when_the_lexers_internals_differ(
    larks_results: list[str], tables_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a lexer that falls back to Lark's (see above), there are no lexer tables to
    compile either: Lark parses every text, with the same results."""
    tables_file.unlink()
    import sigforge.codegen.lark_parser as lark_parser
    import sigforge.codegen.parse as parse_module

    class NotLarksCallback:
        pass

    monkeypatch.setattr(lark_parser, "UnlessCallback", NotLarksCallback)
    text = files("sigforge.grammar").joinpath("sig.lark").read_text()
    options = {"parser": "lalr", "keep_all_tokens": True, "maybe_placeholders": True}
    lark = Lark(text, lexer=lark_parser.LarkLexer, transformer=parse_module._ToAst(), **options)
    lark.parse("")
    with pytest.raises(lark_parser.UnknownInternals):
        lark_parser.compile_tables(lark)
    lark_parser.parser.cache_clear()
    try:
        assert parse_module._driver() is None
        assert _results(_example_texts()) == larks_results
    finally:
        monkeypatch.undo()
        lark_parser.parser.cache_clear()


def test_parsing_text_that_parses_does_not_load_lark() -> None:
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from sigforge.codegen.parse import parse\n"
        f"tree, diagnostics = parse({FULL!r}, 'f.sig')\n"
        "assert tree is not None and not diagnostics\n"
        "print('lark' in sys.modules)\n"
        "tree, diagnostics = parse('signature X {', 'f.sig')\n"
        "assert tree is None and diagnostics[0].code == 'E102'\n"
        "print('lark' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "True"]  # Lark only for the syntax error


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.one_of(text_files(), mutated_files(), generated_files()))
def test_the_driver_gives_larks_results_for_any_text(files: SourceFiles) -> None:
    """Arbitrary, mutated and generated files (tests/fuzz_strategies.py): the same AST, the
    same diagnostics as with Lark's parse loop alone."""
    import sigforge.codegen.parse as parse_module

    texts = [text for text in files.values() if isinstance(text, str)]
    with_driver = _results(texts)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parse_module, "_driver", lambda: None)
        assert _results(texts) == with_driver
