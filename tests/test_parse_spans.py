"""The AST's spans are the positions Lark itself gives the grammar's rules.

The parser builds the AST while Lark parses (rule callbacks, every token kept, no parse
tree) and works out each rule's span from its first and last token. The oracle here is
Lark's own position propagation: the same grammar parsed into a tree with
``propagate_positions``, whose rule positions must be the spans of the matching AST nodes,
for every example file of the repository and for the benchmark's files.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections import Counter
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest
from lark import Lark, Tree

from sigforge.codegen import ast
from sigforge.codegen.parse import parse

ROOT = Path(__file__).resolve().parents[1]

#: grammar rule (or alias) -> the AST node it becomes
RULES = {
    "signature": ast.SignatureDecl,
    "enum_decl": ast.EnumDecl,
    "class_decl": ast.ClassDecl,
    "tool_decl": ast.ToolDecl,
    "predictor": ast.PredictorDecl,
    "import_decl": ast.ImportDecl,
    "enum_member": ast.EnumMember,
    "option": ast.Option,
    "keyword_arg": ast.Option,
    "type": ast.TypeExpr,
    "type_ref": ast.TypeRef,
    "list_value": ast.ListValue,
}


def lark_spans(text: str) -> Counter[tuple[str, ast.Span]]:
    grammar = files("sigforge.grammar").joinpath("sig.lark").read_text(encoding="utf-8")
    tree = Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True).parse(text)
    found: Counter[tuple[str, ast.Span]] = Counter()
    for node in tree.iter_subtrees():
        meta = node.meta
        span = ast.Span(meta.line, meta.column, meta.end_line, meta.end_column)
        if node.data in RULES:
            found[RULES[str(node.data)].__name__, span] += 1
        elif node.data == "field":
            found["Field", span] += 1
        elif node.data == "param" and not any(
            isinstance(parent, Tree) and parent.data == "field" and node in parent.children
            for parent in tree.iter_subtrees()
        ):
            found["Field", span] += 1  # a class attribute or tool argument
    return found


def nodes(value: object) -> Iterator[object]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        yield value
        for f in dataclasses.fields(value):
            yield from nodes(getattr(value, f.name))
    elif isinstance(value, tuple) and not isinstance(value, ast.Span):
        for item in value:
            yield from nodes(item)


def ast_spans(text: str) -> Counter[tuple[str, ast.Span]]:
    sig_file, diagnostics = parse(text, "f.sig")
    assert sig_file is not None, diagnostics
    wanted = {cls.__name__ for cls in RULES.values()} | {"Field"}
    return Counter(
        (type(n).__name__, n.span)  # type: ignore[attr-defined]
        for n in nodes(sig_file)
        if type(n).__name__ in wanted
    )


def example_texts() -> list[tuple[str, str]]:
    paths = sorted(
        {
            *ROOT.glob("signatures/**/*.sig"),
            *ROOT.glob("runtime/optimizers/signatures/**/*.sig"),
            *ROOT.glob("tests/fixtures/**/*.sig"),
            *ROOT.glob("tests/golden/*/src/**/*.sig"),
        }
    )
    texts = [(p.relative_to(ROOT).as_posix(), p.read_text(encoding="utf-8")) for p in paths]
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        bench = importlib.import_module("codegen_scale")
    finally:
        sys.path.remove(str(ROOT / "bench"))
    texts += [("bench common", bench.SIG_COMMON), ("bench m0", bench.sig_file(0, 100, True))]
    return texts


@pytest.mark.parametrize(("name", "text"), example_texts(), ids=lambda v: v if "/" in v or " " in v else "")
def test_spans_are_larks_rule_positions(name: str, text: str) -> None:
    assert ast_spans(text) == lark_spans(text)


def test_a_rule_spans_its_keywords_and_brackets() -> None:
    text = 'predictor P = predict(S, adapter="json",)\nclass C { a: list[str] (max_items=3) = ["x"] }\n'
    sig_file, _ = parse(text, "f.sig")
    assert sig_file is not None
    predictor, cls = sig_file.declarations
    assert predictor.span == ast.Span(1, 1, 1, 42)  # `predictor` ... `)`
    assert cls.span == ast.Span(2, 1, 2, 47)  # `class` ... `}`
    assert isinstance(cls, ast.ClassDecl)
    (attribute,) = cls.fields
    assert attribute.span == ast.Span(2, 11, 2, 45)  # the name ... the default's `]`
