"""The language beyond the foundation: enums, classes, tools, imports, new types, options.

Each mistake is checked for its code, position and message; valid programs are checked
for what they generate. Diagnostics come from one run over a whole project.
"""

from __future__ import annotations

import datetime
import enum
import inspect
import json
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel, Field
from support import generate_package, import_generated

from sigforge.codegen.diagnostics import Diagnostic
from sigforge.codegen.pipeline import CompileResult, compile_sources
from sigforge.codegen.schema import SchemaLookupError, signature_schema
from sigforge.runtime.adapters.types import (
    _has_open_mapping,
    _make_strict,
    _model_schema,
    annotation_name,
    output_json_schema,
    signature_output_schema,
    type_note,
)


def compile_project(tmp_path: Path, files: dict[str, str]) -> CompileResult:
    src = tmp_path / "src"
    for rel, text in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text, encoding="utf-8")
    return compile_sources(src, tmp_path / "gen")


def errors(result: CompileResult) -> list[Diagnostic]:
    return [d for d in result.diagnostics if d.severity == "error"]


def codes(result: CompileResult) -> list[tuple[str, int, int, str]]:
    return [(d.path.rsplit("/", 1)[-1], d.span.line, d.span.column, d.code) for d in result.diagnostics]


SIG = 'signature S {\n  in q: str\n  out a: str "answer"\n}\n'


@pytest.mark.parametrize(
    ("source", "line", "column", "code", "message"),
    [
        ("enum E {\n}\n" + SIG, 1, 6, "E212", "enum `E` has no values"),
        ("enum E {\n  a\n  a\n}\n", 3, 3, "E212", "`a` appears twice"),
        ('enum E {\n  a\n  b = "a"\n}\n', 3, 7, "E212", "value 'a' appears twice"),
        ("enum E {\n  upper\n}\n", 2, 3, "E211", "`upper` cannot name an enum value"),
        ("enum E {\n  name\n}\n", 2, 3, "E211", "`name` cannot name an enum value"),
        ("class C {\n  c: C\n}\n", 1, 1, "E214", "class `C` can never have a value"),
        ("class A {\n  b: B\n}\nclass B {\n  a: A\n}\n", 1, 1, "E214", "class `A` can never have a value"),
        ("class C {\n  model_config: str\n}\n", 2, 3, "E208", "field name `model_config` is reserved"),
        ("class C {\n  x: int\n  x: str\n}\n", 3, 3, "E204", "duplicate field `x` in class `C`"),
        ("class C {\n  x: Citaton\n}\nclass Citation {\n  y: int\n}\n", 2, 6, "E201", "unknown type `Citaton`"),
        ("class C {\n  x: dict[C, int] | None\n}\n", 2, 11, "E202", "dictionary keys must be"),
        ("class C {\n  x: S\n}\n" + SIG, 2, 6, "E201", "`S` is a signature, not a type"),
        ("tool t(a: int, a: str) -> str\n", 1, 16, "E204", "duplicate field `a` in tool `t`"),
        ("tool t(a: int = \"x\") -> str\n", 1, 17, "E307", 'default "x" does not fit `int`'),
        ("tool t() -> lst[str]\n", 1, 13, "E201", "unknown type `lst`"),
        ('signature S {\n  in q: str\n  out a: Image "x"\n}\n', 3, 3, "E215", "output `a` contains an `Image`"),
        ('class P {\n  img: Image\n}\nsignature S {\n  in q: str\n  out a: list[P] "x"\n}\n', 6, 3, "E215", "output `a` contains an `Image`"),
        ('signature S {\n  in q: tuple[int, ..., str]\n  out a: str "x"\n}\n', 2, 20, "E202", "`...` follows exactly one type"),
        ('signature S {\n  in q: tuple\n  out a: str "x"\n}\n', 2, 9, "E202", "`tuple` needs item types"),
        ('signature S {\n  in q: list[...]\n  out a: str "x"\n}\n', 2, 14, "E202", "`list` takes types, not `...`"),
        ('signature S {\n  in q: str (prefix=3)\n  out a: str "x"\n}\n', 2, 21, "E303", "`prefix` takes text in quotes"),
        ('signature S {\n  in q: str (format="a", format="b")\n  out a: str "x"\n}\n', 2, 26, "E304", "option `format` is given twice"),
        ('enum P {\n  low\n}\nsignature S {\n  in p: P = "high"\n  out a: str "x"\n}\n', 5, 13, "E307", 'default "high" does not fit `P`'),
        ('signature S {\n  in d: date = "yesterday"\n  out a: str "x"\n}\n', 2, 16, "E307", 'default "yesterday" does not fit `date`'),
        ('signature int {\n  in q: str\n  out a: str "x"\n}\n', 1, 11, "E207", "`int` is a Python builtin"),
    ],
)
def test_each_mistake_is_reported_at_its_place(
    tmp_path: Path, source: str, line: int, column: int, code: str, message: str
) -> None:
    result = compile_project(tmp_path, {"m.sig": source})
    found = errors(result)
    assert found, "expected an error"
    d = found[0]
    assert (d.span.line, d.span.column, d.code) == (line, column, code), d.render(source)
    assert message in d.message, d.message
    assert not result.files


