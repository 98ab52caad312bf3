"""Incremental builds and deletions through the real CLI, observed on the file system.

A project of four modules: ``qa`` imports from ``common``, ``sub.deep`` imports from ``qa``
(so, transitively, from ``common``) and ``standalone`` imports nothing. Before each
``sigforge generate`` under test every output file gets an old mtime, so a file that was
written is one whose mtime moved, whatever the resolution of the file system clock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sigforge.codegen.pipeline import compile_sources
from sigforge.codegen.write import ForeignFileError, diff_outputs, write_outputs

SOURCES = {
    "common.sig": '''"""Shared types."""

enum Priority {
    low
    normal
    high
}

class Citation {
    """A passage."""
    title: str              "The title"
    page: int (ge=1) = 1
}
''',
    "qa.sig": '''from common import Citation, Priority

signature Ask {
    in  question: str       "The question"
    in  priority: Priority  "How urgent" = "normal"
    out answer: str         "The answer"
    out sources: list[Citation] "Where the answer comes from"
}

predictor Asker = predict(Ask)
''',
    "sub/deep.sig": '''from qa import Ask

predictor DeepAsker = chain_of_thought(Ask)
''',
    "standalone.sig": '''signature Echo {
    in  text: str           "Some text"
    out echo: str           "The same text"
}

predictor Echoer = predict(Echo)
''',
}
OUTPUTS = {
    "__init__.py", "py.typed", "common.py", "qa.py", "standalone.py", "sub/__init__.py", "sub/deep.py"
}
OLD = 1_500_000_000 * 10**9  # an mtime in 2017, in nanoseconds


def sigforge(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sigforge.codegen", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def files_below(folder: Path) -> dict[str, int]:
    """Every file below ``folder`` (relative path -> mtime in ns)."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def age(folder: Path) -> None:
    for rel in files_below(folder):
        os.utime(folder / rel, ns=(OLD, OLD))


def written(folder: Path) -> set[str]:
    """The files below ``folder`` written since :func:`age`."""
    return {rel for rel, mtime in files_below(folder).items() if mtime != OLD}


