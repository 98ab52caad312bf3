"""sigforge.testing.AnthropicServer: Anthropic's Messages API, driven with raw httpx."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import httpx_sse
import pytest

from sigforge.testing import AnthropicServer, Reply, rate_limit_headers

HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
USER = {"role": "user", "content": "What is the capital of France?"}
BASE = {"model": "claude-test", "max_tokens": 64, "messages": [USER]}
PNG = "iVBORw0KGgo="


def body(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


def post(
    client: httpx.Client,
    server: AnthropicServer,
    data: Any = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return client.post(
        f"{server.base_url}/v1/messages",
        json=BASE if data is None else data,
        headers=HEADERS if headers is None else headers,
    )


def events(
    client: httpx.Client, server: AnthropicServer, data: dict[str, Any] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Stream a request; each event's name and parsed data."""
    with httpx_sse.connect_sse(
        client,
        "POST",
        f"{server.base_url}/v1/messages",
        json=body(stream=True) if data is None else data,
        headers=HEADERS,
    ) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return [(event.event, event.json()) for event in source.iter_sse()]


# -- valid requests ---------------------------------------------------------------------------


def test_message_body_is_anthropic_shaped() -> None:
    with AnthropicServer(["Paris is the capital."]) as server, httpx.Client() as client:
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        response = post(client, server)
    assert response.status_code == 200
    data = response.json()
    assert data["id"].startswith("msg_")
    del data["id"]
    assert data == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "Paris is the capital."}],
        "model": "claude-test",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 6, "output_tokens": 4},
    }
    assert server.violations == []


def test_stop_reasons_usage_and_no_text() -> None:
    script = [
        Reply("cut", finish_reason="length"),
        Reply("done", finish_reason="stop_sequence", stop_sequence="END"),
        Reply(None, finish_reason="content_filter", prompt_tokens=9, completion_tokens=0),
    ]
    with AnthropicServer(script) as server, httpx.Client() as client:
        cut, stopped, refused = (post(client, server).json() for _ in range(3))
    assert cut["stop_reason"] == "max_tokens"
    assert (stopped["stop_reason"], stopped["stop_sequence"]) == ("stop_sequence", "END")
    assert refused["content"] == [] and refused["stop_reason"] == "refusal"
    assert refused["usage"] == {"input_tokens": 9, "output_tokens": 0}


def test_a_rich_valid_request_has_no_violations() -> None:
    data = body(
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
                ],
            },
            {"role": "assistant", "content": "A cat."},
            {"role": "user", "content": "And the colour?"},
            {"role": "assistant", "content": "The colour is"},  # a prefill
        ],
        temperature=1,
        top_p=0.9,
        top_k=5,
        stop_sequences=["\n\nHuman:"],
        metadata={"user_id": "u1"},
        stream=False,
    )
    with AnthropicServer(["orange"]) as server, httpx.Client() as client:
        response = post(client, server, data)
    assert response.status_code == 200, response.text
    assert server.violations == []
    [request] = server.requests
    assert request.texts == ("Be brief.", "Describe", "A cat.", "And the colour?", "The colour is")
    assert request.model == "claude-test"


# -- streams ----------------------------------------------------------------------------------


def test_stream_is_the_documented_event_sequence() -> None:
    with AnthropicServer([Reply("Paris is lovely")]) as server, httpx.Client() as client:
        received = events(client, server)
    names = [name for name, _ in received]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in received)
    start = received[0][1]["message"]
    assert start["role"] == "assistant" and start["content"] == []
    assert start["stop_reason"] is None and start["usage"]["input_tokens"] == 6
    assert received[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    deltas = [data["delta"] for name, data in received if name == "content_block_delta"]
    assert {delta["type"] for delta in deltas} == {"text_delta"}
    assert "".join(delta["text"] for delta in deltas) == "Paris is lovely"
    assert received[7][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 3},
    }
    assert server.requests[0].stream and server.violations == []


def test_error_event_mid_stream() -> None:
    script = [
        Reply("a b c", break_after=1, stream_error="Overloaded", error_type="overloaded_error")
    ]
    with AnthropicServer(script) as server, httpx.Client() as client:
        received = events(client, server)
    assert [name for name, _ in received][-2:] == ["content_block_delta", "error"]
    assert received[-1][1] == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


