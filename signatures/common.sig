"""Types shared by several signature files."""

enum Priority {
    low
    normal
    high
    urgent "Customer is blocked right now"
}

class Citation {
    """A passage from the help center."""
    article_id: int        (ge=1) "The article's number"
    title:      str               "The article's title"
    quote:      str | None        "The sentence that supports the answer" = None
}
