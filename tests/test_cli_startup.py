"""What a `sigforge` command loads: only what it needs.

A fresh process runs the command (click's ``main`` in-process, so that ``sys.modules`` can
be inspected afterwards) and reports which heavy modules it imported. A `generate` with
nothing to compile must not load Lark, Jinja, pydantic or the runtime's adapters; a
one-file rebuild of a well-formed file needs Jinja and the adapters, not Lark.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from sigforge.codegen.cli import main

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["lark", "jinja2", "pydantic", "sigforge.runtime.adapters", "sigforge.runtime.lm", "httpx"]


def loaded_by(args: list[str], cwd: Path) -> dict[str, bool]:
    probe = (
        "import json, sys\n"
        "from sigforge.codegen.cli import main\n"
        "try:\n"
        f"    main({args!r}, standalone_mode=False)\n"
        "finally:\n"
        f"    print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, check=True
    )
    loaded: dict[str, bool] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def project(tmp_path: Path) -> Path:
    src = tmp_path / "signatures"
    src.mkdir()
    for name in ("qa.sig", "classify.sig", "common.sig"):
        (src / name).write_text((ROOT / "signatures" / name).read_text(encoding="utf-8"))
    return tmp_path


def test_generate_with_nothing_to_compile_loads_no_compiler_stage(tmp_path: Path) -> None:
    root = project(tmp_path)
    generate = ["generate", "--warnings", "hide"]
    first = loaded_by(generate, root)
    assert first["jinja2"] and first["sigforge.runtime.adapters"]
    again = loaded_by(generate, root)
    assert not any(again.values()), again


def test_a_one_file_rebuild_loads_the_compiler_but_not_the_lm_client(tmp_path: Path) -> None:
    root = project(tmp_path)
    generate = ["generate", "--warnings", "hide"]
    loaded_by(generate, root)
    qa = root / "signatures" / "qa.sig"
    qa.write_text(qa.read_text(encoding="utf-8") + "\n# touched\n", encoding="utf-8")
    loaded = loaded_by(generate, root)
    assert loaded["lark"] and loaded["jinja2"] and loaded["sigforge.runtime.adapters"]
    assert not loaded["sigforge.runtime.lm"] and not loaded["httpx"]


def test_version_loads_nothing_heavy(tmp_path: Path) -> None:
    assert not any(loaded_by(["--version"], tmp_path).values())


def test_commands_defined_elsewhere_are_listed_and_run() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("evaluate", "optimize", "index", "generate", "fmt", "cache"):
        assert f"  {command} " in result.output
    result = CliRunner().invoke(main, ["index", "--help"])
    assert result.exit_code == 0 and "DOCS_DIR" in result.output
    result = CliRunner().invoke(main, ["evaluate", "--help"])
    assert result.exit_code == 0 and "PROGRAM" in result.output
