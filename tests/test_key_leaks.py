"""A planted API key must never appear anywhere sigforge writes or shows.

One key is planted in each provider's LM (and in the environment). The test then drives
successes, cache hits, streams, every kind of failure (including a server that echoes
the key back in its error body), batches and saved state, with every logger at DEBUG,
and greps everything that could carry the key: logs, history (objects and the
printed form), the SQLite cache file (with its WAL), saved predictor state, exception
messages, bodies and tracebacks, reprs and cache identities, and a pickled LM whose key
came from the environment (a key passed as ``api_key=`` is pickled, as documented).
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import traceback
from pathlib import Path

import pytest

from generated.qa import AnswerQuestionInputs, QuickAnswer
from sigforge.runtime import LM, Cache, LMRequest, SigforgeError, context, history
from sigforge.runtime.history import inspect_history, last
from sigforge.testing import (
    AnthropicServer,
    GeminiServer,
    OpenAICompatServer,
    RecordedRequest,
    Reply,
)
from sigforge.testing._core import ScriptedServer

KEY = "sk-PLANTED-7f3a9c-do-not-leak"
ENV_KEY = "sk-PLANTED-env-b41d-do-not-leak"
CHAT = "[[ ## answer ## ]]\nParis\n\n[[ ## confidence ## ]]\n0.9\n\n[[ ## completed ## ]]"

SERVERS: list[tuple[str, type[ScriptedServer], str]] = [
    ("openai", OpenAICompatServer, "OPENAI_API_KEY"),
    ("anthropic", AnthropicServer, "ANTHROPIC_API_KEY"),
    ("gemini", GeminiServer, "GEMINI_API_KEY"),
]


def echoing(request: RecordedRequest) -> str | Reply:
    """The scripted answer for this request; errors echo back the key the request sent,
    as careless servers and proxies do."""
    sent = " ".join(request.headers.values())
    echo = f"invalid key in: {sent}"
    script: list[str | Reply] = [
        CHAT,  # a success, then served again from the cache
        Reply(chunks=["Par", "is"]),  # a stream
        Reply(status=401, error_message=echo),
        Reply(status=500, error_message=echo),
        Reply(status=429, error_message=echo, retry_after=0),
        Reply(status=400, error_message=echo),
        Reply(body=f"<html>{sent}</html>"),  # not a completion: BadResponseError
        Reply(chunks=["a", "b"], break_after=1),  # a broken stream
    ]
    return script[request.number - 1] if request.number <= len(script) else CHAT


@pytest.mark.parametrize(("provider", "server_cls", "env"), SERVERS, ids=[s[0] for s in SERVERS])
def test_the_key_appears_nowhere(
    provider: str,
    server_cls: type[ScriptedServer],
    env: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(env, ENV_KEY)
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    cache_path = tmp_path / "cache.sqlite"
    texts: list[str] = []
    errors: list[BaseException] = []
    with server_cls(echoing) as server:
        cache = Cache(cache_path)
        lms = [
            LM(
                f"{provider}/model",
                base_url=server.base_url,
                api_key=KEY,
                cache=cache,
                max_retries=0,
            ),
            LM(f"{provider}/model", base_url=server.base_url, cache=cache, max_retries=0),
        ]
        explicit, from_env = lms
        predictor = QuickAnswer(lm=explicit)
        inputs = AnswerQuestionInputs(context=["Paris is in France."], question="Capital?")
        texts.append(repr(predictor(context=inputs.context, question=inputs.question)))
        texts.append(repr(predictor.run(inputs)))  # a cache hit
        with context(lm=explicit):
            texts.extend(
                repr(event)
                for event in explicit.stream(LMRequest(({"role": "user", "content": "x"},)))
            )
        for _ in range(5):
            try:
                from_env.complete(LMRequest(({"role": "user", "content": "fail"},)))
            except SigforgeError as error:
                errors.append(error)
        try:
            list(explicit.stream(LMRequest(({"role": "user", "content": "broken"},))))
        except SigforgeError as error:
            errors.append(error)
        assert server.requests[0].headers  # the key was really sent...
        sent = " ".join(" ".join(r.headers.values()) for r in server.requests)
        assert KEY in sent and ENV_KEY in sent
        predictor.save(tmp_path / "state.json")
        (tmp_path / "lm.pickle").write_bytes(pickle.dumps(from_env.copy(cache=False)))
        texts.append(repr(asyncio.run(predictor.abatch([inputs]))))
        for lm in lms:
            texts += [
                repr(lm),
                str(lm.cache_identity()),
                str(lm.__dict__.get("_init_kwargs", {}).keys()),
            ]
        cache.close()

    assert len(errors) == 6
    for error in errors:
        texts += [str(error), repr(error), getattr(error, "body", "")]
        texts.append("".join(traceback.format_exception(error)))
    inspect_history(50)
    texts.append(capsys.readouterr().out)
    texts += [repr(entry) for entry in last(50)]
    texts.append(caplog.text)
    texts += [record.getMessage() for record in caplog.records]
    files = [p for p in tmp_path.iterdir() if p.is_file()]
    assert cache_path in files and {tmp_path / "state.json", tmp_path / "lm.pickle"} <= set(files)
    blob = "\n".join(texts).encode() + b"".join(p.read_bytes() for p in files)
    for key in (KEY, ENV_KEY):
        assert key.encode() not in blob, f"{key} leaked"
    assert b"<redacted>" in blob  # the echoed key was seen, and blotted out
    assert history.last(1)  # history was recorded at all
