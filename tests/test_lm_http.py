"""LM against a real HTTP server on 127.0.0.1: request shape, retries, errors, async, usage."""

from __future__ import annotations

import asyncio
import email.utils
import gc
import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sigforge.runtime.errors import (
    AuthenticationError,
    BadRequestError,
    BadResponseError,
    ConfigurationError,
    LMConnectionError,
    LMError,
    LMTimeoutError,
    RateLimitError,
    ServerError,
)
from sigforge.runtime.history import inspect_history, last
from sigforge.runtime.lm import LM, FallbackLM, Timeout
from sigforge.runtime.messages import Completion, LMRequest, Message, Usage
from sigforge.testing import OpenAICompatServer, RecordedRequest, Reply

PLANTED_KEY = "sk-PLANTED-123"


def ask(text: str = "What is the capital of France?", **params: Any) -> LMRequest:
    messages: tuple[Message, ...] = (
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": text},
    )
    return LMRequest(messages, params)


_opened: list[LM] = []


@pytest.fixture(autouse=True)
def _close_lms() -> Iterator[None]:
    """Close the connections of every LM a test made."""
    yield
    while _opened:
        _opened.pop().close()


def track(lm: LM) -> LM:
    _opened.append(lm)
    return lm


def make_lm(server: OpenAICompatServer, **kwargs: Any) -> LM:
    """An LM for ``server`` with tiny backoff so retries cost no noticeable time."""
    options: dict[str, Any] = {
        "base_url": server.base_url,
        "api_key": "sk-test",
        "cache": False,
        "backoff_base": 0.001,
        "backoff_max": 0.005,
    }
    options.update(kwargs)
    return track(LM("openai/test-model", **options))


def run_async(lm: LM, request: LMRequest) -> Completion:
    """``lm.acomplete(request)`` in a fresh event loop, closing the loop's client after."""

    async def main() -> Completion:
        try:
            return await lm.acomplete(request)
        finally:
            await lm.aclose()

    return asyncio.run(main())


# -- the successful path -----------------------------------------------------------------


def test_request_shape_and_parsed_completion() -> None:
    with OpenAICompatServer(["Paris is the capital."]) as server:
        lm = make_lm(server, temperature=0.2, max_tokens=50, top_p=0.9, seed=None)
        completion = lm.complete(ask())

    assert completion.text == "Paris is the capital."
    assert completion.model == "test-model"
    assert completion.finish_reason == "stop"
    assert not completion.cached
    # the server counts words: 2 + 6 prompt words, 4 completion words
    assert completion.usage == Usage(prompt_tokens=8, completion_tokens=4)

    [request] = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.json == {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        "temperature": 0.2,
        "max_tokens": 50,
        "top_p": 0.9,
    }
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("sigforge/")


def test_request_params_override_sampling_params() -> None:
    with OpenAICompatServer(["{}"]) as server:
        lm = make_lm(server, temperature=0.2)
        lm.complete(ask(temperature=0.9, response_format={"type": "json_object"}))
    body = server.requests[0].json
    assert body["temperature"] == 0.9
    assert body["response_format"] == {"type": "json_object"}


def test_no_authorization_header_without_a_key() -> None:
    with OpenAICompatServer(["ok"]) as server:
        track(LM("openai/local", base_url=server.base_url, cache=False)).complete(ask())
    assert "authorization" not in server.requests[0].headers


@pytest.mark.parametrize(
    ("model", "sends_env_key"),
    [
        # "openai/..." means: an OpenAI(-compatible) server, which gets $OPENAI_API_KEY
        ("openai/local", True),
        # a bare name at a custom base_url must not receive the user's OpenAI key
        ("local", False),
    ],
)
def test_environment_key(monkeypatch: pytest.MonkeyPatch, model: str, sends_env_key: bool) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    with OpenAICompatServer(["ok"]) as server:
        lm = track(LM(model, base_url=server.base_url, cache=False))
        lm.complete(ask())
    headers = server.requests[0].headers
    if sends_env_key:
        assert headers["authorization"] == "Bearer sk-from-env"
    else:
        assert "authorization" not in headers
    assert server.requests[0].json["model"] == "local"


def test_empty_api_key_sends_no_key_even_with_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    with OpenAICompatServer(["ok"]) as server:
        track(LM("openai/local", base_url=server.base_url, api_key="", cache=False)).complete(ask())
    assert "authorization" not in server.requests[0].headers


def test_model_names_with_slashes_and_unknown_providers() -> None:
    lm = LM("openai/meta-llama/Llama-3-8B", base_url="http://127.0.0.1:9/v1")
    assert lm.model_name == "meta-llama/Llama-3-8B"
    with pytest.raises(ConfigurationError, match="unknown provider 'nosuch'"):
        LM("nosuch/claude")


