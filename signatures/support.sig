"""Customer-support triage: shared types, a tool and typed predictors."""

from common import Citation, Priority

enum Department {
    """Which team handles a ticket."""
    billing   "Invoices, refunds and payment methods"
    technical "Bugs, outages and how-to questions"
    account   "Sign-in, profile and account closure"
}

class TicketSummary {
    """What the ticket is about, in a structured form."""
    title:      str                 (max_length=80) "One-line summary"
    department: Department                          "The team that should handle it"
    priority:   Priority                            "How urgent it is" = "normal"
    tags:       list[str]                           "Free-form keywords" = []
    related:    list[TicketSummary]                 "Earlier tickets on the same problem" = []
}

tool lookup_order(
    order_id:      str (pattern="^[A-Z]{2}-\\d{6}$") "Order number, e.g. AB-123456",
    include_items: bool = False,
) -> dict[str, str] "Fetch an order's status"

tool search_kb(
    query: str (min_length=1) "What to look for",
    limit: int (ge=1, le=10)  "How many articles at most" = 3,
) -> list[Citation] "Search the help-center articles"

signature TriageTicket {
    """
    Read a customer's message and triage it for the support team.
    Cite the help-center articles that back the suggested reply.
    """
    in  message:      str            (min_length=1)      "The customer's message"
    in  screenshot:   Image | None                       "A screenshot the customer attached" = None
    in  received:     datetime                           "When the message arrived"
    in  articles:     list[Citation]                     "Help-center articles that may apply" = []
    out summary:      TicketSummary                      "The structured ticket"
    out reply:        str            (format="markdown") "A suggested first reply"
    out citations:    list[Citation]                     "Articles the reply relies on"
    out follow_up_by: date | None                        "When to check back, if needed"
    out scores: tuple[float, float] (prefix="Scores:") "Confidence in department and priority"
}

predictor Triage = chain_of_thought(TriageTicket)
predictor QuickTriage = predict(TriageTicket, adapter="json")
# An agent: thinks, calls the tools (typed: see AgentTools), then triages.
predictor Agent = react(TriageTicket, tools=[lookup_order, search_kb], max_iters=5)
