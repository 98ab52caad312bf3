"""The side-by-side benchmark's workers: one long-lived process per tool, in its own venv.

``bench/run.py`` measures sigforge against DSPy and BAML in the same run. Each tool runs
in a process of its own, started with the interpreter of the tool's venv (sigforge and
the raw-httpx baselines with the repository's, DSPy and BAML with theirs, see
bench/_venv.py), so that no tool's imports, threads or garbage weigh on another's
figures, and each sample is timed inside the process doing the work:

    <venv>/bin/python bench/_drivers.py TOOL CONFIG.json

``TOOL`` is ``sigforge``, ``raw`` (httpx and aiohttp by hand, the ceiling), ``dspy`` or
``baml``. The worker reads one JSON command per line on stdin and writes one JSON reply
per line on stdout (``{"ok": true, ...}`` or ``{"ok": false, "error": traceback}``);
everything else it or its tool prints goes to stderr, which the benchmark sends to a
log file. Commands (each tool answers those it has a side in):

* ``{"cmd": "calls", "case": CASE, "n": N}``: N predictions with an LM that answers
  instantly in-process (no HTTP, caches off); ``{"us_per_call": ...}``. A CASE names
  the module (``predict`` / ``cot``), the format (``chat`` / ``json``), the number of
  demos (0 / 3) and the signature (``simple`` / ``complex``); the predictor is built on
  first use and kept.
* ``{"cmd": "signature", "kind": "string" | "class", "shape": ..., "n": N}`` (DSPy):
  N constructions of a signature; ``{"us_per_construction": ...}``.
* ``{"cmd": "http", "mode": "sequential" | "threads" | "asyncio", "concurrency": K,
  "n": N, "base_url": URL, "variant": ...}``: N predictions against the loopback server;
  ``{"wall_s": ..., "cpu_s": ...}`` (this process's CPU time).
* ``{"cmd": "memory", "n": N, "warmup": W}``: RSS before and after N sequential
  predictions with the in-process LM (sent to a fresh worker).
* ``{"cmd": "quit"}``.

This module imports only the standard library at the top: the shared fixtures below
(inputs, outputs, demos and the replies built from them) are read by every tool's
worker, whatever its venv, and by ``bench/call_overhead.py``. :class:`DriverProcess`
is the benchmark's end of the pipe.
"""

# No `from __future__ import annotations` here: DSPy and pydantic read the annotations of
# the signature classes below at run time, and need them evaluated.

import asyncio
import contextlib
import gc
import json
import os
import select
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

#: the model name every HTTP client asks for (one DSPy's price table knows)
MODEL = "openai/gpt-4o-mini"
#: the name DSPy is also measured with, which no price table knows
UNKNOWN_MODEL = "openai/sigforge-bench-unlisted"
API_KEY = "sk-bench"
HISTORY_LIMIT = 200

# --------------------------------------------------------------------------- fixtures

#: the simple signature: generated.qa's AnswerQuestion (2 inputs, 2 outputs)
SIMPLE: dict[str, Any] = {
    "instructions": "Answer the question using only the given context.\nBe concise and accurate.",
    "inputs": {
        "context": ["Dune is a 1965 novel by Frank Herbert."],
        "question": "Who wrote Dune?",
    },
    "outputs": {"answer": "Frank Herbert", "confidence": 0.9},
    "reasoning": "The passage names him.",
    "demos": [
        {"context": ["Berlin is the capital of Germany."], "question": "Capital of Germany?",
         "answer": "Berlin", "confidence": 0.95},
        {"context": ["Rome is the capital of Italy."], "question": "Capital of Italy?",
         "answer": "Rome", "confidence": 0.9},
        {"context": ["Madrid is the capital of Spain."], "question": "Capital of Spain?",
         "answer": "Madrid", "confidence": 0.92},
    ],
}

