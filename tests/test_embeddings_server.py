"""The loopback server's /v1/embeddings route: OpenAI's documented request, checked; answers
with deterministic vectors (hashing or a given function), usage, base64, shortening."""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import httpx
import pytest

from sigforge.testing import OpenAICompatServer, RecordedRequest, Reply
from sigforge.testing.server import hashing_embedding


def post(server: OpenAICompatServer, body: Any, path: str = "/embeddings") -> httpx.Response:
    return httpx.post(f"{server.base_url}{path}", json=body, timeout=10)


def test_answers_in_openais_shape_with_usage() -> None:
    with OpenAICompatServer(strict=True) as server:
        answer = post(server, {"model": "emb", "input": ["red apples", "green pears ripen"]})
        single = post(server, {"model": "emb", "input": "red apples"})
        plain_path = httpx.post(
            server.base_url.removesuffix("/v1") + "/embeddings",
            json={"model": "emb", "input": "x"},
            timeout=10,
        )
    assert answer.status_code == 200 and plain_path.status_code == 200
    data = answer.json()
    assert data["object"] == "list" and data["model"] == "emb"
    assert data["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    assert [item["index"] for item in data["data"]] == [0, 1]
    assert all(item["object"] == "embedding" for item in data["data"])
    assert data["data"][0]["embedding"] == hashing_embedding("red apples")
    assert single.json()["data"][0]["embedding"] == hashing_embedding("red apples")
    assert server.violations == []


def test_the_hashing_embedder_is_deterministic_unit_and_word_based() -> None:
    one = hashing_embedding("The Harbour town", 32)
    assert one == hashing_embedding("the harbour TOWN", 32) and len(one) == 32
    assert math.isclose(math.fsum(x * x for x in one), 1.0)
    assert math.isclose(math.fsum(x * x for x in hashing_embedding("", 8)), 1.0)


def test_base64_and_shortened_vectors() -> None:
    with OpenAICompatServer(embedding_dimensions=16) as server:
        data = post(server, {"model": "m", "input": ["a b c"], "encoding_format": "base64"}).json()
        raw = base64.b64decode(data["data"][0]["embedding"])
        unpacked = list(struct.unpack("<16f", raw))
        assert unpacked == pytest.approx(hashing_embedding("a b c", 16), abs=1e-6)
        text = "the quick brown fox jumps over the lazy dog"
        short = post(server, {"model": "m", "input": text, "dimensions": 4}).json()
        vector = short["data"][0]["embedding"]
        full = hashing_embedding(text, 16)[:4]
        norm = math.sqrt(math.fsum(x * x for x in full))
        assert vector == pytest.approx([x / norm for x in full])  # truncated, renormalized
        too_many = post(server, {"model": "m", "input": "a", "dimensions": 17})
        assert too_many.status_code == 400 and "more than the model's 16" in too_many.text
        assert server.violations == []  # a capability limit, not a format violation


def test_a_given_embedder_computes_the_vectors() -> None:
    with OpenAICompatServer(embedder=lambda text: [float(len(text)), 1.0, 0.0]) as server:
        vector = post(server, {"model": "m", "input": "four"}).json()["data"][0]["embedding"]
    assert vector == [4.0, 1.0, 0.0]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"input": "x"}, "model: required"),
        ({"model": "", "input": "x"}, "model: must not be empty"),
        ({"model": "m"}, "input: required"),
        ({"model": "m", "input": ""}, "input: must not be an empty string"),
        ({"model": "m", "input": []}, "input: expected a string or a non-empty list"),
        ({"model": "m", "input": ["ok", ""]}, "input[1]: must not be an empty string"),
        ({"model": "m", "input": ["ok", 3.5]}, "input[1]: expected a non-empty string or token array"),
        ({"model": "m", "input": ["x"] * 2049}, "at most 2048 inputs"),
        ({"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format: 'int8' is not one of"),
        ({"model": "m", "input": "x", "dimensions": 0}, "dimensions: 0 is below the minimum"),
        ({"model": "m", "input": "x", "user": 7}, "user: expected a string"),
    ],
)
def test_requests_are_checked_against_the_documented_format(body: Any, problem: str) -> None:
    with OpenAICompatServer() as server:
        answer = post(server, body)
        assert answer.status_code == 400
        assert problem in answer.json()["error"]["message"]
        assert len(server.violations) == 1 and problem in server.violations[0]


def test_token_arrays_are_accepted_and_unknown_fields_only_when_not_strict() -> None:
    with OpenAICompatServer() as server:
        assert post(server, {"model": "m", "input": [1, 2, 3]}).status_code == 200
        assert post(server, {"model": "m", "input": [[1, 2], [3]]}).status_code == 200
        assert post(server, {"model": "m", "input": "x", "truncate": True}).status_code == 200
    with OpenAICompatServer(strict=True) as server:
        refused = post(server, {"model": "m", "input": "x", "truncate": True})
        assert refused.status_code == 400 and "truncate: unrecognized" in refused.text


def test_long_inputs_get_openais_context_length_error() -> None:
    with OpenAICompatServer(max_input_tokens=3) as server:
        answer = post(server, {"model": "m", "input": ["short", "one two three four"]})
        assert answer.status_code == 400
        assert "maximum context length is 3 tokens" in answer.json()["error"]["message"]
        assert server.violations == []


def test_embedding_requests_have_their_own_script() -> None:
    def responder(request: RecordedRequest) -> Reply:
        return Reply(status=503) if request.json["input"] == "fail" else Reply()

    with OpenAICompatServer(["chat answer"], embedding_replies=[Reply(status=429)]) as server:
        assert post(server, {"model": "m", "input": "x"}).status_code == 429
        assert post(server, {"model": "m", "input": "x"}).status_code == 200
        chat = httpx.post(
            f"{server.base_url}/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert chat.json()["choices"][0]["message"]["content"] == "chat answer"
        assert [r.path for r in server.embedding_requests] == ["/v1/embeddings"] * 2
    with OpenAICompatServer(embedding_replies=responder) as server:
        assert post(server, {"model": "m", "input": "fail"}).status_code == 503
        assert post(server, {"model": "m", "input": "fine"}).status_code == 200
    with OpenAICompatServer() as server, server.outage():
        assert post(server, {"model": "m", "input": "x"}).status_code == 503
