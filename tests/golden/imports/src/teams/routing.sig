"""Imports from the root and from a sibling subfolder; a signature and a tool are imported too."""

from common import Citation, Summarize, search,
from shared.labels import Label

signature Route {
    in  summary: str               "A summary of the ticket"
    in  labels: list[Label]        "Labels of the ticket"
    out team: str                  "The team that should answer"
    out evidence: list[Citation]   "Passages that support the choice"
}

predictor Router = predict(Route)
predictor Summarizer = chain_of_thought(Summarize, adapter="json")
