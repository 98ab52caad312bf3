"""Every provider over real HTTP, against its loopback server that checks the wire format.

Each test runs for OpenAI-compatible, Anthropic and Gemini: plain completions, the
conversation our adapters build (system prompt, demos, images), typed predictions in
both formats, streaming (whole, broken and retried, error events), errors and retry
hints. ``server.violations == []`` means the request matched the provider's documented
format.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from generated.qa import AnswerQuestionOutputs, QuickAnswer
from sigforge.runtime import (
    LM,
    AuthenticationError,
    Completion,
    ContextLengthError,
    Image,
    LMRequest,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
    StreamRestart,
    TextDelta,
)
from sigforge.runtime.messages import Message, StreamEvent
from sigforge.testing import AnthropicServer, GeminiServer, OpenAICompatServer, Reply
from sigforge.testing._core import ScriptedServer

KEY = "sk-loopback-test-key"


@dataclass(frozen=True)
class Provider:
    name: str
    server: Callable[..., ScriptedServer]
    model: str
    #: the header that carries the key, and how its value reads
    auth_header: str
    auth_value: str

    def lm(self, server: ScriptedServer, **options: Any) -> LM:
        base_url = server.base_url
        settings: dict[str, Any] = {
            "base_url": base_url,
            "api_key": KEY,
            "cache": False,
            "backoff_base": 0.001,
            "backoff_max": 0.002,
            **options,
        }
        return LM(self.model, **settings)


PROVIDERS = [
    Provider("openai", OpenAICompatServer, "openai/gpt-test", "authorization", f"Bearer {KEY}"),
    Provider("anthropic", AnthropicServer, "anthropic/claude-test", "x-api-key", KEY),
    Provider("gemini", GeminiServer, "gemini/gemini-test", "x-goog-api-key", KEY),
]


@pytest.fixture(params=PROVIDERS, ids=[p.name for p in PROVIDERS])
def provider(request: pytest.FixtureRequest) -> Provider:
    return request.param  # type: ignore[no-any-return]


def ask(text: str = "Capital of France?") -> LMRequest:
    return LMRequest(
        ({"role": "system", "content": "Be brief."}, {"role": "user", "content": text})
    )


def collect(events: Iterator[StreamEvent]) -> list[StreamEvent]:
    return list(events)


def texts(events: list[StreamEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDelta)]


# -- whole answers ---------------------------------------------------------------------------


def test_a_completion_round_trip(provider: Provider) -> None:
    reply = Reply(content="Paris.", prompt_tokens=11, completion_tokens=2)
    with provider.server([reply]) as server, provider.lm(server, temperature=0.5) as lm:
        completion = lm.complete(ask())
    assert completion.text == "Paris." and completion.finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 2)
    assert server.violations == []
    (request,) = server.requests
    assert request.headers[provider.auth_header] == provider.auth_value
    assert request.headers["user-agent"].startswith("sigforge/")
    assert request.model == provider.model.split("/", 1)[1]


def test_the_conversation_our_adapters_build_is_valid_for_every_provider(
    provider: Provider,
) -> None:
    image = Image.from_bytes(b"\x89PNG\r\n\x1a\n fake png bytes", "image/png")
    conversation: tuple[Message, ...] = (
        {"role": "system", "content": "You answer."},
        {"role": "user", "content": "Example question"},
        {"role": "assistant", "content": "Example answer"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": image.url}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ],
        },
    )
    with provider.server(["A picture."]) as server, provider.lm(server, max_tokens=64) as lm:
        assert lm.complete(LMRequest(conversation)).text == "A picture."
    assert server.violations == []
    body = server.requests[0].json
    if provider.name == "anthropic":
        assert body["system"] == "You answer." and body["max_tokens"] == 64
        image_block = body["messages"][2]["content"][1]
        assert image_block["source"]["type"] == "base64"
        assert image_block["source"]["media_type"] == "image/png"
    elif provider.name == "gemini":
        assert body["systemInstruction"]["parts"][0]["text"] == "You answer."
        assert body["contents"][1]["role"] == "model"
        assert body["contents"][2]["parts"][1]["inlineData"]["mimeType"] == "image/png"
        assert body["generationConfig"]["maxOutputTokens"] == 64
    else:
        assert body["messages"][3]["content"][1]["image_url"]["url"] == image.url


@pytest.mark.parametrize("adapter", ["chat", "json"])
def test_typed_predictions_in_both_formats(provider: Provider, adapter: str) -> None:
    chat = "[[ ## answer ## ]]\nParis\n\n[[ ## confidence ## ]]\n0.9\n\n[[ ## completed ## ]]"
    json_reply = '{"answer": "Paris", "confidence": 0.9}'
    reply = chat if adapter == "chat" else json_reply
    with provider.server([reply]) as server, provider.lm(server) as lm:
        outputs = QuickAnswer(lm=lm, adapter=adapter)(context=["Paris is in France."], question="?")
    assert outputs == AnswerQuestionOutputs(answer="Paris", confidence=0.9)
    assert server.violations == []
    body = server.requests[0].json
    if adapter == "json" and provider.name == "gemini":
        config = body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        assert config["responseJsonSchema"]["properties"]["confidence"]["type"] == "number"
    if adapter == "json" and provider.name == "openai":
        assert body["response_format"]["type"] == "json_schema"


def test_async_completions(provider: Provider) -> None:
    async def main(server: ScriptedServer) -> list[str]:
        async with provider.lm(server) as lm:
            done = await asyncio.gather(*(lm.acomplete(ask(str(i))) for i in range(5)))
            return [c.text for c in done]

    with provider.server(default="ok") as server:
        assert asyncio.run(main(server)) == ["ok"] * 5
    assert server.violations == []


# -- streams -----------------------------------------------------------------------------------


def test_streams_deliver_deltas_then_the_whole_completion(provider: Provider) -> None:
    reply = Reply(chunks=["Pa", "ris", " is", " the", " answer."])
    with provider.server([reply]) as server, provider.lm(server) as lm:
        events = collect(lm.stream(ask()))
    assert texts(events) == ["Pa", "ris", " is", " the", " answer."]
    final = events[-1]
    assert isinstance(final, Completion)
    assert final.text == "Paris is the answer." and final.finish_reason == "stop"
    assert final.usage.completion_tokens > 0
    assert server.violations == [] and server.requests[0].stream


def test_async_streams(provider: Provider) -> None:
    async def main(server: ScriptedServer) -> list[StreamEvent]:
        async with provider.lm(server) as lm:
            return [event async for event in lm.astream(ask())]

    with provider.server([Reply(chunks=["a", "b", "c"])]) as server:
        events = asyncio.run(main(server))
    assert texts(events) == ["a", "b", "c"] and isinstance(events[-1], Completion)


def test_a_stream_that_breaks_midway_restarts_cleanly(provider: Provider) -> None:
    broken = Reply(chunks=["Par", "is", "!"], break_after=2)
    with (
        provider.server([broken, Reply(chunks=["Paris", "!"])]) as server,
        provider.lm(server) as lm,
    ):
        events = collect(lm.stream(ask()))
    restarts = [e for e in events if isinstance(e, StreamRestart)]
    assert len(restarts) == 1 and restarts[0].attempt == 2
    assert isinstance(restarts[0].error, StreamInterruptedError)
    after = events[events.index(restarts[0]) + 1 :]
    assert texts(after) == ["Paris", "!"]
    final = events[-1]
    assert isinstance(final, Completion) and final.text == "Paris!"  # nothing half-done kept


def test_a_broken_stream_without_retries_is_a_typed_error(provider: Provider) -> None:
    with (
        provider.server([Reply(chunks=["Par", "is"], break_after=1)]) as server,
        provider.lm(server, max_retries=0) as lm,
    ):
        seen: list[StreamEvent] = []
        with pytest.raises(StreamInterruptedError) as caught:
            for event in lm.stream(ask()):
                seen.append(event)
    assert texts(seen) == ["Par"]
    assert not any(isinstance(e, Completion) for e in seen)
    assert KEY not in str(caught.value)


def test_an_error_event_midstream_is_retried(provider: Provider) -> None:
    failing = Reply(chunks=["x", "y"], break_after=1, stream_error="Overloaded")
    with (
        provider.server([failing, Reply(chunks=["fine"])]) as server,
        provider.lm(server) as lm,
    ):
        events = collect(lm.stream(ask()))
    assert isinstance(events[-1], Completion) and events[-1].text == "fine"


def test_a_truncated_stream_reports_length(provider: Provider) -> None:
    with (
        provider.server([Reply(chunks=["cut", " off"], finish_reason="length")]) as server,
        provider.lm(server) as lm,
    ):
        final = collect(lm.stream(ask()))[-1]
    assert isinstance(final, Completion) and final.finish_reason == "length"


# -- errors ---------------------------------------------------------------------------------


def test_rate_limits_are_retried_after_the_servers_hint(provider: Provider) -> None:
    limited = Reply(status=429, error_message="slow down", retry_after=0.05)
    with provider.server([limited, "ok"]) as server, provider.lm(server) as lm:
        assert lm.complete(ask()).text == "ok"
    with (
        provider.server(default=limited) as server,
        provider.lm(server, max_retries=1) as lm,
        pytest.raises(RateLimitError) as caught,
    ):
        lm.complete(ask())
    error = caught.value
    assert error.attempts == 2 and error.status == 429 and error.provider == provider.name
    assert error.retry_after == pytest.approx(0.05)
    assert "slow down" in str(error)


def test_server_errors_are_retried_and_auth_errors_are_not(provider: Provider) -> None:
    with (
        provider.server([Reply(status=500), Reply(status=503), "ok"]) as server,
        provider.lm(server) as lm,
    ):
        assert lm.complete(ask()).text == "ok"
    with (
        provider.server([Reply(status=401, error_message="bad key"), "never"]) as server,
        provider.lm(server) as lm,
        pytest.raises(AuthenticationError, match="bad key"),
    ):
        lm.complete(ask())
        assert len(server.requests) == 1


def test_context_length_errors_are_typed(provider: Provider) -> None:
    message = {
        "openai": "This model's maximum context length is 8192 tokens.",
        "anthropic": "prompt is too long: 210000 tokens > 200000 maximum",
        "gemini": "The input token count exceeds the maximum number of tokens allowed.",
    }[provider.name]
    with (
        provider.server([Reply(status=400, error_message=message)]) as server,
        provider.lm(server) as lm,
        pytest.raises(ContextLengthError),
    ):
        lm.complete(ask())


def test_anthropic_overloaded_529_is_a_retried_server_error() -> None:
    overloaded = Reply(status=529, error_message="Overloaded")
    with AnthropicServer([overloaded, overloaded]) as server:
        lm = PROVIDERS[1].lm(server, max_retries=1)
        with lm, pytest.raises(ServerError, match="Overloaded") as caught:
            lm.complete(ask())
    assert caught.value.status == 529 and caught.value.attempts == 2


def test_the_key_never_reaches_errors_even_when_the_server_echoes_it(provider: Provider) -> None:
    echo = Reply(status=400, error_message=f"key {KEY} is not allowed here")
    with (
        provider.server([echo]) as server,
        provider.lm(server) as lm,
        pytest.raises(Exception) as caught,
    ):
        lm.complete(ask())
    assert KEY not in str(caught.value) and KEY not in getattr(caught.value, "body", "")
    assert "<redacted>" in str(caught.value)
    assert KEY not in repr(lm)
