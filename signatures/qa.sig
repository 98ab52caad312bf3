"""Question answering over retrieved passages."""

# One file becomes one generated module: generated/qa.py.

signature AnswerQuestion {
    """
    Answer the question using only the given context.
    Be concise and accurate.
    """
    in  context:    list[str] (min_items=1)    "Relevant passages"
    in  question:   str                        "The user's question"
    out answer:     str       (max_length=500) "A short factoid answer"
    out confidence: float     (ge=0.0, le=1.0) "How sure the answer is, 0 to 1"
}

predictor Answerer = chain_of_thought(AnswerQuestion)
predictor QuickAnswer = predict(AnswerQuestion)
