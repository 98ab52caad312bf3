"""Semantic checks: every listed mistake is reported at the right place, all in one run."""

from __future__ import annotations

import pytest

from sigforge.codegen.check import PYDANTIC_V1_NAMES, check
from sigforge.codegen.diagnostics import Diagnostic
from sigforge.codegen.model import CheckedModule
from sigforge.codegen.parse import parse
from sigforge.codegen.types import DictOf, ListOf, LiteralOf, NoneType_, Primitive, UnionOf


def diagnose(source: str) -> tuple[CheckedModule | None, list[Diagnostic]]:
    """The module and its errors (warnings have their own tests)."""
    sig_file, diags = parse(source, "t.sig")
    assert sig_file is not None, diags
    assert diags == []
    module, diags = check(sig_file, source, "t")
    return module, [d for d in diags if d.severity == "error"]


def only(source: str) -> Diagnostic:
    _, diags = diagnose(source)
    assert len(diags) == 1, [d.render(source) for d in diags]
    return diags[0]


def test_valid_module_resolves_types_constraints_defaults() -> None:
    source = """
signature S {
    in  context: list[str] (min_items=1) "Passages"
    in  lang: str | None = None
    in  k: int (ge=1, le=10) = 3
    out label: Literal["a", "b"]
    out scores: dict[str, float | None]
    out answer: str (max_length=5, pattern="^x")
}
predictor P = chain_of_thought(S)
"""
    module, diags = diagnose(source)
    assert diags == []
    assert module is not None
    (sig,) = module.signatures
    types = {f.name: f.type for f in (*sig.inputs, *sig.outputs)}
    assert types == {
        "context": ListOf(Primitive("str")),
        "lang": UnionOf((Primitive("str"), NoneType_())),
        "k": Primitive("int"),
        "label": LiteralOf(("a", "b")),
        "scores": DictOf(Primitive("str"), UnionOf((Primitive("float"), NoneType_()))),
        "answer": Primitive("str"),
    }
    by_name = {f.name: f for f in (*sig.inputs, *sig.outputs)}
    assert by_name["context"].constraints == (("min_length", 1),)
    assert by_name["k"].constraints == (("ge", 1), ("le", 10))
    assert by_name["k"].has_default and by_name["k"].default == 3
    assert by_name["answer"].constraints == (("max_length", 5), ("pattern", "^x"))
    assert sig.instructions == ""
    assert module.predictors[0].kind == "chain_of_thought"


