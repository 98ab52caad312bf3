"""Misuses mypy --strict must report (see tests/test_retrieval_passage.py)."""

from __future__ import annotations

from generated.qa import Answerer
from sigforge.runtime.retrieval import Passages, Retriever


def wrong(retriever: Retriever, passages: Passages) -> list[int]:
    Answerer()(context=passages[0], question="q")
    retriever.retrieve("q", k="3")
    print(passages[0].score.real)
    return passages