#: the complex signature: 8 fields (3 in, 5 out), a nested class, lists and Literals
COMPLEX_SIG = '''"""The complex signature of the side-by-side benchmark (bench/run.py)."""

class Party {
    """Someone the ticket mentions."""
    name: str                                    "The party's name"
    role: Literal["customer", "vendor", "staff"] "How the party relates to the ticket"
}

class Finding {
    """What the ticket is about."""
    title:   str           "One-line summary"
    parties: list[Party]   "Who is involved"
    amounts: list[float]   "Amounts of money mentioned"
}

signature ReviewTicket {
    """
    Review the support ticket and extract what the team needs to act on it.
    """
    in  ticket:   str                                    "The ticket's text"
    in  history:  list[str]                              "Earlier messages, oldest first"
    in  product:  Literal["app", "web", "api"]           "The product concerned"
    out finding:  Finding                                "The structured finding"
    out category: Literal["billing", "bug", "question"]  "The ticket's category"
    out tags:     list[str]                              "Keywords"
    out urgency:  int                                    "1 = can wait, 5 = drop everything"
    out reply:    str                                    "A suggested first reply"
}

predictor ReviewPredict = predict(ReviewTicket)
predictor ReviewCoT = chain_of_thought(ReviewTicket)
'''
#: where the complex signature's generated module is imported from
COMPLEX_MODULE = "benchsigs.review"


def _ticket(ticket: str, product: str, title: str, who: str, role: str, amount: float,
            category: str, tags: list[str], urgency: int, reply: str) -> dict[str, Any]:
    return {
        "ticket": ticket,
        "history": ["Hello, I wrote last week.", "Any news?"],
        "product": product,
        "finding": {"title": title, "parties": [{"name": who, "role": role}],
                    "amounts": [amount]},
        "category": category,
        "tags": tags,
        "urgency": urgency,
        "reply": reply,
    }


COMPLEX: dict[str, Any] = {
    "instructions": "Review the support ticket and extract what the team needs to act on it.",
    "inputs": {
        "ticket": "I was charged twice for my subscription this month. Please refund one.",
        "history": ["Hello, I wrote last week.", "Any news?"],
        "product": "app",
    },
    "outputs": {
        "finding": {
            "title": "Charged twice",
            "parties": [{"name": "Ana", "role": "customer"},
                        {"name": "Acme Pay", "role": "vendor"}],
            "amounts": [19.99, 19.99],
        },
        "category": "billing",
        "tags": ["refund", "duplicate charge"],
        "urgency": 4,
        "reply": "Sorry about the double charge: we have refunded one of them.",
    },
    "reasoning": "The customer paid twice for one subscription.",
    "demos": [
        _ticket("The export button does nothing on Safari.", "web", "Export broken on Safari",
                "Ben", "customer", 0.0, "bug", ["export", "safari"], 3,
                "Thanks, we can reproduce it and are fixing it."),
        _ticket("Can I pay by bank transfer?", "app", "Payment by transfer", "Chloé",
                "customer", 0.0, "question", ["payment"], 1,
                "Yes: choose 'bank transfer' at checkout."),
        _ticket("Your API charged us 120 EUR for a plan of 100 EUR.", "api", "Overcharged plan",
                "Dana Corp", "customer", 120.0, "billing", ["invoice", "plan"], 4,
                "We are checking the invoice and will credit the difference."),
    ],
}

SHAPES = {"simple": SIMPLE, "complex": COMPLEX}


def _section(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def chat_reply(shape: dict[str, Any], reasoning: bool = False) -> str:
    """The reply in the chat format (``[[ ## field ## ]]`` sections), as both tools parse it."""
    outputs = ({"reasoning": shape["reasoning"]} if reasoning else {}) | shape["outputs"]
    parts = [f"[[ ## {name} ## ]]\n{_section(value)}" for name, value in outputs.items()]
    return "\n\n".join([*parts, "[[ ## completed ## ]]"])


def json_reply(shape: dict[str, Any], reasoning: bool = False) -> str:
    """The reply in the JSON format (one object of the outputs)."""
    outputs = ({"reasoning": shape["reasoning"]} if reasoning else {}) | shape["outputs"]
    return json.dumps(outputs)


def demos(shape: dict[str, Any], count: int, reasoning: bool) -> list[dict[str, Any]]:
    """The first ``count`` demos (with a reasoning for chain of thought)."""
    chosen = [dict(demo) for demo in shape["demos"][:count]]
    if reasoning:
        for demo in chosen:
            demo["reasoning"] = "The ticket says so." if shape is COMPLEX else "The passage says so."
    return chosen


def case_name(case: dict[str, Any]) -> str:
    return f"{case['module']}/{case['format']}/{case['demos']} demos/{case['signature']}"


def reply_for(case: dict[str, Any]) -> str:
    shape, cot = SHAPES[case["signature"]], case["module"] == "cot"
    return chat_reply(shape, cot) if case["format"] == "chat" else json_reply(shape, cot)


def rss_bytes() -> int:
    """This process's resident set size (Linux)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed_loop(call: Callable[[], Any], n: int) -> float:
    """Microseconds per call of ``n`` calls."""
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n * 1e6


def run_in_threads(call: Callable[[], Any], n: int, workers: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(call) for _ in range(n)]:
            future.result()


async def gather_limited(make: Callable[[], Any], n: int, in_flight: int) -> None:
    """``n`` awaitables from ``make``, at most ``in_flight`` at a time."""
    gate = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with gate:
            await make()

    await asyncio.gather(*(one() for _ in range(n)))


def memory_run(call: Callable[[], Any], n: int, warmup: int) -> dict[str, Any]:
    for _ in range(warmup):
        call()
    gc.collect()
    before = rss_bytes()
    start = time.perf_counter()
    for _ in range(n):
        call()
    seconds = time.perf_counter() - start
    gc.collect()
    after = rss_bytes()
    return {"rss_before": before, "rss_after": after, "peak_rss": peak_rss_bytes(),
            "seconds": seconds}


# --------------------------------------------------------------------------- sigforge


class SigforgeWorker:
    """sigforge's side: generated predictors with ScriptedLM, and bench/throughput.py's
    HTTP clients (an ``LM`` per run, caches off)."""

    def __init__(self, config: dict[str, Any]) -> None:
        sys.path[:0] = [str(ROOT), str(BENCH), config["module_dir"]]
        from sigforge.runtime import configure
        from sigforge.runtime.history import set_history_limit

        configure(cache=False)
        set_history_limit(HISTORY_LIMIT)
        self.cases: dict[str, Callable[[], Any]] = {}

    def predictor(self, case: dict[str, Any]) -> Callable[[], Any]:
        import importlib

        from call_overhead import case as make_case

        from generated import qa

        review = importlib.import_module(COMPLEX_MODULE)
        classes = {
            ("simple", "predict"): qa.QuickAnswer,
            ("simple", "cot"): qa.Answerer,
            ("complex", "predict"): review.ReviewPredict,
            ("complex", "cot"): review.ReviewCoT,
        }
        cls = classes[case["signature"], case["module"]]
        shape = SHAPES[case["signature"]]
        chosen = demos(shape, case["demos"], case["module"] == "cot")
        call = make_case(lambda: cls(adapter=case["format"], demos=chosen), reply_for(case),
                         shape["inputs"])
        first = call()  # fail here, not in the timed loop, if it cannot parse
        assert all(getattr(first, k) is not None for k in shape["outputs"]), first
        return call

    def calls(self, case: dict[str, Any], n: int) -> dict[str, Any]:
        name = case_name(case)
        if name not in self.cases:
            self.cases[name] = self.predictor(case)
        return {"us_per_call": timed_loop(self.cases[name], n)}

    def http(self, mode: str, concurrency: int, n: int, base_url: str,
             variant: str) -> None:
        import throughput

        if mode == "sequential":
            throughput.sigforge_sequential(base_url, n)
        elif mode == "threads":
            throughput.sigforge_threads(base_url, n, concurrency)
        else:
            throughput.sigforge_asyncio(base_url, n, concurrency)

    def memory(self, n: int, warmup: int, variant: str) -> dict[str, Any]:
        from sigforge.runtime.history import last

        call = self.predictor({"module": "predict", "format": "chat", "demos": 0,
                               "signature": "simple"})
        result = memory_run(call, n, warmup)
        return result | {"history_entries": len(last(n))}


class RawWorker:
    """The ceiling: bench/throughput.py's hand-written httpx and aiohttp clients."""

    def __init__(self, config: dict[str, Any]) -> None:
        sys.path[:0] = [str(ROOT), str(BENCH)]

    def http(self, mode: str, concurrency: int, n: int, base_url: str,
             variant: str) -> None:
        import throughput

        if mode == "sequential":
            throughput.raw_sequential(base_url, n)
        elif mode == "threads":
            throughput.raw_threads(base_url, n, concurrency)
        elif variant == "aiohttp":
            throughput.raw_aiohttp(base_url, n, concurrency)
        else:
            throughput.raw_asyncio(base_url, n, concurrency)


# --------------------------------------------------------------------------- DSPy


class DspyWorker:
    """DSPy's side: the same signatures as DSPy classes, an LM answering instantly
    in-process (a DummyLM subclass that always returns one reply: DSPy's own LM call
    path, engine and history included, minus the network), and ``dspy.LM`` over HTTP."""

    def __init__(self, config: dict[str, Any]) -> None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # stay offline
        import dspy

        self.dspy = dspy
        dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
        dspy.configure(max_history_size=HISTORY_LIMIT)
        self.signatures = {"simple": self.simple_class(), "complex": self.complex_class()}
        self.cases: dict[str, Callable[[], Any]] = {}
        self.lms: dict[str, Any] = {}
        self.loop = asyncio.new_event_loop()

    # -- signatures: built by every call of these methods, as a class statement or a string

    def simple_class(self) -> Any:
        dspy = self.dspy

        class AnswerQuestion(dspy.Signature):  # type: ignore[name-defined,misc]
            """Answer the question using only the given context.
            Be concise and accurate."""

            context: list[str] = dspy.InputField(desc="Relevant passages")
            question: str = dspy.InputField(desc="The user's question")
            answer: str = dspy.OutputField(desc="A short factoid answer")
            confidence: float = dspy.OutputField(desc="How sure the answer is, 0 to 1")

        return AnswerQuestion

    def complex_types(self) -> tuple[Any, Any]:
        from typing import Literal

        from pydantic import BaseModel, Field

        class Party(BaseModel):
            """Someone the ticket mentions."""

            name: str = Field(description="The party's name")
            role: Literal["customer", "vendor", "staff"] = Field(
                description="How the party relates to the ticket")

        class Finding(BaseModel):
            """What the ticket is about."""

            title: str = Field(description="One-line summary")
            parties: list[Party] = Field(description="Who is involved")
            amounts: list[float] = Field(description="Amounts of money mentioned")

        return Party, Finding

    def complex_class(self) -> Any:
        from typing import Literal

        dspy = self.dspy
        _, Finding = self.complex_types()

        class ReviewTicket(dspy.Signature):  # type: ignore[name-defined,misc]
            """Review the support ticket and extract what the team needs to act on it."""

            ticket: str = dspy.InputField(desc="The ticket's text")
            history: list[str] = dspy.InputField(desc="Earlier messages, oldest first")
            product: Literal["app", "web", "api"] = dspy.InputField(
                desc="The product concerned")
            finding: Finding = dspy.OutputField(desc="The structured finding")  # type: ignore[valid-type]
            category: Literal["billing", "bug", "question"] = dspy.OutputField(
                desc="The ticket's category")
            tags: list[str] = dspy.OutputField(desc="Keywords")
            urgency: int = dspy.OutputField(desc="1 = can wait, 5 = drop everything")
            reply: str = dspy.OutputField(desc="A suggested first reply")

        return ReviewTicket

    def signature_from_string(self, shape: str) -> Any:
        if shape == "simple":
            return self.dspy.Signature(
                "context: list[str], question: str -> answer: str, confidence: float",
                SIMPLE["instructions"],
            )
        _, finding = self.complex_types()
        return self.dspy.Signature(
            "ticket: str, history: list[str], product: Literal['app', 'web', 'api'] -> "
            "finding: Finding, category: Literal['billing', 'bug', 'question'], "
            "tags: list[str], urgency: int, reply: str",
            COMPLEX["instructions"],
            custom_types={"Finding": finding},
        )

    def signature(self, kind: str, shape: str, n: int) -> dict[str, Any]:
        if kind == "string":
            build = lambda: self.signature_from_string(shape)  # noqa: E731
        elif shape == "simple":
            build = self.simple_class
        else:
            build = self.complex_class  # the nested pydantic classes are rebuilt too
        return {"us_per_construction": timed_loop(build, n)}

    # -- per-call overhead

    def instant_lm(self, reply: str) -> Any:
        from dspy.utils import DummyLM

        class InstantLM(DummyLM):  # type: ignore[misc]
            """Answers every request at once with the same reply."""

            def __init__(self, text: str) -> None:
                super().__init__([])
                self.cache = False
                self.text = text

            def _format_answer_fields(self, values: dict[str, Any]) -> str:
                return self.text

        return InstantLM(reply)

    def program(self, case: dict[str, Any], lm: Any) -> Any:
        dspy = self.dspy
        signature = self.signatures[case["signature"]]
        program = (dspy.ChainOfThought if case["module"] == "cot" else dspy.Predict)(signature)
        program.set_lm(lm)
        shape = SHAPES[case["signature"]]
        chosen = demos(shape, case["demos"], case["module"] == "cot")
        for predictor in program.predictors():
            predictor.demos = [dspy.Example(**demo) for demo in chosen]
        return program

    def predictor(self, case: dict[str, Any]) -> Callable[[], Any]:
        program = self.program(case, self.instant_lm(reply_for(case)))
        inputs = SHAPES[case["signature"]]["inputs"]
        with self.adapter(case):
            first = program(**inputs)  # fail here, not in the timed loop, if it cannot parse
        assert all(getattr(first, k) is not None for k in SHAPES[case["signature"]]["outputs"])
        return lambda: program(**inputs)

    def adapter(self, case: dict[str, Any]) -> contextlib.AbstractContextManager[Any]:
        """The case's adapter, set around a whole timed loop (not per call)."""
        dspy = self.dspy
        adapter = dspy.ChatAdapter() if case["format"] == "chat" else dspy.JSONAdapter()
        return dspy.context(adapter=adapter)  # type: ignore[no-any-return]

    def calls(self, case: dict[str, Any], n: int) -> dict[str, Any]:
        name = case_name(case)
        if name not in self.cases:
            self.cases[name] = self.predictor(case)
        with self.adapter(case):
            return {"us_per_call": timed_loop(self.cases[name], n)}

    # -- HTTP

    def http(self, mode: str, concurrency: int, n: int, base_url: str,
             variant: str) -> None:
        dspy = self.dspy
        key = f"{variant}@{base_url}"
        if key not in self.lms:
            model = UNKNOWN_MODEL if variant == "unknown-name" else MODEL
            lm = dspy.LM(model, api_base=base_url, api_key=API_KEY, cache=False, num_retries=0)
            program = dspy.Predict(self.signatures["simple"])
            program.set_lm(lm)
            self.lms[key] = program
        program = self.lms[key]
        inputs = SIMPLE["inputs"]
        if mode == "sequential":
            for _ in range(n):
                assert program(**inputs).answer
        elif mode == "threads":
            example = dspy.Example(**inputs).with_inputs(*inputs)
            results = program.batch([example] * n, num_threads=concurrency,
                                    disable_progress_bar=True, max_errors=0)
            assert len(results) == n and all(r.answer for r in results)
        else:
            self.loop.run_until_complete(
                gather_limited(lambda: program.acall(**inputs), n, concurrency))

    def memory(self, n: int, warmup: int, variant: str) -> dict[str, Any]:
        """``variant`` "history-off": with ``disable_history`` (DSPy keeps up to 10,000
        calls in a global history otherwise, whatever ``max_history_size`` says)."""
        from dspy.clients import base_lm

        if variant == "history-off":
            self.dspy.configure(disable_history=True)
        case = {"module": "predict", "format": "chat", "demos": 0, "signature": "simple"}
        call = self.predictor(case)
        with self.adapter(case):
            result = memory_run(call, n, warmup)
        return result | {"history_entries": len(base_lm.GLOBAL_HISTORY)}


# --------------------------------------------------------------------------- BAML


class BamlWorker:
    """BAML's side: the generated python/pydantic client (sync ``b`` and async ``b``) of a
    project with a function equivalent to AnswerQuestion, pointed at the loopback server
    through environment variables (BAML reads them on every call)."""

    def __init__(self, config: dict[str, Any]) -> None:
        os.environ.setdefault("BAML_LOG", "warn")
        os.environ["SIGFORGE_BENCH_API_KEY"] = API_KEY
        sys.path.insert(0, config["baml_client_dir"])
        from baml_client import b
        from baml_client.async_client import b as async_b

        self.b, self.async_b = b, async_b
        self.loop = asyncio.new_event_loop()

    def http(self, mode: str, concurrency: int, n: int, base_url: str,
             variant: str) -> None:
        os.environ["SIGFORGE_BENCH_BASE_URL"] = base_url
        context, question = SIMPLE["inputs"]["context"], SIMPLE["inputs"]["question"]

        def one() -> None:
            assert self.b.AnswerQuestion(context, question).answer

        if mode == "sequential":
            for _ in range(n):
                one()
        elif mode == "threads":
            run_in_threads(one, n, concurrency)
        else:

            async def one_async() -> None:
                assert (await self.async_b.AnswerQuestion(context, question)).answer

            self.loop.run_until_complete(gather_limited(one_async, n, concurrency))


# --------------------------------------------------------------------------- the worker loop

WORKERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "sigforge": SigforgeWorker,
    "raw": RawWorker,
    "dspy": DspyWorker,
    "baml": BamlWorker,
}


