"""Evaluate: threads and asyncio, per-example errors, reports, exports, resume, max_errors.

The program is the generated ``QuickAnswer`` predictor (generated/qa.py) over an honest
``ScriptedLM``: it reads the passages and the question in the prompt and answers with
the capital a passage names, "unknown" when no passage does, and a reply without fields
(an ``OutputParseError``) for questions it finds garbled. It is never told the labels.
One test runs the same program over HTTP against the loopback OpenAI-compatible server.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from support import ROOT

from generated.qa import AnswerQuestionOutputs, QuickAnswer
from sigforge.runtime import LM, OutputParseError, configure
from sigforge.runtime.evaluate import (
    Evaluate,
    EvaluationError,
    EvaluationResult,
    ExampleResult,
    TooManyErrorsError,
)
from sigforge.runtime.example import Example
from sigforge.runtime.messages import LMRequest, message_text
from sigforge.runtime.metrics import Score, exact_match_on
from sigforge.runtime.module import Module
from sigforge.testing import OpenAICompatServer, RecordedRequest, ScriptedLM

# ---------------------------------------------------------------- the scripted task
FACT = re.compile(r"The capital of (\w+) is (\w+)")


def section(prompt: str, name: str) -> str:
    return prompt.split(f"[[ ## {name} ## ]]\n", 1)[1].split("\n\n", 1)[0]


def answer_prompt(prompt: str) -> str:
    """The scripted model: find the asked country's capital in the passages."""
    question = section(prompt, "question")
    if "garbled" in question:
        return "Sorry, I can only answer in prose."
    country = question.rstrip("?").rsplit(" ", 1)[-1]
    facts = dict(FACT.findall(section(prompt, "context")))
    answer = facts.get(country, "unknown")
    confidence = 0.9 if country in facts else 0.1
    return f"[[ ## answer ## ]]\n{answer}\n\n[[ ## confidence ## ]]\n{confidence}\n\n[[ ## completed ## ]]"


def respond(request: LMRequest) -> str:
    return answer_prompt(message_text(request.messages[-1]))


def respond_http(request: RecordedRequest) -> str:
    return answer_prompt(str(request.messages[-1]["content"]))


def example(index: int, country: str, capital: str | list[str], *, known: bool = True) -> Example:
    context = [
        f"The capital of {country} is {capital if isinstance(capital, str) else capital[0]}."
    ]
    if not known:
        context = [f"{country} is a country."]
    return Example(
        {"context": context, "question": f"What is the capital of {country}?"},
        {"answer": capital},
        id=f"c{index}",
    )


def make_devset() -> list[Example]:
    """12 examples: 8 answerable (1 point each), 2 without the fact in the passages
    ("unknown": 0), 2 garbled (program errors: failure_score) -> score 8/12."""
    rows = [
        example(0, "France", "Paris"),
        example(1, "Japan", ["Tokyo", "Tōkyō"]),
        example(2, "Italy", "rome"),  # normalized match
        example(3, "Peru", "Lima", known=False),
        example(4, "Kenya", "Nairobi"),
        Example({"context": ["x"], "question": "A garbled question?"}, {"answer": "x"}, id="c5"),
        example(6, "Canada", "Ottawa"),
        example(7, "Chile", "Santiago"),
        example(8, "Egypt", "Cairo", known=False),
        example(9, "Spain", "Madrid"),
        Example({"context": ["y"], "question": "Another garbled one?"}, {"answer": "y"}, id="c10"),
        example(11, "Norway", "Oslo"),
    ]
    return rows


DEVSET = make_devset()
METRIC = exact_match_on("answer", feedback=True)
SCORE = 8 / 12


def program() -> QuickAnswer:
    return QuickAnswer(lm=ScriptedLM(respond))


def essentials(result: EvaluationResult[Any]) -> list[tuple[Any, ...]]:
    """What must not depend on the executor or on resuming (durations may)."""
    return [(r.index, r.example, r.prediction, r.score, r.error) for r in result.results]


