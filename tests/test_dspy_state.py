"""Loading programs saved by DSPy 3.x (shared/fixtures/dspy/saved_programs) into generated predictors."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from support import DSPY_FIXTURES, FIXTURES, generate_package, import_generated

from sigforge.runtime.dspy_state import load_dspy
from sigforge.runtime.errors import StateError
from sigforge.runtime.module import Module
from sigforge.testing import ScriptedLM

PACKAGE = "dspy_state_pkg"
SAVED = DSPY_FIXTURES / "saved_programs"


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    if not SAVED.exists():
        pytest.skip(f"DSPy saved programs not found at {SAVED}")
    generate_package(FIXTURES / "sigs", tmp_path_factory.mktemp("pkg"), PACKAGE)
    return import_generated(PACKAGE, "dspy_saved")


def saved(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAVED / name).read_text(encoding="utf-8"))
    return data


def test_a_dspy_predict_loads_into_a_generated_predict(gen: ModuleType) -> None:
    predictor = gen.BasicPredict()
    report = load_dspy(predictor, SAVED / "predict_1demo.json")
    assert report.names == {"(top level)": "self"} and report.demos == {"self": 1}
    assert report.dspy_version == "3.4.1" and report.notes == []
    assert [dict(d.values) for d in predictor.demos] == [
        {"question": "What is the capital of Germany?", "answer": "Berlin"}
    ]
    assert predictor.instructions == "Given the fields `question`, produce the fields `answer`."
    # the demo reaches the prompt exactly as a hand-made one would
    lm = ScriptedLM(["[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]"])
    predictor.lm = lm
    assert predictor(question="Capital of France?").answer == "Paris"
    assert "What is the capital of Germany?" in json.dumps(lm.requests[0].messages)


def test_a_dspy_chain_of_thought_loads_with_its_reasoning_demo(gen: ModuleType) -> None:
    predictor = gen.BasicCoT()
    report = load_dspy(predictor, SAVED / "cot_1demo.json")
    assert report.names == {"predict": "self"}
    assert dict(predictor.demos[0].values) == {
        "question": "What is the capital of Germany?", "reasoning": "Known fact.", "answer": "Berlin",
    }


def test_the_saved_lm_is_reported_not_applied(gen: ModuleType) -> None:
    predictor = gen.BasicPredict()
    report = load_dspy(predictor, SAVED / "predict_with_lm.json")
    assert predictor.lm is None and predictor.demos == []
    assert len(report.notes) == 1 and "'openai/gpt-4o-mini'" in report.notes[0]


def test_a_dspy_module_file_maps_by_attribute_name(gen: ModuleType, tmp_path: Path) -> None:
    class Pipeline(Module):
        def __init__(self) -> None:
            self.draft = gen.BasicPredict()
            self.answer = gen.BasicCoT()

    state = {
        "draft": {k: v for k, v in saved("predict_1demo.json").items() if k != "metadata"},
        "answer.predict": saved("cot_1demo.json")["predict"],
        "metadata": saved("cot_1demo.json")["metadata"],
    }
    state["draft"]["demos"][0]["augmented"] = True  # DSPy's bookkeeping key is dropped
    path = tmp_path / "program.json"
    path.write_text(json.dumps(state))
    program = Pipeline()
    report = load_dspy(program, path)
    assert report.names == {"draft": "draft", "answer.predict": "answer"}
    assert report.demos == {"draft": 1, "answer": 1}
    assert "augmented" not in program.draft.demos[0].values
    # explicit names override the rule
    swapped = {"first": state["draft"], "second": state["answer.predict"]}
    path.write_text(json.dumps(swapped))
    with pytest.raises(StateError, match="'first' has no match"):
        load_dspy(Pipeline(), path)
    assert load_dspy(Pipeline(), path, names={"first": "draft", "second": "answer"}).demos == {
        "draft": 1, "answer": 1,
    }


def test_a_program_saved_for_another_signature_is_refused_and_nothing_changes(
    gen: ModuleType, tmp_path: Path
) -> None:
    cot = gen.BasicCoT(instructions="Mine.")
    with pytest.raises(StateError, match=r"fields \['Question:', 'Answer:'\] do not match"):
        load_dspy(cot, SAVED / "predict_1demo.json")
    assert cot.instructions == "Mine." and cot.demos == []
    bad = saved("predict_1demo.json")
    bad["demos"][0]["answr"] = "typo"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    predictor = gen.BasicPredict()
    with pytest.raises(StateError, match="answr"):
        load_dspy(predictor, path)
    assert predictor.demos == []
    path.write_text(json.dumps({"something": 1}))
    with pytest.raises(StateError, match="not a DSPy-saved program"):
        load_dspy(predictor, path)
