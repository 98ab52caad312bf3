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
