"""best_of_n and refine: plain and chain-of-thought attempts, an imported signature."""

from predictors import Answer

signature Pun {
    """Write a pun about the topic."""
    in  topic: str     "The topic"
    out pun:   str     "One pun"
}

predictor TwoPuns = best_of_n(Pun, n=2)
predictor ThoughtfulPuns = best_of_n(Pun, n=3, module="chain_of_thought")
predictor BetterPun = refine(Pun, n=3)
predictor BetterAnswer = refine(Answer, n=2, module="chain_of_thought", adapter="json")
