"""Code generation at scale: `sigforge generate` against BAML's `baml-cli generate`.

For each size N (default 10, 100 and 1000 signatures, ten per file) the script writes two
equivalent projects into a work folder and times both generators on them, each command a
fresh process (wall time, output captured):

- a sigforge project, `src/m<i>.sig`: per signature a docstring, 2-3 inputs
  (`str`, `list[str] (min_items=1)`), 3 outputs (`str` with a description, `float` with
  `ge`/`le`, `Literal["a", "b", "c"]`) and one predictor, alternately `predict` and
  `chain_of_thought`;
- a BAML project, `baml_src/m<i>.baml`: per signature a `class <Name>Output` (with a
  `reasoning` field where sigforge's predictor is chain_of_thought, a range `@assert` for
  the float) and a `function <Name>(...) -> <Name>Output` with the same inputs and a
  prompt; `baml_src/main.baml` holds one openai-generic `client<llm>` and one
  `generator` (python/pydantic). No test blocks.

`--with-classes` adds `common.sig` / `common.baml` with one class (`Citation`) and one enum
(`Priority`) that every file imports and uses as output types.

Cases, run alternately sigforge, BAML, sigforge, BAML, ... after one warm-up round:

    full          build into an empty output folder
    noop          build again, nothing changed
    touch_comment build after appending a comment to one source file (m0)
    touch_desc    build after changing one output field's description in m0

Reported per case: median, min and max seconds over `--rounds` rounds, and the ratio
sigforge / BAML of the medians (below 1: sigforge is faster). Then, per size, the import
time of one generated module in a fresh process (`python -c "import gen.m0"`, and for BAML,
which generates one package for the whole project, `import baml_client`), with the
interpreter start-up (`python -c pass`) measured alongside: "process" is the wall time of
the whole process, "net" is that minus the start-up median. Last, the size of the generated
code (Python files, lines, bytes; `__pycache__` excluded). Timed processes run without
PYTHONDONTWRITEBYTECODE, so the warm-up round leaves .pyc files as on a usual machine.

Targets (checked at N=1000): full build no slower than BAML's in the same run and under
3 s; rebuild after touching one file under 0.3 s; importing one generated module in a
fresh process under 0.5 s.

BAML runs from its own virtual environment outside the repository (default
`~/.cache/sigforge-bench/venvs/baml`), created on first use by bench/_venv.py with `pip install
baml-py pydantic` (the generated client imports pydantic); the version installed is recorded
(and pinned in the venv folder for later runs). Once it exists the benchmark needs no
network. When it cannot be installed, BAML is skipped with a message, as with `--no-baml`.

    python bench/codegen_scale.py [--sizes 10,100,1000] [--rounds 5] [--timeout 300]
                                  [--no-baml] [--with-classes] [--keep] [--workdir DIR]
                                  [--sigforge-venv DIR] [--baml-venv DIR] [--baml-version X.Y.Z]
                                  [--out FILE]

`--sigforge-venv` measures the sigforge installed in another venv (for instance a release or
a fixed commit installed with pip) instead of the one running the script; generated modules
are imported with that venv's interpreter too.

Results: a table on stdout and `bench/results/codegen-<YYYY-MM-DD>.json` (`-2`, `-3`, ... for
later runs of the same day; machine, load average, versions, the repo commit at the start,
raw samples, summaries, targets).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _stats import new_results_path, summary
from _venv import BAML, capture, ensure_venv

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BAML_VENV = BAML.default_venv

PER_FILE = 10
CASES = ("full", "noop", "touch_comment", "touch_desc")
TARGET_FULL_S = 3.0
TARGET_INCREMENTAL_S = 0.3
TARGET_IMPORT_S = 0.5
TARGET_SIZE = 1000

#: Environment of every timed process. PYTHONDONTWRITEBYTECODE is dropped so that, as on a
#: usual machine, the warm-up round leaves .pyc files and later rounds start from them.
TIMED_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


# --------------------------------------------------------------------------- the projects


@dataclass(frozen=True)
class Theme:
    """What one kind of signature is about: names, instructions and field descriptions."""

    task: str
    agent: str
    instructions: str
    question: str
    context: str
    answer: str


THEMES = (
    Theme("AnswerQuestion", "Answerer",
          "Answer the question using only the given context.\n"
          "Be concise and accurate; say so when the context does not contain the answer.",
          "The user's question", "Relevant passages, most relevant first",
          "A short factoid answer"),
    Theme("SummarizeTicket", "TicketSummarizer",
          "Summarize the support ticket for the on-call engineer.\n"
          "Keep error messages and version numbers verbatim.",
          "What the engineer wants to know about the ticket", "The ticket's messages, oldest first",
          "A summary of at most three sentences"),
    Theme("ClassifyReview", "ReviewClassifier",
          "Classify the product review by the issue it reports.",
          "The review to classify", "Reviews already classified, as examples",
          "The main issue, in a few words"),
    Theme("ExtractInvoiceTotal", "InvoiceReader",
          "Extract the amount due from the invoice text.\n"
          "Give the amount with its currency, as written on the invoice.",
          "Which amount to extract", "Lines of the invoice, top to bottom",
          "The amount due with its currency"),
    Theme("RewriteQuery", "QueryRewriter",
          "Rewrite the search query so that a keyword search engine finds the passages "
          "that answer it.",
          "The query as the user typed it", "Earlier turns of the conversation",
          "The rewritten query"),
    Theme("CheckClaim", "ClaimChecker",
          "Decide whether the passages support the claim. Quote the sentence that decides it.",
          "The claim to check", "Passages retrieved for the claim",
          "The sentence that supports or contradicts the claim"),
    Theme("DraftReply", "ReplyDrafter",
          "Draft a polite reply to the customer's e-mail.\n"
          "Do not promise refunds or dates.",
          "The customer's e-mail", "Facts about the customer's account",
          "The reply, ready to send"),
    Theme("TranslateSnippet", "SnippetTranslator",
          "Translate the snippet into English, keeping product names untranslated.",
          "The snippet to translate", "A glossary of product names, one per line",
          "The English translation"),
    Theme("RouteRequest", "RequestRouter",
          "Pick the team that should handle the request and explain the choice in a phrase.",
          "The request as received", "Descriptions of the teams, one per team",
          "The team's name"),
    Theme("ExplainError", "ErrorExplainer",
          "Explain the error message to a non-expert and suggest one next step.",
          "The error message", "Log lines around the error",
          "A plain-language explanation"),
)

CONFIDENCE = "How sure the model is, from 0 to 1"
AUDIENCE = "Who will read the answer"
REASONING = "Step-by-step reasoning before the answer"
CITATIONS = "Passages the answer relies on"
PRIORITY = "How urgently a human should review the result"


@dataclass(frozen=True)
class Sig:
    """One signature of a generated project, and everything both renderings need."""

    name: str
    predictor: str
    theme: Theme
    audience: bool  # a third input on every other signature
    cot: bool  # chain_of_thought (else predict)


def signatures_of_file(index: int) -> list[Sig]:
    sigs = []
    for j in range(PER_FILE):
        g = index * PER_FILE + j
        theme = THEMES[j % len(THEMES)]
        sigs.append(Sig(f"{theme.task}{g:04d}", f"{theme.agent}{g:04d}", theme,
                        audience=g % 2 == 1, cot=g % 2 == 0))
    return sigs


def sig_file(index: int, n: int, with_classes: bool) -> str:
    lines = [
        f'"""Benchmark module m{index}: {PER_FILE} signatures of a support assistant."""',
        "",
        f"# Written by bench/codegen_scale.py for a project of {n} signatures.",
        "",
    ]
    if with_classes:
        lines += ["from common import Citation, Priority", ""]
    for s in signatures_of_file(index):
        doc = "\n".join(f"    {line}" for line in s.theme.instructions.splitlines())
        lines += [f"signature {s.name} {{", '    """', doc, '    """']
        lines.append(f'    in  question: str                            "{s.theme.question}"')
        lines.append(f'    in  context: list[str]   (min_items=1)       "{s.theme.context}"')
        if s.audience:
            lines.append(f'    in  audience: str                            "{AUDIENCE}"')
        lines.append(f'    out answer: str                              "{s.theme.answer}"')
        lines.append(f'    out confidence: float    (ge=0.0, le=1.0)    "{CONFIDENCE}"')
        lines.append('    out label: Literal["a", "b", "c"]')
        if with_classes:
            lines.append(f'    out citations: list[Citation]                "{CITATIONS}"')
            lines.append(f'    out priority: Priority                       "{PRIORITY}"')
        lines += ["}", ""]
        kind = "chain_of_thought" if s.cot else "predict"
        lines += [f"predictor {s.predictor} = {kind}({s.name})", ""]
    return "\n".join(lines)


SIG_COMMON = '''"""Types shared by every module of the benchmark project."""

class Citation {
    """A passage the answer relies on."""
    source: str                          "Where the passage comes from"
    quote: str       (max_length=300)    "The passage, quoted"
}

enum Priority {
    """How urgently a human should look at the case."""
    low       "Can wait"
    medium    "Within a day"
    high      "Drop everything"
}
'''


def baml_main(version: str) -> str:
    return f'''// Written by bench/codegen_scale.py.

client<llm> BenchClient {{
  provider "openai-generic"
  options {{
    base_url "http://127.0.0.1:8000/v1"
    model "gpt-4o-mini"
    api_key env.OPENAI_API_KEY
  }}
}}

generator target {{
  output_type "python/pydantic"
  output_dir "../out"
  version "{version}"
  default_client_mode "sync"
}}
'''


def baml_file(index: int, n: int, with_classes: bool) -> str:
    lines = [f"// Benchmark module m{index}, written by bench/codegen_scale.py "
             f"for a project of {n} functions.", ""]
    for s in signatures_of_file(index):
        lines.append(f"class {s.name}Output {{")
        if s.cot:
            lines.append(f'  reasoning string @description("{REASONING}")')
        lines.append(f'  answer string @description("{s.theme.answer}")')
        lines.append(f'  confidence float @description("{CONFIDENCE}") '
                     "@assert(confidence_range, {{ this >= 0.0 and this <= 1.0 }})")
        lines.append('  label "a" | "b" | "c"')
        if with_classes:
            lines.append(f'  citations Citation[] @description("{CITATIONS}")')
            lines.append(f'  priority Priority @description("{PRIORITY}")')
        lines += ["}", ""]
        params = "question: string, context: string[]" + (", audience: string" if s.audience else "")
        lines.append(f"function {s.name}({params}) -> {s.name}Output {{")
        lines.append("  client BenchClient")
        lines.append('  prompt #"')
        lines += [f"    {line}" for line in s.theme.instructions.splitlines()]
        lines += [
            "",
            '    {{ _.role("user") }}',
            "    Question: {{ question }}",
            "    Context:",
            "    {% for passage in context %}",
            "    - {{ passage }}",
            "    {% endfor %}",
        ]
        if s.audience:
            lines.append("    Audience: {{ audience }}")
        lines += ["", "    {{ ctx.output_format }}", '  "#', "}", ""]
    return "\n".join(lines)


BAML_COMMON = """// Types shared by every module of the benchmark project.

