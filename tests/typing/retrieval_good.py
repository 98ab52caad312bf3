"""Retrieved passages feed generated predictors as they are: mypy --strict accepts all of it."""

from __future__ import annotations

from generated.qa import Answerer, AnswerQuestionWithReasoningOutputs, QuickAnswer
from sigforge.runtime.module import Module
from sigforge.runtime.retrieval import Passage, Passages, Retriever, SQLiteVecStore


class RAG(Module):
    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever
        self.answer = Answerer()

    def forward(self, *, question: str) -> AnswerQuestionWithReasoningOutputs:
        passages = self.retriever.retrieve(question, k=3, filter={"lang": "en"})
        return self.answer(context=passages, question=question)

    async def aforward(self, *, question: str) -> AnswerQuestionWithReasoningOutputs:
        passages = await self.retriever.aretrieve(question)
        return await self.answer.acall(context=passages[:2], question=question)


def best(passages: Passages) -> tuple[str, float | None, str]:
    first: Passage = passages[0]
    for passage in passages:
        score: float | None = passage.score
        source: object = passage.metadata.get("source")
        print(score, source)
    passages.append("a plain string becomes a passage")
    return first.id, first.score, first.text


def quick(store: SQLiteVecStore, question: str) -> str:
    found = store.retrieve(question, k=2, search="approximate")
    one: str = found[0]
    return QuickAnswer()(context=[*found, one], question=one).answer
