"""Formatting pieces and the choices made where DSPy has no behaviour to copy.

Byte parity with DSPy itself is checked in ``test_prompt_parity.py``.
"""

from __future__ import annotations

import datetime
import enum
import inspect
import json
import textwrap
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from sigforge.runtime.adapters import (
    ADAPTERS,
    ChatAdapter,
    JSONAdapter,
    adapter_for,
    constraints_text,
    field_spec,
    output_json_schema,
    response_format,
)
from sigforge.runtime.adapters.prompts import placeholder
from sigforge.runtime.adapters.values import format_value
from sigforge.runtime.errors import ConfigurationError
from sigforge.runtime.signature import AdapterPrompts, FieldSpec

CHAT = ChatAdapter()
JSON = JSONAdapter()


class Mood(enum.Enum):
    HAPPY = "happy"


class Item(BaseModel):
    name: str
    when: datetime.date


# ------------------------------------------------------------------ field specs


def test_field_spec_of_an_output() -> None:
    spec = field_spec(
        "confidence_score",
        float,
        description="How sure",
        constraints={"ge": 0.0, "le": 1.0},
        is_input=False,
    )
    assert spec == FieldSpec(
        name="confidence_score",
        type_name="float",
        description="How sure",
        constraints="greater than or equal to: 0.0, less than or equal to: 1.0",
        type_note="must be a single float value",
        is_str=False,
        prefix="Confidence Score:",
    )


def test_field_spec_of_an_input_has_no_type_note() -> None:
    spec = field_spec("tags", list[str], is_input=True)
    assert spec == FieldSpec(name="tags", type_name="list[str]", is_str=False, prefix="Tags:")
    assert field_spec("question", str, is_input=False).is_str is True
    assert field_spec("maybe", str | None, is_input=False).is_str is False


def test_constraints_without_dspy_wording() -> None:
    # DSPy prints nothing for these; min/max_items read like min/max_length
    assert constraints_text({"min_items": 1, "max_items": 4}) == (
        "minimum length: 1, maximum length: 4"
    )
    assert constraints_text({"pattern": r"^[A-Z]{3}$"}) == (
        "matching the regular expression: ^[A-Z]{3}$"
    )
    assert constraints_text({}) == ""
    assert constraints_text(None) == ""


def test_unknown_constraint_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown constraint 'minimum'"):
        constraints_text({"minimum": 1})


# ------------------------------------------------------------------ values


@pytest.mark.parametrize(
    ("value", "is_str", "expected"),
    [
        ("as is\n", True, "as is\n"),
        (3, False, "3"),
        (0.1 + 0.2, False, "0.30000000000000004"),
        (True, False, "True"),
        (None, True, "None"),
        (["a", "ü"], False, '["a", "ü"]'),
        ({"k": [1, None]}, False, '{"k": [1, null]}'),
        ((1, 2), False, "[1, 2]"),
        (Mood.HAPPY, False, "happy"),
        (datetime.date(2024, 2, 29), False, "2024-02-29"),
        (
            Item(name="x", when=datetime.date(2024, 1, 1)),
            False,
            '{"name": "x", "when": "2024-01-01"}',
        ),
        # a list given to a text field: DSPy's numbered blobs
        ([], True, "N/A"),
        (["solo"], True, "«solo»"),
        (["a", "b\nc"], True, "[1] «a»\n[2] «««\n    b\n    c\n»»»"),
        # non-text items (DSPy fails on these): their str()
        ([1, None], True, "[1] «1»\n[2] «None»"),
    ],
)
def test_format_value(value: Any, is_str: bool, expected: str) -> None:
    assert format_value(value, is_str=is_str) == expected


# ------------------------------------------------------------------ messages

INPUTS = (
    field_spec("question", str, is_input=True),
    field_spec("context", list[str], is_input=True),
)
OUTPUTS = (
    field_spec("answer", str, is_input=False),
    field_spec("label", Literal["a", "b"], is_input=False),
)


