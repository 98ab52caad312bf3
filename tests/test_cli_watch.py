"""`sigforge watch`, run as a user runs it: a subprocess that is edited under and then stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from support import ROOT

pytest.importorskip("watchfiles")

QA = (ROOT / "signatures" / "qa.sig").read_text(encoding="utf-8")
DEADLINE = 10.0  # seconds for any one step; the whole test takes a few


class Watch:
    """A running `sigforge watch` whose stdout and stderr are drained by threads into one log."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sigforge.codegen", "watch", "--interval", "0.05", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._lines: list[str] = []
        self._lock = threading.Lock()
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._drain, args=(stream,), daemon=True)
            for stream in (self.process.stdout, self.process.stderr)
        ]
        for reader in self._readers:
            reader.start()

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            with self._lock:
                self._lines.append(line)

    @property
    def log(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(f"watch exited ({self.process.returncode}) before {what}:\n{self.log}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}:\n{self.log}")
            time.sleep(0.02)

    def wait_for_output(self, text: str, *, after: int = 0) -> int:
        """Wait until ``text`` is printed after log offset ``after``; return the offset past it."""
        self.wait_until(lambda: text in self.log[after:], f"{text!r} in the output")
        log = self.log
        return log.index(text, after) + len(text)

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=DEADLINE)
        for reader in self._readers:
            reader.join(timeout=DEADLINE)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=DEADLINE)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "signatures").mkdir()
    (tmp_path / "signatures" / "qa.sig").write_text(QA, encoding="utf-8")
    return tmp_path


@pytest.fixture
def start_watch(project: Path) -> Iterator[Callable[..., Watch]]:
    started: list[Watch] = []

    def start(*args: str) -> Watch:
        started.append(Watch(project, *args))
        return started[-1]

    try:
        yield start
    finally:
        for watch in started:
            watch.kill()


@pytest.mark.timeout(30)
def test_regenerates_on_every_change_survives_errors_and_stops_on_ctrl_c(
    project: Path, start_watch: Callable[..., Watch]
) -> None:
    sig = project / "signatures" / "qa.sig"
    generated = project / "generated" / "qa.py"
    watch = start_watch()
    seen = watch.wait_for_output("generated: 3 written")
    assert 'description="Relevant passages"' in generated.read_text()

    sig.write_text(QA.replace('"Relevant passages"', '"Passages to answer from"'))
    watch.wait_until(
        lambda: 'description="Passages to answer from"' in generated.read_text(),
        "the new description in the generated module",
    )
    seen = watch.wait_for_output("1 written (qa.py), 2 unchanged", after=seen)
    regenerated = generated.read_text()

    sig.write_text("signature X {\n  question: str\n}\n")
    seen = watch.wait_for_output(
        "signatures/qa.sig:2:3: error[E102]: unexpected name `question`", after=seen
    )
    seen = watch.wait_for_output("1 error; nothing was written.", after=seen)
    assert generated.read_text() == regenerated

    sig.write_text(QA.replace('"Relevant passages"', '"Passages to answer from"'))
    seen = watch.wait_for_output("0 written, 3 unchanged", after=seen)

    sig.unlink()
    watch.wait_until(lambda: not generated.exists(), "the generated module to be deleted")
    watch.wait_for_output("1 deleted (qa.py)", after=seen)

    assert watch.stop(signal.SIGINT) == 0
    assert "stopped watching" in watch.log
    assert "Traceback" not in watch.log


@pytest.mark.timeout(30)
def test_sigterm_stops_with_status_0(project: Path, start_watch: Callable[..., Watch]) -> None:
    watch = start_watch("--format", "json")
    watch.wait_for_output("generated: 3 written")
    assert watch.stop(signal.SIGTERM) == 0
    assert "Traceback" not in watch.log


@pytest.mark.timeout(30)
def test_out_inside_src_gives_one_build_per_edit(
    project: Path, start_watch: Callable[..., Watch]
) -> None:
    """The files a build writes into --out start no build of their own: no feedback loop."""
    (project / "signatures" / "qa.sig").rename(project / "qa.sig")
    watch = start_watch("--src", ".", "--out", "generated")
    seen = watch.wait_for_output("generated: 3 written")
    for description in ("First", "Second"):
        (project / "qa.sig").write_text(QA.replace('"Relevant passages"', f'"{description}"'))
        seen = watch.wait_for_output("1 written (qa.py), 2 unchanged", after=seen)
    assert watch.stop(signal.SIGINT) == 0
    assert watch.log.count(" written") == 3, watch.log


def test_only_sources_outside_out_start_a_build(tmp_path: Path) -> None:
    from watchfiles import Change

    from sigforge.codegen.cli import _WatchSession

    (tmp_path / "moved" / "deep").mkdir(parents=True)
    (tmp_path / "moved" / "deep" / "a.sig").write_text(QA)
    (tmp_path / "other").mkdir()
    session = _WatchSession(tmp_path, tmp_path / "generated", "text", "show", frozenset())
    session.built = {tmp_path / "gone" / "b.sig": (0, 0)}
    relevant = session.is_source_change
    assert relevant(Change.modified, str(tmp_path / "qa.sig"))
    assert relevant(Change.deleted, str(tmp_path / "qa.sig"))
    assert not relevant(Change.modified, str(tmp_path / "qa.py"))
    assert not relevant(Change.added, str(tmp_path / "generated" / "qa.sig"))
    assert not relevant(Change.added, str(tmp_path / "generated"))
    assert relevant(Change.added, str(tmp_path / "moved"))  # a folder of sources moved in
    assert not relevant(Change.added, str(tmp_path / "other"))
    assert relevant(Change.deleted, str(tmp_path / "gone"))  # a folder of sources removed
    assert not relevant(Change.deleted, str(tmp_path / "unrelated"))


@pytest.mark.timeout(30)
def test_a_foreign_file_in_out_is_reported_and_watching_goes_on(
    project: Path, start_watch: Callable[..., Watch]
) -> None:
    (project / "generated").mkdir()
    (project / "generated" / "qa.py").write_text("# my own code\n")
    watch = start_watch()
    seen = watch.wait_for_output("refusing to overwrite files that sigforge did not generate")
    (project / "generated" / "qa.py").unlink()
    (project / "signatures" / "qa.sig").write_text(QA + "\n")
    watch.wait_for_output("generated: 3 written", after=seen)
    assert watch.stop(signal.SIGINT) == 0


def test_missing_source_folder_is_a_usage_error(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "sigforge.codegen", "watch"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert "does not exist" in run.stderr
