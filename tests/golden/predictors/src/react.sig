"""react: a local tool and an imported one; defaults and the JSON adapter."""

from agent_tools import lookup

enum Unit {
    metric
    imperial
}

tool convert(value: float "The amount", unit: Unit "The target unit" = "metric") -> float "Convert an amount"

tool now() -> datetime

signature Question {
    """Answer the question with the tools."""
    in  question: str          "The question"
    out answer:   str          "The answer"
    out sure:     bool         "Whether the tools confirmed it"
}

predictor Agent = react(Question, tools=[convert, lookup], max_iters=4)
predictor ClockAgent = react(Question, tools=[now], adapter="json")
