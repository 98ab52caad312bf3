"""Golden files: one small project per language construct, compared byte for byte.

Each ``tests/golden/<construct>/src/`` is compiled for the package ``golden_<construct>``
and every generated file must equal the file at the same path in
``tests/golden/<construct>/expected/``; a mismatch shows a unified diff.

After an intended change to the generated code, rewrite the expected files with::

    SIGFORGE_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py

and review the diff (``git diff tests/golden``) before committing it.

Besides the comparison, for every project:

- black leaves every generated module unchanged (the guarantee that lets the generator
  lay code out itself instead of running black);
- ``mypy --strict`` accepts all expected packages (one mypy run over all of them);
- each expected package imports and its models validate a sample.

(``tests/golden/ruff.toml`` keeps ruff away from the expected files: they are generated.)
"""

from __future__ import annotations

import difflib
import importlib
import os
import shutil
import subprocess
import sys
import typing
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from types import ModuleType

import black
import pytest
from pydantic import ValidationError

from sigforge.codegen.pipeline import compile_sources
from sigforge.runtime import ChainOfThought, Image, Predict
from sigforge.testing import ScriptedLM

GOLDEN = Path(__file__).resolve().parent / "golden"
PROJECTS = sorted(p.name for p in GOLDEN.iterdir() if (p / "src").is_dir())
UPDATE = os.environ.get("SIGFORGE_UPDATE_GOLDEN") == "1"
BLACK_MODE = black.Mode(target_versions={black.TargetVersion.PY311}, line_length=88)


def package_name(project: str) -> str:
    return f"golden_{project}"


