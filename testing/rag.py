"""An honest simulated reader for retrieval-augmented question answering.

Retrieval is only worth measuring when the answer depends on what was retrieved. This
module's LM answers a question *only* from the passages in its prompt, the way a careful
reader would: it works out which fact the question asks for and about whom, looks for a
passage that states that fact about exactly that entity, and answers with it, citing the
passages that say so. When no passage in the prompt states it, it answers
``I don't know`` and cites nothing. It holds no answer key and no corpus: give it the
wrong passages and it cannot answer.

.. code-block:: python

    world = RAGWorld()
    configure(lm=world.lm())                       # in process
    OpenAICompatServer(world.responder)            # or over HTTP, for any client

What it reads (any predictor whose prompt has them)
    * the question: the input field named ``question`` (else the first input whose value
      matches a known question form);
    * the passages: an input holding a list of texts -- a JSON array (how a
      ``list[str]`` input is formatted), or DSPy's numbered ``[1] «...»`` list; position
      1 is the first passage;
    * the output fields from the system message: ``reasoning`` gets one sentence quoting
      the evidence, a ``list[int]`` field the citations, any other field the answer.
    It answers in the format the prompt asks for (``[[ ## field ## ]]`` sections, or a
    JSON object), so the reply goes through the real adapters.

What it understands
    A :class:`Relation` pairs the wordings of a question (regular expressions capturing
    the ``entity``) with the wordings of the sentences that state the answer (regular
    expressions in which ``{entity}`` stands for the entity's name, matched as a whole
    name, capturing the ``value``). :data:`ENCYCLOPEDIA` holds the relations of the
    example encyclopedia (``examples/rag``): the founding year, founder, island,
    trade, population and landmark of a town; the highest peak, capital and cartographer
    of an island; the birth year, birthplace, profession and best-known work of a
    person; the length and source of a river; the month and town of a festival. Pass
    other relations to read other corpora.

    The first passage (in prompt order) stating the fact gives the answer; every passage
    stating the same value is cited. A question it cannot parse, or whose fact no passage
    states, gets ``I don't know``.

``world.calls`` counts the questions answered and abstained from (thread-safe).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sigforge.runtime.messages import LMRequest

from ._core import RecordedRequest
from .prompt_reader import ReadPrompt, format_reply, read_prompt
from .scripted import ScriptedLM

if TYPE_CHECKING:
    from sigforge.runtime.cache import CompletionCache

__all__ = ["ABSTAIN", "ENCYCLOPEDIA", "Evidence", "RAGWorld", "Relation"]

#: the answer when the passages do not state the fact
ABSTAIN = "I don't know"

_NAME = r"[A-Z][\w'-]+(?: [A-Z][\w'-]+)?"  # one or two capitalised words
_PERSON = r"[A-Z][\w'-]+ [A-Z][\w'-]+"
_YEAR = r"\d{3,4}"
_DASH = "[\u2013-]"  # an en dash (or a hyphen) between years


@dataclass(frozen=True)
class Relation:
    """One kind of fact: how questions ask for it and how passages state it.

    ``questions``: regular expressions matched against the whole question, capturing
    ``entity``. ``evidence``: regular expressions searched in a passage, where
    ``{entity}`` is replaced by the (escaped) entity name -- not preceded or followed by
    a letter or digit -- and the group ``value`` captures the answer.
    """

    name: str
    questions: tuple[str, ...]
    evidence: tuple[str, ...]

    def entity(self, question: str) -> str | None:
        """The entity a question asks about, if it is asked this relation's way."""
        for pattern in self.questions:
            match = re.fullmatch(pattern, question.strip())
            if match is not None:
                return match.group("entity").strip()
        return None

    def find(self, entity: str, passage: str) -> tuple[str, str] | None:
        """``(value, sentence)`` if the passage states this fact about ``entity``."""
        name = rf"(?<![\w-]){re.escape(entity)}(?![\w-])"
        for pattern in self.evidence:
            match = re.search(pattern.replace("{entity}", name), passage)
            if match is not None:
                return match.group("value").strip(), _sentence(passage, match.start(), match.end())
        return None


@dataclass(frozen=True)
class Evidence:
    """Where a passage stated the answer: its position (from 1), the value, the sentence."""

    position: int
    value: str
    sentence: str


def _relation(name: str, questions: Sequence[str], evidence: Sequence[str]) -> Relation:
    return Relation(name, tuple(questions), tuple(evidence))


