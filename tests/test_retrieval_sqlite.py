"""SQLiteVecStore on real SQLite files with the real sqlite-vec extension.

The embedder is a deterministic test double behind the ``Embedder`` protocol: hashed
bag-of-words vectors (texts sharing words point the same way), so rankings are
predictable without a model.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from sigforge.runtime.retrieval import (
    DuplicateIdError,
    FilterError,
    Passage,
    Passages,
    Retriever,
    SQLiteVecStore,
    StoreError,
    VectorStore,
)
from sigforge.runtime.retrieval.filters import matches, parse_filter

TESTS = Path(__file__).parent
ROOT = TESTS.parent


_STOPWORDS = frozenset(["a", "an", "and", "by", "in", "is", "its", "of", "on", "the", "who"])


class HashEmbedder:
    """Hashed bag-of-words vectors (stop words left out), L2-normalised: a stable,
    model-free embedder."""

    def __init__(self, dimensions: int = 256, model: str = "hash-bow") -> None:
        self._dimensions = dimensions
        self.model = f"{model}-{dimensions}"
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        with self._lock:
            self.calls.append(list(texts))
        return [self.vector(text) for text in texts]

    def vector(self, text: str) -> list[float]:
        values = [0.0] * self._dimensions
        for word in re.findall(r"\w+", text.lower()):
            if word in _STOPWORDS:
                continue
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self._dimensions
            values[index] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in values)) or 1.0
        return [v / norm for v in values]


class AsyncHashEmbedder(HashEmbedder):
    """The same vectors, also offered through ``aembed`` (counted separately)."""

    def __init__(self) -> None:
        super().__init__()
        self.async_calls = 0

    async def aembed(self, texts: Sequence[str]) -> list[list[float]]:
        self.async_calls += 1
        await asyncio.sleep(0)
        return [self.vector(text) for text in texts]


CORPUS = [
    ("dune", "Dune is a 1965 science fiction novel by Frank Herbert", {"kind": "book", "year": 1965}),
    ("paris", "Paris is the capital and largest city of France", {"kind": "place", "year": 2024}),
    ("cat", "The cat sat on the warm mat in the sun", {"kind": "pet", "cute": True}),
    ("herbert", "Frank Herbert wrote Dune and its sequels", {"kind": "person", "year": 1920}),
    ("berlin", "Berlin is the capital city of Germany", {"kind": "place", "year": 2024}),
]


@pytest.fixture
def store(tmp_path: Path) -> SQLiteVecStore:
    store = SQLiteVecStore(tmp_path / "store.db", HashEmbedder())
    store.add(
        [text for _, text, _ in CORPUS],
        ids=[i for i, _, _ in CORPUS],
        metadata=[m for _, _, m in CORPUS],
    )
    return store


def test_retrieve_ranks_passages_sharing_words_first(store: SQLiteVecStore) -> None:
    assert isinstance(store, Retriever) and isinstance(store, VectorStore)
    found = store.retrieve("Who wrote the novel Dune", k=2)
    assert isinstance(found, Passages) and isinstance(found, list)
    assert set(found.ids) == {"dune", "herbert"}
    top = found[0]
    assert isinstance(top, Passage) and isinstance(top, str)
    assert top.text == dict((i, t) for i, t, _ in CORPUS)[top.id]
    assert top.metadata["kind"] in ("book", "person")
    scores = [p.score for p in found]
    assert all(s is not None and -1.0 <= s <= 1.0 + 1e-6 for s in scores)
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    # the score is the cosine similarity of the query and passage vectors
    embedder = HashEmbedder()
    q, v = embedder.vector("Who wrote the novel Dune"), embedder.vector(top.text)
    assert top.score == pytest.approx(sum(a * b for a, b in zip(q, v, strict=True)), abs=1e-5)
    assert store.count() == len(CORPUS)


def test_k_bounds_results_and_is_checked(store: SQLiteVecStore) -> None:
    assert len(store.retrieve("capital", k=1)) == 1
    assert len(store.retrieve("capital", k=50)) == len(CORPUS)
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            store.retrieve("capital", k=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at most 4096"):
        store.retrieve("capital", k=5000)


def test_empty_store_answers_empty_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    store = SQLiteVecStore(path, HashEmbedder())
    assert store.count() == 0
    assert store.retrieve("anything") == []
    assert store.get(["x"]) == []
    assert store.delete(["x"]) == 0


def test_add_embeds_in_batches_and_returns_ids(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    store = SQLiteVecStore(tmp_path / "s.db", embedder, batch_size=4)
    ids = store.add([f"passage number {n}" for n in range(10)])
    assert len(ids) == len(set(ids)) == 10
    assert [len(call) for call in embedder.calls] == [4, 4, 2]
    assert store.count() == 10
    assert store.get(ids[3:5]).texts == ["passage number 3", "passage number 4"]


def test_add_refuses_stored_and_repeated_ids_before_embedding(store: SQLiteVecStore) -> None:
    embedder = store.embedder
    assert isinstance(embedder, HashEmbedder)
    before = len(embedder.calls)
    with pytest.raises(DuplicateIdError) as caught:
        store.add(["new text", "another"], ids=["fresh", "paris"])
    assert caught.value.ids == ["paris"]
    with pytest.raises(DuplicateIdError, match="repeated"):
        store.add(["a", "b"], ids=["same", "same"])
    assert len(embedder.calls) == before
    assert store.count() == len(CORPUS)
    assert store.get(["fresh"]) == []


def test_upsert_replaces_text_metadata_and_vector(store: SQLiteVecStore) -> None:
    store.upsert(
        ["Lyon is a city in France known for food", "Rome is the capital of Italy"],
        ids=["paris", "rome"],
        metadata=[{"kind": "place", "year": 2025}, None],
    )
    assert store.count() == len(CORPUS) + 1
    paris, rome = store.get(["paris", "rome"])
    assert paris.text.startswith("Lyon") and dict(paris.metadata) == {"kind": "place", "year": 2025}
    assert rome.metadata == {}
    # the vector was replaced too: it is the new text's, not the old one's
    embedder = HashEmbedder()
    new = store.search_vector(embedder.vector("Lyon is a city in France known for food"), k=1)
    assert new.ids == ["paris"] and new[0].score == pytest.approx(1.0, abs=1e-5)
    old = store.search_vector(embedder.vector(CORPUS[1][1]), k=10)
    assert all(p.score is not None and p.score < 0.99 for p in old)


def test_delete_removes_passages_and_vectors(store: SQLiteVecStore) -> None:
    assert store.delete(["dune", "missing", "herbert"]) == 2
    assert store.count() == len(CORPUS) - 2
    assert "dune" not in store.retrieve("Dune Frank Herbert novel", k=10).ids
    assert store.delete(["dune"]) == 0
    # deleted ids can be added again
    store.add(["Dune again"], ids=["dune"])
    assert store.retrieve("Dune again", k=1).ids == ["dune"]


def test_get_keeps_the_order_asked(store: SQLiteVecStore) -> None:
    got = store.get(["cat", "nope", "dune"])
    assert got.ids == ["cat", "dune"]
    assert got.scores == [None, None]
    assert got[0].metadata["cute"] is True


def test_metadata_is_checked(tmp_path: Path) -> None:
    store = SQLiteVecStore(tmp_path / "s.db", HashEmbedder())
    with pytest.raises(ValueError, match="must be a str, int, float or bool"):
        store.add(["x"], metadata=[{"tags": ["a"]}])  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="may not start with"):
        store.add(["x"], metadata=[{"$bad": 1}])
    with pytest.raises(ValueError, match="2 texts but 1 ids"):
        store.add(["x", "y"], ids=["a"])
    with pytest.raises(TypeError, match="not one string"):
        store.add("one string")
    assert store.count() == 0


# -- filters ---------------------------------------------------------------------------------


def test_filters_select_by_metadata(store: SQLiteVecStore) -> None:
    def ids(filter: dict[str, Any]) -> set[str]:
        return set(store.retrieve("capital city novel cat", k=10, filter=filter).ids)

    assert ids({"kind": "place"}) == {"paris", "berlin"}
    assert ids({"year": {"$gte": 1965}}) == {"dune", "paris", "berlin"}
    assert ids({"year": {"$lt": 2000}, "kind": "book"}) == {"dune"}
    assert ids({"kind": {"$in": ["pet", "person"]}}) == {"cat", "herbert"}
    assert ids({"kind": {"$nin": ["place"]}}) == {"dune", "cat", "herbert"}
    assert ids({"year": {"$ne": 2024}}) == {"dune", "cat", "herbert"}  # no year: matches $ne
    assert ids({"cute": True}) == {"cat"}
    assert ids({"cute": 1}) == set()  # typed: a bool is not a number
    assert ids({"year": "1965"}) == set()  # nor is a string
    assert ids({"$or": [{"kind": "pet"}, {"year": 1920}]}) == {"cat", "herbert"}
    assert ids({"$and": [{"kind": "place"}, {"year": {"$gt": 2000, "$lte": 2024}}]}) == {
        "paris",
        "berlin",
    }


def test_filtered_search_still_returns_k_matches(tmp_path: Path) -> None:
    """The filter restricts the KNN itself, so selective filters do not starve results."""
    store = SQLiteVecStore(tmp_path / "s.db", HashEmbedder(), batch_size=200)
    store.add(
        [f"common words here item {n}" for n in range(600)],
        metadata=[{"group": n % 50} for n in range(600)],
    )
    found = store.retrieve("common words here", k=5, filter={"group": 7})
    assert len(found) == 5
    assert {p.metadata["group"] for p in found} == {7}


def test_filters_agree_with_the_reference_semantics(tmp_path: Path) -> None:
    rng = random.Random(7)
    store = SQLiteVecStore(tmp_path / "s.db", HashEmbedder(), batch_size=100)
    kinds = ["a", "b", "c"]
    metadata: list[dict[str, Any]] = []
    for _ in range(120):
        entry: dict[str, Any] = {}
        if rng.random() < 0.8:
            entry["n"] = rng.choice([rng.randint(0, 5), rng.randint(0, 5) + 0.5])
        if rng.random() < 0.8:
            entry["kind"] = rng.choice(kinds)
        if rng.random() < 0.5:
            entry["flag"] = rng.random() < 0.5
        if rng.random() < 0.2:
            entry["n"] = str(rng.randint(0, 5))  # a string where others have numbers
        metadata.append(entry)
    ids = store.add([f"text {n}" for n in range(120)], metadata=metadata)

    def random_filter(depth: int = 0) -> dict[str, Any]:
        choice = rng.random()
        if depth < 2 and choice < 0.2:
            op = rng.choice(["$and", "$or"])
            return {op: [random_filter(depth + 1) for _ in range(rng.randint(1, 3))]}
        key = rng.choice(["n", "kind", "flag"])
        value: Any = {"n": rng.randint(0, 5), "kind": rng.choice(kinds), "flag": rng.random() < 0.5}[key]
        ops = ["$eq", "$ne", "$in", "$nin"] + (["$gt", "$gte", "$lt", "$lte"] if key == "n" else [])
        op = rng.choice(ops)
        if op in ("$in", "$nin"):
            value = [value] if key == "flag" else list({value, value})
        return {key: value} if op == "$eq" and rng.random() < 0.5 else {key: {op: value}}

    for _ in range(150):
        filter = random_filter()
        expected = {i for i, m in zip(ids, metadata, strict=True) if matches(parse_filter(filter), m)}
        got = set(store.retrieve("text", k=200, filter=filter).ids)
        assert got == expected, filter


def test_bad_filters_are_filter_errors(store: SQLiteVecStore) -> None:
    for bad, message in [
        ({"year": {"$gt": "x"}}, "compares numbers only"),
        ({"year": {"$like": 1}}, "unknown operator"),
        ({"$not": {"a": 1}}, "unknown logical operator"),
        ({"year": {"$in": []}}, "non-empty list"),
        ({"year": {"$in": [1, "a"]}}, "one type"),
        ({"year": [1, 2]}, "expected a str, int, float or bool"),
        ({"$or": []}, "non-empty list of filters"),
        ({"year": {}}, "must not be empty"),
    ]:
        with pytest.raises(FilterError, match=re.escape(message)):
            store.retrieve("x", filter=bad)
    assert issubclass(FilterError, ValueError)


# -- exact and approximate search ------------------------------------------------------------------


def test_approximate_search_rescores_binary_candidates(tmp_path: Path) -> None:
    store = SQLiteVecStore(tmp_path / "s.db", HashEmbedder(), batch_size=500)
    texts = [f"topic{n % 40} detail{n % 7} shared item{n}" for n in range(800)]
    store.add(texts)
    query = "topic3 detail2 shared item723"
    exact = store.retrieve(query, k=10)
    approx = store.retrieve(query, k=10, search="approximate")
    assert len(approx) == 10
    # re-scored with the exact cosine: every score is the exact one for that passage
    by_id = {p.id: p.score for p in store.retrieve(query, k=800)}
    for passage in approx:
        assert passage.score == pytest.approx(by_id[passage.id], abs=1e-5)
    assert approx.scores == sorted(approx.scores, reverse=True)  # type: ignore[type-var]
    # never better than exact, and the clear best match survives binarization
    for found, best in zip(approx.scores, exact.scores, strict=True):
        assert found is not None and best is not None and found <= best + 1e-6
    assert approx.ids[0] == exact.ids[0] and exact.scores[0] > exact.scores[1]  # type: ignore[operator]
    # with enough oversampling the candidates are everything: identical to exact
    full = SQLiteVecStore(tmp_path / "s.db", HashEmbedder(), oversample=80, search="approximate")
    everything = full.retrieve(query, k=10)
    assert everything.ids[0] == exact.ids[0]  # (later ranks hold ties in any order)
    assert everything.scores == pytest.approx(exact.scores, abs=1e-5)
    filtered = full.retrieve(query, k=3, filter={"x": {"$ne": 1}})
    assert filtered.scores == pytest.approx(exact.scores[:3], abs=1e-5)


def test_approximate_search_needs_dimensions_divisible_by_8(tmp_path: Path) -> None:
    store = SQLiteVecStore(tmp_path / "s.db", HashEmbedder(dimensions=20))
    store.add(["one two", "three four"])
    assert len(store.retrieve("one", k=2)) == 2
    with pytest.raises(StoreError, match="divisible by 8"):
        store.retrieve("one", search="approximate")


# -- persistence, identity and concurrency -----------------------------------------------------------

_CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
from test_retrieval_sqlite import HashEmbedder
from sigforge.runtime.retrieval import SQLiteVecStore
store = SQLiteVecStore({path!r}, HashEmbedder())
action = sys.argv[1]
if action == "read":
    found = store.retrieve("Who wrote the novel Dune", k=2, filter={{"kind": {{"$ne": "pet"}}}})
    print(json.dumps({{"count": store.count(), "ids": found.ids, "scores": found.scores,
                      "meta": [dict(p.metadata) for p in found]}}))
else:
    store.add(["a passage written by process " + action], ids=["from-" + action],
              metadata=[{{"writer": action}}])
    print(json.dumps({{"count": store.count()}}))
"""


