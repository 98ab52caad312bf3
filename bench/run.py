"""sigforge side by side with DSPy and BAML: every workload, for every tool, in one run.

    python bench/run.py                 # the full suite (~10 minutes on 2 cores)
    python bench/run.py --quick         # fewer rounds and samples (under 3 minutes)
    python bench/run.py --only 3,4      # some workloads
    python bench/run.py --no-peers      # sigforge (and the raw baselines) alone
    python bench/run.py --max-load 1.5  # first wait until the machine is quiet
    python bench/run.py --render bench/results/<date>.json   # re-render a run's report

The peers run from isolated venvs outside the repository, made on first use
(``~/.cache/sigforge-bench/venvs/``: DSPy 3.4.x with optuna, BAML's ``baml-py`` with
pydantic; see bench/_venv.py); after that the suite needs no network. Everything talks
over 127.0.0.1 only, and every server stops itself.

How it measures. Each tool works in a long-lived process of its own, started with its
venv's interpreter (bench/_drivers.py), and times each sample inside that process; the
benchmark sends the same command to each tool in turn, round after round (A B A B ...,
after a warm-up round that is not counted), so a busy moment of this shared machine hits
all tools alike. Reported per case: the median, min and max over the rounds, and the
ratio sigforge / peer of the medians (below 1 is better for times and sizes, above 1 for
rates). Ratios from one run are the headline; absolute figures move with the machine's
load. Caches are off for everyone; histories are bounded (200 entries) where a tool lets
you bound them.

Workloads (issue #6):

1. import: fresh processes importing a generated sigforge module with its runtime
   (``generated.qa``), ``import pydantic, httpx`` (the reference), ``import dspy`` and the
   ``baml_client`` of an equivalent BAML project; and one module of a 1000-signature
   project against that project's ``baml_client``.
2. signature cost: DSPy building a signature from a string and from a class, per
   construction, against what sigforge does instead: importing the generated module
   (after its runtime) and the first use of its models, once per process.
3. per-call overhead: Predict and ChainOfThought, chat and JSON, 0 and 3 demos, a simple
   and a complex signature (8 fields, a nested class, lists, Literals), with an LM that
   answers instantly in-process (sigforge: ``ScriptedLM``; DSPy: a ``DummyLM`` subclass
   returning one fixed reply).
4. loopback HTTP: sequential, 16 threads, asyncio with 16 and 64 in flight; sigforge,
   raw httpx (and raw aiohttp for asyncio), DSPy (``openai/gpt-4o-mini``, a name in its
   price table, and an unknown name beside it) and BAML's generated client, against
   ``sigforge.testing.OpenAICompatServer`` in its own process (a fresh one per mode),
   whose CPU per request is reported per client.
5. memory: RSS growth over 10,000 sequential predictions with the in-process LM, in a
   fresh process per sample.
6. codegen: ``sigforge generate`` against ``baml-cli generate`` at 10, 100 and 1000
   signatures, full and one-file rebuilds, generated code size (bench/codegen_scale.py).
7. type checking: ``mypy --strict`` on the generated code of the 100-signature projects:
   error count, time with a cold cache and with the dependencies cached.
8. optimizers: BootstrapFewShot and MIPROv2 against DSPy's (bench/optimizer_bench.py).

Output: ``bench/results/<date>.json`` (``-2``, ``-3``, ... for later runs of the same day;
settings, machine, versions, raw samples, summaries, ratios, verdicts), a PNG chart of
the headline ratios next to it, and the report: ``bench/RESULTS.md`` for a complete run
(all workloads, with the peers, not ``--quick``), else ``<date>.md`` next to the JSON.
The chart needs matplotlib (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
# DSPy's LiteLLM would fetch its price table from the internet at import: loopback only
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import codegen_scale  # noqa: E402
from _drivers import (  # noqa: E402
    COMPLEX_MODULE,
    COMPLEX_SIG,
    SHAPES,
    SIMPLE,
    DriverProcess,
    case_name,
    chat_reply,
    json_reply,
)
from _server import ServerProcess, between  # noqa: E402
from _stats import RESULTS, new_results_path, summary  # noqa: E402
from _venv import BAML, DSPY, Venv, capture, ensure_venv  # noqa: E402

RESULTS_MD = BENCH / "RESULTS.md"
WORKLOAD_NAMES = {
    1: "import",
    2: "signature cost",
    3: "per-call overhead",
    4: "loopback HTTP",
    5: "memory",
    6: "codegen",
    7: "type checking",
    8: "optimizers",
}
PYTHON = Path(sys.executable)


@dataclass(frozen=True)
class Mode:
    """How much of each workload a run does."""

    import_rounds: int
    signature_rounds: int
    constructions: int
    call_rounds: int
    sigforge_calls: int
    dspy_calls: int
    http_rounds: int
    http_requests: int
    memory_rounds: int
    memory_predictions: int
    codegen_args: tuple[str, ...]
    mypy_signatures: int
    mypy_rounds: int
    optimizer_args: tuple[str, ...]


FULL = Mode(
    import_rounds=12, signature_rounds=9, constructions=200, call_rounds=7,
    sigforge_calls=1000, dspy_calls=100, http_rounds=5, http_requests=400,
    memory_rounds=2, memory_predictions=10_000,
    codegen_args=("--sizes", "10,100,1000", "--rounds", "3", "--import-rounds", "5"),
    mypy_signatures=100, mypy_rounds=3, optimizer_args=(),
)
QUICK = Mode(
    import_rounds=3, signature_rounds=3, constructions=50, call_rounds=3,
    sigforge_calls=300, dspy_calls=30, http_rounds=2, http_requests=150,
    memory_rounds=1, memory_predictions=10_000,
    codegen_args=("--sizes", "10,1000", "--rounds", "1", "--import-rounds", "1"),
    mypy_signatures=10, mypy_rounds=1, optimizer_args=("--quick", "--rounds", "1"),
)

CALL_CASES = [
    {"module": module, "format": fmt, "demos": demos, "signature": signature}
    for signature in ("simple", "complex")
    for module in ("predict", "cot")
    for fmt in ("chat", "json")
    for demos in (0, 3)
]

#: (mode name, driver command mode, concurrency, [(side, tool, variant)])
HTTP_MODES: list[tuple[str, str, int, list[tuple[str, str, str]]]] = [
    ("sequential", "sequential", 1, [
        ("sigforge", "sigforge", ""), ("raw httpx", "raw", ""), ("dspy", "dspy", ""),
        ("dspy (unknown name)", "dspy", "unknown-name"), ("baml", "baml", ""),
    ]),
    ("16 threads", "threads", 16, [
        ("sigforge", "sigforge", ""), ("raw httpx", "raw", ""), ("dspy", "dspy", ""),
        ("baml", "baml", ""),
    ]),
    ("asyncio, 16 in flight", "asyncio", 16, [
        ("sigforge", "sigforge", ""), ("raw httpx", "raw", ""), ("raw aiohttp", "raw", "aiohttp"),
        ("dspy", "dspy", ""), ("baml", "baml", ""),
    ]),
    ("asyncio, 64 in flight", "asyncio", 64, [
        ("sigforge", "sigforge", ""), ("raw httpx", "raw", ""), ("raw aiohttp", "raw", "aiohttp"),
        ("dspy", "dspy", ""), ("baml", "baml", ""),
    ]),
]
PEER_TOOLS = {"dspy", "baml"}

#: the BAML project equivalent to generated.qa (its client reads the server's address
#: from the environment on every call)
BAML_QA = """// Written by bench/run.py: the BAML twin of signatures/qa.sig.

