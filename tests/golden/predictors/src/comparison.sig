"""multi_chain_comparison: the default m and m=2."""

signature Estimate {
    """Estimate the quantity."""
    in  question: str     "What to estimate"
    out estimate: float   "The estimate"
}

predictor Panel = multi_chain_comparison(Estimate)
predictor Pair = multi_chain_comparison(Estimate, m=2, adapter="json")
