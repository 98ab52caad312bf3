"""Callbacks: registration, dispatch, parent ids across threads and tasks, failure isolation."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pydantic import BaseModel

from sigforge.runtime.callbacks import (
    Callback,
    LMCall,
    ModuleCall,
    current_module_call_id,
    lm_requested,
    lm_responded,
    module_ended,
    module_started,
)
from sigforge.runtime.messages import Completion, LMRequest, Usage
from sigforge.runtime.settings import configure, context, current_callbacks


class Question(BaseModel):
    question: str


class Answer(BaseModel):
    answer: str


REQUEST = LMRequest(({"role": "user", "content": "Who wrote Dune?"},))


class Recorder(Callback):
    """Keeps every event it sees, in order, from any thread."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, Any, Any]] = []
        self._lock = threading.Lock()

    def _add(self, kind: str, call: Any, result: Any = None, error: Any = None) -> None:
        with self._lock:
            self.events.append((kind, call, result, error))

    def on_module_start(self, call: ModuleCall) -> None:
        self._add("module_start", call)

    def on_module_end(
        self, call: ModuleCall, outputs: BaseModel | None, error: BaseException | None
    ) -> None:
        self._add("module_end", call, outputs, error)

    def on_lm_request(self, call: LMCall) -> None:
        self._add("lm_request", call)

    def on_lm_response(
        self, call: LMCall, completion: Completion | None, error: BaseException | None
    ) -> None:
        self._add("lm_response", call, completion, error)

    def kinds(self) -> list[str]:
        return [kind for kind, *_ in self.events]

    def calls(self, kind: str) -> list[Any]:
        return [call for k, call, *_ in self.events if k == kind]


class Exploding(Callback):
    """Raises from every hook."""

    def on_module_start(self, call: ModuleCall) -> None:
        raise RuntimeError("boom in on_module_start")

    def on_module_end(
        self, call: ModuleCall, outputs: BaseModel | None, error: BaseException | None
    ) -> None:
        raise RuntimeError("boom in on_module_end")

    def on_lm_request(self, call: LMCall) -> None:
        raise RuntimeError("boom in on_lm_request")

    def on_lm_response(
        self, call: LMCall, completion: Completion | None, error: BaseException | None
    ) -> None:
        raise ValueError("boom in on_lm_response")


@pytest.fixture(autouse=True)
def _no_callbacks() -> Iterator[None]:
    configure(callbacks=[])
    yield
    configure(callbacks=[])


def predict(name: str = "Answerer", question: str = "q", own: tuple[Callback, ...] = ()) -> Answer:
    """What a predictor does around its LM call, through the dispatch functions."""
    call = module_started(name, "AnswerQuestion", Question(question=question), own)
    try:
        lm_call = lm_requested("gpt-4o-mini", "openai", REQUEST)
        completion = Completion(f"answer to {question}", Usage(10, 2), "gpt-4o-mini", "stop")
        lm_responded(lm_call, completion)
        outputs = Answer(answer=completion.text)
    except BaseException as exc:
        module_ended(call, None, exc)
        raise
    module_ended(call, outputs)
    return outputs


def test_without_callbacks_nothing_is_made_or_tracked() -> None:
    assert current_callbacks() == ()
    assert module_started("P", "S", Question(question="q")) is None
    assert current_module_call_id() is None
    assert lm_requested("m", "openai", REQUEST) is None
    lm_responded(None, Completion("x"))
    module_ended(None, Answer(answer="x"))
    assert predict().answer == "answer to q"


def test_one_prediction_is_seen_in_order_with_its_parent_ids() -> None:
    recorder = Recorder()
    configure(callbacks=[recorder])
    predict(question="Who wrote Dune?")
    assert recorder.kinds() == ["module_start", "lm_request", "lm_response", "module_end"]
    (_, module, _, _), (_, lm, _, _), (_, lm_again, completion, lm_error), (
        _,
        module_again,
        outputs,
        error,
    ) = recorder.events
    assert isinstance(module, ModuleCall)
    assert (module.predictor, module.signature) == ("Answerer", "AnswerQuestion")
    assert module.inputs == Question(question="Who wrote Dune?")
    assert module.parent_id is None
    assert isinstance(lm, LMCall)
    assert (lm.model, lm.provider, lm.request) == ("gpt-4o-mini", "openai", REQUEST)
    assert lm.parent_id == module.call_id
    assert lm.call_id != module.call_id
    assert lm_again is lm and module_again is module
    assert completion.text == "answer to Who wrote Dune?" and lm_error is None
    assert outputs == Answer(answer="answer to Who wrote Dune?") and error is None
    assert module.started <= lm.started
    assert current_module_call_id() is None  # restored after the call