@pytest.fixture(scope="module")
def reference() -> EvaluationResult[AnswerQuestionOutputs]:
    """An uninterrupted run on one thread."""
    return Evaluate(DEVSET, METRIC, num_threads=1)(program())


# ---------------------------------------------------------------- scores and errors
def test_scores_predictions_and_errors_per_example(
    reference: EvaluationResult[AnswerQuestionOutputs],
) -> None:
    result = reference
    assert result.score == pytest.approx(SCORE)
    assert result.percent == pytest.approx(SCORE * 100)
    assert result.errors == 2
    assert [r.index for r in result.results] == list(range(12))
    assert [r.example for r in result.results] == DEVSET
    first = result.results[0]
    assert isinstance(first, ExampleResult)
    assert first.prediction == AnswerQuestionOutputs(answer="Paris", confidence=0.9)
    assert first.score == Score(1.0, "correct")
    assert first.error is None and first.duration >= 0
    peru = result.results[3]
    assert peru.prediction is not None and peru.prediction.answer == "unknown"
    assert peru.score == Score(0.0, "expected 'Lima', got 'unknown'")
    for failed in (result.results[5], result.results[10]):
        assert failed.prediction is None
        assert failed.score == Score(0.0)
        assert failed.error is not None and failed.error.startswith("OutputParseError: ")


def test_threads_and_asyncio_give_identical_results(
    reference: EvaluationResult[AnswerQuestionOutputs],
) -> None:
    threads = Evaluate(DEVSET, METRIC, num_threads=5)(program())
    tasks = Evaluate(DEVSET, METRIC, num_threads=5, executor="asyncio")(program())
    assert essentials(threads) == essentials(reference)
    assert essentials(tasks) == essentials(reference)
    assert tasks.score == threads.score == reference.score


def test_acall_awaits_the_program_and_works_with_any_executor(
    reference: EvaluationResult[AnswerQuestionOutputs],
) -> None:
    async def main() -> tuple[EvaluationResult[Any], EvaluationResult[Any]]:
        tasks = await Evaluate(DEVSET, METRIC, executor="asyncio").acall(program())
        threads = await Evaluate(DEVSET, METRIC, executor="threads").acall(program())
        return tasks, threads

    tasks, threads = asyncio.run(main())
    assert essentials(tasks) == essentials(threads) == essentials(reference)


def test_asyncio_inside_a_running_loop_asks_for_acall() -> None:
    async def main() -> None:
        Evaluate(DEVSET, METRIC, executor="asyncio")(program())

    with pytest.raises(EvaluationError, match=r"await evaluate.acall\(program\)"):
        asyncio.run(main())


def test_failure_score_and_a_devset_for_one_call() -> None:
    evaluate = Evaluate(DEVSET, METRIC, failure_score=0.5)
    assert evaluate(program()).score == pytest.approx((8 + 2 * 0.5) / 12)
    few = evaluate(program(), devset=DEVSET[:2])
    assert [r.example.id for r in few.results] == ["c0", "c1"]
    assert few.score == 1.0
    empty = evaluate(program(), devset=[])
    assert (empty.score, empty.results, empty.errors) == (0.0, [], 0)


class Pipeline(Module):
    """A user pipeline: rewrites the question, then answers; fails on an empty context."""

    def __init__(self) -> None:
        self.answer = QuickAnswer(lm=ScriptedLM(respond))

    def forward(self, *, context: list[str], question: str) -> AnswerQuestionOutputs:
        if context == ["x"]:
            raise ValueError("no usable passages")
        return self.answer(context=context, question=question.strip())

    async def aforward(self, *, context: list[str], question: str) -> AnswerQuestionOutputs:
        if context == ["x"]:
            raise ValueError("no usable passages")
        return await self.answer.acall(context=context, question=question.strip())


def test_modules_are_programs_and_any_exception_of_the_program_is_its_error() -> None:
    for executor in ("threads", "asyncio"):
        result = Evaluate(DEVSET, METRIC, executor=executor)(Pipeline())
        assert result.results[5].error == "ValueError: no usable passages"
        assert result.results[10].error is not None
        assert result.results[10].error.startswith("OutputParseError: ")
        assert result.score == pytest.approx(SCORE)