def answer(worker: Any, command: dict[str, Any]) -> dict[str, Any]:
    cmd = command["cmd"]
    if cmd == "calls":
        return worker.calls(command["case"], command["n"])  # type: ignore[no-any-return]
    if cmd == "signature":
        return worker.signature(  # type: ignore[no-any-return]
            command["kind"], command["shape"], command["n"])
    if cmd == "memory":
        return worker.memory(  # type: ignore[no-any-return]
            command["n"], command["warmup"], command.get("variant", ""))
    if cmd == "http":
        wall, cpu = time.perf_counter(), time.process_time()
        worker.http(command["mode"], command.get("concurrency", 1), command["n"],
                    command["base_url"], command.get("variant", ""))
        return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
    raise ValueError(f"unknown command {command!r}")


def main() -> None:
    tool, config_path = sys.argv[1], sys.argv[2]
    replies = sys.stdout
    sys.stdout = sys.stderr  # whatever the tools print goes to the log
    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    try:
        worker = WORKERS[tool](config)
    except Exception:
        replies.write(json.dumps({"ok": False, "error": traceback.format_exc()}) + "\n")
        replies.flush()
        return
    replies.write(json.dumps({"ok": True, "ready": tool}) + "\n")
    replies.flush()
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "quit":
            break
        try:
            reply = {"ok": True, **answer(worker, command)}
        except Exception:
            reply = {"ok": False, "error": traceback.format_exc()}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


