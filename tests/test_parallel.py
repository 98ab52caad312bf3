"""A build spread over processes (codegen/parallel.py, pipeline._compile_spread) gives
what one process gives.

``fork_map`` is checked with real forked processes: results in input order for any number
of processes, a share whose child fails computed again by the parent, an error raised in
the parent as a plain loop would raise it. Then a project of many modules (imports between
them, classes, enums, every predictor kind of the golden files) is compiled with one, two
and three processes: the files and the diagnostics must be identical, also the warnings
about unused types, which need the whole project, and also when a module has an error
(found while checking, or while generating) and the build falls back to one process.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from sigforge.codegen import pipeline
from sigforge.codegen.parallel import fork_map, usable_processes
from sigforge.codegen.pipeline import (
    MODULES_PER_PROCESS,
    YOUNG_COLLECTION_THRESHOLD,
    _processes,
    compile_sources,
)

GOLDEN = Path(__file__).resolve().parent / "golden"

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def square_with_pid(n: int) -> tuple[int, int]:
    return n * n, os.getpid()


@pytest.mark.parametrize("processes", [1, 2, 3, 7, 50])
def test_results_come_back_in_input_order(processes: int) -> None:
    items = list(range(23))
    results = fork_map(square_with_pid, items, processes)
    assert [r for r, _ in results] == [n * n for n in items]
    pids = {pid for _, pid in results}
    assert len(pids) == min(processes, len(items))  # the work really was spread
    assert os.getpid() in pids


def test_no_items_and_one_item() -> None:
    assert fork_map(square_with_pid, [], 4) == []
    assert fork_map(square_with_pid, [3], 4) == [(9, os.getpid())]


def test_a_share_whose_child_fails_is_computed_by_the_parent() -> None:
    parent = os.getpid()

    def fails_in_children(n: int) -> int:
        if os.getpid() != parent:
            raise RuntimeError("only in a child")
        return n + 1

    assert fork_map(fails_in_children, list(range(10)), 3) == list(range(1, 11))


def test_a_share_whose_child_dies_is_computed_by_the_parent() -> None:
    parent = os.getpid()

    def dies_in_children(n: int) -> int:
        if os.getpid() != parent:
            os._exit(3)
        return -n

    assert fork_map(dies_in_children, list(range(6)), 2) == [0, -1, -2, -3, -4, -5]


def test_an_error_is_raised_in_the_parent() -> None:
    def broken(n: int) -> int:
        if n == 4:
            raise ValueError("item 4")
        return n

    with pytest.raises(ValueError, match="item 4"):
        fork_map(broken, list(range(8)), 2)


def test_the_default_spreads_only_builds_large_enough() -> None:
    assert _processes(1, None) == 1
    assert _processes(MODULES_PER_PROCESS * 2 - 1, None) == 1
    assert _processes(1000, None) == usable_processes()
    assert _processes(5, 3) == 3  # an explicit number is taken as given


def many_module_project(src: Path) -> None:
    """Every golden project's sources, each copied into several subpackages."""
    for copy in range(3):
        for project in sorted(GOLDEN.glob("*/src")):
            for path in project.rglob("*.sig"):
                target = src / f"copy{copy}" / path.relative_to(project)
                target.parent.mkdir(parents=True, exist_ok=True)
                text = path.read_text(encoding="utf-8")
                # imports are relative to the source root: keep them inside the copy
                text = re.sub(r"(?m)^from ", f"from copy{copy}.", text)
                target.write_text(text, encoding="utf-8")


def test_a_build_is_the_same_with_any_number_of_processes(tmp_path: Path) -> None:
    src = tmp_path / "signatures"
    many_module_project(src)
    results = [compile_sources(src, tmp_path / "generated", workers=n) for n in (1, 2, 3)]
    first = results[0]
    assert first.ok, [d.render(first.sources.get(d.path)) for d in first.diagnostics]
    assert len([f for f in first.files if f.endswith(".py")]) > 30
    for other in results[1:]:
        assert other.files == first.files
        assert other.diagnostics == first.diagnostics