class Citation {
  source string @description("Where the passage comes from")
  quote string @description("The passage, quoted")
}

enum Priority {
  LOW @description("Can wait")
  MEDIUM @description("Within a day")
  HIGH @description("Drop everything")
}
"""


def write_sig_project(src: Path, n: int, with_classes: bool) -> None:
    src.mkdir(parents=True)
    for i in range(n // PER_FILE):
        (src / f"m{i}.sig").write_text(sig_file(i, n, with_classes), encoding="utf-8")
    if with_classes:
        (src / "common.sig").write_text(SIG_COMMON, encoding="utf-8")


def write_baml_project(src: Path, n: int, with_classes: bool, version: str) -> None:
    src.mkdir(parents=True)
    (src / "main.baml").write_text(baml_main(version), encoding="utf-8")
    for i in range(n // PER_FILE):
        (src / f"m{i}.baml").write_text(baml_file(i, n, with_classes), encoding="utf-8")
    if with_classes:
        (src / "common.baml").write_text(BAML_COMMON, encoding="utf-8")


# --------------------------------------------------------------------------- running


class CommandError(Exception):
    """A timed command failed or ran past its timeout."""


def run_timed(cmd: list[str], cwd: Path, timeout: float) -> float:
    """Wall time of one fresh process; raises CommandError on a non-zero exit or a timeout."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=TIMED_ENV, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise CommandError(f"timed out after {timeout:g} s: {shlex.join(cmd)}") from exc
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        output = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        tail = "\n".join(f"    {line}" for line in output[-15:])
        raise CommandError(f"exit {proc.returncode}: {shlex.join(cmd)} (in {cwd})\n{tail}")
    return elapsed


