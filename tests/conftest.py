"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigforge.runtime.history import clear_history
from sigforge.runtime.settings import configure


@pytest.fixture(autouse=True)
def _isolated_runtime(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Every test starts from pristine runtime settings and leaves them that way.

    The default cache lives in a fresh temporary directory (never the real user cache),
    no real OpenAI key is visible, and the call history starts empty.
    """
    monkeypatch.setenv("SIGFORGE_CACHE_DIR", str(tmp_path_factory.mktemp("sigforge-cache")))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    configure(lm=None, adapter=None, cache=True)
    clear_history()
    yield
    configure(lm=None, adapter=None, cache=True)
    clear_history()


@pytest.fixture
def cache_dir() -> Path:
    """The directory of the default cache in the running test."""
    return Path(os.environ["SIGFORGE_CACHE_DIR"])
