"""Retrieval-augmented question answering with citations (examples/rag)."""

# The pipeline in examples/rag/pipeline.py retrieves the passages from a vector store.

signature AnswerWithCitations {
    """
    Answer the question using only the given passages.
    Cite the passages the answer comes from by their position (the first passage is 1).
    If the passages do not contain the answer, answer "I don't know" and cite nothing.
    """
    in  question:  str                        "The user's question"
    in  passages:  list[str]                  "Retrieved passages, best first"
    out answer:    str       (max_length=300) "A short factoid answer, or I don't know"
    out citations: list[int]                  "Positions of the passages used, counting from 1"
}

predictor CitedAnswerer = chain_of_thought(AnswerWithCitations)