@dataclass
class Project:
    """One tool's project at one size, and how to put it in the state each case needs."""

    tool: str
    root: Path
    command: list[str]
    out_dir: Path  # removed before a full build
    touched: Path  # the source file the touch cases change
    comment: str  # how a line comment starts in this language
    description: str  # an output description in `touched`, changed by touch_desc
    original: str = ""
    error: str | None = None
    samples: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CASES})

    def __post_init__(self) -> None:
        self.original = self.touched.read_text(encoding="utf-8")
        if f'"{self.description}"' not in self.original:
            raise ValueError(f"{self.touched} has no description {self.description!r}")

    def prepare(self, case: str, tag: str) -> None:
        if case == "full":
            self.touched.write_text(self.original, encoding="utf-8")
            shutil.rmtree(self.out_dir, ignore_errors=True)
        elif case == "touch_comment":
            with self.touched.open("a", encoding="utf-8") as fh:
                fh.write(f"\n{self.comment} touched in {tag}\n")
        elif case == "touch_desc":
            text = self.touched.read_text(encoding="utf-8")
            old = f'"{self.description}"'
            new = f'"{self.description}, revised in {tag}"'
            self.touched.write_text(text.replace(old, new, 1), encoding="utf-8")


def sigforge_python(venv: Path | None) -> str:
    """The interpreter that runs sigforge and imports its generated code."""
    return str(venv / "bin" / "python") if venv else sys.executable