def _child(path: Path, action: str) -> dict[str, Any]:
    code = _CHILD.format(tests=str(TESTS), path=str(path))
    run = subprocess.run(
        [sys.executable, "-c", code, action],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def test_store_survives_restart_in_a_new_process(store: SQLiteVecStore) -> None:
    expected = store.retrieve("Who wrote the novel Dune", k=2, filter={"kind": {"$ne": "pet"}})
    assert store.path is not None
    store.close()
    seen = _child(store.path, "read")
    assert seen["count"] == len(CORPUS)
    assert seen["ids"] == expected.ids
    assert seen["scores"] == pytest.approx(expected.scores)
    assert seen["meta"] == [dict(p.metadata) for p in expected]


def test_processes_writing_at_once_all_land(store: SQLiteVecStore) -> None:
    assert store.path is not None
    path = store.path
    results: list[dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda n=n: results.append(_child(path, f"p{n}"))) for n in range(3)
    ]
    for thread in threads:
        thread.start()
    store.add(["written by the parent"], ids=["parent"])  # while they write
    for thread in threads:
        thread.join()
    assert len(results) == 3
    assert store.count() == len(CORPUS) + 4
    assert store.get(["from-p0", "from-p1", "from-p2", "parent"]).ids == [
        "from-p0",
        "from-p1",
        "from-p2",
        "parent",
    ]


