"""sigforge.testing.FaultInjector on all three servers, and outages, driven with raw httpx.

Each test drives a server with plain httpx, classifies what the client saw, and checks it
against the injector's record of the same request: every request is accounted for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import httpx_sse
import pytest

from sigforge.testing import (
    FAULT_KINDS,
    AnthropicServer,
    FaultInjector,
    GeminiServer,
    OpenAICompatServer,
    Reply,
    ScriptedServer,
)

TEXT = "one two three four five six"
PIECES = TEXT.split()


@dataclass(frozen=True)
class Provider:
    """How a plain client talks to one provider's server."""

    name: str
    server: Callable[..., ScriptedServer]
    #: the URL of a request (streamed or not)
    url: Callable[[ScriptedServer, bool], str]
    headers: dict[str, str]
    #: the body of a request (streamed or not)
    body: Callable[[bool], dict[str, Any]]
    #: the text and the finish reason of a non-streamed answer
    answer: Callable[[dict[str, Any]], tuple[str, str]]
    #: from one stream event (name, data): a text piece, a finish reason, an error
    event: Callable[[str, dict[str, Any]], tuple[str, str | None, bool]]
    #: the provider's word for "cut off at the token limit"
    length: str


def _openai_event(name: str, data: dict[str, Any]) -> tuple[str, str | None, bool]:
    if "error" in data:
        return "", None, True
    choice = data["choices"][0] if data["choices"] else {}
    return choice.get("delta", {}).get("content") or "", choice.get("finish_reason"), False


def _anthropic_event(name: str, data: dict[str, Any]) -> tuple[str, str | None, bool]:
    if name == "content_block_delta":
        return data["delta"]["text"], None, False
    if name == "message_delta":
        return "", data["delta"]["stop_reason"], False
    return "", None, name == "error"


def _gemini_event(name: str, data: dict[str, Any]) -> tuple[str, str | None, bool]:
    if "error" in data:
        return "", None, True
    candidate = data["candidates"][0]
    return candidate["content"]["parts"][0]["text"], candidate.get("finishReason"), False


USER_TEXT = "Count to six."
PROVIDERS = [
    Provider(
        "openai",
        OpenAICompatServer,
        lambda server, stream: f"{server.base_url}/chat/completions",
        {"Authorization": "Bearer sk-test"},
        lambda stream: {
            "model": "m",
            "messages": [{"role": "user", "content": USER_TEXT}],
            "stream": stream,
        },
        lambda data: (
            data["choices"][0]["message"]["content"],
            data["choices"][0]["finish_reason"],
        ),
        _openai_event,
        "length",
    ),
    Provider(
        "anthropic",
        AnthropicServer,
        lambda server, stream: f"{server.base_url}/v1/messages",
        {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"},
        lambda stream: {
            "model": "claude-test",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": USER_TEXT}],
            "stream": stream,
        },
        lambda data: (data["content"][0]["text"], data["stop_reason"]),
        _anthropic_event,
        "max_tokens",
    ),
    Provider(
        "gemini",
        GeminiServer,
        lambda server, stream: (
            f"{server.base_url}/v1beta/models/g:streamGenerateContent?alt=sse"
            if stream
            else f"{server.base_url}/v1beta/models/g:generateContent"
        ),
        {"x-goog-api-key": "test-key"},
        lambda stream: {"contents": [{"role": "user", "parts": [{"text": USER_TEXT}]}]},
        lambda data: (
            data["candidates"][0]["content"]["parts"][0]["text"],
            data["candidates"][0]["finishReason"],
        ),
        _gemini_event,
        "MAX_TOKENS",
    ),
]
IDS = [provider.name for provider in PROVIDERS]

#: the client's read timeout where the plan injects stalls (they are far longer, and cut short
#: at stop); tests whose plan has no stall wait much longer, so that a slow reply on a loaded
#: machine is not mistaken for an injected one
READ_TIMEOUT = 1.0
PATIENT_READ_TIMEOUT = 15.0


def client(read: float = READ_TIMEOUT) -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(5.0, read=read))


@dataclass(frozen=True)
class Seen:
    """What the client saw: the fault it amounts to, and the text pieces it received."""

    kind: str | None
    pieces: list[str]


