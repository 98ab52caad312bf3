"""The peers' isolated virtual environments, made on first use outside the repository.

The benchmarks compare sigforge with tools it must not depend on (DSPy, BAML), so each
peer lives in a venv of its own under ``~/.cache/sigforge-bench/venvs/<name>`` (made with
the interpreter running the benchmark, filled with ``pip``). Once a venv exists and holds
an acceptable version, nothing is installed again and no network is needed. The version
first installed is written to a pin file in the venv folder, so later runs keep measuring
the same release unless asked for another one.

One function, :func:`ensure_venv`, does this for every peer; a :class:`Peer` says which
distribution to measure, which versions are acceptable, what else the venv needs and
which imports must work. When a venv cannot be made (no package index, say), it returns
None after printing why, and the benchmark skips that peer.

Used by ``bench/run.py``, ``bench/codegen_scale.py`` (BAML) and
``bench/optimizer_bench.py`` (DSPy).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

VENVS = Path.home() / ".cache" / "sigforge-bench" / "venvs"
PIN_FILE = "sigforge-bench-pin.txt"


@dataclass(frozen=True)
class Peer:
    """What one peer's venv must hold."""

    #: folder name under VENVS, and how messages name the peer
    name: str
    #: the distribution whose version is measured and pinned, e.g. "dspy"
    dist: str
    #: the version specifier installed when nothing is pinned, e.g. ">=3.4,<3.5"
    specifier: str
    #: other distributions the benchmarks need in the venv
    extras: tuple[str, ...]
    #: a statement that must run in the venv, e.g. "import dspy, optuna"
    probe: str
    #: console scripts the venv must have, e.g. "baml-cli"
    scripts: tuple[str, ...] = ()

    @property
    def default_venv(self) -> Path:
        return VENVS / self.name


DSPY = Peer("dspy", "dspy", ">=3.4,<3.5", ("optuna",), "import dspy, optuna")
#: the generated python/pydantic client imports pydantic and typing_extensions
BAML = Peer("baml", "baml-py", "", ("pydantic",), "import baml_py, pydantic, typing_extensions",
            scripts=("baml-cli",))


@dataclass(frozen=True)
class Venv:
    """A ready venv: its interpreter and the peer's installed version."""

    python: Path
    version: str

    def script(self, name: str) -> Path:
        """A console script of the venv, e.g. ``baml-cli``."""
        return self.python.with_name(name)


def capture(cmd: list[str], timeout: float = 120) -> str | None:
    """The stripped stdout of a command; None if it fails, times out or cannot start."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def installed_version(python: Path, dist: str) -> str | None:
    """The version of ``dist`` in the venv of ``python``; None when absent."""
    if not python.exists():
        return None
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    return capture([str(python), "-c", code])


def _acceptable(version: str, specifier: str) -> bool:
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(specifier).contains(version, prereleases=True)


def _complete(python: Path, peer: Peer) -> bool:
    """Whether the probe runs and the console scripts exist."""
    return all(python.with_name(s).exists() for s in peer.scripts) and (
        capture([str(python), "-c", peer.probe]) is not None
    )


def ensure_venv(peer: Peer, venv: Path | None = None, version: str | None = None) -> Venv | None:
    """The peer's venv, made or completed first if needed; None (with a message) if it
    cannot be.

    ``version`` asks for an exact release; without it the pinned one is kept, or the
    newest release matching ``peer.specifier`` is installed and pinned.
    """
    folder = (venv or peer.default_venv).expanduser()
    python = folder / "bin" / "python"
    pin = folder / PIN_FILE
    wanted = version
    if wanted is None and pin.exists():
        wanted = pin.read_text(encoding="utf-8").strip().partition("==")[2] or None
    have = installed_version(python, peer.dist)
    if (
        have is not None
        and (have == wanted if wanted else _acceptable(have, peer.specifier))
        and _complete(python, peer)
    ):
        if not pin.exists():
            pin.write_text(f"{peer.dist}=={have}\n", encoding="utf-8")
        return Venv(python, have)
    requirement = f"{peer.dist}=={wanted}" if wanted else f"{peer.dist}{peer.specifier}"
    packages = [requirement, *peer.extras]
    print(f"{peer.name}: installing {' '.join(packages)} into {folder} "
          "(one time; needs the package index)", flush=True)
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True,
                           capture_output=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check",
                        "--quiet", *packages], check=True, capture_output=True, text=True,
                       timeout=900)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = exc.stderr if isinstance(exc, subprocess.CalledProcessError) else exc
        print(f"{peer.name} skipped: could not install {requirement} into {folder}: "
              f"{str(detail).strip()[-500:]}", flush=True)
        return None
    have = installed_version(python, peer.dist)
    if have is None or not _complete(python, peer):
        print(f"{peer.name} skipped: `{peer.probe}` fails or {', '.join(peer.scripts)} is "
              f"missing in {folder} after installing {requirement}", flush=True)
        return None
    pin.write_text(f"{peer.dist}=={have}\n", encoding="utf-8")
    return Venv(python, have)
