"""Small helpers shared by the benchmark scripts: medians and a results table."""

from __future__ import annotations

import statistics


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": float(len(samples)),
    }
