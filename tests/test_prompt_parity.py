"""Byte-for-byte parity of the prompt formats with DSPy 3.4.1.

The oracle is DSPy's real output: the shared fixtures (``shared/fixtures/dspy`` beside
the repository) and the extra ones captured by ``tests/fixtures/dspy_extra/capture.py``.
Field specs are built through ``field_spec`` from real annotations, exactly as the
compiler builds them, and whole messages are compared.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pytest
from pydantic import BaseModel, create_model

from sigforge.runtime.adapters import (
    ChatAdapter,
    JSONAdapter,
    annotation_name,
    constraints_text,
    default_instructions,
    field_spec,
    output_json_schema,
    response_format,
    type_note,
)
from sigforge.runtime.adapters.base import Adapter
from sigforge.runtime.adapters.types import infer_prefix
from sigforge.runtime.messages import Message
from sigforge.runtime.signature import FieldSpec, Signature

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "dspy"
EXTRA = Path(__file__).resolve().parent / "fixtures" / "dspy_extra"

needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(),
    reason=f"shared DSPy fixtures not found at {SHARED} (CI clones shared/ beside the repo)",
)

CHAT = ChatAdapter()
JSON = JSONAdapter()
QA_INSTRUCTIONS = "Answer questions with short factoid answers."


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _load_cases() -> ModuleType:
    name = "sigforge_tests_dspy_extra_cases"
    spec = importlib.util.spec_from_file_location(name, EXTRA / "cases.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


cases = _load_cases()


def specs(
    annotations: Mapping[str, Any],
    *,
    is_input: bool,
    descriptions: Mapping[str, str] | None = None,
) -> tuple[FieldSpec, ...]:
    descriptions = descriptions or {}
    return tuple(
        field_spec(name, annotation, description=descriptions.get(name, ""), is_input=is_input)
        for name, annotation in annotations.items()
    )


def format_call(
    adapter: Adapter,
    input_fields: Sequence[FieldSpec],
    output_fields: Sequence[FieldSpec],
    instructions: str,
    demos: Sequence[Mapping[str, Any]],
    inputs: Mapping[str, Any],
) -> list[Message]:
    """What a predictor sends: precomputed prompt parts, formatted demos, the inputs."""
    prompts = adapter.prompts(input_fields, output_fields, instructions)
    demo_messages = adapter.format_demos(input_fields, output_fields, demos)
    return adapter.messages(
        prompts.system, demo_messages, input_fields, inputs, prompts.output_request
    )


QA_INPUTS = specs({"context": list[str], "question": str}, is_input=True)
QA_OUTPUTS = specs({"answer": str, "confidence": float}, is_input=False)
REASONING = specs({"reasoning": str}, is_input=False)


# ----------------------------------------------------------------- shared fixtures


@needs_shared
@pytest.mark.parametrize(
    ("fixture", "adapter", "outputs"),
    [
        ("qa_chat_0demos", CHAT, QA_OUTPUTS),
        ("qa_chat_2demos_1partial", CHAT, QA_OUTPUTS),
        ("qa_cot_chat_0demos", CHAT, REASONING + QA_OUTPUTS),
        ("qa_json_0demos", JSON, QA_OUTPUTS),
    ],
)
def test_qa_messages(fixture: str, adapter: Adapter, outputs: tuple[FieldSpec, ...]) -> None:
    data = _load(SHARED / f"{fixture}.json")
    assert data["instructions"] == QA_INSTRUCTIONS
    got = format_call(
        adapter, QA_INPUTS, outputs, QA_INSTRUCTIONS, data.get("demos", []), data["inputs"]
    )
    assert got == data["messages"]


@needs_shared
def test_qa_response_format_schema() -> None:
    expected = _load(SHARED / "qa_json_response_format_schema.json")
    assert output_json_schema({"answer": str, "confidence": float}) == expected


@needs_shared
def test_cot_extended_signature_fields() -> None:
    data = _load(SHARED / "qa_cot_extended_signature.json")
    annotations = {"list[str]": list[str], "str": str, "float": float}
    for field in data["fields_in_order"]:
        spec = field_spec(
            field["name"],
            annotations[field["annotation"]],
            is_input=field["role"] == "input",
        )
        assert spec.prefix == field["prefix"]
        assert spec.type_name == field["annotation"]
        # DSPy's placeholder description "${name}" means "no description"
        assert field["desc"] == "${" + field["name"] + "}"
        assert spec.description == ""
    order = [f["name"] for f in data["fields_in_order"]]
    assert order == [s.name for s in QA_INPUTS + REASONING + QA_OUTPUTS]


@needs_shared
def test_assistant_rendering() -> None:
    data = _load(SHARED / "qa_assistant_rendering.json")
    assert CHAT.format_assistant(QA_OUTPUTS, data["outputs"]) == data["chat_assistant_message"]
    assert JSON.format_assistant(QA_OUTPUTS, data["outputs"]) == data["json_assistant_message"]


@needs_shared
def test_assistant_rendering_parses_back() -> None:
    data = _load(SHARED / "qa_assistant_rendering.json")

    class Outputs(BaseModel):
        answer: str
        confidence: float

    class QA(Signature):
        outputs = Outputs
        output_fields = QA_OUTPUTS

    chat = CHAT.parse(QA, data["chat_assistant_message"])
    assert chat.model_dump() == data["chat_parse_of_rendered"]
    parsed_json = JSON.parse(QA, data["json_assistant_message"])
    assert parsed_json.model_dump() == data["json_parse_of_rendered"]


CLASSIFY_INPUTS = specs({"review": str}, is_input=True, descriptions={"review": "The review text"})
CLASSIFY_OUTPUTS = specs(
    {"sentiment": Literal["positive", "negative", "neutral"], "confidence": float},
    is_input=False,
    descriptions={"confidence": "Confidence between 0 and 1"},
)


@needs_shared
@pytest.mark.parametrize(
    ("key", "adapter", "with_demos", "outputs"),
    [
        ("chat_0demos", CHAT, False, CLASSIFY_OUTPUTS),
        ("chat_demos", CHAT, True, CLASSIFY_OUTPUTS),
        ("json_0demos", JSON, False, CLASSIFY_OUTPUTS),
        ("json_demos", JSON, True, CLASSIFY_OUTPUTS),
        ("cot_chat_0demos", CHAT, False, REASONING + CLASSIFY_OUTPUTS),
    ],
)
def test_classify_messages(
    key: str, adapter: Adapter, with_demos: bool, outputs: tuple[FieldSpec, ...]
) -> None:
    data = _load(SHARED / "classify_all_formats.json")
    declared = [(f["name"], f["annotation"]) for f in data["signature_fields"]]
    assert declared == [
        ("review", "<class 'str'>"),
        ("sentiment", "typing.Literal['positive', 'negative', 'neutral']"),
        ("confidence", "<class 'float'>"),
    ]
    demos = data["demos"] if with_demos else []
    got = format_call(
        adapter, CLASSIFY_INPUTS, outputs, data["instructions"], demos, data["inputs"]
    )
    assert got == data[key]


@needs_shared
@pytest.mark.parametrize("program", ["predict_1demo", "predict_with_lm", "cot_1demo"])
def test_saved_program_prefixes(program: str) -> None:
    state = _load(SHARED / "saved_programs" / f"{program}.json")
    state = state.get("predict", state)
    names = {"Question:": "question", "Reasoning:": "reasoning", "Answer:": "answer"}
    for field in state["signature"]["fields"]:
        name = names[field["prefix"]]
        assert field_spec(name, str, is_input=name == "question").prefix == field["prefix"]
    assert state["signature"]["instructions"] == default_instructions(
        specs({"question": str}, is_input=True), specs({"answer": str}, is_input=False)
    )


# ----------------------------------------------------------------- extra fixtures

TYPES = _load(EXTRA / "types.json")
SIGNATURES = _load(EXTRA / "signatures.json")
RESPONSE_FORMATS = _load(EXTRA / "response_formats.json")


def test_extra_fixtures_cover_all_cases() -> None:
    assert set(TYPES["annotations"]) == set(cases.ANNOTATIONS)
    assert list(TYPES["prefixes"]) == cases.PREFIX_NAMES
    assert set(SIGNATURES) == set(cases.SIGNATURES)
    assert set(RESPONSE_FORMATS) == set(cases.RESPONSE_FORMATS)


@pytest.mark.parametrize("key", sorted(cases.ANNOTATIONS))
def test_annotation_name(key: str) -> None:
    assert annotation_name(cases.ANNOTATIONS[key]) == TYPES["annotations"][key]["name"]


@pytest.mark.parametrize("key", sorted(cases.ANNOTATIONS))
def test_type_note(key: str) -> None:
    assert type_note(cases.ANNOTATIONS[key]) == TYPES["annotations"][key]["note"]


def test_prefixes() -> None:
    assert {name: infer_prefix(name) for name in cases.PREFIX_NAMES} == TYPES["prefixes"]
    for name, prefix in TYPES["prefixes"].items():
        assert field_spec(name, str, is_input=True).prefix == f"{prefix}:"


@pytest.mark.parametrize("index", range(len(cases.CONSTRAINTS)))
def test_constraints_text(index: int) -> None:
    captured = TYPES["constraints"][index]
    pairs = [tuple(pair) for pair in captured["constraints"]]
    assert pairs == cases.CONSTRAINTS[index]
    assert constraints_text(dict(pairs)) == captured["text"]


def test_default_instructions() -> None:
    for captured in TYPES["default_instructions"]:
        inputs = specs(dict.fromkeys(captured["inputs"], str), is_input=True)
        outputs = specs(dict.fromkeys(captured["outputs"], str), is_input=False)
        assert default_instructions(inputs, outputs) == captured["instructions"]


def _case_specs(case: Any, role: str) -> tuple[FieldSpec, ...]:
    return tuple(
        field_spec(
            f.name,
            f.annotation,
            description=f.description,
            constraints=dict(f.constraints),
            is_input=role == "input",
        )
        for f in case.fields
        if f.role == role
    )


@pytest.mark.parametrize("adapter", [CHAT, JSON], ids=["chat", "json"])
@pytest.mark.parametrize("key", sorted(cases.SIGNATURES))
def test_signature_messages(key: str, adapter: Adapter) -> None:
    case = cases.SIGNATURES[key]
    captured = SIGNATURES[key]
    assert captured["declared_instructions"] == case.instructions
    input_fields = _case_specs(case, "input")
    output_fields = _case_specs(case, "output")
    # DSPy substitutes default instructions for empty ones; the compiler does the same
    # with default_instructions(), so the adapter sees non-empty text either way
    instructions = case.instructions or default_instructions(input_fields, output_fields)
    got = format_call(adapter, input_fields, output_fields, instructions, case.demos, case.inputs)
    assert got == captured[adapter.name]


@pytest.mark.parametrize("key", ["qa", "rich", "top_level_dict"])
def test_response_format(key: str) -> None:
    got = response_format(output_json_schema(cases.RESPONSE_FORMATS[key]))
    assert got == RESPONSE_FORMATS[key]
    # same key order too, so the request body is the same bytes
    assert json.dumps(got) == json.dumps(RESPONSE_FORMATS[key])


def test_response_format_nested_open_mapping_is_a_documented_deviation() -> None:
    # DSPy sends a strict schema that forces each nested dict to be empty
    # ({"properties": {}, "additionalProperties": false}); we ask for JSON mode instead
    dspy_sent = RESPONSE_FORMATS["nested_dict"]
    rows = dspy_sent["json_schema"]["schema"]["properties"]["rows"]["items"]
    assert rows["properties"] == {} and rows["additionalProperties"] is False
    assert output_json_schema(cases.RESPONSE_FORMATS["nested_dict"]) == {}
    assert response_format({}) == {"type": "json_object"}


def test_json_request_params_use_the_signature_schema() -> None:
    outputs: type[BaseModel] = create_model("Outputs", answer=(str, ...), confidence=(float, ...))

    class QA(Signature):
        output_schema = output_json_schema(
            {name: info.annotation for name, info in outputs.model_fields.items()}
        )

    assert JSON.request_params(QA) == {"response_format": RESPONSE_FORMATS["qa"]}
    assert CHAT.request_params(QA) == {}