#: the relations of the example encyclopedia of ``examples/rag``
ENCYCLOPEDIA: tuple[Relation, ...] = (
    _relation(
        "founding year",
        [r"In (?:which|what) year was (?P<entity>.+?) founded\?"],
        [
            rf"{{entity}} was founded in (?P<value>{_YEAR})",
            rf"founded {{entity}} in (?P<value>{_YEAR})",
            rf"In (?P<value>{_YEAR}), [^.]*?founded {{entity}}",
        ],
    ),
    _relation(
        "founder",
        [r"Who founded (?P<entity>.+?)\?"],
        [
            rf"{{entity}} was founded in {_YEAR} by (?P<value>{_PERSON})",
            rf"(?P<value>{_PERSON}) founded {{entity}}",
            rf"In {_YEAR}, (?P<value>{_PERSON}) founded {{entity}}",
        ],
    ),
    _relation(
        "island",
        [r"On which island is (?P<entity>.+?)\?", r"On which island does (?P<entity>.+?) lie\?"],
        [
            r"{entity} is a town on (?P<value>[A-Z]\w+)",
            r"{entity}, a town on the island of (?P<value>[A-Z]\w+)",
        ],
    ),
    _relation(
        "trade",
        [r"What is the (?:chief|main) trade of (?P<entity>.+?)\?"],
        [
            r"The chief trade of {entity} is (?P<value>[a-z][a-z ]*?)\.",
            r"{entity} lives mainly from (?P<value>[a-z][a-z ]*?)\.",
        ],
    ),
    _relation(
        "population",
        [r"How many people live in (?P<entity>.+?)\?"],
        [r"{entity}[^.]*? about (?P<value>\d[\d,]*) inhabitants"],
    ),
    _relation(
        "landmark",
        [r"What is the best-known landmark of (?P<entity>.+?)\?"],
        [
            r"best-known landmark of {entity} is (?P<value>the [A-Z][\w ]*?)\.",
            r"Visitors to {entity} come to see (?P<value>the [A-Z][\w ]*?), its best-known landmark",
        ],
    ),
    _relation(
        "highest peak",
        [r"What is the highest peak (?:on|of) (?P<entity>.+?)\?"],
        [
            r"highest peak on {entity} is (?P<value>Mount [A-Z]\w+)",
            r"(?P<value>Mount [A-Z]\w+), \d+ metres high, is the highest peak on {entity}",
        ],
    ),
    _relation(
        "capital",
        [r"Which town is the capital of (?P<entity>.+?)\?", r"What is the capital of (?P<entity>.+?)\?"],
        [
            r"The capital of {entity} is (?P<value>[A-Z]\w+)",
            r"(?P<value>[A-Z]\w+) is the capital of {entity}",
        ],
    ),
    _relation(
        "cartographer",
        [r"Who first charted (?P<entity>.+?)\?"],
        [
            rf"{{entity}} was first charted by (?P<value>{_PERSON})",
            rf"(?P<value>{_PERSON}) charted {{entity}}",
        ],
    ),
    _relation(
        "birth year",
        [r"In (?:which|what) year was (?P<entity>.+?) born\?"],
        [
            rf"{{entity}} \((?P<value>{_YEAR}){_DASH}",
            rf"{{entity}} was born in [A-Z]\w+ in (?P<value>{_YEAR})",
            rf"{{entity}} was born in the year (?P<value>{_YEAR})",
        ],
    ),
    _relation(
        "birthplace",
        [r"In which town was (?P<entity>.+?) born\?", r"Where was (?P<entity>.+?) born\?"],
        [
            rf"{{entity}} \({_YEAR}{_DASH}{_YEAR}\) was an? [a-z]+ born in (?P<value>[A-Z]\w+)",
            rf"{{entity}} was born in (?P<value>[A-Z]\w+) in {_YEAR}",
        ],
    ),
    _relation(
        "profession",
        [r"What was the profession of (?P<entity>.+?)\?", r"What did (?P<entity>.+?) do for a living\?"],
        [
            rf"{{entity}} \({_YEAR}{_DASH}{_YEAR}\) was an? (?P<value>[a-z]+)",
            r"{entity} was born in [^.]*? and worked as an? (?P<value>[a-z]+)",
        ],
    ),
    _relation(
        "best-known work",
        [r"What is (?P<entity>.+?) best known for\?"],
        [
            r"{entity} is best known for (?P<value>the [\w ]+?)\.",
            r"The best-known work of {entity} is (?P<value>the [\w ]+?)\.",
        ],
    ),
    _relation(
        "river length",
        [r"How long is the (?P<entity>.+?)\?"],
        [r"The {entity} is (?P<value>\d+ km) long", r"The {entity} runs for (?P<value>\d+ km)"],
    ),
    _relation(
        "river source",
        [r"Where does the (?P<entity>.+?) rise\?"],
        [r"The {entity} rises on (?P<value>Mount [A-Z]\w+)"],
    ),
    _relation(
        "festival month",
        [r"In which month is the (?P<entity>.+?) held\?"],
        [r"The {entity} is held in [A-Z]\w+ every (?P<value>[A-Z]\w+)"],
    ),
    _relation(
        "festival town",
        [r"In which town is the (?P<entity>.+?) held\?", r"Where is the (?P<entity>.+?) held\?"],
        [r"The {entity} is held in (?P<value>[A-Z]\w+)"],
    ),
)


