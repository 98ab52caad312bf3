"""A subfolder module importing from the root."""

from common import Citation, Priority

class Label {
    name: str                      "The label"
    priority: Priority             "Its urgency" = "normal"
    sources: list[Citation]        "Why it applies" = []
}

signature LabelText {
    in  text: str                  "The text to label"
    out labels: list[Label]        "Labels that apply"
}