def test_threads_share_one_store(tmp_path: Path) -> None:
    store = SQLiteVecStore(tmp_path / "s.db", HashEmbedder(), batch_size=8)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(5):
                store.add([f"worker{worker} item{n} words"], ids=[f"w{worker}-{n}"])
                found = store.retrieve(f"worker{worker} item{n}", k=1)
                assert found.ids == [f"w{worker}-{n}"]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count() == 30


def test_reopening_with_another_embedder_is_refused(store: SQLiteVecStore) -> None:
    assert store.path is not None
    store.close()
    with pytest.raises(StoreError, match="holds 256-dimensional vectors"):
        SQLiteVecStore(store.path, HashEmbedder(dimensions=128)).count()
    with pytest.raises(StoreError, match="built with the embedder 'hash-bow-256'"):
        SQLiteVecStore(store.path, HashEmbedder(model="other")).retrieve("x")
    # another table of the same file is another store
    other = SQLiteVecStore(store.path, HashEmbedder(dimensions=128), table="small")
    other.add(["tiny"], ids=["t"])
    assert other.count() == 1 and store.count() == len(CORPUS)


def test_dimensions_come_from_the_first_vectors_when_unknown(tmp_path: Path) -> None:
    class Unsized(HashEmbedder):
        @property
        def dimensions(self) -> int | None:  # type: ignore[override]
            return None

    store = SQLiteVecStore(tmp_path / "s.db", Unsized(dimensions=32))  # type: ignore[arg-type]
    assert store.dimensions is None
    store.add(["alpha beta"])
    assert store.dimensions == 32
    reopened = SQLiteVecStore(tmp_path / "s.db", Unsized(dimensions=32))  # type: ignore[arg-type]
    assert reopened.count() == 1 and reopened.dimensions == 32


