"""Optimizers side by side: sigforge's BootstrapFewShot and MIPROv2 against DSPy's own.

Both tools optimize the same program on the same task, against the same server, with the
same settings, in the same run:

* **The task** is the honest operator task of ``sigforge.testing.tasks``
  (``OperatorTask(seed=0)``: invented operator words, seeded disjoint train / val / dev
  sets, answer equality as the metric). Zero-shot every program scores 0; a program
  learns a word only from demos or instructions its prompt shows.
* **The server** is one loopback ``OpenAICompatServer(world.responder)`` answering from
  an ``OperatorWorld``. It runs in a process of its own, so its CPU is not the clients';
  the bench asks it (over a pipe) for its request count, its CPU seconds and the world's
  per-role counts (solver / proposer / other) before and after every compile, which is
  how LM calls are counted -- at the server, the same way for both tools. It stops
  itself after ``--server-lifetime`` seconds whatever happens.
* **The program** is the task's generated predictor ``Solve`` (``question -> answer:
  int``, instructions ``Answer the arithmetic question.``) on sigforge's side, and
  ``dspy.Predict`` over a signature with the same instructions and the same field
  descriptions on DSPy's side: the two send the same messages, byte for byte.
* **The clients**: sigforge's ``LM("openai/gpt-4o-mini", base_url=..., cache=False)``
  in this process; DSPy 3.4's ``dspy.LM("openai/gpt-4o-mini", api_base=..., cache=False)``
  with ``dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)`` in a
  long-lived driver process (a script this bench writes to a temporary folder and runs
  with the DSPy venv's interpreter; it reads commands as JSON lines on stdin and answers
  on stdout, so each compile is timed inside the process that runs it and nothing else
  runs while the server counts its calls). Caches are off for everyone.
* **The optimizers**, with equal settings: ``BootstrapFewShot(max_bootstrapped_demos=8,
  max_labeled_demos=4, max_rounds=1, seed 0)`` on the trainset, and ``MIPROv2(auto="light",
  max_bootstrapped_demos=4, max_labeled_demos=4, seed=9, init_temperature=1.0,
  minibatch_size=35, minibatch_full_eval_steps=5, num_threads=8)`` on the trainset and
  valset (prompt model = task model = the same LM). sigforge's BootstrapFewShot runs
  with ``num_threads=8``; DSPy's has no such setting and bootstraps one example after
  another.

Measured per optimizer and tool: the wall time of ``compile`` (median, min and max over
``--rounds`` rounds, alternating sigforge, DSPy, sigforge, DSPy ... after one warm-up
compile each), the client's CPU time during ``compile``, the LM calls the server received
during it (and the world's per-role counts), the server's CPU per request, and the dev-set
score of the compiled program. The dev score is computed the same way for both: DSPy's
compiled program is saved (``program.save``), loaded into sigforge's ``Solve`` with
``sigforge.runtime.dspy_state.load_dspy`` and evaluated by sigforge's ``Evaluate`` on the
same server, next to sigforge's compiled program. DSPy's own ``dspy.Evaluate`` of its
program and the zero-shot scores of both are reported as cross-checks (the world must
answer DSPy's prompts as it answers sigforge's). Whether every round compiled the same
program (same state) is recorded for each tool.

Targets (optimizers issue): no more LM calls than DSPy for the same settings, and lower
wall time; each is marked met or missed, per optimizer.

DSPy runs from its own virtual environment outside the repository (default
``~/.cache/sigforge-bench/venvs/dspy``), created on first use by bench/_venv.py with ``pip
install 'dspy>=3.4,<3.5' optuna`` (MIPROv2 needs optuna) and pinned in the venv folder; once it
exists the bench needs no network. When it cannot be installed, DSPy is skipped with a
message, as with ``--no-dspy``.

    python bench/optimizer_bench.py [--quick] [--rounds 10] [--optimizers bootstrap,mipro]
                                    [--mipro-seed 9] [--no-dspy] [--dspy-venv DIR] [--out FILE]

Sets: 48 training, 100 validation (MIPROv2 light then uses minibatches of 35) and 60 dev
examples, 10 rounds. ``--quick``: 24 / 20 / 40 examples (no minibatches) and 3 rounds.
Both finish in well under a minute here. Results: a table on stdout
and ``bench/results/optimizers-<YYYY-MM-DD>.json`` (``-2``, ``-3``, ... for later runs of
the same day): machine, load, versions, settings, raw samples, summaries and verdicts.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _drivers import DriverError, DriverProcess
from _server import ServerProcess, between
from _stats import new_results_path, summary
from _venv import DSPY, ensure_venv
from codegen_scale import cpu_model, git_state

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_DSPY_VENV = DSPY.default_venv

MODEL = "openai/gpt-4o-mini"
API_KEY = "sk-bench"
THREADS = 8
TASK_SEED = 0

OPTIMIZERS = ("bootstrap", "mipro")
LABELS = {"bootstrap": "BootstrapFewShot", "mipro": "MIPROv2"}

#: the settings both tools get (names as in both libraries)
BOOTSTRAP_SETTINGS: dict[str, Any] = {
    "max_bootstrapped_demos": 8,
    "max_labeled_demos": 4,
    "max_rounds": 1,
}
MIPRO_SETTINGS: dict[str, Any] = {
    "auto": "light",
    "max_bootstrapped_demos": 4,
    "max_labeled_demos": 4,
    "seed": 9,
    "init_temperature": 1.0,
    "minibatch_size": 35,
    "minibatch_full_eval_steps": 5,
}


@dataclass(frozen=True)
class Sizes:
    """How many examples each set gets, and how many measured rounds."""

    train: int
    val: int
    dev: int
    rounds: int


FULL = Sizes(train=48, val=100, dev=60, rounds=10)
QUICK = Sizes(train=24, val=20, dev=40, rounds=3)


# --------------------------------------------------------------------------- the server


def operator_world() -> tuple[Any, Any]:
    """The server's responder (an OperatorWorld) and its per-role call counts."""
    from sigforge.testing.tasks import OperatorWorld

    world = OperatorWorld()
    return world.responder, lambda: {"calls": dict(world.calls)}


