"""Sentiment and topic classification of product reviews."""

signature ClassifySentiment {
    """Classify the sentiment of a product review."""
    in  review:     str                    "The review text"
    out sentiment: Literal["positive", "negative", "neutral"] "The overall tone"
    out confidence: float (ge=0.0, le=1.0) "Confidence between 0 and 1"
}

signature TagReview {
    """
    Tag a product review with the product aspects it mentions.
    Only use aspects that the review actually talks about.
    """
    in  review:   str                             "The review text"
    in  language: str | None "ISO code of the review's language, if known" = None
    in  max_tags: int              (ge=1, le=10)  "How many tags at most" = 3
    out tags:     list[str]        (max_items=10) "Lower-case aspect names, e.g. battery"
    out scores:   dict[str, float]                "Sentiment per tag, -1 to 1"
    out needs_follow_up: bool "Whether support should contact the customer"
    out summary:  str | None                      "One-sentence summary, if the review is long"
}

predictor SentimentClassifier = predict(ClassifySentiment)
predictor ReviewTagger = chain_of_thought(TagReview, adapter="json")
