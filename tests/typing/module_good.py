"""A user pipeline built on Module: mypy --strict must accept all of it (see test_module.py)."""

from __future__ import annotations

import asyncio

from generated.qa import Answerer, AnswerQuestionWithReasoningOutputs, QuickAnswer
from sigforge.runtime.module import Module


class TwoStep(Module):
    def __init__(self) -> None:
        self.draft = QuickAnswer()
        self.answer = Answerer()

    def forward(self, *, question: str, context: list[str]) -> AnswerQuestionWithReasoningOutputs:
        draft = self.draft(question=question, context=context)
        return self.answer(question=question, context=[*context, draft.answer])

    async def aforward(self, *, question: str, context: list[str]) -> AnswerQuestionWithReasoningOutputs:
        draft = await self.draft.acall(question=question, context=context)
        return await self.answer.acall(question=question, context=[*context, draft.answer])


pipeline = TwoStep()
result: AnswerQuestionWithReasoningOutputs = pipeline(question="Who?", context=["..."])
confidence: float = result.confidence
copy: TwoStep = pipeline.deepcopy()


async def main() -> str:
    out = await pipeline.acall(question="Who?", context=[])
    return out.reasoning


asyncio.run(main())
