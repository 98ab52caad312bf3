"""Predictors of every kind, over signatures with and without inputs."""

signature Answer {
    """Answer the question."""
    in  question: str              "The question"
    in  context: list[str]         "Passages" = []
    out answer: str                "The answer"
}

signature Joke {
    out text: str                  "A short joke"
}

predictor Plain = predict(Answer)
predictor PlainJson = predict(Answer, adapter="json")
predictor PlainChat = predict(Answer, adapter="chat")
predictor Thinker = chain_of_thought(Answer)
predictor ThinkerJson = chain_of_thought(Answer, adapter="json",)
predictor Teller = predict(Joke)
predictor ThinkingTeller = chain_of_thought(Joke)
