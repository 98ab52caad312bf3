"""Injection corpus: hostile or awkward text from `.sig` files is data, never code.

Each text of :data:`CORPUS` is put in every place a `.sig` file holds text: module, enum,
class and signature docstrings, plain-string instructions, field, attribute and tool
descriptions, enum values, ``Literal`` values and the ``prefix``/``format`` options. The
generated package must import, black must leave it unchanged, and the text must come out
exactly where it lands. Docstrings are the one place the language changes text: like a
Python docstring it is cleaned with ``inspect.cleandoc`` (and, as in any text file, line
ends read as ``\\n``).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import black
import pytest

from sigforge.codegen.pipeline import compile_sources
from sigforge.codegen.write import write_outputs
from sigforge.testing import ScriptedLM

PACKAGE = "injection_corpus"
BLACK_MODE = black.Mode(target_versions={black.TargetVersion.PY311}, line_length=88)


def _long_text() -> str:
    line = 'A line with "double" and \'single\' quotes, a \\ backslash, {{ x }}, {% if %}, é 🙂.\n'
    text = (line * (10_000 // len(line) + 1))[:9_999] + "."
    assert len(text) == 10_000
    return text


CORPUS: dict[str, str] = {
    "single_quotes": "it's a 'quoted' word",
    "double_quotes": 'a "quoted" word',
    "both_quotes": 'it\'s "both"',
    "triple_single": "three ''' singles '''",
    "triple_double": 'three """ doubles """ inside',
    "backslashes": "C:\\new\\table \\\\ \\n \\t \\u0041 \\x41 \\N{BULLET} \\' \\\"",
    "newlines": "line one\nline two\n\n  indented line four\n",
    "tabs": "col\tcol\t\tend\t.",
    "jinja_expression": "{{ x }} {{x}}{{ '}}' }}",
    "jinja_statement": "{% if x %}yes{% else %}no{% endif %} {% raw %} {# comment #}",
    "jinja_ssti": "{{ cycler.__init__.__globals__.os.system('id') }}",
    "format_braces": "{q} {0} {0.__class__} {} {{}} }{ {a!r:>10}",
    "hash_comments": "# not a comment\nx = 1  # nor this",
    "emoji": "🙂 🚀 👩‍👩‍👧 🇫🇷",
    "rtl": "שלום עולם — مرحبا بالعالم \u202eevil\u202c",
    "combining_marks": "e\u0301 n\u0303 a\u0308\u0304 Z\u0324\u0354\u0367\u0311\u0313",
    "line_separators": "a\u2028b\u2029c\x85d\x0be\x0cf",
    "control_characters": "\x1b[31mred\x1b[0m \x7f \u200b \ufeff \x01",
    "long_10000": _long_text(),
    "leading_trailing_spaces": "  padded  ",
    "ends_with_double_quote": 'ends with a quote"',
    "ends_with_single_quote": "ends with a quote'",
    "ends_with_triple_quote": 'ends with """',
    "ends_with_backslash": "ends with a backslash\\",
    "python_double": '"); import os; os.system("x',
    "python_single": "'); import os; os.system('x'); ('",
    "python_triple": '"""); import os; os.system("x"); ("""',
    "python_eval": "__import__('os').system('touch PWNED')",
    "python_fstring": "{__import__('os').system('touch PWNED')}",
    "crlf": "windows\r\nline ends\rand a lone CR",
}

# Corpus cases that fail because of known compiler bugs (each has a minimal test at the end).
def cases(test: str) -> list[typing.Any]:
    """The corpus names (``test`` names the test they are for)."""
    return list(CORPUS)


def sig_string(text: str) -> str:
    """``text`` as a one-line .sig string: JSON escapes are the .sig escapes."""
    return json.dumps(text, ensure_ascii=False)


def sig_docstring(text: str) -> str:
    """``text`` as a .sig triple-quoted docstring (only ``\\`` and ``"`` need escapes)."""
    return '"""' + text.replace("\\", "\\\\").replace('"', '\\"') + '"""'


def as_docstring(text: str) -> str:
    """What a .sig docstring holding ``text`` means (text-file line ends, cleandoc)."""
    return inspect.cleandoc(text.replace("\r\n", "\n").replace("\r", "\n"))


