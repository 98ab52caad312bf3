"""The example RAG pipeline as users call it: mypy --strict accepts all of it."""

from __future__ import annotations

from examples.rag.pipeline import RAG, CitedAnswer, answer_metric, load_questions
from generated.rag import AnswerWithCitationsWithReasoningOutputs, CitedAnswerer
from sigforge.runtime.embeddings import SentenceTransformerEmbedder
from sigforge.runtime.evaluate import Evaluate, EvaluationResult
from sigforge.runtime.retrieval import Passages, SQLiteVecStore, retriever_from_url


def build(url: str) -> RAG:
    return RAG(retriever_from_url(url, embedder=SentenceTransformerEmbedder()), k=3)


def ask(rag: RAG, question: str) -> tuple[str, list[int], str]:
    out: CitedAnswer = rag(question=question)
    first_cited = out.cited()[0] if out.cited() else None
    source = first_cited.metadata.get("source") if first_cited is not None else None
    return out.answer, out.citations, str(source)


async def ask_async(rag: RAG, question: str) -> CitedAnswer:
    return await rag.acall(question=question)


def answer_directly(store: SQLiteVecStore, question: str) -> AnswerWithCitationsWithReasoningOutputs:
    passages: Passages = store.retrieve(question, k=4)
    return CitedAnswerer()(question=question, passages=passages)


def score(rag: RAG) -> float:
    result: EvaluationResult[CitedAnswer] = Evaluate(load_questions("dev"), answer_metric)(rag)
    return result.score
