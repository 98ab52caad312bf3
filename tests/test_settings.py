"""Process-wide settings and scoped overrides, across threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from sigforge.runtime.cache import Cache
from sigforge.runtime.errors import ConfigurationError
from sigforge.runtime.settings import (
    configure,
    context,
    current_adapter,
    current_cache,
    current_lm,
)
from sigforge.testing import ScriptedLM

LM_A = ScriptedLM(model="a")
LM_B = ScriptedLM(model="b")
LM_C = ScriptedLM(model="c")


def in_new_thread(function: Any) -> Any:
    """Run ``function`` in a fresh thread and return its result."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(function()))
    thread.start()
    thread.join(timeout=5)
    return result[0]


def test_current_lm_without_configuration_explains_what_to_do() -> None:
    with pytest.raises(ConfigurationError, match=r"No language model is configured.*configure\("):
        current_lm()


def test_configure_changes_only_the_given_settings() -> None:
    adapter = object()
    configure(lm=LM_A)
    configure(adapter=adapter)
    assert current_lm() is LM_A
    assert current_adapter() is adapter
    configure(lm=LM_B)
    assert current_adapter() is adapter
    configure(lm=None)
    with pytest.raises(ConfigurationError):
        current_lm()


def test_configure_checks_types() -> None:
    with pytest.raises(TypeError, match="lm must be a BaseLM"):
        configure(lm="openai/gpt-4o-mini")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"cache must be a CompletionCache \(Cache, RedisCache\)"):
        configure(cache="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError), context(lm=42):  # type: ignore[arg-type]
        pass


def test_context_overrides_nest_and_restore() -> None:
    configure(lm=LM_A)
    assert current_adapter() is None
    with context(lm=LM_B, adapter="json"):
        assert current_lm() is LM_B
        with context(lm=LM_C):
            assert current_lm() is LM_C
            assert current_adapter() == "json"  # inherited from the outer block
        assert current_lm() is LM_B
    assert current_lm() is LM_A
    assert current_adapter() is None


def test_context_restores_after_an_exception() -> None:
    configure(lm=LM_A)
    with pytest.raises(RuntimeError), context(lm=LM_B):
        raise RuntimeError("boom")
    assert current_lm() is LM_A


def test_context_can_remove_the_lm_for_a_block() -> None:
    configure(lm=LM_A)
    with context(lm=None), pytest.raises(ConfigurationError):
        current_lm()
    assert current_lm() is LM_A


def test_configure_inside_a_context_changes_the_defaults_underneath() -> None:
    configure(lm=LM_A)
    with context(lm=LM_B):
        configure(lm=LM_C)
        assert current_lm() is LM_B  # the override still wins
    assert current_lm() is LM_C


def test_a_new_thread_sees_the_defaults_not_the_overrides() -> None:
    configure(lm=LM_A)
    with context(lm=LM_B):
        assert in_new_thread(current_lm) is LM_A
    # and the global defaults are visible to threads
    configure(lm=LM_C)
    assert in_new_thread(current_lm) is LM_C


def test_overrides_in_a_thread_do_not_leak_to_others() -> None:
    configure(lm=LM_A)
    inside = threading.Event()
    release = threading.Event()
    seen: list[Any] = []

    def worker() -> None:
        with context(lm=LM_B):
            seen.append(current_lm())
            inside.set()
            release.wait(timeout=5)

    thread = threading.Thread(target=worker)
    thread.start()
    assert inside.wait(timeout=5)
    try:
        assert current_lm() is LM_A  # while the worker's override is active
    finally:
        release.set()
        thread.join(timeout=5)
    assert seen == [LM_B]


def test_asyncio_tasks_inherit_at_creation_and_do_not_leak() -> None:
    configure(lm=LM_A)

    async def main() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        first_inside = asyncio.Event()
        second_checked = asyncio.Event()

        async def first() -> None:
            with context(lm=LM_C):
                first_inside.set()
                await second_checked.wait()  # keep the override active meanwhile
                seen["first"] = current_lm()

        async def second() -> None:
            await first_inside.wait()
            seen["second"] = current_lm()  # must not see first()'s override
            second_checked.set()

        with context(lm=LM_B):
            # created inside the block: both start from LM_B
            tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
        await asyncio.gather(*tasks)
        seen["parent"] = current_lm()
        return seen

    assert asyncio.run(main()) == {"first": LM_C, "second": LM_B, "parent": LM_A}


def test_cache_setting(cache_dir: Path, tmp_path: Path) -> None:
    default = current_cache()
    assert isinstance(default, Cache)
    assert default.path == cache_dir / "cache.sqlite"
    assert current_cache() is default  # one shared default cache

    mine = Cache(tmp_path / "mine.sqlite")
    with context(cache=mine):
        assert current_cache() is mine
        with context(cache=False):
            assert current_cache() is None
    configure(cache=False)
    assert current_cache() is None
    with context(cache=True):
        assert current_cache() is default
    configure(cache=True)
    assert current_cache() is default


def test_default_cache_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before = current_cache()
    monkeypatch.setenv("SIGFORGE_CACHE_DIR", str(tmp_path / "elsewhere"))
    after = current_cache()
    assert after is not before
    assert after is not None and after.path == tmp_path / "elsewhere" / "cache.sqlite"


def test_concurrent_configure_and_reads_are_consistent() -> None:
    errors: list[BaseException] = []

    def flip(lm: ScriptedLM) -> None:
        try:
            for _ in range(200):
                configure(lm=lm)
                assert current_lm() in (LM_A, LM_B)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=flip, args=(lm,)) for lm in (LM_A, LM_B)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == []
