"""How a rebuild reads the output folder: each generated file once, as text.

The pipeline checks a generated module's digests on the file's bytes and hands its text
on (``CompileResult.on_disk``), so that writing does not read it again; the outcome must
be what reading the files as text gives, also for a file whose line endings an editor or
a checkout turned into CRLF.
"""

from __future__ import annotations

from pathlib import Path

from sigforge.codegen.pipeline import compile_sources
from sigforge.codegen.write import write_outputs

ROOT = Path(__file__).resolve().parents[1]


def project(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "signatures"
    src.mkdir()
    for name in ("qa.sig", "classify.sig"):
        (src / name).write_text((ROOT / "signatures" / name).read_text(encoding="utf-8"))
    out = tmp_path / "generated"
    result = compile_sources(src, out)
    write_outputs(out, result.files)
    return src, out


def test_current_modules_are_handed_on_and_not_written(tmp_path: Path) -> None:
    src, out = project(tmp_path)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.py")}
    result = compile_sources(src, out, incremental=True)
    assert result.on_disk == {"qa.py", "classify.py"}
    assert result.files["qa.py"] == (out / "qa.py").read_text(encoding="utf-8")
    report = write_outputs(out, result.files, result.on_disk)
    assert report.written == [] and report.deleted == []
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.py")} == before


def test_a_changed_source_is_not_on_disk(tmp_path: Path) -> None:
    src, out = project(tmp_path)
    qa = src / "qa.sig"
    qa.write_text(qa.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    result = compile_sources(src, out, incremental=True)
    assert result.on_disk == {"classify.py"}
    assert write_outputs(out, result.files, result.on_disk).written == ["qa.py"]


def test_a_generated_file_with_crlf_line_endings_is_current_as_text(tmp_path: Path) -> None:
    src, out = project(tmp_path)
    qa = out / "qa.py"
    qa.write_bytes(qa.read_bytes().replace(b"\n", b"\r\n"))
    result = compile_sources(src, out, incremental=True)
    assert "qa.py" in result.on_disk  # read as text, the file is what was generated
    assert result.files["qa.py"] == qa.read_text(encoding="utf-8")


def test_a_generated_file_that_is_not_utf8_is_rebuilt(tmp_path: Path) -> None:
    src, out = project(tmp_path)
    qa = out / "qa.py"
    qa.write_bytes(qa.read_bytes() + b"\xff")
    result = compile_sources(src, out, incremental=True)
    assert "qa.py" not in result.on_disk
    assert write_outputs(out, result.files, result.on_disk).written == ["qa.py"]
