"""An honest scripted task for optimizers: arithmetic with invented operator words.

Optimizers change what a prompt contains (demos, instructions); to test and benchmark
them without a real model, this module has a simulated LM whose answers depend *only*
on what its prompt contains, and a task whose answer key it never sees.

The task (:class:`OperatorTask`)
    A few invented words (``zorp``, ``blick``, ``quen``...) each secretly stand for a
    real operation. Questions read ``What is 7 zorp 3?``; the gold answer is the result
    (``4`` if ``zorp`` means ``minus``). ``OperatorTask(seed=0)`` draws the meanings
    and builds seeded, disjoint ``trainset(n)`` / ``devset(n)`` lists of
    :class:`~sigforge.runtime.example.Example` (inputs ``{"question"}``, labels
    ``{"answer"}``), and has a :meth:`~OperatorTask.metric` whose :class:`Score`
    carries feedback (``expected 12, got 7 for 3 blick 4``).

The simulated LM (:class:`OperatorWorld`)
    ``world.lm()`` is a :class:`~sigforge.testing.scripted.ScriptedLM` answering with
    ``world.responder``, which also serves an :class:`~sigforge.testing.OpenAICompatServer`
    (``OpenAICompatServer(world.responder)``), so the same world answers sigforge in
    process and DSPy over HTTP. It reads the request's messages as any chat model would:

    * the system message: the input and output fields listed under ``Your input fields
      are:`` / ``Your output fields are:``, and the instructions after ``your objective
      is:``;
    * the demos: the user/assistant pairs between the system message and the last user
      message (chat ``[[ ## field ## ]]`` sections, or a JSON object as reply);
    * the current inputs: the ``[[ ## field ## ]]`` sections of the last user message.

    The real operations it knows are ``plus``, ``minus``, ``times``, ``max``, ``min``
    and ``concat`` (digits side by side: ``7 concat 3`` is ``73``). It knows what an
    invented word means when

    (a) *evidence* pins it down: the demos (for a solver) use the word, and exactly one
        operation fits the numbers of every one of them; or else
    (b) a *definition* names it: the instructions (for a solver) say ``zorp means
        minus`` -- case-insensitive, ``WORD means|stands for|denotes|is|= [the] OP``,
        where OP is an operation's name or a synonym (``add``, ``subtraction``,
        ``product``, ``maximum``, ``concatenation``, ...; see :data:`SYNONYMS`).

    Evidence wins over a definition, so feedback can correct a wrong instruction. A
    word it does not know it reads as ``plus`` (as a model falls back on the most common
    operation); tasks never hide ``plus`` behind a word, so such a guess is always
    wrong. Demos that no single operation explains (an inconsistent demo, or two that
    disagree) teach nothing.

    It answers in the format the prompt asks for: ``[[ ## field ## ]]`` sections closed
    by ``[[ ## completed ## ]]``, or a JSON object when the system message says
    ``Outputs will be a JSON object``; a ``reasoning`` output field gets a sentence
    saying how it read the operator. So its replies go through the real adapters.

Roles (by prompt content)
    * *proposer*: an output field whose name ends in ``instruction`` or
      ``instructions`` (``proposed_instruction``, ``new_instruction``...), as in the
      instruction-proposal prompts of COPRO, MIPROv2 and GEPA. It reads the text of its
      inputs: equations (``3 zorp 4 = 7``), feedback (``expected 12, got 7 for 3 blick
      4``), questions followed by an answer (``What is 3 zorp 4? ... answer: 7``) and
      definitions (``zorp means plus``, e.g. in a current instruction), infers meanings
      with the same engine (:func:`infer_meanings`), and writes an instruction defining
      a random subset of what it inferred. The subset is drawn from a seed made of the
      prompt text, the request's ``rollout_id`` (in process only: it is never sent over
      HTTP) and its ``temperature``: candidates differ in quality, reproducibly.
    * *solver*: any other request with an input whose whole value is a question
      ``What is A WORD B?``.
    * *other*: everything else (dataset or program summaries...): a short text in
      every output field (``0`` in numeric ones).

    ``world.calls`` counts the requests of each role (thread-safe).

The predictors
    :data:`TASK_SIG` is the task's ``.sig`` source: ``SolveOperator`` (``question ->
    answer: int``) with predictors ``Solve`` and ``SolveStepByStep``
    (chain of thought), and ``CheckAnswer`` (``question, proposed: int -> answer: int``)
    with ``Check``. :func:`task_module` compiles it with sigforge's own compiler (once
    per process, in memory) and returns the generated module; :class:`SolveAndCheck`
    is a two-predictor :class:`~sigforge.runtime.module.Module` over it.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from sigforge.runtime.example import Example
from sigforge.runtime.messages import LMRequest
from sigforge.runtime.metrics import Score
from sigforge.runtime.module import Module

from ._core import RecordedRequest
from .prompt_reader import ReadPrompt, format_reply, read_prompt
from .scripted import ScriptedLM

if TYPE_CHECKING:
    from sigforge.runtime.cache import CompletionCache
    from sigforge.runtime.lm import BaseLM

__all__ = [
    "OPERATIONS",
    "SYNONYMS",
    "TASK_SIG",
    "WORDS",
    "Observation",
    "OperatorTask",
    "OperatorWorld",
    "Role",
    "SolveAndCheck",
    "apply_operation",
    "find_definitions",
    "find_observations",
    "infer_meanings",
    "task_module",
]

# ---------------------------------------------------------------- operations

#: the real operations the simulated LM knows, by name
OPERATIONS: dict[str, Callable[[int, int], int]] = {
    "plus": lambda a, b: a + b,
    "minus": lambda a, b: a - b,
    "times": lambda a, b: a * b,
    "max": max,
    "min": min,
    "concat": lambda a, b: int(f"{a}{abs(b)}"),
}

#: the words an instruction may use for each operation (lower case)
SYNONYMS: dict[str, str] = {
    **{name: name for name in OPERATIONS},
    "add": "plus", "addition": "plus", "sum": "plus",
    "subtract": "minus", "subtraction": "minus", "difference": "minus",
    "multiply": "times", "multiplication": "times", "product": "times",
    "maximum": "max", "larger": "max", "largest": "max",
    "minimum": "min", "smaller": "min", "smallest": "min",
    "concatenate": "concat", "concatenation": "concat", "concat-digits": "concat",
}  # fmt: skip

#: how the LM reads a word it does not know
NAIVE_READING = "plus"

#: the invented operator words tasks draw from
WORDS = ("zorp", "blick", "quen", "drab", "fex")


def apply_operation(operation: str, a: int, b: int) -> int:
    """The result of a real operation (a name of :data:`OPERATIONS`)."""
    return OPERATIONS[operation](a, b)


# ---------------------------------------------------------------- the inference engine


@dataclass(frozen=True, slots=True)
class Observation:
    """Evidence seen in a prompt: ``a WORD b`` gave ``result``."""

    word: str
    a: int
    b: int
    result: int


_NUMBER = r"-?\d+"
_WORD = r"[A-Za-z][A-Za-z-]*"
_QUESTION = re.compile(rf"What is ({_NUMBER}) ({_WORD}) ({_NUMBER})\?", re.IGNORECASE)
_DEFINITION = re.compile(
    rf"\b({_WORD})\s+(?:means|stands for|denotes|is|=)\s+(?:the\s+)?({_WORD})",
    re.IGNORECASE,
)
_EQUATION = re.compile(
    rf"(?<![\w-])({_NUMBER}) ({_WORD}) ({_NUMBER})\s*(?:=|equals|is|->|gives)\s*({_NUMBER})\b",
    re.IGNORECASE,
)
_FEEDBACK = re.compile(
    rf"expected ({_NUMBER})(?:,? (?:but )?got {_NUMBER})?,? for ({_NUMBER}) ({_WORD}) ({_NUMBER})",
    re.IGNORECASE,
)
# between the word and the number: punctuation, markers, spaces (also as \n escapes in JSON)
_LABELLED_ANSWER = re.compile(rf"answer(?:\W|\\[nt]){{0,24}}?({_NUMBER})\b", re.IGNORECASE)


def find_definitions(text: str) -> dict[str, str]:
    """Definitions of invented words in ``text`` (``zorp means minus``): word -> operation.

    Only words that are not themselves operation names count; a later definition of the
    same word wins."""
    found: dict[str, str] = {}
    for word, name in _DEFINITION.findall(text):
        operation = SYNONYMS.get(name.lower())
        if operation is not None and word.lower() not in SYNONYMS:
            found[word.lower()] = operation
    return found


def find_observations(text: str) -> list[Observation]:
    """Evidence in free text: equations (``3 zorp 4 = 7``), feedback (``expected 12, got
    7 for 3 blick 4``) and questions followed by their answer (``What is 3 zorp 4?`` then,
    before the next question, ``answer: 7`` or ``"answer": 7``)."""
    found = [
        Observation(word.lower(), int(a), int(b), int(result))
        for a, word, b, result in _EQUATION.findall(text)
    ]
    found += [
        Observation(word.lower(), int(a), int(b), int(result))
        for result, a, word, b in _FEEDBACK.findall(text)
    ]
    questions = list(_QUESTION.finditer(text))
    for index, match in enumerate(questions):
        end = questions[index + 1].start() if index + 1 < len(questions) else len(text)
        segment = text[match.end() : end]
        if _FEEDBACK.search(segment):
            continue  # the feedback above names the right result
        answer = _LABELLED_ANSWER.search(segment)
        if answer is not None:
            a, word, b = match.groups()
            found.append(Observation(word.lower(), int(a), int(b), int(answer.group(1))))
    return found


def infer_meanings(
    definitions: Mapping[str, str], observations: Iterable[Observation]
) -> dict[str, tuple[str, str]]:
    """What each invented word means, and why: word -> (operation, ``"evidence"`` or
    ``"definition"``).

    A word means an operation when its observations exist and exactly one operation
    fits all of them; otherwise when a definition names one. Real operation names are
    never reinterpreted."""
    by_word: dict[str, list[Observation]] = {}
    for seen in observations:
        if seen.word not in SYNONYMS:
            by_word.setdefault(seen.word, []).append(seen)
    known: dict[str, tuple[str, str]] = {
        word: (operation, "definition") for word, operation in definitions.items()
    }
    for word, evidence in by_word.items():
        fitting = [
            name
            for name, operation in OPERATIONS.items()
            if all(_fits(operation, o) for o in evidence)
        ]
        if len(fitting) == 1:
            known[word] = (fitting[0], "evidence")
    return known


def _fits(operation: Callable[[int, int], int], seen: Observation) -> bool:
    try:
        return operation(seen.a, seen.b) == seen.result
    except ValueError:
        return False


def _demo_observations(prompt: ReadPrompt) -> list[Observation]:
    """Evidence from the demos: a demo's question with the first whole-number output."""
    found = []
    for inputs, outputs in prompt.demos:
        question = next(
            (m for m in (_QUESTION.search(v) for v in inputs.values()) if m is not None), None
        )
        if question is None:
            continue
        for field in prompt.outputs:
            value = outputs.get(field.name)
            if field.name == "reasoning" or value is None:
                continue
            try:
                result = int(str(value).strip())
            except ValueError:
                continue
            a, word, b = question.groups()
            found.append(Observation(word.lower(), int(a), int(b), result))
            break
    return found


