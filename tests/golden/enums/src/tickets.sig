"""Enums: plain members, explicit values, descriptions, defaults."""

enum Priority {
    """How urgent a ticket is."""
    low
    normal
    high
    urgent "Customer is blocked right now"
}

enum Channel {
    email
    live_chat = "live chat"          "The chat widget on the website"
    phone_call = "phone-call"
}

signature RouteTicket {
    """Decide how urgent a ticket is and where to answer it."""
    in  message: str                      "The customer's message"
    in  channel: Channel                  "Where the message came from"
    in  fallback: Priority                "Used when unsure" = "normal"
    out priority: Priority                "How urgent the ticket is"
    out reply_on: Channel = "email"
    out escalate_to: Priority | None      "A higher priority, if the customer asks for one"
}

predictor Router = predict(RouteTicket)