# --------------------------------------------------------------------------- the benchmark's end


class DriverError(RuntimeError):
    """A worker failed a command, died or took too long."""


class DriverProcess:
    """A worker process and its pipes: send a command, wait for its one-line answer.

    Its stderr goes to ``log``. ``timeout`` bounds every answer; a worker that takes
    longer is killed.
    """

    def __init__(self, cmd: list[str], *, log: Path, timeout: float, cwd: Path | None = None,
                 env: dict[str, str] | None = None, ready: bool = True) -> None:
        self.log_path = log
        self.timeout = timeout
        self._log: IO[str] = log.open("w", encoding="utf-8")
        self._process = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
            cwd=cwd, env=env,
        )
        if ready:
            self.read()

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(command) + "\n")
            self._process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise DriverError(f"the worker is gone; its log ends with:\n{self.log_tail()}") from exc
        return self.read(command)

    def read(self, command: Any = "start-up") -> dict[str, Any]:
        assert self._process.stdout is not None
        # one command, one answer line: nothing is left in the reader's buffer between
        # commands, so waiting on the pipe itself is exact
        ready, _, _ = select.select([self._process.stdout], [], [], self.timeout)
        if not ready:
            self._process.kill()
            raise DriverError(f"no answer within {self.timeout:g} s to {command}")
        line = self._process.stdout.readline()
        if not line:
            raise DriverError(f"the worker exited; its log ends with:\n{self.log_tail()}")
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise DriverError(f"failed on {command}: {reply.get('error')}")
        return reply

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(encoding="utf-8").splitlines()[-lines:])

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self._process.stdin is not None
            self._process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()


if __name__ == "__main__":
    main()