def test_unknown_type_suggests_the_whole_type(tmp_path: Path) -> None:
    result = compile_project(tmp_path, {"m.sig": 'signature S {\n  in q: List[str]\n  out a: str "x"\n}\n'})
    (d,) = errors(result)
    assert d.hint == "did you mean `list[str]`?"
    result = compile_project(
        tmp_path / "2", {"m.sig": 'class Citation {\n  a: int\n}\nsignature S {\n  in q: citation\n  out a: Citation "x"\n}\n'}
    )
    (d,) = errors(result)
    assert d.hint == "did you mean `Citation`?"


def test_imports_are_resolved_and_errors_point_at_the_import(tmp_path: Path) -> None:
    files = {
        "common.sig": 'enum Priority {\n  low\n  high\n}\nclass Citation {\n  n: int\n}\npredictor P = predict(S)\n' + SIG,
        "a.sig": "from comon import Citation\n" + SIG,
        "b.sig": "from common import Citaton, P\n" + SIG,
        "c.sig": "from d import X\nclass Y {\n  x: int\n}\n",
        "d.sig": "from c import Y\nclass X {\n  y: Y\n}\n",
    }
    result = compile_project(tmp_path, files)
    found = {(c, line, col, code) for c, line, col, code in codes(result) if code.startswith("E5")}
    assert found == {
        ("a.sig", 1, 6, "E501"),
        ("b.sig", 1, 20, "E502"),
        ("b.sig", 1, 29, "E504"),
        ("c.sig", 1, 1, "E503"),
        ("d.sig", 1, 1, "E503"),
    }
    by_code = {d.code: d for d in result.diagnostics}
    assert by_code["E501"].hint == "did you mean `common`?"
    assert by_code["E502"].hint == "did you mean `Citation`?"
    assert "import cycle: c -> d -> c" in by_code["E503"].message or "d -> c -> d" in by_code["E503"].message


def test_a_name_imported_and_declared_is_an_error(tmp_path: Path) -> None:
    result = compile_project(
        tmp_path,
        {"common.sig": "class C {\n  x: int\n}\n", "m.sig": "from common import C\nclass C {\n  y: int\n}\n"},
    )
    assert [(d.code, d.span.line) for d in errors(result)] == [("E206", 2)]


def test_warnings_are_separate_and_do_not_block(tmp_path: Path) -> None:
    files = {
        "common.sig": "class Unused {\n  x: int\n}\nclass Used {\n  x: int\n}\n",
        "m.sig": "from common import Used, Unused\nsignature S {\n  in q: str\n  out a: Used\n}\n",
    }
    result = compile_project(tmp_path, files)
    assert result.ok and result.files
    assert sorted((d.code, d.severity) for d in result.diagnostics) == [
        ("W101", "warning"),  # output `a` has no description
        ("W102", "warning"),  # class Unused is used by no field
        ("W103", "warning"),  # Unused is imported but not used
    ]


def test_all_syntax_errors_of_a_file_and_errors_of_other_files_come_in_one_run(tmp_path: Path) -> None:
    broken = (
        'signature A {\n  in q str\n  out a: str "x"\n}\n'
        'signature B {\n  in q: str\n  out a: str ("x")\n}\n'
        "predictor P = predict(A\n"
        'signature C {\n  in q: str\n  out a: str "x"\n}\n'
    )
    result = compile_project(tmp_path, {"a.sig": broken, "b.sig": 'signature S {\n  in q: lst\n  out a: str "x"\n}\n'})
    assert codes(result) == [
        ("a.sig", 2, 8, "E102"),
        ("a.sig", 7, 15, "E102"),
        ("a.sig", 10, 1, "E102"),
        ("b.sig", 2, 9, "E201"),
    ]


def test_a_description_after_the_default_gets_a_hint(tmp_path: Path) -> None:
    result = compile_project(tmp_path, {"m.sig": 'class C {\n  x: int = 1 "the x"\n}\n'})
    (d,) = errors(result)
    assert d.code == "E102" and d.hint is not None and "a description goes before the default" in d.hint