def test_nested_module_calls_chain_their_parents() -> None:
    recorder = Recorder()
    configure(callbacks=[recorder])
    outer = module_started("Pipeline", "Outer", Question(question="q"))
    assert outer is not None and current_module_call_id() == outer.call_id
    predict("Inner")
    predict("Inner")
    assert current_module_call_id() == outer.call_id
    module_ended(outer, Answer(answer="done"))
    assert current_module_call_id() is None

    inners = [c for c in recorder.calls("module_start") if c.predictor == "Inner"]
    assert [c.parent_id for c in inners] == [outer.call_id, outer.call_id]
    lms = recorder.calls("lm_request")
    assert [c.parent_id for c in lms] == [c.call_id for c in inners]
    assert len({c.call_id for c in [outer, *inners, *lms]}) == 5


def test_errors_reach_the_end_hooks() -> None:
    recorder = Recorder()
    configure(callbacks=[recorder])
    call = module_started("P", "S", Question(question="q"))
    lm_call = lm_requested("m", "anthropic", REQUEST)
    failure = TimeoutError("read timed out")
    lm_responded(lm_call, None, failure)
    module_ended(call, None, failure)
    assert recorder.events[2] == ("lm_response", lm_call, None, failure)
    assert recorder.events[3] == ("module_end", call, None, failure)


def test_own_callbacks_see_only_their_objects_calls_and_are_not_doubled() -> None:
    everywhere, mine = Recorder(), Recorder()
    configure(callbacks=[everywhere])
    predict("Mine", own=(mine,))
    predict("Other")
    assert [c.predictor for c in mine.calls("module_start")] == ["Mine"]
    assert mine.kinds() == ["module_start", "module_end"]  # the LM had no own callbacks
    assert [c.predictor for c in everywhere.calls("module_start")] == ["Mine", "Other"]

    # registered in both places: notified once
    predict("Both", own=(everywhere,))
    assert [c.predictor for c in everywhere.calls("module_start")] == ["Mine", "Other", "Both"]

    # an LM's own callbacks, with nothing registered in the settings
    configure(callbacks=[])
    lm_only = Recorder()
    call = lm_requested("m", "gemini", REQUEST, (lm_only,))
    lm_responded(call, Completion("x"))
    assert lm_only.kinds() == ["lm_request", "lm_response"]


def test_context_replaces_callbacks_for_a_block_and_nests() -> None:
    outer, inner = Recorder(), Recorder()
    configure(callbacks=[outer])
    with context(callbacks=[inner]):
        assert current_callbacks() == (inner,)
        predict("A")
        with context(callbacks=[*current_callbacks(), outer]):
            assert current_callbacks() == (inner, outer)
            predict("B")
        with context(callbacks=[]):
            assert module_started("C", "S", Question(question="q")) is None
    assert current_callbacks() == (outer,)
    predict("D")
    assert [c.predictor for c in inner.calls("module_start")] == ["A", "B"]
    assert [c.predictor for c in outer.calls("module_start")] == ["B", "D"]


def test_registration_checks_types() -> None:
    with pytest.raises(TypeError, match="list of Callback"):
        configure(callbacks=Recorder())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="list of Callback"):
        configure(callbacks="recorder")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Callback objects"):
        configure(callbacks=[object()])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="Callback objects"), context(callbacks=[len]):  # type: ignore[list-item]
        pass
    assert current_callbacks() == ()
    configure(callbacks=(r for r in [Recorder()]))  # any iterable, kept as a tuple
    assert len(current_callbacks()) == 1


def test_a_raising_callback_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before, after = Recorder(), Recorder()
    configure(callbacks=[before, Exploding(), after])
    with caplog.at_level(logging.ERROR, logger="sigforge"):
        assert predict().answer == "answer to q"
    assert before.kinds() == after.kinds() == [
        "module_start",
        "lm_request",
        "lm_response",
        "module_end",
    ]
    records = [r for r in caplog.records if r.name == "sigforge"]
    assert [r.getMessage() for r in records] == [
        f"callback Exploding.{hook} raised; the call goes on without it"
        for hook in ("on_module_start", "on_lm_request", "on_lm_response", "on_module_end")
    ]
    assert all(r.exc_info is not None for r in records)
    assert "boom in on_lm_response" in caplog.text  # the traceback is kept