def sigforge_command(venv: Path | None) -> list[str]:
    script = Path(sigforge_python(venv)).with_name("sigforge")
    if script.exists():
        return [str(script)]
    return [sigforge_python(venv), "-m", "sigforge.codegen"]


def check_output(project: Project, n_files: int) -> None:
    """After the warm-up full build: the generators really wrote the projects."""
    if project.tool == "sigforge":
        missing = [i for i in range(n_files) if not (project.out_dir / f"m{i}.py").is_file()]
        if missing:
            raise CommandError(f"sigforge wrote no module for m{missing[0]}.sig "
                               f"({len(missing)} missing) in {project.out_dir}")
    elif not (project.out_dir / "baml_client" / "__init__.py").is_file():
        raise CommandError(f"baml-cli wrote no baml_client package in {project.out_dir}")


def run_cases(projects: list[Project], rounds: int, timeout: float, n_files: int) -> None:
    """Warm-up round, then `rounds` rounds; within a round each case runs A B A B ..."""
    for rnd in range(-1, rounds):
        tag = "warm-up" if rnd < 0 else f"round {rnd + 1}"
        print(f"  {tag}:", end="", flush=True)
        for case in CASES:
            for p in projects:
                if p.error:
                    continue
                p.prepare(case, tag)
                try:
                    seconds = run_timed(p.command, p.root, timeout)
                    if rnd < 0 and case == "full":
                        check_output(p, n_files)
                except CommandError as exc:
                    p.error = str(exc)
                    print(f"\n  {p.tool} skipped from here at this size: {exc}", flush=True)
                    continue
                if rnd >= 0:
                    p.samples[case].append(seconds)
                print(f" {p.tool[:3]}:{case}={seconds:.2f}s", end="", flush=True)
        print(flush=True)


