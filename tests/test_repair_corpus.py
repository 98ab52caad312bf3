"""The repair corpus (tests/repair_corpus.py) in both formats, and the repair vocabulary."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from repair_corpus import CASES, Answer, Case, Fails, Parsed, Tags, sections

from sigforge.runtime.adapters import REPAIRS, ParsedReply, adapter_for
from sigforge.runtime.adapters import parsing as parsing_module
from sigforge.runtime.errors import OutputParseError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "parsing.md"


@pytest.mark.parametrize("fmt", ["chat", "json"])
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case(case: Case, fmt: str) -> None:
    adapter = adapter_for(fmt)
    expected = case.chat if fmt == "chat" else case.json
    if isinstance(expected, Parsed):
        result = adapter.parse_reply(case.signature, case.reply)
        assert isinstance(result, ParsedReply)
        assert isinstance(result.outputs, case.signature.outputs)
        assert result.outputs.model_dump() == dict(expected.outputs)
        assert result.repairs == expected.repairs
        assert adapter.parse(case.signature, case.reply) == result.outputs
        return
    assert isinstance(expected, Fails)
    with pytest.raises(OutputParseError) as caught:
        adapter.parse_reply(case.signature, case.reply)
    error = caught.value
    assert error.field == expected.field
    assert expected.fragment in str(error)
    assert error.structural is expected.structural
    assert error.raw == case.reply
    if expected.field is not None:
        specs = {spec.name: spec for spec in case.signature.output_fields}
        assert error.expected == specs[expected.field].type_name
        assert f"`{expected.field}`" in str(error)


def test_corpus_size_and_ids() -> None:
    assert len(CASES) >= 40
    duplicates = [name for name, count in Counter(c.id for c in CASES).items() if count > 1]
    assert duplicates == []
    assert sum(isinstance(c.json, Fails) for c in CASES) >= 10  # must-fail cases too


def test_every_repair_is_exercised_in_both_formats() -> None:
    for fmt in ("chat", "json"):
        seen = {
            name
            for case in CASES
            for outcome in [case.chat if fmt == "chat" else case.json]
            if isinstance(outcome, Parsed)
            for name in outcome.repairs
        }
        other_format = "json_in_chat_format" if fmt == "json" else "markers_in_json_format"
        assert seen == set(REPAIRS) - {other_format}


def test_repair_names_are_unique_and_documented() -> None:
    assert len(set(REPAIRS)) == len(REPAIRS)
    text = DOCS.read_text(encoding="utf-8")
    for name in REPAIRS:
        assert f"`{name}`" in text, name


def test_well_formed_replies_never_call_json_repair(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str) -> object:
        raise AssertionError(f"json-repair called on {text!r}")

    monkeypatch.setattr(parsing_module, "_repair_json", refuse)
    well_formed = [
        (Answer, '{"answer": "Paris", "confidence": 0.9}'),
        (Answer, sections(answer="Paris", confidence="0.9")),
        (Tags, sections(tags="['a', 'b']", count="2", urgent="False", note="x", source="None")),
        (Tags, '{"tags": ["a"], "count": 2, "urgent": false, "note": "x", "source": null}'),
    ]
    for signature, reply in well_formed:
        for fmt in ("chat", "json"):
            assert adapter_for(fmt).parse(signature, reply) is not None
        layout = "json" if reply.startswith("{") else "chat"
        assert adapter_for(layout).parse_reply(signature, reply).repairs == ()


#: pieces of JSON, chat markers and prose, put together at random
_PIECES = [*"{}[]:,\"'/*\n ", "answer", "confidence", "0.9", "Paris", "```", "true", "//"]
_JSONISH = st.lists(
    st.sampled_from([*_PIECES, "[[ ## answer ## ]]", "[[ ## confidence ## ]]"]), max_size=40
).map("".join)


@settings(max_examples=300, deadline=None)
@given(reply=st.one_of(st.text(max_size=80), _JSONISH), fmt=st.sampled_from(["chat", "json"]))
def test_any_reply_parses_or_raises_output_parse_error(reply: str, fmt: str) -> None:
    try:
        parsed = adapter_for(fmt).parse_reply(Answer, reply)
    except OutputParseError as error:
        assert error.raw == reply
    else:
        assert set(parsed.repairs) <= set(REPAIRS)
        assert len(set(parsed.repairs)) == len(parsed.repairs)
