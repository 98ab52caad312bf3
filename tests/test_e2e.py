"""End to end: `.sig` -> generated package -> typed predictor -> real HTTP on loopback.

The generated package for tests/fixtures/sigs mirrors the signatures behind DSPy's
reference fixtures, so the requests our predictors send are compared byte for byte with
what DSPy 3.4.1 sends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from support import DSPY_FIXTURES, FIXTURES, generate_package, import_generated

from sigforge.runtime import (
    LM,
    Cache,
    GeneratedCodeVersionError,
    OutputParseError,
    StateError,
    check_generated_version,
    context,
    history,
)
from sigforge.testing import OpenAICompatServer, Reply

PACKAGE = "e2e_generated"

CHAT_REPLY = "[[ ## answer ## ]]\nParis\n\n[[ ## confidence ## ]]\n0.9\n\n[[ ## completed ## ]]"
COT_REPLY = (
    "[[ ## reasoning ## ]]\nThe context says so.\n\n"
    "[[ ## answer ## ]]\nParis\n\n[[ ## confidence ## ]]\n0.9\n\n[[ ## completed ## ]]"
)


@pytest.fixture(scope="module")
def qa(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    generate_package(FIXTURES / "sigs", tmp_path_factory.mktemp("pkg"), PACKAGE)
    return import_generated(PACKAGE, "dspy_qa")


@pytest.fixture(scope="module")
def classify(qa: ModuleType) -> ModuleType:
    return import_generated(PACKAGE, "dspy_classify")


def dspy_fixture(name: str) -> dict[str, Any]:
    path = DSPY_FIXTURES / name
    if not path.exists():
        pytest.skip(f"DSPy reference fixtures not found at {DSPY_FIXTURES}")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def server_lm(request: pytest.FixtureRequest) -> Iterator[tuple[OpenAICompatServer, LM]]:
    replies = getattr(request, "param", [CHAT_REPLY])
    with OpenAICompatServer(replies, max_lifetime=60) as server:
        lm = LM("openai/gpt-4o-mini", base_url=server.base_url, api_key="sk-test", cache=False,
                backoff_base=0.001, backoff_max=0.01)
        yield server, lm
        lm.close()


def test_predict_over_http_returns_typed_outputs_and_sends_dspy_bytes(
    qa: ModuleType, server_lm: tuple[OpenAICompatServer, LM]
) -> None:
    server, lm = server_lm
    fixture = dspy_fixture("qa_chat_0demos.json")
    out = qa.QAPredict(lm=lm)(**fixture["inputs"])
    assert isinstance(out, qa.QAOutputs)
    assert (out.answer, out.confidence) == ("Paris", 0.9)
    (req,) = server.requests
    assert req.json["model"] == "gpt-4o-mini"
    assert req.messages == fixture["messages"]
    assert "response_format" not in req.json


def test_demos_with_a_partial_one_match_dspy(
    qa: ModuleType, server_lm: tuple[OpenAICompatServer, LM]
) -> None:
    server, lm = server_lm
    fixture = dspy_fixture("qa_chat_2demos_1partial.json")
    predictor = qa.QAPredict(lm=lm, demos=fixture["demos"])
    predictor(**fixture["inputs"])
    assert server.requests[0].messages == fixture["messages"]


@pytest.mark.parametrize("server_lm", [[COT_REPLY]], indirect=True)
def test_chain_of_thought_adds_reasoning_first(
    qa: ModuleType, server_lm: tuple[OpenAICompatServer, LM]
) -> None:
    server, lm = server_lm
    fixture = dspy_fixture("qa_cot_chat_0demos.json")
    out = qa.QACoT(lm=lm)(**fixture["inputs"])
    assert isinstance(out, qa.QAWithReasoningOutputs)
    assert list(type(out).model_fields) == ["reasoning", "answer", "confidence"]
    assert out.reasoning == "The context says so."
    assert server.requests[0].messages == fixture["messages"]


@pytest.mark.parametrize("server_lm", [['{"answer": "Paris", "confidence": 0.9}']], indirect=True)
def test_json_adapter_sends_dspy_messages_and_schema(
    qa: ModuleType, server_lm: tuple[OpenAICompatServer, LM]
) -> None:
    server, lm = server_lm
    fixture = dspy_fixture("qa_json_0demos.json")
    schema = dspy_fixture("qa_json_response_format_schema.json")
    out = qa.QAJson(lm=lm)(**fixture["inputs"])
    assert out.answer == "Paris"
    (req,) = server.requests
    assert req.messages == fixture["messages"]
    assert req.json["response_format"]["json_schema"]["schema"] == schema


def test_classify_all_formats_match_dspy(classify: ModuleType) -> None:
    fixture = dspy_fixture("classify_all_formats.json")
    inputs = classify.ClassifyInputs(**fixture["inputs"])
    demos = fixture["demos"]
    assert classify.ClassifyPredict().format(inputs) == fixture["chat_0demos"]
    assert classify.ClassifyPredict(demos=demos).format(inputs) == fixture["chat_demos"]
    assert classify.ClassifyJson().format(inputs) == fixture["json_0demos"]
    assert classify.ClassifyJson(demos=demos).format(inputs) == fixture["json_demos"]
    assert classify.ClassifyCoT().format(inputs) == fixture["cot_chat_0demos"]


@pytest.mark.parametrize(
    "server_lm", [["[[ ## sentiment ## ]]\nPositive\n[[ ## confidence ## ]]\n\"0.8\""]], indirect=True
)
def test_tolerant_parse_needs_one_call(
    classify: ModuleType, server_lm: tuple[OpenAICompatServer, LM]
) -> None:
    server, lm = server_lm
    out = classify.ClassifyPredict(lm=lm)(review="Great")
    assert (out.sentiment, out.confidence) == ("positive", 0.8)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "server_lm",
    [["Sure! The answer is Paris.", '{"answer": "Paris", "confidence": 0.5}']],
    indirect=True,
)
def test_unparseable_chat_reply_falls_back_to_json_once_and_is_counted(
    qa: ModuleType, server_lm: tuple[OpenAICompatServer, LM]
) -> None:
    server, lm = server_lm
    out = qa.QAPredict(lm=lm)(context=["c"], question="q")
    assert (out.answer, out.confidence) == ("Paris", 0.5)
    assert len(server.requests) == 2
    assert "response_format" not in server.requests[0].json
    assert "response_format" in server.requests[1].json
    calls = [e for e in history.last(10) if e.model == lm.model][-2:]
    assert len(calls) == 2
    assert lm.usage == calls[0].usage + calls[1].usage
    assert calls[0].usage.prompt_tokens > 0 and calls[1].usage.prompt_tokens > 0


@pytest.mark.parametrize("server_lm", [["no fields here", "still nothing"]], indirect=True)
def test_fallback_happens_once_then_a_typed_error(
    qa: ModuleType, server_lm: tuple[OpenAICompatServer, LM]
) -> None:
    server, lm = server_lm
    with pytest.raises(OutputParseError) as info:
        qa.QAPredict(lm=lm)(context=["c"], question="q")
    assert len(server.requests) == 2
    assert info.value.raw == "still nothing"


@pytest.mark.parametrize(
    "server_lm",
    [["[[ ## answer ## ]]\nParis\n\n[[ ## confidence ## ]]\nvery high\n\n[[ ## completed ## ]]"]],
    indirect=True,
)
def test_bad_value_is_a_typed_error_naming_the_field(
    qa: ModuleType, server_lm: tuple[OpenAICompatServer, LM]
) -> None:
    server, lm = server_lm
    with pytest.raises(OutputParseError) as info:
        qa.QAPredict(lm=lm)(context=["c"], question="q")
    err = info.value
    assert err.field == "confidence"
    assert err.expected == "float"
    assert "very high" in err.raw
    assert "confidence" in str(err)
    assert len(server.requests) == 1  # a bad value is not retried through another format


def test_constraints_from_the_sig_file_are_enforced(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "bounded.sig").write_text(
        'signature B {\n in q: str (min_length=2)\n out score: float (ge=0.0, le=1.0)\n}\n'
        "predictor BP = predict(B)\n"
    )
    generate_package(src, tmp_path, "bounded_pkg")
    mod = import_generated("bounded_pkg", "bounded")
    with OpenAICompatServer(["[[ ## score ## ]]\n1.5\n[[ ## completed ## ]]"]) as server:
        lm = LM("openai/m", base_url=server.base_url, cache=False)
        with pytest.raises(OutputParseError) as info:
            mod.BP(lm=lm)(q="ok")
        assert info.value.field == "score"
    with pytest.raises(ValueError):  # inputs are validated before any request
        mod.BP(lm=lm)(q="x")


@pytest.mark.parametrize("server_lm", [[Reply(status=500), CHAT_REPLY]], indirect=True)
def test_server_error_is_retried(qa: ModuleType, server_lm: tuple[OpenAICompatServer, LM]) -> None:
    server, lm = server_lm
    assert qa.QAPredict(lm=lm)(context=["c"], question="q").answer == "Paris"
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "server_lm", [[Reply(status=429, headers={"Retry-After": "0"}), CHAT_REPLY]], indirect=True
)
def test_rate_limit_with_retry_after_is_retried(
    qa: ModuleType, server_lm: tuple[OpenAICompatServer, LM]
) -> None:
    server, lm = server_lm
    assert qa.QAPredict(lm=lm)(context=["c"], question="q").confidence == 0.9
    assert len(server.requests) == 2


def test_cache_hit_makes_no_request(qa: ModuleType, tmp_path: Path) -> None:
    with OpenAICompatServer([CHAT_REPLY]) as server:
        lm = LM("openai/m", base_url=server.base_url, cache=Cache(path=tmp_path / "c.sqlite"))
        first = qa.QAPredict(lm=lm)(context=["c"], question="q")
        second = qa.QAPredict(lm=lm)(context=["c"], question="q")
        assert first == second
        assert first is not second
        assert len(server.requests) == 1


def test_async_acall_and_settings_context(qa: ModuleType) -> None:
    async def main(lm: LM) -> list[str]:
        with context(lm=lm):
            outs = await asyncio.gather(
                *(qa.QAPredict().acall(context=["c"], question=f"q{i}") for i in range(3))
            )
        return [o.answer for o in outs]

    with OpenAICompatServer([CHAT_REPLY] * 3) as server:
        lm = LM("openai/m", base_url=server.base_url, cache=False)
        assert asyncio.run(main(lm)) == ["Paris"] * 3
        assert len(server.requests) == 3


def test_instructions_override_rebuilds_the_system_message_once(qa: ModuleType) -> None:
    predictor = qa.QAPredict()
    inputs = qa.QAInputs(context=["c"], question="q")
    default_system = predictor.format(inputs)[0]["content"]
    assert default_system == qa.QA.prompts["chat"].system
    predictor.instructions = "Answer in French."
    changed = predictor.format(inputs)[0]["content"]
    assert changed.endswith("your objective is: \n        Answer in French.")
    assert predictor.format(inputs)[0]["content"] is changed  # rebuilt once, then reused
    predictor.instructions = None
    assert predictor.format(inputs)[0]["content"] == default_system


def test_generated_constants_equal_a_runtime_rebuild(qa: ModuleType, classify: ModuleType) -> None:
    """A signature carries the constant prompt parts of the formats its module's predictors
    run it with (QA has a JSON predictor, the chain-of-thought extensions do not), equal to
    what the adapters build at run time."""
    from sigforge.runtime.adapters import adapter_for

    expected = {
        qa.QA: {"chat", "json"},
        qa.QAWithReasoning: {"chat"},
        classify.Classify: {"chat", "json"},
        classify.ClassifyWithReasoning: {"chat"},
    }
    for sig, formats in expected.items():
        assert set(sig.prompts) == formats, sig.name
        for name, parts in sig.prompts.items():
            rebuilt = adapter_for(name).prompts(sig.input_fields, sig.output_fields, sig.instructions)
            assert parts == rebuilt


def test_a_format_the_module_does_not_declare_is_built_at_run_time(tmp_path: Path) -> None:
    """With no JSON predictor in its module, QA carries no JSON prompt parts; a predictor
    switched to the JSON adapter at run time still sends DSPy's exact messages."""
    src = tmp_path / "src"
    src.mkdir()
    text = (FIXTURES / "sigs" / "dspy_qa.sig").read_text(encoding="utf-8")
    kept = [line for line in text.splitlines() if 'adapter="json"' not in line]
    assert len(kept) < len(text.splitlines())  # (the fixture declares a JSON predictor)
    (src / "dspy_qa.sig").write_text("\n".join(kept) + "\n", encoding="utf-8")
    generate_package(src, tmp_path, "e2e_chat_only")
    chat_only = import_generated("e2e_chat_only", "dspy_qa")
    assert set(chat_only.QA.prompts) == {"chat"}
    assert "output_schema" not in vars(chat_only.QA)
    fixture = dspy_fixture("qa_json_0demos.json")
    inputs = chat_only.QAInputs(**fixture["inputs"])
    assert chat_only.QAPredict().format(inputs, adapter="json") == fixture["messages"]
    assert chat_only.QAPredict(adapter="json").format(inputs) == fixture["messages"]
    # ... and its structured-outputs schema, made from the outputs model on first use
    from sigforge.runtime import JSONAdapter

    params = JSONAdapter().request_params(chat_only.QA)
    assert params["response_format"]["json_schema"]["schema"] == dspy_fixture(
        "qa_json_response_format_schema.json"
    )


