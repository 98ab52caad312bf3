"""Smoke tests of the benchmark scripts in ``bench/``: they still run, end to end.

Each test runs a script as a real subprocess in its smallest mode (no peer tools, one
round) and checks what it wrote. Speed figures are not asserted here: they belong to
the benchmark runs themselves.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_optimizer_bench_quick_runs(tmp_path: Path) -> None:
    out = tmp_path / "optimizers.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "optimizer_bench.py"),
         "--quick", "--no-dspy", "--rounds", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"results: {out}" in proc.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["benchmark"] == "optimizer_bench"
    assert report["versions"]["dspy"] is None
    assert report["settings"]["quick"] is True and report["settings"]["rounds"] == 1
    # the world answers by what the prompt shows: nothing zero-shot
    assert report["zero_shot_dev_score"] == {"sigforge": 0.0}
    rows = report["optimizers"]
    assert set(rows) == {"bootstrap", "mipro"}
    compile_calls = 0
    for name, row in rows.items():
        assert "dspy" not in row and "ratios" not in row
        ours = row["sigforge"]
        raw = ours["raw"]
        assert len(raw["wall_s"]) == 1 and raw["wall_s"][0] > 0
        # counted at the server, by role, and by the optimizer's own record: the same
        calls = raw["lm_calls"][0]
        assert calls > 0 and sum(raw["roles"][0].values()) == calls
        assert raw["own_lm_calls"] == [calls], name
        compile_calls += calls
        assert ours["problems"] == []
        assert ours["server_cpu_us_per_request"]["median"] > 0
        assert ours["same_program_every_round"] is True
        assert ours["final_program"]["demos"] > 0
        assert ours["dev_score"] > 0.0, name  # the compiled program learned something
    assert rows["bootstrap"]["sigforge"]["roles"]["proposer"] == 0
    assert rows["mipro"]["sigforge"]["roles"]["proposer"] > 0
    # warm-up and measured compiles plus the dev evaluations all hit the one server
    total = report["server_total"]["requests"]
    assert total >= 2 * compile_calls + 3 * report["settings"]["dev"]
    assert any(line.startswith("| BootstrapFewShot |") for line in report["table"])
    assert any(line.startswith("| MIPROv2 |") for line in report["table"])


def test_side_by_side_quick_per_call_workload_without_peers(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"),
         "--quick", "--only", "3", "--no-peers", "--out-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [results] = tmp_path.glob("*.json")
    report = json.loads(results.read_text(encoding="utf-8"))
    assert report["benchmark"] == "side_by_side"
    assert report["settings"]["quick"] is True and report["settings"]["peers"] is False
    assert report["settings"]["only"] == [3]
    assert report["versions"]["dspy"] is None and report["versions"]["baml-py"] is None
    assert list(report["results"]) == ["3"]
    rows = report["results"]["3"]["rows"]
    # Predict and ChainOfThought, chat and JSON, 0 and 3 demos, simple and complex
    assert len(rows) == 16 and len({row["case"] for row in rows}) == 16
    assert {row["case"] for row in rows} >= {"predict/chat/0 demos/simple",
                                             "cot/json/3 demos/complex"}
    rounds = report["settings"]["mode"]["call_rounds"]
    for row in rows:
        assert set(row["values"]) == {"sigforge"}, row["case"]
        ours = row["values"]["sigforge"]
        assert len(ours["samples"]) == rounds and min(ours["samples"]) > 0
        assert ours["min"] <= ours["median"] <= ours["max"]
        assert row["ratios"] == {}
    # no peer: the targets are reported as not measured, never as met
    targets = [item for item in report["headline"] if item["target"] != "—"]
    assert targets and all(item["met"] is None and item["ratio"] is None for item in targets)
    # a partial run's report goes beside its JSON, not to bench/RESULTS.md
    report_md = results.with_suffix(".md")
    assert f"report: {report_md}" in proc.stdout
    text = report_md.read_text(encoding="utf-8")
    assert "## 3. Per-call overhead" in text and "| cot/json/3 demos/complex |" in text
    assert "not measured" in text
    # the work folder (generated modules, worker logs) is removed
    folder = proc.stdout.split("work folder ", 1)[1].split()[0]
    assert not Path(folder).exists()
