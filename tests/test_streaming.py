"""Streaming predictions: generated partial models, typed partials in order, the final outputs.

A small project is generated into a temporary package (a class nested in lists, an enum,
a tuple, a text field; predict, chain_of_thought and the JSON adapter) and streamed
through ``ScriptedLM`` (in-process, scripted pieces) and through ``LM`` against the
scripted OpenAI-compatible server on 127.0.0.1 (server-sent events, a broken stream).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from support import generate_package, import_generated

from sigforge.codegen.pipeline import compile_sources
from sigforge.runtime import LM, OutputParseError, context
from sigforge.runtime.errors import StreamInterruptedError, TruncatedOutputError
from sigforge.runtime.messages import Completion, LMRequest, StreamRestart, TextDelta
from sigforge.runtime.streaming import AsyncPredictionStream, PredictionStream
from sigforge.testing import OpenAICompatServer, Reply, ScriptedLM
from sigforge.testing.scripted import Streamed

PACKAGE = "streaming_generated"

SOURCE = '''"""Streaming test signatures."""

enum Tone {
    calm
    urgent
}

class Source {
    """A passage the answer relies on."""
    doc: int (ge=1)      "Document number"
    title: str           "Its title"
    note: str | None     "Why it matters" = None
}

signature Answer {
    """Answer the question and cite the sources."""
    in  question: str                        "The question"
    out answer: str      (min_length=20)     "The answer, one sentence"
    out confidence: float (ge=0.0, le=1.0)   "How sure, 0 to 1"
    out tone: Tone                           "How it should sound"
    out sources: list[Source]                "Passages used"
    out spans: list[tuple[int, int]]         "Character ranges quoted" = []
}

predictor Answerer = predict(Answer)
predictor Thinker = chain_of_thought(Answer)
predictor JsonAnswerer = predict(Answer, adapter="json")
'''

ANSWER = "Paris is the capital of France."
CHAT_PIECES = (
    "[[ ## answer ## ]]\nPar",
    "is is the",
    " capital of France.\n\n[[ ## conf",
    "idence ## ]]\n0.75",
    '\n\n[[ ## tone ## ]]\ncalm\n\n[[ ## sources ## ]]\n[{"doc": 1, "title": "Atlas"}]',
    "\n\n[[ ## completed ## ]]",
)
CHAT_REPLY = "".join(CHAT_PIECES)
JSON_DATA = {
    "answer": ANSWER,
    "confidence": 0.75,
    "tone": "urgent",
    "sources": [{"doc": 12, "title": "Atlas", "note": "maps"}, {"doc": 3, "title": "Guide"}],
    "spans": [[10, 25], [40, 52]],
}
JSON_REPLY = json.dumps(JSON_DATA)


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    src = tmp_path_factory.mktemp("streaming-src")
    (src / "answers.sig").write_text(SOURCE, encoding="utf-8")
    generate_package(src, tmp_path_factory.mktemp("streaming-pkg"), PACKAGE)
    return import_generated(PACKAGE, "answers")


def collect(stream: PredictionStream[Any, Any]) -> list[Any]:
    return list(stream)


# --------------------------------------------------------------------------- generation


def test_partial_models_have_every_field_optional_typed_and_described(gen: ModuleType) -> None:
    partial = gen.AnswerOutputsPartial
    assert gen.Answer.partial_outputs is partial
    assert gen.AnswerWithReasoning.partial_outputs is gen.AnswerWithReasoningOutputsPartial
    assert list(partial.model_fields) == list(gen.AnswerOutputs.model_fields)
    assert next(iter(gen.AnswerWithReasoningOutputsPartial.model_fields)) == "reasoning"
    for name, info in partial.model_fields.items():
        assert info.default is None and not info.is_required(), name
        assert info.description == gen.AnswerOutputs.model_fields[name].description, name
        assert info.metadata == [], name  # constraints stay on the complete model
    assert partial().model_dump() == dict.fromkeys(partial.model_fields)
    # declared classes become their partial models, inside lists too; the rest is unchanged
    assert partial.model_fields["sources"].annotation == list[gen.SourcePartial] | None
    assert partial.model_fields["tone"].annotation == gen.Tone | None
    assert partial.model_fields["spans"].annotation == list[tuple[int, int]] | None
    assert gen.SourcePartial.model_validate({"title": "Atl"}).doc is None
    assert gen.SourcePartial.model_fields["doc"].description == "Document number"
    # a partial model still checks types
    with pytest.raises(ValueError, match="doc"):
        gen.SourcePartial.model_validate({"doc": "three"})


@pytest.mark.parametrize(
    ("declaration", "clash"),
    [
        ("class SourcePartial {\n    x: int\n}", "SourcePartial"),
        ("class AnswerOutputsPartial {\n    x: int\n}", "AnswerOutputsPartial"),
        ("class AnswerWithReasoningOutputsPartial {\n    x: int\n}", "AnswerWithReasoningOutputsPartial"),
        ("enum PredictionStream {\n    a\n}", "PredictionStream"),
    ],
)
def test_names_of_partial_models_and_stream_types_are_reserved(
    tmp_path: Path, declaration: str, clash: str
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "answers.sig").write_text(f"{SOURCE}\n{declaration}\n", encoding="utf-8")
    result = compile_sources(src, tmp_path / "clash_pkg")
    errors = [d for d in result.diagnostics if d.severity == "error"]
    assert errors and all(d.code in {"E207", "E210"} for d in errors), errors
    assert any(clash in d.message for d in errors)


def test_imported_classes_bring_their_partial_models(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "common.sig").write_text('class Item {\n    name: str "Its name"\n}\n', encoding="utf-8")
    (src / "use.sig").write_text(
        'from common import Item\n\nsignature Pick {\n    in  q: str\n'
        '    out items: list[Item] | None "Chosen"\n}\n\npredictor Picker = predict(Pick)\n',
        encoding="utf-8",
    )
    generate_package(src, tmp_path, "import_partials_pkg")
    use = import_generated("import_partials_pkg", "use")
    common = import_generated("import_partials_pkg", "common")
    assert use.ItemPartial is common.ItemPartial
    assert use.PickOutputsPartial.model_fields["items"].annotation == list[common.ItemPartial] | None
    lm = ScriptedLM(['{"items": [{"name": "a"}, {"na'], chunk_size=4)
    stream = use.Picker(lm=lm, adapter="json").stream(q="?")
    partials = []
    with pytest.raises(OutputParseError):  # the reply breaks off inside its object
        for partial in stream:
            partials.append(partial)
    assert partials[-1] == use.PickOutputsPartial(items=[common.ItemPartial(name="a"), common.ItemPartial()])


# --------------------------------------------------------------------------- chat format


def test_chat_partials_arrive_field_by_field_in_order(gen: ModuleType) -> None:
    lm = ScriptedLM([Streamed(*CHAT_PIECES)])
    stream = gen.Answerer(lm=lm).stream(question="Capital of France?")
    partials = collect(stream)
    p = gen.AnswerOutputsPartial
    atlas = gen.SourcePartial(doc=1, title="Atlas")
    assert partials == [
        p(answer="Par"),
        p(answer="Paris is the"),
        # "[[ ## conf" might be a marker: held back until it is known
        p(answer=ANSWER),
        # the confidence section was open after piece 4: typed values come whole, once closed
        p(answer=ANSWER, confidence=0.75, tone=gen.Tone.calm),
        p(answer=ANSWER, confidence=0.75, tone=gen.Tone.calm, sources=[atlas]),
        # the final outputs' values: the default of the missing field filled in
        p(answer=ANSWER, confidence=0.75, tone=gen.Tone.calm, sources=[atlas], spans=[]),
    ]
    assert all(type(partial) is p for partial in partials)
    assert all(type(s) is gen.SourcePartial for s in partials[-1].sources)
    final = stream.final()
    assert type(final) is gen.AnswerOutputs
    assert final == gen.Answerer(lm=ScriptedLM([CHAT_REPLY]))(question="Capital of France?")
    assert stream.restarts == 0
    assert stream.completion is not None and stream.completion.text == CHAT_REPLY


def test_chat_text_grows_by_prefixes_one_character_at_a_time(gen: ModuleType) -> None:
    lm = ScriptedLM([CHAT_REPLY], chunk_size=1)
    stream = gen.Answerer(lm=lm).stream(question="?")
    partials = collect(stream)
    final = stream.final()
    texts = [p.answer for p in partials if p.answer is not None]
    assert texts[:2] == ["", "P"] and texts[-1] == ANSWER  # "": the section has begun
    assert all(final.answer.startswith(text) for text in texts)
    assert all(a != b for a, b in itertools.pairwise(partials))  # only changes
    seen: set[str] = set()
    for partial in partials:  # a field, once there, stays
        present = {name for name, value in partial if value is not None}
        assert seen <= present
        seen = present
    assert all(p.confidence in (None, 0.75) for p in partials)  # never "0" or "0.7"


# --------------------------------------------------------------------------- JSON format


def test_json_partials_fill_nested_objects_with_whole_values(gen: ModuleType) -> None:
    lm = ScriptedLM([JSON_REPLY], chunk_size=3)
    stream = gen.JsonAnswerer(lm=lm).stream(question="Capital of France?")
    partials = collect(stream)
    final = stream.final()
    assert final == gen.JsonAnswerer(lm=ScriptedLM([JSON_REPLY]))(question="Capital of France?")
    assert partials[-1].model_dump() == final.model_dump()
    assert all(type(p) is gen.AnswerOutputsPartial for p in partials)
    texts = [p.answer for p in partials if p.answer is not None]
    assert len(texts) > 5 and all(ANSWER.startswith(t) for t in texts)
    # numbers, enum values and tuples appear whole: never a prefix such as 0.7 or 1 (of 12)
    assert {p.confidence for p in partials} == {None, 0.75}
    assert {p.tone for p in partials} == {None, gen.Tone.urgent}
    sources = [p.sources for p in partials if p.sources]
    assert sources[0] == [gen.SourcePartial()]  # the object has begun
    assert [s.doc for s in sources[-1]] == [12, 3]
    assert all(s[0].doc in (None, 12) for s in sources)
    assert gen.SourcePartial(doc=12, title="Atlas") in [s[0] for s in sources]  # note not yet
    assert all(type(item) is gen.SourcePartial for s in sources for item in s)
    spans = [p.spans for p in partials if p.spans is not None]
    assert spans[-1] == [(10, 25), (40, 52)]
    # an unfinished tuple does not validate yet: the list keeps its last valid value
    assert all(s in ([], [(10, 25)], [(10, 25), (40, 52)]) for s in spans)


def test_values_are_repaired_as_the_final_parse_repairs_them(gen: ModuleType) -> None:
    data = {**JSON_DATA, "confidence": "0.75", "tone": "URGENT",
            "sources": [{"doc": "12", "title": "Atlas", "url": "https://x"}]}
    reply = json.dumps(data)
    stream = gen.JsonAnswerer(lm=ScriptedLM([reply], chunk_size=6)).stream(question="?")
    partials = collect(stream)
    final = stream.final()
    assert final == gen.JsonAnswerer(lm=ScriptedLM([reply]))(question="?")
    # a number as a string, an enum value in capitals, an unknown key inside an object
    assert {p.confidence for p in partials} == {None, 0.75}
    assert {p.tone for p in partials} == {None, gen.Tone.urgent}
    assert [p.sources for p in partials if p.sources][-1] == [gen.SourcePartial(doc=12, title="Atlas")]


def test_json_reply_in_a_fence_with_prose(gen: ModuleType) -> None:
    reply = f"Here you go:\n```json\n{json.dumps(JSON_DATA, indent=2)}\n```\nAnything else?"
    stream = gen.JsonAnswerer(lm=ScriptedLM([reply], chunk_size=9)).stream(question="?")
    partials = collect(stream)
    assert all(ANSWER.startswith(p.answer) for p in partials if p.answer is not None)
    assert partials[-1].sources == [
        gen.SourcePartial(doc=12, title="Atlas", note="maps"),
        gen.SourcePartial(doc=3, title="Guide"),
    ]
    assert stream.final() == gen.AnswerOutputs.model_validate(JSON_DATA)


def test_chat_adapter_follows_a_json_reply(gen: ModuleType) -> None:
    stream = gen.Answerer(lm=ScriptedLM([JSON_REPLY], chunk_size=11)).stream(question="?")
    partials = collect(stream)
    assert len(partials) > 4 and any(p.answer and p.answer != ANSWER for p in partials)
    assert stream.final().tone is gen.Tone.urgent


# --------------------------------------------------------------------------- restarts and errors


def test_restart_drops_what_was_received_and_partials_start_over(gen: ModuleType) -> None:
    broken = StreamInterruptedError("connection lost")
    lm = ScriptedLM(
        [
            Streamed(
                "[[ ## answer ## ]]\nRome is",
                " the capital of Italy.\n\n[[ ## confidence ## ]]\n0.5\n\n[[ ## tone",
                " ## ]]",
                StreamRestart(2, broken),
                "[[ ## answer ## ]]\nParis",
                CHAT_REPLY[len("[[ ## answer ## ]]\nParis") :],
            )
        ]
    )
    stream = gen.Answerer(lm=lm).stream(question="?")
    partials = collect(stream)
    p = gen.AnswerOutputsPartial
    assert partials[:4] == [
        p(answer="Rome is"),
        p(answer="Rome is the capital of Italy."),
        p(answer="Rome is the capital of Italy.", confidence=0.5),  # closed by "[[ ## tone ## ]]"
        # after the restart: only what the new attempt sent, no confidence any more
        p(answer="Paris"),
    ]
    assert stream.restarts == 1
    final = stream.final()
    assert final.answer == ANSWER and final.confidence == 0.75
    assert partials[-1].model_dump() == final.model_dump()


def test_a_stream_that_breaks_off_raises_its_typed_error(gen: ModuleType) -> None:
    lost = StreamInterruptedError("connection lost after 2 pieces")
    lm = ScriptedLM([Streamed("[[ ## answer ## ]]\nPar", "is", lost)])
    stream = gen.Answerer(lm=lm).stream(question="?")
    seen = []
    with pytest.raises(StreamInterruptedError) as raised:
        for partial in stream:
            seen.append(partial.answer)
    assert raised.value is lost
    assert seen == ["Par", "Paris"]
    with pytest.raises(StreamInterruptedError):
        stream.final()
    assert list(stream) == []


def test_a_truncated_reply_raises_even_when_it_would_parse(gen: ModuleType) -> None:
    lm = ScriptedLM([Streamed(CHAT_REPLY, finish_reason="length")])
    stream = gen.Answerer(lm=lm).stream(question="?")
    with pytest.raises(TruncatedOutputError, match="token limit"):
        stream.final()
    assert lm.calls == 1  # a truncated reply is not retried with another format


def test_an_invalid_value_raises_the_adapters_typed_error(gen: ModuleType) -> None:
    reply = CHAT_REPLY.replace("0.75", "very sure")
    stream = gen.Answerer(lm=ScriptedLM([reply], chunk_size=16)).stream(question="?")
    answers = []
    with pytest.raises(OutputParseError) as raised:
        for partial in stream:
            answers.append(partial.answer)
            assert partial.confidence is None  # the invalid value is never shown
    assert raised.value.field == "confidence" and not raised.value.structural
    assert answers[-1] == ANSWER


def test_chat_reply_without_structure_falls_back_to_json_and_starts_over(gen: ModuleType) -> None:
    lm = ScriptedLM(["I think it is Paris, quite sure.", JSON_REPLY], chunk_size=8)
    stream = gen.Answerer(lm=lm).stream(question="?")
    partials = collect(stream)
    assert stream.final() == gen.AnswerOutputs.model_validate(JSON_DATA)
    assert stream.restarts == 1
    assert lm.calls == 2 and "response_format" in lm.requests[1].params
    assert partials and all(type(p) is gen.AnswerOutputsPartial for p in partials)


# --------------------------------------------------------------------------- predictors


def test_chain_of_thought_streams_reasoning_first(gen: ModuleType) -> None:
    reply = "[[ ## reasoning ## ]]\nThe atlas names Paris.\n\n" + CHAT_REPLY
    stream = gen.Thinker(lm=ScriptedLM([reply], chunk_size=5)).stream(question="?")
    partials = collect(stream)
    assert all(type(p) is gen.AnswerWithReasoningOutputsPartial for p in partials)
    first_answer = next(i for i, p in enumerate(partials) if p.answer is not None)
    assert first_answer > 0
    assert all(p.reasoning and p.answer is None for p in partials[:first_answer])
    assert partials[first_answer - 1].reasoning == "The atlas names Paris."
    out = stream.final()
    assert type(out) is gen.AnswerWithReasoningOutputs
    assert (out.reasoning, out.answer) == ("The atlas names Paris.", ANSWER)


def test_final_without_iterating_and_iteration_after_the_end(gen: ModuleType) -> None:
    lm = ScriptedLM([CHAT_REPLY], chunk_size=4)
    stream = gen.Answerer(lm=lm).stream(question="?")
    assert lm.calls == 0  # nothing is sent before it is used
    assert stream.final().answer == ANSWER
    assert list(stream) == [] and stream.final().answer == ANSWER
    assert lm.calls == 1


def test_closing_early_stops_the_lm_stream(gen: ModuleType) -> None:
    closed: list[bool] = []

    class WatchedLM(ScriptedLM):
        def _stream(self, request: LMRequest) -> Any:
            try:
                yield from super()._stream(request)
            finally:
                closed.append(True)

    lm = WatchedLM([CHAT_REPLY], chunk_size=2)
    with gen.Answerer(lm=lm).stream(question="?") as stream:
        first = next(iter(stream))
    assert first.answer == "" and closed == [True]
    assert list(stream) == []
    with pytest.raises(RuntimeError, match="closed"):
        stream.final()
    unused = gen.Answerer(lm=lm).stream(question="?")
    unused.close()
    assert list(unused) == [] and lm.calls == 1


def test_settings_lm_and_cache_serve_streams(gen: ModuleType, tmp_path: Path) -> None:
    from sigforge.runtime import Cache

    lm = ScriptedLM([CHAT_REPLY], chunk_size=3, cache=Cache(path=tmp_path / "c.db"))
    with context(lm=lm):
        first = gen.Answerer().stream(question="?")
        assert len(collect(first)) > 5
        again = gen.Answerer().stream(question="?")
        partials = collect(again)  # from the cache: the reply arrives in one piece
    assert lm.calls == 1
    assert again.final() == first.final()
    assert again.completion is not None and again.completion.cached
    # one partial from the one piece, one with the final outputs (the default of `spans`)
    assert [p.spans for p in partials] == [None, []]
    assert partials[-1].model_dump() == again.final().model_dump()


def test_async_stream_partials_final_and_errors(gen: ModuleType) -> None:
    reply = "[[ ## reasoning ## ]]\nThe atlas.\n\n" + CHAT_REPLY

    async def consume(pieces: int) -> tuple[list[Any], Any]:
        lm = ScriptedLM([reply], chunk_size=pieces)
        stream = gen.Thinker(lm=lm).astream(question="?")
        assert isinstance(stream, AsyncPredictionStream)
        partials = [partial async for partial in stream]
        return partials, await stream.final()

    async def broken() -> list[str | None]:
        lost = StreamInterruptedError("lost")
        stream = gen.Answerer(lm=ScriptedLM([Streamed("[[ ## answer ## ]]\nPa", lost)])).astream(question="?")
        seen = []
        with pytest.raises(StreamInterruptedError):
            async for partial in stream:
                seen.append(partial.answer)
        with pytest.raises(StreamInterruptedError):
            await stream.final()
        return seen

    async def main() -> tuple[list[tuple[list[Any], Any]], list[str | None]]:
        both = await asyncio.gather(consume(2), consume(7))
        return list(both), await broken()

    results, seen = asyncio.run(main())
    (two, _), (seven, _) = results
    p = gen.AnswerWithReasoningOutputsPartial
    # a section's text is stripped, as the final parse strips it: "The " shows as "The"
    assert [x.reasoning for x in two[:4]] == ["", "Th", "The", "The at"]
    assert [x.reasoning for x in seven[:3]] == ["", "The at", "The atlas."]
    assert len(two) > len(seven)
    for partials, out in results:
        assert all(type(partial) is p for partial in partials)
        assert out.answer == ANSWER and out.reasoning == "The atlas."
        assert partials[-1].model_dump() == out.model_dump()
    assert seen == ["Pa"]


# --------------------------------------------------------------------------- real HTTP


def test_streaming_over_http_with_a_broken_stream_retried(gen: ModuleType) -> None:
    replies = [
        Reply(chunks=CHAT_PIECES[:3], break_after=2),  # the connection drops after 2 pieces
        Reply(chunks=CHAT_PIECES),
    ]
    with OpenAICompatServer(replies, max_lifetime=60) as server:
        lm = LM("openai/m", base_url=server.base_url, api_key="sk-test", cache=False,
                backoff_base=0.001, backoff_max=0.01)
        try:
            stream = gen.Answerer(lm=lm).stream(question="Capital of France?")
            partials = collect(stream)
            final = stream.final()
        finally:
            lm.close()
        assert [r.stream for r in server.requests] == [True, True]
    p = gen.AnswerOutputsPartial
    assert partials[:2] == [p(answer="Par"), p(answer="Paris is the")]
    assert stream.restarts == 1
    assert partials[2] == p(answer="Par")  # the retried stream starts over
    assert final == gen.AnswerOutputs.model_validate(
        {"answer": ANSWER, "confidence": 0.75, "tone": "calm", "sources": [{"doc": 1, "title": "Atlas"}]}
    )


# --------------------------------------------------------------------------- ScriptedLM


def test_scripted_lm_streams_pieces_restarts_and_errors() -> None:
    request = LMRequest(({"role": "user", "content": "hi"},))
    lm = ScriptedLM(["abcdefg", Completion("xyz", finish_reason="length")], chunk_size=3)
    events = list(lm.stream(request))
    assert events[:-1] == [TextDelta("abc"), TextDelta("def"), TextDelta("g")]
    assert isinstance(events[-1], Completion) and events[-1].text == "abcdefg"
    events = list(lm.stream(request))
    assert events[:-1] == [TextDelta("xyz")] and events[-1].finish_reason == "length"

    restart = StreamRestart(2, StreamInterruptedError("lost"))
    lm = ScriptedLM([Streamed("ab", restart, "cd", "e"), Streamed("x", ValueError("boom"))])
    events = list(lm.stream(request))
    assert events[:-1] == [TextDelta("ab"), restart, TextDelta("cd"), TextDelta("e")]
    assert isinstance(events[-1], Completion) and events[-1].text == "cde"
    with pytest.raises(ValueError, match="boom"):
        list(lm.stream(request))
    assert lm.usage.completion_tokens == 1  # only the finished stream counted

    # not streamed: the scripted stream's whole answer, or its error
    lm = ScriptedLM([Streamed("ab", restart, "cd", finish_reason="length"), Streamed("x", ValueError("boom"))])
    answer = lm.complete(request)
    assert (answer.text, answer.finish_reason) == ("cd", "length")
    with pytest.raises(ValueError, match="boom"):
        lm.complete(request)

    async def astream() -> list[Any]:
        return [event async for event in ScriptedLM(["hello"], chunk_size=2).astream(request)]

    events = asyncio.run(astream())
    assert [e.text for e in events[:-1]] == ["he", "ll", "o"]
    with pytest.raises(ValueError, match="chunk_size"):
        ScriptedLM(chunk_size=0)
