"""The README's quick start as a pipeline: mypy --strict must accept it."""

from __future__ import annotations

from generated.classify import ReviewTagger, SentimentClassifier
from generated.qa import Answerer, AnswerQuestionWithReasoningOutputs, QuickAnswer
from sigforge.runtime import LM, configure


def answer(question: str, passages: list[str]) -> tuple[str, float]:
    out: AnswerQuestionWithReasoningOutputs = Answerer()(question=question, context=passages)
    reasoning: str = out.reasoning
    assert reasoning
    return out.answer, out.confidence


def quick(question: str) -> str:
    return QuickAnswer()(question=question, context=["..."]).answer


def triage(review: str) -> list[str]:
    sentiment = SentimentClassifier()(review=review)
    if sentiment.sentiment == "negative" and sentiment.confidence > 0.5:
        tags = ReviewTagger()(review=review, max_tags=5)
        summary: str | None = tags.summary
        return [*tags.tags, summary or ""]
    return []


async def answer_async(question: str) -> float:
    out = await Answerer().acall(question=question, context=["..."])
    return out.confidence


if __name__ == "__main__":
    configure(lm=LM("openai/gpt-4o-mini"))
    print(answer("Who wrote Dune?", ["Dune is a 1965 novel by Frank Herbert."]))
