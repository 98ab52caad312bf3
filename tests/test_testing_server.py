"""sigforge.testing: the scripted OpenAI-compatible server (and what all servers share), ScriptedLM."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import httpx_sse
import pytest

from sigforge.runtime.errors import RateLimitError
from sigforge.runtime.history import last
from sigforge.runtime.lm import LM
from sigforge.runtime.messages import Completion, LMRequest, Usage
from sigforge.testing import (
    AnthropicServer,
    GeminiServer,
    OpenAICompatServer,
    RecordedRequest,
    Reply,
    ScriptedLM,
    ScriptedServer,
    ScriptExhaustedError,
)

HELLO = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}


def chat(client: httpx.Client, server: OpenAICompatServer, body: Any = None) -> httpx.Response:
    return client.post(f"{server.base_url}/chat/completions", json=HELLO if body is None else body)


def content(response: httpx.Response) -> Any:
    return response.json()["choices"][0]["message"]["content"]


# -- the server ------------------------------------------------------------------------------


def test_binds_to_loopback_only() -> None:
    with OpenAICompatServer() as server:
        host, port = server.address
        assert host == "127.0.0.1"
        assert server.base_url == f"http://127.0.0.1:{port}/v1"
        assert port == server.port != 0


def test_scripted_replies_are_used_in_order_then_run_out() -> None:
    with (
        OpenAICompatServer(["one", Reply(content="two"), "three"]) as server,
        httpx.Client() as client,
    ):
        assert [content(chat(client, server)) for _ in range(3)] == ["one", "two", "three"]
        assert server.remaining == 0
        exhausted = chat(client, server)
    assert exhausted.status_code == 500
    assert "script ran out" in exhausted.json()["error"]["message"]


def test_default_reply_after_the_script() -> None:
    with OpenAICompatServer(["first"], default="again") as server, httpx.Client() as client:
        assert [content(chat(client, server)) for _ in range(3)] == ["first", "again", "again"]


def test_completion_body_is_openai_shaped() -> None:
    with OpenAICompatServer(["Paris is lovely"]) as server, httpx.Client() as client:
        data = chat(client, server).json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "m"
    assert data["choices"][0]["message"]["role"] == "assistant"
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}


def test_error_replies_and_raw_bodies() -> None:
    script = [
        Reply(status=429, headers={"Retry-After": "7"}, error_message="slow down"),
        Reply(body="<html>gateway</html>", status=502, headers={"Content-Type": "text/html"}),
        Reply(body={"custom": True}),
        Reply(content=None, finish_reason="length"),
    ]
    with OpenAICompatServer(script) as server, httpx.Client() as client:
        limited = chat(client, server)
        gateway = chat(client, server)
        custom = chat(client, server)
        null = chat(client, server)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.json()["error"] == {
        "message": "slow down",
        "type": "rate_limit_exceeded",
        "param": None,
        "code": None,
    }
    assert (gateway.status_code, gateway.text) == (502, "<html>gateway</html>")
    assert gateway.headers["content-type"] == "text/html"
    assert custom.json() == {"custom": True}
    assert content(null) is None
    assert null.json()["choices"][0]["finish_reason"] == "length"


def test_responder_computes_replies_from_the_request() -> None:
    def shout(request: RecordedRequest) -> str | Reply:
        last_message = str(request.messages[-1]["content"])
        if last_message == "fail":
            return Reply(status=503)
        if last_message == "crash":
            raise ValueError("responder bug")
        return last_message.upper()

    def say(text: str) -> dict[str, Any]:
        return {"model": "m", "messages": [{"role": "user", "content": text}]}

    with OpenAICompatServer(shout) as server, httpx.Client() as client:
        assert content(chat(client, server, say("hi"))) == "HI"
        assert chat(client, server, say("fail")).status_code == 503
        crashed = chat(client, server, say("crash"))
    assert crashed.status_code == 500
    assert "responder bug" in crashed.json()["error"]["message"]
    assert [type(e) for e in server.errors] == [ValueError]


def test_requests_are_recorded() -> None:
    with OpenAICompatServer(default="ok") as server, httpx.Client() as client:
        client.post(
            f"http://127.0.0.1:{server.port}/chat/completions",
            json=HELLO,
            headers={"X-Custom": "Yes", "Authorization": "Bearer sk-test"},
        )
        chat(client, server)
    first, second = server.requests
    assert first.method == "POST"
    assert first.path == "/chat/completions"
    assert second.path == "/v1/chat/completions"
    assert first.headers["x-custom"] == "Yes"
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.json == HELLO
    assert first.messages == HELLO["messages"]
    # one keep-alive connection carried both
    assert first.connection == second.connection == 1
    assert server.connections_opened == 1


def test_bad_requests_are_refused() -> None:
    with OpenAICompatServer(["unused"]) as server, httpx.Client() as client:
        wrong_path = client.post(f"{server.base_url}/completions", json=HELLO)
        not_json = client.post(f"{server.base_url}/chat/completions", content=b"{nope")
        no_messages = client.post(f"{server.base_url}/chat/completions", json={"model": "m"})
        get = client.get(f"{server.base_url}/chat/completions")
    assert [r.status_code for r in (wrong_path, not_json, no_messages, get)] == [404, 400, 400, 404]
    assert server.remaining == 1  # none of them used a scripted reply


def test_stop_is_idempotent_and_start_is_once() -> None:
    server = OpenAICompatServer()
    server.stop()  # before start: harmless
    server = OpenAICompatServer().start()
    assert server.running
    server.stop()
    server.stop()
    assert not server.running
    with pytest.raises(RuntimeError):
        server.start()


def test_stops_itself_after_max_lifetime() -> None:
    server = OpenAICompatServer(max_lifetime=0.2).start()
    port = server.port
    started = time.perf_counter()
    assert server.wait_stopped(timeout=5)
    assert 0.15 <= time.perf_counter() - started < 4
    assert not server.running
    with socket.socket() as sock, pytest.raises(OSError):
        sock.settimeout(1)
        sock.connect(("127.0.0.1", port))
    server.stop()  # still fine after the self-stop


def test_stop_does_not_wait_for_delayed_replies() -> None:
    server = OpenAICompatServer([Reply(content="late", delay=30)]).start()
    outcome: list[Any] = []

    def call() -> None:
        try:
            with httpx.Client(timeout=10) as client:
                outcome.append(chat(client, server))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.005)
    started = time.perf_counter()
    server.stop()
    thread.join(timeout=5)
    assert time.perf_counter() - started < 4
    assert not thread.is_alive()
    assert len(outcome) == 1


def test_drives_the_real_lm() -> None:
    script: list[str | Reply] = [Reply(status=429, headers={"Retry-After": "0"}), "Paris."]
    with (
        OpenAICompatServer(script) as server,
        LM("openai/test", base_url=server.base_url, api_key="sk-test", cache=False) as lm,
    ):
        answer = lm.complete(LMRequest(({"role": "user", "content": "Capital of France?"},)))
    assert answer.text == "Paris."
    assert len(server.requests) == 2


# -- wire-format checks ------------------------------------------------------------------------


def with_messages(*messages: Any, **params: Any) -> dict[str, Any]:
    return {"model": "m", "messages": list(messages), **params}


USER = {"role": "user", "content": "hello there"}
PNG = "data:image/png;base64,iVBORw0KGgo="


def test_a_rich_valid_request_has_no_violations() -> None:
    body = with_messages(
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "No prose."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in"},
                {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "assistant", "content": "A cat."},
        USER,
        temperature=0.3,
        top_p=1,
        max_tokens=20,
        stop=["\\n\\n", "END"],
        seed=4,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
        },
        stream=False,
        vendor_extension=True,  # accepted unless strict
    )
    with OpenAICompatServer(["ok"]) as server, httpx.Client() as client:
        response = chat(client, server, body)
    assert response.status_code == 200
    assert server.violations == []
    [request] = server.requests
    assert request.texts == ("Be brief.", "No prose.", "What is in", "42", "A cat.", "hello there")
    assert request.last_text == "hello there"
    assert request.model == "m" and not request.stream and request.number == 1


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"messages": [USER]}, "model: required"),
        (with_messages(USER, model=""), "model: must not be empty"),
        ({"model": "m"}, "messages: required"),
        (with_messages(), "messages: must hold at least one message"),
        (with_messages({"content": "x"}), "messages[0].role: required"),
        (with_messages({"role": "bot", "content": "x"}), "messages[0].role: 'bot' is not one of"),
        (with_messages({"role": "user"}), "messages[0].content: required"),
        (with_messages({"role": "user", "content": 3}), "messages[0].content: expected a string"),
        (with_messages({"role": "user", "content": []}), "must not be empty"),
        (with_messages({"role": "user", "content": "x", "extra": 1}), "unexpected key 'extra'"),
        (
            with_messages({"role": "system", "content": [{"type": "image_url", "image_url": {}}]}),
            "messages[0].content[0].type: 'image_url' is not allowed here",
        ),
        (
            with_messages({"role": "user", "content": [{"type": "text"}]}),
            "messages[0].content[0].text: required",
        ),
        (
            with_messages(
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x.png"}}]}
            ),
            "expected an http(s) URL or a data:image/ URI",
        ),
        (
            with_messages(
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": "https://example.com/a.jpg"}],
                }
            ),
            "messages[0].content[0].image_url: required (an object)",
        ),
        (with_messages({"role": "tool", "content": "x"}), "tool_call_id: required"),
        (with_messages(USER, temperature=2.5), "temperature: 2.5 is above the maximum 2"),
        (with_messages(USER, temperature="hot"), "temperature: expected a number, got a string"),
        (with_messages(USER, max_tokens=0), "max_tokens: 0 is below the minimum 1"),
        (with_messages(USER, max_tokens=True), "max_tokens: expected an integer, got a boolean"),
        (with_messages(USER, stop=["a", "b", "c", "d", "e"]), "stop: at most 4 sequences"),
        (with_messages(USER, stream="yes"), "stream: expected a boolean"),
        (
            with_messages(USER, stream_options={"include_usage": True}),
            "stream_options: only allowed when stream is true",
        ),
        (with_messages(USER, response_format={"type": "xml"}), "response_format.type: 'xml'"),
        (
            with_messages(USER, response_format={"type": "json_schema", "json_schema": {}}),
            "response_format.json_schema.name: required",
        ),
        (with_messages(USER, top_logprobs=2), "top_logprobs: requires logprobs"),
    ],
)
def test_wire_format_violations_are_recorded_and_answered_with_400(
    body: dict[str, Any], problem: str
) -> None:
    with OpenAICompatServer(["unused"]) as server, httpx.Client() as client:
        response = chat(client, server, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert problem in error["message"]
    assert any(problem in violation for violation in server.violations)
    assert server.violations[0].startswith("request 1 (POST /v1/chat/completions): ")
    assert server.requests[0].violations
    assert server.remaining == 1  # a refused request uses no script item


def test_content_type_and_wrong_routes_are_violations() -> None:
    with OpenAICompatServer(["unused"]) as server, httpx.Client() as client:
        plain = client.post(
            f"{server.base_url}/chat/completions",
            content=b'{"model": "m", "messages": []}',
            headers={"Content-Type": "text/plain"},
        )
        missing = client.post(f"{server.base_url}/completions", json=HELLO)
    assert (plain.status_code, missing.status_code) == (400, 404)
    assert missing.json()["error"]["message"] == "no route for POST /v1/completions"
    assert server.violations == [
        "request 1 (POST /v1/chat/completions): content-type: expected application/json, "
        "got 'text/plain'",
        "request 1 (POST /v1/chat/completions): messages: must hold at least one message",
        "request 2 (POST /v1/completions): no route for POST /v1/completions",
    ]
    assert server.stats().violations == 2


def test_strict_mode_refuses_unknown_parameters() -> None:
    body = with_messages(USER, top_k=5)
    with OpenAICompatServer(default="ok", strict=True) as server, httpx.Client() as client:
        strict = chat(client, server, body)
    with OpenAICompatServer(default="ok") as lenient, httpx.Client() as client:
        accepted = chat(client, lenient, body)
    assert strict.status_code == 400
    assert server.violations == [
        "request 1 (POST /v1/chat/completions): top_k: unrecognized request argument"
    ]
    assert accepted.status_code == 200 and lenient.violations == []


def test_api_key_is_checked_only_when_given() -> None:
    with OpenAICompatServer(default="ok", api_key="sk-right") as server, httpx.Client() as client:
        right = chat_with(client, server, {"Authorization": "Bearer sk-right"})
        wrong = chat_with(client, server, {"Authorization": "Bearer sk-wrong"})
        none = chat_with(client, server, {})
        malformed = chat_with(client, server, {"Authorization": "sk-right"})
    assert [r.status_code for r in (right, wrong, none, malformed)] == [200, 401, 401, 401]
    assert wrong.json()["error"]["type"] == "authentication_error"
    # a wrong or missing key is a refusal, not a wire-format violation; a malformed header is
    assert server.violations == [
        "request 4 (POST /v1/chat/completions): authorization: expected 'Bearer <API key>'"
    ]


def chat_with(
    client: httpx.Client, server: OpenAICompatServer, headers: dict[str, str]
) -> httpx.Response:
    return client.post(f"{server.base_url}/chat/completions", json=HELLO, headers=headers)


def test_chunked_request_bodies_are_read() -> None:
    import json

    def pieces() -> Any:
        data = json.dumps(HELLO).encode()
        yield data[:10]
        yield data[10:]

    with OpenAICompatServer(["ok"]) as server, httpx.Client() as client:
        response = client.post(
            f"{server.base_url}/chat/completions",
            content=pieces(),
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 200
    assert server.requests[0].headers["transfer-encoding"] == "chunked"
    assert server.requests[0].json == HELLO


# -- streaming ----------------------------------------------------------------------------------

STREAM = {**HELLO, "stream": True}


def stream_events(
    client: httpx.Client, server: OpenAICompatServer, body: dict[str, Any] | None = None
) -> tuple[httpx.Response, list[str]]:
    """POST a streaming request; the response and the data of every event."""
    with httpx_sse.connect_sse(
        client, "POST", f"{server.base_url}/chat/completions", json=body or STREAM
    ) as source:
        return source.response, [event.data for event in source.iter_sse()]


def test_stream_sends_role_deltas_finish_usage_and_done() -> None:
    import json

    body = {**STREAM, "stream_options": {"include_usage": True}}
    with (
        OpenAICompatServer([Reply("Paris is lovely", chunk_size=6)]) as server,
        httpx.Client() as client,
    ):
        response, data = stream_events(client, server, body)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    deltas = [chunk["choices"][0]["delta"]["content"] for chunk in chunks[1:-2]]
    assert deltas == ["Paris ", "is lov", "ely"]
    assert chunks[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert [chunk["usage"] for chunk in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert server.requests[0].stream and server.stats().streams == 1
    assert server.violations == []


def test_stream_without_usage_and_with_explicit_chunks_or_words() -> None:
    import json

    script: list[str | Reply] = [
        Reply(chunks=["Hel", "lo", "!"], finish_reason="length"),
        "one two  three",
    ]
    with OpenAICompatServer(script) as server, httpx.Client() as client:
        _, explicit = stream_events(client, server)
        _, words = stream_events(client, server)
    chunks = [json.loads(item) for item in explicit[:-1]]
    assert all("usage" not in chunk for chunk in chunks)
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]] == ["Hel", "lo", "!"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    word_deltas = [json.loads(item)["choices"][0]["delta"] for item in words[1:-2]]
    assert [delta["content"] for delta in word_deltas] == ["one ", "two  ", "three"]


def test_reply_pieces_and_their_checks() -> None:
    assert Reply(chunks=["a", "b"]).content == "ab"
    assert Reply(" lead and trail ").pieces() == [" lead ", "and ", "trail "]
    assert Reply("abcdefg", chunk_size=3).pieces() == ["abc", "def", "g"]
    assert Reply(None).pieces() == []
    assert Reply(chunk_delay=[0.5]).delay_before(0) == 0.5
    assert Reply(chunk_delay=[0.5]).delay_before(3) == 0.0
    with pytest.raises(ValueError, match="content differs"):
        Reply("abc", chunks=["a", "b"])
    with pytest.raises(ValueError, match="chunk_size"):
        Reply(chunk_size=0)
    with pytest.raises(ValueError, match="break_after"):
        Reply(break_after=-1)


def test_break_after_drops_the_connection_mid_stream() -> None:
    received: list[str] = []
    script: list[str | Reply] = [Reply("a b c d", break_after=2), "next"]
    with OpenAICompatServer(script) as server, httpx.Client() as client:
        with (
            pytest.raises(httpx.RemoteProtocolError),
            httpx_sse.connect_sse(
                client, "POST", f"{server.base_url}/chat/completions", json=STREAM
            ) as source,
        ):
            received.extend(event.data for event in source.iter_sse())
        assert content(chat(client, server)) == "next"  # the server goes on serving
    assert len(received) == 3  # the role chunk and two pieces; no finish, no [DONE]
    assert '"a "' in received[1] and '"b "' in received[2]
    assert server.connections_opened == 2  # the broken connection was not reused


def test_stream_error_event_and_garbage_end_the_stream() -> None:
    import json

    script: list[str | Reply] = [
        Reply("a b c", break_after=1, stream_error="the model is overloaded"),
        Reply("a b", stream_garbage="data: {not json\n\n"),
        "fine",
    ]
    with OpenAICompatServer(script) as server, httpx.Client() as client:
        _, failed = stream_events(client, server)
        _, garbage = stream_events(client, server)
        _, fine = stream_events(client, server)
    assert json.loads(failed[-1]) == {
        "error": {
            "message": "the model is overloaded",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    assert len(failed) == 3  # role, one piece, the error: no finish, no [DONE]
    assert garbage[-1] == "{not json" and len(garbage) == 4
    assert fine[-1] == "[DONE]"
    assert server.connections_opened == 1  # ended properly: the connection is reused


def test_stalled_stream_trips_the_client_read_timeout() -> None:
    received: list[str] = []
    with (
        OpenAICompatServer([Reply("a b c", chunk_delay=[0, 0, 30])]) as server,
        httpx.Client(timeout=httpx.Timeout(5.0, read=1.0)) as client,
        pytest.raises(httpx.ReadTimeout),
        httpx_sse.connect_sse(
            client, "POST", f"{server.base_url}/chat/completions", json=STREAM
        ) as source,
    ):
        received.extend(event.data for event in source.iter_sse())
    assert len(received) == 3  # the role chunk and the two pieces before the stall


def test_errors_before_a_stream_are_plain_json() -> None:
    script = [Reply(status=429, retry_after=3, error_message="slow down")]
    with OpenAICompatServer(script) as server, httpx.Client() as client:
        response = client.post(f"{server.base_url}/chat/completions", json=STREAM)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["message"] == "slow down"


# -- what every server shares -----------------------------------------------------------------

SERVERS: list[Callable[..., ScriptedServer]] = [OpenAICompatServer, AnthropicServer, GeminiServer]


@pytest.mark.parametrize("server_class", SERVERS)
def test_every_server_binds_loopback_and_stops_after_max_lifetime(
    server_class: Callable[..., ScriptedServer],
) -> None:
    server = server_class(max_lifetime=0.2).start()
    host, port = server.address
    assert host == "127.0.0.1"
    assert server.base_url.startswith(f"http://127.0.0.1:{port}")
    with socket.socket() as sock:
        sock.settimeout(1)
        sock.connect(("127.0.0.1", port))  # listening on loopback
    assert server.wait_stopped(timeout=5)
    assert not server.running
    with socket.socket() as sock, pytest.raises(OSError):
        sock.settimeout(1)
        sock.connect(("127.0.0.1", port))


def test_stats_count_requests_streams_and_cpu() -> None:
    with OpenAICompatServer(default="ok") as server, httpx.Client() as client:
        assert server.stats().cpu_per_request == 0.0
        for _ in range(3):
            chat(client, server)
        stream_events(client, server)
        chat(client, server, {"model": "m"})
    stats = server.stats()
    assert (stats.requests, stats.streams, stats.violations) == (5, 1, 1)
    assert stats.connections_opened == 1
    assert 0 < stats.cpu_seconds <= server.cpu_seconds
    assert stats.cpu_per_request == pytest.approx(stats.cpu_seconds / 5)


def test_outage_answers_every_request_then_recovers() -> None:
    with OpenAICompatServer(default="ok") as server, httpx.Client() as client:
        assert not server.is_down
        with server.outage():
            assert server.is_down
            down = [chat(client, server) for _ in range(2)]
        up = chat(client, server)
        server.take_down(reply=Reply(status=500, error_message="boom"))
        custom = chat(client, server)
        server.bring_up()
    assert [r.status_code for r in down] == [503, 503]
    assert "down" in down[0].json()["error"]["message"]
    assert content(up) == "ok"
    assert custom.json()["error"]["message"] == "boom"
    assert len(server.requests) == 4  # outage requests are recorded too
    assert server.stats().outage_answers == 3


def test_refusing_outage_closes_the_port_and_reopens_it() -> None:
    with OpenAICompatServer(default="ok") as server, httpx.Client() as client:
        port = server.port
        assert content(chat(client, server)) == "ok"
        server.take_down(refuse=True)
        with pytest.raises(httpx.ConnectError):
            chat(client, server)
        server.bring_up()
        assert server.port == port
        assert content(chat(client, server)) == "ok"
        # from refusing straight to answering with errors, and back
        server.take_down(refuse=True)
        server.take_down()
        assert chat(client, server).status_code == 503
        server.bring_up()
    assert len(server.requests) == 3
    with pytest.raises(RuntimeError):
        server.take_down()  # stopped


def test_stop_while_refusing_connections() -> None:
    server = OpenAICompatServer().start()
    server.take_down(refuse=True)
    server.stop()
    assert server.wait_stopped(timeout=1) and not server.running
    with pytest.raises(RuntimeError):
        server.bring_up()


def test_add_replies_extends_the_script() -> None:
    with OpenAICompatServer(["a"]) as server, httpx.Client() as client:
        server.add_replies("b", Reply("c"))
        assert [content(chat(client, server)) for _ in range(3)] == ["a", "b", "c"]
        assert server.remaining == 0


# -- ScriptedLM ------------------------------------------------------------------------------

REQUEST = LMRequest(({"role": "user", "content": "12345678"},))


def test_scripted_lm_answers_in_order_and_records() -> None:
    lm = ScriptedLM(["first", "second"])
    assert [lm.complete(REQUEST).text for _ in range(2)] == ["first", "second"]
    assert lm.calls == 2 and lm.requests == [REQUEST, REQUEST]
    with pytest.raises(ScriptExhaustedError, match="ran out of replies at request 3"):
        lm.complete(REQUEST)


def test_scripted_lm_keeps_only_the_last_requests_when_asked_but_counts_all() -> None:
    lm = ScriptedLM(default="ok", keep_requests=2)
    for text in [f"q{i}" for i in range(5)]:
        lm.complete(LMRequest(({"role": "user", "content": text},)))
    assert lm.calls == 5
    assert [request.messages[0]["content"] for request in lm.requests] == ["q3", "q4"]
    with pytest.raises(ValueError, match="keep_requests must be at least 1"):
        ScriptedLM(keep_requests=0)


def test_scripted_lm_usage_history_and_no_cache() -> None:
    lm = ScriptedLM(["abcd", "abcd"])
    first = lm.complete(REQUEST)
    second = lm.complete(REQUEST)  # no caching by default: a fresh answer
    assert first.usage == Usage(prompt_tokens=2, completion_tokens=1)
    assert not second.cached
    assert lm.usage == Usage(4, 2)
    assert [entry.model for entry in last(5)] == ["scripted", "scripted"]


def test_scripted_lm_items_responder_default_and_async() -> None:
    ready = Completion("ready", Usage(1, 1), model="x")
    lm = ScriptedLM([ready, RateLimitError("scripted 429", status=429)], default="fallback")
    answered = lm.complete(REQUEST)
    assert answered == dataclasses.replace(ready, call_id=answered.call_id)  # as scripted, numbered
    with pytest.raises(RateLimitError):
        lm.complete(REQUEST)
    assert asyncio.run(lm.acomplete(REQUEST)).text == "fallback"
    lm.add_replies("more")
    assert lm.complete(REQUEST).text == "more"

    echo = ScriptedLM(lambda request: request.messages[-1]["content"][::-1])
    assert echo.complete(REQUEST).text == "87654321"


def test_scripted_lm_can_use_a_cache() -> None:
    lm = ScriptedLM(["only once"], cache=True)
    lm.complete(REQUEST)
    assert lm.complete(REQUEST).cached
    assert lm.calls == 1
