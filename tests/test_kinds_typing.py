"""mypy --strict accepts the module kinds used as intended and rejects their misuse:
tools that do not match the declared tool signatures, misspelled inputs and outputs,
reward functions over the wrong models."""

from __future__ import annotations

import re
import subprocess
import sys

from support import ROOT

GOOD = "tests/typing/good_kinds.py"
BAD = "tests/typing/bad_kinds.py"


def test_kinds_type_check_as_expected() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--hide-error-context",
         "--no-error-summary", "--show-column-numbers", GOOD, BAD],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    assert [e for e in errors if not e.startswith(BAD)] == [], run.stdout
    found: dict[int, list[str]] = {}
    for error in errors:
        match = re.match(r"[^:]+:(\d+):\d+: error: (.*)", error)
        assert match, error
        found.setdefault(int(match.group(1)), []).append(match.group(2))
    source = (ROOT / BAD).read_text(encoding="utf-8").splitlines()
    # every deliberate mistake is a line of code with a comment, and nothing else is
    mistakes = {n: line for n, line in enumerate(source, 1) if "  # " in line and not line.startswith("#")}
    assert sorted(found) == sorted(mistakes), run.stdout
    text = {mistakes[line].split("  # ")[1]: " | ".join(messages) for line, messages in found.items()}
    tools = 'Argument "lookup_order" to "AgentTools" has incompatible type'
    expected = "LookupOrderFunction | LookupOrderAsyncFunction"
    for mistake in (
        "order_id is a str",
        "no parameter order_id",
        "returns dict[str, str]",
        "async, order_id still a str",
        "a wrong tool inside",
    ):
        assert tools in text[mistake] and expected in text[mistake], text[mistake]
    assert 'Argument "tools" to "Agent" has incompatible type' in text["not the tools dataclass"]
    assert 'Unexpected keyword argument "messag"' in text["misspelled input"]
    assert '"list[AgentTrajectoryStep]", variable has type "int"' in text["a list of steps"]
    assert '"SolveMathOutputs" has no attribute "answr"' in text["misspelled output"]
    assert 'Argument "reward_fn" to "Best" has incompatible type' in text["outputs of another signature"]
    assert 'Unexpected keyword argument "problme"' in text["misspelled input of a kind"]
    assert '"JudgeCompareOutputs" has no attribute "reasoning"' in text["the comparison's outputs have `rationale`"]