def call(provider: Provider, http: httpx.Client, server: ScriptedServer) -> Seen:
    """One plain (non-streamed) request."""
    try:
        response = http.post(
            provider.url(server, False), json=provider.body(False), headers=provider.headers
        )
    except httpx.ReadTimeout:
        return Seen("timeout", [])
    except httpx.RemoteProtocolError:
        return Seen("disconnect", [])
    if response.status_code in (429, 500):
        return Seen(str(response.status_code), [])
    assert response.status_code == 200, response.text
    try:
        data = response.json()
    except ValueError:
        return Seen("malformed", [])
    text, finish = provider.answer(data)
    return Seen("truncated" if finish == provider.length else None, text.split())


def call_stream(provider: Provider, http: httpx.Client, server: ScriptedServer) -> Seen:
    """One streamed request."""
    pieces: list[str] = []
    finish: str | None = None
    try:
        with httpx_sse.connect_sse(
            http,
            "POST",
            provider.url(server, True),
            json=provider.body(True),
            headers=provider.headers,
        ) as source:
            if source.response.status_code != 200:
                return Seen(str(source.response.status_code), [])
            for event in source.iter_sse():
                if event.data == "[DONE]":
                    continue
                try:
                    data = json.loads(event.data)
                except ValueError:
                    return Seen("malformed", pieces)
                piece, reason, error = provider.event(event.event, data)
                if error:
                    return Seen("500", pieces)
                if piece:
                    pieces.append(piece.strip())
                finish = reason or finish
    except httpx.ReadTimeout:
        return Seen("timeout", pieces)
    except httpx.RemoteProtocolError:
        return Seen("disconnect", pieces)
    return Seen("truncated" if finish == provider.length else None, pieces)


# -- every request is accounted for -----------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_what_the_client_saw_matches_the_records(provider: Provider, stream: bool) -> None:
    faults = FaultInjector(TEXT, seed=11, rate=0.6, timeout_delay=30.0, retry_after=0)
    count = 30
    with provider.server(faults) as server, client() as http:
        seen = [(call_stream if stream else call)(provider, http, server) for _ in range(count)]
    records = faults.records
    assert [record.number for record in records] == list(range(1, count + 1))
    assert [record.kind for record in records] == faults.plan(count)
    assert {record.kind for record in records} == {None, *FAULT_KINDS}  # every kind occurs
    for observed, record in zip(seen, records, strict=True):
        assert observed.kind == record.kind, (record.number, record)
        assert record.stream is stream and record.request.stream is stream
        if record.kind is None:
            assert observed.pieces == PIECES
        elif record.kind == "truncated":
            assert observed.pieces == PIECES[: record.at_piece]
            assert 1 <= len(observed.pieces) < len(PIECES)
        elif stream and record.kind != "429":
            # a mid-stream fault strikes after the pieces the record names
            assert observed.pieces == PIECES[: record.at_piece]
    assert server.violations == []
    assert len(server.requests) == count


def test_the_same_seed_gives_the_same_faults() -> None:
    def run(seed: int) -> list[str | None]:
        faults = FaultInjector(TEXT, seed=seed, rate=0.5, timeout_delay=30.0)
        with OpenAICompatServer(faults) as server, client() as http:
            for _ in range(20):
                call(PROVIDERS[0], http, server)
        return [record.kind for record in faults.records]

    first, again = run(3), run(3)
    assert first == again == FaultInjector(seed=3, rate=0.5).plan(20)
    assert FaultInjector(seed=4, rate=0.5).plan(50) != FaultInjector(seed=3, rate=0.5).plan(50)


def test_rate_and_weights_shape_the_plan() -> None:
    assert FaultInjector(rate=0.0).plan(100) == [None] * 100
    everything = FaultInjector(rate=1.0, kinds={"429": 1, "disconnect": 3}).plan(400)
    assert None not in everything
    assert set(everything) == {"429", "disconnect"}
    assert 200 < everything.count("disconnect") < 400  # about three in four
    assert FaultInjector(seed=1).plan(10, start=5) == FaultInjector(seed=1).plan(14)[4:]
    some = FaultInjector(seed=2, rate=0.2).plan(1000)
    assert 100 < sum(kind is not None for kind in some) < 300