def time_imports(specs: dict[str, tuple[list[str], Path]], rounds: int,
                 timeout: float) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Fresh-process wall times of each (command, cwd), alternated, after one warm-up."""
    samples: dict[str, list[float]] = {name: [] for name in specs}
    errors: dict[str, str] = {}
    for rnd in range(-1, rounds):
        for name, (cmd, cwd) in specs.items():
            if name in errors:
                continue
            try:
                seconds = run_timed(cmd, cwd, timeout)
            except CommandError as exc:
                errors[name] = str(exc)
                print(f"  import case {name} skipped: {exc}", flush=True)
                continue
            if rnd >= 0:
                samples[name].append(seconds)
    return samples, errors


def code_size(folder: Path, suffix: str) -> dict[str, int]:
    files = [p for p in folder.rglob(f"*{suffix}") if p.is_file() and "__pycache__" not in p.parts]
    data = [p.read_bytes() for p in files]
    return {"files": len(files), "lines": sum(d.count(b"\n") for d in data),
            "bytes": sum(len(d) for d in data)}


# --------------------------------------------------------------------------- the BAML peer


def ensure_baml(venv: Path, wanted: str | None) -> tuple[Path, str] | None:
    """`baml-cli` from BAML's isolated venv and the baml-py version; None (with a message)
    if it cannot be made (see bench/_venv.py)."""
    made = ensure_venv(BAML, venv, wanted)
    return None if made is None else (made.script("baml-cli"), made.version)


# --------------------------------------------------------------------------- reporting


def fmt_stats(st: dict[str, float] | None) -> str:
    if not st:
        return "—"
    return f"{st['median']:7.3f} ({st['min']:.3f}-{st['max']:.3f})"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def case_target(case: str, sig: dict[str, float] | None,
                baml: dict[str, float] | None) -> tuple[str, bool | None]:
    """The target text for a case at N=1000, and whether the medians meet it."""
    if case == "full":
        text = f"<= BAML and < {TARGET_FULL_S:g} s"
        if sig is None:
            return text, None
        ok = sig["median"] < TARGET_FULL_S and (baml is None or sig["median"] <= baml["median"])
        return text + ("" if baml else " (no BAML run)"), ok
    if case.startswith("touch"):
        text = f"< {TARGET_INCREMENTAL_S:g} s"
        return text, None if sig is None else sig["median"] < TARGET_INCREMENTAL_S
    return "", None


def git_state() -> dict[str, Any]:
    head = capture(["git", "-C", str(ROOT), "rev-parse", "HEAD"])
    dirty = capture(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    return {"commit": head, "dirty": bool(dirty)}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def paired_ratios(a: list[float], b: list[float]) -> list[float]:
    return [x / y for x, y in zip(a, b, strict=False)]


# --------------------------------------------------------------------------- main


def bench_size(n: int, base: Path, args: argparse.Namespace,
               baml: tuple[Path, str] | None) -> dict[str, Any]:
    n_files = n // PER_FILE
    print(f"\n== {n} signatures in {n_files} files "
          f"({'with' if args.with_classes else 'without'} class/enum) ==", flush=True)
    folder = base / f"n{n}"
    shutil.rmtree(folder, ignore_errors=True)
    sig_root, baml_root = folder / "sigforge", folder / "baml"
    write_sig_project(sig_root / "src", n, args.with_classes)
    first = THEMES[0].answer
    sig_cmd = [*sigforge_command(args.sigforge_venv), "generate", "--src", "src", "--out", "gen"]
    projects = [Project("sigforge", sig_root, sig_cmd, sig_root / "gen", sig_root / "src" / "m0.sig", "#", first)]
    if baml:
        cli, version = baml
        write_baml_project(baml_root / "baml_src", n, args.with_classes, version)
        projects.append(Project("baml", baml_root, [str(cli), "generate", "--from", "baml_src"],
                                baml_root / "out", baml_root / "baml_src" / "m0.baml", "//",
                                first))
    run_cases(projects, args.rounds, args.timeout, n_files)

    result: dict[str, Any] = {"signatures": n, "files": n_files, "cases": {}, "errors": {}}
    by_tool = {p.tool: p for p in projects}
    for p in projects:
        if p.error:
            result["errors"][p.tool] = p.error
    for case in CASES:
        entry: dict[str, Any] = {}
        for p in projects:
            if p.samples[case]:
                entry[p.tool] = {"samples": p.samples[case], **summary(p.samples[case])}
        if "sigforge" in entry and "baml" in entry:
            entry["ratio_of_medians"] = entry["sigforge"]["median"] / entry["baml"]["median"]
            pairs = paired_ratios(by_tool["sigforge"].samples[case], by_tool["baml"].samples[case])
            entry["paired_ratios"] = pairs
            entry["median_paired_ratio"] = statistics.median(pairs)
        result["cases"][case] = entry

    src_sizes = {"sigforge": code_size(sig_root / "src", ".sig")}
    out_sizes: dict[str, dict[str, int]] = {}
    if not by_tool["sigforge"].error:
        out_sizes["sigforge"] = code_size(sig_root / "gen", ".py")
    if baml:
        src_sizes["baml"] = code_size(baml_root / "baml_src", ".baml")
        if not by_tool["baml"].error:
            out_sizes["baml"] = code_size(baml_root / "out", ".py")
    result["source_size"] = src_sizes
    result["generated_size"] = out_sizes

    specs: dict[str, tuple[list[str], Path]] = {}
    if not by_tool["sigforge"].error:
        python = sigforge_python(args.sigforge_venv)
        specs["startup"] = ([python, "-c", "pass"], sig_root)
        specs["sigforge: import gen.m0"] = ([python, "-c", "import gen.m0"], sig_root)
    if baml and not by_tool["baml"].error:
        baml_python = str(baml[0].with_name("python"))
        specs["baml startup"] = ([baml_python, "-c", "pass"], baml_root / "out")
        specs["baml: import baml_client"] = ([baml_python, "-c", "import baml_client"],
                                             baml_root / "out")
    imports: dict[str, Any] = {}
    if specs:
        print(f"  imports ({args.import_rounds} rounds) ...", flush=True)
        samples, errors = time_imports(specs, args.import_rounds, args.timeout)
        stats: dict[str, dict[str, Any]] = {
            name: {"samples": s, **summary(s)} for name, s in samples.items() if s
        }
        for name, start in (("sigforge: import gen.m0", "startup"),
                            ("baml: import baml_client", "baml startup")):
            if name in stats and start in stats:
                stats[name]["net_median"] = stats[name]["median"] - stats[start]["median"]
        imports = {"cases": stats, "errors": errors}
    result["imports"] = imports
    return result


def print_size(res: dict[str, Any]) -> list[str]:
    """Print one size's table; returns the lines of target verdicts (N=1000 only)."""
    n = res["signatures"]
    verdicts: list[str] = []
    print(f"\n{n} signatures, {res['files']} files — seconds per fresh process, "
          "median (min-max)")
    print(f"  {'case':<14} {'sigforge':>24} {'baml-cli generate':>24} {'ratio':>6}  target")
    for case in CASES:
        entry = res["cases"].get(case, {})
        sig, baml = entry.get("sigforge"), entry.get("baml")
        r = entry.get("ratio_of_medians")
        target, ok = case_target(case, sig, baml) if n == TARGET_SIZE else ("", None)
        mark = "" if ok is None else f" {verdict(ok)}"
        print(f"  {case:<14} {fmt_stats(sig):>24} {fmt_stats(baml):>24} "
              f"{'—' if r is None else f'{r:.2f}':>6}  {target}{mark}")
        if ok is not None:
            verdicts.append(f"{case}: sigforge median {sig['median']:.3f} s, target {target}: "
                            f"{verdict(ok)}" if sig else f"{case}: no sigforge samples")
    for name, st in res["imports"].get("cases", {}).items():
        net = st.get("net_median")
        extra = "" if net is None else f"  net {net * 1000:.0f} ms"
        line = (f"  {name:<26} {st['median'] * 1000:6.0f} ms "
                f"(min {st['min'] * 1000:.0f}, max {st['max'] * 1000:.0f}){extra}")
        if n == TARGET_SIZE and name.startswith("sigforge"):
            ok = st["median"] < TARGET_IMPORT_S
            line += f"  target < {TARGET_IMPORT_S:g} s per process: {verdict(ok)}"
            verdicts.append(f"import gen.m0: {st['median']:.3f} s per process "
                            f"(net {net or 0:.3f} s), target < {TARGET_IMPORT_S:g} s: "
                            f"{verdict(ok)}")
        print(line)
    for tool, sizes in res["generated_size"].items():
        src = res["source_size"].get(tool, {})
        print(f"  {tool:<9} generated: {sizes['files']:4d} .py files, {sizes['lines']:7d} lines, "
              f"{sizes['bytes'] / 1024:8.0f} KiB   (source: {src.get('files', 0)} files, "
              f"{src.get('lines', 0)} lines)")
    for tool, err in res["errors"].items():
        print(f"  {tool} FAILED: {err.splitlines()[0]}")
    return verdicts


