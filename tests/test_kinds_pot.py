"""program_of_thought: generated code runs in the real sandbox; errors go back for repair.

The scripted LM reads its prompts: it writes code for the numbers in the problem (with a
typo the first time), repairs the code using the error it is shown, and answers from
the output the code printed. It never computes the answer itself.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from support import generate_package, import_generated

from sigforge.runtime import LMRequest
from sigforge.runtime.modules import ProgramOfThought, ProgramOfThoughtError
from sigforge.runtime.modules.program_of_thought import extract_code
from sigforge.runtime.sandbox import SandboxLimits
from sigforge.testing import ScriptedLM

SOURCE = '''"""Word problems solved with code."""

signature Average {
    """Compute what the problem asks for."""
    in  problem: str   "A word problem"
    out answer:  float "The numeric answer"
}

predictor Solver = program_of_thought(Average)
'''


@pytest.fixture(scope="module")
def math(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    root = tmp_path_factory.mktemp("pot")
    (root / "src").mkdir()
    (root / "src" / "problems.sig").write_text(SOURCE, encoding="utf-8")
    generate_package(root / "src", root, "kinds_pot")
    return import_generated("kinds_pot", "problems")


def sections(text: str) -> dict[str, str]:
    parts = re.split(r"\[\[ ## (\w+) ## \]\]\n", text.split("\n\nRespond with")[0])
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def reply(**fields: object) -> str:
    body = "\n\n".join(f"[[ ## {name} ## ]]\n{value}" for name, value in fields.items())
    return body + "\n\n[[ ## completed ## ]]"


def first_code(problem: str) -> str:
    numbers = [int(n) for n in re.findall(r"\d+", problem)]
    if "forever" in problem:
        return "while True:\n    pass"
    if "quietly" in problem:
        return f"numbers = {numbers}\naverage = sum(numbers) / len(numbers)"
    if "impossible" in problem:
        return "raise ValueError('no way')"
    # a typo the first time: `number` for `numbers`
    return f"numbers = {numbers}\nprint(sum(numbers) / len(number))"


def repaired(code: str, error: str) -> str:
    if "is not defined" in error:
        return code.replace("len(number)", "len(numbers)")
    if "timed out" in error or "CPU time limit" in error:
        return "print(1 + 1)"
    if "printed nothing" in error:
        return code + "\nprint(average)"
    return code  # it does not know how to fix other errors


def model(request: LMRequest) -> str:
    system = str(request.messages[0]["content"])
    user = sections(str(request.messages[-1]["content"]))
    outputs = system.split("Your output fields are:")[1].split("All interactions")[0]
    if "`code_output`" in system.split("Your output fields are:")[0]:
        return reply(reasoning="The code printed it.", answer=user["code_output"])
    assert "`generated_code`" in outputs
    if "previous_code" in user:
        code = repaired(user["previous_code"], user["error"])
        return reply(reasoning=f"Fixing: {user['error']}", generated_code=f"```python\n{code}\n```")
    return reply(reasoning="Average the numbers.", generated_code=f"```python\n{first_code(user['problem'])}\n```")


def roles(lm: ScriptedLM) -> list[str]:
    found = []
    for request in lm.requests:
        user = sections(str(request.messages[-1]["content"]))
        found.append("answer" if "code_output" in user else "regenerate" if "previous_code" in user else "generate")
    return found


def test_code_with_an_error_is_repaired_then_answered(math: ModuleType) -> None:
    lm = ScriptedLM(model)
    solver = math.Solver(lm=lm)
    assert isinstance(solver, ProgramOfThought)
    out = solver(problem="What is the average of 3, 5 and 10?")
    assert isinstance(out, math.SolverAnswerOutputs)
    assert out.answer == 6.0
    assert roles(lm) == ["generate", "regenerate", "answer"]
    repair = sections(str(lm.requests[1].messages[-1]["content"]))
    assert repair["error"] == "NameError: name 'number' is not defined"
    assert repair["previous_code"] == "numbers = [3, 5, 10]\nprint(sum(numbers) / len(number))"  # fences gone
    answer = sections(str(lm.requests[2].messages[-1]["content"]))
    assert answer["final_generated_code"] == "numbers = [3, 5, 10]\nprint(sum(numbers) / len(numbers))"
    assert answer["code_output"] == "6.0"
    assert [name for name, _ in solver.named_predictors()] == ["generate", "regenerate", "answer"]


def test_code_that_prints_nothing_is_sent_back(math: ModuleType) -> None:
    lm = ScriptedLM(model)
    out = math.Solver(lm=lm)(problem="Average 2 and 4 quietly.")
    assert out.answer == 3.0
    repair = sections(str(lm.requests[1].messages[-1]["content"]))
    assert repair["error"].startswith("the code printed nothing")


def test_after_max_iters_a_typed_error_names_the_last_error(math: ModuleType) -> None:
    lm = ScriptedLM(model)
    with pytest.raises(ProgramOfThoughtError) as caught:
        math.Solver(lm=lm)(problem="Something impossible.")
    error = caught.value
    assert (error.attempts, error.error, error.code) == (3, "ValueError: no way", "raise ValueError('no way')")
    assert "no code ran successfully in 3 attempts; the last error: ValueError: no way" in str(error)
    assert roles(lm) == ["generate", "regenerate", "regenerate"]  # max_iters=3, DSPy's default
    with pytest.raises(ProgramOfThoughtError):
        math.Solver(lm=ScriptedLM(model), max_iters=1)(problem="Something impossible.")


@pytest.mark.parametrize(
    ("limits", "error"),
    [
        # Each limit is set well inside the other, so which one stops the loop never depends on load.
        (SandboxLimits(timeout=1.0, cpu_seconds=30), "timed out after 1s"),
        (SandboxLimits(timeout=30.0, cpu_seconds=1), "CPU time limit of 1s exceeded"),
    ],
)
def test_sandbox_limits_are_configurable(math: ModuleType, limits: SandboxLimits, error: str) -> None:
    lm = ScriptedLM(model)
    solver = math.Solver(lm=lm, limits=limits)
    assert solver.sandbox.limits == limits
    out = solver(problem="Loop forever, then say 2.")
    assert out.answer == 2.0
    repair = sections(str(lm.requests[1].messages[-1]["content"]))
    assert repair["error"] == error


def test_async_runs_the_code_as_a_subprocess_of_the_loop(math: ModuleType) -> None:
    lm = ScriptedLM(model)

    async def main() -> Any:
        return await math.Solver(lm=lm).acall(problem="What is the average of 1, 2 and 6?")

    assert asyncio.run(main()).answer == 3.0
    assert roles(lm) == ["generate", "regenerate", "answer"]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("```python\nprint(1)\n```", "print(1)"),
        ("Here:\n```py\nx = 1\nprint(x)\n```\nDone.", "x = 1\nprint(x)"),
        ("```\nprint(2)\n```", "print(2)"),
        ("print(3)\n", "print(3)"),
        ("```python\nprint(4)", "print(4)"),  # an unclosed fence
        ("```python\n```", ""),
    ],
)
def test_code_is_taken_out_of_fences(text: str, code: str) -> None:
    assert extract_code(text) == code


def test_empty_code_never_reaches_the_sandbox(math: ModuleType, tmp_path: Path) -> None:
    answers = iter(
        [
            reply(reasoning="", generated_code="```python\n```"),
            reply(reasoning="Now with code.", generated_code="print(5)"),
            reply(reasoning="Printed.", answer="5"),
        ]
    )
    lm = ScriptedLM(lambda request: next(answers))
    assert math.Solver(lm=lm)(problem="Say five.").answer == 5.0
    repair = sections(str(lm.requests[1].messages[-1]["content"]))
    assert repair["error"].startswith("the generated code is empty")