def test_null_content_and_missing_usage_are_tolerated() -> None:
    body = {"choices": [{"message": {"role": "assistant", "content": None}}]}
    with OpenAICompatServer([Reply(body=body), Reply(content=None)]) as server:
        lm = make_lm(server)
        bare = lm.complete(ask())
        null = lm.complete(ask())
    assert bare.text == "" and bare.usage == Usage() and bare.finish_reason is None
    assert bare.model == "test-model"  # falls back to the name we asked for
    assert null.text == ""


def test_sync_requests_reuse_one_connection() -> None:
    with OpenAICompatServer(["a", "b", "c"]) as server:
        lm = make_lm(server)
        assert [lm.complete(ask(str(i))).text for i in range(3)] == ["a", "b", "c"]
        lm.close()
    assert server.connections_opened == 1


def test_copy_changes_settings_and_keeps_the_key() -> None:
    with OpenAICompatServer(["a"]) as server:
        hot = track(make_lm(server, temperature=0.1).copy(temperature=0.8))
        assert hot.temperature == 0.8
        hot.complete(ask())
    assert server.requests[0].json["temperature"] == 0.8
    assert server.requests[0].headers["authorization"] == "Bearer sk-test"


# -- retries -------------------------------------------------------------------------------


def test_retries_server_errors_then_succeeds() -> None:
    with OpenAICompatServer([Reply(status=500), Reply(status=502), "finally"]) as server:
        completion = make_lm(server).complete(ask())
    assert completion.text == "finally"
    assert len(server.requests) == 3


@pytest.mark.parametrize("header", ["Retry-After", "retry-after-ms"])
def test_retry_after_zero_is_obeyed_instead_of_backoff(header: str) -> None:
    script: list[str | Reply] = [Reply(status=429, headers={header: "0"}), "ok"]
    with OpenAICompatServer(script) as server:
        # Backoff alone would wait up to 30 s; Retry-After: 0 means go again now.
        lm = make_lm(server, backoff_base=30.0, backoff_max=30.0)
        started = time.perf_counter()
        assert lm.complete(ask()).text == "ok"
    assert time.perf_counter() - started < 3.0
    assert len(server.requests) == 2


def test_retry_after_seconds_are_waited() -> None:
    script: list[str | Reply] = [Reply(status=503, headers={"Retry-After": "0.2"}), "ok"]
    with OpenAICompatServer(script) as server:
        lm = make_lm(server)
        started = time.perf_counter()
        assert lm.complete(ask()).text == "ok"
        waited = time.perf_counter() - started
    assert 0.2 <= waited < 3.0


def test_retry_after_http_date_is_capped() -> None:
    in_an_hour = email.utils.formatdate(time.time() + 3600, usegmt=True)
    script: list[str | Reply] = [Reply(status=429, headers={"Retry-After": in_an_hour}), "ok"]
    with OpenAICompatServer(script) as server:
        lm = make_lm(server, retry_after_max=0.1)
        started = time.perf_counter()
        assert lm.complete(ask()).text == "ok"
        waited = time.perf_counter() - started
    assert 0.1 <= waited < 5.0  # capped: the header asked for an hour


@pytest.mark.parametrize(
    ("status", "error_type"), [(500, ServerError), (503, ServerError), (429, RateLimitError)]
)
def test_exhausted_retries_raise_typed_errors(status: int, error_type: type[LMError]) -> None:
    failure = Reply(status=status, error_message="the model is overloaded")
    with OpenAICompatServer([failure] * 3) as server:
        lm = make_lm(server, max_retries=2)
        with pytest.raises(error_type) as caught:
            lm.complete(ask())
    assert caught.value.attempts == 3
    assert caught.value.status == status
    assert "the model is overloaded" in str(caught.value)
    assert "the model is overloaded" in caught.value.body
    assert len(server.requests) == 3


def test_max_retries_zero_means_one_attempt() -> None:
    script: list[str | Reply] = [Reply(status=500), "never reached"]
    with OpenAICompatServer(script) as server, pytest.raises(ServerError) as caught:
        make_lm(server, max_retries=0).complete(ask())
    assert caught.value.attempts == 1
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (401, AuthenticationError),
        (403, AuthenticationError),
        (400, BadRequestError),
        (404, BadRequestError),
        (422, BadRequestError),
    ],
)
def test_client_errors_are_not_retried(status: int, error_type: type[LMError]) -> None:
    failure = Reply(status=status, error_message="you did something wrong")
    script: list[str | Reply] = [failure, "never reached"]
    with (
        OpenAICompatServer(script) as server,
        pytest.raises(error_type, match="you did something wrong") as caught,
    ):
        make_lm(server).complete(ask())
    assert caught.value.status == status
    assert caught.value.attempts == 1
    assert len(server.requests) == 1