class RAGWorld:
    """The simulated reader (see the module docstring). Holds no answer key."""

    def __init__(self, relations: Sequence[Relation] = ENCYCLOPEDIA) -> None:
        if not relations:
            raise ValueError("a RAGWorld needs at least one relation")
        self.relations = tuple(relations)
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()

    @property
    def calls(self) -> dict[str, int]:
        """How many requests were ``answered`` and how many got ``abstained`` (I don't know)."""
        with self._lock:
            return {kind: self._calls[kind] for kind in ("answered", "abstained")}

    def lm(self, *, model: str = "rag-world", cache: bool | CompletionCache = False) -> ScriptedLM:
        """An in-process LM answering from this world."""
        return ScriptedLM(self.responder, model=model, cache=cache)

    def responder(self, request: LMRequest | RecordedRequest) -> str:
        """The reply text to a request (an :class:`LMRequest` or an HTTP server's
        :class:`~sigforge.testing.RecordedRequest`)."""
        prompt = read_prompt(request)
        question, passages = self._question(prompt), self._passages(prompt)
        found = self.answer(question, passages) if question is not None else None
        with self._lock:
            self._calls["answered" if found else "abstained"] += 1
        return format_reply(prompt, self._outputs(prompt, question, found))

    def answer(self, question: str, passages: Sequence[str]) -> tuple[str, list[Evidence]] | None:
        """The answer to ``question`` from ``passages`` and the evidence for it (``None``:
        the question is not understood, or no passage states the fact)."""
        for relation in self.relations:
            entity = relation.entity(question)
            if entity is None:
                continue
            evidence = []
            for position, passage in enumerate(passages, start=1):
                stated = relation.find(entity, passage)
                if stated is not None:
                    evidence.append(Evidence(position, *stated))
            if evidence:
                value = evidence[0].value
                return value, [e for e in evidence if e.value == value]
            return None
        return None

    # -- reading the prompt -----------------------------------------------------------------

    def _question(self, prompt: ReadPrompt) -> str | None:
        if "question" in prompt.values:
            return prompt.values["question"].strip()
        for value in prompt.values.values():
            if any(relation.entity(value) is not None for relation in self.relations):
                return value.strip()
        return None

    def _passages(self, prompt: ReadPrompt) -> list[str]:
        for name, value in prompt.values.items():
            if name == "question":
                continue
            passages = _as_list(value)
            if passages is not None:
                return passages
        return []

    def _outputs(
        self, prompt: ReadPrompt, question: str | None, found: tuple[str, list[Evidence]] | None
    ) -> dict[str, Any]:
        if found is None:
            answer, citations = ABSTAIN, []
            reasoning = "None of the passages states what the question asks."
        else:
            answer, evidence = found
            citations = [e.position for e in evidence]
            first = evidence[0]
            reasoning = f'Passage {first.position} says: "{first.sentence}"'
        values: dict[str, Any] = {}
        for field in prompt.outputs:
            if field.name == "reasoning":
                values[field.name] = reasoning
            elif field.type_name.replace(" ", "") == "list[int]":
                values[field.name] = json.dumps(citations) if not prompt.json_reply else citations
            else:
                values[field.name] = answer
        return values


def _as_list(value: str) -> list[str] | None:
    """A prompt value as a list of texts: a JSON array, or DSPy's numbered ``[n] «...»`` list."""
    text = value.strip()
    if text.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, list) and all(isinstance(item, str) for item in data):
            return list(data)
    items = re.findall(r"^\[\d+\] (?:«««\n(.*?)\n»»»|«(.*?)»)$", text, re.MULTILINE | re.DOTALL)
    if items:
        return [re.sub(r"\n    ", "\n", fenced) if fenced else plain for fenced, plain in items]
    return None


def _sentence(text: str, start: int, end: int) -> str:
    """The sentence of ``text`` around ``text[start:end]``."""
    begin = max(text.rfind(". ", 0, start), text.rfind("\n", 0, start))
    finish = text.find(". ", end)
    return text[begin + 1 if begin >= 0 else 0 : finish + 1 if finish >= 0 else len(text)].strip()
