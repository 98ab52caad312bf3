"""The TextMate grammar for `.sig` (editors/vscode) highlights every construct of the language.

The grammar is run by the small tokenizer in ``textmate.py`` (Python ``re`` instead of
Oniguruma; the grammar only uses regex features both engines share). Checks:

- the grammar, the VS Code manifest and the language configuration are well formed;
- every regex compiles in Python unchanged, and every include resolves;
- every ``.sig`` file in the repository, a tour of the whole language and a file of edge
  cases are fully highlighted, agree with the tokens of the real parser (grammar/sig.lark),
  and specific tokens get the expected scopes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from lark import Lark
from lark import Token as LarkToken
from lark.exceptions import LarkError
from textmate import Grammar, GrammarLoopError, Token, UnsupportedGrammar, translate_regex

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "editors" / "vscode"
GRAMMAR_PATH = EXTENSION / "syntaxes" / "sig.tmLanguage.json"
SIG_FILES = sorted({*ROOT.glob("signatures/**/*.sig"), *ROOT.glob("tests/fixtures/**/*.sig")})

# Every construct of the language, as the language reference shows it.
LANGUAGE_TOUR = '''\
"""Module docstring (first thing in a file)."""
# comments start with # and run to end of line, anywhere
from common import Citation, Priority      # imports between .sig files
enum Priority {
    """Optional docstring."""
    low "optional description"
    high
    very_high = "very high" "Value with a custom wire string, then description"
}
class Citation {
    """A source passage."""
    source: str "Where it came from"
    page: int (ge=1) = 1
    children: list[Citation] = []
    tags: tuple[str, ...]
    score: float | None = None
}
tool search(query: str (min_length=1) "What to look for", k: int = 3) -> list[str] "Search the corpus"
signature AnswerQuestion {
    """
    Instructions (docstring) for the LM.
    """
    in  question: str (max_length=200, prefix="Question:", format="plain text") "The question"
    in  photo: Image
    in  when: date | None = None
    in  scores: dict[str, list[tuple[int, float]]]
    out answer: str "A short answer"
    out label: Literal["yes", "no", 3, True]
    out due: datetime
}
predictor Answerer = chain_of_thought(AnswerQuestion, adapter="json")
'''

# Layout and lexical corner cases.
EDGE_CASES = r'''"""Doc with # hash and "quotes" and \"escaped\" and \\ backslash
still the docstring # not a comment
"""
from sub.common import Citation, Priority  # dotted module path
from other import A,   # first
    B,
tool lookup(
    key: str,  # the key
    n: int (ge=1, le=10) = 5,
) -> dict[str, list[int | None]]
tool no_params() -> bool "no parameters"
signature S{"""one-line instructions"""
    in  q: str "say \"hi\" # not a comment" # a comment after a field
    out multi: dict[str,
                    list[Literal["a", -1, 2.5e-3, False]]]  (min_items=1)
    out   spaced : Priority   =   low
    out pattern: str (pattern="^[a-z]+$", min_length=0)
    out nums: list[float] = [1, -2.5, .5, 1e10, +3]
    out flag: bool = True
    in  tool: str                 # keywords are names when followed by a colon
    out signature: str
}
class Empty {}
class OneLine { out: str  page: int (ge=1) = 1  source: str "where" }
enum E { a b "desc" c = "C" }
enum Kind {
    tool
    signature "a keyword as a member"
}
predictor Agent = react(S, tools=[lookup, no_return], max_iters=3, n=3)
predictor Multi = predict(
    S,  # positional
    adapter="chat",
)
'''

SOURCES = {
    **{str(path.relative_to(ROOT)): path.read_text(encoding="utf-8") for path in SIG_FILES},
    "language tour": LANGUAGE_TOUR,
    "edge cases": EDGE_CASES,
}


# ---------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def grammar() -> Grammar:
    return Grammar.from_file(GRAMMAR_PATH)


def has_scope(scopes: tuple[str, ...], selector: str) -> bool:
    """TextMate selector semantics: ``string.quoted`` matches ``string.quoted.double.sig``."""
    return any(scope == selector or scope.startswith(selector + ".") for scope in scopes)


@cache
def highlight(grammar: Grammar, source: str) -> dict[int, tuple[str, ...]]:
    """The scopes of each character, by offset in ``source`` (lines end with a bare \\n)."""
    line_starts = [0]
    for line in source.split("\n"):
        line_starts.append(line_starts[-1] + len(line) + 1)
    return {
        line_starts[token.line] + column: token.scopes
        for token in grammar.tokenize(source)
        for column in range(token.start, token.end)
    }


def scopes_at(grammar: Grammar, source: str, needle: str, offset: int = 0) -> tuple[str, ...]:
    """Scopes of the character ``offset`` into the first occurrence of ``needle``."""
    return highlight(grammar, source)[source.index(needle) + offset]


def is_highlighted(scopes: tuple[str, ...]) -> bool:
    """Whether some scope other than the root and ``meta.*`` regions applies."""
    return any(not scope.startswith("meta.") for scope in scopes[1:])


def iter_regexes(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every (location, regex) in a grammar's JSON."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("match", "begin", "end") and isinstance(value, str):
                yield f"{where}/{key}", value
            else:
                yield from iter_regexes(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from iter_regexes(item, f"{where}/{i}")


@cache
def real_parser() -> tuple[Lark, list[LarkToken]]:
    """grammar/sig.lark's parser, keeping every token, and the list it appends comments to."""
    comments: list[LarkToken] = []
    parser = Lark(
        (ROOT / "grammar" / "sig.lark").read_text(encoding="utf-8"),
        parser="lalr",
        keep_all_tokens=True,
        lexer_callbacks={"COMMENT": comments.append},
    )
    return parser, comments