def parse_sizes(text: str) -> list[int]:
    sizes = [int(s) for s in text.split(",") if s.strip()]
    if not sizes or any(s < PER_FILE or s % PER_FILE for s in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be positive multiples of {PER_FILE}")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=[10, 100, 1000],
                        help="numbers of signatures, comma-separated (default 10,100,1000)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--import-rounds", type=int, default=20,
                        help="measured rounds of the import timings (default 20)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds before one command is killed and its tool skipped")
    parser.add_argument("--no-baml", action="store_true", help="time sigforge alone")
    parser.add_argument("--with-classes", action="store_true",
                        help="add common.sig with a class and an enum used by every file")
    parser.add_argument("--keep", action="store_true", help="keep the generated projects")
    parser.add_argument("--workdir", type=Path, help="where to write the projects "
                        "(default: a new temporary folder)")
    parser.add_argument("--sigforge-venv", type=Path,
                        help="virtual environment whose sigforge to measure (default: the one "
                        "running this script)")
    parser.add_argument("--baml-venv", type=Path, default=DEFAULT_BAML_VENV,
                        help=f"virtual environment with baml-py (default {DEFAULT_BAML_VENV})")
    parser.add_argument("--baml-version", help="baml-py version to install into a new venv "
                        "(default: the pinned one, else the latest)")
    parser.add_argument("--note", default="", help="free text stored in the results, e.g. "
                        "which commit --sigforge-venv holds")
    parser.add_argument("--out", type=Path, help="results file (default "
                        "bench/results/codegen-<date>.json)")
    args = parser.parse_args()
    if args.sigforge_venv:
        args.sigforge_venv = args.sigforge_venv.expanduser().resolve()

    baml = None if args.no_baml else ensure_baml(args.baml_venv.expanduser(), args.baml_version)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        base = Path(tempfile.mkdtemp(prefix="codegen-scale-", dir=args.workdir.resolve()))
    else:
        base = Path(tempfile.mkdtemp(prefix="sigforge-codegen-scale-"))
    print(f"projects in {base}", flush=True)
    sigforge_version = capture([*sigforge_command(args.sigforge_venv), "--version"])
    print(f"{sigforge_version}; baml-py {baml[1] if baml else '(not run)'}; "
          f"{os.cpu_count()} CPUs; Python {platform.python_version()}", flush=True)

    load_before = os.getloadavg()
    repo_git = git_state()
    results: list[dict[str, Any]] = []
    try:
        for n in args.sizes:
            results.append(bench_size(n, base, args, baml))
    finally:
        if args.keep:
            print(f"\nprojects kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    verdicts: list[str] = []
    for res in results:
        verdicts += print_size(res)
    if verdicts:
        print(f"\nTargets at {TARGET_SIZE} signatures:")
        for line in verdicts:
            print(f"  {line}")

    report = {
        "benchmark": "codegen_scale",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": {"cpu_count": os.cpu_count(), "cpu": cpu_model(),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "versions": {"sigforge": sigforge_version, "baml-py": baml[1] if baml else None,
                     "sigforge_python": sigforge_python(args.sigforge_venv),
                     "sigforge_location": capture([sigforge_python(args.sigforge_venv), "-c",
                                                   "import sigforge.codegen as c; print(c.__file__)"]),
                     "repo_git_at_start": repo_git},
        "settings": {"sizes": args.sizes, "rounds": args.rounds,
                     "import_rounds": args.import_rounds, "timeout_s": args.timeout,
                     "with_classes": args.with_classes, "per_file": PER_FILE,
                     "dropped_env": sorted(set(os.environ) - set(TIMED_ENV))},
        "targets": {"full_s": TARGET_FULL_S, "full_vs_baml": "sigforge median <= baml median",
                    "incremental_s": TARGET_INCREMENTAL_S, "import_process_s": TARGET_IMPORT_S,
                    "at_signatures": TARGET_SIZE, "verdicts": verdicts},
        "note": args.note,
        "sizes": results,
    }
    path = args.out or new_results_path("codegen-")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    print(f"\nresults: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
