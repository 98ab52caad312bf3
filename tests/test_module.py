"""Module: user pipelines of generated predictors -- parts, copies, state files, typing."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_typing import run_mypy

from generated.qa import Answerer, AnswerQuestionWithReasoningOutputs, QuickAnswer
from sigforge.runtime.callbacks import Callback, ModuleCall
from sigforge.runtime.errors import StateError
from sigforge.runtime.messages import LMRequest
from sigforge.runtime.module import Module, load_program, save_program
from sigforge.runtime.settings import context
from sigforge.runtime.trace import recording
from sigforge.testing import ScriptedLM

QUICK = "[[ ## answer ## ]]\n{answer}\n\n[[ ## confidence ## ]]\n0.5\n\n[[ ## completed ## ]]"
COT = (
    "[[ ## reasoning ## ]]\nbecause\n\n[[ ## answer ## ]]\n{answer}\n\n"
    "[[ ## confidence ## ]]\n0.9\n\n[[ ## completed ## ]]"
)


def answering(request: LMRequest) -> str:
    """Answers with the last context passage, in whichever shape the prompt asks for."""
    system = str(request.messages[0]["content"])
    user = str(request.messages[-1]["content"])
    passages = re.findall(r"\[\[ ## context ## \]\]\n(.*?)\n\n", user, re.S)[0]
    last = json.loads(passages)[-1] if passages.startswith("[") else passages
    return (COT if "`reasoning`" in system else QUICK).format(answer=last)


class TwoStep(Module):
    def __init__(self) -> None:
        self.draft = QuickAnswer()
        self.answer = Answerer()
        self.label = "two-step"  # a plain attribute: shared by copies

    def forward(self, *, question: str, context: list[str]) -> AnswerQuestionWithReasoningOutputs:
        draft = self.draft(question=question, context=context)
        return self.answer(question=question, context=[*context, f"draft: {draft.answer}"])

    async def aforward(self, *, question: str, context: list[str]) -> AnswerQuestionWithReasoningOutputs:
        draft = await self.draft.acall(question=question, context=context)
        return await self.answer.acall(question=question, context=[*context, f"draft: {draft.answer}"])


class Nested(Module):
    def __init__(self) -> None:
        self.inner = TwoStep()
        self.hops = [QuickAnswer(), QuickAnswer()]
        self.by_name = {"final": Answerer()}
        self.again = self.hops[0]  # the same predictor twice: listed once


def test_named_predictors_walks_attributes_lists_dicts_and_submodules() -> None:
    program = Nested()
    names = [name for name, _ in program.named_predictors()]
    assert names == ["inner.draft", "inner.answer", "hops[0]", "hops[1]", "by_name['final']"]
    assert program.predictors()[2] is program.hops[0]
    lone = QuickAnswer()
    assert lone.named_predictors() == [("self", lone)]


def test_forward_runs_sync_and_async_with_the_same_result() -> None:
    lm = ScriptedLM(answering)
    with context(lm=lm):
        program = TwoStep()
        out = program(question="Who?", context=["Ada"])
        assert isinstance(out, AnswerQuestionWithReasoningOutputs)
        assert out.answer == "draft: Ada" and out.reasoning == "because"
        assert asyncio.run(program.acall(question="Who?", context=["Ada"])) == out
    assert lm.calls == 4


def test_per_predictor_lm_override_and_set_lm() -> None:
    default, big = ScriptedLM(answering, model="default"), ScriptedLM(answering, model="big")
    program = TwoStep()
    program.answer.lm = big
    with context(lm=default):
        program(question="Q", context=["x"])
    assert (default.calls, big.calls) == (1, 1)
    program.set_lm(big)
    program(question="Q", context=["x"])
    assert (default.calls, big.calls) == (1, 3)
    program.set_lm(None)
    assert all(p.lm is None for p in program.predictors())


def test_deepcopy_copies_parameters_and_shares_resources() -> None:
    lm = ScriptedLM(answering)
    program = Nested()
    program.hops[1].lm = lm
    program.inner.answer.instructions = "Be careful."
    copy = program.deepcopy()
    assert copy is not program and copy.inner is not program.inner
    assert copy.hops[1] is not program.hops[1] and copy.hops[1].lm is lm
    assert copy.again is copy.hops[0]  # identity inside the program is kept
    assert copy.inner.label is program.inner.label
    copy.inner.answer.instructions = "Changed."
    copy.hops[0].demos = [{"question": "q", "answer": "a"}]
    assert program.inner.answer.instructions == "Be careful."
    assert program.hops[0].demos == []
    # a copy's prompt cache is its own: changing one never changes the other's prompt
    inputs = QuickAnswer.signature.inputs(question="Q", context=["c"])
    before = program.inner.draft.format(inputs)
    clone = program.inner.draft.deepcopy()
    clone.instructions = "Other words."
    assert program.inner.draft.format(inputs) == before
    reset = program.reset_copy()
    assert all(p.demos == [] for p in reset.predictors())
    assert reset.inner.answer.instructions == "Be careful."


def test_save_and_load_round_trip_with_optimization_record(tmp_path: Path) -> None:
    program = TwoStep()
    program.answer.instructions = "Answer from the last passage."
    program.draft.demos = [{"question": "Capital of France?", "context": ["Paris"], "answer": "Paris"}]
    program.optimization = {"optimizer": "Manual", "seed": 7, "scores": {"dev": 0.5}}
    path = tmp_path / "two.optimized.json"
    program.save(path)
    data = json.loads(path.read_text())
    assert data["sigforge_program"] == 1 and data["program"] == "TwoStep"
    assert list(data["predictors"]) == ["draft", "answer"]
    assert data["optimization"]["seed"] == 7
    fresh = TwoStep()
    fresh.load(path)
    assert fresh.dump_state() == program.dump_state()
    assert fresh.optimization == program.optimization


def _saved(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    program = TwoStep()
    program.draft.demos = [{"question": "q", "answer": "a"}]
    path = tmp_path / "p.json"
    save_program(program, path)
    return path, json.loads(path.read_text())


def test_load_rejects_renamed_or_retyped_fields_and_changes_nothing(tmp_path: Path) -> None:
    path, data = _saved(tmp_path)
    fields = data["predictors"]["answer"]["fields"]
    fields["answr"] = fields.pop("answer")
    fields["confidence"] = "int"
    path.write_text(json.dumps(data))
    program = TwoStep()
    program.answer.instructions = "Keep me."
    with pytest.raises(StateError) as raised:
        program.load(path)
    message = str(raised.value)
    assert "'answer'" in message and "`answr`" in message and "no longer in the signature" in message
    assert "`confidence` was `int` when saved and is `float` now" in message
    assert program.answer.instructions == "Keep me." and program.draft.demos == []


def test_load_rejects_a_file_of_another_program_shape(tmp_path: Path) -> None:
    path, data = _saved(tmp_path)
    data["predictors"]["extra"] = data["predictors"].pop("draft")
    path.write_text(json.dumps(data))
    with pytest.raises(StateError, match=r"no state for 'draft'.*'extra'"):
        TwoStep().load(path)
    path.write_text("[1, 2]")
    with pytest.raises(StateError, match="expected a JSON object"):
        TwoStep().load(path)
    with pytest.raises(StateError, match="no such file"):
        load_program(TwoStep(), tmp_path / "missing.json")


def test_a_bad_demo_in_the_second_predictor_leaves_the_first_untouched(tmp_path: Path) -> None:
    path, data = _saved(tmp_path)
    data["predictors"]["answer"]["demos"] = [{"confidence": "very"}]
    path.write_text(json.dumps(data))
    program = TwoStep()
    with pytest.raises(StateError, match=r"'answer'.*confidence"):
        program.load(path)
    assert program.draft.demos == []


def test_trace_records_each_predictor_call_in_order() -> None:
    with context(lm=ScriptedLM(answering)):
        program = TwoStep()
        with recording() as steps:
            program(question="Who?", context=["Ada"])
        program(question="again", context=["x"])  # outside the block: not recorded
    assert [step.predictor for step in steps] == [program.draft, program.answer]
    assert steps[1].inputs.context == ["Ada", "draft: Ada"]  # type: ignore[attr-defined]
    assert steps[1].outputs.answer == "draft: Ada"  # type: ignore[attr-defined]


def test_config_and_rollout_reach_the_request_and_the_cache_key() -> None:
    seen: list[LMRequest] = []

    def reply(request: LMRequest) -> str:
        seen.append(request)
        return QUICK.format(answer=f"a{len(seen)}")

    lm = ScriptedLM(reply, cache=True)
    predictor = QuickAnswer(lm=lm, config={"temperature": 0.3})
    inputs = predictor.signature.inputs(question="Q", context=["c"])
    first = predictor.run(inputs)
    assert predictor.run(inputs) == first  # cached
    other = predictor.run(inputs, config={"rollout_id": 1, "temperature": 1.0})
    assert other != first and len(seen) == 2
    assert seen[0].params["temperature"] == 0.3 and seen[0].rollout_id is None
    assert seen[1].params["temperature"] == 1.0 and seen[1].rollout_id == 1
    assert "rollout_id" not in seen[1].params


def test_module_calls_reach_callbacks_with_their_keyword_arguments() -> None:
    calls: list[tuple[str, str, Any]] = []

    class Spy(Callback):
        def on_module_start(self, call: ModuleCall) -> None:
            calls.append(("start", call.predictor, call.parent_id))

        def on_module_end(self, call: ModuleCall, outputs: Any, error: BaseException | None) -> None:
            calls.append(("end", call.predictor, type(outputs).__name__))

    with context(lm=ScriptedLM(answering), callbacks=[Spy()]):
        TwoStep()(question="Who?", context=["Ada"])
    assert [c[:2] for c in calls] == [
        ("start", "TwoStep"), ("start", "QuickAnswer"), ("end", "QuickAnswer"),
        ("start", "Answerer"), ("end", "Answerer"), ("end", "TwoStep"),
    ]
    assert calls[0][2] is None and calls[1][2] is not None
    assert calls[-1][2] == "AnswerQuestionWithReasoningOutputs"


def test_module_calls_type_check_against_forward() -> None:
    run = run_mypy("tests/typing/module_good.py", "tests/typing/module_bad.py")
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    assert not [e for e in errors if "module_bad.py" not in e], run.stdout
    assert sorted(int(e.split(":")[1]) for e in errors) == [8, 9, 10, 14], run.stdout
    text = "\n".join(errors)
    assert 'Unexpected keyword argument "questoin"' in text
    assert 'Argument "question" to "__call__" of "Module" has incompatible type "int"' in text
    assert 'has no attribute "answr"' in text
    assert 'Argument "context" to "acall" of "Module" has incompatible type "str"' in text