def test_timeouts_are_retried_then_raised() -> None:
    late = Reply(content="too late", delay=2.0)  # cut short when the server stops
    with OpenAICompatServer([late, late]) as server:
        lm = make_lm(server, timeout=0.1, max_retries=1)
        started = time.perf_counter()
        with pytest.raises(LMTimeoutError) as caught:
            lm.complete(ask())
        elapsed = time.perf_counter() - started
        assert len(server.requests) == 2
    assert caught.value.attempts == 2
    assert caught.value.status is None
    assert elapsed < 1.8  # less than one late reply: the client gave up
    assert not isinstance(caught.value, LMConnectionError)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_connection_errors_are_retried_then_raised() -> None:
    lm = track(
        LM(
            "openai/x",
            base_url=f"http://127.0.0.1:{unused_port()}/v1",
            api_key=PLANTED_KEY,
            cache=False,
            max_retries=2,
            backoff_base=0.001,
        )
    )
    with pytest.raises(LMConnectionError) as caught:
        lm.complete(ask())
    assert caught.value.attempts == 3
    assert isinstance(caught.value, LMTimeoutError)  # the documented hierarchy
    assert PLANTED_KEY not in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        "this is not JSON",
        ["a", "list"],
        {"id": "x", "object": "chat.completion"},
        {"choices": []},
        {"choices": [{"text": "legacy completion format"}]},
        {"choices": [{"message": {"role": "assistant", "content": 42}}]},
    ],
)
def test_malformed_success_bodies_raise_bad_response(
    body: str | list[Any] | dict[str, Any],
) -> None:
    script: list[str | Reply] = [Reply(body=body), Reply(body=body), "never reached"]
    with OpenAICompatServer(script) as server, pytest.raises(BadResponseError) as caught:
        make_lm(server, max_retries=1).complete(ask())
    assert caught.value.status == 200
    assert caught.value.attempts == 2  # a garbled answer may be a glitch: retried
    assert len(server.requests) == 2


def test_a_malformed_answer_is_retried() -> None:
    script: list[str | Reply] = [Reply(body="<html>502 from a proxy</html>"), "fine"]
    with OpenAICompatServer(script) as server:
        assert make_lm(server).complete(ask()).text == "fine"


# -- async ---------------------------------------------------------------------------------


def test_acomplete_retries_and_reuses_its_connection() -> None:
    script: list[str | Reply] = [Reply(status=500), "one", "two", "three"]
    with OpenAICompatServer(script) as server:
        lm = make_lm(server)

        async def main() -> list[str]:
            texts = [(await lm.acomplete(ask(str(i)))).text for i in range(3)]
            await lm.aclose()
            return texts

        assert asyncio.run(main()) == ["one", "two", "three"]
    assert len(server.requests) == 4
    # the 500 answer left its connection open for reuse: one connection for everything
    assert server.connections_opened == 1


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_acomplete_works_in_successive_event_loops() -> None:
    """A client bound to a finished event loop is not reused by the next loop.

    (The first two loops end without ``aclose()``, as careless code would; their
    connections are abandoned, hence the ResourceWarnings this test ignores.)
    """
    with OpenAICompatServer(["first", "second", "third"]) as server:
        lm = make_lm(server)
        assert asyncio.run(lm.acomplete(ask("1"))).text == "first"
        assert asyncio.run(lm.acomplete(ask("2"))).text == "second"

        async def concurrent() -> list[str]:
            async with lm:
                done = await asyncio.gather(lm.acomplete(ask("3")))
            return [c.text for c in done]

        assert asyncio.run(concurrent()) == ["third"]
        assert server.connections_opened == 3
    gc.collect()  # let the abandoned connections be collected while warnings are ignored


def test_async_errors_match_sync_errors() -> None:
    with (
        OpenAICompatServer([Reply(status=401, error_message="bad key")]) as server,
        pytest.raises(AuthenticationError, match="bad key"),
    ):
        run_async(make_lm(server), ask())
    assert len(server.requests) == 1


# -- usage, history and the API key ----------------------------------------------------------


def test_usage_accumulates_and_resets() -> None:
    with OpenAICompatServer(["one two", "three"]) as server:
        lm = make_lm(server)
        first = lm.complete(ask())
        second = run_async(lm, ask())
    assert lm.usage == first.usage + second.usage
    assert lm.usage.completion_tokens == 3
    assert lm.reset_usage() == first.usage + second.usage
    assert lm.usage == Usage()