def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What the server did between two snapshots, with the world's roles."""
    done = between(before, after)
    return {
        "lm_calls": done.pop("requests"),
        "roles": {role: after["calls"][role] - before["calls"][role] for role in after["calls"]},
        **done,
    }


# --------------------------------------------------------------------------- data


def datasets(sizes: Sizes) -> dict[str, list[Any]]:
    """Seeded, disjoint train / val / dev sets of the operator task."""
    from sigforge.testing.tasks import OperatorTask

    task = OperatorTask(seed=TASK_SEED)
    held_out = task.devset(sizes.dev + sizes.val)  # from the back: disjoint from the trainset
    return {
        "train": task.trainset(sizes.train),
        "dev": held_out[: sizes.dev],
        "val": held_out[sizes.dev :],
    }


def write_jsonl(path: Path, examples: list[Any]) -> None:
    lines = [
        json.dumps({"question": e.inputs["question"], "answer": e["answer"]}) for e in examples
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def state_digest(state: Any) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- sigforge's side


class SigforgeSide:
    """sigforge's optimizers in this process, over one LM kept for the whole run."""

    def __init__(self, base_url: str, data: dict[str, list[Any]]) -> None:
        from sigforge.runtime import LM, configure
        from sigforge.testing.tasks import OperatorTask, task_module

        configure(cache=False)
        self.task = OperatorTask(seed=TASK_SEED)
        self.data = data
        self.generated = task_module()
        self.lm = LM(MODEL, base_url=base_url, api_key=API_KEY, cache=False)
        self.last: dict[str, Any] = {}

    def student(self) -> Any:
        return self.generated.Solve(lm=self.lm)

    def compile(self, name: str) -> dict[str, Any]:
        from sigforge.runtime.optimizers import BootstrapFewShot, MIPROv2

        optimizer: BootstrapFewShot | MIPROv2
        if name == "bootstrap":
            optimizer = BootstrapFewShot(
                self.task.metric, num_threads=THREADS, progress=False, **BOOTSTRAP_SETTINGS
            )
            run = lambda: optimizer.compile(self.student(), trainset=self.data["train"])  # noqa: E731
        else:
            optimizer = MIPROv2(
                self.task.metric,
                prompt_model=self.lm,
                num_threads=THREADS,
                progress=False,
                **MIPRO_SETTINGS,
            )
            run = lambda: optimizer.compile(  # noqa: E731
                self.student(), trainset=self.data["train"], valset=self.data["val"]
            )
        wall, cpu = time.perf_counter(), time.process_time()
        compiled = run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        self.last[name] = compiled
        record = compiled.optimization or {}
        state = program_state(compiled)
        return {
            "wall_s": wall,
            "cpu_s": cpu,
            "state": state_digest(state),
            "program": state,
            "best_search_score": record.get("scores", {}).get("best"),
            "own_lm_calls": record.get("lm_calls"),
        }

    def evaluate(self, program: Any) -> float:
        from sigforge.runtime.evaluate import Evaluate

        evaluate = Evaluate(self.data["dev"], self.task.metric, num_threads=THREADS, progress=False)
        return float(evaluate(program).score)

    def load_dspy(self, path: Path) -> Any:
        from sigforge.runtime.dspy_state import load_dspy

        program = self.student()
        load_dspy(program, path)
        return program

    def close(self) -> None:
        self.lm.close()


def program_state(program: Any) -> dict[str, Any]:
    """A predictor's instructions and demos (what an optimizer chooses)."""
    return {
        "instructions": program.instructions,
        "demos": [dict(sorted(dict(demo).items())) for demo in program.dump_state()["demos"]],
    }


# --------------------------------------------------------------------------- DSPy's side

DRIVER = r'''
"""DSPy's side of bench/optimizer_bench.py (written there; run with the DSPy venv).

Reads a config file (argv[1]) and JSON-line commands on stdin, answers each on stdout:
{"cmd": "compile", "optimizer": "bootstrap"|"mipro", "save": path}
{"cmd": "evaluate", "program": "zero-shot"|"bootstrap"|"mipro"}
{"cmd": "quit"}
Everything else DSPy prints goes to stderr.
"""
import hashlib, json, os, sys, time, traceback

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # stay offline
answers = sys.stdout
sys.stdout = sys.stderr

import dspy

config = json.load(open(sys.argv[1], encoding="utf-8"))
dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
lm = dspy.LM(config["model"], api_base=config["api_base"], api_key=config["api_key"], cache=False)
dspy.configure(lm=lm)

signature = (
    dspy.Signature("question: str -> answer: int", config["instructions"])
    .with_updated_fields("question", desc=config["descriptions"]["question"])
    .with_updated_fields("answer", desc=config["descriptions"]["answer"])
)


def load(path):
    with open(path, encoding="utf-8") as lines:
        return [dspy.Example(**json.loads(line)).with_inputs("question") for line in lines if line.strip()]


data = {name: load(path) for name, path in config["data"].items()}


def metric(example, prediction, trace=None):
    return float(getattr(prediction, "answer", None) == example.answer)


def compile_program(name):
    student = dspy.Predict(signature)
    if name == "bootstrap":
        optimizer = dspy.BootstrapFewShot(metric=metric, **config["bootstrap"])
        kwargs = {"trainset": data["train"]}
    else:
        settings = dict(config["mipro"])
        compile_kwargs = {
            key: settings.pop(key)
            for key in ("minibatch_size", "minibatch_full_eval_steps", "num_trials")
            if key in settings
        }
        optimizer = dspy.MIPROv2(
            metric=metric, prompt_model=lm, task_model=lm, num_threads=config["threads"],
            verbose=False, **settings,
        )
        kwargs = {"trainset": data["train"], "valset": data["val"], **compile_kwargs}
    wall, cpu = time.perf_counter(), time.process_time()
    compiled = optimizer.compile(student, **kwargs)
    return compiled, time.perf_counter() - wall, time.process_time() - cpu


programs = {"zero-shot": dspy.Predict(signature)}
for line in sys.stdin:
    command = json.loads(line)
    try:
        if command["cmd"] == "quit":
            break
        if command["cmd"] == "compile":
            compiled, wall, cpu = compile_program(command["optimizer"])
            programs[command["optimizer"]] = compiled
            compiled.save(command["save"])
            state = compiled.dump_state()
            best = getattr(compiled, "score", None)  # MIPROv2's, in percent
            reply = {
                "ok": True, "wall_s": wall, "cpu_s": cpu,
                "best_search_score": None if best is None else float(best) / 100,
            }
        elif command["cmd"] == "evaluate":
            evaluate = dspy.Evaluate(
                devset=data["dev"], metric=metric, num_threads=config["threads"],
                display_progress=False, display_table=False,
            )
            result = evaluate(programs[command["program"]])
            scores = [float(score) for _, _, score in result.results]
            reply = {"ok": True, "score": sum(scores) / len(scores)}
        else:
            reply = {"ok": False, "error": "unknown command " + repr(command)}
    except Exception:
        reply = {"ok": False, "error": traceback.format_exc()}
    answers.write(json.dumps(reply) + "\n")
    answers.flush()
'''


class DspySide:
    """DSPy in its own long-lived process, driven over stdin/stdout."""

    def __init__(
        self, python: Path, base_url: str, folder: Path, data: dict[str, list[Any]], timeout: float
    ) -> None:
        from sigforge.testing.tasks import task_module

        self.folder = folder
        self.timeout = timeout
        signature = task_module().Solve().signature
        files = {}
        for name, examples in data.items():
            files[name] = str(folder / f"{name}.jsonl")
            write_jsonl(Path(files[name]), examples)
        config = {
            "model": MODEL,
            "api_base": base_url,
            "api_key": API_KEY,
            "threads": THREADS,
            "instructions": signature.instructions,
            "descriptions": {
                spec.name: spec.description
                for spec in (*signature.input_fields, *signature.output_fields)
            },
            "data": files,
            "bootstrap": BOOTSTRAP_SETTINGS,
            "mipro": MIPRO_SETTINGS,
        }
        (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
        (folder / "dspy_driver.py").write_text(DRIVER.lstrip(), encoding="utf-8")
        self.log_path = folder / "dspy.log"
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONUNBUFFERED": "1"}
        env.pop("PYTHONPATH", None)
        self._driver = DriverProcess(
            [str(python), str(folder / "dspy_driver.py"), str(folder / "config.json")],
            log=self.log_path, timeout=timeout, cwd=folder, env=env, ready=False,
        )

    def _ask(self, command: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._driver.ask(command)
        except DriverError as exc:
            raise RuntimeError(f"DSPy: {exc}") from exc

    def saved(self, name: str) -> Path:
        return self.folder / f"dspy-{name}.json"

    def compile(self, name: str) -> dict[str, Any]:
        reply = self._ask({"cmd": "compile", "optimizer": name, "save": str(self.saved(name))})
        state = json.loads(self.saved(name).read_text(encoding="utf-8"))
        ours = {
            "instructions": state["signature"]["instructions"],
            "demos": [
                dict(sorted((k, v) for k, v in demo.items() if k != "augmented"))
                for demo in state["demos"]
            ],
        }
        return {
            "wall_s": reply["wall_s"],
            "cpu_s": reply["cpu_s"],
            "state": state_digest(ours),
            "program": ours,
            "best_search_score": reply["best_search_score"],
        }

    def evaluate(self, program: str) -> float:
        return float(self._ask({"cmd": "evaluate", "program": program})["score"])

    def log_tail(self, lines: int = 30) -> str:
        return self._driver.log_tail(lines)

    def close(self) -> None:
        self._driver.close()


def ensure_dspy(venv: Path) -> tuple[Path, str] | None:
    """The DSPy venv's interpreter and DSPy's version; the venv is made on first use (DSPy
    3.4.x and optuna, see bench/_venv.py). None, with a message, when it cannot be."""
    made = ensure_venv(DSPY, venv)
    return None if made is None else (made.python, made.version)


# --------------------------------------------------------------------------- the run


@dataclass
class Samples:
    """Every measured compile of one tool and optimizer."""

    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    lm_calls: list[int] = field(default_factory=list)
    roles: list[dict[str, int]] = field(default_factory=list)
    server_cpu_us: list[float] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    own_lm_calls: list[int | None] = field(default_factory=list)
    best_search_scores: list[float | None] = field(default_factory=list)
    program: dict[str, Any] = field(default_factory=dict)

    def add(self, result: dict[str, Any], server: dict[str, Any]) -> None:
        self.program = result["program"]
        self.best_search_scores.append(result["best_search_score"])
        self.wall_s.append(result["wall_s"])
        self.cpu_s.append(result["cpu_s"])
        self.states.append(result["state"])
        if "own_lm_calls" in result:
            self.own_lm_calls.append(result["own_lm_calls"])
        self.lm_calls.append(server["lm_calls"])
        self.roles.append(server["roles"])
        self.server_cpu_us.append(server["server_cpu_us_per_request"])
        if server["violations"] or server["responder_errors"]:
            self.problems.append(
                f"{server['violations']} wire-format violations, "
                f"{server['responder_errors']} responder errors"
            )

    def report(self) -> dict[str, Any]:
        return {
            "wall_s": summary(self.wall_s),
            "cpu_s": summary(self.cpu_s),
            "lm_calls": summary([float(n) for n in self.lm_calls]),
            "roles": self.roles[-1] if self.roles else {},
            "server_cpu_us_per_request": summary(self.server_cpu_us),
            "same_program_every_round": len(set(self.states)) == 1,
            "best_search_score": self.best_search_scores[-1] if self.best_search_scores else None,
            "final_program": {
                "instructions": self.program.get("instructions"),
                "demos": len(self.program.get("demos", [])),
            },
            "raw": {
                "wall_s": self.wall_s,
                "cpu_s": self.cpu_s,
                "lm_calls": self.lm_calls,
                "roles": self.roles,
                "server_cpu_us_per_request": self.server_cpu_us,
                "states": self.states,
                "own_lm_calls": self.own_lm_calls,
            },
            "problems": self.problems,
        }


@contextlib.contextmanager
def counted(server: ServerProcess) -> Iterator[dict[str, Any]]:
    """What the server did during the block (filled in when the block ends)."""
    out: dict[str, Any] = {}
    before = server.snapshot()
    yield out
    out.update(delta(before, server.snapshot()))


def bench_optimizer(
    name: str,
    rounds: int,
    server: ServerProcess,
    ours: SigforgeSide,
    theirs: DspySide | None,
) -> dict[str, Any]:
    print(f"\n== {LABELS[name]}: warm-up, then {rounds} rounds "
          f"({'sigforge, DSPy, ' * 2 if theirs else 'sigforge, '}...) ==", flush=True)
    samples = {"sigforge": Samples(), "dspy": Samples()}
    sides: list[tuple[str, SigforgeSide | DspySide]] = [("sigforge", ours)]
    if theirs is not None:
        sides.append(("dspy", theirs))
    for rnd in range(-1, rounds):  # round -1: the warm-up
        for tool, side in sides:
            with counted(server) as calls:
                result = side.compile(name)
            if rnd >= 0:
                samples[tool].add(result, calls)
            print(f"  {'warm-up' if rnd < 0 else f'round {rnd + 1}'}: {tool:8s} "
                  f"{result['wall_s']:7.3f} s, {calls['lm_calls']:4d} LM calls", flush=True)
    row: dict[str, Any] = {"sigforge": samples["sigforge"].report()}
    if theirs is not None:
        row["dspy"] = samples["dspy"].report()

    # dev-set scores of the last compiled programs, the same way for both (sigforge's
    # Evaluate on the same server), plus DSPy's own evaluation of its program
    row["sigforge"]["dev_score"] = ours.evaluate(ours.last[name])
    if theirs is not None:
        loaded = ours.load_dspy(theirs.saved(name))
        row["dspy"]["dev_score"] = ours.evaluate(loaded)
        row["dspy"]["dev_score_by_dspy"] = theirs.evaluate(name)
        row["same_program_both_tools"] = program_state(loaded) == program_state(ours.last[name])
        ours_stats, theirs_stats = row["sigforge"], row["dspy"]
        wall_ratio = ours_stats["wall_s"]["median"] / theirs_stats["wall_s"]["median"]
        calls_ours = ours_stats["lm_calls"]["median"]
        calls_theirs = theirs_stats["lm_calls"]["median"]
        row["ratios"] = {
            "wall_time": wall_ratio,
            "paired_wall_time": summary(
                [a / b for a, b in zip(samples["sigforge"].wall_s, samples["dspy"].wall_s, strict=True)]
            ),
            "lm_calls": calls_ours / calls_theirs if calls_theirs else None,
            "client_cpu": ours_stats["cpu_s"]["median"] / theirs_stats["cpu_s"]["median"],
        }
        row["targets"] = {
            "lm_calls_not_more_than_dspy": calls_ours <= calls_theirs,
            "lower_wall_time": wall_ratio < 1.0,
        }
    return row


# --------------------------------------------------------------------------- reporting


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "**missed**")


def fmt_time(st: dict[str, float]) -> str:
    return f"{st['median']:.3f} s ({st['min']:.3f}-{st['max']:.3f})"


def table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| optimizer | wall time sigforge | wall time DSPy | ratio | LM calls sigforge / DSPy "
        "| dev score sigforge / DSPy | targets: calls ≤ DSPy; wall < DSPy |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in results.items():
        ours = row["sigforge"]
        theirs = row.get("dspy")
        calls = f"{ours['lm_calls']['median']:.0f}"
        dev = f"{ours['dev_score']:.2f}"
        if theirs is None:
            lines.append(f"| {LABELS[name]} | {fmt_time(ours['wall_s'])} | — | — | {calls} / — "
                         f"| {dev} / — | — |")
            continue
        targets = row["targets"]
        lines.append(
            f"| {LABELS[name]} | {fmt_time(ours['wall_s'])} | {fmt_time(theirs['wall_s'])} "
            f"| **{row['ratios']['wall_time']:.2f}** | {calls} / {theirs['lm_calls']['median']:.0f} "
            f"| {dev} / {theirs['dev_score']:.2f} "
            f"| {verdict(targets['lm_calls_not_more_than_dspy'])}; "
            f"{verdict(targets['lower_wall_time'])} |"
        )
    return lines


def details(results: dict[str, Any]) -> list[str]:
    lines = []
    for name, row in results.items():
        for tool in ("sigforge", "dspy"):
            stats = row.get(tool)
            if stats is None:
                continue
            roles = ", ".join(f"{k} {v}" for k, v in stats["roles"].items())
            extra = ""
            if tool == "dspy":
                extra = f"; DSPy's own Evaluate: {stats['dev_score_by_dspy']:.2f}"
            lines.append(
                f"{LABELS[name]:16s} {tool:8s} client CPU {stats['cpu_s']['median']:.3f} s, "
                f"server CPU {stats['server_cpu_us_per_request']['median']:.0f} us/request, "
                f"roles: {roles}; same program every round: "
                f"{stats['same_program_every_round']}{extra}"
                + (f"; PROBLEMS: {stats['problems']}" if stats["problems"] else "")
            )
        if "same_program_both_tools" in row:
            lines.append(f"{LABELS[name]:16s} both tools chose the same instructions and demos: "
                         f"{row['same_program_both_tools']}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK.rounds} rounds, {QUICK.train}/{QUICK.val}/{QUICK.dev} "
                        "train/val/dev examples")
    parser.add_argument("--rounds", type=int, help="measured rounds (default "
                        f"{FULL.rounds}, quick {QUICK.rounds})")
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS),
                        help="comma-separated, from: " + ", ".join(OPTIMIZERS))
    parser.add_argument("--mipro-seed", type=int, default=MIPRO_SETTINGS["seed"],
                        help=f"MIPROv2's seed for both tools (default {MIPRO_SETTINGS['seed']}, "
                        "both libraries' default)")
    parser.add_argument("--no-dspy", action="store_true", help="run sigforge's side alone")
    parser.add_argument("--dspy-venv", type=Path, default=DEFAULT_DSPY_VENV,
                        help=f"virtual environment with DSPy 3.4 and optuna "
                        f"(default {DEFAULT_DSPY_VENV}; made when missing)")
    parser.add_argument("--server-lifetime", type=float, default=1800.0,
                        help="seconds after which the server stops itself (default 1800)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds one DSPy command may take (default 600)")
    parser.add_argument("--out", type=Path, help="results file (default "
                        "bench/results/optimizers-<date>.json)")
    parser.add_argument("--note", default="", help="free text stored in the results")
    args = parser.parse_args()
    names = [n for n in args.optimizers.split(",") if n]
    unknown = sorted(set(names) - set(OPTIMIZERS))
    if unknown:
        parser.error(f"unknown optimizers: {', '.join(unknown)}")
    sizes = QUICK if args.quick else FULL
    MIPRO_SETTINGS["seed"] = args.mipro_seed
    rounds = args.rounds if args.rounds is not None else sizes.rounds
    if rounds < 1:
        parser.error("--rounds must be at least 1")

    dspy = None if args.no_dspy else ensure_dspy(args.dspy_venv.expanduser())
    load_before = os.getloadavg()
    started = time.perf_counter()
    repo_git = git_state()
    server = ServerProcess(operator_world, args.server_lifetime, api_key=API_KEY)
    folder = Path(tempfile.mkdtemp(prefix="sigforge-optimizer-bench-"))
    data = datasets(sizes)
    ours = SigforgeSide(server.base_url, data)
    theirs = None
    results: dict[str, Any] = {}
    final = None
    try:
        if dspy is not None:
            theirs = DspySide(dspy[0], server.base_url, folder, data, args.timeout)
        print(f"sigforge vs DSPy {dspy[1] if dspy else '(not run)'}; "
              f"{len(data['train'])}/{len(data['val'])}/{len(data['dev'])} train/val/dev examples; "
              f"{THREADS} threads; server {server.base_url}", flush=True)
        zero_shot = {"sigforge": ours.evaluate(ours.student())}
        if theirs is not None:
            zero_shot["dspy"] = theirs.evaluate("zero-shot")
        print("zero-shot dev score: " + ", ".join(f"{k} {v:.2f}" for k, v in zero_shot.items()),
              flush=True)
        for name in names:
            results[name] = bench_optimizer(name, rounds, server, ours, theirs)
    except BaseException:
        if theirs is not None:
            print(f"DSPy driver log ({theirs.log_path}):\n{theirs.log_tail()}", file=sys.stderr)
        failed = True
        raise
    else:
        failed = False
    finally:
        ours.close()
        if theirs is not None:
            theirs.close()
        final = server.stop()
        if not failed:  # on failure the driver, its config, data and log stay for a look
            shutil.rmtree(folder, ignore_errors=True)

    print()
    for line in [*table(results), "", *details(results)]:
        print(line)
    report = {
        "benchmark": "optimizer_bench",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "seconds": time.perf_counter() - started,
        "machine": {"cpu_count": os.cpu_count(), "cpu": cpu_model(),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "versions": {"dspy": dspy[1] if dspy else None,
                     "dspy_python": str(dspy[0]) if dspy else None,
                     "repo_git_at_start": repo_git},
        "settings": {"task_seed": TASK_SEED, "model": MODEL, "threads": THREADS,
                     "rounds": rounds, "quick": args.quick,
                     "train": len(data["train"]), "val": len(data["val"]),
                     "dev": len(data["dev"]),
                     "bootstrap": BOOTSTRAP_SETTINGS, "mipro": MIPRO_SETTINGS},
        "targets": {"lm_calls": "sigforge median <= DSPy median",
                    "wall_time": "sigforge median < DSPy median"},
        "zero_shot_dev_score": zero_shot,
        "server_total": final,
        "note": args.note,
        "optimizers": results,
        "table": table(results),
    }
    path = args.out or new_results_path("optimizers-")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(f"\nresults: {shown}")


if __name__ == "__main__":
    main()
