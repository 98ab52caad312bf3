"""Reading LM replies back into typed outputs: tolerant splitting, coercion, and errors."""

from __future__ import annotations

import enum
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from repair_corpus import signature_for

from sigforge.runtime.adapters import ChatAdapter, JSONAdapter, ParsedReply
from sigforge.runtime.adapters.base import Adapter
from sigforge.runtime.adapters.parsing import parse_plan, split_chat, split_json
from sigforge.runtime.errors import OutputParseError, SigforgeError

CHAT = ChatAdapter()
JSON = JSONAdapter()
BOTH = pytest.mark.parametrize("adapter", [CHAT, JSON], ids=["chat", "json"])


class QAOutputs(BaseModel):
    answer: str
    confidence: float


QA = signature_for(QAOutputs)


class ClassifyOutputs(BaseModel):
    sentiment: Literal["positive", "negative", "neutral"]
    confidence: float = Field(ge=0, le=1)


Classify = signature_for(ClassifyOutputs)


class Color(enum.Enum):
    RED = "red"
    GREEN = "grn"


class Point(BaseModel):
    x: int
    y: float = 0.0


class RichOutputs(BaseModel):
    tags: list[str]
    ok: bool
    count: int
    level: Literal[1, 2, 3]
    color: Color
    note: str | None
    where: Point
    extra: dict[str, int]
    hint: str = "none given"


Rich = signature_for(RichOutputs)


def chat_reply(**values: str) -> str:
    sections = [f"[[ ## {name} ## ]]\n{value}" for name, value in values.items()]
    return "\n\n".join([*sections, "[[ ## completed ## ]]"])


# ------------------------------------------------------------------ chat replies


def test_chat_plain_reply() -> None:
    result = CHAT.parse(QA, chat_reply(answer="Paris", confidence="0.9"))
    assert isinstance(result, QAOutputs)
    assert result == QAOutputs(answer="Paris", confidence=0.9)


@pytest.mark.parametrize(
    "reply",
    [
        # no newline before the next marker
        "[[ ## answer ## ]]\nParis[[ ## confidence ## ]]\n0.9[[ ## completed ## ]]",
        # extra or missing spaces inside the brackets
        "[[## answer ##]]\nParis\n\n[[  ##  confidence  ##  ]]\n0.9",
        # value on the marker's line
        "[[ ## answer ## ]] Paris\n[[ ## confidence ## ]] 0.9\n[[ ## completed ## ]]",
        # prose before the first marker and after the completed marker
        "Sure! Here it is.\n\n[[ ## answer ## ]]\nParis\n\n[[ ## confidence ## ]]\n0.9\n\n"
        "[[ ## completed ## ]]\nLet me know if you need more.",
        # an unknown marker ends the previous section and is ignored
        "[[ ## answer ## ]]\nParis\n\n[[ ## notes ## ]]\nfrom memory\n\n[[ ## confidence ## ]]\n0.9",
        # a repeated marker: the first section counts
        "[[ ## answer ## ]]\nParis\n[[ ## confidence ## ]]\n0.9\n[[ ## answer ## ]]\nLyon",
        # fields in another order
        "[[ ## confidence ## ]]\n0.9\n\n[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]",
    ],
)
def test_chat_tolerates_layout(reply: str) -> None:
    assert CHAT.parse(QA, reply) == QAOutputs(answer="Paris", confidence=0.9)


def test_chat_text_value_is_kept_verbatim_inside() -> None:
    text = "Line one\n\n  indented: {not json} ['x']\nLine «three»"
    result = CHAT.parse(QA, chat_reply(answer=text, confidence="1"))
    assert result == QAOutputs(answer=text, confidence=1.0)


def test_chat_reply_without_markers_may_be_json() -> None:
    reply = 'Here you go: {"answer": "Paris", "confidence": 0.9}'
    assert CHAT.parse(QA, reply) == QAOutputs(answer="Paris", confidence=0.9)


def test_split_chat_returns_only_wanted_names() -> None:
    text = "intro [[ ## a ## ]] one [[ ## b ## ]]\n two \n[[ ## c ## ]] three"
    repairs: list[str] = []
    assert split_chat(text, frozenset({"a", "b"}), repairs) == {"a": "one", "b": "two"}
    assert repairs == ["extra_sections_dropped"]
    repairs.clear()
    assert split_chat("no markers", frozenset({"a"}), repairs) == {}
    assert split_chat("[[ ## a ## ]] 1 [[ ## completed ## ]]", frozenset({"a"}), repairs) == {
        "a": "1"
    }
    assert repairs == []  # the closing marker is not an extra section