def module_source(text: str) -> str:
    """A .sig module with ``text`` in every place that holds text."""
    s, doc = sig_string(text), sig_docstring(text)
    return f"""{doc}

enum E {{
    {doc}
    member = {s} {s}
    other
}}

class C {{
    {doc}
    x: str {s}
}}

tool t(a: str {s}) -> str {s}

signature S {{
    {doc}
    in  q: str (prefix={s}, format={s}) {s}
    in  e: E {s} = {s}
    in  c: C | None {s} = None
    out a: Literal[{s}, "other"] (prefix={s}, format={s}) {s}
}}

signature Plain {{
    {s}
    in  q: str
    out a: str {s}
}}

predictor P = chain_of_thought(S)
predictor J = predict(S, adapter="json")
"""


def generate(src: Path, parent: Path, package: str, texts: dict[str, str]) -> dict[str, str]:
    """Write one module per text into ``src``, compile it into ``parent/package``."""
    src.mkdir(parents=True)
    for name, text in texts.items():
        (src / f"{name}.sig").write_text(module_source(text), encoding="utf-8")
    result = compile_sources(src, parent / package)
    errors = [d.render(result.sources.get(d.path)) for d in result.diagnostics if d.severity == "error"]
    assert result.ok, "\n".join(errors)
    write_outputs(parent / package, result.files)
    return result.files


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The generated files of the corpus package (on ``sys.path`` during these tests)."""
    parent = tmp_path_factory.mktemp("injection")
    files = generate(parent / "sigs", parent, PACKAGE, CORPUS)
    sys.path.insert(0, str(parent))
    yield files
    sys.path.remove(str(parent))
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def load(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


@pytest.mark.parametrize("name", cases("lands"))
def test_text_lands_exactly(name: str, corpus: dict[str, str]) -> None:
    text, doc = CORPUS[name], as_docstring(CORPUS[name])
    m = load(name)
    assert inspect.cleandoc(m.__doc__ or "") == doc
    # signature instructions, as a docstring and as a plain string
    assert m.S.instructions == doc
    assert m.Plain.instructions == inspect.cleandoc(text)
    # field descriptions, prefix and format options
    q, e, c = m.S.input_fields
    assert (q.description, q.prefix, q.format) == (text, text, text)
    assert (e.description, c.description) == (text, text)
    (a,) = m.S.output_fields
    assert (a.description, a.prefix, a.format) == (text, text, text)
    assert m.SWithReasoning.output_fields[1] == a
    for field in ("q", "e", "c"):
        assert m.SInputs.model_fields[field].description == text
    # Literal values
    for outputs in (m.SOutputs, m.SWithReasoningOutputs, m.Plain.outputs):
        assert outputs.model_fields["a"].description == text
    for outputs in (m.SOutputs, m.SWithReasoningOutputs):
        assert typing.get_args(outputs.model_fields["a"].annotation) == (text, "other")
    assert m.SOutputs(a=text).a == text
    assert m.SOutputs.model_validate_json(json.dumps({"a": text})).a == text
    # enum values, and an enum default given by its value
    assert m.E.member.value == text
    assert m.E(text) is m.E.member
    assert m.SInputs(q="x").e is m.E.member
    # class docstring and attribute description
    assert m.C.model_json_schema()["description"] == doc
    assert m.C.model_fields["x"].description == text
    # tool description and argument description
    assert m.TTool.description == text
    assert m.TArgs.model_fields["a"].description == text
    assert m.TTool.args_schema["a"]["description"] == text


@pytest.mark.parametrize("name", cases("black"))
def test_black_leaves_the_module_unchanged(name: str, corpus: dict[str, str]) -> None:
    text = corpus[f"{name}.py"]
    assert black.format_str(text, mode=BLACK_MODE) == text


@pytest.mark.parametrize("name", CORPUS)
def test_prompts_carry_the_text(name: str, corpus: dict[str, str]) -> None:
    """Both adapters format prompts holding the text (braces and all) without error."""
    text, m = CORPUS[name], load(name)
    chat = ScriptedLM(["[[ ## reasoning ## ]]\nBecause.\n\n[[ ## a ## ]]\nother\n\n[[ ## completed ## ]]"])
    assert m.P(lm=chat)(q=text).a == "other"
    as_json = ScriptedLM([json.dumps({"a": text})])
    assert m.J(lm=as_json)(q=text).a == text
    for lm, signature, adapter in ((chat, m.SWithReasoning, "chat"), (as_json, m.S, "json")):
        system, user = (message["content"] for message in lm.requests[0].messages)
        assert system == signature.prompts[adapter].system
        assert text in system  # the field descriptions
        assert text in user


PAYLOADS = [
    "__import__('os').system('touch {marker}')",
    "\"); __import__('os').system('touch {marker}'); (\"",
    "'); __import__('os').system('touch {marker}'); ('",
    "\"\"\"); __import__('os').system('touch {marker}'); (\"\"\"",
    "\n__import__('os').system('touch {marker}')\n#",
    "\\\n__import__('os').system('touch {marker}')",
    "{{{{ cycler.__init__.__globals__.os.system('touch {marker}') }}}}",
    "{{% set x = cycler.__init__.__globals__.os.system('touch {marker}') %}}",
    "{{__import__('os').system('touch {marker}')}}",
]

RUN_GENERATED = """
import json, sys
from sigforge.testing import ScriptedLM
for i in range(int(sys.argv[1])):
    m = __import__(f"generated.payload_{i}", fromlist=["S"])
    chat = ScriptedLM(["[[ ## reasoning ## ]]\\nr\\n\\n[[ ## a ## ]]\\nother\\n\\n[[ ## completed ## ]]"])
    m.P(lm=chat)(q=m.S.instructions)
    m.J(lm=ScriptedLM([json.dumps({"a": "other"})]))(q=m.S.instructions)
    m.C.model_json_schema()