def test_a_foreign_table_is_not_taken_over(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE passages (x INTEGER)")
    store = SQLiteVecStore(path, HashEmbedder())
    with pytest.raises(StoreError, match="not a sigforge store"):
        store.add(["x"])
    SQLiteVecStore(path, HashEmbedder(), table="docs").add(["x"])  # beside it is fine


def test_wrong_vectors_from_the_embedder_are_store_errors(tmp_path: Path) -> None:
    class Broken(HashEmbedder):
        def embed(self, texts: Sequence[str]) -> list[list[float]]:
            return [[0.1] * 10 for _ in texts]

    store = SQLiteVecStore(tmp_path / "s.db", Broken())
    with pytest.raises(StoreError, match="10 dimensions"):
        store.add(["x"])
    with pytest.raises(ValueError, match="table must be a plain SQL name"):
        SQLiteVecStore(tmp_path / "s.db", HashEmbedder(), table="bad-name")


def test_memory_store_and_search_vector(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    store = SQLiteVecStore(":memory:", embedder)
    store.add(["red apples", "green pears"], ids=["r", "g"])
    assert store.search_vector(embedder.vector("apples"), k=1).ids == ["r"]


def test_aretrieve_matches_retrieve(store: SQLiteVecStore, tmp_path: Path) -> None:
    sync = store.retrieve("capital of France", k=3, filter={"kind": "place"})
    got = asyncio.run(store.aretrieve("capital of France", k=3, filter={"kind": "place"}))
    assert got.ids == sync.ids and got.scores == pytest.approx(sync.scores)

    embedder = AsyncHashEmbedder()
    other = SQLiteVecStore(tmp_path / "async.db", embedder)
    other.add([text for _, text, _ in CORPUS], ids=[i for i, _, _ in CORPUS])
    calls = len(embedder.calls)

    async def many() -> list[Passages]:
        return await asyncio.gather(*(other.aretrieve(q, k=1) for q in ("science fiction", "cat", "Berlin")))

    results = asyncio.run(many())
    assert [r.ids for r in results] == [["dune"], ["cat"], ["berlin"]]
    assert embedder.async_calls == 3 and len(embedder.calls) == calls  # aembed was used


def test_passages_feed_a_generated_predictor_without_glue(store: SQLiteVecStore) -> None:
    from generated.qa import Answerer
    from sigforge.testing import ScriptedLM

    passages = store.retrieve("Who wrote Dune", k=2)
    lm = ScriptedLM(
        [
            "[[ ## reasoning ## ]]\nThe context says so.\n\n[[ ## answer ## ]]\nFrank Herbert\n\n"
            "[[ ## confidence ## ]]\n0.9\n\n[[ ## completed ## ]]"
        ]
    )
    answerer = Answerer()
    answerer.lm = lm
    out = answerer(context=passages, question="Who wrote Dune?")
    assert out.answer == "Frank Herbert"
    prompt = json.dumps(lm.requests[0].messages)
    for passage in passages:
        assert json.dumps(passage.text)[1:-1] in prompt
    assert "score" not in prompt and passage.id not in prompt