def expected_files(project: str) -> dict[str, str]:
    expected = GOLDEN / project / "expected"
    return {
        p.relative_to(expected).as_posix(): p.read_bytes().decode("utf-8")
        for p in sorted(expected.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def write_expected(project: str, files: dict[str, str]) -> None:
    expected = GOLDEN / project / "expected"
    shutil.rmtree(expected, ignore_errors=True)
    for rel, content in files.items():
        (expected / rel).parent.mkdir(parents=True, exist_ok=True)
        (expected / rel).write_bytes(content.encode("utf-8"))


def diff(old: str, new: str, path: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"expected/{path}",
            tofile=f"generated/{path}",
        )
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Per project, what the generator writes; with SIGFORGE_UPDATE_GOLDEN=1 it becomes the
    new expected output."""
    out_root = tmp_path_factory.mktemp("golden-out")
    results: dict[str, dict[str, str]] = {}
    for project in PROJECTS:
        result = compile_sources(GOLDEN / project / "src", out_root / package_name(project))
        errors = [d.render(result.sources.get(d.path)) for d in result.diagnostics if d.severity == "error"]
        assert result.ok, f"{project}:\n" + "\n".join(errors)
        results[project] = result.files
        if UPDATE:
            write_expected(project, result.files)
    return results


@pytest.mark.parametrize("project", PROJECTS)
def test_generated_files_match_the_expected_files(
    project: str, generated: dict[str, dict[str, str]]
) -> None:
    files, expected = generated[project], expected_files(project)
    problems = [f"missing from expected/: {rel}" for rel in sorted(set(files) - set(expected))]
    problems += [f"not generated any more: {rel}" for rel in sorted(set(expected) - set(files))]
    problems += [
        diff(expected[rel], files[rel], rel)
        for rel in sorted(set(files) & set(expected))
        if files[rel] != expected[rel]
    ]
    if problems:
        pytest.fail(
            f"golden project `{project}` differs (SIGFORGE_UPDATE_GOLDEN=1 rewrites it if intended):\n"
            + "\n".join(problems),
            pytrace=False,
        )


@pytest.mark.parametrize("project", PROJECTS)
def test_black_leaves_generated_modules_unchanged(
    project: str, generated: dict[str, dict[str, str]]
) -> None:
    changed = {
        rel: diff(text, black.format_str(text, mode=BLACK_MODE), rel)
        for rel, text in generated[project].items()
        if rel.endswith(".py")
    }
    if any(changed.values()):
        pytest.fail("black would change:\n" + "".join(changed.values()), pytrace=False)


# --- the expected packages, importable and type-checked ----------------------------------

# Typed use of generated code that mypy must accept (the Protocol of a tool, call signatures).
USAGE = '''
from datetime import date, datetime

from golden_predictors.predictors import Plain, Teller
from golden_tools.tools import Unit, WeatherFunction
from golden_types.types import MeasureInputs

from sigforge.runtime import Image


def weather(*, city: str, unit: Unit = Unit.celsius, days: int = 3) -> list[float]:
    return [20.0] * days


implementation: WeatherFunction = weather


def ask(predictor: Plain, teller: Teller) -> str:
    answer: str = predictor(question="Why?", context=["Because."]).answer
    return answer + teller().text


def measure(url: str) -> MeasureInputs:
    return MeasureInputs(photo=Image.from_url(url), taken_on=date(2024, 1, 1), uploaded_at=datetime.now())
'''


@pytest.fixture(scope="module")
def packages(
    generated: dict[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A folder holding every expected output as the package ``golden_<construct>``,
    on ``sys.path`` while the tests of this module run."""
    root = tmp_path_factory.mktemp("golden-packages")
    for project in PROJECTS:
        shutil.copytree(GOLDEN / project / "expected", root / package_name(project))
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    for name in [m for m in sys.modules if m.startswith("golden_")]:
        del sys.modules[name]


def test_expected_packages_pass_mypy_strict(packages: Path) -> None:
    (packages / "usage.py").write_text(USAGE, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--no-error-summary",
         "--cache-dir", str(packages / ".mypy_cache"),
         *(package_name(p) for p in PROJECTS), "usage.py"],
        cwd=packages,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


Loader = Callable[[str], ModuleType]


def sample_enums(load: Loader) -> None:
    m = load("tickets")
    assert m.Priority("urgent") is m.Priority.urgent
    assert [c.value for c in m.Channel] == ["email", "live chat", "phone-call"]
    inputs = m.RouteTicketInputs(message="Help", channel="phone-call")
    assert inputs.channel is m.Channel.phone_call
    assert inputs.fallback is m.Priority.normal
    outputs = m.RouteTicketOutputs.model_validate({"priority": "high", "escalate_to": None})
    assert outputs.reply_on is m.Channel.email
    with pytest.raises(ValidationError):
        m.RouteTicketInputs(message="Help", channel="fax")
    assert issubclass(m.Router, Predict)
    assert m.Router.signature is m.RouteTicket


def sample_classes(load: Loader) -> None:
    m = load("documents")
    section = m.Section.model_validate(
        {"heading": "Intro", "subsections": [{"heading": "Background", "authors": [{"name": "Ada"}]}]}
    )
    assert section.status is m.Status.normal
    assert section.weight == 0.5
    assert section.subsections[0].authors[0] == m.Author(name="Ada", email=None)
    outline = m.Outline(title="Report", sections=[section], by_status={"archived": [section]})
    assert outline.by_status == {m.Status.archived: [section]}
    for bad in ({"title": "Report", "sections": []}, {"title": "Report", "sections": [{"heading": 1}]}):
        with pytest.raises(ValidationError):
            m.Outline.model_validate(bad)
    with pytest.raises(ValidationError):
        m.Section(heading="x", weight=2.0)
    assert list(m.OutlineDocumentWithReasoningOutputs.model_fields) == ["reasoning", "outline", "lead_author"]


def sample_imports(load: Loader) -> None:
    common, labels, routing = load("common"), load("shared.labels"), load("teams.routing")
    assert routing.Label is labels.Label
    assert labels.Citation is routing.Citation is common.Citation
    label = labels.Label.model_validate({"name": "refund", "sources": [{"article_id": 7, "title": "Refunds"}]})
    assert label.priority is common.Priority.normal
    assert label.sources == [common.Citation(article_id=7, title="Refunds")]
    route = routing.RouteInputs(summary="Refund", labels=[label])
    assert route.labels[0].sources[0].quote is None
    assert routing.Summarizer.signature.__name__ == "SummarizeWithReasoning"
    assert routing.Summarizer.default_adapter == "json"
    assert common.Summarize.instructions == "Given the fields `text`, produce the fields `summary`."
    assert common.SearchTool.returns == "list[Citation]"


def sample_tools(load: Loader) -> None:
    m = load("tools")
    assert m.WeatherArgs(city="Paris").model_dump() == {"city": "Paris", "unit": m.Unit.celsius, "days": 3}
    for bad in ({"city": ""}, {"city": "Paris", "days": 15}, {"city": "Paris", "unit": "kelvin"}):
        with pytest.raises(ValidationError):
            m.WeatherArgs.model_validate(bad)
    assert (m.WeatherTool.name, m.WeatherTool.returns) == ("weather", "list[float]")
    assert m.WeatherTool.description == "Forecast temperatures, one per day"
    assert m.CurrentTimeArgs.model_fields == {}
    assert m.CurrentTimeTool.args_schema == {}
    assert (m.CurrentTimeTool.returns, m.PingTool.returns, m.PingTool.description) == ("datetime", "bool", "")
    assert m.LookupOrderArgs(order_id="AB-123456").include_items is False
    with pytest.raises(ValidationError):
        m.LookupOrderArgs(order_id="ab-123")
    assert m.LookupOrderTool.args_schema["order_id"]["pattern"] == "^[A-Z]{2}-\\d{6}$"


def sample_types(load: Loader) -> None:
    m = load("types")
    photo = Image.from_url("https://example.com/cat.png")
    inputs = m.MeasureInputs(photo=photo, taken_on="2024-02-29", uploaded_at="2024-02-29T12:30:00+01:00")
    assert inputs.photo == photo and inputs.thumbnail is None
    assert inputs.taken_on == date(2024, 2, 29)
    assert isinstance(inputs.uploaded_at, datetime) and inputs.uploaded_at.utcoffset() is not None
    sample = {
        "point": [1.5, 2], "box": [0, 0, 10, 10], "readings": [], "counts": {"1": "one"},
        "per_color": {"red": 2}, "tree": {"a": [{"b": [1, "x"], "c": None}]}, "grid": [[1.0]],
        "mode": "fast", "level": 2, "flag": True, "mixed": None, "number": "n/a", "due": None,
        "seen_at": "2024-01-01T00:00:00",
    }
    outputs = m.MeasureOutputs.model_validate(sample)
    assert outputs.point == (1.5, 2.0) and outputs.readings == ()
    assert outputs.counts == {1: "one"}
    assert outputs.per_color == {m.Color.red: 2}
    assert outputs.tree == {"a": [{"b": (1, "x"), "c": None}]}
    for field, bad in (("point", [1, 2, 3]), ("level", 4), ("mode", "FAST?"), ("per_color", {"pink": 1})):
        with pytest.raises(ValidationError):
            m.MeasureOutputs.model_validate({**sample, field: bad})
    annotations = {name: f.annotation for name, f in m.MeasureOutputs.model_fields.items()}
    assert typing.get_args(annotations["level"]) == (1, 2, 3)
    assert typing.get_args(annotations["flag"]) == (True, False)
    assert typing.get_args(typing.get_args(annotations["mixed"])[0]) == ("auto", 0, False)


def sample_field_options(load: Loader) -> None:
    m = load("options")
    specs = {f.name: f for f in (*m.Review.input_fields, *m.Review.output_fields)}
    assert specs["diff"].prefix == "Patch:"
    assert specs["language"].prefix == "Language:"
    assert (specs["summary"].prefix, specs["summary"].format) == ("Summary of the review:", "markdown")
    assert specs["comments"].format == "one comment per item"
    assert specs["verdict"].prefix == "Verdict:"
    inputs = m.ReviewInputs(diff="+x", labels={"bug": 1})
    assert (inputs.language, inputs.max_comments, inputs.threshold, inputs.strict, inputs.note) == (
        "python", 10, 0.5, True, None
    )
    assert inputs.reviewers == ["alice", "bob"]
    assert m.ReviewInputs(diff="+y", labels={}).reviewers is not inputs.reviewers
    for bad in (
        {"diff": ""}, {"language": "Py"}, {"threshold": 1.0}, {"reviewers": []},
        {"labels": {"a": 1, "b": 2, "c": 3, "d": 4}}, {"note": "n" * 201},
    ):
        with pytest.raises(ValidationError):
            m.ReviewInputs.model_validate({"diff": "+x", "labels": {}, **bad})
    assert m.ReviewOutputs(summary="s", comments=[], score=1.0).verdict == "comment"


def sample_predictors(load: Loader) -> None:
    m = load("predictors")
    kinds = {
        "Plain": (Predict, "chat", m.Answer), "PlainJson": (Predict, "json", m.Answer),
        "PlainChat": (Predict, "chat", m.Answer), "Thinker": (ChainOfThought, "chat", m.AnswerWithReasoning),
        "ThinkerJson": (ChainOfThought, "json", m.AnswerWithReasoning), "Teller": (Predict, "chat", m.Joke),
        "ThinkingTeller": (ChainOfThought, "chat", m.JokeWithReasoning),
    }
    for name, (base, adapter, signature) in kinds.items():
        predictor = getattr(m, name)
        assert issubclass(predictor, base), name
        assert issubclass(predictor, ChainOfThought) == (base is ChainOfThought), name
        assert (predictor.default_adapter, predictor.signature) == (adapter, signature), name
    assert list(m.AnswerWithReasoningOutputs.model_fields) == ["reasoning", "answer"]
    assert m.AnswerWithReasoning.instructions == m.Answer.instructions == "Answer the question."
    assert m.JokeInputs.model_fields == {}
    teller = m.Teller(lm=ScriptedLM(["[[ ## text ## ]]\nKnock knock.\n\n[[ ## completed ## ]]"]))
    assert teller().text == "Knock knock."


def sample_layout(load: Loader) -> None:
    m = load("layout")
    assert m.__doc__.startswith("Module docstring on several lines.\n\nComments, trailing commas")
    assert m.Locate.instructions == "Indented instructions\non two lines."
    assert [mood.value for mood in m.Mood] == ["happy", "sad", "neutral"]
    assert m.LocateInputs(place="here").hint is None
    outputs = m.LocateOutputs(where={"x": 1, "y": 2.5})
    assert (outputs.where, outputs.mood, outputs.tags) == (m.Point(x=1.0, y=2.5), m.Mood.neutral, ["a", "b"])
    with pytest.raises(ValidationError):
        m.LocateOutputs(where={"x": 1, "y": 2}, tags=["a", "b", "c", "d"])


def sample_long_names(load: Loader) -> None:
    shared = load("very_long_shared_module_name_for_layout")
    m = load("long_descriptions")
    analysis_class = shared.AVeryLongClassNameThatDescribesTheStructuredResultOfAnAnalysis
    categories = shared.ExtremelyDetailedClassificationCategoryForIncomingRequests
    analysis = analysis_class(an_attribute_name_that_is_long_enough_to_matter=[{"k": [[1, 2.0, "x"]]}])
    assert analysis.category is categories.second
    assert analysis.an_attribute_name_that_is_long_enough_to_matter == [{"k": [(1, 2.0, "x")]}]
    name = "SummarizeTheIncomingCustomerSupportConversationIntoAStructuredRecord"
    inputs = getattr(m, f"{name}Inputs")(the_full_conversation_transcript_between_customer_and_agent="Hi", x="y")
    assert inputs.c.value == "first category value text that is long"
    signature = getattr(m, name)
    assert signature.instructions.startswith("This instruction line is deliberately longer")
    assert signature.instructions.endswith('\n\nA paragraph after a blank line, with "quotes" and a trailing colon:')
    d = signature.output_fields[-1]
    assert (d.prefix, d.format) == (
        "A prefix that is long enough to push the line over the limit:", "plain text, no markdown"
    )
    predictor = m.SummarizeTheConversationWithReasoningUsingTheJsonAdapterPredictor
    assert predictor.default_adapter == "json"


SAMPLES: dict[str, Callable[[Loader], None]] = {
    "classes": sample_classes,
    "enums": sample_enums,
    "field_options": sample_field_options,
    "imports": sample_imports,
    "layout": sample_layout,
    "long_names": sample_long_names,
    "predictors": sample_predictors,
    "tools": sample_tools,
    "types": sample_types,
}


def test_every_golden_project_has_a_sample() -> None:
    assert sorted(SAMPLES) == PROJECTS


@pytest.mark.parametrize("project", PROJECTS)
def test_expected_package_imports_and_validates_a_sample(project: str, packages: Path) -> None:
    package = package_name(project)

    def load(module: str) -> ModuleType:
        return importlib.import_module(f"{package}.{module}" if module else package)

    for path in sorted((packages / package).rglob("*.py")):  # every module imports
        parts = path.relative_to(packages / package).with_suffix("").parts
        load(".".join(p for p in parts if p != "__init__"))
    SAMPLES[project](load)


# --- regression tests for compiler bugs found by these tests ----------------------------


def test_predict_over_an_imported_signature(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.sig").write_text('signature S {\n  in q: str\n  out a: str "A"\n}\n', encoding="utf-8")
    (src / "b.sig").write_text("from a import S\npredictor P = predict(S)\n", encoding="utf-8")
    result = compile_sources(src, tmp_path / "golden_bug_pkg")
    assert result.ok
    assert "class P(Predict[SInputs, SOutputs]):" in result.files["b.py"]