def test_save_and_load_round_trip(qa: ModuleType, tmp_path: Path) -> None:
    predictor = qa.QACoT(instructions="Be brief.")
    predictor.demos = [
        predictor.make_demo(
            qa.QAInputs(context=["Berlin is in Germany."], question="Capital of Germany?"),
            qa.QAWithReasoningOutputs(reasoning="Known.", answer="Berlin", confidence=0.9),
        )
    ]
    path = tmp_path / "state.json"
    predictor.save(path)
    saved = json.loads(path.read_text())
    assert saved["sigforge_program"] == 1 and saved["program"] == "QACoT"
    state = saved["predictors"]["self"]
    assert state["sigforge_state"] == 2 and state["signature"] == "QAWithReasoning"
    assert state["fields"]["answer"] == "str" and next(iter(state["fields"])) == "context"
    fresh = qa.QACoT()
    fresh.load(path)
    assert fresh.instructions == "Be brief."
    assert fresh.demos == predictor.demos
    state["demos"][0]["answr"] = "typo"
    path.write_text(json.dumps(saved))
    with pytest.raises(StateError, match="answr"):
        qa.QACoT().load(path)
    # a bare predictor state, as version 1 wrote it, still loads
    path.write_text(json.dumps({**state, "sigforge_state": 1, "demos": []}))
    fresh.load(path)
    assert fresh.demos == [] and fresh.instructions == "Be brief."


def test_generated_code_refuses_another_runtime_series() -> None:
    check_generated_version("0.1.7", "ok")
    with pytest.raises(GeneratedCodeVersionError, match="sigforge generate"):
        check_generated_version("9.0.0", "generated.qa")
