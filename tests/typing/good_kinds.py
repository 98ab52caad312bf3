"""The module kinds as a user writes them: mypy --strict must accept all of it."""

from __future__ import annotations

import datetime

from generated.common import Citation
from generated.math import (
    Best,
    Judge,
    JudgeCompareOutputs,
    Polished,
    SolveMathInputs,
    SolveMathOutputs,
    SolveMathWithReasoningOutputs,
    Solver,
    SolverAnswerOutputs,
)
from generated.support import (
    Agent,
    AgentOutputs,
    AgentTools,
    AgentTrajectoryStep,
    LookupOrderCall,
    SearchKbCall,
)
from sigforge.runtime.modules import Finish, InvalidToolCall, Parallel
from sigforge.runtime.sandbox import SandboxLimits


def lookup_order(*, order_id: str, include_items: bool = False) -> dict[str, str]:
    return {"order_id": order_id, "status": "shipped"}


async def search_kb(*, query: str, limit: int = 3) -> list[Citation]:
    return [Citation(article_id=1, title=query)][:limit]


def triage(message: str) -> list[str]:
    agent = Agent(tools=AgentTools(lookup_order=lookup_order, search_kb=search_kb), max_iters=3)
    out: AgentOutputs = agent(message=message, received=datetime.datetime(2026, 1, 1))
    notes = [out.reply, out.reasoning, out.summary.title]
    step: AgentTrajectoryStep
    for step in out.trajectory:
        call = step.call
        if isinstance(call, LookupOrderCall):
            notes.append(call.order_id)
        elif isinstance(call, SearchKbCall):
            notes.append(f"{call.query} {call.limit}")
        elif isinstance(call, Finish):
            notes.append(call.tool)
        elif isinstance(call, InvalidToolCall):
            notes.append(call.error)
        notes.append(step.observation)
    return notes


def exact(inputs: SolveMathInputs, outputs: SolveMathOutputs) -> float:
    return 1.0 if outputs.answer > 0 and inputs.problem else 0.0


def reasoned(inputs: SolveMathInputs, outputs: SolveMathWithReasoningOutputs) -> float:
    return float(len(outputs.reasoning) > 0)


def solve(problem: str) -> float:
    best: SolveMathOutputs = Best(reward_fn=exact, threshold=1.0)(problem=problem)
    polished = Polished(reward_fn=reasoned, threshold=1.0, n=2)(problem=problem)
    judged: JudgeCompareOutputs = Judge()(problem=problem)
    solver = Solver(max_iters=2, limits=SandboxLimits(timeout=5.0, memory_mb=256))
    coded: SolverAnswerOutputs = solver(problem=problem)
    return best.answer + polished.answer + judged.answer + len(judged.rationale) + coded.answer


async def solve_async(problem: str) -> float:
    judged = await Judge().acall(problem=problem)
    best = await Best(reward_fn=lambda i, o: o.answer, threshold=2.0).acall(problem=problem)
    return judged.answer + best.answer


def many(problems: list[str]) -> int:
    judge = Judge()
    results = Parallel(concurrency=4).run([(judge, {"problem": p}) for p in problems])
    return len(results)
