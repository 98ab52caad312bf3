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


def triage_ticket(message: str) -> tuple[str, list[int]]:
    """Enums, classes, imports between files, dates and images, all typed."""
    import datetime

    from generated.common import Citation, Priority
    from generated.support import (
        LookupOrderFunction,
        QuickTriage,
        Triage,
        TriageTicketWithReasoningOutputs,
    )
    from sigforge.runtime import Image

    def lookup(*, order_id: str, include_items: bool = False) -> dict[str, str]:
        return {"status": "shipped", "id": order_id}

    tool: LookupOrderFunction = lookup
    assert tool(order_id="AB-123456")["status"]
    out: TriageTicketWithReasoningOutputs = Triage()(
        message=message,
        received=datetime.datetime(2026, 11, 21, 9, 30),
        screenshot=Image.from_url("https://example.com/s.png"),
        articles=[Citation(article_id=1, title="Refunds")],
    )
    urgent: bool = out.summary.priority is Priority.urgent
    due: datetime.date | None = out.follow_up_by
    first, second = out.scores
    quick = QuickTriage()(message=message, received=datetime.datetime(2026, 1, 1))
    return f"{out.summary.department.value} {urgent} {due} {first + second}", [
        c.article_id for c in quick.citations
    ]


def stream_answer(question: str) -> str:
    """Streaming: typed partials (every field optional), then the typed outputs."""
    from generated.qa import AnswerQuestionOutputs, AnswerQuestionOutputsPartial
    from sigforge.runtime.streaming import PredictionStream

    stream: PredictionStream[AnswerQuestionOutputsPartial, AnswerQuestionOutputs]
    with QuickAnswer().stream(question=question, context=["..."]) as stream:
        for partial in stream:
            shown: str | None = partial.answer
            sure: float | None = partial.confidence
            print(shown or "", sure)
        out: AnswerQuestionOutputs = stream.final()
    return out.answer


def stream_ticket(message: str) -> list[str]:
    """Partials of declared classes are their partial models, in lists too."""
    import datetime

    from generated.common import CitationPartial
    from generated.support import QuickTriage, TicketSummaryPartial

    titles: list[str] = []
    stream = QuickTriage().stream(message=message, received=datetime.datetime(2026, 1, 1))
    for partial in stream:
        summary: TicketSummaryPartial | None = partial.summary
        cited: list[CitationPartial] = partial.citations or []
        titles += [c.title or "" for c in cited]
        if summary is not None and summary.department is not None:
            titles.append(summary.department.value)
    return titles + [c.title for c in stream.final().citations]


async def stream_reasoning(question: str) -> str:
    stream = Answerer().astream(question=question, context=["..."])
    async for partial in stream:
        thought: str | None = partial.reasoning
        print(thought)
    return (await stream.final()).reasoning