def assert_same_as_a_full_build(project: Path) -> None:
    """What `sigforge check` does, in-process (faster than one more subprocess)."""
    result = compile_sources(project / "signatures", project / "generated")
    assert result.ok
    assert diff_outputs(project / "generated", result.files) == ""


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project, generated once."""
    project = tmp_path_factory.mktemp("baseline")
    for rel, text in SOURCES.items():
        (project / "signatures" / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / "signatures" / rel).write_text(text, encoding="utf-8")
    run = sigforge(project, "generate")
    assert run.returncode == 0, run.stderr
    assert set(files_below(project / "generated")) == OUTPUTS
    return project


@pytest.fixture
def project(baseline: Path, tmp_path: Path) -> Path:
    """A fresh copy of the generated project, every output aged."""
    copy = tmp_path / "project"
    shutil.copytree(baseline, copy)
    age(copy / "generated")
    return copy


def test_a_second_run_writes_nothing(project: Path) -> None:
    out = project / "generated"
    before = files_below(out)
    run = sigforge(project, "generate")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "generated: 0 written, 7 unchanged\n"
    assert files_below(out) == before  # same files (no temporary ones left), same mtimes


@pytest.mark.parametrize(
    ("source", "rewritten"),
    [
        ("common.sig", {"common.py", "qa.py", "sub/deep.py"}),  # and its importers, transitively
        ("qa.sig", {"qa.py", "sub/deep.py"}),
        ("sub/deep.sig", {"sub/deep.py"}),
        ("standalone.sig", {"standalone.py"}),
    ],
)
def test_a_change_rewrites_the_module_and_its_importers_only(
    project: Path, source: str, rewritten: set[str]
) -> None:
    sig = project / "signatures" / source
    sig.write_text(sig.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    run = sigforge(project, "generate")
    assert run.returncode == 0, run.stderr
    assert written(project / "generated") == rewritten
    assert run.stdout == f"generated: {len(rewritten)} written, {7 - len(rewritten)} unchanged\n"
    assert_same_as_a_full_build(project)


def test_a_changed_declaration_reaches_the_importers(project: Path) -> None:
    common = project / "signatures" / "common.sig"
    common.write_text(common.read_text(encoding="utf-8").replace('"The title"', '"Its title"'))
    assert sigforge(project, "generate").returncode == 0
    assert written(project / "generated") == {"common.py", "qa.py", "sub/deep.py"}
    qa = (project / "generated" / "qa.py").read_text(encoding="utf-8")
    assert "Its title" in qa and "The title" not in qa  # the JSON schema in the prompts
    assert_same_as_a_full_build(project)


def test_deleting_a_source_deletes_only_its_generated_files(project: Path) -> None:
    out = project / "generated"
    hand_written = {
        "notes.py": "# my notes\nNOTES = 1\n",
        "sub/helpers.py": '"""Hand-written helpers."""\n',
        "data.json": "{}\n",
    }
    for rel, text in hand_written.items():
        (out / rel).write_text(text, encoding="utf-8")
        os.utime(out / rel, ns=(OLD, OLD))
    (project / "signatures" / "standalone.sig").unlink()
    run = sigforge(project, "generate")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "generated: 0 written, 6 unchanged, 1 deleted\n"
    assert set(files_below(out)) == (OUTPUTS - {"standalone.py"}) | set(hand_written)
    assert written(out) == set()
    shutil.rmtree(project / "signatures" / "sub")
    run = sigforge(project, "generate")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "generated: 0 written, 4 unchanged, 2 deleted\n"
    assert set(files_below(out)) == {"__init__.py", "py.typed", "common.py", "qa.py", *hand_written}
    assert written(out) == set()
    assert {rel: (out / rel).read_text(encoding="utf-8") for rel in hand_written} == hand_written


def test_a_source_never_overwrites_a_hand_written_file(project: Path) -> None:
    out = project / "generated"
    (project / "signatures" / "extra.sig").write_text(
        'signature Extra {\n    in  q: str\n    out a: str "A"\n}\n', encoding="utf-8"
    )
    (out / "extra.py").write_text("# hand-written\nVALUE = 1\n", encoding="utf-8")
    os.utime(out / "extra.py", ns=(OLD, OLD))
    run = sigforge(project, "generate")
    assert run.returncode == 1
    assert "refusing to overwrite files that sigforge did not generate" in run.stderr
    assert "extra.py" in run.stderr
    assert (out / "extra.py").read_text(encoding="utf-8") == "# hand-written\nVALUE = 1\n"
    assert written(out) == set()  # nothing else was written either
    result = compile_sources(project / "signatures", out)
    with pytest.raises(ForeignFileError) as error:
        write_outputs(out, result.files)
    assert error.value.paths == [out / "extra.py"]
    assert written(out) == set()


def test_hand_edits_are_caught_by_check_and_repaired_by_generate(project: Path) -> None:
    out = project / "generated"
    qa = out / "qa.py"
    original = qa.read_text(encoding="utf-8")
    original_line = '    question: str = Field(description="The question")\n'
    edited_line = '    question: str = Field(description="The question, edited by hand")\n'
    assert original_line in original
    edited = original.replace(original_line, edited_line)
    qa.write_text(edited, encoding="utf-8")

    check = sigforge(project, "check")
    assert check.returncode == 1
    assert f"-{edited_line}" in check.stdout and f"+{original_line}" in check.stdout
    assert "stale" in check.stderr

    # The header also seals the file's own text: the edit is seen and the module rebuilt.
    run = sigforge(project, "generate")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "generated: 1 written, 6 unchanged\n"
    assert qa.read_text(encoding="utf-8") == original

    qa.write_text(edited, encoding="utf-8")
    full = sigforge(project, "generate", "--full")
    assert full.returncode == 0, full.stderr
    assert full.stdout == "generated: 1 written, 6 unchanged\n"
    assert qa.read_text(encoding="utf-8") == original
    assert written(out) == {"qa.py"}
    assert sigforge(project, "check").returncode == 0


def test_an_edit_to_the_digest_line_makes_plain_generate_rebuild(project: Path) -> None:
    qa = project / "generated" / "qa.py"
    original = qa.read_text(encoding="utf-8")
    lines = original.splitlines(keepends=True)
    assert lines[2].startswith("# Source digest: ")
    qa.write_text("".join([*lines[:2], "# Source digest: 0\n", *lines[3:]]).replace("Ask", "Asq"))
    run = sigforge(project, "generate")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "generated: 1 written, 6 unchanged\n"
    assert qa.read_text(encoding="utf-8") == original
