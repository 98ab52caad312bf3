"""mypy --strict accepts the generated package and a real pipeline, and catches misuse."""

from __future__ import annotations

import re
import subprocess
import sys

from support import ROOT


def run_mypy(*targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--hide-error-context",
         "--no-error-summary", "--show-column-numbers", *targets],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_generated_package_and_pipelines_type_check_as_expected() -> None:
    run = run_mypy("generated", "tests/typing/good_pipeline.py", "tests/typing/bad_pipeline.py")
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    outside_bad = [e for e in errors if not e.startswith("tests/typing/bad_pipeline.py")]
    assert outside_bad == [], run.stdout
    found = {(int(m.group(1)), m.group(2)) for e in errors if (m := re.match(r"[^:]+:(\d+):\d+: error: (.*)", e))}
    lines = {line for line, _ in found}
    assert lines == {7, 8, 9, 17, 18, 19, 26, 28, 30, 31}, run.stdout
    messages = " | ".join(message for _, message in sorted(found))
    assert 'Unexpected keyword argument "questoin"' in messages
    assert 'Argument "question" to "__call__" of "Answerer" has incompatible type "int"; expected "str"' in messages
    assert '"AnswerQuestionWithReasoningOutputs" has no attribute "answr"' in messages
    assert 'Argument "received" to "__call__" of "Triage" has incompatible type "str"; expected "datetime"' in messages
    assert 'Unexpected keyword argument "page" for "Citation"' in messages
    assert 'expression has type "str", variable has type "Priority"' in messages
    assert 'variable has type "LookupOrderFunction"' in messages
    assert '"Department" has no attribute "valuee"' in messages
    assert '"AnswerQuestionWithReasoningOutputsPartial" has no attribute "answr"' in messages
    assert 'expression has type "str | None", variable has type "str"' in messages