def test_format_user_renders_present_fields_in_declared_order() -> None:
    values = {"context": ["c1"], "question": "Why?", "unrelated": 1}
    assert CHAT.format_user(INPUTS, values, "Respond.") == (
        '[[ ## question ## ]]\nWhy?\n\n[[ ## context ## ]]\n["c1"]\n\nRespond.'
    )
    assert CHAT.format_user(INPUTS, {"context": []}, None, prefix="Example.") == (
        "Example.\n\n[[ ## context ## ]]\n[]"
    )


def test_format_user_strips_the_whole_message_only() -> None:
    assert CHAT.format_user(INPUTS, {"question": "  padded  "}, None) == (
        "[[ ## question ## ]]\n  padded"
    )


def test_messages_layout() -> None:
    demo = [
        {"role": "user", "content": "u"},
        {"role": "assistant", "content": "a"},
    ]
    messages = CHAT.messages("SYS", demo, INPUTS, {"question": "q"}, "Go.")  # type: ignore[arg-type]
    assert messages == [
        {"role": "system", "content": "SYS"},
        {"role": "user", "content": "u"},
        {"role": "assistant", "content": "a"},
        {"role": "user", "content": "[[ ## question ## ]]\nq\n\nGo."},
    ]
    # nothing to say: no empty user message
    assert CHAT.messages("SYS", [], INPUTS, {}, None) == [{"role": "system", "content": "SYS"}]


@pytest.mark.parametrize("adapter", [CHAT, JSON], ids=["chat", "json"])
def test_prompts_are_the_constant_parts(adapter: ChatAdapter | JSONAdapter) -> None:
    prompts = adapter.prompts(INPUTS, OUTPUTS, "Do it.")
    assert prompts == AdapterPrompts(
        system=adapter.system_message(INPUTS, OUTPUTS, "Do it."),
        output_request=adapter.output_request(OUTPUTS),
    )


@pytest.mark.parametrize("outputs", [(), OUTPUTS, (FieldSpec("note", "str", type_note='a "q" \\ é ✓ \n\t\x01 \u2028'),)])
def test_json_structure_lists_the_outputs_as_indented_json(outputs: tuple[FieldSpec, ...]) -> None:
    """The outputs' placeholders are written as json.dumps(indent=2) writes them (without
    running its slow pure-Python encoder): escapes, non-ASCII text, no fields at all."""
    placeholders = {spec.name: placeholder(spec, with_note=True) for spec in outputs}
    expected = json.dumps(placeholders, indent=2, ensure_ascii=False)
    assert JSON.field_structure(INPUTS, outputs).endswith(f"\n\n{expected}")


@settings(max_examples=400)
@given(st.text(alphabet=st.sampled_from(["a", "é", " ", "\t", "\n", "\r", "\x0b", "\u2028", "\u3000"])))
def test_objective_reads_instructions_as_a_cleaned_dedented_docstring(instructions: str) -> None:
    """As DSPy: inspect.cleandoc, then textwrap.dedent, one line per line (text without tabs
    or indented lines takes a shorter way, which must agree)."""
    lines = textwrap.dedent(inspect.cleandoc(instructions)).splitlines()
    expected = "In adhering to this structure, your objective is: " + "".join(
        f"\n        {line}" for line in lines
    )
    assert CHAT.system_message(INPUTS, OUTPUTS, instructions).endswith(f"\n{expected}")


def test_output_requests() -> None:
    assert CHAT.output_request(OUTPUTS) == (
        "Respond with the corresponding output fields, starting with the field "
        "`[[ ## answer ## ]]`, then `[[ ## label ## ]]` (must be formatted as a valid Python "
        "Literal['a', 'b']), and then ending with the marker for `[[ ## completed ## ]]`."
    )
    assert JSON.output_request(OUTPUTS) == (
        "Respond with a JSON object in the following order of fields: `answer`, then `label` "
        "(must be formatted as a valid Python Literal['a', 'b'])."
    )