def _question(prompt: ReadPrompt) -> re.Match[str] | None:
    """The question an input field holds as its whole value (not one quoted in a longer text)."""
    for value in prompt.values.values():
        match = _QUESTION.fullmatch(value.strip())
        if match is not None:
            return match
    return None


# ---------------------------------------------------------------- the world

Role = Literal["solver", "proposer", "other"]


class OperatorWorld:
    """The simulated LM (see the module docstring). Holds no answer key.

    ``keep_probability``: how likely a proposer includes each meaning it inferred in its
    instruction.
    """

    def __init__(self, *, keep_probability: float = 0.5) -> None:
        if not 0.0 <= keep_probability <= 1.0:
            raise ValueError("keep_probability must be between 0 and 1")
        self.keep_probability = keep_probability
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()

    @property
    def calls(self) -> dict[Role, int]:
        """How many requests each role answered so far."""
        with self._lock:
            return {role: self._calls[role] for role in ("solver", "proposer", "other")}

    @property
    def total_calls(self) -> int:
        with self._lock:
            return sum(self._calls.values())

    def reset_counts(self) -> None:
        with self._lock:
            self._calls.clear()

    def lm(
        self, *, model: str = "operator-world", cache: bool | CompletionCache = False
    ) -> ScriptedLM:
        """An in-process LM answering from this world."""
        return ScriptedLM(self.responder, model=model, cache=cache)

    def responder(self, request: LMRequest | RecordedRequest) -> str:
        """The reply text to a request (an :class:`LMRequest` or an HTTP server's
        :class:`~sigforge.testing.RecordedRequest`)."""
        prompt = read_prompt(request)
        role, values = self._answer(prompt)
        with self._lock:
            self._calls[role] += 1
        return format_reply(prompt, values)

    def role_of(self, request: LMRequest | RecordedRequest) -> Role:
        """Which role a request gets (without answering or counting it)."""
        return self._role(read_prompt(request))

    # -- roles --------------------------------------------------------------------------

    def _role(self, prompt: ReadPrompt) -> Role:
        if any(f.name.endswith(("instruction", "instructions")) for f in prompt.outputs):
            return "proposer"
        if _question(prompt) is not None:
            return "solver"
        return "other"

    def _answer(self, prompt: ReadPrompt) -> tuple[Role, dict[str, Any]]:
        role = self._role(prompt)
        if role == "proposer":
            return role, self._propose(prompt)
        if role == "solver":
            return role, self._solve(prompt)
        return role, {f.name: 0 if f.numeric else "Nothing to add." for f in prompt.outputs}

    def _solve(self, prompt: ReadPrompt) -> dict[str, Any]:
        question = _question(prompt)
        assert question is not None  # the role says so
        a, b, word = int(question.group(1)), int(question.group(3)), question.group(2).lower()
        known = infer_meanings(find_definitions(prompt.instructions), _demo_observations(prompt))
        if word in SYNONYMS:
            operation, why = SYNONYMS[word], "a known operation"
        elif word in known:
            operation, source = known[word]
            why = f"{word} means {operation} ({'from the examples' if source == 'evidence' else 'as instructed'})"
        else:
            operation, why = NAIVE_READING, f"{word} is not defined; reading it as {NAIVE_READING}"
        result = apply_operation(operation, a, b)
        reasoning = f"{why}, so {a} {operation} {b} = {result}."
        return {
            f.name: reasoning if f.name == "reasoning" else (result if f.numeric else str(result))
            for f in prompt.outputs
        }

    def _propose(self, prompt: ReadPrompt) -> dict[str, Any]:
        text = "\n\n".join(prompt.values.values())
        known = infer_meanings(find_definitions(text), find_observations(text))
        seed = hashlib.sha256(
            f"{prompt.text}\x00{prompt.rollout_id!r}\x00{prompt.temperature!r}".encode()
        ).digest()
        rng = random.Random(int.from_bytes(seed[:8], "big"))
        chosen = [w for w in sorted(known) if rng.random() < self.keep_probability]
        rng.shuffle(chosen)
        instruction = " ".join(
            ["Answer the arithmetic question.", *(f"{w} means {known[w][0]}." for w in chosen)]
        )
        values: dict[str, Any] = {}
        for f in prompt.outputs:
            if f.name.endswith(("instruction", "instructions")):
                values[f.name] = instruction
            elif f.name == "reasoning":
                values[f.name] = (
                    f"The examples show {len(known)} operator meaning(s); "
                    f"the instruction states {len(chosen)}."
                )
            else:
                values[f.name] = 0 if f.numeric else "Answer:"
        return values


