"""What a `sigforge` command loads: only what it needs.

A fresh process runs the command (click's ``main`` in-process, so that ``sys.modules`` can
be inspected afterwards) and reports which heavy modules it imported. A `generate` with
nothing to compile must not load Lark, Jinja, pydantic or the runtime's adapters; a
build needs Jinja and the adapters' constant prompt text, not their run-time part nor
pydantic (about 0.1 s of imports, which the generated code needs and the compiler does
not), unless a field's type or default needs it: a default is validated by pydantic
exactly as the generated model will validate it, and a class or an enum is described by
pydantic's schema. Lark is loaded only for a syntax error (the parser's tables ship with
the grammar). Each test has a cache folder of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from sigforge.codegen.cli import main

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["lark", "jinja2", "pydantic", "sigforge.runtime.adapters", "sigforge.runtime.lm", "httpx"]


def loaded_by(args: list[str], cwd: Path, exit_code: int = 0) -> dict[str, bool]:
    probe = (
        "import json, sys\n"
        "from sigforge.codegen.cli import main\n"
        "try:\n"
        f"    main({args!r}, standalone_mode=False)\n"
        "finally:\n"
        f"    print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))\n"
    )
    env = {**os.environ, "SIGFORGE_CACHE_DIR": str(cwd / "cache")}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, env=env
    )
    assert out.returncode == exit_code, out.stderr
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
    assert loaded["jinja2"] and loaded["sigforge.runtime.adapters"]
    assert not loaded["lark"]  # (see below)
    assert not loaded["sigforge.runtime.lm"] and not loaded["httpx"]


def test_lark_is_loaded_only_for_a_syntax_error(tmp_path: Path) -> None:
    """Builds parse with the tables shipped with the grammar; a syntax error's diagnostics
    are Lark's."""
    root = project(tmp_path)
    generate = ["generate", "--warnings", "hide", "--full"]
    assert not loaded_by(generate, root)["lark"]
    qa = root / "signatures" / "qa.sig"
    qa.write_text(qa.read_text(encoding="utf-8") + "\nsignature Broken {\n", encoding="utf-8")
    assert loaded_by(generate, root, exit_code=1)["lark"]


def test_a_build_without_defaults_does_not_load_pydantic(tmp_path: Path) -> None:
    src = tmp_path / "signatures"
    src.mkdir()
    answer = 'signature Answer {\n    in question: str "Asked"\n    out answer: str "Said"\n}\n'
    (src / "qa.sig").write_text(answer + "predictor Answerer = chain_of_thought(Answer)\n")
    loaded = loaded_by(["generate"], tmp_path)
    assert loaded["jinja2"] and loaded["sigforge.runtime.adapters"]
    assert not loaded["pydantic"]
    assert "class AnswerOutputs(BaseModel)" in (tmp_path / "generated" / "qa.py").read_text()
    # a default is validated by pydantic, exactly as the generated model will validate it
    (src / "qa.sig").write_text(answer.replace('"Asked"', '= "why?"') + "\n")
    assert loaded_by(["generate"], tmp_path)["pydantic"]


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


def run_as_program(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], bool]:
    """``python -m sigforge.codegen ARGS`` with an exit handler that leaves a mark: the
    process's result, and whether the interpreter was torn down as usual (the handler ran)."""
    mark = cwd / "torn-down"
    probe = (
        "import atexit, pathlib, runpy, sys\n"
        f"atexit.register(pathlib.Path({str(mark)!r}).touch)\n"
        f"sys.argv = ['sigforge', *{args!r}]\n"
        "runpy.run_module('sigforge.codegen', run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True)
    torn_down = mark.exists()
    mark.unlink(missing_ok=True)
    return done, torn_down


def test_compiler_commands_end_at_once_with_their_output_and_status(tmp_path: Path) -> None:
    root = project(tmp_path)
    done, torn_down = run_as_program(["generate"], root)
    assert done.returncode == 0 and not torn_down
    assert "generated: 5 written" in done.stdout and done.stderr.endswith("\n2 warnings.\n")
    done, torn_down = run_as_program(["check"], root)
    assert (done.returncode, done.stdout.strip(), torn_down) == (0, "generated is up to date.", False)
    qa = root / "signatures" / "qa.sig"
    qa.write_text(qa.read_text(encoding="utf-8") + "\n# touched\n", encoding="utf-8")
    done, torn_down = run_as_program(["check", "--format", "json"], root)
    assert done.returncode == 1 and not torn_down
    assert done.stdout.startswith("{") and "+# Source digest: " in done.stdout  # the whole diff
    assert "is stale" in done.stderr
    (root / "signatures" / "broken.sig").write_text("signature B { in a: strr }\n")
    done, torn_down = run_as_program(["generate", "--format", "json"], root)
    assert done.returncode == 1 and not torn_down
    assert '"code": "E201"' in done.stdout


def test_other_commands_and_in_process_calls_end_as_usual(tmp_path: Path) -> None:
    root = project(tmp_path)
    done, torn_down = run_as_program(["fmt", "--check"], root)
    assert torn_down and done.returncode in (0, 1)
    result = CliRunner().invoke(main, ["generate", "--src", str(root / "signatures"), "--out", str(root / "out")])
    assert result.exit_code == 0  # called with arguments: returns (this process goes on)
    assert (root / "out" / "qa.py").is_file()
