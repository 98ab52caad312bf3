"""Shared types at the root of the project."""

enum Priority {
    low
    normal
    high
}

class Citation {
    """A passage from the help center."""
    article_id: int (ge=1)    "The article's number"
    title: str                "The article's title"
    quote: str | None         "The sentence that supports the answer" = None
}

tool search(query: str "What to look for") -> list[Citation] "Search the help center"

signature Summarize {
    in  text: str             "The text"
    out summary: str          "One paragraph"
}
