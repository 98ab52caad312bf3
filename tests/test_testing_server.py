"""sigforge.testing: the scripted OpenAI-compatible server and the in-process ScriptedLM."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import httpx
import pytest

from sigforge.runtime.errors import RateLimitError
from sigforge.runtime.history import last
from sigforge.runtime.lm import LM
from sigforge.runtime.messages import Completion, LMRequest, Usage
from sigforge.testing import (
    OpenAICompatServer,
    RecordedRequest,
    Reply,
    ScriptedLM,
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


# -- ScriptedLM ------------------------------------------------------------------------------

REQUEST = LMRequest(({"role": "user", "content": "12345678"},))


def test_scripted_lm_answers_in_order_and_records() -> None:
    lm = ScriptedLM(["first", "second"])
    assert [lm.complete(REQUEST).text for _ in range(2)] == ["first", "second"]
    assert lm.calls == 2 and lm.requests == [REQUEST, REQUEST]
    with pytest.raises(ScriptExhaustedError, match="ran out of replies at request 3"):
        lm.complete(REQUEST)


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
    assert lm.complete(REQUEST) is ready
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
