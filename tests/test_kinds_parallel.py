"""Parallel: heterogeneous (program, inputs) pairs on threads or asyncio, in order."""

from __future__ import annotations

import asyncio
import re
import threading
from types import ModuleType
from typing import Any

import pytest
from support import generate_package, import_generated

from sigforge.runtime import LMRequest, OutputParseError
from sigforge.runtime.module import Module
from sigforge.runtime.modules import Parallel
from sigforge.testing import ScriptedLM

SOURCE = '''"""Letter counting, three ways."""

signature Count {
    """Count the letters of the word."""
    in  word:  str "A word"
    out count: int "How many letters it has"
}

predictor Plain = predict(Count)
predictor Best = best_of_n(Count, n=2)
'''


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    root = tmp_path_factory.mktemp("parallel")
    (root / "src").mkdir()
    (root / "src" / "letters.sig").write_text(SOURCE, encoding="utf-8")
    generate_package(root / "src", root, "kinds_parallel")
    return import_generated("kinds_parallel", "letters")


def counter(request: LMRequest) -> str:
    """Counts the letters of the word in the prompt; a word with digits gets no answer."""
    user = str(request.messages[-1]["content"])
    word = re.search(r"\[\[ ## word ## \]\]\n(\S+)", user)
    assert word is not None
    if any(c.isdigit() for c in word.group(1)):
        return "no idea"
    return f"[[ ## count ## ]]\n{len(word.group(1))}\n\n[[ ## completed ## ]]"


class Shout(Module):
    """A user pipeline: counts the word in capitals, then reports it."""

    def __init__(self, plain: Any) -> None:
        self.plain = plain

    def forward(self, *, word: str) -> str:
        return f"{word.upper()}: {self.plain(word=word.upper()).count}"

    async def aforward(self, *, word: str) -> str:
        return f"{word.upper()}: {(await self.plain.acall(word=word.upper())).count}"


def pairs(kinds: ModuleType, lm: ScriptedLM) -> list[tuple[Any, Any]]:
    plain = kinds.Plain(lm=lm)
    best = kinds.Best(reward_fn=lambda i, o: 1.0, threshold=1.0, lm=lm)
    return [
        (plain, {"word": "kiwi"}),
        (best, kinds.CountInputs(word="banana")),
        (Shout(plain), {"word": "fig"}),
        (plain, {"word": "r2d2"}),
        (best, {"word": "pear"}),
    ]


def test_threads_keep_input_order_and_return_errors(kinds: ModuleType) -> None:
    lm = ScriptedLM(counter)
    threads: set[str] = set()
    original = lm._send

    def watched(request: LMRequest) -> Any:
        threads.add(threading.current_thread().name)
        return original(request)

    lm._send = watched  # type: ignore[method-assign]
    results = Parallel(concurrency=4).run(pairs(kinds, lm))
    assert results[0] == kinds.CountOutputs(count=4)
    assert results[1] == kinds.CountOutputs(count=6)
    assert results[2] == "FIG: 3"
    assert isinstance(results[3], OutputParseError)
    assert results[4] == kinds.CountOutputs(count=4)
    assert all(name.startswith("sigforge-batch") for name in threads)


def test_the_first_error_is_raised_when_asked(kinds: ModuleType) -> None:
    with pytest.raises(OutputParseError):
        Parallel(concurrency=1, return_exceptions=False)(pairs(kinds, ScriptedLM(counter)))


def test_asyncio_awaits_acall_of_each_program(kinds: ModuleType) -> None:
    async def main() -> list[Any]:
        return await Parallel(concurrency=3).arun(pairs(kinds, ScriptedLM(counter)))

    results = asyncio.run(main())
    assert results[:3] == [kinds.CountOutputs(count=4), kinds.CountOutputs(count=6), "FIG: 3"]
    assert isinstance(results[3], OutputParseError)
    assert results[4].count == 4


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Parallel(concurrency=0)