def real_tokens(source: str) -> list[LarkToken]:
    """Every token of ``source`` as the real parser sees it (keyword or name by context)."""
    parser, comments = real_parser()
    comments.clear()
    tree = parser.parse(source)
    return [*tree.scan_values(lambda v: isinstance(v, LarkToken)), *comments]


def expected_selectors(token_type: str, text: str) -> tuple[str, ...]:
    """What the grammar must call a token of the real parser (any one of these selectors)."""
    by_type = {
        "DOCSTRING": ("string.quoted.docstring",),
        "STRING": ("string.quoted.double",),
        "NUMBER": ("constant.numeric",),
        "COMMENT": ("comment.line.number-sign",),
        "DIRECTION": ("keyword.other.direction",),
    }
    if token_type in by_type:
        return by_type[token_type]
    if re.fullmatch(r"[A-Za-z_]\w*", text):
        if token_type != "NAME":  # a keyword
            return ("storage.type", "keyword.control", "keyword.other")
        return ("entity.name", "variable", "support", "constant.language")
    return ("punctuation", "keyword.operator", "constant.language.ellipsis")


# ---------------------------------------------------------------------------- the files


def test_grammar_file_is_a_textmate_grammar() -> None:
    data = json.loads(GRAMMAR_PATH.read_text(encoding="utf-8"))
    assert data["scopeName"] == "source.sig"
    assert data["fileTypes"] == ["sig"]
    assert data["patterns"], "the grammar has no top-level patterns"
    repository = data["repository"]
    text = json.dumps(data)
    included = set(re.findall(r'"include": "#([^"]+)"', text))
    assert included - set(repository) == set(), "includes of missing repository entries"
    assert set(repository) - included == set(), "repository entries nothing includes"


def test_every_regex_is_portable_and_compiles_in_python() -> None:
    data = json.loads(GRAMMAR_PATH.read_text(encoding="utf-8"))
    regexes = list(iter_regexes(data))
    assert len(regexes) > 20
    for where, regex in regexes:
        assert translate_regex(regex) == regex, f"{where} needs translating: use shared features"
        re.compile(regex)


