"""batch / abatch: input order, per-item errors, fail-fast, context, progress; truncation."""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

import pytest

from generated.qa import AnswerQuestionInputs, AnswerQuestionOutputs, QuickAnswer
from sigforge.runtime import (
    LM,
    BadRequestError,
    OutputParseError,
    SigforgeError,
    TruncatedOutputError,
    context,
)
from sigforge.testing import OpenAICompatServer, RecordedRequest, Reply


def reply_for(question: str) -> str:
    return f"[[ ## answer ## ]]\nanswer to {question}\n\n[[ ## confidence ## ]]\n0.5\n\n[[ ## completed ## ]]"


def question_of(request: RecordedRequest) -> str:
    text = request.messages[-1]["content"]
    return str(text).split("[[ ## question ## ]]\n", 1)[1].split("\n", 1)[0]


def echo(request: RecordedRequest) -> str | Reply:
    """Answers each question after a random short delay, so completion order is shuffled;
    questions starting with "bad" get HTTP 400."""
    question = question_of(request)
    delay = random.uniform(0, 0.01)
    if question.startswith("bad"):
        return Reply(status=400, error_message=f"refused {question}", delay=delay)
    return Reply(content=reply_for(question), delay=delay)


def make_lm(server: OpenAICompatServer) -> LM:
    return LM("openai/m", base_url=server.base_url, api_key="sk-test", cache=False)


def inputs(*questions: str) -> list[AnswerQuestionInputs]:
    return [AnswerQuestionInputs(context=["c"], question=q) for q in questions]


def test_results_come_back_in_input_order() -> None:
    questions = [f"q{i}" for i in range(40)]
    with OpenAICompatServer(echo) as server, make_lm(server) as lm:
        results = QuickAnswer(lm=lm).batch(inputs(*questions), concurrency=6)
    assert [r.answer for r in results if isinstance(r, AnswerQuestionOutputs)] == [
        f"answer to {q}" for q in questions
    ]
    assert len(server.requests) == 40


def test_failed_items_hold_their_typed_error_and_the_rest_succeed() -> None:
    questions = ["q0", "bad1", "q2", "bad3", "q4"]
    with OpenAICompatServer(echo) as server, make_lm(server) as lm:
        results = QuickAnswer(lm=lm).batch(inputs(*questions), concurrency=3)
    assert isinstance(results[1], BadRequestError) and "refused bad1" in str(results[1])
    assert isinstance(results[3], BadRequestError) and "refused bad3" in str(results[3])
    assert [r.answer for r in results if isinstance(r, AnswerQuestionOutputs)] == [
        "answer to q0",
        "answer to q2",
        "answer to q4",
    ]


def test_mappings_are_validated_as_inputs() -> None:
    with OpenAICompatServer(echo) as server, make_lm(server) as lm:
        results = QuickAnswer(lm=lm).batch([{"context": ["c"], "question": "dict"}])
    assert isinstance(results[0], AnswerQuestionOutputs)
    assert results[0].answer == "answer to dict"


def test_return_exceptions_false_raises_the_first_error_and_starts_nothing_more() -> None:
    questions = ["q0", "bad1", *[f"q{i}" for i in range(2, 30)]]
    with OpenAICompatServer(echo) as server, make_lm(server) as lm:
        with pytest.raises(BadRequestError, match="refused bad1"):
            QuickAnswer(lm=lm).batch(inputs(*questions), concurrency=1, return_exceptions=False)
        assert len(server.requests) == 2  # one worker: nothing after the failure started


def test_context_settings_apply_inside_the_batch_threads() -> None:
    with OpenAICompatServer(echo) as server, make_lm(server) as lm, context(lm=lm):
        results = QuickAnswer().batch(inputs("a", "b", "c"), concurrency=3)
    assert all(isinstance(r, AnswerQuestionOutputs) for r in results)


def test_progress_bar_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with OpenAICompatServer(echo) as server, make_lm(server) as lm:
        QuickAnswer(lm=lm).batch(inputs("a", "b"), progress=True)
    err = capsys.readouterr().err
    assert "AnswerQuestion" in err and "2/2" in err


def test_concurrency_is_bounded() -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def counting(request: RecordedRequest) -> str:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        threading.Event().wait(0.01)
        with lock:
            in_flight -= 1
        return reply_for(question_of(request))

    with OpenAICompatServer(counting) as server, make_lm(server) as lm:
        QuickAnswer(lm=lm).batch(inputs(*[str(i) for i in range(24)]), concurrency=4)
    assert 1 < peak <= 4


def test_bad_concurrency_is_refused() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        QuickAnswer().batch(inputs("a"), concurrency=0)


# -- async ------------------------------------------------------------------------------


def test_abatch_in_order_with_errors_and_fail_fast() -> None:
    questions = [f"q{i}" for i in range(30)] + ["bad30"]

    async def main(server: OpenAICompatServer) -> tuple[list[Any], int]:
        async with make_lm(server) as lm:
            predictor = QuickAnswer(lm=lm)
            results = await predictor.abatch(inputs(*questions), concurrency=8)
            with pytest.raises(BadRequestError):
                await predictor.abatch(inputs("bad", "q"), concurrency=1, return_exceptions=False)
        return results, len(server.requests)

    with OpenAICompatServer(echo) as server:
        results, requests = asyncio.run(main(server))
    assert [r.answer for r in results[:30]] == [f"answer to q{i}" for i in range(30)]
    assert isinstance(results[30], BadRequestError)
    assert requests == 32  # 31, then only the failing one of the fail-fast batch


def test_abatch_of_nothing_is_empty() -> None:
    assert asyncio.run(QuickAnswer().abatch([])) == []
    assert QuickAnswer().batch([]) == []


# -- truncation ------------------------------------------------------------------------


def test_a_reply_cut_off_by_the_token_limit_is_an_error_even_when_it_parses() -> None:
    complete_looking = reply_for("q")
    script = [Reply(content=complete_looking, finish_reason="length")]
    with (
        OpenAICompatServer(script) as server,
        make_lm(server) as lm,
        pytest.raises(TruncatedOutputError) as caught,
    ):
        QuickAnswer(lm=lm)(context=["c"], question="q")
    error = caught.value
    assert isinstance(error, OutputParseError) and isinstance(error, SigforgeError)
    assert "cut off by the token limit" in str(error) and "max_tokens" in str(error)
    assert error.raw == complete_looking
    assert len(server.requests) == 1  # no second call with another format


def test_truncated_items_of_a_batch_are_reported_as_such() -> None:
    def maybe_truncated(request: RecordedRequest) -> Reply:
        question = question_of(request)
        return Reply(
            content=reply_for(question), finish_reason="length" if question == "long" else "stop"
        )

    with OpenAICompatServer(maybe_truncated) as server, make_lm(server) as lm:
        results = QuickAnswer(lm=lm).batch(inputs("short", "long"))
    assert isinstance(results[0], AnswerQuestionOutputs)
    assert isinstance(results[1], TruncatedOutputError)
