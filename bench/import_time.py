"""Cold import time of a generated module with its runtime, against pydantic + httpx alone.

Each sample is a fresh interpreter (`python -c ...`), run alternately A B C A B C ... so
machine noise hits all of them alike. Reported: median wall time per process, and the
ratio the foundation issue sets a target for (generated.qa / pydantic+httpx <= 1.3).
Interpreter start-up (`python -c pass`) is reported too, and the ratio of the imports
alone (start-up subtracted) is shown beside it.

    python bench/import_time.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _stats import summary

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "startup": "pass",
    "pydantic+httpx": "import pydantic, httpx",
    "generated.qa": "import generated.qa",
}


def sample(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    for code in CASES.values():  # warm the OS file cache and .pyc files
        sample(code)
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.rounds):
        for name, code in CASES.items():
            samples[name].append(sample(code))
    stats = {name: summary(s) for name, s in samples.items()}
    start = stats["startup"]["median"]
    base = stats["pydantic+httpx"]["median"]
    ours = stats["generated.qa"]["median"]
    result = {
        "stats_seconds": stats,
        "ratio_process": ours / base,
        "ratio_imports_only": (ours - start) / (base - start),
        "target_ratio": 1.3,
    }
    for name, st in stats.items():
        print(f"{name:>16}: median {st['median'] * 1000:7.1f} ms  (min {st['min'] * 1000:.1f}, max {st['max'] * 1000:.1f})")
    print(f"ratio generated.qa / pydantic+httpx: {result['ratio_process']:.2f} per process, "
          f"{result['ratio_imports_only']:.2f} imports only (target <= 1.3)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