def test_vscode_extension_manifest() -> None:
    manifest = json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))
    assert manifest["engines"]["vscode"]
    (language,) = manifest["contributes"]["languages"]
    assert language["id"] == "sig"
    assert language["extensions"] == [".sig"]
    (contributed,) = manifest["contributes"]["grammars"]
    assert contributed == {
        "language": "sig",
        "scopeName": "source.sig",
        "path": "./syntaxes/sig.tmLanguage.json",
    }
    assert (EXTENSION / contributed["path"]).resolve() == GRAMMAR_PATH

    config = json.loads((EXTENSION / language["configuration"]).read_text(encoding="utf-8"))
    assert config["comments"] == {"lineComment": "#"}
    assert ["{", "}"] in config["brackets"]
    pairs = {pair["open"]: pair["close"] for pair in config["autoClosingPairs"]}
    assert pairs['"""'] == '"""'
    assert pairs['"'] == '"'


def test_the_tour_and_edge_cases_cover_the_whole_language() -> None:
    words = set(re.findall(r"\w+|->|\.\.\.", LANGUAGE_TOUR + EDGE_CASES))
    keywords = {"signature", "class", "enum", "tool", "predictor", "from", "import", "in", "out"}
    builtins = {"str", "int", "float", "bool", "list", "dict", "tuple", "Literal"}
    builtins |= {"None", "date", "datetime", "Image", "True", "False", "->", "..."}
    assert keywords | builtins <= words


# ---------------------------------------------------------------------------- every source


@pytest.mark.parametrize("name", list(SOURCES))
def test_every_character_is_highlighted(grammar: Grammar, name: str) -> None:
    unscoped = [
        f"{t.line + 1}:{t.start + 1} {t.text!r}"
        for t in grammar.tokenize(SOURCES[name])
        if not t.text.isspace() and not is_highlighted(t.scopes)
    ]
    assert unscoped == [], f"{name}: text without a scope"


@pytest.mark.parametrize("name", list(SOURCES))
def test_scopes_agree_with_the_real_parser(grammar: Grammar, name: str) -> None:
    """Each token of grammar/sig.lark's parser is highlighted as what it is, all of it."""
    source = SOURCES[name]
    try:
        tokens = real_tokens(source)
    except LarkError as exc:
        if name in ("language tour", "edge cases"):
            pytest.skip(f"grammar/sig.lark does not parse all of the language yet: {exc}")
        raise
    scopes = highlight(grammar, source)
    wrong = []
    for token in tokens:
        assert token.start_pos is not None and token.end_pos is not None
        selectors = expected_selectors(token.type, str(token))
        for offset in range(token.start_pos, token.end_pos):
            if not source[offset].isspace() and not any(
                has_scope(scopes.get(offset, ()), s) for s in selectors
            ):
                where = f"{token.line}:{token.column} {token.type} {str(token)!r}"
                wrong.append(f"{where} should be one of {selectors}, has {scopes.get(offset)}")
                break
    assert wrong == [], f"{name}: tokens highlighted as something else"


# ---------------------------------------------------------------------------- specific scopes