def test_dropped_stream() -> None:
    received: list[str] = []
    with (
        AnthropicServer([Reply("a b c", break_after=2)]) as server,
        httpx.Client() as client,
        pytest.raises(httpx.RemoteProtocolError),
        httpx_sse.connect_sse(
            client,
            "POST",
            f"{server.base_url}/v1/messages",
            json=body(stream=True),
            headers=HEADERS,
        ) as source,
    ):
        received.extend(event.event for event in source.iter_sse())
    assert (
        received == ["message_start", "content_block_start", "ping"] + ["content_block_delta"] * 2
    )


# -- violations -------------------------------------------------------------------------------


def image(source: dict[str, Any]) -> dict[str, Any]:
    return body(messages=[{"role": "user", "content": [{"type": "image", "source": source}]}])


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"model": "m", "messages": [USER]}, "max_tokens: Field required"),
        (body(max_tokens="64"), "max_tokens: expected an integer, got a string"),
        (body(max_tokens=0), "max_tokens: 0 is below the minimum 1"),
        ({"max_tokens": 5, "messages": [USER]}, "model: Field required"),
        (body(model=7), "model: expected a string"),
        ({"model": "m", "max_tokens": 5}, "messages: Field required"),
        (body(messages=[]), "messages: at least one message is required"),
        (
            body(messages=[{"role": "system", "content": "Be nice."}, USER]),
            "messages[0].role: 'system' is not a valid role; put the system prompt in the "
            "top-level 'system' parameter",
        ),
        (
            body(messages=[{"role": "assistant", "content": "Hi"}, USER]),
            "messages[0].role: the first message must use the 'user' role",
        ),
        (body(messages=[{"role": "model", "content": "x"}]), "expected 'user' or 'assistant'"),
        (body(messages=[{"role": "user"}]), "messages[0].content: Field required"),
        (body(messages=[{"role": "user", "content": ""}]), "text content must be non-empty"),
        (body(messages=[{"role": "user", "content": []}]), "must not be empty"),
        (
            body(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
            "messages[0].content[0].text: text content blocks must be non-empty",
        ),
        (
            body(messages=[{"role": "user", "content": [{"type": "video"}]}]),
            "messages[0].content[0].type: unknown content block type 'video'",
        ),
        (
            body(messages=[{"role": "user", "content": "x", "name": "bob"}]),
            "messages[0].name: Extra inputs are not permitted",
        ),
        (
            body(messages=[USER, {"role": "assistant", "content": "Paris "}]),
            "final assistant content cannot end with trailing whitespace",
        ),
        (
            image({"type": "base64", "media_type": "image/bmp", "data": PNG}),
            "source.media_type: expected one of image/jpeg, image/png, image/gif, image/webp",
        ),
        (
            image({"type": "base64", "media_type": "image/png", "data": "not base64!"}),
            "source.data: not valid base64",
        ),
        (
            image(
                {
                    "type": "base64",
                    "media_type": "image/png",
                    "data": f"data:image/png;base64,{PNG}",
                }
            ),
            "expected bare base64 data, got a data: URI",
        ),
        (
            image({"type": "url", "url": "ftp://x.test/a.png"}),
            "source.url: expected an http(s) URL",
        ),
        (image({"type": "image_url", "url": "https://x"}), "source.type: expected 'base64'"),
        (
            image({"type": "url", "url": "https://x.test/a.png", "detail": "high"}),
            "source.detail: Extra inputs are not permitted",
        ),
        (body(system={"text": "x"}), "system: expected a string or a list of text blocks"),
        (body(system=[{"type": "image"}]), "system[0]: system blocks must be text blocks"),
        (body(temperature=1.5), "temperature: 1.5 is above the maximum 1"),
        (body(top_p=-0.1), "top_p: -0.1 is below the minimum 0"),
        (body(stop_sequences="END"), "stop_sequences: expected a list of strings"),
        (body(stream="true"), "stream: expected a boolean"),
        (body(max_output_tokens=5), "max_output_tokens: Extra inputs are not permitted"),
    ],
)
def test_wire_format_violations_are_answered_with_400(data: dict[str, Any], problem: str) -> None:
    with AnthropicServer(["unused"]) as server, httpx.Client() as client:
        response = post(client, server, data)
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert problem in error["error"]["message"]
    assert any(problem in violation for violation in server.violations), server.violations
    assert server.remaining == 1