def test_a_metric_that_raises_is_raised_not_counted() -> None:
    def broken(example: Example, prediction: AnswerQuestionOutputs) -> float:
        return 1 / len(prediction.answer) if prediction.answer != "Tokyo" else 1 / 0

    for executor in ("threads", "asyncio"):
        with pytest.raises(ZeroDivisionError) as caught:
            Evaluate(DEVSET, broken, executor=executor)(program())
        assert "raised by the metric broken on example 1 (id 'c1')" in caught.value.__notes__


def test_a_metric_returning_something_else_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="must return a float, a bool or a Score, not str"):
        Evaluate(DEVSET[:1], lambda e, p: p.answer)(program())  # type: ignore[arg-type]


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="num_threads"):
        Evaluate(DEVSET, METRIC, num_threads=0)
    with pytest.raises(ValueError, match="executor must be one of"):
        Evaluate(DEVSET, METRIC, executor="processes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="resume=True needs results_path"):
        Evaluate(DEVSET, METRIC, resume=True)
    with pytest.raises(ValueError, match="max_errors"):
        Evaluate(DEVSET, METRIC, max_errors=0)
    with pytest.raises(TypeError, match="item 1 is a dict"):
        Evaluate([DEVSET[0], {"question": "q"}], METRIC)(program())  # type: ignore[list-item]
    with pytest.raises(EvaluationError, match="has no acall method"):
        Evaluate(DEVSET, METRIC, executor="asyncio")(lambda **inputs: None)


# ---------------------------------------------------------------- progress and reports
def test_the_progress_bar_shows_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    Evaluate(DEVSET, METRIC, progress=True)(program())
    err = capsys.readouterr().err
    assert "Evaluate" in err and "12/12" in err
    assert "score 66.7%" in err  # the running score, 8 of 12 at the end
    Evaluate(DEVSET, METRIC, progress=False)(program())
    assert capsys.readouterr().err == ""


def parse_table(text: str) -> tuple[list[str], list[dict[str, str]], list[str]]:
    """The header, the rows (by column name) and the lines after the rows."""
    lines = text.splitlines()
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", lines[1])]

    def cut(line: str) -> list[str]:
        starts = [start for start, _ in spans] + [10**6]
        return [line[starts[i] : starts[i + 1]].strip() for i in range(len(spans))]

    header = cut(lines[0])
    rows, rest = [], []
    for line in lines[2:]:
        if line.startswith(("...", "score ")):
            rest.append(line)
        else:
            rows.append(dict(zip(header, cut(line), strict=True)))
    return header, rows, rest


def test_table_lists_inputs_labels_prediction_fields_score_and_error(
    reference: EvaluationResult[AnswerQuestionOutputs],
) -> None:
    header, rows, rest = parse_table(reference.table(limit=None))
    assert header == [
        "#", "id", "input.context", "input.question", "label.answer",
        "pred.answer", "pred.confidence", "score", "error",
    ]  # fmt: skip
    assert len(rows) == 12
    assert rows[0] == {
        "#": "0", "id": "c0", "input.context": '["The capital of France is Pa…',
        "input.question": "What is the capital of France?", "label.answer": "Paris",
        "pred.answer": "Paris", "pred.confidence": "0.9", "score": "1.00", "error": "",
    }  # fmt: skip
    assert rows[1]["label.answer"] == '["Tokyo", "Tōkyō"]'
    assert rows[5]["pred.answer"] == "" and rows[5]["score"] == "0.00"
    assert rows[5]["error"].startswith("OutputParseError: ") and rows[5]["error"].endswith("…")
    assert all(len(cell) <= 30 for row in rows for cell in row.values())
    assert rest == ["score 66.7% over 12 examples (2 errors)"]


def test_table_limit_and_display_table(
    reference: EvaluationResult[AnswerQuestionOutputs], capsys: pytest.CaptureFixture[str]
) -> None:
    _, rows, rest = parse_table(reference.table(limit=3))
    assert [row["#"] for row in rows] == ["0", "1", "2"]
    assert rest == ["... 9 more rows", "score 66.7% over 12 examples (2 errors)"]
    Evaluate(DEVSET, METRIC, display_table=4)(program())
    _, rows, rest = parse_table(capsys.readouterr().out)
    assert len(rows) == 4 and rest[0] == "... 8 more rows"
    Evaluate(DEVSET[:2], METRIC, display_table=True)(program())
    header, rows, rest = parse_table(capsys.readouterr().out)
    assert len(rows) == 2 and rest == ["score 100.0% over 2 examples (0 errors)"]
    assert "error" not in header  # no example failed
    _, rows, rest = parse_table(reference.table(limit=0))
    assert rows == [] and rest[0] == "... 12 more rows"


def test_json_export_holds_every_example(
    reference: EvaluationResult[AnswerQuestionOutputs], tmp_path: Path
) -> None:
    path = tmp_path / "results.json"
    reference.to_json(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["score"] == pytest.approx(SCORE) and data["percent"] == pytest.approx(SCORE * 100)
    assert (data["examples"], data["errors"]) == (12, 2)
    rows = data["results"]
    assert [row["index"] for row in rows] == list(range(12))
    for row, result in zip(rows, reference.results, strict=True):
        assert row["id"] == result.example.id
        assert row["inputs"] == dict(result.example.inputs)
        assert row["labels"] == dict(result.example.labels)
        expected = None if result.prediction is None else result.prediction.model_dump()
        assert row["prediction"] == expected
        assert (row["score"], row["feedback"], row["error"]) == (
            result.score.value, result.score.feedback, result.error,
        )  # fmt: skip


def test_csv_export_holds_every_example(
    reference: EvaluationResult[AnswerQuestionOutputs], tmp_path: Path
) -> None:
    path = tmp_path / "results.csv"
    reference.to_csv(path)
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == [
        "index", "id", "input.context", "input.question", "label.answer", "pred.answer",
        "pred.confidence", "score", "feedback", "error", "duration",
    ]  # fmt: skip
    assert len(rows) == 12
    for row, result in zip(rows, reference.results, strict=True):
        assert int(row["index"]) == result.index and row["id"] == result.example.id
        assert json.loads(row["input.context"]) == result.example.inputs["context"]
        assert row["input.question"] == result.example.inputs["question"]
        gold = result.example.labels["answer"]
        assert (
            row["label.answer"] if isinstance(gold, str) else json.loads(row["label.answer"])
        ) == gold
        if result.prediction is None:
            assert row["pred.answer"] == row["pred.confidence"] == ""
        else:
            assert row["pred.answer"] == result.prediction.answer
            assert float(row["pred.confidence"]) == result.prediction.confidence
        assert float(row["score"]) == result.score.value
        assert row["feedback"] == result.score.feedback
        assert row["error"] == (result.error or "")  # the whole message, uncut
        assert float(row["duration"]) == result.duration


# ---------------------------------------------------------------- max_errors
def test_max_errors_stops_the_run_and_resume_finishes_it(
    reference: EvaluationResult[AnswerQuestionOutputs], tmp_path: Path
) -> None:
    path = tmp_path / "run.jsonl"
    with pytest.raises(TooManyErrorsError) as caught:
        Evaluate(DEVSET, METRIC, num_threads=1, max_errors=2, results_path=path)(program())
    stop = caught.value
    assert "failed on 2 examples (max_errors=2)" in str(stop)
    assert "example 10: OutputParseError" in str(stop) and "resume=True" in str(stop)
    assert isinstance(stop.__cause__, OutputParseError)
    assert [r.index for r in stop.results] == list(range(11))  # one thread: in order
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1 + 11
    lm = ScriptedLM(respond)
    resumed = Evaluate(DEVSET, METRIC, results_path=path, resume=True)(QuickAnswer(lm=lm))
    assert lm.calls == 1  # only example 11 was left
    assert essentials(resumed) == essentials(reference)


def test_max_errors_not_reached_changes_nothing() -> None:
    result = Evaluate(DEVSET, METRIC, max_errors=3)(program())
    assert result.errors == 2


# ---------------------------------------------------------------- resume
class Counting(Module):
    """Records the questions it is asked, then answers with the scripted predictor."""

    def __init__(self) -> None:
        self.answer = QuickAnswer(lm=ScriptedLM(respond))
        self.asked: list[str] = []
        self.lock = threading.Lock()

    def forward(self, *, context: list[str], question: str) -> AnswerQuestionOutputs:
        with self.lock:
            self.asked.append(question)
        return self.answer(context=context, question=question)


class Interrupted(Module):
    """Answers ``allowed`` questions, then raises KeyboardInterrupt (a user's Ctrl-C)."""

    def __init__(self, allowed: int) -> None:
        self.answer = QuickAnswer(lm=ScriptedLM(respond))
        self.allowed = allowed
        self.calls = 0
        self.lock = threading.Lock()

    def forward(self, *, context: list[str], question: str) -> AnswerQuestionOutputs:
        with self.lock:
            self.calls += 1
            if self.calls > self.allowed:
                raise KeyboardInterrupt
        return self.answer(context=context, question=question)


def finished_indices(path: Path) -> list[int]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["sigforge_evaluation"] == 1
    return [json.loads(line)["index"] for line in lines[1:]]


def test_resume_after_keyboard_interrupt_runs_only_the_rest(
    reference: EvaluationResult[AnswerQuestionOutputs], tmp_path: Path
) -> None:
    path = tmp_path / "run.jsonl"
    with pytest.raises(KeyboardInterrupt):
        Evaluate(DEVSET, METRIC, num_threads=3, results_path=path)(Interrupted(5))
    done = finished_indices(path)
    assert len(done) >= 5 and len(set(done)) == len(done) < 12
    counting = Counting()
    resumed = Evaluate(DEVSET, METRIC, num_threads=3, results_path=path, resume=True)(counting)
    missing = [e.inputs["question"] for i, e in enumerate(DEVSET) if i not in done]
    assert sorted(counting.asked) == sorted(missing)
    assert essentials(resumed) == essentials(reference)
    assert sorted(finished_indices(path)) == list(range(12))
    again = Counting()  # a finished file: nothing left to run
    assert essentials(
        Evaluate(DEVSET, METRIC, results_path=path, resume=True)(again)
    ) == essentials(reference)
    assert again.asked == []


KILLED_RUN = """
import sys, threading
from test_evaluate import DEVSET, METRIC, Counting
from sigforge.runtime.evaluate import Evaluate

class Hanging(Counting):
    '''Answers the first `allowed` examples; the others hang until the process is killed.'''
    def forward(self, *, context, question):
        with self.lock:
            self.asked.append(question)
            hang = len(self.asked) > int(sys.argv[2])
        if hang:
            threading.Event().wait()
        return self.answer(context=context, question=question)

Evaluate(DEVSET, METRIC, num_threads=3, results_path=sys.argv[1])(Hanging())
"""


@pytest.fixture
def killed_run(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    path = tmp_path / "killed.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(path), "7"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield path, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_resume_after_the_process_is_killed_gives_the_uninterrupted_result(
    reference: EvaluationResult[AnswerQuestionOutputs],
    killed_run: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    path, process = killed_run
    deadline = time.monotonic() + 120
    while not (path.exists() and len(path.read_bytes().splitlines()) >= 1 + 7):
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        assert time.monotonic() < deadline, "the evaluation never finished 7 examples"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    done = finished_indices(path)
    assert len(done) == 7  # the other examples hung in flight: nothing written for them
    counting = Counting()
    resumed = Evaluate(DEVSET, METRIC, results_path=path, resume=True)(counting)
    assert sorted(counting.asked) == sorted(
        e.inputs["question"] for i, e in enumerate(DEVSET) if i not in done
    )
    assert essentials(resumed) == essentials(reference)


def test_a_line_cut_off_by_a_crash_is_dropped_and_its_example_run_again(
    reference: EvaluationResult[AnswerQuestionOutputs], tmp_path: Path
) -> None:
    path = tmp_path / "run.jsonl"
    Evaluate(DEVSET, METRIC, results_path=path)(program())
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = json.loads(lines[4])["index"]  # header, 3 whole lines, then a line cut short:
    path.write_text("".join(lines[:4]) + lines[4][:25], encoding="utf-8")  # died mid-write
    counting = Counting()
    resumed = Evaluate(DEVSET, METRIC, results_path=path, resume=True)(counting)
    assert len(counting.asked) == 12 - 3
    assert DEVSET[cut].inputs["question"] in counting.asked
    assert essentials(resumed) == essentials(reference)
    for line in path.read_text(encoding="utf-8").splitlines():
        json.loads(line)  # every line whole again


def test_resume_without_a_file_or_with_a_header_only_starts_fresh(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "new.jsonl"
    result = Evaluate(DEVSET, METRIC, results_path=path, resume=True)(program())
    assert result.score == pytest.approx(SCORE)
    assert sorted(finished_indices(path)) == list(range(12))
    header_only = tmp_path / "header.jsonl"
    header_only.write_text(path.read_text(encoding="utf-8").splitlines()[0][:10], encoding="utf-8")
    assert Evaluate(DEVSET, METRIC, results_path=header_only, resume=True)(
        program()
    ).score == pytest.approx(SCORE)
    assert sorted(finished_indices(header_only)) == list(range(12))


def test_without_resume_the_results_file_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    Evaluate(DEVSET, METRIC, results_path=path)(program())
    Evaluate(DEVSET[:3], METRIC, results_path=path)(program())
    assert sorted(finished_indices(path)) == [0, 1, 2]
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[0])["examples"] == 3


def test_resume_refuses_a_file_of_another_devset(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    Evaluate(DEVSET, METRIC, results_path=path)(program())
    other_label = [*DEVSET[:-1], Example(DEVSET[-1].inputs, {"answer": "Bergen"}, id="c11")]
    for devset, why in [
        (DEVSET[:5], "it has 12 examples, this dev set 5"),
        (other_label, "the examples' ids, inputs or labels differ"),
        ([Example(e.inputs, e.labels, id=f"x{i}") for i, e in enumerate(DEVSET)], "differ"),
    ]:
        with pytest.raises(EvaluationError, match=re.escape(why)) as caught:
            Evaluate(devset, METRIC, results_path=path, resume=True)(program())
        assert "holds results of another dev set" in str(caught.value)
        assert "resume=False" in str(caught.value)


def test_resume_refuses_damaged_and_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    Evaluate(DEVSET, METRIC, results_path=path)(program())
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text(lines[0] + lines[1] + "{not json\n" + "".join(lines[2:]), encoding="utf-8")
    with pytest.raises(EvaluationError, match=r"damaged.jsonl:3: not a JSON line"):
        Evaluate(DEVSET, METRIC, results_path=damaged, resume=True)(program())
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"hello": 1}\n', encoding="utf-8")
    with pytest.raises(EvaluationError, match="not a sigforge results file"):
        Evaluate(DEVSET, METRIC, results_path=foreign, resume=True)(program())
    newer = tmp_path / "newer.jsonl"
    newer.write_text(
        json.dumps({**json.loads(lines[0]), "sigforge_evaluation": 99}) + "\n", encoding="utf-8"
    )
    with pytest.raises(EvaluationError, match="version 99; this runtime reads version 1"):
        Evaluate(DEVSET, METRIC, results_path=newer, resume=True)(program())
    bad_row = tmp_path / "bad_row.jsonl"
    row = json.loads(lines[1])
    del row["score"]
    bad_row.write_text(lines[0] + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(EvaluationError, match=r"bad_row.jsonl:2: not a results line \(KeyError"):
        Evaluate(DEVSET, METRIC, results_path=bad_row, resume=True)(program())


class Verdict(BaseModel):
    label: str
    votes: tuple[int, int]


def judge(*, context: list[str], question: str) -> Verdict:
    return Verdict(label=question.split()[-1].rstrip("?"), votes=(len(context), 1))


def test_resumed_predictions_are_rebuilt_as_their_class(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"

    def metric(example: Example, prediction: Verdict) -> bool:
        return prediction.label == "France"

    first = Evaluate(DEVSET[:3], metric, results_path=path)(judge)
    resumed = Evaluate(DEVSET[:3], metric, results_path=path, resume=True)(judge)
    assert essentials(resumed) == essentials(first)
    assert resumed.results[0].prediction == Verdict(label="France", votes=(1, 1))
    assert type(resumed.results[0].prediction) is Verdict  # tuple rebuilt too


def test_plain_json_predictions_are_stored_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"

    def shout(*, context: list[str], question: str) -> dict[str, Any]:
        return {"text": question.upper(), "n": len(context)}

    def half(example: Example, prediction: dict[str, Any]) -> float:
        return 0.5

    first = Evaluate(DEVSET[:3], half, results_path=path)(shout)
    resumed = Evaluate(DEVSET[:3], half, results_path=path, resume=True)(shout)
    assert essentials(resumed) == essentials(first)
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[1])["prediction_type"] is None


def test_a_prediction_class_that_cannot_be_imported_is_a_clear_error(tmp_path: Path) -> None:
    class Local(BaseModel):
        answer: str

    def local(*, context: list[str], question: str) -> Local:
        return Local(answer=question)

    def metric(example: Example, prediction: Local) -> float:
        return 1.0

    path = tmp_path / "run.jsonl"
    Evaluate(DEVSET[:2], metric, results_path=path)(local)
    expected = r"run.jsonl:2: cannot rebuild the prediction: class .*Local cannot be imported"
    with pytest.raises(EvaluationError, match=expected) as caught:
        Evaluate(DEVSET[:2], metric, results_path=path, resume=True)(local)
    assert "(a class defined inside a function cannot be imported)" in str(caught.value)


def test_predictions_that_are_not_json_are_refused_with_a_results_file(tmp_path: Path) -> None:
    def metric(example: Example, prediction: object) -> float:
        return 1.0

    def opaque(**inputs: Any) -> object:
        return object()

    expected = r"prediction of example 0 \(object\) cannot be stored as JSON"
    with pytest.raises(EvaluationError, match=expected):
        Evaluate(DEVSET[:1], metric, results_path=tmp_path / "r.jsonl")(opaque)


# ---------------------------------------------------------------- over HTTP
@pytest.fixture
def http_lm() -> Iterator[tuple[OpenAICompatServer, LM]]:
    with OpenAICompatServer(respond_http, max_lifetime=120) as server:
        lm = LM("openai/gpt-4o-mini", base_url=server.base_url, api_key="sk-test", cache=False,
                max_retries=0)  # fmt: skip
        yield server, lm
        lm.close()


def test_over_the_loopback_server_threads_and_asyncio_agree(
    reference: EvaluationResult[AnswerQuestionOutputs], http_lm: tuple[OpenAICompatServer, LM]
) -> None:
    server, lm = http_lm
    configure(lm=lm)  # the predictor has no LM of its own: the configured one applies
    threads = Evaluate(DEVSET, METRIC, num_threads=4)(QuickAnswer())
    tasks = Evaluate(DEVSET, METRIC, num_threads=4, executor="asyncio")(QuickAnswer())
    assert essentials(threads) == essentials(tasks) == essentials(reference)
    assert not server.violations
    questions = [str(r.messages[-1]["content"]) for r in server.requests]
    for example in DEVSET:
        asked = sum(example.inputs["question"] in q for q in questions)
        assert asked >= 2  # once per executor (garbled replies may be retried)
