"""Fuzz the `.sig` compiler: the property of tests/test_property.py with many more examples.

The property: ``compile_sources`` never raises; every run ends with generated files (each
module valid Python with the sigforge header), or with at least one well-formed error
diagnostic and no files. The inputs come from tests/fuzz_strategies.py: arbitrary text
(``text``), arbitrary bytes (``bytes``), mutated example files (``mutate``), programs
generated from the grammar (``grammar``) and multi-file programs with imports (``multi``).

Run from the repository root with the dev environment:

    .venv/bin/python bench/fuzz_compiler.py                  # 20000 examples, all strategies
    .venv/bin/python bench/fuzz_compiler.py --examples 5000 --seed 1 --strategy grammar

It prints examples per second, how many runs ended in files and how many in diagnostics
(per strategy), and the most frequent diagnostic codes. Known crashes (already reported,
``fuzz_strategies.KNOWN_CRASHES``) are counted and skipped unless ``--stop-on-known``.
On any other failure, Hypothesis shrinks the input, a self-contained reproducer script is
written (``--crash-file``; run it with ``.venv/bin/python <file>``) and the exit status is
1. The same ``--seed`` replays the same run.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import fuzz_strategies as fz  # noqa: E402

from sigforge.codegen.pipeline import CompileResult  # noqa: E402

STRATEGIES: dict[str, st.SearchStrategy[fz.SourceFiles]] = {
    "text": fz.text_files(),
    "bytes": fz.byte_files(),
    "mutate": fz.mutated_files(),
    "grammar": fz.generated_files(),
    "multi": fz.multi_file_programs(),
}

Labelled = tuple[str, fz.SourceFiles]


@dataclass
class Stats:
    examples: int = 0
    files: Counter[str] = field(default_factory=Counter)  # strategy -> runs ending in files
    diagnostics: Counter[str] = field(default_factory=Counter)  # strategy -> runs ending in errors
    codes: Counter[str] = field(default_factory=Counter)  # code -> runs reporting it
    known: Counter[str] = field(default_factory=Counter)  # known crash -> runs hitting it
    #: the inputs that failed, in order; Hypothesis replays the shrunk one last
    failures: list[Labelled] = field(default_factory=list)

    def record(self, strategy: str, result: CompileResult) -> None:
        self.examples += 1
        (self.files if result.ok else self.diagnostics)[strategy] += 1
        self.codes.update({d.code for d in result.diagnostics})


def labelled(names: list[str]) -> st.SearchStrategy[Labelled]:
    """The chosen strategies as one, each example tagged with its strategy's name."""

    def tag(name: str) -> st.SearchStrategy[Labelled]:
        return STRATEGIES[name].map(lambda files: (name, files))

    return st.one_of(*(tag(name) for name in names))


def fuzz(
    names: list[str], examples: int, seed_value: int, *, stop_on_known: bool = False
) -> tuple[Stats, BaseException | None]:
    """Run the property; returns the statistics and the (shrunk) failure, if any."""
    stats = Stats()

    @seed(seed_value)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(labelled(names))
    def run(example: Labelled) -> None:
        strategy, files = example
        try:
            result = fz.compile_and_check(files)
        except Exception as exc:
            crash = fz.known_crash(exc)
            if crash is None or stop_on_known:
                stats.failures.append(example)
                raise
            if not stats.failures:
                stats.known[crash.name] += 1
                stats.examples += 1
            return
        if not stats.failures:  # do not count the shrinking runs
            stats.record(strategy, result)

    try:
        run()
    except Exception as exc:
        return stats, exc
    return stats, None


REPRODUCER = '''"""Reproducer written by bench/fuzz_compiler.py (strategy {strategy}, seed {seed}).

{traceback}
"""

import tempfile
from pathlib import Path

from sigforge.codegen.pipeline import compile_sources

SOURCES: dict[str, str | bytes] = {sources}

with tempfile.TemporaryDirectory() as tmp:
    src = Path(tmp) / "src"
    for rel, content in SOURCES.items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    result = compile_sources(src, Path(tmp) / "generated")
    print("ok:", result.ok, "files:", sorted(result.files))
    for d in result.diagnostics:
        print(d.render(result.sources.get(d.path)))
'''


def short_traceback(exc: BaseException) -> str:
    """The traceback's innermost frames (a RecursionError's would run to thousands of lines)."""
    return "".join(traceback.format_exception(exc, limit=-25))


def write_reproducer(path: Path, example: Labelled, exc: BaseException, seed_value: int) -> None:
    strategy, files = example
    text = short_traceback(exc).replace("\\", "\\\\").replace('"""', '\\"""')
    path.write_text(
        REPRODUCER.format(strategy=strategy, seed=seed_value, traceback=text, sources=repr(files)),
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--examples", type=int, default=20000, help="examples to run (default 20000)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument(
        "--strategy",
        choices=["all", *STRATEGIES],
        default="all",
        help="input strategy (default all)",
    )
    parser.add_argument(
        "--stop-on-known",
        action="store_true",
        help="treat the known crashes (fuzz_strategies.KNOWN_CRASHES) as failures too",
    )
    parser.add_argument(
        "--crash-file",
        type=Path,
        default=Path(tempfile.gettempdir()) / "sigforge_fuzz_crash.py",
        help="where to write the reproducer of a failure (default: in the temporary folder)",
    )
    args = parser.parse_args(argv)
    seed_value = args.seed if args.seed is not None else random.randrange(2**32)
    names = list(STRATEGIES) if args.strategy == "all" else [args.strategy]
    print(
        f"fuzzing compile_sources: {args.examples} examples, strategy {args.strategy}, seed {seed_value}"
    )

    start = time.perf_counter()
    stats, failure = fuzz(names, args.examples, seed_value, stop_on_known=args.stop_on_known)
    elapsed = time.perf_counter() - start

    print(
        f"\n{stats.examples} examples in {elapsed:.1f} s: {stats.examples / elapsed:.0f} examples/s"
    )
    print(f"{'strategy':<10}{'examples':>10}{'files':>10}{'diagnostics':>13}")
    for name in names:
        ok, errors = stats.files[name], stats.diagnostics[name]
        print(f"{name:<10}{ok + errors:>10}{ok:>10}{errors:>13}")
    total_ok, total_errors = sum(stats.files.values()), sum(stats.diagnostics.values())
    print(f"{'total':<10}{total_ok + total_errors:>10}{total_ok:>10}{total_errors:>13}")
    for name, count in stats.known.items():
        print(f"known crash {name}: {count} runs (counted, not shrunk)")
    print("\ntop diagnostic codes (runs reporting the code):")
    for code, count in stats.codes.most_common(15):
        print(f"  {code}  {count}")

    if failure is None:
        print("\nno crash")
        return 0
    example = stats.failures[-1]
    write_reproducer(args.crash_file, example, failure, seed_value)
    print(f"\nFAILURE (strategy {example[0]}), shrunk input: {example[1]!r}")
    print(short_traceback(failure))
    print(f"reproducer written to {args.crash_file} (run: python {args.crash_file})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