@pytest.mark.parametrize(
    ("headers", "status", "error_type", "problem"),
    [
        (
            {"anthropic-version": "2023-06-01"},
            401,
            "authentication_error",
            "x-api-key: header is required",
        ),
        ({"x-api-key": "k"}, 400, "invalid_request_error", "anthropic-version: header is required"),
        (
            {"x-api-key": "k", "anthropic-version": "2024-13-01"},
            400,
            "invalid_request_error",
            "anthropic-version: '2024-13-01' is not a valid version",
        ),
    ],
)
def test_header_violations(
    headers: dict[str, str], status: int, error_type: str, problem: str
) -> None:
    with AnthropicServer(["unused"]) as server, httpx.Client() as client:
        response = post(client, server, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == {"type": error_type, "message": problem}
    assert server.violations == [f"request 1 (POST /v1/messages): {problem}"]


def test_body_must_be_json_with_a_json_content_type() -> None:
    with AnthropicServer(["unused"]) as server, httpx.Client() as client:
        text = client.post(
            f"{server.base_url}/v1/messages",
            content=json.dumps(BASE).encode(),
            headers={**HEADERS, "content-type": "text/plain"},
        )
        broken = client.post(
            f"{server.base_url}/v1/messages",
            content=b"{broken",
            headers={**HEADERS, "content-type": "application/json"},
        )
    assert (text.status_code, broken.status_code) == (400, 400)
    assert server.violations == [
        "request 1 (POST /v1/messages): content-type: expected application/json, got 'text/plain'",
        "request 2 (POST /v1/messages): the body is not valid JSON",
    ]


def test_wrong_api_key_is_refused_but_not_a_violation() -> None:
    with AnthropicServer(default="ok", api_key="sk-ant-right") as server, httpx.Client() as client:
        wrong = post(client, server)
        right = post(client, server, headers={**HEADERS, "x-api-key": "sk-ant-right"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    assert right.status_code == 200
    assert server.violations == []


def test_unknown_routes_are_404_not_found_error() -> None:
    with AnthropicServer(["unused"]) as server, httpx.Client() as client:
        response = client.get(f"{server.base_url}/v1/models", headers=HEADERS)
    assert response.status_code == 404
    assert response.json() == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "no route for GET /v1/models"},
    }


# -- scripted errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
        (503, "api_error"),
    ],
)
def test_scripted_errors_use_the_status_error_type(status: int, error_type: str) -> None:
    script = [Reply(status=status, error_message="scripted")]
    with AnthropicServer(script) as server, httpx.Client() as client:
        response = post(client, server)
    assert response.status_code == status
    assert response.json() == {
        "type": "error",
        "error": {"type": error_type, "message": "scripted"},
    }


def test_rate_limit_headers_as_scripted() -> None:
    reset = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    headers = rate_limit_headers(
        retry_after=7,
        requests_limit=50,
        requests_remaining=0,
        requests_reset=reset,
        tokens_limit=1000,
        tokens_remaining=10,
        tokens_reset=30.0,
    )
    with AnthropicServer([Reply(status=429, headers=headers)]) as server, httpx.Client() as client:
        response = post(client, server)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.headers["anthropic-ratelimit-requests-limit"] == "50"
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert response.headers["anthropic-ratelimit-requests-reset"] == "2030-01-02T03:04:05Z"
    assert response.headers["anthropic-ratelimit-tokens-remaining"] == "10"
    tokens_reset = datetime.fromisoformat(response.headers["anthropic-ratelimit-tokens-reset"])
    assert tokens_reset.tzinfo is not None and tokens_reset > datetime.now(UTC)
    assert response.json()["error"]["type"] == "rate_limit_error"


def test_retry_after_on_a_reply_becomes_the_header() -> None:
    with AnthropicServer([Reply(status=529, retry_after=2)]) as server, httpx.Client() as client:
        response = post(client, server)
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"]["type"] == "overloaded_error"