# ------------------------------------------------------------------ JSON replies


@pytest.mark.parametrize(
    "reply",
    [
        '{"answer": "Paris", "confidence": 0.9}',
        '  {"answer": "Paris", "confidence": "0.9", "extra": [1, 2]}  ',
        '```json\n{"answer": "Paris", "confidence": 0.9}\n```',
        '```\n{"answer": "Paris", "confidence": 0.9}\n```',
        'Sure:\n```json\n{"answer": "Paris", "confidence": 0.9}\n```\nDone.',
        'The answer {is} below.\n{"answer": "Paris", "confidence": 0.9} -- hope it helps {:',
        # the JSON adapter also reads a reply in the chat layout
        "[[ ## answer ## ]]\nParis\n\n[[ ## confidence ## ]]\n0.9",
    ],
)
def test_json_tolerates_layout(reply: str) -> None:
    assert JSON.parse(QA, reply) == QAOutputs(answer="Paris", confidence=0.9)


def test_json_text_field_accepts_other_json_values() -> None:
    assert JSON.parse(QA, '{"answer": 42, "confidence": 1}') == QAOutputs(
        answer="42", confidence=1.0
    )
    assert JSON.parse(QA, '{"answer": ["a", "b"], "confidence": 1}') == QAOutputs(
        answer='["a", "b"]', confidence=1.0
    )


def test_json_reads_what_the_standard_library_reads() -> None:
    # a lone surrogate escape is valid JSON for json.loads (pydantic-core refuses it)
    reply = '{"answer": "a\\ud800b", "confidence": 1}'
    assert JSON.parse(QA, reply) == QAOutputs(answer="a\ud800b", confidence=1.0)


def test_split_json() -> None:
    names = frozenset({"a"})

    def split(text: str) -> tuple[dict[str, Any] | None, list[str]]:
        repairs: list[str] = []
        return split_json(text, names, repairs), repairs

    assert split('{"a": 1}') == ({"a": 1}, [])
    assert split("[1, 2]") == (None, [])  # valid JSON, but not an object
    assert split('text {"a": {"b": [1, {"c": 2}]}} more') == (
        {"a": {"b": [1, {"c": 2}]}},
        ["json_in_prose"],
    )
    assert split('```json\n[1]\n```\nthen {"a": 1}') == ({"a": 1}, ["json_in_prose"])
    assert split("no object here") == (None, [])
    # objects without an output key are passed over; other keys are dropped
    assert split('{"b": 1} {"a": 2, "b": 3}') == ({"a": 2}, ["json_in_prose", "extra_keys_dropped"])


# ------------------------------------------------------------------ coercion


@BOTH
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("positive", "positive"),
        ("POSITIVE", "positive"),
        ("Negative", "negative"),
        ("'neutral'", "neutral"),
        ('"negative"', "negative"),
        ("Literal['positive']", "positive"),
        ("neutral.", "neutral"),
    ],
)
def test_literal_matching(adapter: Adapter, raw: str, expected: str) -> None:
    reply = (
        chat_reply(sentiment=raw, confidence="0.5")
        if adapter is CHAT
        else f'{{"sentiment": {_json_str(raw)}, "confidence": 0.5}}'
    )
    result = adapter.parse(Classify, reply)
    assert result == ClassifyOutputs(sentiment=expected, confidence=0.5)  # type: ignore[arg-type]


def _json_str(text: str) -> str:
    import json

    return json.dumps(text)


RICH_CHAT = {
    "tags": "['a', 'b']",
    "ok": "yes",
    "count": "3",
    "level": "2",
    "color": "RED",
    "note": "None",
    "where": '{"x": 1}',
    "extra": '```json\n{"k": 1}\n```',
}
RICH_EXPECTED = RichOutputs(
    tags=["a", "b"],
    ok=True,
    count=3,
    level=2,
    color=Color.RED,
    note=None,
    where=Point(x=1),
    extra={"k": 1},
)


def test_chat_coerces_every_kind() -> None:
    assert CHAT.parse(Rich, chat_reply(**RICH_CHAT)) == RICH_EXPECTED


