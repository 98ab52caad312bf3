"""Field options: prefix, format, constraints and defaults."""

signature Review {
    """Review a pull request."""
    in  diff: str (min_length=1, max_length=100000, prefix="Patch:")  "The unified diff"
    in  language: str (pattern="^[a-z]+$")              "Language of the code" = "python"
    in  max_comments: int (ge=0, le=50)                 "At most this many" = 10
    in  threshold: float (gt=0.0, lt=1.0)               "Score cut-off" = 0.5
    in  reviewers: list[str] (min_items=1, max_items=5) "Who reviews" = ["alice", "bob"]
    in  labels: dict[str, int] (max_items=3)           "Label weights"
    in  strict: bool = True
    in  note: str | None (max_length=200)               "A note" = None
    out summary: str (format="markdown", prefix="Summary of the review:") "What changed"
    out comments: list[str] (max_items=50, format="one comment per item")  "Review comments"
    out score: float (ge=0.0, le=1.0)                   "Overall quality"
    out verdict: str (prefix="Verdict:") = "comment"
}

predictor Reviewer = predict(Review)
predictor ThoughtfulReviewer = chain_of_thought(Review, adapter="json")