client<llm> Loopback {
  provider "openai-generic"
  options {
    base_url env.SIGFORGE_BENCH_BASE_URL
    model "gpt-4o-mini"
    api_key env.SIGFORGE_BENCH_API_KEY
  }
}

generator target {
  output_type "python/pydantic"
  output_dir "../out"
  version "@VERSION@"
  default_client_mode "sync"
}

class AnswerQuestionOutput {
  answer string @description("A short factoid answer")
  confidence float @description("How sure the answer is, 0 to 1") @assert(confidence_range, {{ this >= 0.0 and this <= 1.0 }})
}

function AnswerQuestion(context: string[], question: string) -> AnswerQuestionOutput {
  client Loopback
  prompt #"
    Answer the question using only the given context.
    Be concise and accurate.

    {{ _.role("user") }}
    Context:
    {% for passage in context %}
    - {{ passage }}
    {% endfor %}
    Question: {{ question }}

    {{ ctx.output_format }}
  "#
}
"""


def bench_responder() -> tuple[Callable[[Any], str], Callable[[], dict[str, Any]]]:
    """The loopback server's answers: the chat format to prompts in it (sigforge, DSPy,
    raw), JSON to the others (BAML's prompt asks for JSON)."""
    chat, as_json = chat_reply(SIMPLE), json_reply(SIMPLE)

    def answer(request: Any) -> str:
        return chat if any("[[ ## " in text for text in request.texts) else as_json

    return answer, dict


# --------------------------------------------------------------------------- the run's state


def row(case: str, unit: str, better: str, samples: dict[str, list[float]],
        note: str = "", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One table row: per side the samples and their summary, and the ratios sigforge /
    peer of the medians."""
    values: dict[str, dict[str, Any]] = {
        side: {**summary(s), "samples": s} for side, s in samples.items() if s
    }
    ratios = {}
    ours = values.get("sigforge")
    if ours is not None and unit != "errors":
        for side, stats in values.items():
            if side != "sigforge" and stats["median"]:
                ratios[side] = ours["median"] / stats["median"]
    return {"case": case, "unit": unit, "better": better, "values": values, "ratios": ratios,
            "note": note, "extra": extra or {}}


class Run:
    """What the workloads share: settings, the work folder, the peers' venvs, the
    long-lived workers, and the projects made once per run."""

    def __init__(self, mode: Mode, peers: bool, timeout: float) -> None:
        self.mode = mode
        self.timeout = timeout
        self.folder = Path(tempfile.mkdtemp(prefix="sigforge-bench-"))
        self.dspy: Venv | None = ensure_venv(DSPY) if peers else None
        self.baml: Venv | None = ensure_venv(BAML) if peers else None
        self._drivers: dict[str, DriverProcess] = {}
        self._made: dict[str, Path] = {}

    @property
    def pythons(self) -> dict[str, Path]:
        found = {"sigforge": PYTHON, "raw": PYTHON}
        if self.dspy:
            found["dspy"] = self.dspy.python
        if self.baml:
            found["baml"] = self.baml.python
        return found

    def has(self, tool: str) -> bool:
        return tool in self.pythons

    def close(self) -> None:
        for driver in self._drivers.values():
            driver.close()
        self._drivers.clear()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- the projects

    def module_dir(self) -> Path:
        """A folder holding ``benchsigs/``: the complex signature, generated."""
        if "modules" not in self._made:
            src = self.folder / "sig-src"
            src.mkdir()
            (src / "review.sig").write_text(COMPLEX_SIG, encoding="utf-8")
            out = self.folder / "modules"
            cmd = [*codegen_scale.sigforge_command(None), "generate", "--src", str(src),
                   "--out", str(out / COMPLEX_MODULE.split(".")[0])]
            codegen_scale.run_timed(cmd, self.folder, self.timeout)
            self._made["modules"] = out
        return self._made["modules"]

    def baml_qa(self) -> Path:
        """The generated client folder (holding ``baml_client/``) of BAML's qa twin."""
        assert self.baml is not None
        if "baml_qa" not in self._made:
            project = self.folder / "baml-qa"
            (project / "baml_src").mkdir(parents=True, exist_ok=True)
            (project / "baml_src" / "main.baml").write_text(
                BAML_QA.replace("@VERSION@", self.baml.version), encoding="utf-8")
            self._generate_baml(project)
            self._made["baml_qa"] = project / "out"
        return self._made["baml_qa"]

    def _generate_baml(self, project: Path) -> None:
        assert self.baml is not None
        cli = str(self.baml.script("baml-cli"))
        codegen_scale.run_timed([cli, "generate", "--from", "baml_src"], project, self.timeout)

    def project(self, n: int) -> tuple[Path, Path | None]:
        """The n-signature projects of bench/codegen_scale.py, generated: the sigforge
        project's root (``gen/`` inside) and BAML's output folder (``baml_client/``)."""
        key = f"project-{n}"
        if key not in self._made:
            root = self.folder / key
            codegen_scale.write_sig_project(root / "sigforge" / "src", n, False)
            cmd = [*codegen_scale.sigforge_command(None), "generate", "--src", "src",
                   "--out", "gen"]
            codegen_scale.run_timed(cmd, root / "sigforge", self.timeout)
            self._made[key] = root / "sigforge"
            if self.baml:
                codegen_scale.write_baml_project(root / "baml" / "baml_src", n, False,
                                                 self.baml.version)
                self._generate_baml(root / "baml")
                self._made[key + "-baml"] = root / "baml" / "out"
        return self._made[key], self._made.get(key + "-baml")

    # -- the workers

    def _start(self, tool: str, name: str) -> DriverProcess:
        config = self.folder / "driver-config.json"
        if not config.exists():
            settings: dict[str, Any] = {"module_dir": str(self.module_dir())}
            if self.baml:
                settings["baml_client_dir"] = str(self.baml_qa())
            config.write_text(json.dumps(settings), encoding="utf-8")
        env = dict(os.environ)
        if tool in PEER_TOOLS:
            env.pop("PYTHONPATH", None)
        return DriverProcess(
            [str(self.pythons[tool]), str(BENCH / "_drivers.py"), tool, str(config)],
            log=self.folder / f"{name}.log", timeout=self.timeout, cwd=self.folder, env=env,
        )

    def driver(self, tool: str) -> DriverProcess:
        """The tool's long-lived worker (started on first use)."""
        if tool not in self._drivers:
            self._drivers[tool] = self._start(tool, tool)
        return self._drivers[tool]

    @contextmanager
    def fresh_driver(self, tool: str) -> Iterator[DriverProcess]:
        """A worker of its own for one sample (memory)."""
        driver = self._start(tool, f"{tool}-fresh")
        try:
            yield driver
        finally:
            driver.close()


def progress(text: str) -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------- 1. import


def workload_import(run: Run) -> dict[str, Any]:
    mode = run.mode
    qa_root = ROOT
    big, big_baml = run.project(1000)
    specs: dict[str, tuple[list[str], Path]] = {
        "startup": ([str(PYTHON), "-c", "pass"], qa_root),
        "pydantic+httpx": ([str(PYTHON), "-c", "import pydantic, httpx"], qa_root),
        "generated.qa": ([str(PYTHON), "-c", "import generated.qa"], qa_root),
        "gen.m0 (1000)": ([str(PYTHON), "-c", "import gen.m0"], big),
    }
    if run.dspy:
        specs["dspy startup"] = ([str(run.dspy.python), "-c", "pass"], run.folder)
        specs["import dspy"] = ([str(run.dspy.python), "-c", "import dspy"], run.folder)
    if run.baml:
        specs["baml startup"] = ([str(run.baml.python), "-c", "pass"], run.folder)
        specs["baml_client (qa)"] = ([str(run.baml.python), "-c", "import baml_client"],
                                     run.baml_qa())
        assert big_baml is not None
        specs["baml_client (1000)"] = ([str(run.baml.python), "-c", "import baml_client"],
                                       big_baml)
    progress(f"  {len(specs)} commands, warm-up + {mode.import_rounds} rounds, fresh processes")
    samples, errors = codegen_scale.time_imports(specs, mode.import_rounds, run.timeout)
    ms = {name: [s * 1000 for s in values] for name, values in samples.items()}

    def net(name: str, start: str) -> list[float]:
        return [a - b for a, b in zip(ms.get(name, []), ms.get(start, []), strict=False)]

    rows = [
        row("import the generated module with its runtime (fresh process)", "ms", "lower", {
            "sigforge": ms["generated.qa"], "pydantic+httpx": ms["pydantic+httpx"],
            "dspy": ms.get("import dspy", []), "baml": ms.get("baml_client (qa)", []),
        }, note="sigforge: `import generated.qa`; DSPy: `import dspy`; BAML: `import "
           "baml_client` of the same function; reference: `import pydantic, httpx`"),
        row("the same, interpreter start-up subtracted", "ms", "lower", {
            "sigforge": net("generated.qa", "startup"),
            "pydantic+httpx": net("pydantic+httpx", "startup"),
            "dspy": net("import dspy", "dspy startup"),
            "baml": net("baml_client (qa)", "baml startup"),
        }, note="each round's start-up (`python -c pass`, same venv) subtracted"),
        row("one module of the 1000-signature project (fresh process)", "ms", "lower", {
            "sigforge": ms["gen.m0 (1000)"], "baml": ms.get("baml_client (1000)", []),
        }, note="sigforge: `import gen.m0` (10 signatures); BAML generates one package for "
           "the whole project: `import baml_client`"),
        row("interpreter start-up (`python -c pass`)", "ms", "lower", {
            "sigforge": ms["startup"], "dspy": ms.get("dspy startup", []),
            "baml": ms.get("baml startup", []),
        }),
    ]
    return {"columns": ["sigforge", "pydantic+httpx", "dspy", "baml"], "rows": rows,
            "errors": errors}


# --------------------------------------------------------------------------- 2. signature cost

SIGFORGE_ONCE = """
import json, sys, time
sys.path[:0] = {paths!r}
import pydantic, sigforge.runtime, sigforge.runtime.streaming
from sigforge.runtime import AdapterPrompts, ChainOfThought, FieldSpec, Predict, Signature
started = time.perf_counter()
import {module} as m
imported = time.perf_counter()
m.{name}Inputs(**{inputs!r})
m.{name}Outputs(**{outputs!r})
used = time.perf_counter()
print(json.dumps([(imported - started) * 1e6, (used - imported) * 1e6]))
"""


def sigforge_once(run: Run, shape: str) -> tuple[float, float]:
    """(us to import the generated module after its runtime, us of its models' first use)
    in a fresh process."""
    module, name = ("generated.qa", "AnswerQuestion") if shape == "simple" else (
        COMPLEX_MODULE, "ReviewTicket")
    data = SHAPES[shape]
    code = SIGFORGE_ONCE.format(paths=[str(ROOT), str(run.module_dir())], module=module,
                                name=name, inputs=data["inputs"], outputs=data["outputs"])
    proc = subprocess.run([str(PYTHON), "-c", code], capture_output=True, text=True,
                          cwd=run.folder, timeout=run.timeout, check=True)
    imported, used = json.loads(proc.stdout.strip().splitlines()[-1])
    return imported, used


def workload_signature(run: Run) -> dict[str, Any]:
    mode = run.mode
    rows = []
    for shape in ("simple", "complex"):
        samples: dict[str, list[float]] = {"sigforge": [], "dspy (string)": [],
                                           "dspy (class)": []}
        imports, uses = [], []
        for rnd in range(-1, mode.signature_rounds):
            imported, used = sigforge_once(run, shape)
            if rnd >= 0:
                imports.append(imported)
                uses.append(used)
                samples["sigforge"].append(imported + used)
            if run.has("dspy"):
                for kind in ("string", "class"):
                    reply = run.driver("dspy").ask({"cmd": "signature", "kind": kind,
                                                    "shape": shape, "n": mode.constructions})
                    if rnd >= 0:
                        samples[f"dspy ({kind})"].append(reply["us_per_construction"])
        title = ("simple: AnswerQuestion (2 in, 2 out)" if shape == "simple"
                 else "complex: ReviewTicket (3 in, 5 out, nested class, lists, Literals)")
        rows.append(row(title, "us", "lower", samples, extra={
            "sigforge_import_us": summary(imports), "sigforge_first_use_us": summary(uses)}))
        progress(f"  {shape}: sigforge {summary(samples['sigforge'])['median']:.0f} us once; "
                 + ", ".join(f"{k} {summary(v)['median']:.0f} us" for k, v in samples.items()
                             if v and k != "sigforge"))
    return {"columns": ["sigforge", "dspy (string)", "dspy (class)"], "rows": rows}


# --------------------------------------------------------------------------- 3. per-call overhead


def workload_calls(run: Run) -> dict[str, Any]:
    mode = run.mode
    tools = [t for t in ("sigforge", "dspy") if run.has(t)]
    calls = {"sigforge": mode.sigforge_calls, "dspy": mode.dspy_calls}
    samples: dict[str, dict[str, list[float]]] = {
        case_name(c): {t: [] for t in tools} for c in CALL_CASES
    }
    for rnd in range(-1, mode.call_rounds):
        for case in CALL_CASES:
            for tool in tools:
                n = calls[tool] if rnd >= 0 else max(10, calls[tool] // 5)
                reply = run.driver(tool).ask({"cmd": "calls", "case": case, "n": n})
                if rnd >= 0:
                    samples[case_name(case)][tool].append(reply["us_per_call"])
        progress(f"  {'warm-up' if rnd < 0 else f'round {rnd + 1}'} done")
    rows = [row(name, "us", "lower", s) for name, s in samples.items()]
    for r in rows:
        progress(f"  {r['case']:36s} " + "  ".join(
            f"{side} {v['median']:7.1f} us" for side, v in r["values"].items()))
    return {"columns": tools, "rows": rows,
            "calls_per_sample": {t: calls[t] for t in tools}}


# --------------------------------------------------------------------------- 4. loopback HTTP


def workload_http(run: Run) -> dict[str, Any]:
    mode = run.mode
    rows = []
    servers = {}
    for name, command, concurrency, sides in HTTP_MODES:
        sides = [s for s in sides if run.has(s[1])]
        rates: dict[str, list[float]] = {side: [] for side, _, _ in sides}
        client_cpu: dict[str, list[float]] = {side: [] for side, _, _ in sides}
        server_cpu: dict[str, list[float]] = {side: [] for side, _, _ in sides}
        problems: list[str] = []
        with ServerProcess(bench_responder, lifetime=1200) as server:
            for rnd in range(-1, mode.http_rounds):
                n = mode.http_requests if rnd >= 0 else max(50, mode.http_requests // 4)
                for side, tool, variant in sides:
                    before = server.snapshot()
                    reply = run.driver(tool).ask({
                        "cmd": "http", "mode": command, "concurrency": concurrency, "n": n,
                        "base_url": server.base_url, "variant": variant})
                    done = between(before, server.snapshot())
                    if done["requests"] != n or done["violations"] or done["responder_errors"]:
                        problems.append(f"{side}: {done}")
                    if rnd >= 0:
                        rates[side].append(n / reply["wall_s"])
                        client_cpu[side].append(reply["cpu_s"] / n * 1e6)
                        server_cpu[side].append(done["server_cpu_us_per_request"])
            servers[name] = server.stop()
        extra = {
            "client_cpu_us_per_request": {s: summary(v) for s, v in client_cpu.items() if v},
            "server_cpu_us_per_request": {s: summary(v) for s, v in server_cpu.items() if v},
            "requests_per_sample": mode.http_requests,
            "problems": problems,
        }
        rows.append(row(name, "/s", "higher", rates, extra=extra))
        progress(f"  {name:22s} " + "  ".join(
            f"{side} {summary(v)['median']:.0f}/s" for side, v in rates.items() if v)
            + (f"  PROBLEMS: {problems[:3]}" if problems else ""))
    return {"columns": ["sigforge", "raw httpx", "raw aiohttp", "dspy", "dspy (unknown name)",
                        "baml"], "rows": rows, "servers": servers}


# --------------------------------------------------------------------------- 5. memory


def workload_memory(run: Run) -> dict[str, Any]:
    mode = run.mode
    sides = [("sigforge", "sigforge", "")]
    if run.has("dspy"):
        sides += [("dspy", "dspy", ""), ("dspy (history off)", "dspy", "history-off")]
    growth: dict[str, list[float]] = {side: [] for side, _, _ in sides}
    details: dict[str, list[dict[str, Any]]] = {side: [] for side, _, _ in sides}
    for rnd in range(mode.memory_rounds):
        for side, tool, variant in sides:
            with run.fresh_driver(tool) as driver:
                reply = driver.ask({"cmd": "memory", "n": mode.memory_predictions,
                                    "warmup": 500, "variant": variant})
            growth[side].append((reply["rss_after"] - reply["rss_before"]) / 2**20)
            details[side].append({k: v for k, v in reply.items() if k != "ok"})
            progress(f"  round {rnd + 1}: {side:20s} RSS {reply['rss_before'] / 2**20:6.1f} -> "
                     f"{reply['rss_after'] / 2**20:6.1f} MiB, {reply['seconds']:.1f} s, "
                     f"history {reply['history_entries']}")
    rows = [row(f"RSS growth over {mode.memory_predictions:,} predictions", "MiB", "lower",
                growth, extra={"samples": details})]
    return {"columns": [side for side, _, _ in sides], "rows": rows}


# --------------------------------------------------------------------------- 6. codegen


def workload_codegen(run: Run) -> dict[str, Any]:
    out = run.folder / "codegen.json"
    cmd = [str(PYTHON), str(BENCH / "codegen_scale.py"), *run.mode.codegen_args,
           "--out", str(out), "--workdir", str(run.folder)]
    if not run.has("baml"):
        cmd.append("--no-baml")
    subprocess.run(cmd, check=True, timeout=1800)
    report = json.loads(out.read_text(encoding="utf-8"))
    rows = []
    labels = {"full": "full build", "noop": "nothing changed",
              "touch_comment": "after a comment in one file",
              "touch_desc": "after a description change in one file"}
    for size in report["sizes"]:
        n = size["signatures"]
        for case, label in labels.items():
            entry = size["cases"].get(case, {})
            rows.append(row(f"{n} signatures: {label}", "s", "lower",
                            {tool: entry[tool]["samples"] for tool in ("sigforge", "baml")
                             if tool in entry}))
        lines = {tool: [float(s["lines"])] for tool, s in size["generated_size"].items()}
        rows.append(row(f"{n} signatures: generated code, lines", "lines", "lower", lines,
                        extra={"generated": size["generated_size"],
                               "source": size["source_size"]}))
        kib = {tool: [s["bytes"] / 1024] for tool, s in size["generated_size"].items()}
        rows.append(row(f"{n} signatures: generated code, KiB", "KiB", "lower", kib))
    return {"columns": ["sigforge", "baml"], "rows": rows, "report": report}


# --------------------------------------------------------------------------- 7. type checking


def mypy_run(cmd: list[str], cwd: Path, timeout: float) -> tuple[float, int, list[str]]:
    """(seconds, error count, the error lines) of one mypy run."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    lines = proc.stdout.splitlines()
    errors = [line for line in lines if ": error: " in line]
    last = lines[-1] if lines else ""
    if not (last.startswith("Success:") or last.startswith("Found ")):
        raise RuntimeError(f"mypy did not finish: {shlex.join(cmd)}\n{proc.stdout[-2000:]}"
                           f"{proc.stderr[-2000:]}")
    return seconds, len(errors), errors


def touch_package(folder: Path, tag: str) -> None:
    """Change every module of a generated package (a comment appended), so that mypy
    checks them anew whatever its cache holds."""
    for path in folder.rglob("*.py"):
        with path.open("a", encoding="utf-8") as module:
            module.write(f"\n# {tag}\n")


def workload_mypy(run: Run) -> dict[str, Any]:
    n, rounds, quick = run.mode.mypy_signatures, run.mode.mypy_rounds, run.mode is QUICK
    sig_root, baml_out = run.project(n)
    mypy = [str(PYTHON), "-m", "mypy", "--strict"]
    tools: dict[str, tuple[list[str], Path, Path]] = {
        "sigforge": ([*mypy, "gen"], sig_root, sig_root / "gen"),
    }
    if run.baml and baml_out is not None:
        tools["baml"] = ([*mypy, "--python-executable", str(run.baml.python), "baml_client"],
                         baml_out, baml_out / "baml_client")
    cold: dict[str, list[float]] = {tool: [] for tool in tools}
    warm: dict[str, list[float]] = {tool: [] for tool in tools}
    counts: dict[str, list[float]] = {tool: [] for tool in tools}
    found: dict[str, list[str]] = {}
    for rnd in range(rounds):
        for tool, (cmd, cwd, package) in tools.items():
            # full: an empty cache (cold), then the generated code changed and checked
            # again with everything else cached; quick: a cache kept between runs, so
            # only the first run ever is cold (its time is not reported)
            cache = (Path.home() / ".cache" / "sigforge-bench" / "mypy" / tool if quick
                     else run.folder / f"mypy-cache-{tool}-{rnd}")
            with_cache = [*cmd[:4], "--cache-dir", str(cache), *cmd[4:]]
            seconds, count, errors = mypy_run(with_cache, cwd, run.timeout)
            if not quick:
                cold[tool].append(seconds)
            touch_package(package, f"changed for round {rnd + 1} of bench/run.py")
            again, count_again, _ = mypy_run(with_cache, cwd, run.timeout)
            warm[tool].append(again)
            counts[tool] += [float(count), float(count_again)]
            found[tool] = errors
            progress(f"  round {rnd + 1}: {tool:8s} {count} errors; "
                     + ("" if quick else f"cold {seconds:.1f} s, ")
                     + f"dependencies cached {again:.1f} s")
    codes: dict[str, dict[str, int]] = {}
    for tool, errors in found.items():
        histogram: dict[str, int] = {}
        for line in errors:
            code = line.rsplit("[", 1)[-1].rstrip("]") if line.endswith("]") else "?"
            histogram[code] = histogram.get(code, 0) + 1
        codes[tool] = dict(sorted(histogram.items(), key=lambda item: -item[1]))
    rows = [
        row(f"`mypy --strict` errors in the generated code ({n} signatures)", "errors", "lower",
            counts, extra={"error_codes": codes,
                           "first_errors": {t: e[:5] for t, e in found.items()}}),
        row("time, cold cache", "s", "lower", cold),
        row("time, dependencies cached (the generated code changed)", "s", "lower", warm),
    ]
    return {"columns": list(tools), "rows": rows}


# --------------------------------------------------------------------------- 8. optimizers


def workload_optimizers(run: Run) -> dict[str, Any]:
    out = run.folder / "optimizers.json"
    cmd = [str(PYTHON), str(BENCH / "optimizer_bench.py"), *run.mode.optimizer_args,
           "--out", str(out)]
    if not run.has("dspy"):
        cmd.append("--no-dspy")
    subprocess.run(cmd, check=True, timeout=1800)
    report = json.loads(out.read_text(encoding="utf-8"))
    rows = []
    labels = {"bootstrap": "BootstrapFewShot", "mipro": "MIPROv2"}
    for name, result in report["optimizers"].items():
        tools = [t for t in ("sigforge", "dspy") if t in result]
        label = labels.get(name, name)
        rows.append(row(f"{label}: compile wall time", "s", "lower",
                        {t: result[t]["raw"]["wall_s"] for t in tools}))
        rows.append(row(f"{label}: LM calls", "calls", "lower",
                        {t: [float(c) for c in result[t]["raw"]["lm_calls"]] for t in tools}))
        rows.append(row(f"{label}: dev score of the compiled program", "score", "higher",
                        {t: [float(result[t]["dev_score"])] for t in tools}))
    return {"columns": ["sigforge", "dspy"], "rows": rows, "report": report}


WORKLOADS: dict[int, Callable[[Run], dict[str, Any]]] = {
    1: workload_import,
    2: workload_signature,
    3: workload_calls,
    4: workload_http,
    5: workload_memory,
    6: workload_codegen,
    7: workload_mypy,
    8: workload_optimizers,
}

DESCRIPTIONS = {
    1: "Wall time of a fresh interpreter per command (`python -c ...`), the commands "
       "alternating round after round after a warm-up round (which also leaves .pyc "
       "files, as on a usual machine). Each tool with its own venv's interpreter.",
    2: "DSPy: constructions of a signature in a loop (`dspy.Signature(\"...\")` from a "
       "string, or a `class ...(dspy.Signature)` statement run anew; the complex one's "
       "nested pydantic classes are rebuilt with it), time per construction. sigforge "
       "builds nothing at run time: reported is what it does instead, once per process, "
       "in a fresh interpreter where the runtime is already imported: importing the "
       "generated module plus the first use of its inputs and outputs models (whose "
       "validators pydantic builds then: `defer_build`).",
    3: "Time per prediction (format + LM interface + parse + validate) with an LM that "
       "answers instantly in-process and caches off: sigforge's `ScriptedLM` on the "
       "generated predictors; DSPy's own LM call path with a `DummyLM` subclass returning "
       "the same fixed reply. Both tools get the same replies and demos "
       "(bench/_drivers.py); each sample is a loop of calls in the tool's worker. Histories "
       "are bounded at 200 entries, and so is `ScriptedLM`'s own record of the requests it "
       "got (a test helper's, not the runtime's).",
    4: "Predictions per second against `sigforge.testing.OpenAICompatServer` in a process "
       "of its own (a fresh one per mode), answering at once: the chat-format reply to "
       "prompts in that format, JSON to BAML's. sigforge: `QuickAnswer` with an `LM` "
       "(`run`, `batch`, `abatch`); raw: hand-written httpx / aiohttp loops with the same "
       "request body (the ceiling); DSPy: `dspy.Predict` on `dspy.LM` (sequential calls, "
       "`batch(num_threads=16)`, `acall` under `asyncio.gather` with a semaphore); BAML: "
       "its generated sync client (in threads for the threaded mode) and async client. "
       "Client CPU is the worker's process time per request (all threads); the server's "
       "CPU per request is measured in the server for each client's runs.",
    5: "A fresh worker process per sample: 500 predictions of warm-up, then RSS (after a "
       "`gc.collect()`) before and after the predictions, with the in-process LM of "
       "workload 3 (Predict, chat, simple signature). History bounded at 200 entries "
       "(sigforge `set_history_limit`, DSPy `max_history_size`); DSPy also keeps a global "
       "history of up to 10,000 calls, shown with and without `disable_history`.",
    6: "bench/codegen_scale.py: equivalent projects of N signatures (ten per file), each "
       "command a fresh process, sigforge and `baml-cli generate` alternating after a "
       "warm-up round.",
    7: "`mypy --strict` (the repository's mypy, with `--python-executable` of BAML's venv "
       "for its client) on the generated code of the 100-signature projects of workload 6 "
       "(10 with `--quick`): once with an empty cache (not with `--quick`, whose cache is "
       "kept between runs), then again after a comment is appended to every generated "
       "module, so that the generated code is checked anew with its dependencies cached "
       "(the usual case after a `generate`).",
    8: "bench/optimizer_bench.py: both tools' BootstrapFewShot and MIPROv2 on the same "
       "operator task against one loopback server, LM calls counted at the server, dev "
       "score computed the same way for both.",
}

# --------------------------------------------------------------------------- the headline


def find_row(results: dict[str, Any], workload: int, case: str) -> dict[str, Any] | None:
    rows = results.get(str(workload), {}).get("rows", [])
    return next((r for r in rows if r["case"] == case), None)


def median(r: dict[str, Any] | None, side: str) -> float | None:
    if r is None or side not in r["values"]:
        return None
    return float(r["values"][side]["median"])


def compare(value: float, op: str, threshold: float) -> bool:
    return {"≤": value <= threshold, "<": value < threshold, "≥": value >= threshold,
            "=": value == threshold}[op]


def item(what: str, workload: int, r: dict[str, Any] | None, peer: str,
         target: tuple[str, float] | None = None, peer_value: float | None = None,
         absolute: tuple[str, float] | None = None) -> dict[str, Any]:
    """One headline line: sigforge against ``peer`` on row ``r``. ``target``: (operator,
    threshold) on the ratio sigforge / peer; ``absolute``: on sigforge's own value."""
    ours = median(r, "sigforge")
    theirs = peer_value if peer_value is not None else median(r, peer)
    countable = r is not None and r["unit"] != "errors"
    ratio = ours / theirs if countable and ours is not None and theirs else None
    met: bool | None = None
    text = "—"
    if target is not None:
        op, threshold = target
        text = f"ratio {op} {threshold:g}"
        if ratio is not None:
            met = compare(ratio, op, threshold)
    if absolute is not None:
        op, threshold = absolute
        text = f"{op} {threshold:g} {r['unit'] if r else ''}".strip()
        if ours is not None:
            met = compare(ours, op, threshold)
    return {"what": what, "workload": workload, "case": r["case"] if r else None,
            "peer": peer, "unit": r["unit"] if r else "", "better": r["better"] if r else "",
            "sigforge": ours, "peer_value": theirs, "ratio": ratio, "target": text,
            "met": met}


def headline(results: dict[str, Any]) -> list[dict[str, Any]]:
    items = []
    r = find_row(results, 3, "predict/chat/0 demos/simple")
    items.append(item("per-call overhead, Predict, chat, 0 demos", 3, r, "dspy", ("≤", 0.1)))
    r = find_row(results, 3, "predict/chat/3 demos/simple")
    items.append(item("per-call overhead, Predict, chat, 3 demos", 3, r, "dspy", ("≤", 0.1)))
    r = find_row(results, 3, "predict/chat/0 demos/complex")
    items.append(item("per-call overhead, Predict, chat, 0 demos, complex signature", 3, r,
                      "dspy"))
    seq = find_row(results, 4, "sequential")
    items.append(item("sequential HTTP throughput", 4, seq, "raw httpx", ("≥", 0.8)))
    items.append(item("sequential HTTP throughput", 4, seq, "dspy"))
    items.append(item("sequential HTTP throughput", 4, seq, "dspy (unknown name)"))
    items.append(item("sequential HTTP throughput", 4, seq, "baml"))
    concurrent = [find_row(results, 4, name) for name in
                  ("16 threads", "asyncio, 16 in flight", "asyncio, 64 in flight")]
    dspy_rates = [m for m in (median(c, "dspy") for c in concurrent) if m is not None]
    dspy_best = max(dspy_rates) if dspy_rates else None
    for name in ("asyncio, 16 in flight", "asyncio, 64 in flight"):
        r = find_row(results, 4, name)
        items.append(item(f"HTTP throughput, {name}", 4, r, "baml", ("≥", 1.0)))
        items.append(item(f"HTTP throughput, {name}", 4, r, "dspy (best concurrent mode)",
                          ("≥", 2.0), peer_value=dspy_best))
    r = find_row(results, 1, "import the generated module with its runtime (fresh process)")
    items.append(item("import a generated module with its runtime", 1, r, "pydantic+httpx",
                      ("≤", 1.3)))
    items.append(item("import a generated module with its runtime", 1, r, "dspy",
                      ("≤", 0.25)))
    items.append(item("import a generated module with its runtime", 1, r, "baml"))
    r = find_row(results, 6, "1000 signatures: full build")
    items.append(item("generate 1000 signatures, full build", 6, r, "baml", ("≤", 1.0)))
    for label in ("after a comment in one file", "after a description change in one file"):
        r = find_row(results, 6, f"1000 signatures: {label}")
        items.append(item(f"generate 1000 signatures, {label}", 6, r, "baml",
                          absolute=("≤", 0.3)))
    r = next((x for x in results.get("7", {}).get("rows", []) if "errors" in x["case"]), None)
    items.append(item("`mypy --strict` errors in generated code", 7, r, "baml",
                      absolute=("=", 0)))
    r = find_row(results, 5, next((x["case"] for x in results.get("5", {}).get("rows", [])),
                                  ""))
    items.append(item("RSS growth over 10,000 predictions", 5, r, "dspy"))
    for label in ("BootstrapFewShot", "MIPROv2"):
        r = find_row(results, 8, f"{label}: compile wall time")
        items.append(item(f"{label} compile time (optimizers issue: < DSPy)", 8, r, "dspy",
                          ("<", 1.0)))
        r = find_row(results, 8, f"{label}: LM calls")
        items.append(item(f"{label} LM calls (optimizers issue: ≤ DSPy)", 8, r, "dspy",
                          ("≤", 1.0)))
    r = find_row(results, 2, "simple: AnswerQuestion (2 in, 2 out)")
    items.append(item("signature cost: sigforge's import + first use, once per process, vs "
                      "DSPy per class construction", 2, r, "dspy (class)"))
    return sorted((i for i in items if i["case"] is not None), key=lambda i: i["workload"])


# --------------------------------------------------------------------------- rendering


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "us":
        return f"{value:.1f} µs" if value < 100 else f"{value:,.0f} µs"
    if unit == "ms":
        return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"
    if unit == "s":
        return f"{value:.3f} s" if value < 1 else f"{value:.2f} s"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "MiB":
        return f"{value:+.1f} MiB"
    if unit == "score":
        return f"{value:.2f}"
    if unit == "KiB":
        return f"{value:,.0f} KiB"
    return f"{value:,.0f}" + ("" if unit in ("errors", "calls", "lines") else f" {unit}")


def cell(stats: dict[str, Any] | None, unit: str) -> str:
    if not stats:
        return "—"
    text = fmt(stats["median"], unit)
    if stats["n"] > 1 and stats["min"] != stats["max"]:
        text += f" ({fmt(stats['min'], unit)} to {fmt(stats['max'], unit)})"
    return text


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    return f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.3f}"


def verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("met" if met else "**MISSED**")


def headline_table(items: list[dict[str, Any]]) -> list[str]:
    lines = ["| workload | what | sigforge | peer | ratio | target | verdict |",
             "|---|---|---|---|---|---|---|"]
    for i in items:
        peer = f"{i['peer']}: {fmt(i['peer_value'], i['unit'])}"
        target_set = i["target"] != "—"
        lines.append(
            f"| {i['workload']}. {WORKLOAD_NAMES[i['workload']]} | {i['what']} "
            f"| {fmt(i['sigforge'], i['unit'])} | {peer} | **{fmt_ratio(i['ratio'])}** "
            f"| {i['target']} | {verdict(i['met']) if target_set else '—'} |")
    return lines


def workload_table(result: dict[str, Any]) -> list[str]:
    rows = result["rows"]
    used = [c for c in result["columns"] if any(c in r["values"] for r in rows)]
    peers = [c for c in used if c != "sigforge"]
    header = ["case", *used] + (["ratio sigforge / peer"] if peers else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        if not r["values"]:
            continue
        cells = [r["case"], *(cell(r["values"].get(c), r["unit"]) for c in used)]
        if peers:
            cells.append("; ".join(f"{p} **{fmt_ratio(r['ratios'][p])}**" for p in peers
                                   if p in r["ratios"]) or "—")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def workload_notes(number: int, result: dict[str, Any]) -> list[str]:
    notes = [f"- {r['case']}: {r['note']}" for r in result["rows"] if r.get("note")]
    if number == 2:
        for r in result["rows"]:
            extra = r["extra"]
            notes.append(f"- {r['case'].split(':')[0]}: sigforge import "
                         f"{fmt(extra['sigforge_import_us']['median'], 'us')} + first use "
                         f"{fmt(extra['sigforge_first_use_us']['median'], 'us')}")
    if number == 4:
        for r in result["rows"]:
            cpu = r["extra"]["client_cpu_us_per_request"]
            server = r["extra"]["server_cpu_us_per_request"]
            notes.append(f"- {r['case']}, CPU µs per request, client / server: " + "; ".join(
                f"{side} {cpu[side]['median']:,.0f} / {server[side]['median']:,.0f}"
                for side in cpu))
            if r["extra"]["problems"]:
                notes.append(f"  - problems: {r['extra']['problems'][:5]}")
    if number == 5:
        for side, samples in result["rows"][0]["extra"]["samples"].items():
            last = samples[-1]
            notes.append(f"- {side} (last round): RSS {last['rss_before'] / 2**20:.1f} → "
                         f"{last['rss_after'] / 2**20:.1f} MiB, {last['seconds']:.1f} s for "
                         f"the predictions, history entries at the end: "
                         f"{last['history_entries']:,}")
    if number == 7:
        notes.append("- sigforge's generated modules import its runtime, which is typed Python "
                     "source (`py.typed`), so a cold `mypy` checks the runtime and what it "
                     "imports too; `baml_py` is a compiled module with stubs.")
        extra = result["rows"][0]["extra"]
        for tool, codes in extra["error_codes"].items():
            if codes:
                notes.append(f"- {tool} errors by code: " + ", ".join(
                    f"`{code}` {count}" for code, count in codes.items()))
                notes += [f"  - `{line.strip()}`" for line in extra["first_errors"][tool][:3]]
    return notes


def dirty_note(git: dict[str, Any]) -> str:
    files = git.get("dirty_files")
    if files:
        return f" with uncommitted changes in {', '.join(f'`{f}`' for f in files)}"
    return " with uncommitted changes" if git.get("dirty") else ""


def complete_runs(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The complete runs whose results are in ``folder``, oldest first."""
    runs = []
    for path in folder.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*.json"):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if report.get("benchmark") == "side_by_side" and complete(report):
            runs.append((path, report))
    return sorted(runs, key=lambda run: run[1]["date"])


def runs_table(report: dict[str, Any]) -> list[str]:
    """The targeted ratios of this run beside those of the other complete runs kept with
    it: how much they move on this machine."""
    if not report.get("json"):
        return []
    runs = [(p, r) for p, r in complete_runs(Path(report["json"]).parent)
            if r["date"] != report["date"]][-4:]
    if not runs:
        return []
    runs.append((Path(report["json"]), report))
    header = ["target", *(f"{path.stem} (load {r['machine']['loadavg_before'][0]:.1f})"
                          for path, r in runs)]
    lines = ["### The same targets in the other complete runs kept here", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    per_run = [{(i["what"], i["peer"]): i for i in headline(r["results"])} for _, r in runs]
    for key, last in per_run[-1].items():
        if last["target"] == "—":
            continue
        cells = []
        for items in per_run:
            i = items.get(key)
            if i is None:
                cells.append("—")
                continue
            on_ratio = i["target"].startswith("ratio")
            shown = fmt_ratio(i["ratio"]) if on_ratio else fmt(i["sigforge"], i["unit"])
            cells.append(f"{shown} ({verdict(i['met']).strip('*')})")
        lines.append(f"| {key[0]} vs {key[1]}, {last['target']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def render(report: dict[str, Any], md_path: Path, chart: Path | None) -> str:
    results = report["results"]
    machine, versions = report["machine"], report["versions"]
    rel = os.path.relpath(report["json"], md_path.parent) if report.get("json") else None
    lines = [
        "# Benchmarks: sigforge side by side with DSPy and BAML",
        "",
        f"<!-- written by bench/run.py from {rel}; re-render with "
        f"`python bench/run.py --render {report.get('json_repo_path', rel)}` -->",
        "",
        f"Run of {report['date']} (`{report['command']}`, {report['seconds'] / 60:.1f} min"
        f"{', quick' if report['settings']['quick'] else ''}): {machine['cpu']}, "
        f"{machine['cpu_count']} cores, load {machine['loadavg_before'][0]:.2f} before and "
        f"{machine['loadavg_after'][0]:.2f} after; Python {machine['python']}; sigforge at "
        f"`{(versions['repo_git_at_start']['commit'] or '?')[:10]}`"
        f"{dirty_note(versions['repo_git_at_start'])}, "
        f"DSPy {versions['dspy'] or '(not run)'}, baml-py {versions['baml-py'] or '(not run)'}."
        + (f" Raw data: [{Path(rel).name}]({rel})." if rel else ""),
        "",
        "Every workload runs each tool in a process of its own (its own venv), the tools "
        "alternating round after round after a warm-up; cells are the median (min to max) "
        "over the rounds; ratios are sigforge ÷ peer of the medians (below 1 is better for "
        "times, sizes and counts, above 1 for rates). This 2-core machine is shared: the "
        "ratios are the headline, absolute figures move with its load. Reproduce with "
        "`python bench/run.py` (see its docstring).",
        "",
        "## Headline",
        "",
        *headline_table(headline(results)),
        "",
    ]
    if chart is not None:
        lines += [f"![sigforge's advantage per headline line]"
                  f"({os.path.relpath(chart, md_path.parent)})", ""]
    lines += runs_table(report)
    for key in sorted(results, key=int):
        number = int(key)
        result = results[key]
        name = WORKLOAD_NAMES[number]
        lines += [f"## {number}. {name[0].upper()}{name[1:]}", "",
                  DESCRIPTIONS[number], ""]
        if "error" in result:
            lines += ["**This workload failed:**", "", "```", result["error"].strip()[-3000:],
                      "```", ""]
            continue
        lines += [*workload_table(result), ""]
        notes = workload_notes(number, result)
        if notes:
            lines += [*notes, ""]
        lines += [f"({result['seconds']:.0f} s)", ""]
    return "\n".join(lines)


def draw_chart(report: dict[str, Any], path: Path) -> bool:
    """A bar per headline line with both figures: how many times better sigforge is
    (log scale; > 1: sigforge better), with the target marked. False if matplotlib is
    missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("chart skipped: matplotlib is missing (pip install -e '.[bench]')")
        return False
    items = [i for i in headline(report["results"])
             if i["ratio"] and i["unit"] != "errors" and i["sigforge"]]
    if not items:
        return False
    labels, advantages, targets, colors = [], [], [], []
    for i in items:
        lower = i["better"] == "lower"
        advantage = 1 / i["ratio"] if lower else i["ratio"]
        target = None
        what = i["what"]
        if i["target"].startswith("ratio"):
            threshold = float(i["target"].split()[-1])
            target = 1 / threshold if lower else threshold
        elif i["target"] != "—":  # an absolute target: see the table, not this ratio
            what += f" (target {i['target']}: see the table)"
        labels.append(textwrap.fill(f"{what} vs {i['peer']}", 48))
        advantages.append(advantage)
        targets.append(target)
        met = i["met"] if target is not None else None
        colors.append("#9e9e9e" if met is None else "#2e7d32" if met else "#c62828")
    height = 0.45 * len(items) + 1.5
    fig, ax = plt.subplots(figsize=(11, height))
    positions = list(range(len(items)))[::-1]
    # bars start at 1 (the same as the peer): right is better, left is worse
    ax.barh(positions, [a - 1 for a in advantages], left=1, color=colors, height=0.6)
    for y, target in zip(positions, targets, strict=True):
        if target is not None:
            ax.plot([target, target], [y - 0.4, y + 0.4], color="black", linewidth=2)
    ax.axvline(1.0, color="#555555", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.set_yticks(positions)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel("how many times better sigforge is (log scale; 1 = same; "
                  "black tick = target)")
    ax.set_title(f"sigforge vs DSPy, BAML and baselines — {report['date'][:10]} "
                 "(green: target met, red: missed, grey: no target)", fontsize=9)
    for y, advantage in zip(positions, advantages, strict=True):
        ax.annotate(f"{advantage:.2g}x", (max(advantage, 1.0), y), xytext=(3, -3),
                    textcoords="offset points", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------- main


def wait_until_quiet(max_load: float, max_wait: float) -> list[float]:
    """Wait until the 1-minute load average is below ``max_load`` (at most ``max_wait``
    seconds); the load average when starting."""
    deadline = time.monotonic() + max_wait
    while os.getloadavg()[0] >= max_load and time.monotonic() < deadline:
        progress(f"load {os.getloadavg()[0]:.2f} >= {max_load}: waiting for a quiet machine")
        time.sleep(20)
    if os.getloadavg()[0] >= max_load:
        progress(f"still busy after {max_wait:.0f} s (load {os.getloadavg()[0]:.2f}); "
                 "running anyway")
    return list(os.getloadavg())


def complete(report: dict[str, Any]) -> bool:
    """A run RESULTS.md may show: all workloads, with the peers, not quick, no failure."""
    settings, results = report["settings"], report["results"]
    return (not settings["quick"] and settings["peers"]
            and sorted(map(int, results)) == sorted(WORKLOADS)
            and not any("error" in r for r in results.values()))


def write_report(report: dict[str, Any], json_path: Path, md: Path | None) -> Path:
    """The chart next to the JSON, and the Markdown report; the report's path."""
    report["json"] = str(json_path)
    if json_path.is_relative_to(ROOT):
        report["json_repo_path"] = str(json_path.relative_to(ROOT))
    chart = json_path.with_suffix(".png")
    drawn = draw_chart(report, chart)
    md_path = md or (RESULTS_MD if complete(report) else json_path.with_suffix(".md"))
    md_path.write_text(render(report, md_path, chart if drawn else None) + "\n",
                       encoding="utf-8")
    return md_path


def parse_only(text: str) -> list[int]:
    numbers = sorted({int(part) for part in text.split(",") if part.strip()})
    unknown = [n for n in numbers if n not in WORKLOADS]
    if not numbers or unknown:
        raise argparse.ArgumentTypeError(f"workloads are numbered 1 to {len(WORKLOADS)}")
    return numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer rounds and samples (under 3 minutes)")
    parser.add_argument("--only", type=parse_only, default=sorted(WORKLOADS),
                        help="comma-separated workload numbers, e.g. 3,4 (default: all)")
    parser.add_argument("--no-peers", action="store_true",
                        help="sigforge and the raw baselines only (no DSPy, no BAML)")
    parser.add_argument("--max-load", type=float,
                        help="first wait until the 1-minute load average is below this")
    parser.add_argument("--max-wait", type=float, default=900.0,
                        help="seconds --max-load waits at most (default 900)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS,
                        help="where <date>.json and .png go (default bench/results)")
    parser.add_argument("--md", type=Path, help="the Markdown report's path (default: "
                        "bench/RESULTS.md for a complete run, else <date>.md beside the JSON)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds one command of a worker may take (default 600)")
    parser.add_argument("--note", default="", help="free text stored in the results")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="re-render the report and chart of an earlier run, run nothing")
    args = parser.parse_args()

    if args.render:
        report = json.loads(args.render.read_text(encoding="utf-8"))
        progress(f"report: {write_report(report, args.render.resolve(), args.md)}")
        return

    load_before = (wait_until_quiet(args.max_load, args.max_wait) if args.max_load
                   else list(os.getloadavg()))
    started = time.perf_counter()
    repo_git = codegen_scale.git_state()
    # the working tree is measured as it is: say which tracked files differ from the commit
    status = capture(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    repo_git["dirty_files"] = [line.split(None, 1)[1] for line in (status or "").splitlines()]
    mode = QUICK if args.quick else FULL
    run = Run(mode, peers=not args.no_peers, timeout=args.timeout)
    progress(f"sigforge vs DSPy {run.dspy.version if run.dspy else '(not run)'} and "
             f"baml-py {run.baml.version if run.baml else '(not run)'}; workloads "
             f"{','.join(map(str, args.only))}{' (quick)' if args.quick else ''}; "
             f"work folder {run.folder}")
    results: dict[str, Any] = {}
    try:
        for number in args.only:
            progress(f"\n== {number}. {WORKLOAD_NAMES[number]} ==")
            began = time.perf_counter()
            load = os.getloadavg()[0]
            try:
                result = WORKLOADS[number](run)
            except Exception:
                import traceback

                result = {"error": traceback.format_exc()}
                progress(f"  FAILED:\n{result['error']}")
            result["seconds"] = time.perf_counter() - began
            result["load_before"], result["load_after"] = load, os.getloadavg()[0]
            results[str(number)] = result
            progress(f"  ({result['seconds']:.0f} s)")
    finally:
        run.close()

    report = {
        "benchmark": "side_by_side",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "bench/run.py", *sys.argv[1:]]),
        "seconds": time.perf_counter() - started,
        "machine": {"cpu_count": os.cpu_count(), "cpu": codegen_scale.cpu_model(),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_before": load_before, "loadavg_after": list(os.getloadavg())},
        "versions": {"dspy": run.dspy.version if run.dspy else None,
                     "baml-py": run.baml.version if run.baml else None,
                     "repo_git_at_start": repo_git},
        "settings": {"quick": args.quick, "peers": not args.no_peers, "only": args.only,
                     "mode": mode.__dict__, "history_limit": 200, "model": "openai/gpt-4o-mini"},
        "note": args.note,
        "results": results,
    }
    report["headline"] = headline(results)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    json_path = new_results_path(folder=args.out_dir.resolve())
    json_path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    md_path = write_report(report, json_path, args.md)
    # the stored JSON also names where it lives
    json_path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    progress("\n" + "\n".join(headline_table(report["headline"])))
    progress(f"\nresults: {json_path}\nreport: {md_path}")
    if any("error" in r for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