def test_json_coerces_every_kind() -> None:
    reply = (
        '{"tags": "[\\"a\\", \\"b\\"]", "ok": "True", "count": 3.0, "level": "2",'
        ' "color": "Color.RED", "note": null, "where": {"x": 1}, "extra": {"k": 1}}'
    )
    assert JSON.parse(Rich, reply) == RICH_EXPECTED


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("True", True),
        ("true", True),
        ("Yes", True),
        ("False", False),
        ("no", False),
        ("'false'", False),
        ("0", False),
        ("on", True),
    ],
)
def test_bool_words(raw: str, expected: bool) -> None:
    result = CHAT.parse(Rich, chat_reply(**{**RICH_CHAT, "ok": raw}))
    assert isinstance(result, RichOutputs)
    assert result.ok is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("red", Color.RED), ("Red", Color.RED), ("grn", Color.GREEN), ("GREEN", Color.GREEN)],
)
def test_enum_by_value_or_name(raw: str, expected: Color) -> None:
    result = CHAT.parse(Rich, chat_reply(**{**RICH_CHAT, "color": raw}))
    assert isinstance(result, RichOutputs)
    assert result.color is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('["x", "y"]', ["x", "y"]),
        ("['x', 'y']", ["x", "y"]),
        ('```json\n["x"]\n```', ["x"]),
        ("```python\n['x']\n```", ["x"]),
        ("```['x']```", ["x"]),
        ("[]", []),
    ],
)
def test_list_from_text(raw: str, expected: list[str]) -> None:
    result = CHAT.parse(Rich, chat_reply(**{**RICH_CHAT, "tags": raw}))
    assert isinstance(result, RichOutputs)
    assert result.tags == expected


def test_optional_text_and_missing_fields() -> None:
    class Outputs(BaseModel):
        answer: str
        note: str | None
        source: str = "unknown"

    sig = signature_for(Outputs)
    assert CHAT.parse(sig, chat_reply(answer="A", note="null")) == Outputs(answer="A", note=None)
    assert CHAT.parse(sig, chat_reply(answer="A", note="see page 2")) == Outputs(
        answer="A", note="see page 2"
    )
    # a missing field that allows None is None; one with a default takes it
    assert CHAT.parse(sig, chat_reply(answer="A")) == Outputs(answer="A", note=None)
    assert JSON.parse(sig, '{"answer": "A", "source": "book"}') == Outputs(
        answer="A", note=None, source="book"
    )


def test_parse_plan_is_cached() -> None:
    assert parse_plan(Rich) is parse_plan(Rich)


# ------------------------------------------------------------------ errors


@BOTH
def test_missing_field_is_structural(adapter: Adapter) -> None:
    reply = chat_reply(answer="Paris") if adapter is CHAT else '{"answer": "Paris"}'
    with pytest.raises(OutputParseError) as caught:
        adapter.parse(QA, reply)
    error = caught.value
    assert error.structural is True
    assert error.field == "confidence"
    assert error.expected == "float"
    assert error.raw == reply
    assert "`confidence`" in str(error)


def test_missing_fields_are_all_named() -> None:
    reply = chat_reply(count="1")
    with pytest.raises(OutputParseError) as caught:
        CHAT.parse(Rich, reply)
    error = caught.value
    assert error.structural and error.field == "tags" and error.expected == "list[str]"
    message = str(error)
    for name in ("tags", "ok", "level", "color", "where", "extra"):
        assert f"`{name}`" in message
    assert "`note`" not in message and "`hint`" not in message  # optional / defaulted


@pytest.mark.parametrize(
    ("adapter", "reply"),
    [
        (CHAT, "Paris, I am fairly sure."),
        (CHAT, "[[ ## completed ## ]]"),
        (JSON, "Paris"),
        (JSON, '["Paris", 0.9]'),
        (JSON, '{"city": "Paris"}'),
    ],
)
def test_no_usable_structure(adapter: Adapter, reply: str) -> None:
    with pytest.raises(OutputParseError) as caught:
        adapter.parse(QA, reply)
    error = caught.value
    assert error.structural is True
    assert error.field is None
    assert error.raw == reply
    assert "none of the output fields" in str(error)


@BOTH
@pytest.mark.parametrize("reply", ["", "   \n\t "])
def test_empty_reply(adapter: Adapter, reply: str) -> None:
    with pytest.raises(OutputParseError) as caught:
        adapter.parse(QA, reply)
    error = caught.value
    assert error.structural is True
    assert error.field is None
    assert "empty" in str(error)
    assert isinstance(error, SigforgeError)