def test_format_assistant_missing_values() -> None:
    assert CHAT.format_assistant(OUTPUTS, {"label": "a"}) == (
        "[[ ## answer ## ]]\nNone\n\n[[ ## label ## ]]\na\n\n[[ ## completed ## ]]\n"
    )
    assert CHAT.format_assistant(OUTPUTS, {"label": "a"}, missing="(none) ") == (
        "[[ ## answer ## ]]\n(none) \n\n[[ ## label ## ]]\na\n\n[[ ## completed ## ]]\n"
    )
    assert JSON.format_assistant(OUTPUTS, {"answer": "ü"}) == (
        '{\n  "answer": "ü",\n  "label": null\n}'
    )


def test_demos_without_inputs_or_outputs_are_dropped() -> None:
    demos = [{"question": "only input"}, {"answer": "only output"}, {}]
    assert CHAT.format_demos(INPUTS, OUTPUTS, demos) == []


def test_partial_demos_come_first() -> None:
    complete = {"question": "q1", "context": ["c"], "answer": "a1", "label": "a"}
    partial = {"question": "q2", "label": "b"}
    messages = JSON.format_demos(INPUTS, OUTPUTS, [complete, partial])
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == (
        "This is an example of the task, though some input or output fields are not supplied."
        "\n\n[[ ## question ## ]]\nq2"
    )
    assert messages[1]["content"] == (
        '{\n  "answer": "Not supplied for this particular example. ",\n  "label": "b"\n}'
    )
    assert messages[2]["content"] == '[[ ## question ## ]]\nq1\n\n[[ ## context ## ]]\n["c"]'


# ------------------------------------------------------------------ request parameters


def test_open_ended_mappings_use_json_mode() -> None:
    assert output_json_schema({"counts": dict[str, int]}) == {}
    assert output_json_schema({"rows": list[dict[str, Any]]}) == {}
    assert output_json_schema({"maybe": dict[str, int] | None}) == {}
    assert response_format({}) == {"type": "json_object"}


def test_schemas_keep_the_order_of_union_and_literal_members() -> None:
    """Unions and literals compare as sets (`int | str == str | int`), but their schemas list
    the members in order: schemas made once per type must not be shared between them."""

    def members(annotation: Any) -> list[Any]:
        prop = output_json_schema({"x": annotation})["properties"]["x"]
        prop = prop.get("items", prop)
        return [m["type"] for m in prop["anyOf"]] if "anyOf" in prop else prop["enum"]

    for _ in range(2):  # the second time, from the schemas made the first time
        assert members(int | str) == ["integer", "string"]
        assert members(str | int) == ["string", "integer"]
        assert members(list[int | str]) == ["integer", "string"]
        assert members(list[str | int]) == ["string", "integer"]
        assert members(Literal["a", "b"]) == ["a", "b"]
        assert members(Literal["b", "a"]) == ["b", "a"]
    notes = [field_spec("x", t, is_input=False).type_note for t in (list[int | str], list[str | int])]
    assert [note.index('"integer"') < note.index('"string"') for note in notes] == [True, False]


def test_strict_schema_for_nested_models() -> None:
    class Inner(BaseModel):
        note: str | None = None
        size: int = 3

    schema = output_json_schema({"inner": Inner, "items": list[Inner]})
    inner = schema["$defs"]["Inner"]
    assert inner["required"] == ["note", "size"]
    assert inner["additionalProperties"] is False
    assert "default" not in inner["properties"]["note"]  # null defaults dropped
    assert inner["properties"]["size"]["default"] == 3
    assert response_format(schema)["json_schema"]["name"] == "DSPyProgramOutputs"


def test_adapter_registry() -> None:
    assert adapter_for("chat") is ADAPTERS["chat"]
    assert isinstance(adapter_for("json"), JSONAdapter)
    assert {name: type(a).name for name, a in ADAPTERS.items()} == {"chat": "chat", "json": "json"}
    with pytest.raises(ConfigurationError, match="unknown adapter 'xml'"):
        adapter_for("xml")