# ---------------------------------------------------------------- the task


class OperatorTask:
    """A seeded operator task: secret meanings, train and dev sets, a metric.

    ``words`` invented words (at most ``len(WORDS)``) get distinct meanings among the
    operations other than ``plus``; operands are distinct whole numbers from ``low`` to
    ``high``. ``trainset(n)`` takes questions from the front of one seeded shuffle of
    all questions and ``devset(n)`` from the back, so the two are disjoint while
    ``n_train + n_dev`` does not exceed :attr:`size`.
    """

    def __init__(self, seed: int = 0, *, words: int = 4, low: int = 2, high: int = 9) -> None:
        if not 1 <= words <= len(WORDS):
            raise ValueError(f"words must be between 1 and {len(WORDS)}")
        if high - low < 1:
            raise ValueError("high must be larger than low")
        rng = random.Random(f"operator-task:{seed}")
        chosen_words = rng.sample(WORDS, words)
        meanings = rng.sample([op for op in OPERATIONS if op != NAIVE_READING], words)
        self.seed = seed
        #: the answer key: word -> operation (never shown to the LM)
        self.meanings: dict[str, str] = dict(zip(chosen_words, meanings, strict=True))
        combos = [
            (word, a, b)
            for word in sorted(self.meanings)
            for a in range(low, high + 1)
            for b in range(low, high + 1)
            if a != b
        ]
        rng.shuffle(combos)
        self._combos = combos

    @property
    def size(self) -> int:
        """How many distinct questions the task has."""
        return len(self._combos)

    @staticmethod
    def question(word: str, a: int, b: int) -> str:
        return f"What is {a} {word} {b}?"

    def answer(self, word: str, a: int, b: int) -> int:
        return apply_operation(self.meanings[word], a, b)

    def example(self, word: str, a: int, b: int, *, id: str | None = None) -> Example:
        return Example(
            {"question": self.question(word, a, b)}, {"answer": self.answer(word, a, b)}, id
        )

    def trainset(self, n: int) -> list[Example]:
        return [
            self.example(*combo, id=f"train-{i}") for i, combo in enumerate(self._take(n))
        ]

    def devset(self, n: int) -> list[Example]:
        combos = self._take(n, from_end=True)
        return [self.example(*combo, id=f"dev-{i}") for i, combo in enumerate(combos)]

    def _take(self, n: int, *, from_end: bool = False) -> list[tuple[str, int, int]]:
        if not 0 <= n <= self.size:
            raise ValueError(f"n must be between 0 and {self.size} (the task's questions)")
        return list(reversed(self._combos))[:n] if from_end else self._combos[:n]

    def instructions(self, words: Iterable[str] | None = None) -> str:
        """An instruction defining ``words`` (default: all), as a perfect prompt would."""
        chosen = sorted(self.meanings) if words is None else list(words)
        return " ".join(
            ["Answer the arithmetic question.", *(f"{w} means {self.meanings[w]}." for w in chosen)]
        )

    def metric(self, example: Example, prediction: Any) -> Score:
        """1.0 when the prediction's ``answer`` equals the gold answer, with feedback."""
        expected = example["answer"]
        got = getattr(prediction, "answer", None)
        match = _QUESTION.search(str(example.inputs.get("question", "")))
        if match is None:
            return Score(float(got == expected), f"expected {expected}, got {got}")
        a, word, b = match.groups()
        if got == expected:
            return Score(1.0, f"correct: {a} {word} {b} = {expected}")
        return Score(0.0, f"expected {expected}, got {got} for {a} {word} {b}")


