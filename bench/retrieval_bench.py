"""What the embedded vector store costs: indexing throughput and query latency of
SQLiteVecStore against a brute-force numpy baseline measured in the same run.

For each size (default 10,000 and 100,000 random unit vectors of dimension 384, seeded):

* **indexing**: ``SQLiteVecStore.add`` of all vectors into a new file (WAL, one
  transaction per ``--batch`` vectors; the embedder hands over precomputed vectors, so
  this is the store's own cost: blobs, the passages table, vec0's float and bit
  columns). The numpy baseline "indexes" by stacking the same vectors into one
  float32 matrix in memory (nothing persisted).
* **queries**: ``--queries`` random unit query vectors, top-10, through
  ``search_vector`` (no embedding) with ``search="exact"`` (vec0 brute-force KNN) and
  ``search="approximate"`` (binary-quantized KNN of 10 x ``--oversample`` candidates,
  re-scored exactly), and numpy's ``matrix @ q`` + ``argpartition``. The three run in
  turn for each query, so a busy moment of the machine hits all of them. Reported:
  p50 and p95 latency, and recall@10 of approximate against exact.

Random vectors are the worst case for binary quantization (no structure survives one
bit per dimension), so the approximate recall here is a floor; real sentence
embeddings keep far more of their neighbours.

    python bench/retrieval_bench.py [--sizes 10000,100000] [--queries 200] [--quick]

Prints a table and writes ``bench/results/retrieval-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# one BLAS thread: the baseline then uses one core, as SQLite does (and does not spin
# against the store's queries on a shared machine)
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

from sigforge.runtime.retrieval import SQLiteVecStore  # noqa: E402

RESULTS = Path(__file__).parent / "results"
DIMENSIONS = 384
K = 10


class Precomputed:
    """An embedder that hands over vectors made beforehand (text ``"v<n>"`` is row n)."""

    model = "precomputed-random"

    def __init__(self, rows: list[list[float]]) -> None:
        self.rows = rows

    @property
    def dimensions(self) -> int:
        return DIMENSIONS

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.rows[int(text[1:])] for text in texts]


def unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    matrix = rng.standard_normal((count, DIMENSIONS)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def run_size(size: int, queries: int, batch: int, oversample: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    matrix = unit_vectors(rng, size)
    rows = matrix.tolist()
    probes = unit_vectors(rng, queries)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        store = SQLiteVecStore(
            path, Precomputed(rows), batch_size=batch, oversample=oversample
        )
        texts = [f"v{n}" for n in range(size)]
        ids = [str(n) for n in range(size)]
        gc.collect()
        started = time.perf_counter()
        store.add(texts, ids=ids)
        index_seconds = time.perf_counter() - started

        started = time.perf_counter()
        baseline = np.array(rows, dtype=np.float32)
        baseline_index_seconds = time.perf_counter() - started

        file_bytes = sum(
            os.stat(f"{path}{suffix}").st_size
            for suffix in ("", "-wal")
            if os.path.exists(f"{path}{suffix}")
        )
        timings: dict[str, list[float]] = {"numpy": [], "exact": [], "approximate": []}
        recalls: list[float] = []
        agree = 0
        # warm-up: the first query of each kind pages the file in
        store.search_vector(probes[0], k=K)
        store.search_vector(probes[0], k=K, search="approximate")
        for probe in probes:
            started = time.perf_counter()
            scores = baseline @ probe
            top = np.argpartition(-scores, K)[:K]
            best = top[np.argsort(-scores[top])]
            timings["numpy"].append(time.perf_counter() - started)

            started = time.perf_counter()
            exact = store.search_vector(probe, k=K)
            timings["exact"].append(time.perf_counter() - started)

            started = time.perf_counter()
            approximate = store.search_vector(probe, k=K, search="approximate")
            timings["approximate"].append(time.perf_counter() - started)

            agree += exact.ids == [str(i) for i in best]
            recalls.append(len(set(exact.ids) & set(approximate.ids)) / K)
        store.close()

    def latency(kind: str) -> dict[str, float]:
        samples = timings[kind]
        return {
            "p50_ms": percentile(samples, 50) * 1000,
            "p95_ms": percentile(samples, 95) * 1000,
            "mean_ms": statistics.fmean(samples) * 1000,
        }

    return {
        "size": size,
        "dimensions": DIMENSIONS,
        "queries": queries,
        "k": K,
        "oversample": oversample,
        "index_seconds": index_seconds,
        "index_vectors_per_second": size / index_seconds,
        "numpy_stack_seconds": baseline_index_seconds,
        "file_mb": file_bytes / 2**20,
        "latency": {kind: latency(kind) for kind in timings},
        "approximate_recall_at_10": statistics.fmean(recalls),
        "exact_matches_numpy_top10": agree / queries,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000, help="vectors per add transaction")
    parser.add_argument("--oversample", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2,000 and 10,000 vectors, 50 queries")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    sizes = [2000, 10000] if args.quick else [int(s) for s in args.sizes.split(",")]
    queries = 50 if args.quick else args.queries

    results = [run_size(size, queries, args.batch, args.oversample, args.seed) for size in sizes]
    print(
        f"{'vectors':>8}  {'index/s':>9}  {'file MB':>7}  "
        f"{'numpy p50/p95 ms':>17}  {'exact p50/p95 ms':>17}  {'approx p50/p95 ms':>18}  "
        f"{'approx recall@10':>16}"
    )
    for result in results:
        lat = result["latency"]

        def pair(kind: str, lat: dict[str, Any] = lat) -> str:
            return f"{lat[kind]['p50_ms']:.2f} / {lat[kind]['p95_ms']:.2f}"

        print(
            f"{result['size']:>8}  {result['index_vectors_per_second']:>9.0f}  "
            f"{result['file_mb']:>7.1f}  {pair('numpy'):>17}  {pair('exact'):>17}  "
            f"{pair('approximate'):>18}  {result['approximate_recall_at_10']:>16.2f}"
        )
    if args.no_save:
        return
    import sqlite_vec  # type: ignore[import-untyped]

    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.date.today().isoformat()
    target = RESULTS / f"retrieval-{stamp}.json"
    number = 2
    while target.exists():
        target = RESULTS / f"retrieval-{stamp}-{number}.json"
        number += 1
    record = {
        "command": "python bench/retrieval_bench.py " + ("--quick" if args.quick else f"--sizes {args.sizes} --queries {queries}"),
        "date": stamp,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "sqlite_vec": sqlite_vec.__version__,
        "numpy": np.__version__,
        "results": results,
    }
    target.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {target}")


if __name__ == "__main__":
    main()