TOUR_SCOPES = [
    # (needle, offset into the needle, expected selector)
    ('"""Module', 0, "punctuation.definition.string.begin"),
    ('"""Module', 3, "string.quoted.docstring"),
    ("# comments", 0, "punctuation.definition.comment"),
    ("# comments", 5, "comment.line.number-sign"),
    ("from common", 0, "keyword.control.import"),
    ("from common", 5, "entity.name.namespace"),
    ("import Citation", 0, "keyword.control.import"),
    ("import Citation", 7, "entity.name.type"),
    ("enum Priority", 0, "storage.type.enum"),
    ("enum Priority", 5, "entity.name.type.enum"),
    ("{\n", 0, "punctuation.section.block.begin"),
    ("low", 0, "variable.other.enummember"),
    ("very_high =", 10, "keyword.operator.assignment"),
    ('"very high"', 1, "string.quoted.double"),
    ("class Citation", 0, "storage.type.class"),
    ("class Citation", 6, "entity.name.type.class"),
    ("source: str", 0, "variable.other.field"),
    ("source: str", 6, "punctuation.separator.colon"),
    ("source: str", 8, "support.type.builtin"),
    ("(ge=1)", 0, "punctuation.section.parens.begin"),
    ("(ge=1)", 1, "variable.parameter.option"),
    ("(ge=1)", 4, "constant.numeric"),
    ("list[Citation]", 0, "support.type.builtin"),
    ("list[Citation]", 4, "punctuation.section.brackets.begin"),
    ("list[Citation]", 5, "entity.name.type"),
    ("str, ...]", 3, "punctuation.separator.comma"),
    ("str, ...]", 5, "constant.language.ellipsis"),
    ("float | None = None", 6, "keyword.operator.union"),
    ("float | None = None", 8, "support.type.builtin"),
    ("float | None = None", 15, "constant.language"),
    ("tool search", 0, "storage.type.tool"),
    ("tool search", 5, "entity.name.function"),
    ("query: str", 0, "variable.parameter"),
    ("(min_length=1)", 1, "variable.parameter.option"),
    ("k: int = 3", 9, "constant.numeric"),
    ("-> list[str]", 0, "keyword.operator.arrow"),
    ("-> list[str]", 3, "support.type.builtin"),
    ('"Search the corpus"', 1, "string.quoted.double"),
    ("signature AnswerQuestion", 0, "storage.type.signature"),
    ("signature AnswerQuestion", 10, "entity.name.type.class"),
    ("in  question", 0, "keyword.other.direction"),
    ("in  question", 4, "variable.other.field"),
    ('prefix="Question:"', 8, "string.quoted.double"),
    ("photo: Image", 7, "support.type.builtin"),
    ("date | None", 0, "support.type.builtin"),
    ("dict[str, list[tuple[int, float]]]", 15, "support.type.builtin"),
    ("dict[str, list[tuple[int, float]]]", 33, "punctuation.section.brackets.end"),
    ("out answer", 0, "keyword.other.direction"),
    ("out answer", 4, "variable.other.field"),
    ('Literal["yes"', 0, "support.type.builtin"),
    ('Literal["yes"', 8, "punctuation.definition.string.begin"),
    ("3, True]", 0, "constant.numeric"),
    ("3, True]", 3, "constant.language"),
    ("due: datetime", 5, "support.type.builtin"),
    ("}\npredictor", 0, "punctuation.section.block.end"),
    ("predictor Answerer", 0, "storage.type.predictor"),
    ("predictor Answerer", 10, "entity.name.function"),
    ("chain_of_thought(", 0, "support.function"),
    ("chain_of_thought(", 16, "punctuation.section.parens.begin"),
    ("(AnswerQuestion,", 1, "entity.name.type"),
    ('adapter="json"', 0, "variable.parameter.option"),
    ('adapter="json"', 9, "string.quoted.double"),
]


def wrong_scopes(grammar: Grammar, source: str, expected: list[tuple[str, int, str]]) -> list[str]:
    """The rows of ``expected`` whose character does not get the selector."""
    wrong = []
    for needle, offset, selector in expected:
        scopes = scopes_at(grammar, source, needle, offset)
        if not has_scope(scopes, selector):
            wrong.append(f"{needle!r}[{offset}] should be {selector}, has {scopes[1:]}")
    return wrong


def test_tour_token_scopes(grammar: Grammar) -> None:
    assert wrong_scopes(grammar, LANGUAGE_TOUR, TOUR_SCOPES) == []


def test_docstring_spanning_lines_is_one_docstring(grammar: Grammar) -> None:
    start = LANGUAGE_TOUR.index('    """\n    Instructions') + 4
    end = LANGUAGE_TOUR.index('"""', start + 3) + 3
    scopes = highlight(grammar, LANGUAGE_TOUR)
    for offset in range(start, end):
        if not LANGUAGE_TOUR[offset].isspace():
            assert has_scope(scopes[offset], "string.quoted.docstring"), offset
    assert has_scope(scopes[start], "punctuation.definition.string.begin")
    assert has_scope(scopes[end - 1], "punctuation.definition.string.end")
    after = LANGUAGE_TOUR.index("in  question")
    assert not has_scope(scopes[after], "string")