print("ok")
"""


def test_sig_text_is_never_executed(tmp_path: Path) -> None:
    """Generating with the real CLI, importing and running the predictors never runs .sig text."""
    marker = tmp_path / "PWNED"
    src = tmp_path / "signatures"
    src.mkdir()
    for i, payload in enumerate(PAYLOADS):
        text = payload.format(marker=marker)
        (src / f"payload_{i}.sig").write_text(module_source(text), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    for args in (
        ["-m", "sigforge.codegen", "generate"],
        ["-c", RUN_GENERATED, str(len(PAYLOADS))],
    ):
        run = subprocess.run(
            [sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert not marker.exists(), f"payload ran during {args[:2]}"
    assert run.stdout == "ok\n"
    assert not marker.exists()


# --- known compiler bugs, minimal reproducers --------------------------------------------


def generate_one(tmp_path: Path, source: str) -> tuple[str, ModuleType]:
    """Compile one .sig module; its generated text and the imported module."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "m.sig").write_text(source, encoding="utf-8")
    package = f"injection_bug_{tmp_path.name}"
    result = compile_sources(src, tmp_path / package)
    assert result.ok, result.diagnostics
    write_outputs(tmp_path / package, result.files)
    sys.path.insert(0, str(tmp_path))
    try:
        return result.files["m.py"], importlib.import_module(f"{package}.m")
    finally:
        sys.path.remove(str(tmp_path))


def test_docstring_ending_in_a_space_is_black_stable(tmp_path: Path) -> None:
    text, m = generate_one(tmp_path, 'signature S {\n  "Answer. "\n  out a: str "A"\n}\n')
    assert m.S.instructions == "Answer. "
    assert black.format_str(text, mode=BLACK_MODE) == text


def test_black_fallback_keeps_a_docstring_ending_in_a_quote(tmp_path: Path) -> None:
    doc = 'Bob\'s and Al\'s "quote"'
    # a Literal too long for one line is left to black, which then formats the whole module
    long_literal = '"' + "a long value " * 8 + '", "b"'
    _, m = generate_one(
        tmp_path,
        f"{sig_string(doc)}\nclass C {{\n  {sig_string(doc)}\n  x: Literal[{long_literal}] \"X\"\n}}\n"
        'signature S {\n  in q: str\n  out a: C "A"\n}\n',
    )
    assert (m.__doc__, m.C.__doc__) == (doc, doc)
    assert m.C.model_json_schema()["description"] == doc


def test_layout_measures_wide_characters_as_black_does(tmp_path: Path) -> None:
    # 57 characters, but 80 columns: `a: str = Field(description="...")` needs 92
    description = "質問に対する短い答えを、日本語で、丁寧に書いてください。"
    text, _ = generate_one(tmp_path, f'signature S {{\n  in q: str\n  out a: str "{description}"\n}}\n')
    assert black.format_str(text, mode=BLACK_MODE) == text