@BOTH
def test_invalid_value_names_field_and_type(adapter: Adapter) -> None:
    reply = (
        chat_reply(answer="Paris", confidence="very high")
        if adapter is CHAT
        else '{"answer": "Paris", "confidence": "very high"}'
    )
    with pytest.raises(OutputParseError) as caught:
        adapter.parse(QA, reply)
    error = caught.value
    assert error.structural is False
    assert error.field == "confidence"
    assert error.expected == "float"
    assert error.raw == reply
    assert str(error) == (
        "The LM reply has an invalid output value: `confidence` should be float: "
        "Input should be a valid number, unable to parse string as a number (got 'very high')"
    )


def test_invalid_literal_and_constraint() -> None:
    with pytest.raises(OutputParseError) as caught:
        CHAT.parse(Classify, chat_reply(sentiment="mixed", confidence="0.5"))
    assert caught.value.field == "sentiment"
    assert caught.value.expected == "Literal['positive', 'negative', 'neutral']"
    assert "'mixed'" in str(caught.value)

    with pytest.raises(OutputParseError) as caught:
        CHAT.parse(Classify, chat_reply(sentiment="positive", confidence="1.5"))
    assert caught.value.field == "confidence"
    assert "less than or equal to 1" in str(caught.value)
    assert caught.value.structural is False


def test_invalid_nested_value_shows_its_location() -> None:
    reply = chat_reply(**{**RICH_CHAT, "where": '{"x": "left"}'})
    with pytest.raises(OutputParseError) as caught:
        CHAT.parse(Rich, reply)
    assert caught.value.field == "where"
    assert caught.value.expected == "Point"
    assert "`where` should be Point: x: Input should be a valid integer" in str(caught.value)
    assert '(got \'{"x": "left"}\')' in str(caught.value)  # the value as found


def test_invalid_value_error_shows_the_text_found() -> None:
    with pytest.raises(OutputParseError) as caught:
        CHAT.parse(QA, chat_reply(answer="Paris", confidence="1,000"))
    assert "(got '1,000')" in str(caught.value)


# ------------------------------------------------------------------ repairs


@BOTH
def test_parse_reply_of_a_well_formed_reply_has_no_repairs(adapter: Adapter) -> None:
    reply = adapter.format_assistant(Rich.output_fields, RICH_EXPECTED.model_dump())
    parsed = adapter.parse_reply(Rich, reply)
    assert parsed == ParsedReply(RICH_EXPECTED, ())
    with pytest.raises(AttributeError):
        parsed.repairs = ("json_fence",)  # type: ignore[misc]


def test_parse_reply_records_each_repair_once_in_order() -> None:
    reply = (
        "```json\n{'tags': 'a', 'ok': 'yes', 'count': '3', 'level': 2, 'color': 'Red',"
        " 'note': null, 'where': {'x': 1, 'z': 0}, 'extra': {'k': 1}, 'why': 'because',}\n```"
    )
    parsed = JSON.parse_reply(Rich, reply)
    assert parsed.outputs == RichOutputs(
        tags=["a"], ok=True, count=3, level=2, color=Color.RED, note=None,
        where=Point(x=1), extra={"k": 1},
    )  # fmt: skip
    assert parsed.repairs == (
        "json_fence",
        "json_syntax",
        "extra_keys_dropped",  # `why`
        "single_as_list",
        "bool_from_string",
        "number_from_string",
        "choice_case",
        "default_for_missing",  # `hint`
    )  # `where.z` is ignored by Point (which allows unknown keys): nothing to record
    assert CHAT.parse_reply(Rich, reply).repairs == ("json_in_chat_format", *parsed.repairs)


# ------------------------------------------------------------------ round trips

_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="[]"),
    max_size=60,
).map(str.strip)


@given(answer=_TEXT, confidence=st.floats(allow_nan=False, allow_infinity=False))
def test_chat_round_trip(answer: str, confidence: float) -> None:
    reply = CHAT.format_assistant(QA.output_fields, {"answer": answer, "confidence": confidence})
    assert CHAT.parse(QA, reply) == QAOutputs(answer=answer, confidence=confidence)


@given(answer=st.text(max_size=60), confidence=st.floats(allow_nan=False, allow_infinity=False))
def test_json_round_trip(answer: str, confidence: float) -> None:
    reply = JSON.format_assistant(QA.output_fields, {"answer": answer, "confidence": confidence})
    assert JSON.parse(QA, reply) == QAOutputs(answer=answer, confidence=confidence)


def test_rich_round_trip_both_formats() -> None:
    values: dict[str, Any] = RICH_EXPECTED.model_dump()
    for adapter in (CHAT, JSON):
        reply = adapter.format_assistant(Rich.output_fields, values)
        assert adapter.parse(Rich, reply) == RICH_EXPECTED
