"""`sigforge evaluate` and `sigforge optimize`, run as the real command on the operator task."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sigforge.testing.tasks import OperatorTask

PROGRAM = textwrap.dedent(
    """
    from sigforge.testing.tasks import OperatorTask, OperatorWorld, task_module

    WORLD = OperatorWorld()
    TASK = OperatorTask(seed=0)


    def program():
        return task_module().Solve(lm=WORLD.lm())


    def metric(example, prediction):
        return TASK.metric(example, prediction)


    not_a_program = 42
    """
)


def sigforge(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "sigforge.codegen", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, env=env, check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "prog.py").write_text(PROGRAM)
    task = OperatorTask(seed=0)
    for name, rows in (("train", task.trainset(24)), ("dev", task.devset(16))):
        lines = [json.dumps({**row.to_dict()}) for row in rows]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_evaluate_prints_a_table_and_exports_results(project: Path) -> None:
    run = sigforge(
        project, "evaluate", "prog:program", "--data", "dev.jsonl", "--inputs", "question",
        "--metric", "prog:metric", "--json", "out.json", "--csv", "out.csv", "--table", "3",
    )
    assert run.returncode == 0, run.stderr
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("score ") and last.endswith("% on 16 examples")
    exported = json.loads((project / "out.json").read_text())
    rows = exported["results"] if isinstance(exported, dict) else exported
    assert len(rows) == 16
    assert (project / "out.csv").read_text().count("\n") >= 17
    # without help, the simulated LM misreads invented operators: the baseline is low
    assert float(last.split()[1].rstrip("%")) < 50


def test_optimize_writes_an_artifact_that_scores_higher_when_loaded(project: Path) -> None:
    run = sigforge(
        project, "optimize", "prog:program", "--optimizer", "bootstrap", "--train", "train.jsonl",
        "--val", "dev.jsonl", "--inputs", "question", "--metric", "prog:metric",
        "--set", "max_bootstrapped_demos=8", "--set", "max_labeled_demos=8", "--seed", "3",
        "--threads", "4", "--out", "solve.optimized.json", "--report", "report.json",
    )
    assert run.returncode == 0, run.stderr
    report = json.loads((project / "report.json").read_text())
    assert report["optimizer"] == "BootstrapFewShot"
    assert report["validation"]["after"] > report["validation"]["before"]
    artifact = json.loads((project / "solve.optimized.json").read_text())
    assert artifact["optimization"]["optimizer"] == "BootstrapFewShot"
    assert artifact["optimization"]["seed"] == 3
    assert artifact["predictors"]["self"]["demos"]
    scored = sigforge(
        project, "evaluate", "prog:program", "--data", "dev.jsonl", "--inputs", "question",
        "--metric", "prog:metric", "--load", "solve.optimized.json", "--table", "0",
    )
    assert scored.returncode == 0, scored.stderr
    percent = float(scored.stdout.split()[1].rstrip("%")) / 100
    assert percent == pytest.approx(report["validation"]["after"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["prog:nothing"], "`prog` has no `nothing`"),
        (["nomodule:program"], "cannot import `nomodule`"),
        (["prog:not_a_program"], "expected a generated predictor or a Module"),
        (["prog:program", "--set", "max_bootstrapped_demo=2"], "has no setting max_bootstrapped_demo"),
    ],
)
def test_optimize_reports_bad_arguments_without_a_traceback(
    project: Path, args: list[str], message: str
) -> None:
    program, *rest = args
    run = sigforge(
        project, "optimize", program, "--optimizer", "bootstrap", "--train", "train.jsonl",
        "--inputs", "question", "--metric", "prog:metric", "--out", "x.json", *rest,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr
    assert not (project / "x.json").exists()


def test_a_broken_dataset_line_is_named(project: Path) -> None:
    (project / "dev.jsonl").write_text('{"question": "What is 2 zorp 3?", "answer": 5}\n{oops\n')
    run = sigforge(
        project, "evaluate", "prog:program", "--data", "dev.jsonl", "--inputs", "question",
        "--metric", "prog:metric",
    )
    assert run.returncode == 1 and "dev.jsonl:2: not valid JSON" in run.stderr