def test_escaped_quotes_and_hash_stay_inside_one_string(grammar: Grammar) -> None:
    text = r'"say \"hi\" # not a comment"'
    start = EDGE_CASES.index(text)
    scopes = highlight(grammar, EDGE_CASES)
    inside = [scopes[offset] for offset in range(start, start + len(text))]
    assert all(has_scope(s, "string.quoted.double") for s in inside)
    assert not any(has_scope(s, "comment") for s in inside)
    assert has_scope(inside[0], "punctuation.definition.string.begin")
    assert has_scope(inside[-1], "punctuation.definition.string.end")
    ends = [i for i, s in enumerate(inside) if has_scope(s, "punctuation.definition.string.end")]
    assert ends == [len(text) - 1]
    assert has_scope(inside[text.index('\\"')], "constant.character.escape")

    comment = EDGE_CASES.index("# a comment after a field")
    assert has_scope(scopes[comment], "comment.line.number-sign")
    assert has_scope(scopes[comment + 5], "comment.line.number-sign")


def test_docstring_with_hash_and_quotes_is_one_docstring(grammar: Grammar) -> None:
    end = EDGE_CASES.index('\n"""') + 4
    scopes = highlight(grammar, EDGE_CASES)
    for offset in range(end):
        if not EDGE_CASES[offset].isspace():
            assert has_scope(scopes[offset], "string.quoted.docstring"), offset
            assert not has_scope(scopes[offset], "comment"), offset
    assert has_scope(scopes[EDGE_CASES.index('\\"escaped')], "constant.character.escape")
    assert has_scope(scopes[end + 1], "keyword.control.import")  # `from` on the next line


EDGE_SCOPES = [
    # (needle, offset into the needle, expected selector)
    ("sub.common", 3, "punctuation.separator.period"),
    ("sub.common", 4, "entity.name.namespace"),
    ("A,   # first", 0, "entity.name.type"),
    ("    B,", 4, "entity.name.type"),
    ("->", 0, "keyword.operator.arrow"),
    ("int | None]]", 8, "support.type.builtin"),
    ('"no parameters"', 1, "string.quoted.double"),
    ("no_params()", 9, "punctuation.section.parens.begin"),
    ("S{", 1, "punctuation.section.block.begin"),
    ('"""one-line', 3, "string.quoted.docstring"),
    ("list[Literal", 13, "punctuation.definition.string.begin"),
    ("-1, 2.5e-3", 0, "constant.numeric"),
    ("-1, 2.5e-3", 4, "constant.numeric"),
    ("False]", 0, "constant.language"),
    ("(min_items=1)", 1, "variable.parameter.option"),
    ("spaced : Priority", 7, "punctuation.separator.colon"),
    ("spaced : Priority", 9, "entity.name.type"),
    ("=   low", 4, "variable.other"),
    ('"^[a-z]+$"', 2, "string.quoted.double"),
    (".5, 1e10", 0, "constant.numeric"),
    ("Empty {}", 7, "punctuation.section.block.end"),
    ("{ a b", 2, "variable.other.enummember"),
    ("in  tool: str", 0, "keyword.other.direction"),
    ("in  tool: str", 4, "variable.other.field"),
    ("out signature:", 4, "variable.other.field"),
    ("{ out: str", 2, "variable.other.field"),
    ("page: int (ge=1) = 1  source", 0, "variable.other.field"),
    ("page: int (ge=1) = 1  source", 22, "variable.other.field"),
    ('"where" }', 8, "punctuation.section.block.end"),
    ("    tool\n", 4, "variable.other.enummember"),
    ('    signature "a', 4, "variable.other.enummember"),
    ("react(", 0, "support.function"),
    ("tools=[lookup", 7, "variable.other"),
    ("max_iters=3", 10, "constant.numeric"),
    ("    S,  # positional", 4, "entity.name.type"),
]


def test_edge_case_token_scopes(grammar: Grammar) -> None:
    assert wrong_scopes(grammar, EDGE_CASES, EDGE_SCOPES) == []


