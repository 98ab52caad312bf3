"""Wire formats: how each provider's request bodies, answers, stream events and errors read.

Over-HTTP behaviour against each provider's loopback server is in test_lm_providers.py;
these tests pin the translation itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from sigforge.runtime import LM, ConfigurationError, ContextLengthError
from sigforge.runtime.errors import (
    AuthenticationError,
    BadRequestError,
    RateLimitError,
    ServerError,
)
from sigforge.runtime.messages import Message
from sigforge.runtime.providers import (
    PRESETS,
    AnthropicProvider,
    GeminiProvider,
    OpenAIProvider,
    StreamState,
    WireFormatError,
)

PNG = "data:image/png;base64,iVBORw0KGgo="
CONVERSATION: list[Message] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello"},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in"},
            {"type": "image_url", "image_url": {"url": PNG}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            {"type": "text", "text": "these?"},
        ],
    },
]
SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "Out", "strict": True, "schema": {"type": "object"}},
}


# -- model strings and presets -------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "provider", "base_url", "env"),
    [
        ("openai/gpt-4o-mini", "openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
        ("groq/llama-3.3-70b", "groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
        ("together/meta/llama", "together", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
        ("ollama/llama3.2", "ollama", "http://localhost:11434/v1", None),
        ("anthropic/claude-x", "anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY"),
        (
            "gemini/gemini-2.5-flash",
            "gemini",
            "https://generativelanguage.googleapis.com",
            "GEMINI_API_KEY",
        ),
    ],
)
def test_model_prefixes_pick_the_provider_location_and_key(
    model: str,
    provider: str,
    base_url: str,
    env: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in {p.api_key_env for p in PRESETS.values()} | {
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
    }:
        if variable:
            monkeypatch.setenv(variable, f"key-of-{variable}")
    lm = LM(model)
    assert lm.provider == provider and lm.base_url == base_url
    assert lm.model_name == model.split("/", 1)[1]
    headers = lm._headers()
    values = " ".join(headers.values())
    if env is None:
        assert "key-of-" not in values  # a local server gets no one else's key
    else:
        assert f"key-of-{env}" in values
        assert all(f"key-of-{v}" not in values for v in ("OPENAI_API_KEY",) if v != env)
    assert "key-of" not in repr(lm)


def test_unknown_prefixes_are_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown provider 'nosuch'.*anthropic.*groq"):
        LM("nosuch/model")


# -- request bodies ----------------------------------------------------------------------------


def test_openai_bodies_pass_messages_and_params_and_ask_for_stream_usage() -> None:
    body = OpenAIProvider().body(
        "m", CONVERSATION, {"temperature": 0.1, "response_format": SCHEMA_FORMAT}, stream=True
    )
    assert body["messages"] == CONVERSATION
    assert body["temperature"] == 0.1 and body["response_format"] == SCHEMA_FORMAT
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_anthropic_bodies_lift_the_system_prompt_and_translate_images_and_params() -> None:
    body = AnthropicProvider().body(
        "claude",
        CONVERSATION,
        {"temperature": 0.2, "stop": "END", "seed": 1, "response_format": SCHEMA_FORMAT},
        stream=False,
    )
    assert body["system"] == "Be brief."
    assert body["max_tokens"] == 4096  # required by the API: a default is always sent
    assert body["stop_sequences"] == ["END"] and body["temperature"] == 0.2
    assert "seed" not in body and "response_format" not in body and "stream" not in body
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][3 - 1]["content"] == [
        {"type": "text", "text": "What is in"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "these?"},
    ]
    assert (
        AnthropicProvider().body("c", CONVERSATION, {"max_tokens": 10}, stream=True)["max_tokens"]
        == 10
    )


def test_gemini_bodies_use_contents_system_instruction_and_generation_config() -> None:
    body = GeminiProvider().body(
        "gemini",
        CONVERSATION,
        {"temperature": 0.0, "max_tokens": 50, "top_k": 3, "response_format": SCHEMA_FORMAT},
        stream=True,
    )
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][2]["parts"] == [
        {"text": "What is in"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"}},
        {"text": "these?"},
    ]
    assert body["generationConfig"] == {
        "temperature": 0.0,
        "maxOutputTokens": 50,
        "topK": 3,
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"},
    }
    assert (
        GeminiProvider()
        .url("https://g/v1beta", "gm", stream=True)
        .endswith("/v1beta/models/gm:streamGenerateContent?alt=sse")
    )


# -- answers -----------------------------------------------------------------------------------


def test_finish_reasons_are_normalised_to_openai_words() -> None:
    anthropic = AnthropicProvider().completion(
        {
            "type": "message",
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            "model": "claude-x",
            "stop_reason": "max_tokens",
            "usage": {"input_tokens": 5, "output_tokens": 2, "cache_read_input_tokens": 3},
        },
        "claude",
    )
    assert (anthropic.text, anthropic.finish_reason, anthropic.model) == (
        "ab",
        "length",
        "claude-x",
    )
    assert (anthropic.usage.prompt_tokens, anthropic.usage.completion_tokens) == (8, 2)
    gemini = GeminiProvider().completion(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [{"text": "hid", "thought": True}, {"text": "x"}],
                    },
                    "finishReason": "MAX_TOKENS",
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 4,
                "candidatesTokenCount": 1,
                "thoughtsTokenCount": 2,
            },
        },
        "gm",
    )
    assert (gemini.text, gemini.finish_reason) == ("x", "length")  # thoughts are not the answer
    assert (gemini.usage.prompt_tokens, gemini.usage.completion_tokens) == (4, 3)
    blocked = GeminiProvider().completion({"promptFeedback": {"blockReason": "SAFETY"}}, "gm")
    assert (blocked.text, blocked.finish_reason) == ("", "content_filter")


@pytest.mark.parametrize(
    ("provider", "body"),
    [
        (AnthropicProvider(), {"type": "error"}),
        (AnthropicProvider(), {"type": "message", "content": "text"}),
        (GeminiProvider(), {"candidates": []}),
        (GeminiProvider(), ["list"]),
        (OpenAIProvider(), {"choices": [{"message": {"content": 1}}]}),
    ],
)
def test_bodies_of_the_wrong_shape_are_wire_format_errors(provider: Any, body: Any) -> None:
    with pytest.raises(WireFormatError):
        provider.completion(body, "m")


def test_stream_events_accumulate_text_usage_and_the_end() -> None:
    anthropic, state = AnthropicProvider(), StreamState("c")
    events = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {"model": "claude-x", "usage": {"input_tokens": 7, "output_tokens": 1}},
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hel"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "lo"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 3},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    import json

    texts = [anthropic.feed(state, name, json.dumps(data)) for name, data in events]
    assert texts == ["", "", "", "Hel", "lo", "", "", ""]
    assert state.done and state.completion().text == "Hello"
    assert state.completion().usage.total_tokens == 10 and state.finish_reason == "stop"
    with pytest.raises(ServerError, match="overloaded"):
        anthropic.feed(
            StreamState("c"),
            "error",
            json.dumps(
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            ),
        )

    openai, state = OpenAIProvider(), StreamState("m")
    assert openai.feed(state, "", '{"choices":[{"delta":{"role":"assistant"}}]}') == ""
    assert (
        openai.feed(state, "", '{"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]}')
        == "Hi"
    )
    openai.feed(state, "", '{"choices":[{"delta":{},"finish_reason":"stop"}]}')
    openai.feed(state, "", '{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}')
    assert not state.done
    openai.feed(state, "", "[DONE]")
    assert state.done and state.completion().usage.total_tokens == 4
    with pytest.raises(WireFormatError):
        openai.feed(state, "", "{not json")

    gemini, state = GeminiProvider(), StreamState("g")
    assert gemini.feed(state, "", '{"candidates":[{"content":{"parts":[{"text":"A"}]}}]}') == "A"
    assert not state.done
    assert (
        gemini.feed(
            state,
            "",
            '{"candidates":[{"content":{"parts":[{"text":"B"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":2}}',
        )
        == "B"
    )
    assert state.done and state.completion().text == "AB"


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "status", "body", "expected"),
    [
        (
            OpenAIProvider(),
            400,
            {
                "error": {
                    "message": "This model's maximum context length is 8192 tokens",
                    "code": "context_length_exceeded",
                }
            },
            ContextLengthError,
        ),
        (OpenAIProvider(), 400, {"error": {"message": "Invalid 'temperature'"}}, BadRequestError),
        (OpenAIProvider(), 401, {"error": {"message": "Incorrect API key"}}, AuthenticationError),
        (
            AnthropicProvider(),
            400,
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "prompt is too long: 210000 tokens > 200000 maximum",
                },
            },
            ContextLengthError,
        ),
        (
            AnthropicProvider(),
            529,
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            ServerError,
        ),
        (
            AnthropicProvider(),
            429,
            {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
            RateLimitError,
        ),
        (
            GeminiProvider(),
            400,
            {
                "error": {
                    "code": 400,
                    "message": "The input token count exceeds the maximum number of tokens allowed",
                    "status": "INVALID_ARGUMENT",
                }
            },
            ContextLengthError,
        ),
        (
            GeminiProvider(),
            403,
            {"error": {"code": 403, "message": "API key not valid", "status": "PERMISSION_DENIED"}},
            AuthenticationError,
        ),
    ],
)
def test_error_bodies_map_to_typed_errors(
    provider: Any, status: int, body: Any, expected: type
) -> None:
    message = provider.error_message(body)
    assert message and message in str(body)
    assert provider.error_class(status, body, message) is expected


def test_each_provider_reads_how_long_to_wait() -> None:
    now = datetime.now(UTC)
    assert OpenAIProvider().retry_after({"retry-after-ms": "1500"}, None) == 1.5
    assert OpenAIProvider().retry_after({"retry-after": "7"}, None) == 7.0
    http_date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert 25 < (OpenAIProvider().retry_after({"retry-after": http_date}, None) or 0) <= 30
    assert (
        OpenAIProvider().retry_after(
            {"x-ratelimit-reset-requests": "1m2.5s", "x-ratelimit-reset-tokens": "20ms"}, None
        )
        == 62.5
    )
    assert OpenAIProvider().retry_after({"x-ratelimit-reset-requests": "soon"}, None) is None
    reset = (now + timedelta(seconds=20)).isoformat().replace("+00:00", "Z")
    waited = AnthropicProvider().retry_after(
        {
            "anthropic-ratelimit-tokens-remaining": "0",
            "anthropic-ratelimit-tokens-reset": reset,
            "anthropic-ratelimit-requests-remaining": "10",
            "anthropic-ratelimit-requests-reset": reset,
        },
        None,
    )
    assert waited is not None and 15 < waited <= 20
    gemini_body = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}],
        }
    }
    assert GeminiProvider().retry_after({}, gemini_body) == 12.0
    assert GeminiProvider().retry_after({}, {"error": {}}) is None
