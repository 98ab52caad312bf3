"""ChromaRetriever against a real Chroma server these tests start on 127.0.0.1.

The server is ``chroma run`` from the ``chromadb`` package (the ``chroma`` extra, in
``dev``), on a free port with its data in a temporary directory, under ``timeout`` so it
ends even if the test run is killed, and always stopped by the fixture. Without
``chromadb`` the tests skip locally and FAIL in CI (``CI=true``).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_retrieval_sqlite import CORPUS, HashEmbedder

from sigforge.runtime.errors import LMConnectionError
from sigforge.runtime.retrieval import (
    ChromaRetriever,
    DuplicateIdError,
    FilterError,
    Passages,
    Retriever,
    SQLiteVecStore,
    StoreError,
    VectorStore,
    retriever_from_url,
)
from sigforge.runtime.retrieval.filters import matches, parse_filter

CHROMA = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))


def require_chroma() -> None:
    if Path(CHROMA).exists():
        return
    message = "the chroma command is missing (pip install -e '.[dev]' installs chromadb)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}: CI must run the Chroma tests")
    pytest.skip(message)


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A Chroma server on 127.0.0.1 for this module (at most 10 minutes)."""
    require_chroma()
    directory = tmp_path_factory.mktemp("chroma")
    port = free_port()
    command = [CHROMA, "run", "--path", str(directory / "data"), "--host", "127.0.0.1",
               "--port", str(port)]  # fmt: skip
    if shutil.which("timeout"):
        command = ["timeout", "600", *command]
    log = directory / "chroma.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"}
        )
    server = Server(port, process, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{server.url}/api/v2/heartbeat", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                text = log.read_text(errors="replace")[-3000:]
                pytest.fail(f"the Chroma server did not start on port {port}:\n{text}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def new_store(server: Server, **options: Any) -> ChromaRetriever:
    return ChromaRetriever(f"test-{uuid.uuid4().hex[:12]}", HashEmbedder(), url=server.url, **options)


@pytest.fixture
def store(chroma: Server) -> ChromaRetriever:
    store = new_store(chroma)
    store.add(
        [text for _, text, _ in CORPUS],
        ids=[i for i, _, _ in CORPUS],
        metadata=[m for _, _, m in CORPUS],
    )
    return store


def test_retrieve_ranks_by_cosine_like_the_local_store(store: ChromaRetriever, tmp_path: Path) -> None:
    assert isinstance(store, Retriever) and isinstance(store, VectorStore)
    assert store.count() == len(CORPUS)
    local = SQLiteVecStore(tmp_path / "same.db", HashEmbedder())
    local.add([t for _, t, _ in CORPUS], ids=[i for i, _, _ in CORPUS], metadata=[m for _, _, m in CORPUS])
    for query in ("novel Dune by Frank Herbert", "capital city", "warm cat"):
        remote, here = store.retrieve(query, k=3), local.retrieve(query, k=3)
        assert isinstance(remote, Passages)
        assert remote.scores == pytest.approx(here.scores, abs=1e-4)
        assert remote[0].id == here[0].id
        assert [dict(p.metadata) for p in remote][:1] == [dict(p.metadata) for p in here][:1]
    cat = store.get(["cat"])[0]
    assert cat.metadata == {"kind": "pet", "cute": True} and cat.text == CORPUS[2][1]


def test_add_upsert_delete_get(store: ChromaRetriever) -> None:
    with pytest.raises(DuplicateIdError) as caught:
        store.add(["new", "also new"], ids=["fresh", "paris"])
    assert caught.value.ids == ["paris"] and store.count() == len(CORPUS)
    store.upsert(["Lyon is a city in France known for food", "Rome is the capital of Italy"],
                 ids=["paris", "rome"], metadata=[{"kind": "place", "year": 2025}, None])  # fmt: skip
    assert store.count() == len(CORPUS) + 1
    paris, rome = store.get(["paris", "rome"])
    assert paris.text.startswith("Lyon") and dict(paris.metadata) == {"kind": "place", "year": 2025}
    assert rome.metadata == {}
    assert store.retrieve("Lyon food", k=1).ids == ["paris"]
    assert store.delete(["dune", "missing"]) == 1
    assert store.count() == len(CORPUS)
    assert store.get(["cat", "dune", "berlin"]).ids == ["cat", "berlin"]
    ids = store.add(["one more passage"])
    assert len(ids) == 1 and store.get(ids).texts == ["one more passage"]


def test_adds_are_sent_in_batches(chroma: Server) -> None:
    store = new_store(chroma, batch_size=3)
    embedder = store.embedder
    assert isinstance(embedder, HashEmbedder)
    store.add([f"passage{n} words" for n in range(7)])
    assert [len(call) for call in embedder.calls] == [3, 3, 1]
    assert store.count() == 7


def test_filters_agree_with_the_reference_semantics(chroma: Server) -> None:
    rng = random.Random(11)
    store = new_store(chroma, batch_size=100)
    metadata: list[dict[str, Any]] = []
    for _ in range(60):
        entry: dict[str, Any] = {}
        if rng.random() < 0.8:
            entry["n"] = rng.choice([rng.randint(0, 5), rng.randint(0, 5) + 0.5])
        if rng.random() < 0.8:
            entry["kind"] = rng.choice("abc")
        if rng.random() < 0.5:
            entry["flag"] = rng.random() < 0.5
        metadata.append(entry)
    ids = store.add([f"text {n}" for n in range(60)], metadata=metadata)
    filters: list[dict[str, Any]] = [
        {"kind": "a"},
        {"n": {"$gte": 2}},
        {"n": {"$lt": 3, "$gt": 0.5}},
        {"n": {"$ne": 2}},
        {"kind": {"$nin": ["a", "b"]}},
        {"flag": False},
        {"kind": {"$in": ["b", "c"]}, "flag": True},
        {"$or": [{"kind": "a"}, {"n": {"$lte": 1}}]},
        {"$and": [{"kind": {"$ne": "c"}}, {"$or": [{"flag": True}, {"n": 4}]}]},
    ]
    for filter in filters:
        expected = {i for i, m in zip(ids, metadata, strict=True) if matches(parse_filter(filter), m)}
        got = set(store.retrieve("text", k=100, filter=filter).ids)
        assert got == expected, filter
    with pytest.raises(FilterError):
        store.retrieve("text", filter={"n": {"$gt": "x"}})


def test_missing_collections_and_other_dimensions_are_refused(chroma: Server, store: ChromaRetriever) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        ChromaRetriever(f"absent-{uuid.uuid4().hex[:8]}", HashEmbedder(), url=chroma.url, create=False).count()
    other = ChromaRetriever(store.collection, HashEmbedder(dimensions=64), url=chroma.url)
    with pytest.raises(StoreError, match="holds 256-dimensional vectors"):
        other.retrieve("x")


def test_aretrieve_matches_retrieve(store: ChromaRetriever) -> None:
    queries = ["capital city", "science fiction", "warm cat"]

    async def run() -> list[Passages]:
        fresh = ChromaRetriever(store.collection, HashEmbedder(), url=store.url)
        return await asyncio.gather(*(fresh.aretrieve(q, k=2, filter={"year": {"$gt": 1900}}) for q in queries))

    results = asyncio.run(run())
    expected = [store.retrieve(q, k=2, filter={"year": {"$gt": 1900}}) for q in queries]
    assert [r.ids for r in results] == [e.ids for e in expected]


def test_one_url_switches_between_the_stores(chroma: Server, tmp_path: Path) -> None:
    embedder = HashEmbedder()
    name = f"switch-{uuid.uuid4().hex[:8]}"
    for url in (f"sqlite-vec://{tmp_path}/switch.db", f"chroma://127.0.0.1:{chroma.port}/{name}"):
        store = retriever_from_url(url, embedder=embedder)
        assert isinstance(store, VectorStore)
        store.add([t for _, t, _ in CORPUS], ids=[i for i, _, _ in CORPUS], metadata=[m for _, _, m in CORPUS])
        found = store.retrieve("capital city", k=2, filter={"kind": "place"})
        assert set(found.ids) == {"paris", "berlin"}


def test_an_unreachable_server_is_a_typed_error() -> None:
    store = ChromaRetriever("docs", HashEmbedder(), url=f"http://127.0.0.1:{free_port()}",
                            max_retries=0, circuit_breaker=False)  # fmt: skip
    with pytest.raises(LMConnectionError) as caught:
        store.retrieve("x")
    assert caught.value.provider == "chroma"
