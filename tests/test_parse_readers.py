"""The two readers of `.sig` files agree: the fast recursive-descent reader of
``codegen/parse.py`` builds exactly the AST (spans and value diagnostics included) that
Lark's parser builds, or declines the file and leaves it to Lark.

The comparison runs on every example file of the repository, on the benchmark's project
and on fuzzed files (grammar-generated programs, multi-file programs and mutated example
files from tests/fuzz_strategies.py, whose odd names and nesting are the reader's hard
cases). ASTs are compared by ``repr``, which tells ``1`` from ``1.0`` and ``True``.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from fuzz_strategies import (
    EXAMPLE_PROJECTS,
    SEED_PROJECT,
    SourceFiles,
    generated_files,
    multi_file_programs,
    mutated_files,
)
from hypothesis import HealthCheck, given, settings

from sigforge.codegen import ast
from sigforge.codegen.lark_parse import parse_with_lark
from sigforge.codegen.parse import _Reader, parse

ROOT = Path(__file__).resolve().parents[1]


def lark_result(text: str) -> tuple[str, list[str]] | None:
    """Lark's AST (as repr) and diagnostics (as JSON); None when the file is too deep."""
    try:
        sig_file, diagnostics = parse_with_lark(text, "f.sig")
    except RecursionError:
        return None
    return repr(sig_file), [d.to_json() for d in diagnostics]


def fast_result(text: str) -> tuple[str, list[str]] | None:
    read = _Reader.read(text, "f.sig")
    if read is None:
        return None
    return repr(read[0]), [d.to_json() for d in read[1]]


def assert_agree(text: str) -> bool:
    """The readers agree on ``text``; returns whether the fast reader read it."""
    fast = fast_result(text)
    if fast is not None:
        assert fast == lark_result(text)
    return fast is not None


def example_texts() -> list[str]:
    paths = sorted(
        {
            *ROOT.glob("signatures/**/*.sig"),
            *ROOT.glob("runtime/optimizers/signatures/**/*.sig"),
            *ROOT.glob("tests/fixtures/**/*.sig"),
            *ROOT.glob("tests/golden/*/src/**/*.sig"),
            *ROOT.glob("examples/**/*.sig"),
        }
    )
    return [p.read_text(encoding="utf-8") for p in paths]


def test_every_example_file_is_read_fast_into_larks_ast() -> None:
    texts = [*example_texts(), *SEED_PROJECT.values()]
    assert len(texts) > 20
    for text in texts:
        assert assert_agree(text), text[:200]


def test_the_benchmark_project_is_read_fast_into_larks_ast() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        bench = importlib.import_module("codegen_scale")
    finally:
        sys.path.remove(str(ROOT / "bench"))
    for text in (bench.SIG_COMMON, bench.sig_file(0, 100, True), bench.sig_file(7, 100, False)):
        assert assert_agree(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment",
        '"""Doc."""\n# trailing comment without a newline',
        'signature S {\r\n    in a: str "x"\r\n    out b: int\r\n}\r\n',
        'signature S {\n    """\n    Doc with \\"quotes\\" and \\\\ backslashes.\n    """\n    out b: str\n}\n',
        'signature S { "A one-line doc" in a: str out b: str }',
        'enum E { a = "bad \\q" "also bad \\z"  b "fine" }',  # two E103, Lark's order
        'class C { n: int (ge=1e999999, le=99999999999999999999) = 1 }',
        'class C { x: float = 1e400  y: list[int] = [1, -2, +3, .5, 1.]  z: str | None = None }',
        "tool t(a: int, b: str = \"x\",) -> tuple[int, ...] \"Does things\"",
        "from a.b import C, D,\nfrom e import F\npredictor P = predict(S, adapter=\"json\",)",
        'signature S { in a: Literal["x", 1, -1.5, True] out b: dict[str, list[int | None]] }',
    ],
)
def test_tricky_but_valid_files_are_read_fast_into_larks_ast(text: str) -> None:
    assert assert_agree(text)


@pytest.mark.parametrize(
    "text",
    [
        "signatureS { in a: str }",  # Lark reads the keyword `signature`, then `S`
        "class C { signature: str }",  # a keyword as a name: Lark decides by parser state
        "class C { a: str  signature: str }",
        "signature S { in in: str }",
        "signature S { in a: str in: int }",
        "enum E { from }",
        "class C { x: " + "list[" * 40 + "str" + "]" * 40 + " }",  # deep: Lark decides
        'signature S { out a: str """not a doc here""" }',
        "signature S { in a: str @ }",  # a character no terminal matches
        "signature S { in a: str ",  # a syntax error
    ],
)
def test_files_the_fast_reader_declines_are_parsed_by_lark(text: str) -> None:
    assert fast_result(text) is None
    expected = lark_result(text)
    sig_file, diagnostics = parse(text, "f.sig")
    assert (repr(sig_file), [d.to_json() for d in diagnostics]) == expected


FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def agree_on(files: SourceFiles) -> None:
    for text in files.values():
        if isinstance(text, str):
            assert_agree(text)


@FUZZ
@given(generated_files())
def test_generated_programs_read_alike(files: SourceFiles) -> None:
    agree_on(files)


@FUZZ
@given(multi_file_programs())
def test_multi_file_programs_read_alike(files: SourceFiles) -> None:
    agree_on(files)


@FUZZ
@given(mutated_files())
def test_mutated_examples_read_alike(files: SourceFiles) -> None:
    agree_on(files)


def test_the_fuzz_corpus_has_projects() -> None:
    assert EXAMPLE_PROJECTS


def test_a_well_formed_file_is_parsed_without_importing_lark(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from sigforge.codegen.parse import parse\n"
        f"sig_file, diagnostics = parse(open({str(ROOT / 'signatures' / 'qa.sig')!r}).read(), 'qa.sig')\n"
        "assert sig_file is not None and not diagnostics\n"
        "print('lark' in sys.modules)\n"
        "parse('signature {', 'broken.sig')\n"
        "print('lark' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_value_diagnostics_keep_the_ast() -> None:
    sig_file, diagnostics = parse('class C { a: str "bad \\q" }', "f.sig")
    assert isinstance(sig_file, ast.SigFile)
    assert [d.code for d in diagnostics] == ["E103"]