# ---------------------------------------------------------------- the predictors

TASK_SIG = '''\
"""The operator task of sigforge.testing.tasks: arithmetic with invented operator words."""

signature SolveOperator {
    """
    Answer the arithmetic question.
    """
    in  question: str "A question such as: What is 7 zorp 3?"
    out answer:   int "The result, a whole number"
}

signature CheckAnswer {
    """
    Check the proposed answer to the arithmetic question and give the final answer.
    """
    in  question: str "A question such as: What is 7 zorp 3?"
    in  proposed: int "An answer proposed by a first attempt"
    out answer:   int "The final result, a whole number"
}

predictor Solve = predict(SolveOperator)
predictor SolveStepByStep = chain_of_thought(SolveOperator)
predictor Check = predict(CheckAnswer)
'''

_MODULE_NAME = "sigforge.testing._operator_task"


@functools.cache
def task_module() -> ModuleType:
    """The generated module of :data:`TASK_SIG` (compiled in memory, once per process):
    ``Solve``, ``SolveStepByStep``, ``Check`` and their models."""
    import tempfile
    from pathlib import Path

    from sigforge.codegen.pipeline import compile_sources

    with tempfile.TemporaryDirectory() as folder:
        src = Path(folder) / "src"
        src.mkdir()
        (src / "operator_task.sig").write_text(TASK_SIG, encoding="utf-8")
        result = compile_sources(src, Path(folder) / "operator_generated")
    if not result.ok:  # pragma: no cover - the source above is fixed
        raise RuntimeError("; ".join(d.message for d in result.diagnostics))
    module = ModuleType(_MODULE_NAME)
    module.__file__ = f"<{_MODULE_NAME}>"
    sys.modules[_MODULE_NAME] = module
    exec(compile(result.files["operator_task.py"], module.__file__, "exec"), module.__dict__)
    return module


class SolveAndCheck(Module):
    """Two predictors: ``solve`` answers, ``check`` reviews that answer and gives the final one."""

    def __init__(self, *, lm: BaseLM | None = None) -> None:
        generated = task_module()
        # typed Any: the predictor classes are generated at run time (see task_module)
        self.solve: Any = generated.Solve(lm=lm)
        self.check: Any = generated.Check(lm=lm)

    def forward(self, *, question: str) -> Any:
        draft = self.solve(question=question)
        return self.check(question=question, proposed=draft.answer)