def test_history_records_calls_readably() -> None:
    with OpenAICompatServer(["Paris."]) as server:
        make_lm(server, temperature=0.0).complete(ask())
    [entry] = last(5)
    assert entry.model == "openai/test-model"
    assert entry.messages[1] == {"role": "user", "content": "What is the capital of France?"}
    assert entry.params == {"temperature": 0.0}
    assert entry.response == "Paris."
    assert not entry.cached
    assert entry.duration > 0

    out = io.StringIO()
    assert inspect_history(1, file=out) == [entry]
    text = out.getvalue()
    for expected in ("System message:", "Answer briefly.", "User message:", "Response:", "Paris."):
        assert expected in text
    assert "Tokens: 8 prompt + 1 completion = 9" in text


def test_api_key_never_leaks(cache_dir: Path) -> None:
    def careless(request: RecordedRequest) -> str | Reply:
        # A server that repeats the key it was sent in its error message.
        if "fail" in request.json["messages"][-1]["content"]:
            auth = request.headers.get("authorization", "")
            return Reply(status=401, error_message=f"Incorrect API key provided: {auth}")
        return "Paris."

    with OpenAICompatServer(careless) as server:
        lm = track(LM("openai/test-model", base_url=server.base_url, api_key=PLANTED_KEY))
        with pytest.raises(AuthenticationError) as caught:
            lm.complete(ask("please fail"))
        lm.complete(ask("hello"))
        lm.complete(ask("hello"))  # served from the (default, on-disk) cache
        assert server.requests[0].headers["authorization"] == f"Bearer {PLANTED_KEY}"
        assert len(server.requests) == 2

    error = caught.value
    assert "<redacted>" in str(error)
    for text in (str(error), repr(error), error.body, repr(lm), repr(lm.cache_identity())):
        assert PLANTED_KEY not in text

    entries = last(10)
    assert [e.cached for e in entries] == [False, True]
    out = io.StringIO()
    inspect_history(10, file=out)
    assert PLANTED_KEY not in repr(entries)
    assert PLANTED_KEY not in out.getvalue()

    files = [path for path in cache_dir.iterdir() if path.is_file()]
    assert any(path.name == "cache.sqlite" for path in files)
    for path in files:  # the database and its WAL files
        assert PLANTED_KEY.encode() not in path.read_bytes()


# -- total timeout and fallback chains ----------------------------------------------------


def test_total_timeout_bounds_the_whole_call_across_retries() -> None:
    slow = Reply(content="late", delay=0.4)
    with OpenAICompatServer([slow, slow, slow, slow]) as server:
        lm = make_lm(server, timeout=Timeout(connect=5, read=5, total=0.3), max_retries=3)
        with pytest.raises(LMTimeoutError) as caught:
            lm.complete(ask())
        assert caught.value.attempts == 1
        assert len(server.requests) == 1  # no retry starts past the deadline


def test_total_timeout_bounds_async_calls_too() -> None:
    with OpenAICompatServer([Reply(content="late", delay=0.4)] * 3) as server:
        lm = make_lm(server, timeout=Timeout(total=0.2))
        with pytest.raises(LMTimeoutError, match="total timeout"):
            run_async(lm, ask())


def test_fallback_moves_on_after_retryable_failures_only() -> None:
    with (
        OpenAICompatServer(default=Reply(status=503)) as down,
        OpenAICompatServer(["from the backup", Reply(status=400)]) as backup,
    ):
        chain = LM.fallback(make_lm(down, max_retries=1), make_lm(backup, max_retries=0))
        assert isinstance(chain, FallbackLM)
        assert chain.complete(ask()).text == "from the backup"
        assert len(down.requests) == 2  # the primary's own retries ran first
        # A bad request is the caller's mistake: no point asking the next LM.
        with OpenAICompatServer([Reply(status=400, error_message="bad field")]) as picky:
            chain2 = LM.fallback(make_lm(picky), make_lm(backup))
            with pytest.raises(BadRequestError, match="bad field"):
                chain2.complete(ask())
            assert len(backup.requests) == 1
    assert "fallback(" in chain.model


def test_fallback_raises_the_last_error_when_every_lm_fails() -> None:
    with (
        OpenAICompatServer(default=Reply(status=500)) as one,
        OpenAICompatServer(default=Reply(status=429, headers={"Retry-After": "0"})) as two,
    ):
        chain = LM.fallback(make_lm(one, max_retries=0), make_lm(two, max_retries=0))
        with pytest.raises(RateLimitError):
            chain.complete(ask())
        with pytest.raises(RateLimitError):
            asyncio.run(chain.acomplete(ask()))
