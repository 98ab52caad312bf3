"""react end to end: real Python tools, real HTTP to the loopback OpenAI-compatible server.

The server's responder plays the model honestly: it reads the prompt the agent sends
(the question, the trajectory of earlier turns and their observations) and decides the
next call from what it sees -- it writes the order number as the customer did, fixes it
when an observation says the call was invalid, gives up after an execution error, and
answers from the order data the tool returned. It is never told the orders or answers.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from support import generate_package, import_generated

from sigforge.runtime import LM, ConfigurationError
from sigforge.runtime.modules import Finish, InvalidToolCall, ReAct
from sigforge.runtime.trace import recording
from sigforge.testing import OpenAICompatServer, RecordedRequest, Reply

SOURCE = '''"""An order-support agent."""

class Order {
    order_id: str   "The order number"
    status:   str   "Where the order is"
    total:    float "What it cost"
}

tool lookup_order(order_id: str (pattern="^[A-Z]{2}-\\\\d{6}$") "Order number, e.g. AB-123456") -> Order "Fetch an order"
tool refund(order_id: str "Order number", amount: float (gt=0) "How much to refund") -> str "Refund an order"

signature Support {
    """Answer the customer's question about their order."""
    in  question:     str          "The customer's question"
    out answer:       str          "The reply to the customer"
    out order_status: str | None   "The order's status, if known"
}

