"""`sigforge freeze`: optimized state baked into generated classes, kept consistent by check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

QA_SIG = textwrap.dedent(
    '''
    signature Answer {
        """Answer briefly."""
        in  question: str  "The question"
        out answer:   str  "A short answer"
        out score:    int  (ge=0) "How sure, 0 to 10"
    }

    predictor QuickAnswer = predict(Answer)
    predictor CarefulAnswer = chain_of_thought(Answer)
    '''
)


def run(cwd: Path, *args: str, module: str = "sigforge.codegen") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
        timeout=300, env=env, check=False,
    )


def sig(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(cwd, *args, "--src", "sigs", "--out", "gen")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "sigs").mkdir()
    (tmp_path / "sigs" / "qa.sig").write_text(QA_SIG)
    assert sig(tmp_path, "generate").returncode == 0
    state = {
        "sigforge_program": 1,
        "runtime": "0.1.0",
        "program": "QuickAnswer",
        "predictors": {
            "self": {
                "sigforge_state": 2,
                "predictor": "QuickAnswer",
                "signature": "Answer",
                "fields": {"question": "str", "answer": "str", "score": "int"},
                "instructions": 'Answer in one word.\nNever say """ or {{ x }}.',
                "demos": [{"question": "Capital of France?", "answer": "Paris", "score": 9}],
            }
        },
        "optimization": {"optimizer": "BootstrapFewShot", "seed": 3, "scores": {"val": 0.8}},
    }
    (tmp_path / "qa.optimized.json").write_text(json.dumps(state))
    return tmp_path


def test_freeze_bakes_state_into_the_generated_class(project: Path) -> None:
    done = sig(project, "freeze", "gen.qa:QuickAnswer", "qa.optimized.json")
    assert done.returncode == 0, done.stderr
    frozen = json.loads((project / "sigs" / "qa.frozen.json").read_text())
    assert list(frozen["predictors"]) == ["QuickAnswer"]
    code = (project / "gen" / "qa.py").read_text()
    assert "frozen_instructions = " in code and "frozen_demos = " in code
    assert "'qa.optimized.json', optimizer 'BootstrapFewShot', seed 3" in code
    probe = textwrap.dedent(
        """
        from gen.qa import CarefulAnswer, QuickAnswer
        p = QuickAnswer()
        print(repr(p.instructions))
        print([dict(d.values) for d in p.demos], p.optimization["seed"])
        print(CarefulAnswer().demos, QuickAnswer(demos=[]).demos)
        """
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert shown[0] == repr('Answer in one word.\nNever say """ or {{ x }}.')
    assert shown[1] == "[{'question': 'Capital of France?', 'answer': 'Paris', 'score': 9}] 3"
    assert shown[2] == "[] []"  # other predictors untouched; explicit demos win
    assert sig(project, "check").returncode == 0
    typed = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "gen"],
        cwd=project, capture_output=True, text=True, check=False,
    )
    assert typed.returncode == 0, typed.stdout


def test_a_signature_change_makes_the_frozen_state_an_error_until_removed(project: Path) -> None:
    assert sig(project, "freeze", "gen.qa:QuickAnswer", "qa.optimized.json").returncode == 0
    source = project / "sigs" / "qa.sig"
    source.write_text(QA_SIG.replace("out score:    int", "out score:    float"))
    failed = sig(project, "generate")
    assert failed.returncode == 1
    assert "sigs/qa.frozen.json:4:5: error[E503]" in failed.stderr
    assert "sigforge freeze --remove gen.qa:QuickAnswer" in failed.stderr
    assert "`score` was `int` and is `float` now" in failed.stderr
    assert sig(project, "check").returncode == 1
    removed = sig(project, "freeze", "--remove", "gen.qa:QuickAnswer")
    assert removed.returncode == 0, removed.stderr
    assert not (project / "sigs" / "qa.frozen.json").exists()
    assert "frozen_demos" not in (project / "gen" / "qa.py").read_text()
    assert sig(project, "check").returncode == 0


def test_an_artifact_that_does_not_fit_is_refused_and_nothing_is_written(project: Path) -> None:
    data = json.loads((project / "qa.optimized.json").read_text())
    data["predictors"]["self"]["demos"][0]["score"] = -1  # breaks (ge=0)
    (project / "bad.json").write_text(json.dumps(data))
    refused = sig(project, "freeze", "gen.qa:QuickAnswer", "bad.json")
    assert refused.returncode == 1 and "does not fit gen.qa:QuickAnswer" in refused.stderr
    assert "score" in refused.stderr and "Traceback" not in refused.stderr
    assert not (project / "sigs" / "qa.frozen.json").exists()
    data["predictors"]["other"] = data["predictors"]["self"]
    (project / "two.json").write_text(json.dumps(data))
    ambiguous = sig(project, "freeze", "gen.qa:QuickAnswer", "two.json")
    assert "holds 2 predictors" in ambiguous.stderr and "--predictor" in ambiguous.stderr
    wrong = sig(project, "freeze", "gen.qa:CarefulAnswer", "qa.optimized.json")
    assert wrong.returncode == 1 and "saved for signature 'Answer'" in wrong.stderr
    outside = sig(project, "freeze", "elsewhere.qa:QuickAnswer", "qa.optimized.json")
    assert outside.returncode == 1 and "generated package `gen`" in outside.stderr


def test_a_broken_frozen_file_is_a_diagnostic_with_its_position(project: Path) -> None:
    (project / "sigs" / "qa.frozen.json").write_text('{"sigforge_frozen": 1,\n  "predictors": {,}}\n')
    failed = sig(project, "generate")
    assert failed.returncode == 1 and "qa.frozen.json:2:" in failed.stderr and "E501" in failed.stderr
    (project / "sigs" / "qa.frozen.json").write_text(json.dumps(
        {"sigforge_frozen": 1, "predictors": {"Missing": {"fields": {}, "instructions": None,
                                                          "demos": [], "optimization": None}}}
    ))
    failed = sig(project, "generate")
    assert "error[E502]" in failed.stderr and "`Missing` is not a predictor class" in failed.stderr