@pytest.mark.parametrize(
    ("source", "line", "column", "code", "message", "hint"),
    [
        (
            "signature S {\n  in q: lst[str]\n  out a: str\n}",
            2, 9, "E201", "unknown type `lst`", "did you mean `list[str]`?",
        ),
        (
            "signature S {\n  in q: string\n  out a: str\n}",
            2, 9, "E201", "unknown type `string`", "did you mean `str`?",
        ),
        (
            "signature S {\n  in q: str\n  in q: int\n  out a: str\n}",
            3, 6, "E204", "duplicate field `q` in signature `S`", "first declared at line 2",
        ),
        (
            "signature S {\n  in q: str\n}",
            1, 11, "E205", "signature `S` has no output fields", "out answer: str",
        ),
        (
            "signature S {\n  in q: str (ge=1)\n  out a: str\n}",
            2, 14, "E302", "`ge` does not apply to a `str` field", "int and float",
        ),
        (
            "signature S {\n  in q: str\n  out a: float (ge=2.0, le=1.0)\n}",
            3, 17, "E305", "no value satisfies ge=2.0 and le=1.0", "lower bound",
        ),
        (
            "signature S {\n  in q: str\n  out a: str\n}\npredictor P = chain_of_thougth(S)",
            5, 15, "E401", "unknown predictor kind `chain_of_thougth`", "did you mean `chain_of_thought`?",
        ),
        (
            "signature S {\n  in q: str\n  out a: str\n}\npredictor P = predict(T)",
            5, 23, "E403", "unknown signature `T`", None,
        ),
        (
            "signature Answer {\n  in q: str\n  out a: str\n}\npredictor P = predict(Answr)",
            5, 23, "E403", "unknown signature `Answr`", "did you mean `Answer`?",
        ),
        (
            "signature S {\n  in q: str (min_item=1)\n  out a: str\n}",
            2, 14, "E301", "unknown constraint `min_item`", "did you mean `min_items`?",
        ),
        (
            "signature S {\n  in q: int = \"three\"\n  out a: str\n}",
            2, 15, "E307", 'default "three" does not fit `int`', None,
        ),
        (
            "signature S {\n  in q: int (le=5) = 7\n  out a: str\n}",
            2, 22, "E307", "default 7 does not fit `int`", None,
        ),
        (
            "signature S {\n  in class: str\n  out a: str\n}",
            2, 6, "E208", "field `class` is a Python keyword", None,
        ),
        (
            "signature S {\n  in model_config: str\n  out a: str\n}",
            2, 6, "E208", "field name `model_config` is reserved", None,
        ),
        (
            "signature S {\n  in schema: str\n  out a: str\n}",
            2, 6, "E208", "field name `schema` is reserved", None,
        ),
        (
            "signature S {\n  in q: Optional[str]\n  out a: str\n}",
            2, 9, "E201", "unknown type `Optional`", "T | None",
        ),
        (
            "signature S {\n  in q: dict[float, str]\n  out a: str\n}",
            2, 14, "E202", "dictionary keys must be `str`, `int` or an enum", None,
        ),
        (
            "signature S {\n  in q: str\n  out reasoning: str\n}\npredictor P = chain_of_thought(S)",
            5, 32, "E406", "`chain_of_thought` adds a `reasoning` output", "use `predict`",
        ),
        (
            "signature S {\n  in q: str\n  out a: str\n}\npredictor P = predict(S, adapter=\"xml\")",
            5, 34, "E405", '`adapter` must be "chat" or "json"', None,
        ),
        (
            "signature A {\n  in q: str\n  out a: str\n}\nsignature AInputs {\n  in q: str\n  out a: str\n}",
            5, 11, "E210", "`AInputs` would generate `AInputs`, which `A` (line 1) also generates", "rename",
        ),
        (
            "signature S {\n  in q: str\n  out a: str\n}\nsignature S {\n  in q: str\n  out a: str\n}",
            5, 11, "E206", "`S` is already declared", "line 1",
        ),
    ],
)
def test_each_mistake_is_one_diagnostic_at_the_right_place(
    source: str, line: int, column: int, code: str, message: str, hint: str | None
) -> None:
    d = only(source)
    assert (d.span.line, d.span.column, d.code) == (line, column, code), d.render(source)
    assert d.message.startswith(message), d.message
    if hint is not None:
        assert d.hint is not None and hint in d.hint


def test_the_adapter_names_the_checker_accepts_are_the_runtimes_formats() -> None:
    from typing import get_args

    from sigforge.codegen.check import ADAPTERS
    from sigforge.codegen.model import AdapterName
    from sigforge.runtime.adapters import ADAPTERS as RUNTIME_ADAPTERS

    assert get_args(AdapterName) == ADAPTERS == tuple(RUNTIME_ADAPTERS)


def test_every_attribute_of_pydantic_models_is_a_reserved_field_name() -> None:
    """The checker's list (written out, so that the compiler does not import pydantic)
    covers the installed pydantic's BaseModel: a field of such a name would shadow it."""
    from pydantic import BaseModel

    public = {name for name in dir(BaseModel) if not name.startswith("_")}
    uncovered = {name for name in public if not name.startswith("model_")} - PYDANTIC_V1_NAMES
    assert not uncovered, f"add to PYDANTIC_V1_NAMES: {sorted(uncovered)}"
    for name in sorted(public):
        message = only(f"signature S {{\n  in {name}: str\n  out a: str\n}}").message
        assert message == f"field name `{name}` is reserved by the generated pydantic models"


def test_all_errors_of_a_file_are_reported_in_one_run() -> None:
    source = """
signature S {
    in  q: lst[str]
    in  q: str
    out a: str (ge=1)
}
signature Empty {
    in x: str
}
predictor P = predikt(S)
predictor Q = predict(Missing)
"""
    module, diags = diagnose(source)
    assert module is None
    assert [d.code for d in diags] == ["E201", "E204", "E302", "E205", "E401", "E403"]


def test_caret_spans_the_offending_token() -> None:
    source = "signature S {\n    in  q: lst[str]\n    out a: str\n}\n"
    d = only(source)
    assert d.render(source).splitlines()[1:] == [
        " 2 |     in  q: lst[str]",
        "   |            ^^^",
        "  hint: did you mean `list[str]`?",
    ]
