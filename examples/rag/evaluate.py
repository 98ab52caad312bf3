"""Evaluate the example RAG pipeline on its question set.

.. code-block:: bash

    sigforge index examples/rag/corpus --store sqlite-vec:///tmp/rag.db --embedder local
    python -m examples.rag.evaluate --store sqlite-vec:///tmp/rag.db

The store is opened with the local MiniLM embedder (the one ``--embedder local`` indexed
with); the answers come from the honest simulated reader
(:class:`sigforge.testing.rag.RAGWorld`, which answers only from the passages in its
prompt) unless ``--lm PROVIDER/MODEL`` names a real model. Prints the results table and
the report: answer accuracy, recall@k, accuracy on answerable and unanswerable
questions, citation accuracy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sigforge.runtime.embeddings import SentenceTransformerEmbedder
from sigforge.runtime.evaluate import Evaluate, EvaluationResult
from sigforge.runtime.lm import LM, BaseLM
from sigforge.runtime.retrieval import Retriever, VectorStore, retriever_from_url
from sigforge.testing.rag import RAGWorld

from .pipeline import RAG, CitedAnswer, RAGReport, answer_metric, load_questions, summarize

__all__ = ["evaluate", "main"]


def evaluate(
    retriever: Retriever,
    *,
    k: int = 5,
    split: str | None = "dev",
    lm: BaseLM | None = None,
    threads: int = 4,
    table: int = 0,
    results_path: Path | None = None,
) -> tuple[EvaluationResult[CitedAnswer], RAGReport]:
    """Run :class:`RAG` over the questions of ``split`` and score it.

    ``lm``: the model answering (default: a fresh :class:`RAGWorld`'s LM).
    """
    rag = RAG(retriever, k=k)
    rag.set_lm(lm if lm is not None else RAGWorld().lm())
    run = Evaluate(
        load_questions(split),
        answer_metric,
        num_threads=threads,
        display_table=table,
        results_path=results_path,
    )
    result = run(rag)
    return result, summarize(result, k)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate the example RAG pipeline.")
    parser.add_argument("--store", required=True, help="the store `sigforge index` built (URL)")
    parser.add_argument("--k", type=int, default=5, help="passages retrieved per question")
    parser.add_argument("--split", choices=["dev", "train", "all"], default="dev")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--table", type=int, default=0, help="rows of the results table to print")
    parser.add_argument("--results", type=Path, help="write per-question results (JSON Lines)")
    parser.add_argument("--lm", help="a real model (PROVIDER/MODEL) instead of the simulated one")
    parser.add_argument("--base-url", help="base URL of an OpenAI-compatible server for --lm")
    args = parser.parse_args(argv)

    retriever = retriever_from_url(args.store, embedder=SentenceTransformerEmbedder())
    if isinstance(retriever, VectorStore) and retriever.count() == 0:
        print(
            f"{args.store} is empty: first run\n"
            f"  sigforge index examples/rag/corpus --store {args.store} --embedder local",
            file=sys.stderr,
        )
        return 1
    lm = LM(args.lm, base_url=args.base_url) if args.lm else None
    _, report = evaluate(
        retriever,
        k=args.k,
        split=None if args.split == "all" else args.split,
        lm=lm,
        threads=args.threads,
        table=args.table,
        results_path=args.results,
    )
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