def test_unclosed_block_does_not_swallow_the_next_declaration(grammar: Grammar) -> None:
    source = 'signature Broken {\n    in x: str "unterminated\npredictor P = predict(Broken)\n'
    assert has_scope(scopes_at(grammar, source, "predictor"), "storage.type.predictor")
    assert has_scope(scopes_at(grammar, source, "predict("), "support.function")


# ---------------------------------------------------------------------------- the tokenizer


def make_grammar(patterns: list[Any], repository: dict[str, Any] | None = None) -> Grammar:
    return Grammar({"scopeName": "source.t", "patterns": patterns, "repository": repository or {}})


def texts_and_scopes(tokens: list[Token]) -> list[tuple[str, tuple[str, ...]]]:
    return [(t.text, t.scopes[1:]) for t in tokens if t.text.strip()]


def test_tokenizer_nests_self_includes_and_applies_content_name() -> None:
    grammar = make_grammar(
        [
            {
                "begin": r"\(",
                "end": r"\)",
                "name": "group",
                "contentName": "inside",
                "patterns": [{"include": "$self"}],
            },
            {"include": "#word"},
        ],
        {"word": {"match": r"(\w)(\w*)", "name": "word", "captures": {"1": {"name": "first"}}}},
    )
    assert texts_and_scopes(grammar.tokenize("(ab (c))")) == [
        ("(", ("group",)),
        ("a", ("group", "inside", "word", "first")),
        ("b", ("group", "inside", "word")),
        ("(", ("group", "inside", "group")),
        ("c", ("group", "inside", "group", "inside", "word", "first")),
        (")", ("group", "inside", "group")),
        (")", ("group",)),
    ]


def test_tokenizer_prefers_the_earliest_match_then_the_end_then_the_first_pattern() -> None:
    grammar = make_grammar(
        [
            {
                "begin": "<",
                "end": "(?=x)|>",
                "name": "tag",
                "patterns": [{"match": "x", "name": "x"}],
            },
            {"match": "ab", "name": "first"},
            {"match": "a", "name": "second"},
        ]
    )
    assert texts_and_scopes(grammar.tokenize("ab a <yx>")) == [
        ("ab", ("first",)),
        ("a", ("second",)),
        ("<", ("tag",)),
        ("y", ("tag",)),
        ("x>", ()),  # the end's lookahead won the tie with the "x" pattern
    ]


def test_tokenizer_reports_a_grammar_that_loops() -> None:
    grammar = make_grammar([{"match": "(?=a)", "name": "empty"}])
    with pytest.raises(GrammarLoopError):
        grammar.tokenize("a")


@pytest.mark.parametrize(
    "rule",
    [
        {"begin": "a", "while": "b"},
        {"match": "a", "captures": {"0": {"patterns": []}}},
        {"match": "a", "name": "x.$1"},
        {"include": "source.python"},
        {"match": r"\Ga"},
    ],
)
def test_tokenizer_rejects_features_it_does_not_implement(rule: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedGrammar):
        make_grammar([rule])


@pytest.mark.parametrize(
    ("oniguruma", "python"),
    [
        (r"\h+", "[0-9A-Fa-f]+"),
        (r"[\h_]", "[0-9A-Fa-f_]"),
        (r"(?<num>\d+)(?<=x)(?<!y)", r"(?P<num>\d+)(?<=x)(?<!y)"),
        (r'[^"\\]\]', r'[^"\\]\]'),
    ],
)
def test_translate_regex(oniguruma: str, python: str) -> None:
    assert translate_regex(oniguruma) == python


@pytest.mark.parametrize(
    "regex",
    [r"\Gx", r"\Ax", r"(a)\1", r"\p{L}", r"[[:alpha:]]", r"[a&&b]", r"(?i)a", r"a{2}+", r"[]a]"],
)
def test_translate_regex_rejects_unportable_features(regex: str) -> None:
    with pytest.raises(UnsupportedGrammar):
        translate_regex(regex)
