"""Deliberate mistakes with the module kinds: mypy --strict must report each one
(tests/test_kinds_typing.py lists them by line)."""

from __future__ import annotations

import datetime

from generated.common import Citation
from generated.math import Best, Judge, SolveMathInputs, Solver
from generated.qa import AnswerQuestionOutputs
from generated.support import Agent, AgentTools


def search_kb(*, query: str, limit: int = 3) -> list[Citation]:
    return []


def lookup_int(*, order_id: int, include_items: bool = False) -> dict[str, str]:
    return {}


def lookup_renamed(*, order: str, include_items: bool = False) -> dict[str, str]:
    return {}


def lookup_returns_text(*, order_id: str, include_items: bool = False) -> str:
    return ""


async def lookup_async_int(*, order_id: int, include_items: bool = False) -> dict[str, str]:
    return {}


def wrong(inputs: SolveMathInputs, outputs: AnswerQuestionOutputs) -> float:
    return 0.0


AgentTools(lookup_order=lookup_int, search_kb=search_kb)  # order_id is a str
AgentTools(lookup_order=lookup_renamed, search_kb=search_kb)  # no parameter order_id
AgentTools(lookup_order=lookup_returns_text, search_kb=search_kb)  # returns dict[str, str]
AgentTools(lookup_order=lookup_async_int, search_kb=search_kb)  # async, order_id still a str
Agent(tools=search_kb)  # not the tools dataclass
out = Agent(tools=AgentTools(lookup_order=lookup_renamed, search_kb=search_kb))  # a wrong tool inside
res = out(messag="Hi", received=datetime.datetime.now())  # misspelled input
steps: int = out(message="Hi", received=datetime.datetime.now()).trajectory  # a list of steps
Best(reward_fn=lambda inputs, outputs: outputs.answr, threshold=1.0)  # misspelled output
Best(reward_fn=wrong, threshold=1.0)  # outputs of another signature
Solver()(problme="2+2")  # misspelled input of a kind
print(Judge()(problem="2+2").reasoning)  # the comparison's outputs have `rationale`
