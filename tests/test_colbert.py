"""The ColBERTv2 client against a real loopback ColBERTv2 server (sigforge.testing.colbert)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from sigforge.runtime.errors import (
    BadRequestError,
    BadResponseError,
    CircuitOpenError,
    LMConnectionError,
    LMTimeoutError,
    ServerError,
)
from sigforge.runtime.lm import Timeout
from sigforge.runtime.resilience import CircuitBreaker
from sigforge.runtime.retrieval import ColBERTv2, FilterError, Passage, Passages, Retriever
from sigforge.testing import Reply
from sigforge.testing.colbert import ColBERTv2Server

CORPUS = [
    "Dune | Dune is a 1965 science fiction novel by Frank Herbert.",
    "Paris | Paris is the capital and most populous city of France.",
    "Frank Herbert | Frank Herbert was an American author best known for Dune.",
    "Berlin | Berlin is the capital of Germany.",
]


def test_get_search_returns_ranked_passages() -> None:
    with ColBERTv2Server(CORPUS) as server:
        retriever = ColBERTv2(server.url)
        assert isinstance(retriever, Retriever)
        found = retriever.retrieve("Who wrote Dune, Frank Herbert?", k=2)
        assert isinstance(found, Passages) and all(isinstance(p, Passage) for p in found)
        assert found.ids == ["2", "0"]  # pids, best first
        assert found.texts == [CORPUS[2], CORPUS[0]]
        assert found.scores == [e["score"] for e in server.search("Who wrote Dune, Frank Herbert?", 2)]
        assert dict(found[0].metadata) == {
            "pid": 2,
            "rank": 1,
            "prob": pytest.approx(found[0].metadata["prob"]),
        }
        assert found[0].metadata["prob"] + found[1].metadata["prob"] == pytest.approx(1.0)
        request = server.requests[0]
        assert request.method == "GET" and request.path == "/search"
        assert request.query == {"query": "Who wrote Dune, Frank Herbert?", "k": "2"}
        assert retriever("capital of Germany", k=1).texts == [CORPUS[3]]  # DSPy's call form
        assert server.violations == []


def test_post_mode_sends_a_json_body() -> None:
    with ColBERTv2Server(CORPUS, path="/wiki17_abstracts") as server:
        retriever = ColBERTv2(server.url, post=True)
        assert server.url.endswith("/wiki17_abstracts")
        found = retriever.retrieve("capital city", k=3)
        assert found.ids[:2] == ["1", "3"] or found.ids[:2] == ["3", "1"]
        request = server.requests[0]
        assert request.method == "POST" and request.json == {"query": "capital city", "k": 3}
        assert request.headers["content-type"].startswith("application/json")
        assert server.violations == []


def test_port_argument_and_answers_without_long_text() -> None:
    with ColBERTv2Server(CORPUS, path="/", long_text=False) as server:
        retriever = ColBERTv2("http://127.0.0.1", port=server.port)
        found = retriever.retrieve("Berlin", k=5)
        assert found.texts == [CORPUS[3]] and "text" not in found[0].metadata


def test_the_long_text_is_the_passage_and_the_short_text_kept() -> None:
    body = {"topk": [{"text": "short", "long_text": "the long text", "pid": 9, "rank": 1,
                      "score": 3.5, "prob": 1.0, "extra": "kept"}]}  # fmt: skip
    with ColBERTv2Server(replies=[Reply(body=body)]) as server:
        [passage] = ColBERTv2(server.url).retrieve("q", k=1)
        assert passage.text == "the long text" and passage.id == "9" and passage.score == 3.5
        assert passage.metadata == {"text": "short", "pid": 9, "rank": 1, "prob": 1.0, "extra": "kept"}


def test_more_entries_than_k_are_dropped() -> None:
    entries = [{"text": f"t{n}", "pid": n, "score": 10 - n} for n in range(5)]
    with ColBERTv2Server(replies=[Reply(body={"topk": entries})]) as server:
        assert ColBERTv2(server.url).retrieve("q", k=2).texts == ["t0", "t1"]


def test_server_errors_are_retried() -> None:
    with ColBERTv2Server(CORPUS, replies=[Reply(status=503, retry_after=0)]) as server:
        found = ColBERTv2(server.url, circuit_breaker=False).retrieve("Berlin", k=1)
        assert found.texts == [CORPUS[3]]
        assert len(server.requests) == 2


def test_lasting_server_errors_are_typed() -> None:
    failures = [Reply(status=500, error_message="index not loaded", retry_after=0)] * 2
    with ColBERTv2Server(CORPUS, replies=failures) as server:
        retriever = ColBERTv2(server.url, max_retries=1, circuit_breaker=False)
        with pytest.raises(ServerError) as caught:
            retriever.retrieve("Berlin", k=1)
        error = caught.value
        assert error.status == 500 and error.attempts == 2 and error.provider == "colbertv2"
        assert "index not loaded" in str(error) and "after 2 attempts" in str(error)
        assert len(server.requests) == 2


def test_bad_requests_are_not_retried() -> None:
    with ColBERTv2Server(CORPUS, max_k=10) as server:
        retriever = ColBERTv2(server.url, max_k=None)
        with pytest.raises(BadRequestError) as caught:
            retriever.retrieve("Berlin", k=50)
        assert caught.value.status == 400 and "between 1 and 10" in str(caught.value)
        assert len(server.requests) == 1
        assert server.violations == ["request 1 (GET /search): k: must be between 1 and 10, got 50"]


def test_client_side_checks_send_nothing() -> None:
    with ColBERTv2Server(CORPUS) as server:
        retriever = ColBERTv2(server.url)
        with pytest.raises(ValueError, match="more than this ColBERTv2 server serves"):
            retriever.retrieve("q", k=101)
        with pytest.raises(FilterError, match="cannot filter"):
            retriever.retrieve("q", filter={"source": "wiki"})
        with pytest.raises(ValueError, match="k must be a positive integer"):
            retriever.retrieve("q", k=0)
        assert server.requests == []


def test_timeouts_and_unreachable_servers_are_typed() -> None:
    with ColBERTv2Server(CORPUS, replies=[Reply(delay=5.0)] * 2) as server:
        retriever = ColBERTv2(server.url, timeout=0.3, max_retries=0, circuit_breaker=False)
        with pytest.raises(LMTimeoutError, match="timed out"):
            retriever.retrieve("Berlin")
        whole = ColBERTv2(
            server.url, timeout=Timeout(connect=1, read=5, total=0.4), circuit_breaker=False
        )
        with pytest.raises(LMTimeoutError, match="total timeout") as caught:
            whole.retrieve("Berlin")
        assert caught.value.retryable is False
        url = server.url
    with pytest.raises(LMConnectionError, match="could not reach"):
        ColBERTv2(url, max_retries=0, circuit_breaker=False).retrieve("Berlin")


def test_answers_that_are_not_results_are_bad_responses() -> None:
    replies = [
        Reply(body={"results": []}),
        Reply(body={"topk": [{"pid": 1}]}),
        Reply(body="<html>oops</html>"),
    ]
    with ColBERTv2Server(replies=replies) as server:
        retriever = ColBERTv2(server.url, max_retries=0, circuit_breaker=False)
        with pytest.raises(BadResponseError, match="no 'topk' list"):
            retriever.retrieve("q")
        with pytest.raises(BadResponseError, match=r"topk\[0\] has no 'text'"):
            retriever.retrieve("q")
        with pytest.raises(BadResponseError, match="not JSON"):
            retriever.retrieve("q")


def test_the_circuit_breaker_fails_fast_during_an_outage() -> None:
    with ColBERTv2Server(CORPUS) as server:
        breaker = CircuitBreaker(failure_threshold=2, recovery_time=60)
        retriever = ColBERTv2(server.url, max_retries=0, circuit_breaker=breaker)
        with server.outage():
            for _ in range(2):
                with pytest.raises(ServerError):
                    retriever.retrieve("Berlin")
            with pytest.raises(CircuitOpenError) as caught:
                retriever.retrieve("Berlin")
            assert caught.value.provider == "colbertv2"
        assert len(server.requests) == 2


def test_aretrieve_matches_retrieve_and_runs_concurrently() -> None:
    with ColBERTv2Server(CORPUS) as server:
        retriever = ColBERTv2(server.url, post=True)
        queries = ["Dune novel", "capital of France", "Berlin Germany"]

        async def run() -> list[Passages]:
            return await asyncio.gather(*(retriever.aretrieve(q, k=2) for q in queries))

        results = asyncio.run(run())
        assert [r.ids for r in results] == [retriever.retrieve(q, k=2).ids for q in queries]
        assert results[1][0].text == CORPUS[1]


def test_the_server_checks_requests_and_stops_itself() -> None:
    with ColBERTv2Server(CORPUS, max_lifetime=30) as server:
        bad = [
            httpx.get(server.url, params={"k": "2"}),
            httpx.get(server.url, params={"query": "x", "k": "two"}),
            httpx.get(server.url, params={"query": "x", "k": "2", "extra": "1"}),
            httpx.post(server.url, json={"query": "", "k": 2}),
            httpx.post(server.url, content=b"query=x", headers={"content-type": "text/plain"}),
            httpx.get(server.url.replace("/search", "/other"), params={"query": "x", "k": "1"}),
        ]
        assert [r.status_code for r in bad] == [400, 400, 400, 400, 400, 404]
        assert "k: expected an integer, got 'two'" in bad[1].json()["error"]
        assert [bool(r.violations) for r in server.requests] == [True] * 6
    short = ColBERTv2Server(CORPUS, max_lifetime=0.2).start()
    assert short.wait_stopped(timeout=10) and not short.running
