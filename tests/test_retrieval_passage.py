"""Passage / Passages (strings that carry ids and scores), the filter language, the URL
switch, and the typing of retrieval pipelines under mypy --strict."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from test_typing import run_mypy

from sigforge.runtime.errors import ConfigurationError
from sigforge.runtime.retrieval import (
    ChromaRetriever,
    ColBERTv2,
    FilterError,
    Passage,
    Passages,
    SQLiteVecStore,
    retriever_from_url,
)
from sigforge.runtime.retrieval.filters import All, AnyOf, Condition, parse_filter, to_chroma


def test_a_passage_is_its_text_with_attributes() -> None:
    p = Passage("Dune is a novel.", id="d1", score=0.75, metadata={"source": "wiki"})
    assert isinstance(p, str) and p == "Dune is a novel." and hash(p) == hash("Dune is a novel.")
    assert p.upper() == "DUNE IS A NOVEL." and p.replace("novel", "book") == "Dune is a book."
    assert type(p.text) is str and type(str(p)) is str and f"{p}" == "Dune is a novel."
    assert (p.id, p.score, dict(p.metadata)) == ("d1", 0.75, {"source": "wiki"})
    assert repr(p) == "Passage('Dune is a novel.', id='d1', score=0.75, metadata={'source': 'wiki'})"
    with pytest.raises(AttributeError, match="immutable"):
        p.score = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        p.metadata["x"] = 1  # type: ignore[index]
    for clone in (pickle.loads(pickle.dumps(p)), copy.deepcopy(p), copy.copy(p)):
        assert isinstance(clone, Passage)
        assert (clone.text, clone.id, clone.score, dict(clone.metadata)) == (
            p.text,
            p.id,
            p.score,
            dict(p.metadata),
        )
    assert Passage("x").score is None and Passage("x").id == "" and Passage("x").metadata == {}
    with pytest.raises(TypeError):
        Passage(3)  # type: ignore[arg-type]


def test_passages_is_a_list_of_str_whose_items_stay_passages() -> None:
    passages = Passages([Passage("a", id="1", score=0.9), "b"])
    assert isinstance(passages, list) and passages == ["a", "b"]
    assert all(isinstance(p, Passage) for p in passages)
    passages.append("c")
    passages.extend(["d"])
    passages.insert(0, "z")
    passages += ["e"]
    passages[1] = "A"
    passages[2:3] = ["B"]
    assert passages == ["z", "A", "B", "c", "d", "e"]
    assert all(isinstance(p, Passage) for p in passages)
    assert isinstance(passages[1:3], Passages) and isinstance(passages + ["f"], Passages)  # noqa: RUF005
    assert isinstance(passages.copy(), Passages) and isinstance(passages * 2, Passages)
    assert isinstance(passages.pop(), Passage)
    assert passages.texts == ["z", "A", "B", "c", "d"] and passages.ids == [""] * 5
    restored = pickle.loads(pickle.dumps(Passages([Passage("q", id="7", score=0.5)])))
    assert isinstance(restored, Passages) and restored[0].id == "7" and restored[0].score == 0.5
    with pytest.raises(TypeError):
        passages.append(3)  # type: ignore[arg-type]


def test_pydantic_fields_accept_and_dump_passages() -> None:
    class Trace(BaseModel):
        passages: list[Passage]
        best: Passage | None = None

    trace = Trace(
        passages=[Passage("a", id="1", score=0.5, metadata={"k": 1}), "b", {"text": "c", "id": "3"}],
        best="a",
    )
    assert [type(p) for p in trace.passages] == [Passage, Passage, Passage]
    assert trace.passages[0].score == 0.5 and trace.passages[2].id == "3"
    dumped = trace.model_dump(mode="json")
    assert dumped["passages"][0] == {"text": "a", "id": "1", "score": 0.5, "metadata": {"k": 1}}
    again = Trace.model_validate_json(trace.model_dump_json())
    assert again.passages[0].metadata == {"k": 1} and again.passages[0].score == 0.5
    assert isinstance(trace.model_dump()["passages"][0], Passage)
    with pytest.raises(ValueError, match="passage mapping"):
        Trace(passages=[{"txt": "x"}])
    schema = Trace.model_json_schema()
    assert "anyOf" in str(schema["properties"]["passages"])


def test_passages_fit_list_of_str_inputs_of_generated_models() -> None:
    from generated.qa import AnswerQuestionInputs

    inputs = AnswerQuestionInputs(
        context=Passages([Passage("Dune is a novel.", id="d", score=0.9)]), question="?"
    )
    assert inputs.context == ["Dune is a novel."]
    assert inputs.model_dump_json() == '{"context":["Dune is a novel."],"question":"?"}'


def test_retrieval_pipelines_type_check() -> None:
    run = run_mypy("tests/typing/retrieval_good.py", "tests/typing/retrieval_bad.py")
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    assert not [e for e in errors if "retrieval_bad.py" not in e], run.stdout
    assert sorted(int(e.split(":")[1]) for e in errors) == [10, 11, 12, 13], run.stdout
    text = "\n".join(errors)
    assert 'incompatible type "Passage"; expected "list[str]"' in text
    assert 'Argument "k" to "retrieve" of "Retriever" has incompatible type "str"' in text
    assert 'Item "None" of "float | None" has no attribute "real"' in text


# -- the filter language ------------------------------------------------------------------------


def test_filters_parse_into_trees() -> None:
    assert parse_filter(None) is None and parse_filter({}) is None
    assert parse_filter({"a": 1}) == Condition("a", "$eq", 1)
    assert parse_filter({"a": 1, "b": {"$in": ["x", "y"]}}) == All(
        (Condition("a", "$eq", 1), Condition("b", "$in", ("x", "y")))
    )
    assert parse_filter({"n": {"$gt": 1, "$lt": 5}}) == All(
        (Condition("n", "$gt", 1), Condition("n", "$lt", 5))
    )
    tree = parse_filter({"$or": [{"a": True}, {"$and": [{"b": 2.5}]}]})
    assert tree == AnyOf((Condition("a", "$eq", True), Condition("b", "$eq", 2.5)))
    assert tree is not None
    assert to_chroma(tree) == {"$or": [{"a": {"$eq": True}}, {"b": {"$eq": 2.5}}]}
    several = parse_filter({"a": 1, "b": {"$nin": [1, 2]}})
    assert several is not None
    assert to_chroma(several) == {"$and": [{"a": {"$eq": 1}}, {"b": {"$nin": [1, 2]}}]}
    for bad in ({"a": None}, {"a": float("nan")}, {"": 1}, {'a"b': 1}, [("a", 1)]):
        with pytest.raises(FilterError):
            parse_filter(bad)  # type: ignore[arg-type]


# -- the configuration switch -------------------------------------------------------------------


class _Embedder:
    dimensions = 8

    def embed(self, texts: Any) -> list[list[float]]:
        return [[1.0] * 8 for _ in texts]


def test_urls_pick_the_retriever(tmp_path: Path) -> None:
    embedder = _Embedder()
    store = retriever_from_url(
        f"sqlite-vec://{tmp_path}/s.db?table=docs&search=approximate&oversample=4",
        embedder=embedder,
    )
    assert isinstance(store, SQLiteVecStore)
    assert (store.path, store.table, store.search, store.oversample) == (
        tmp_path / "s.db",
        "docs",
        "approximate",
        4,
    )
    relative = retriever_from_url("sqlite-vec://data/s.db", embedder=embedder, batch_size=7)
    assert isinstance(relative, SQLiteVecStore)
    assert str(relative.path) == "data/s.db" and relative.batch_size == 7

    chroma = retriever_from_url(
        "chroma://db.internal:8123/my-docs?tenant=t1&create=false", embedder=embedder
    )
    assert isinstance(chroma, ChromaRetriever)
    assert (chroma.url, chroma.collection, chroma.tenant, chroma.create) == (
        "http://db.internal:8123",
        "my-docs",
        "t1",
        False,
    )
    secure = retriever_from_url("chroma+https://db.example/docs", embedder=embedder)
    assert isinstance(secure, ChromaRetriever) and secure.url == "https://db.example"

    colbert = retriever_from_url("colbertv2://host:2017/wiki17_abstracts?post=true")
    assert isinstance(colbert, ColBERTv2)
    assert (colbert.url, colbert.post) == ("http://host:2017/wiki17_abstracts", True)
    assert retriever_from_url("colbertv2+https://h/x").url == "https://h/x"  # type: ignore[attr-defined]


def test_bad_urls_are_configuration_errors() -> None:
    embedder = _Embedder()
    for url, message in [
        ("pinecone://x", "unknown retriever URL"),
        ("sqlite-vec://", "names no file"),
        ("chroma://host:1/a/b", "one collection"),
        ("chroma://:1/a", "names no host"),
        ("sqlite-vec:///x.db?oversample=many", "must be an integer"),
        ("chroma://h/c?create=maybe", "true or false"),
        ("sqlite-vec:///x.db?colour=red", "has no option 'colour'"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            retriever_from_url(url, embedder=embedder)
    with pytest.raises(ConfigurationError, match="pass embedder"):
        retriever_from_url("sqlite-vec:///x.db")