def test_parent_ids_follow_asyncio_tasks_and_do_not_leak_between_them() -> None:
    recorder = Recorder()
    configure(callbacks=[recorder])

    async def lm_call(tag: str) -> None:
        await asyncio.sleep(0)
        call = lm_requested(tag, "openai", REQUEST)
        await asyncio.sleep(0)
        lm_responded(call, Completion(tag))

    async def module(name: str) -> str:
        call = module_started(name, "S", Question(question=name))
        assert call is not None
        await asyncio.sleep(0)
        await asyncio.gather(lm_call(f"{name}-1"), lm_call(f"{name}-2"))
        assert current_module_call_id() == call.call_id
        module_ended(call, Answer(answer=name))
        return call.call_id

    async def main() -> list[str]:
        return list(await asyncio.gather(*(module(f"m{i}") for i in range(5))))

    ids = asyncio.run(main())
    modules = {c.predictor: c for c in recorder.calls("module_start")}
    assert [modules[f"m{i}"].call_id for i in range(5)] == ids
    assert all(m.parent_id is None for m in modules.values())
    lms = recorder.calls("lm_request")
    assert len(lms) == 10
    for lm in lms:
        owner = lm.model.split("-")[0]
        assert lm.parent_id == modules[owner].call_id


def test_parent_ids_follow_threads_run_in_a_copied_context() -> None:
    recorder = Recorder()
    configure(callbacks=[recorder])
    call = module_started("Fanout", "S", Question(question="q"))
    assert call is not None

    def lm_work(tag: str) -> None:
        lm_call = lm_requested(tag, "openai", REQUEST)
        lm_responded(lm_call, Completion(tag))

    with ThreadPoolExecutor(4) as pool:
        futures = [
            pool.submit(contextvars.copy_context().run, lm_work, f"copied-{i}") for i in range(8)
        ]
        for future in futures:
            future.result(10)

    async def via_to_thread() -> None:
        await asyncio.gather(*(asyncio.to_thread(lm_work, f"to_thread-{i}") for i in range(3)))

    asyncio.run(via_to_thread())  # asyncio.run copies the current context into its task

    plain = threading.Thread(target=lm_work, args=("plain",))
    plain.start()
    plain.join(10)
    module_ended(call, Answer(answer="x"))

    parents = {c.model: c.parent_id for c in recorder.calls("lm_request")}
    assert {k for k, v in parents.items() if v == call.call_id} == {
        *(f"copied-{i}" for i in range(8)),
        *(f"to_thread-{i}" for i in range(3)),
    }
    # a plain thread starts from the process defaults: the callback (configured process-wide)
    # sees it, but it is not inside the module call
    assert parents["plain"] is None


def test_context_callbacks_reach_copied_threads_but_not_plain_ones() -> None:
    recorder = Recorder()

    def lm_work(tag: str) -> None:
        lm_responded(lm_requested(tag, "openai", REQUEST), Completion(tag))

    with context(callbacks=[recorder]):
        copied = threading.Thread(target=contextvars.copy_context().run, args=(lm_work, "copied"))
        plain = threading.Thread(target=lm_work, args=("plain",))
        for thread in (copied, plain):
            thread.start()
            thread.join(10)
    assert [c.model for c in recorder.calls("lm_request")] == ["copied"]


def test_concurrent_dispatch_from_many_threads() -> None:
    recorder = Recorder()
    configure(callbacks=[recorder])
    start = threading.Barrier(8)

    def worker(index: int) -> None:
        start.wait(10)
        for round_ in range(50):
            predict(f"T{index}", question=f"T{index}-{round_}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    modules = recorder.calls("module_start")
    lms = recorder.calls("lm_request")
    assert len(modules) == len(lms) == 400
    assert len({c.call_id for c in modules + lms}) == 800
    by_id = {m.call_id: m for m in modules}
    for _, lm, completion, _ in (e for e in recorder.events if e[0] == "lm_response"):
        # each LM call's parent is the very module call (same thread, same round) that made it
        parent = by_id[lm.parent_id]
        assert completion.text == f"answer to {parent.inputs.question}"
        assert parent.parent_id is None
    ends = recorder.calls("module_end")
    assert sorted(c.call_id for c in ends) == sorted(by_id)
