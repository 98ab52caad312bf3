"""Misuses of the example RAG pipeline that mypy --strict must reject (line numbers matter)."""

from __future__ import annotations

from examples.rag.pipeline import RAG
from generated.rag import CitedAnswerer
from sigforge.runtime.retrieval import Retriever


def misuse(rag: RAG, retriever: Retriever) -> None:
    rag(questoin="Who founded Stesby?")
    rag(question=42)
    out = rag(question="Who founded Stesby?")
    print(out.answr)
    cites: list[str] = out.citations
    CitedAnswerer()(question="q", passages="one passage, not a list")
    RAG(retriever, k="5")
    print(cites)
