"""sigforge.testing.GeminiServer: the Gemini API's generateContent, driven with raw httpx."""

from __future__ import annotations

import json
from typing import Any

import httpx
import httpx_sse
import pytest

from sigforge.testing import GeminiServer, Reply

KEY = {"x-goog-api-key": "test-key"}
USER = {"role": "user", "parts": [{"text": "What is the capital of France?"}]}
BASE: dict[str, Any] = {"contents": [USER]}
PNG = "iVBORw0KGgo="


def body(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


def generate(
    client: httpx.Client,
    server: GeminiServer,
    data: Any = None,
    headers: dict[str, str] | None = None,
    model: str = "gemini-test",
) -> httpx.Response:
    return client.post(
        server.url(model),
        json=BASE if data is None else data,
        headers=KEY if headers is None else headers,
    )


def stream(
    client: httpx.Client, server: GeminiServer, data: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The parsed chunks of an SSE stream."""
    with httpx_sse.connect_sse(
        client, "POST", server.url("gemini-test", stream=True), json=data or BASE, headers=KEY
    ) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return [event.json() for event in source.iter_sse()]


# -- valid requests ---------------------------------------------------------------------------


def test_generate_content_body_is_gemini_shaped() -> None:
    with GeminiServer(["Paris is the capital."]) as server, httpx.Client() as client:
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        response = generate(client, server)
    assert response.status_code == 200
    data = response.json()
    assert isinstance(data.pop("responseId"), str)
    assert data == {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "Paris is the capital."}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 6, "candidatesTokenCount": 4, "totalTokenCount": 10},
        "modelVersion": "gemini-test",
    }
    assert server.violations == []
    [request] = server.requests
    assert request.model == "gemini-test" and not request.stream
    assert request.path == "/v1beta/models/gemini-test:generateContent"


def test_a_rich_valid_request_in_either_spelling_has_no_violations() -> None:
    camel = body(
        systemInstruction={"parts": [{"text": "Be brief."}]},
        contents=[
            {
                "role": "user",
                "parts": [
                    {"text": "Describe"},
                    {"inlineData": {"mimeType": "image/png", "data": PNG}},
                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://b/a.jpg"}},
                ],
            },
            {"role": "model", "parts": [{"text": "A cat."}]},
            {"parts": [{"text": "And the colour?"}]},  # the role may be left out
        ],
        generationConfig={
            "temperature": 0.2,
            "topP": 0.9,
            "topK": 40,
            "maxOutputTokens": 100,
            "stopSequences": ["END"],
            "responseMimeType": "application/json",
            "responseSchema": {"type": "OBJECT"},
            "candidateCount": 1,
        },
        safetySettings=[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    )
    snake = body(
        system_instruction={"parts": [{"text": "Be brief."}]},
        contents=[
            {"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": PNG}}]},
            {"role": "user", "parts": [{"file_data": {"file_uri": "https://x.test/a.pdf"}}]},
        ],
        generation_config={
            "max_output_tokens": 10,
            "response_mime_type": "application/json",
            "response_json_schema": {"type": "object"},
            "top_p": 0.5,
        },
    )
    with GeminiServer(default="ok") as server, httpx.Client() as client:
        responses = [generate(client, server, camel), generate(client, server, snake)]
    assert [r.status_code for r in responses] == [200, 200], responses[0].text
    assert server.violations == []
    assert server.requests[0].texts == ("Be brief.", "Describe", "A cat.", "And the colour?")


def test_key_in_the_query_and_v1_paths() -> None:
    with GeminiServer(default="ok") as server, httpx.Client() as client:
        query = client.post(
            f"{server.base_url}/v1beta/models/gemini-test:generateContent?key=k", json=BASE
        )
        v1 = client.post(f"{server.base_url}/v1/models/g:generateContent", json=BASE, headers=KEY)
    assert (query.status_code, v1.status_code) == (200, 200)
    assert server.requests[0].query == {"key": "k"}
    assert server.violations == []


def test_finish_reasons_candidates_and_usage() -> None:
    script = [
        Reply("cut", finish_reason="length"),
        Reply(None, finish_reason="content_filter"),
        Reply("two", prompt_tokens=3, completion_tokens=2),
    ]
    with GeminiServer(script) as server, httpx.Client() as client:
        cut = generate(client, server).json()
        blocked = generate(client, server).json()
        config = {"generationConfig": {"candidateCount": 2}}
        twice = generate(client, server, body(**config)).json()
    assert cut["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert blocked["candidates"] == [{"finishReason": "SAFETY", "index": 0}]
    assert [c["index"] for c in twice["candidates"]] == [0, 1]
    assert {c["content"]["parts"][0]["text"] for c in twice["candidates"]} == {"two"}
    assert twice["usageMetadata"] == {
        "promptTokenCount": 3,
        "candidatesTokenCount": 4,
        "totalTokenCount": 7,
    }


# -- streams ----------------------------------------------------------------------------------


def test_sse_stream_chunks_then_finish_and_usage() -> None:
    with GeminiServer([Reply("Paris is lovely")]) as server, httpx.Client() as client:
        chunks = stream(client, server)
        with client.stream(
            "POST", server.url("gemini-test", stream=True), json=BASE, headers=KEY
        ) as raw:
            pass
    texts = [chunk["candidates"][0]["content"]["parts"][0]["text"] for chunk in chunks]
    assert texts == ["Paris ", "is ", "lovely", ""]
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert all("usageMetadata" not in chunk for chunk in chunks[:-1])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"] == {
        "promptTokenCount": 6,
        "candidatesTokenCount": 3,
        "totalTokenCount": 9,
    }
    assert {chunk["modelVersion"] for chunk in chunks} == {"gemini-test"}
    assert len({chunk["responseId"] for chunk in chunks}) == 1
    assert server.requests[0].stream and server.violations == []
    # the script ran out: an error before a stream starts is plain JSON
    assert raw.status_code == 500
    assert raw.headers["content-type"] == "application/json"


def test_sse_events_end_lines_with_crlf_as_google_does() -> None:
    with GeminiServer([Reply("a b")]) as server, httpx.Client() as client:
        response = client.post(server.url("g", stream=True), json=BASE, headers=KEY)
    assert response.text.startswith("data: {")
    assert response.text.endswith("}\r\n\r\n")
    assert response.text.count("\r\n\r\n") == 3


def test_stream_without_alt_sse_is_a_json_array() -> None:
    with GeminiServer([Reply("a b")]) as server, httpx.Client() as client:
        response = client.post(
            f"{server.base_url}/v1beta/models/g:streamGenerateContent", json=BASE, headers=KEY
        )
    chunks = response.json()
    assert response.headers["content-type"].startswith("application/json")
    assert [chunk["candidates"][0]["content"]["parts"][0]["text"] for chunk in chunks] == [
        "a ",
        "b",
        "",
    ]


def test_error_chunk_mid_stream_and_dropped_stream() -> None:
    script = [
        Reply("a b c", break_after=1, stream_error="try later", error_type="UNAVAILABLE"),
        Reply("a b c", break_after=2),
    ]
    received: list[dict[str, Any]] = []
    with GeminiServer(script) as server, httpx.Client() as client:
        failed = stream(client, server)
        with (
            pytest.raises(httpx.RemoteProtocolError),
            httpx_sse.connect_sse(
                client, "POST", server.url("g", stream=True), json=BASE, headers=KEY
            ) as source,
        ):
            received.extend(event.json() for event in source.iter_sse())
    assert failed[-1] == {"error": {"code": 503, "message": "try later", "status": "UNAVAILABLE"}}
    assert len(failed) == 2
    assert len(received) == 2


# -- violations -------------------------------------------------------------------------------


def part(value: dict[str, Any]) -> dict[str, Any]:
    return body(contents=[{"role": "user", "parts": [value]}])


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({}, "contents: required"),
        (body(contents=[]), "contents: must not be empty"),
        (body(contents="hi"), "contents: expected a list"),
        (
            body(contents=[{"role": "assistant", "parts": [{"text": "x"}]}]),
            "contents[0].role: 'assistant': Please use a valid role: user, model.",
        ),
        (body(contents=[{"role": "user", "parts": []}]), "contents.parts must not be empty"),
        (body(contents=[{"role": "user"}]), "contents[0].parts: required"),
        (
            body(contents=[{"role": "user", "content": "x", "parts": [{"text": "x"}]}]),
            'Unknown name "content": Cannot find field.',
        ),
        (
            part({"text": "x", "inlineData": {"mimeType": "image/png", "data": PNG}}),
            "a part holds exactly one of",
        ),
        (part({}), "(found: none)"),
        (part({"image": "x"}), 'Unknown name "image"'),
        (part({"inlineData": {"data": PNG}}), "inlineData.mimeType: required"),
        (part({"inlineData": {"mimeType": "image/png", "data": "%%%"}}), "data: not valid base64"),
        (part({"fileData": {"mimeType": "image/png"}}), "fileData.fileUri: required"),
        (
            part({"text": "x", "text_": 1}),
            'Unknown name "text_"',
        ),
        (
            body(systemInstruction={"parts": [{"inlineData": {"mimeType": "a/b", "data": PNG}}]}),
            "systemInstruction.parts[0]: a system instruction holds text parts only",
        ),
        (body(system_instruction="Be brief."), "systemInstruction: expected an object"),
        (body(generationConfig={"temperature": 3}), "temperature: 3 is above the maximum 2"),
        (body(generationConfig={"maxOutputTokens": "5"}), "maxOutputTokens: expected an integer"),
        (body(generationConfig={"candidateCount": 9}), "candidateCount: 9 is above the maximum 8"),
        (
            body(generationConfig={"stopSequences": ["a", "b", "c", "d", "e", "f"]}),
            "stopSequences: at most 5 items are allowed",
        ),
        (
            body(generationConfig={"responseMimeType": "text/html"}),
            "responseMimeType: 'text/html' is not one of",
        ),
        (
            body(generationConfig={"responseSchema": {"type": "OBJECT"}}),
            "responseMimeType: must be application/json or text/x.enum with responseSchema",
        ),
        (
            body(
                generationConfig={
                    "responseMimeType": "application/json",
                    "responseSchema": {},
                    "responseJsonSchema": {},
                }
            ),
            "give responseSchema or responseJsonSchema, not both",
        ),
        (body(generationConfig={"max_tokens": 5}), 'Unknown name "maxTokens"'),
        (
            body(generationConfig={"topP": 0.5, "top_p": 0.5}),
            "generationConfig.topP: given twice",
        ),
        (body(temperature=0.5), 'Unknown name "temperature"'),
        (body(messages=[]), 'Unknown name "messages"'),
        (body(safetySettings=[{"category": "x", "level": "y"}]), 'Unknown name "level"'),
    ],
)
def test_wire_format_violations_are_answered_with_400(data: dict[str, Any], problem: str) -> None:
    with GeminiServer(["unused"]) as server, httpx.Client() as client:
        response = generate(client, server, data)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert problem in error["message"]
    assert any(problem in violation for violation in server.violations), server.violations
    assert server.remaining == 1


def test_missing_key_is_permission_denied_and_a_violation() -> None:
    with GeminiServer(["unused"]) as server, httpx.Client() as client:
        response = generate(client, server, headers={})
        bad_alt = client.post(
            f"{server.base_url}/v1beta/models/g:streamGenerateContent?alt=xml",
            json=BASE,
            headers=KEY,
        )
    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"
    assert bad_alt.status_code == 400
    assert len(server.violations) == 2
    assert "unregistered callers" in server.violations[0]
    assert "alt: 'xml' is not one of 'sse', 'json'" in server.violations[1]


def test_wrong_key_is_refused_but_not_a_violation() -> None:
    with GeminiServer(default="ok", api_key="right") as server, httpx.Client() as client:
        wrong = generate(client, server)
        right = generate(client, server, headers={"x-goog-api-key": "right"})
    assert wrong.status_code == 400
    assert wrong.json()["error"]["message"] == "API key not valid. Please pass a valid API key."
    assert right.status_code == 200
    assert server.violations == []


def test_wrong_routes_and_body_types() -> None:
    with GeminiServer(["unused"]) as server, httpx.Client() as client:
        wrong = client.post(f"{server.base_url}/v1beta/models/g:predict", json=BASE, headers=KEY)
        text = client.post(
            server.url("g"),
            content=json.dumps(BASE).encode(),
            headers={**KEY, "content-type": "text/plain"},
        )
    assert wrong.status_code == 404
    assert wrong.json()["error"]["status"] == "NOT_FOUND"
    assert text.status_code == 400
    assert server.violations == [
        "request 1 (POST /v1beta/models/g:predict): no route for POST /v1beta/models/g:predict",
        "request 2 (POST /v1beta/models/g:generateContent): content-type: expected "
        "application/json, got 'text/plain'",
    ]


# -- scripted errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (400, "INVALID_ARGUMENT"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (503, "UNAVAILABLE"),
    ],
)
def test_scripted_errors_use_google_status_names(status: int, name: str) -> None:
    script = [Reply(status=status, error_message="scripted")]
    with GeminiServer(script) as server, httpx.Client() as client:
        response = generate(client, server)
    assert response.status_code == status
    assert response.json() == {"error": {"code": status, "message": "scripted", "status": name}}


def test_retry_after_is_a_retry_info_detail_not_a_header() -> None:
    script = [Reply(status=429, retry_after=37, error_message="quota")]
    with GeminiServer(script) as server, httpx.Client() as client:
        response = generate(client, server)
    assert "retry-after" not in response.headers
    assert response.json()["error"]["details"] == [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}
    ]
