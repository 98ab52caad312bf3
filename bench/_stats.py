"""Small helpers shared by the benchmark scripts: medians and where results are written."""

from __future__ import annotations

import datetime
import statistics
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": float(len(samples)),
    }


def new_results_path(prefix: str = "", folder: Path = RESULTS, suffix: str = ".json") -> Path:
    """``folder/<prefix><YYYY-MM-DD><suffix>``, or ``...-2``, ``-3``, ... when that exists:
    an earlier run of the same day is never overwritten."""
    today = datetime.date.today().isoformat()
    path = folder / f"{prefix}{today}{suffix}"
    run = 2
    while path.exists():
        path = folder / f"{prefix}{today}-{run}{suffix}"
        run += 1
    return path
