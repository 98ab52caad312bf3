"""Classes: nested, recursive, with defaults (an enum default included)."""

enum Status {
    draft
    normal
    archived "Kept for reference only"
}

class Author {
    """Who wrote a section."""
    name: str (min_length=1)    "Full name"
    email: str | None           "Contact address" = None
}

class Section {
    """A section of a document; sections nest."""
    heading: str                              "The section heading"
    authors: list[Author]                     "Who wrote it" = []
    status: Status                            "Editorial state" = "normal"
    subsections: list[Section]                "Sections inside this one" = []
    parent: Section | None                    "The enclosing section" = None
    weight: float (ge=0.0, le=1.0) = 0.5
}

class Outline {
    title: str
    sections: list[Section] (min_items=1)     "Top-level sections"
    by_status: dict[Status, list[Section]] | None "Sections grouped by state" = None
}

signature OutlineDocument {
    """Outline the document: its sections, nested as they appear."""
    in  text: str                "The document"
    out outline: Outline         "The document's outline"
    out lead_author: Author | None "The main author, if named"
}

predictor Outliner = chain_of_thought(OutlineDocument)
