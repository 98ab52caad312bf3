"""Misuse of a Module pipeline: mypy --strict must report each marked line (see test_module.py)."""

from __future__ import annotations

from module_good import TwoStep

pipeline = TwoStep()
pipeline(questoin="Who?", context=[])  # error: misspelled keyword
pipeline(question=1, context=[])  # error: wrong type
print(pipeline(question="Who?", context=[]).answr)  # error: no such output


async def main() -> None:
    await pipeline.acall(question="Who?", context="one passage")  # error: str is not list[str]