def test_problems_found_while_generating_are_reported_alike(tmp_path: Path) -> None:
    """A frozen-state file that no longer fits its predictor is found while generating
    (after the checks): with one process or several, the same diagnostics."""
    src = tmp_path / "signatures"
    many_module_project(src)
    qa = next(src.rglob("*.sig"))
    shutil.copy(qa, qa.with_name("broken.sig"))
    qa.with_name("broken.frozen.json").write_text('{"sigforge_frozen": 1, "predictors": {"Nope": {}}}')
    results = [compile_sources(src, tmp_path / "generated", workers=n) for n in (1, 3)]
    assert not results[0].ok
    assert results[0].diagnostics == results[1].diagnostics
    assert results[0].files == results[1].files == {}


def test_unused_types_are_found_across_shares(tmp_path: Path) -> None:
    src = tmp_path / "signatures"
    many_module_project(src)
    (src / "types.sig").write_text(
        "class Used { x: int }\nclass Unused { y: str }\nenum Lonely { a b }\n", encoding="utf-8"
    )
    for n in range(8):  # the users of `Used` land in several shares
        (src / f"user{n}.sig").write_text(
            "from types import Used\n"
            f"signature S{n} {{ in u: Used \"u\" out a: str \"a\" }}\n"
            f"predictor P{n} = predict(S{n})\n",
            encoding="utf-8",
        )
    results = [compile_sources(src, tmp_path / "generated", workers=n) for n in (1, 2, 3)]
    unused = [d.message for d in results[0].diagnostics if d.code == "W102"]
    assert "class `Unused` is not used by any field" in unused
    assert "enum `Lonely` is not used by any field" in unused
    assert not any("`Used`" in message for message in unused)
    for other in results[1:]:
        assert other.diagnostics == results[0].diagnostics
        assert other.files == results[0].files


def test_a_check_error_is_reported_as_by_one_process(tmp_path: Path) -> None:
    src = tmp_path / "signatures"
    many_module_project(src)
    (src / "broken.sig").write_text("signature B { in a: strr out b: str }\n", encoding="utf-8")
    results = [compile_sources(src, tmp_path / "generated", workers=n) for n in (1, 3)]
    assert [d.code for d in results[0].diagnostics if d.severity == "error"] == ["E201"]
    assert results[1].diagnostics == results[0].diagnostics
    assert results[0].files == results[1].files == {}


def test_spread_builds_leave_the_checked_modules_out(tmp_path: Path) -> None:
    src = tmp_path / "signatures"
    many_module_project(src)
    assert compile_sources(src, tmp_path / "generated", workers=1).modules
    assert compile_sources(src, tmp_path / "generated", workers=2).modules == {}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_build_collects_young_objects_less_and_leaves_the_collector_as_it_was(
    tmp_path: Path, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "signatures"
    many_module_project(src)
    before = gc.get_threshold()
    seen: list[int] = []  # the young generation's threshold at each collection while compiling
    compiling = False

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and compiling:
            seen.append(gc.get_threshold()[0])

    def recorded(*args: Any) -> Any:
        nonlocal compiling
        compiling = True
        try:
            return compile_units(*args)
        finally:
            compiling = False

    compile_units = pipeline._compile_units
    monkeypatch.setattr(pipeline, "_compile_units", recorded)
    gc.callbacks.append(record)
    try:
        result = compile_sources(src, tmp_path / "generated", workers=workers)
    finally:
        gc.callbacks.remove(record)
    assert result.ok
    assert seen and min(seen) >= YOUNG_COLLECTION_THRESHOLD  # it did collect, less often
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0  # nothing a spread build froze stays frozen


def test_objects_the_program_froze_stay_frozen(tmp_path: Path) -> None:
    src = tmp_path / "signatures"
    many_module_project(src)
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert compile_sources(src, tmp_path / "generated", workers=2).ok
        # not thawed (nor more frozen); some of those objects may have been freed meanwhile
        assert 0 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()