predictor Agent = react(Support, tools=[lookup_order, refund], max_iters=4)
predictor JsonAgent = react(Support, tools=[lookup_order, refund], adapter="json")
'''


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    root = tmp_path_factory.mktemp("react")
    (root / "src").mkdir()
    (root / "src" / "orders.sig").write_text(SOURCE, encoding="utf-8")
    generate_package(root / "src", root, "kinds_react")
    return import_generated("kinds_react", "orders")


# ---------------------------------------------------------------- the tools (real code)


@dataclass
class Store:
    """The shop's orders; the tools read and change it."""

    orders: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "AB-123456": {"status": "shipped", "total": 42.5},
            "CD-654321": {"status": "processing", "total": 10.0},
        }
    )
    refunds: list[tuple[str, float]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)


def sync_tools(module: ModuleType, store: Store) -> Any:
    def lookup_order(*, order_id: str) -> Any:
        store.lookups.append(order_id)
        data = store.orders[order_id]  # KeyError for an unknown order
        return module.Order(order_id=order_id, **data)

    def refund(*, order_id: str, amount: float) -> str:
        order = store.orders[order_id]
        if amount > order["total"]:
            raise ValueError(f"cannot refund {amount} of an order of {order['total']}")
        store.refunds.append((order_id, amount))
        return f"Refunded {amount:.2f} on {order_id}"

    return module.AgentTools(lookup_order=lookup_order, refund=refund)


def async_tools(module: ModuleType, store: Store) -> Any:
    async def lookup_order(*, order_id: str) -> Any:
        await asyncio.sleep(0)
        store.lookups.append(order_id)
        return module.Order(order_id=order_id, **store.orders[order_id])

    async def refund(*, order_id: str, amount: float) -> str:
        await asyncio.sleep(0)
        store.refunds.append((order_id, amount))
        return f"Refunded {amount:.2f} on {order_id}"

    return module.AgentTools(lookup_order=lookup_order, refund=refund)


# ---------------------------------------------------------------- the model


def sections(text: str) -> dict[str, str]:
    parts = re.split(r"\[\[ ## (\w+) ## \]\]\n", text.split("\n\nRespond with")[0])
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def chat_reply(**fields: object) -> str:
    body = "\n\n".join(f"[[ ## {name} ## ]]\n{value}" for name, value in fields.items())
    return body + "\n\n[[ ## completed ## ]]"


def shown_turns(user: dict[str, str]) -> list[tuple[str, dict[str, Any], str]]:
    """The (thought, call, observation) of each turn shown in the prompt."""
    numbers = sorted(int(k.split("_")[1]) for k in user if k.startswith("thought_"))
    return [
        (user[f"thought_{i}"], json.loads(user[f"next_call_{i}"]), user[f"observation_{i}"])
        for i in numbers
    ]


def decide(question: str, turns: list[tuple[str, dict[str, Any], str]]) -> tuple[str, dict[str, Any]]:
    """The next thought and call, from the question and what the turns observed."""
    written = re.search(r"[A-Za-z]{2}-\d+", question)
    order_id = written.group(0) if written else ""
    if "cancel" in question and not turns:
        return "Cancel it.", {"tool": "cancel_order", "order_id": order_id}
    if not turns:
        return f"I need the order {order_id}.", {"tool": "lookup_order", "order_id": order_id}
    last = turns[-1][2]
    if last.startswith("Invalid call of `lookup_order`"):
        return "The number must be in capitals.", {"tool": "lookup_order", "order_id": order_id.upper()}
    if last.startswith(("Execution error", "Invalid call")):
        return "That failed; I will say so.", {"tool": "finish"}
    if "keep checking" in question:
        return "Check again.", {"tool": "lookup_order", "order_id": order_id.upper()}
    if "refund" in question and last.startswith("{"):
        order = json.loads(last)
        return "Refund it in full.", {"tool": "refund", "order_id": order["order_id"], "amount": order["total"]}
    return "I have what I need.", {"tool": "finish"}


def answer(turns: list[tuple[str, dict[str, Any], str]]) -> dict[str, Any]:
    orders = [json.loads(obs) for _, _, obs in turns if obs.startswith("{")]
    refunds = [obs for _, _, obs in turns if obs.startswith("Refunded")]
    if not orders:
        return {"reasoning": "No order data came back.", "answer": "Sorry, I could not find that order.", "order_status": None}
    order = orders[-1]
    text = f"Order {order['order_id']} is {order['status']}."
    if refunds:
        text += f" {refunds[-1]}."
    return {"reasoning": "From the order data.", "answer": text, "order_status": order["status"]}


def model(request: RecordedRequest) -> str | Reply:
    system = str(request.messages[0]["content"])
    user = sections(str(request.messages[-1]["content"]))
    turns = shown_turns(user)
    json_mode = "response_format" in request.json
    if "`next_call`" in system:
        if "small context" in user["question"] and len(turns) > 2:
            return Reply(status=400, error_message="This model's maximum context length is 2000 tokens.")
        thought, call = decide(user["question"], turns)
        if json_mode:
            return json.dumps({"thought": thought, "next_call": call})
        return chat_reply(thought=thought, next_call=json.dumps(call))
    if "small context" in user["question"] and len(turns) > 2:
        return Reply(status=400, error_message="This model's maximum context length is 2000 tokens.")
    fields = answer(turns)
    if json_mode:
        return json.dumps(fields)
    return chat_reply(
        reasoning=fields["reasoning"], answer=fields["answer"], order_status=fields["order_status"]
    )


@pytest.fixture
def server() -> Iterator[OpenAICompatServer]:
    with OpenAICompatServer(model, max_lifetime=120) as running:
        yield running


@pytest.fixture
def lm(server: OpenAICompatServer) -> Iterator[LM]:
    client = LM("openai/gpt-4o-mini", base_url=server.base_url, api_key="sk-test", cache=False)
    yield client
    client.close()


def calls(server: OpenAICompatServer) -> list[str]:
    """Which predictor each request was for, in order."""
    return ["step" if "`next_call`" in str(r.messages[0]["content"]) else "extract" for r in server.requests]


# ---------------------------------------------------------------- tests


def test_invalid_arguments_are_fed_back_and_corrected(agents: ModuleType, server: OpenAICompatServer, lm: LM) -> None:
    store = Store()
    agent = agents.Agent(tools=sync_tools(agents, store), lm=lm)
    assert isinstance(agent, ReAct)
    out = agent(question="Where is my order ab-123456?")
    assert isinstance(out, agents.AgentOutputs)
    assert (out.answer, out.order_status) == ("Order AB-123456 is shipped.", "shipped")
    assert out.reasoning == "From the order data."
    first, second, third = out.trajectory
    assert isinstance(first.call, InvalidToolCall)
    assert first.call.tool == "lookup_order" and first.call.written == {"tool": "lookup_order", "order_id": "ab-123456"}
    assert first.observation.startswith("Invalid call of `lookup_order`: order_id: String should match pattern")
    assert second.call == agents.LookupOrderCall(tool="lookup_order", order_id="AB-123456")
    assert json.loads(second.observation) == {"order_id": "AB-123456", "status": "shipped", "total": 42.5}
    assert isinstance(third.call, Finish) and third.observation == "Completed."
    assert store.lookups == ["AB-123456"]  # the invalid call never reached the tool
    assert calls(server) == ["step", "step", "step", "extract"]
    assert server.violations == []
    # the prompt of the second turn shows the first as sections
    user = str(server.requests[1].messages[-1]["content"])
    assert "[[ ## trajectory ## ]]\n[[ ## thought_0 ## ]]\nI need the order ab-123456.\n\n" in user
    assert '[[ ## next_call_0 ## ]]\n{"tool": "lookup_order", "order_id": "ab-123456"}\n\n' in user
    assert "[[ ## observation_0 ## ]]\nInvalid call of `lookup_order`" in user


def test_a_tool_that_raises_is_an_observation(agents: ModuleType, server: OpenAICompatServer, lm: LM) -> None:
    store = Store()
    out = agents.Agent(tools=sync_tools(agents, store), lm=lm)(question="Where is ZZ-999999?")
    assert out.answer == "Sorry, I could not find that order." and out.order_status is None
    first, second = out.trajectory
    assert first.observation == "Execution error in lookup_order: KeyError: 'ZZ-999999'"
    assert isinstance(second.call, Finish)
    assert calls(server) == ["step", "step", "extract"]


def test_a_tool_with_side_effects_and_an_unknown_tool(agents: ModuleType, server: OpenAICompatServer, lm: LM) -> None:
    store = Store()
    agent = agents.Agent(tools=sync_tools(agents, store), lm=lm)
    out = agent(question="Please refund CD-654321.")
    assert store.refunds == [("CD-654321", 10.0)]
    assert out.answer == "Order CD-654321 is processing. Refunded 10.00 on CD-654321."
    assert [type(t.call).__name__ for t in out.trajectory] == ["LookupOrderCall", "RefundCall", "Finish"]
    out = agent(question="Please cancel AB-123456.")
    first = out.trajectory[0]
    assert isinstance(first.call, InvalidToolCall) and first.call.tool == "cancel_order"
    assert "Input tag 'cancel_order' found using 'tool' does not match any of the expected tags" in first.observation


def test_max_iters_bounds_the_turns_then_extraction_runs(agents: ModuleType, server: OpenAICompatServer, lm: LM) -> None:
    store = Store()
    out = agents.Agent(tools=sync_tools(agents, store), lm=lm)(question="keep checking AB-123456")
    assert len(out.trajectory) == 4  # max_iters=4 from the .sig file, no finish
    assert all(isinstance(t.call, agents.LookupOrderCall) for t in out.trajectory)
    assert out.order_status == "shipped"
    assert calls(server) == ["step"] * 4 + ["extract"]
    short = agents.Agent(tools=sync_tools(agents, store), lm=lm, max_iters=2)
    assert len(short(question="keep checking AB-123456").trajectory) == 2


def test_the_oldest_turns_leave_the_prompt_when_the_context_overflows(
    agents: ModuleType, server: OpenAICompatServer, lm: LM, caplog: pytest.LogCaptureFixture
) -> None:
    agent = agents.Agent(tools=sync_tools(agents, Store()), lm=lm)
    out = agent(question="keep checking AB-123456 (small context)")
    assert caplog.text.count("leaving out the oldest turn") == 2
    assert len(out.trajectory) == 4  # the agent keeps every turn
    last_prompt = str(server.requests[-1].messages[-1]["content"])
    assert "thought_0" not in last_prompt and "thought_1" not in last_prompt
    assert "[[ ## thought_2 ## ]]" in last_prompt and "[[ ## thought_3 ## ]]" in last_prompt
    refused = [r for r in server.requests if "thought_2" in str(r.messages[-1]["content"]) and "thought_0" in str(r.messages[-1]["content"])]
    assert len(refused) == 1  # turns 0-2 were too much once; then turn 0 was left out


def test_async_tools_under_acall(agents: ModuleType, server: OpenAICompatServer) -> None:
    store = Store()

    async def main() -> Any:
        client = LM("openai/gpt-4o-mini", base_url=server.base_url, api_key="sk-test", cache=False)
        try:
            agent = agents.Agent(tools=async_tools(agents, store), lm=client)
            return await agent.acall(question="Please refund AB-123456.")
        finally:
            await client.aclose()

    out = asyncio.run(main())
    assert store.refunds == [("AB-123456", 42.5)]
    assert out.answer == "Order AB-123456 is shipped. Refunded 42.50 on AB-123456."


def test_async_tools_under_a_blocking_call(agents: ModuleType, server: OpenAICompatServer, lm: LM) -> None:
    store = Store()
    agent = agents.Agent(tools=async_tools(agents, store), lm=lm)
    assert agent(question="Where is AB-123456?").order_status == "shipped"  # run on a loop of its own

    async def inside_a_loop() -> None:
        agent(question="Where is AB-123456?")

    with pytest.raises(ConfigurationError, match="the tool `lookup_order` is async"):
        asyncio.run(inside_a_loop())


def test_the_json_adapter_agent(agents: ModuleType, server: OpenAICompatServer, lm: LM) -> None:
    store = Store()
    out = agents.JsonAgent(tools=sync_tools(agents, store), lm=lm)(question="Where is ab-123456?")
    assert out.order_status == "shipped" and len(out.trajectory) == 3
    step_request = server.requests[0].json
    schema = step_request["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["next_call"]["anyOf"][2] == {"$ref": "#/$defs/Finish"}
    assert server.violations == []


def test_steps_are_traced_and_the_agent_is_a_program(
    agents: ModuleType, server: OpenAICompatServer, lm: LM, tmp_path: Path
) -> None:
    tools = sync_tools(agents, Store())
    agent = agents.Agent(tools=tools, lm=lm)
    with recording() as steps:
        agent(question="Where is AB-123456?")
    assert [s.predictor for s in steps] == [agent.step, agent.step, agent.extract]
    assert steps[0].outputs.next_call == agents.LookupOrderCall(tool="lookup_order", order_id="AB-123456")
    assert [name for name, _ in agent.named_predictors()] == ["step", "extract"]
    # a step demo, as an optimizer would bootstrap it, saved and loaded
    agent.step.demos = [agent.step.make_demo(steps[0].inputs, steps[0].outputs)]
    path = tmp_path / "agent.json"
    agent.save(path)
    fresh = agents.Agent(tools=tools, lm=lm)
    fresh.load(path)
    assert fresh.step.demos == agent.step.demos
    copy = agent.deepcopy()
    assert copy.tools is agent.tools and copy.step is not agent.step


def test_missing_tool_functions_are_a_configuration_error(agents: ModuleType) -> None:
    @dataclass(frozen=True)
    class HalfTools:
        lookup_order: Callable[..., Any]

    with pytest.raises(ConfigurationError, match="no function for the tool"):
        agents.Agent(tools=HalfTools(lookup_order=lambda **_: None))


def test_generated_prompt_constants_match_the_generated_classes(agents: ModuleType) -> None:
    """The step's prompt describes the tool calls from the very classes that validate them."""
    from sigforge.runtime.adapters import adapter_for
    from sigforge.runtime.adapters.types import (
        field_spec,
        output_json_schema,
        signature_output_schema,
    )

    formats = {agents.AgentStep: {"chat"}, agents.AgentExtract: {"chat"}, agents.JsonAgentStep: {"json"}}
    for sig, expected in formats.items():
        assert set(sig.prompts) == expected  # the format of the predictor that runs it
        for name, parts in sig.prompts.items():
            assert parts == adapter_for(name).prompts(sig.input_fields, sig.output_fields, sig.instructions)
    outputs = agents.AgentStepOutputs
    outputs.model_rebuild()
    union = outputs.model_fields["next_call"].annotation
    assert outputs.model_fields["next_call"].discriminator == "tool"
    spec = agents.AgentStep.output_fields[1]
    assert spec == field_spec(
        "next_call", union, description=spec.description, is_input=False
    )
    assert spec.type_name == "Union[LookupOrderCall, RefundCall, Finish]"
    # generated for the JSON agent's step; the chat agent's made from its model on first use
    assert "output_schema" in vars(agents.JsonAgentStep)
    assert "output_schema" not in vars(agents.AgentStep)
    for sig in (agents.JsonAgentStep, agents.AgentStep):
        sig.outputs.model_rebuild()
        made = output_json_schema({name: info.annotation for name, info in sig.outputs.model_fields.items()})
        assert signature_output_schema(sig) == made
    assert vars(agents.AgentStep)["output_schema"] == made
    assert "(1) lookup_order(order_id: str) -> Order: Fetch an order" in agents.AgentStep.instructions
    assert "(3) finish(): call it when" in agents.AgentStep.instructions