def test_out_is_a_name_in_a_class(tmp_path: Path) -> None:
    result = compile_project(tmp_path, {"m.sig": 'class C {\n  out: int\n}\nsignature S {\n  in q: str\n  out c: C "x"\n}\n'})
    assert result.ok, [d.render(None) for d in result.diagnostics]


ALL_TYPES = '''
"""Every type, option and default."""

from shared.kinds import Kind

enum Priority {
    """How urgent."""
    low
    very_high = "very high" "Drop everything"
}

class Node {
    """A tree."""
    label: str (min_length=1) "The label"
    kind: Kind "Its kind" = "leaf"
    children: list[Node] "Sub-trees" = []
    parent: Node | None "Up" = None
}

tool search(query: str (min_length=1) "Text", k: int (ge=1) = 3) -> list[str] "Search"

signature Everything {
    in  photo: Image | None "A photo" = None
    in  when: date "A day" = "2024-02-29"
    in  at: datetime | None "An instant" = None
    in  pair: tuple[int, str] "A pair"
    in  many: tuple[float, ...] "Numbers" = [1, 2.5]
    in  by_id: dict[int, list[Priority]] "Priorities by id"
    in  by_kind: dict[Kind, Node] "Trees by kind"
    in  prio: Priority "A priority" = "very high"
    in  q: str (prefix="Query:", format="one sentence") "The question"
    out tree: Node "The tree"
    out label: Literal["a", 1, True] "A label"
}

predictor Everyone = chain_of_thought(Everything, adapter="json")
'''


def test_every_construct_generates_a_working_module(tmp_path: Path) -> None:
    files = {"every.sig": ALL_TYPES, "shared/kinds.sig": "enum Kind {\n  leaf\n  branch\n}\n"}
    result = compile_project(tmp_path, files)
    assert result.ok, "\n".join(d.render(result.sources.get(d.path)) for d in result.diagnostics)
    assert sorted(result.files) == [
        "__init__.py", "every.py", "py.typed", "shared/__init__.py", "shared/kinds.py",
    ]
    assert "from .shared.kinds import Kind" in result.files["every.py"]
    generate_package(tmp_path / "src", tmp_path / "pkgs", "lang_every")
    every = import_generated("lang_every", "every")
    kinds = import_generated("lang_every", "shared.kinds")
    from sigforge.runtime import Image

    inputs = every.EverythingInputs(
        pair=(1, "x"), by_id={1: ["low"]}, by_kind={"leaf": {"label": "x"}}, q="why?",
        photo=Image.from_url("https://example.com/a.png"),
    )
    assert inputs.when == datetime.date(2024, 2, 29)
    assert inputs.many == (1.0, 2.5)
    assert inputs.prio is every.Priority.very_high and every.Priority.very_high.value == "very high"
    assert inputs.by_kind[kinds.Kind.leaf].kind is kinds.Kind.leaf
    assert typing.get_args(every.EverythingOutputs.model_fields["label"].annotation) == ("a", 1, True)
    spec = {s.name: s for s in every.Everything.input_fields}["q"]
    assert (spec.prefix, spec.format) == ("Query:", "one sentence")
    assert "(format: one sentence)" in every.Everything.prompts["chat"].system
    assert every.SearchTool.args_schema["k"] == {"default": 3, "minimum": 1, "title": "K", "type": "integer"}
    assert every.SearchTool.returns == "list[str]"
    tree = every.Node(label="root", children=[{"label": "leaf"}])
    assert tree.children[0].parent is None
    assert every.Node.model_json_schema()["$defs"]["Node"]["description"] == "A tree."
    assert inspect.cleandoc(every.Priority.__doc__ or "") == "How urgent.\n\n- `very high`: Drop everything"
    # the constants computed at generation time equal what the runtime computes from the
    # generated models themselves
    for sig in (every.Everything, every.EverythingWithReasoning):
        for specs, model in ((sig.input_fields, sig.inputs), (sig.output_fields, sig.outputs)):
            for spec in specs:
                info = model.model_fields[spec.name]
                assert spec.type_name == annotation_name(info.annotation)
                assert spec.type_note == ("" if model is sig.inputs else type_note(info.annotation))
        annotations = {n: f.annotation for n, f in sig.outputs.model_fields.items()}
        assert signature_output_schema(sig) == output_json_schema(annotations)


def test_schema_of_a_signature(tmp_path: Path) -> None:
    files = {"every.sig": ALL_TYPES, "shared/kinds.sig": "enum Kind {\n  leaf\n  branch\n}\n"}
    result = compile_project(tmp_path, files)
    schema = signature_schema(result, "Everything")
    assert schema["module"] == "every"
    assert schema["inputs"]["properties"]["when"] == {
        "default": "2024-02-29", "description": "A day", "format": "date", "title": "When", "type": "string",
    }
    assert schema["outputs"]["required"] == ["tree", "label"]
    assert "Node" in schema["outputs"]["$defs"]
    assert signature_schema(result, "every.Everything") == schema
    with pytest.raises(SchemaLookupError, match="no signature `Nope`"):
        signature_schema(result, "Nope")


