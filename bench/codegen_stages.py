"""Where a full build's time goes, stage by stage, in one process.

Writes the benchmark project of bench/codegen_scale.py (N signatures, ten per file) and
compiles it repeatedly in this process with the compiler's own stages, timing each one
separately (CPU time of this process, `time.process_time`, which other load on a shared
machine disturbs far less than wall time): parse (the parser's own loop over the tables
compiled from Lark's, AST built in the rule callbacks), check, lower (extension, field
specs, prompt constants and JSON schemas from the runtime's adapters, layout of the
literals) and render (Jinja), with the garbage collector set as a build sets it. Imports, parser tables and the template are loaded before
the first round, and one warm-up round is not counted, so the figures are the per-module
work a build spreads over its processes. The import cost is measured apart, in fresh
processes (`python -c "import ..."` minus `python -c pass`).

It also prints a digest of all generated files: a change that only makes the compiler
faster must leave it unchanged.

    python bench/codegen_stages.py [--signatures 1000] [--rounds 5] [--import-rounds 10]

For the whole command against BAML, see bench/codegen_scale.py.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from codegen_scale import PER_FILE, write_sig_project

STAGE_MODULES = (
    "sigforge.codegen.cli",
    "sigforge.codegen.pipeline",
    "sigforge.codegen.parse",
    "sigforge.codegen.imports",
    "sigforge.codegen.check",
    "sigforge.codegen.extend",
    "sigforge.codegen.pytypes",
    "sigforge.codegen.ir",
    "sigforge.codegen.frozen",
    "sigforge.codegen.render",
)


def import_seconds(rounds: int) -> tuple[float, float]:
    """Median wall time of a fresh process importing the compiler's stages, and of `pass`."""

    # as on a usual machine, the first run leaves .pyc files (not counted) that later ones use
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def timed(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        return time.perf_counter() - start

    stages = "import " + ", ".join(STAGE_MODULES)
    both = [(timed(stages), timed("pass")) for _ in range(rounds + 1)][1:]
    return statistics.median(a for a, _ in both), statistics.median(b for _, b in both)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--signatures", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--import-rounds", type=int, default=10)
    args = parser.parse_args()

    from sigforge.codegen.check import Checker
    from sigforge.codegen.extend import extend
    from sigforge.codegen.ir import lower
    from sigforge.codegen.parse import load_parser, parse
    from sigforge.codegen.pipeline import YOUNG_COLLECTION_THRESHOLD
    from sigforge.codegen.pytypes import PythonTypes
    from sigforge.codegen.render import load_templates, render_module

    load_parser()
    load_templates()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        write_sig_project(src, args.signatures, with_classes=False)
        sources = {p.stem: p.read_text(encoding="utf-8") for p in sorted(src.glob("*.sig"))}

    samples: dict[str, list[float]] = {"parse": [], "check": [], "lower": [], "render": []}
    digest = ""
    # the garbage collector as a build sets it (see compile_sources)
    gc.set_threshold(max(gc.get_threshold()[0], YOUNG_COLLECTION_THRESHOLD), *gc.get_threshold()[1:])
    for round_ in range(args.rounds + 1):
        t0 = time.process_time()
        trees = {}
        for module, text in sources.items():
            tree, _ = parse(text, f"src/{module}.sig")
            assert tree is not None, module
            trees[module] = tree
        t1 = time.process_time()
        checked = {}
        for module, tree in trees.items():
            result = Checker(tree, sources[module], module, imported={}, exports={}).run()
            assert result is not None, module
            checked[module] = result
        t2 = time.process_time()
        types = PythonTypes(checked.values())
        lowered = {module: lower(extend(m), types) for module, m in checked.items()}
        t3 = time.process_time()
        files = {module: render_module(ir, "0" * 16) for module, ir in lowered.items()}
        t4 = time.process_time()
        if round_ == 0:  # warm-up
            h = hashlib.sha256()
            for module in sorted(files):
                h.update(f"{module}\0{files[module]}\0".encode())
            digest = h.hexdigest()[:16]
            continue
        for stage, seconds in zip(samples, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            samples[stage].append(seconds)

    total = [sum(parts) for parts in zip(*samples.values(), strict=True)]
    files_n = len(sources)
    print(f"{args.signatures} signatures in {files_n} files ({PER_FILE} per file), "
          f"{args.rounds} rounds after a warm-up; CPU seconds for all files, median [min-max]:")
    for stage, values in [*samples.items(), ("total", total)]:
        print(f"  {stage:<7} {statistics.median(values):.3f}  [{min(values):.3f}-{max(values):.3f}]"
              f"  ({1000 * statistics.median(values) / files_n:.2f} ms per file)")
    if args.import_rounds:
        stages, bare = import_seconds(args.import_rounds)
        print(f"  imports {stages - bare:.3f}  (fresh process {stages:.3f} s, `python -c pass` {bare:.3f} s;"
              f" median of {args.import_rounds})")
    print(f"output digest {digest}")


if __name__ == "__main__":
    main()
