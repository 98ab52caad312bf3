"""The public API of sigforge.runtime: every exported name resolves; heavy parts load on use."""

from __future__ import annotations

import subprocess
import sys

import sigforge.runtime as runtime


def test_every_exported_name_resolves() -> None:
    missing = [name for name in runtime.__all__ if getattr(runtime, name, None) is None]
    assert missing == []
    assert sorted(set(runtime.__all__)) == sorted(runtime.__all__)


def test_importing_the_runtime_does_not_load_the_heavy_parts() -> None:
    probe = (
        "import sys, sigforge.runtime\n"
        "heavy = ['evaluate', 'optimizers', 'modules', 'retrieval', 'embeddings', 'sandbox', "
        "'module', 'metrics', 'dspy_state']\n"
        "print([m for m in heavy if f'sigforge.runtime.{m}' in sys.modules])\n"
        "sigforge.runtime.Evaluate\n"
        "print('sigforge.runtime.evaluate' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        runtime.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