class _Color(enum.StrEnum):
    red = "red"


class _Point(BaseModel):
    x: int


class _Citation(BaseModel):
    """A passage."""

    source: str = Field(description="Where it comes from")
    at: _Point | None = None


class _Tree(BaseModel):
    name: str
    children: list[_Tree] = []


def _other_point() -> type[BaseModel]:
    """A different model that is also called ``_Point`` (as two `.sig` modules may
    declare one class name each): pydantic must rename the definitions."""

    class _Point(BaseModel):
        y: str

    return _Point


@pytest.mark.parametrize(
    "annotations",
    [
        {"answer": str, "n": int | None, "label": typing.Literal["a", "b"], "xs": list[int]},
        {"t": tuple[int, ...], "t2": tuple[float, float], "at": datetime.datetime, "d": datetime.date | None},
        {"HTMLParser": str, "x_1": dict[int, str], "u": int | str | None, "m": dict[str, list[float]]},
        {"p": _Point, "ps": list[_Point], "c": _Color | None, "cs": dict[_Color, int]},
        {"cited": list[_Citation], "color": _Color, "also": tuple[_Citation, _Color], "p": _Point},
        {"tree": _Tree, "trees": list[_Tree] | None, "n": int, "label": typing.Literal["x"]},
        {"a": _Point, "b": _other_point(), "c": list[_Point]},
    ],
)
def test_output_schema_equals_the_schema_of_a_model(annotations: dict[str, typing.Any]) -> None:
    """The schema is assembled from cached per-type schemas (definitions merged); it must
    be pydantic's own, also where pydantic has to rename definitions that share a name."""
    from pydantic import ConfigDict, create_model

    model = create_model(
        "DSPyProgramOutputs",
        __config__=ConfigDict(extra="forbid"),
        **{name: (annotation, ...) for name, annotation in annotations.items()},
    )
    expected = model.model_json_schema()
    assert json.dumps(_model_schema(annotations)) == json.dumps(expected)
    # ... and the strict schema sent to the LM is that schema made strict
    strict = {} if _has_open_mapping(expected) else _make_strict(expected, expected)
    assert json.dumps(output_json_schema(annotations)) == json.dumps(strict)


def test_image_inputs_travel_as_image_content_parts_over_http(tmp_path: Path) -> None:
    from sigforge.runtime import LM, Image, context
    from sigforge.testing import OpenAICompatServer

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "vision.sig").write_text(
        'signature Describe {\n  in photos: list[Image] "Photos"\n  in note: str "A note"\n'
        '  out caption: str "A caption"\n}\npredictor Describer = predict(Describe)\n'
    )
    generate_package(tmp_path / "src", tmp_path / "pkgs", "lang_vision")
    vision = import_generated("lang_vision", "vision")
    png = Image.from_bytes(b"\x89PNG\r\n", "image/png")
    reply = "[[ ## caption ## ]]\nTwo photos\n[[ ## completed ## ]]"
    with OpenAICompatServer([reply]) as server:
        lm = LM("openai/vision", base_url=server.base_url, cache=False)
        with context(lm=lm):
            out = vision.Describer()(photos=[Image.from_url("https://example.com/a.jpg"), png], note="hi")
        (request,) = server.requests
    assert out.caption == "Two photos"
    content = request.json["messages"][-1]["content"]
    images = [part["image_url"]["url"] for part in content if part["type"] == "image_url"]
    assert images == ["https://example.com/a.jpg", png.url]
    assert png.url.startswith("data:image/png;base64,")
    text = "".join(part["text"] for part in content if part["type"] == "text")
    assert "[[ ## photos ## ]]" in text and "[[ ## note ## ]]\nhi" in text
    assert "sigforge-image" not in text  # no marker leaks into the prompt


def test_every_example_in_the_language_reference_parses() -> None:
    """The `.sig` blocks of docs/language.md are real syntax (names may be undeclared)."""
    from support import ROOT

    from sigforge.codegen.parse import parse

    text = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```\n")[1::2]]
    keywords = ("signature", "enum", "class", "tool", "from", "predictor", '"""')
    schematic = ("(options)", "option=value")  # grammar summaries, not programs
    examples = [
        b for b in blocks if b.lstrip().startswith(keywords) and not any(s in b for s in schematic)
    ]
    assert len(examples) >= 6
    for block in examples:
        sig_file, diags = parse(block, "language.md")
        assert sig_file is not None and not diags, [d.render(block) for d in diags]
