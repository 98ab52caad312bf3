"""Pickling LMs: settings travel, connections, locks, usage and environment keys do not.

An LM is pickled here after it made real calls (open blocking and async clients), then
unpickled in a fresh Python process that calls the loopback OpenAI-compatible server of
this process, blocking and async: what the server receives shows which settings and
which key travelled.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import ROOT

from sigforge.runtime.lm import LM, FallbackLM, Timeout
from sigforge.runtime.messages import LMRequest
from sigforge.runtime.resilience import breaker_for
from sigforge.testing import OpenAICompatServer, ScriptedLM

KEY = "sk-PICKLED-explicit-5c1e"
ENV_KEY = "sk-ENVIRONMENT-only-93ab"
WORKER_KEY = "sk-WORKER-environment-77d0"

#: unpickles the LM in argv[1], calls it blocking and async, prints what it saw
UNPICKLE_AND_CALL = """
import asyncio, json, pickle, sys
from sigforge.runtime.messages import LMRequest
from sigforge.runtime.resilience import breaker_for

with open(sys.argv[1], "rb") as file:
    lm = pickle.load(file)
fresh = lm._client is None and not lm._async_clients
request = LMRequest(({"role": "user", "content": "from the other process"},))
blocking = lm.complete(request)

async def main():
    try:
        return await lm.acomplete(request)
    finally:
        await lm.aclose()

concurrent = asyncio.run(main())
lm.close()
print(json.dumps({
    "type": type(lm).__name__,
    "fresh": fresh,
    "texts": [blocking.text, concurrent.text],
    "usage": lm.usage.total_tokens,
    "timeout": [lm.timeout.connect, lm.timeout.read, lm.timeout.total],
    "max_retries": lm.max_retries,
    "registry_breaker": lm.circuit_breaker is breaker_for("openai:" + lm.base_url),
    "identity": lm.cache_identity(),
}))
"""


def ask(text: str) -> LMRequest:
    return LMRequest(({"role": "user", "content": text},))


def run_elsewhere(pickled: bytes, tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    """Unpickle and call in a fresh interpreter with exactly the environment ``env`` adds
    to this one's (without any OpenAI key of ours)."""
    path = tmp_path / "lm.pickle"
    path.write_bytes(pickled)
    base = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-c", UNPICKLE_AND_CALL, str(path)],
        cwd=ROOT,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def used_and_pickled(lm: LM, text: str = "warm up") -> bytes:
    """Make a blocking and an async call asking ``text``, pickle the LM while both kinds
    of client are open, then close them."""
    assert lm.complete(ask(text)).text

    async def main() -> bytes:
        assert (await lm.acomplete(ask(text))).text
        assert lm._client is not None and lm._async_clients
        try:
            return pickle.dumps(lm)
        finally:
            await lm.aclose()

    return asyncio.run(main())


def test_a_used_lm_pickles_as_its_settings_and_calls_from_another_process(
    tmp_path: Path,
) -> None:
    with OpenAICompatServer(default="Paris is the capital.") as server:
        lm = LM(
            "openai/test-model",
            base_url=server.base_url,
            api_key=KEY,
            temperature=0.3,
            max_tokens=40,
            seed=7,
            timeout=Timeout(connect=5, read=20, total=60),
            max_retries=2,
            cache=False,
            extra_headers={"X-Team": "search"},
        )
        pickled = used_and_pickled(lm, "from the other process")
        # As documented: a key passed as api_key= is part of the pickle.
        assert KEY.encode() in pickled
        report = run_elsewhere(pickled, tmp_path, {})

    assert report == {
        "type": "LM",
        "fresh": True,  # no connections came along: they were opened on first use
        "texts": ["Paris is the capital.", "Paris is the capital."],
        "usage": report["usage"],
        "timeout": [5, 20, 60],
        "max_retries": 2,
        "registry_breaker": True,  # the process-wide breaker of the other process
        "identity": lm.cache_identity(),
    }
    # the same two calls there and here: usage started from zero, it did not come along
    assert report["usage"] == lm.usage.total_tokens > 0
    remote = server.requests[2:]
    assert len(remote) == 2 and not server.violations
    for request in remote:
        assert request.texts[-1] == "from the other process"
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert request.headers["x-team"] == "search"
        assert request.json["temperature"] == 0.3
        assert request.json["max_tokens"] == 40
        assert request.json["seed"] == 7


def test_a_key_from_the_environment_is_not_pickled_but_read_where_unpickled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    with OpenAICompatServer(default="ok") as server:
        lm = LM("openai/test-model", base_url=server.base_url, cache=False)
        pickled = used_and_pickled(lm)
        assert ENV_KEY.encode() not in pickled
        worker = run_elsewhere(pickled, tmp_path, {"OPENAI_API_KEY": WORKER_KEY})
        keyless = run_elsewhere(pickled, tmp_path, {})
        here = pickle.loads(pickled)
        here.complete(ask("here again"))
        here.close()

    assert worker["texts"] == keyless["texts"] == ["ok", "ok"]
    sent = [request.headers.get("authorization") for request in server.requests]
    assert sent == [f"Bearer {ENV_KEY}"] * 2 + [f"Bearer {WORKER_KEY}"] * 2 + [None] * 2 + [
        f"Bearer {ENV_KEY}"
    ]


def test_what_is_live_stays_behind() -> None:
    with OpenAICompatServer(default="ok") as server:
        lm = LM("openai/m", base_url=server.base_url, api_key="", cache=False)
        copy = pickle.loads(used_and_pickled(lm))
        own = LM("openai/m", base_url=server.base_url, circuit_breaker=False, cache=False)
        unbroken = pickle.loads(pickle.dumps(own))
        assert copy is not lm and copy._client is None and not copy._async_clients
        assert copy.usage.total_tokens == 0 < lm.usage.total_tokens
        assert copy.circuit_breaker is lm.circuit_breaker is breaker_for(f"openai:{server.base_url}")
        assert unbroken.circuit_breaker is None
        assert copy.complete(ask("x")).text == "ok"
        assert "authorization" not in server.requests[-1].headers  # api_key="" stays no key
        copy.close()


def test_fallback_chains_and_other_lms_pickle() -> None:
    with OpenAICompatServer(default="from the second") as server:
        down = LM("openai/m", base_url="http://127.0.0.1:9", max_retries=0, cache=False)
        chain = FallbackLM(down, LM("openai/m", base_url=server.base_url, api_key="k", cache=False))
        again = pickle.loads(pickle.dumps(chain))
        assert isinstance(again, FallbackLM) and again.on == chain.on
        assert again.complete(ask("x")).text == "from the second"
        for lm in again.lms:
            assert isinstance(lm, LM)
            lm.close()

    scripted = ScriptedLM(["first", "second"])
    assert scripted.complete(ask("1")).text == "first"
    restored = pickle.loads(pickle.dumps(scripted))  # BaseLM pickles without its lock
    assert restored.complete(ask("2")).text == "second"
    assert restored.usage.total_tokens > scripted.usage.total_tokens
