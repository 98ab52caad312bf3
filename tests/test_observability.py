"""What predictors and LMs report while they run: callbacks, the history's repairs.

The callback machinery itself is tested in test_callbacks.py; here real predictors call
a real LM over HTTP and the hooks must see every step, nested, with errors.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from generated.qa import AnswerQuestionInputs, QuickAnswer
from sigforge.runtime import LM, Cache, Completion, RateLimitError, context
from sigforge.runtime.callbacks import Callback, LMCall, ModuleCall
from sigforge.runtime.history import last, repair_counts, reset_repair_counts
from sigforge.testing import OpenAICompatServer, Reply

CHAT = "[[ ## answer ## ]]\nParis\n\n[[ ## confidence ## ]]\n0.9\n\n[[ ## completed ## ]]"
INPUTS = AnswerQuestionInputs(context=["Paris is in France."], question="Capital?")


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any, Any]] = []

    def on_module_start(self, call: ModuleCall) -> None:
        self.events.append(("module_start", call, None))

    def on_module_end(
        self, call: ModuleCall, outputs: BaseModel | None, error: BaseException | None
    ) -> None:
        self.events.append(("module_end", call, outputs if error is None else error))

    def on_lm_request(self, call: LMCall) -> None:
        self.events.append(("lm_request", call, None))

    def on_lm_response(
        self, call: LMCall, completion: Completion | None, error: BaseException | None
    ) -> None:
        self.events.append(("lm_response", call, completion if error is None else error))

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.events]


def make_lm(server: OpenAICompatServer, **options: Any) -> LM:
    return LM(
        "openai/gpt-test",
        base_url=server.base_url,
        api_key="k",
        cache=False,
        backoff_base=0.001,
        backoff_max=0.002,
        **options,
    )


def test_hooks_see_the_predictor_and_its_lm_call_nested() -> None:
    recorder = Recorder()
    with OpenAICompatServer([CHAT]) as server, make_lm(server) as lm, context(callbacks=[recorder]):
        outputs = QuickAnswer(lm=lm).run(INPUTS)
    assert recorder.kinds() == ["module_start", "lm_request", "lm_response", "module_end"]
    (_, module, _), (_, request, _), (_, _, completion), (_, end, result) = recorder.events
    assert isinstance(module, ModuleCall) and isinstance(request, LMCall)
    assert module.predictor == "QuickAnswer" and module.signature == "AnswerQuestion"
    assert module.inputs == INPUTS and module.parent_id is None
    assert request.parent_id == module.call_id  # the LM call knows its predictor call
    assert (request.model, request.provider) == ("gpt-test", "openai")
    assert isinstance(completion, Completion) and completion.text == CHAT
    assert result == outputs and end is module


def test_failures_reach_the_end_hooks_and_still_raise() -> None:
    recorder = Recorder()
    limited = Reply(status=429, retry_after=0)
    with (
        OpenAICompatServer(default=limited) as server,
        make_lm(server, max_retries=1) as lm,
        context(callbacks=[recorder]),
        pytest.raises(RateLimitError),
    ):
        QuickAnswer(lm=lm).run(INPUTS)
    assert recorder.kinds() == ["module_start", "lm_request", "lm_response", "module_end"]
    assert isinstance(recorder.events[2][2], RateLimitError)
    assert isinstance(recorder.events[3][2], RateLimitError)


def test_own_callbacks_see_only_their_objects_calls_and_cache_hits_are_reported() -> None:
    lm_hooks, predictor_hooks = Recorder(), Recorder()
    with OpenAICompatServer([CHAT]) as server:
        lm = LM(
            "openai/m",
            base_url=server.base_url,
            api_key="k",
            callbacks=[lm_hooks],
            cache=Cache(disk=False),
        )
        with lm:
            QuickAnswer(lm=lm).run(INPUTS)
            QuickAnswer(lm=lm, callbacks=[predictor_hooks]).run(INPUTS)  # a cache hit
    assert lm_hooks.kinds() == ["lm_request", "lm_response"] * 2
    cached = lm_hooks.events[3][2]
    assert isinstance(cached, Completion) and cached.cached
    assert predictor_hooks.kinds() == ["module_start", "module_end"]


def test_a_raising_callback_does_not_break_the_prediction(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Callback):
        def on_lm_request(self, call: LMCall) -> None:
            raise RuntimeError("boom")

    with OpenAICompatServer([CHAT]) as server, make_lm(server) as lm, context(callbacks=[Broken()]):
        assert QuickAnswer(lm=lm).run(INPUTS).answer == "Paris"
    assert "boom" in caplog.text or "Broken.on_lm_request" in caplog.text


def test_async_calls_and_batches_are_reported_with_their_parents() -> None:
    recorder = Recorder()

    async def main(server: OpenAICompatServer) -> None:
        async with make_lm(server) as lm:
            await QuickAnswer(lm=lm).abatch([INPUTS] * 4, concurrency=4)

    with OpenAICompatServer(default=CHAT) as server, context(callbacks=[recorder]):
        asyncio.run(main(server))
    modules = {call.call_id for kind, call, _ in recorder.events if kind == "module_start"}
    parents = [call.parent_id for kind, call, _ in recorder.events if kind == "lm_request"]
    assert len(modules) == 4 and sorted(parents) == sorted(modules)  # each to its own


def test_repairs_are_recorded_on_the_call_and_counted() -> None:
    reset_repair_counts()
    sloppy = 'Sure! Here is the JSON:\n```json\n{"answer": "Paris", "confidence": "0.9",}\n```'
    with OpenAICompatServer([sloppy, CHAT]) as server, make_lm(server) as lm:
        predictor = QuickAnswer(lm=lm, adapter="json")
        assert predictor.run(INPUTS).confidence == 0.9
        clean = QuickAnswer(lm=lm).run(INPUTS)
    assert clean.answer == "Paris"
    sloppy_entry, clean_entry = last(2)
    assert sloppy_entry.repairs and clean_entry.repairs == ()
    counts = repair_counts()
    assert all(counts[name] >= 1 for name in sloppy_entry.repairs)
    assert sum(counts.values()) == len(sloppy_entry.repairs)


def test_each_call_in_the_history_knows_its_cost(capsys: pytest.CaptureFixture[str]) -> None:
    from sigforge.runtime.history import inspect_history
    from sigforge.runtime.pricing import price_for

    reply = Reply(content=CHAT, prompt_tokens=1_000_000, completion_tokens=1_000_000)
    with OpenAICompatServer([reply, CHAT]) as server:
        with LM("openai/gpt-4o-mini", base_url=server.base_url, api_key="k", cache=False) as lm:
            QuickAnswer(lm=lm).run(INPUTS)
        with make_lm(server) as unpriced:
            QuickAnswer(lm=unpriced).run(INPUTS)
    priced, unknown = last(2)
    price = price_for("openai", "gpt-4o-mini")
    assert price is not None and priced.cost == pytest.approx(price.input + price.output)
    assert unknown.cost is None  # "gpt-test" has no price: unknown, not free
    inspect_history(2)
    assert f"cost ${priced.cost:.6f}" in capsys.readouterr().out