def test_latency_is_drawn_recorded_and_added() -> None:
    faults = FaultInjector(Reply("ok", delay=0.01), rate=0.0, latency=(0.001, 0.004))
    with OpenAICompatServer(faults) as server, client(read=PATIENT_READ_TIMEOUT) as http:
        for _ in range(5):
            call(PROVIDERS[0], http, server)
    for record in faults.records:
        assert 0.001 <= record.latency <= 0.004
        assert record.reply.delay == pytest.approx(0.01 + record.latency)
        assert record.kind is None and record.at_piece is None


def test_a_responder_gives_the_normal_replies() -> None:
    faults = FaultInjector(lambda request: request.last_text.upper(), seed=5, rate=0.0)
    with OpenAICompatServer(faults) as server, client(read=PATIENT_READ_TIMEOUT) as http:
        seen = call(PROVIDERS[0], http, server)
    assert seen == Seen(None, ["COUNT", "TO", "SIX."])
    assert faults.counts() == {None: 1}


def test_injected_rate_limits_carry_retry_after() -> None:
    faults = FaultInjector(rate=1.0, kinds={"429": 1}, retry_after=4)
    with AnthropicServer(faults) as server, client(read=PATIENT_READ_TIMEOUT) as http:
        provider = PROVIDERS[1]
        response = http.post(
            provider.url(server, False), json=provider.body(False), headers=provider.headers
        )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "4"
    assert response.json()["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate": 1.5}, "rate must be between 0 and 1"),
        ({"kinds": {"slow": 1}}, "unknown fault kinds"),
        ({"kinds": {"500": 0}}, "not all 0"),
        ({"kinds": {"500": -1}}, ">= 0"),
        ({"latency": (0.2, 0.1)}, "latency"),
        ({"timeout_delay": 0}, "timeout_delay"),
    ],
)
def test_bad_settings_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultInjector(**options)


# -- outages, for circuit breakers ------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_outage_then_refused_connections_then_recovery(provider: Provider) -> None:
    faults = FaultInjector(TEXT, rate=0.0)
    with provider.server(faults) as server, client(read=PATIENT_READ_TIMEOUT) as http:

        def post() -> httpx.Response:
            return http.post(
                provider.url(server, False), json=provider.body(False), headers=provider.headers
            )

        assert post().status_code == 200
        server.take_down()
        failing = [post() for _ in range(3)]
        server.take_down(refuse=True)
        with pytest.raises(httpx.ConnectError):
            post()
        server.bring_up()
        assert post().status_code == 200
    assert [response.status_code for response in failing] == [503] * 3
    errors = [response.json() for response in failing]
    if provider.name == "anthropic":
        assert errors[0]["type"] == "error" and errors[0]["error"]["type"] == "api_error"
    elif provider.name == "gemini":
        assert errors[0]["error"]["status"] == "UNAVAILABLE"
    else:
        assert errors[0]["error"]["type"] == "server_error"
    # every request that reached the server is recorded; the outage answered three of them
    stats = server.stats()
    assert stats.requests == 5 == len(faults.records) + stats.outage_answers
    assert server.violations == []


def test_concurrent_clients_are_all_accounted_for() -> None:
    import threading

    faults = FaultInjector(
        TEXT, seed=9, rate=0.5, kinds={"500": 1, "429": 1, "malformed": 1, "disconnect": 1}
    )
    seen: list[Seen] = []
    lock = threading.Lock()

    def work(server: ScriptedServer) -> None:
        with client(read=PATIENT_READ_TIMEOUT) as http:
            for _ in range(10):
                outcome = call(PROVIDERS[0], http, server)
                with lock:
                    seen.append(outcome)

    with OpenAICompatServer(faults) as server:
        threads = [threading.Thread(target=work, args=(server,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    records = faults.records
    # each request number was decided once, as the plan says, whatever the interleaving
    assert [record.number for record in records] == list(range(1, 61))
    assert [record.kind for record in records] == faults.plan(60)
    assert sorted(map(str, (s.kind for s in seen))) == sorted(map(str, faults.plan(60)))
    assert len({record.request.number for record in records}) == 60
