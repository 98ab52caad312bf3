"""Property: the compiler never crashes, whatever is in the `.sig` files.

``compile_sources`` must end every run with generated files (each module valid Python
with the sigforge header) or with at least one well-formed error diagnostic and no files;
see :func:`fuzz_strategies.check_result` for the exact assertions. The inputs are
arbitrary text, arbitrary bytes, mutated example files, grammar-generated programs and
multi-file programs (tests/fuzz_strategies.py); bench/fuzz_compiler.py runs the same
property with many more examples.

Hypothesis profiles, applied to these tests only (never loaded, so other tests keep theirs):

- ``ci`` when the environment has ``CI=true``: derandomized (the same examples on every
  run) and without the example database;
- ``dev`` otherwise: new random examples on every run, failures replayed from
  ``.hypothesis/``.

``SIGFORGE_HYPOTHESIS_PROFILE=ci|dev`` overrides the choice. Both run 1000 examples
in total, which takes well under a minute on a 2-core machine.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from fuzz_strategies import (
    EXAMPLE_PROJECTS,
    SEED_PROJECT,
    SourceFiles,
    byte_files,
    compile_and_check,
    generated_files,
    known_crash,
    multi_file_programs,
    mutated_files,
    text_files,
)
from hypothesis import example, given, reject, settings

from sigforge.codegen.pipeline import compile_sources

# "ci" is Hypothesis' own CI profile (which it loads by itself on CI machines) with the same
# values spelled out, so registering it again changes nothing for the other tests.
settings.register_profile(
    "ci", settings.get_profile("ci"), derandomize=True, deadline=None, database=None
)
settings.register_profile("dev", deadline=None)


def _profile_name() -> str:
    chosen = os.environ.get("SIGFORGE_HYPOTHESIS_PROFILE")
    if chosen:
        return chosen
    return "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"


PROFILE = settings.get_profile(_profile_name())


def examples(count: int) -> settings:
    """The run's profile with ``count`` examples."""
    return settings(PROFILE, max_examples=count)


def check(files: SourceFiles) -> None:
    """The property, with inputs that hit a known crash (reported, pinned below) set aside."""
    try:
        compile_and_check(files)
    except Exception as exc:
        if known_crash(exc) is None:
            raise
        reject()


@examples(200)
@given(files=text_files())
@example(files={"m.sig": ""})
@example(files={"m.sig": "\x00"})
@example(files={"m.sig": "\ufeffsignature S { out x: str }"})
@example(files={"m.sig": '"""'})
@example(files={"m.sig": "signature S { out x: str } \r\n\r predictor P = predict(S)"})
def test_arbitrary_text_never_crashes(files: SourceFiles) -> None:
    check(files)


@examples(100)
@given(files=byte_files())
@example(files={"m.sig": b"\xff"})
@example(files={"m.sig": b"signature S { out x: str \xc3}"})
@example(files={"m.sig": b"\xef\xbb\xbfsignature S { out x: str }"})
def test_arbitrary_bytes_never_crash(files: SourceFiles) -> None:
    check(files)


@examples(250)
@given(files=mutated_files())
def test_mutated_examples_never_crash(files: SourceFiles) -> None:
    check(files)


@examples(330)
@given(files=generated_files())
@example(files={"m.sig": "signature S { out model_config: str }"})
@example(files={"m.sig": "signature S { out x: int (ge=1e999) = 99999999999999999999999999 }"})
@example(files={"m.sig": 'signature S { out x: str "{{ x }} {% if %} \\" \\\\ \\n" }'})
def test_generated_programs_never_crash(files: SourceFiles) -> None:
    check(files)


@examples(120)
@given(files=multi_file_programs())
@example(
    files={
        "common.sig": 'enum Priority { low high = "very high" }',
        "qa.sig": "from common import Priority\nsignature S { out p: Priority }",
    }
)
@example(files={"a.sig": "from b import X", "b.sig": "from a import X"})
def test_multi_file_programs_never_crash(files: SourceFiles) -> None:
    check(files)


def test_the_mutation_corpus_has_the_example_files() -> None:
    assert sum(map(len, EXAMPLE_PROJECTS)) >= 2, "no signatures/*.sig or tests/fixtures/**/*.sig"


def test_the_seed_project_compiles() -> None:
    """Mutations of the seed files start from a valid program."""
    result = compile_and_check(dict(SEED_PROJECT))
    assert result.ok, [d.render(result.sources.get(d.path)) for d in result.diagnostics]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "\n \t\n", '"""Only a docstring."""'])
def test_a_file_without_declarations_becomes_an_empty_module(text: str) -> None:
    result = compile_and_check({"m.sig": text})
    assert result.ok
    assert result.diagnostics == []
    assert sorted(result.files) == ["__init__.py", "m.py", "py.typed"]


def test_a_folder_without_sig_files_gives_just_the_package() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "src").mkdir()
        result = compile_sources(Path(tmp) / "src", Path(tmp) / "generated")
    assert result.ok
    assert result.diagnostics == []
    assert sorted(result.files) == ["__init__.py", "py.typed"]


# ------------------------------------------------------------------ regressions
# Crashes and a rendering bug the fuzzing found, fixed since: each input must now end in
# an error diagnostic. Add a crash found later to fuzz_strategies.KNOWN_CRASHES and pin it
# here with a strict xfail until it is fixed.

_DEEP_TYPE = "list[" * 1000 + "str" + "]" * 1000
_DEEP_LIST = "[" * 1000 + "]" * 1000


@pytest.mark.parametrize(
    "text",
    [
        # SchemaError from pydantic while the checker validated the default
        pytest.param("signature S { out x: int (ge=0.5) = 1 }", id="fractional-int-bound"),
        pytest.param('class C { x: str (max_length=99999999999999999999) = "" }', id="huge-length"),
        pytest.param(
            "class C { x: list[int] (min_items=99999999999999999999) = [] }", id="huge-items"
        ),
        # TypeError: no Python literal for an Image default
        pytest.param('class C { i: Image = "a" }', id="image-default"),
        pytest.param(
            'signature S { in x: Image | None = "a"  out y: str "d" }', id="optional-image"
        ),
        # RecursionError while parsing, or while writing the default's literal
        pytest.param(f"signature S {{ out x: {_DEEP_TYPE} }}", id="deep-type"),
        pytest.param(f"signature S {{ out x: list[str] = {_DEEP_LIST} }}", id="deep-default"),
        pytest.param(
            'signature S { out x: str "d" = ' + "[" * 400 + "]" * 400 + " }", id="deep-400"
        ),
    ],
)
def test_inputs_that_crashed_the_compiler_end_in_an_error(text: str) -> None:
    result = compile_and_check({"m.sig": text})
    assert not result.ok


def test_a_diagnostic_shows_the_line_it_points_at() -> None:
    """Spans count lines by \\n only, and so must the rendering (a form feed is no newline)."""
    text = "# page one\f page two\nsignature S { out x: strr }\n"
    result = compile_and_check({"m.sig": text})
    (diagnostic,) = [d for d in result.diagnostics if d.code == "E201"]
    assert diagnostic.span.line == 2
    rendered = diagnostic.render(result.sources[diagnostic.path]).splitlines()
    assert rendered[1] == " 2 | signature S { out x: strr }"
