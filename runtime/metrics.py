"""Metrics: how good a prediction is for an example.

A metric is a plain typed callable ``metric(example, prediction) -> float | bool | Score``.
Return a :class:`Score` to add feedback text: optimizers that reflect on their failures
(GEPA) read it, the others use the value.

Built in, with DSPy's semantics (see docs/evaluation.md for the few deliberate
differences):

* text functions over answer strings: :func:`normalize_text`, :func:`exact_match`,
  :func:`f1_score` (token F1), :func:`passage_match`, :func:`answer_match` (exact match,
  or F1 at or above a threshold). Gold answers are one string or several; a prediction
  scores against the best of them.
* factories of metrics for one output field: :func:`exact_match_on`, :func:`f1_on`,
  :func:`answer_match_on`, :func:`passage_match_on`. ``exact_match_on("answer")``
  compares ``prediction.answer`` with ``example["answer"]``; with ``feedback=True`` the
  metric returns a :class:`Score` whose feedback says what was expected and what came.
"""

from __future__ import annotations

import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeAlias

from .example import Example

__all__ = [
    "FieldMetric",
    "Metric",
    "MetricValue",
    "Score",
    "answer_match",
    "answer_match_on",
    "as_score",
    "exact_match",
    "exact_match_on",
    "f1_on",
    "f1_score",
    "normalize_text",
    "passage_match",
    "passage_match_on",
]

@dataclass(frozen=True, slots=True)
class Score:
    """A metric's value (0 to 1 by convention; ``True`` counts 1) with optional feedback."""

    value: float
    #: what was wrong or right, in words an LM can act on ("expected 12, got 7")
    feedback: str = ""


MetricValue: TypeAlias = float | bool | Score
#: ``metric(example, prediction)``; the prediction is what the program returned
Metric: TypeAlias = Callable[[Example, Any], MetricValue]


def as_score(value: MetricValue) -> Score:
    """A metric's result as a :class:`Score` (``True`` is 1.0, ``False`` 0.0)."""
    if isinstance(value, Score):
        return value
    if isinstance(value, bool | int | float):
        return Score(float(value))
    raise TypeError(
        f"a metric must return a float, a bool or a Score, not {type(value).__name__}"
    )


# ---------------------------------------------------------------- text metrics
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = frozenset({"a", "an", "the"})


def normalize_text(text: str) -> str:
    """``text`` as answers are compared: the normal form of SQuAD-style QA evaluation.

    Unicode NFD (a composed "é" equals "e" + combining accent; accents are kept, so
    "café" still differs from "cafe"), lowercase, ASCII punctuation removed, the words
    "a", "an" and "the" removed, runs of whitespace collapsed to one space, ends stripped.
    """
    words = unicodedata.normalize("NFD", text).lower().translate(_PUNCTUATION).split()
    return " ".join(word for word in words if word not in _ARTICLES)


def exact_match(prediction: str, answers: str | Sequence[str]) -> bool:
    """Whether ``prediction`` equals one of the gold ``answers`` after :func:`normalize_text`."""
    normalized = normalize_text(prediction)
    return any(normalized == normalize_text(answer) for answer in _golds(answers))


def f1_score(prediction: str, answers: str | Sequence[str]) -> float:
    """Token F1 of ``prediction`` against the best of the gold ``answers``, 0 to 1.

    Both sides are normalized (:func:`normalize_text`) and split on whitespace; tokens
    are counted with multiplicity. No shared token gives 0, also when both sides are
    empty after normalization (as in DSPy; SQuAD 2.0 would give 1 there).
    """
    predicted = normalize_text(prediction).split()
    return max(_token_f1(predicted, normalize_text(answer).split()) for answer in _golds(answers))


def _token_f1(predicted: list[str], gold: list[str]) -> float:
    shared = sum((Counter(predicted) & Counter(gold)).values())
    if shared == 0:
        return 0.0
    precision = shared / len(predicted)
    recall = shared / len(gold)
    return 2 * precision * recall / (precision + recall)


def passage_match(passages: str | Sequence[str], answers: str | Sequence[str]) -> bool:
    """Whether one of the gold ``answers`` appears in one of the ``passages``.

    Both are normalized (:func:`normalize_text`) and split into tokens (runs of
    letters, digits and combining marks; any other visible character is a token of its
    own), and an answer must appear as a run of whole tokens: "Paris" is in "Paris,
    France" but not in "Parisian". An answer that normalizes to nothing (``""``,
    ``"the"``) appears in every passage, as in DSPy.
    """
    texts = [passages] if isinstance(passages, str) else list(passages)
    wanted = [_tokens(normalize_text(answer)) for answer in _golds(answers)]
    for passage in texts:
        tokens = _tokens(normalize_text(passage))
        for answer in wanted:
            size = len(answer)
            if any(tokens[i : i + size] == answer for i in range(len(tokens) - size + 1)):
                return True
    return False


def _tokens(text: str) -> list[str]:
    """Runs of letters, digits and marks; other non-space characters alone; spaces split."""
    tokens: list[str] = []
    word: list[str] = []
    for char in text:
        kind = unicodedata.category(char)[0]
        if kind in "LNM":
            word.append(char)
            continue
        if word:
            tokens.append("".join(word))
            word = []
        if kind not in "ZC":  # separators and control characters (\n, \t) split
            tokens.append(char)
    if word:
        tokens.append("".join(word))
    return tokens


def answer_match(prediction: str, answers: str | Sequence[str], *, threshold: float = 1.0) -> bool:
    """Normalized match: :func:`exact_match` when ``threshold >= 1``, else token F1 >= threshold.

    (DSPy's ``answer_exact_match`` with ``frac=threshold``.)
    """
    if threshold >= 1.0:
        return exact_match(prediction, answers)
    return f1_score(prediction, answers) >= threshold


def _golds(answers: str | Sequence[str]) -> list[str]:
    golds = [answers] if isinstance(answers, str) else list(answers)
    if not golds:
        raise ValueError("no gold answers to compare with (an empty list)")
    for gold in golds:
        if not isinstance(gold, str):
            raise TypeError(f"gold answers must be strings, not {type(gold).__name__}")
    return golds


# ---------------------------------------------------------------- metrics for a field
class FieldMetric:
    """A metric comparing one field of the prediction with a label of the example.

    Built by :func:`exact_match_on`, :func:`f1_on`, :func:`answer_match_on` and
    :func:`passage_match_on`; picklable (so it runs on Ray workers) and named after the
    call that built it (``exact_match_on('answer')``).
    """

    __slots__ = ("__name__", "_feedback", "_kind", "_threshold", "field", "label")

    def __init__(
        self,
        kind: str,
        field: str,
        label: str,
        *,
        threshold: float = 1.0,
        feedback: bool = False,
        name: str,
    ) -> None:
        #: the prediction's field and the example's label (or input) it is compared with
        self.field = field
        self.label = label
        self._kind = kind
        self._threshold = threshold
        self._feedback = feedback
        self.__name__ = name

    def __repr__(self) -> str:
        return self.__name__

    def __call__(self, example: Example, prediction: Any) -> MetricValue:
        value = _field_of(prediction, self.field, self.__name__)
        golds = _gold_texts(example[self.label], self.__name__, self.label)
        if self._kind == "passage":
            passages = _passages(value, self.__name__, self.field)
            found = passage_match(passages, golds)
            if not self._feedback:
                return found
            wanted = _quoted_golds(golds)
            if found:
                return Score(1.0, f"{wanted} appears in the {self.field}")
            return Score(
                0.0,
                f"expected {wanted} in the {self.field}; "
                f"none of its {len(passages)} passages contains it",
            )
        text = _text(value, self.__name__, self.field)
        result: bool | float
        if self._kind == "exact":
            result = exact_match(text, golds)
        elif self._kind == "f1":
            result = f1_score(text, golds)
        else:
            result = answer_match(text, golds, threshold=self._threshold)
        if not self._feedback:
            return result
        expected = f"expected {_quoted_golds(golds)}, got {_quote(text)}"
        if self._kind == "f1":
            return Score(float(result), f"token F1 {float(result):.2f}: {expected}")
        return Score(float(result), "correct" if result else expected)


def exact_match_on(field: str, label: str | None = None, *, feedback: bool = False) -> FieldMetric:
    """Metric: :func:`exact_match` of ``prediction.<field>`` against ``example[label]``.

    ``label`` defaults to ``field``; the label holds one gold answer or a list of them.
    ``feedback=True``: return a :class:`Score` with "correct" or "expected 'Paris', got
    'Lyon'" instead of a bool.
    """
    name = _name("exact_match_on", field, label, feedback)
    return FieldMetric("exact", field, label or field, feedback=feedback, name=name)


def f1_on(field: str, label: str | None = None, *, feedback: bool = False) -> FieldMetric:
    """Metric: token :func:`f1_score` of ``prediction.<field>`` against ``example[label]``."""
    name = _name("f1_on", field, label, feedback)
    return FieldMetric("f1", field, label or field, feedback=feedback, name=name)


def answer_match_on(
    field: str, label: str | None = None, *, threshold: float = 1.0, feedback: bool = False
) -> FieldMetric:
    """Metric: :func:`answer_match` (exact, or F1 >= ``threshold``) on one field."""
    extra = f", threshold={threshold!r}" if threshold < 1.0 else ""
    return FieldMetric(
        "answer",
        field,
        label or field,
        threshold=threshold,
        feedback=feedback,
        name=_name("answer_match_on", field, label, feedback, extra),
    )


def passage_match_on(field: str, label: str = "answer", *, feedback: bool = False) -> FieldMetric:
    """Metric: whether a passage of ``prediction.<field>`` contains ``example[label]``.

    For retrieval steps: the field holds a list of passages (strings, or objects with
    a ``text`` attribute), the label the gold answer(s); see :func:`passage_match`.
    """
    return FieldMetric(
        "passage",
        field,
        label,
        feedback=feedback,
        name=_name("passage_match_on", field, None if label == "answer" else label, feedback),
    )


def _name(factory: str, field: str, label: str | None, feedback: bool, extra: str = "") -> str:
    args = [repr(field)]
    if label is not None and label != field:
        args.append(repr(label))
    return f"{factory}({', '.join(args)}{extra}{', feedback=True' if feedback else ''})"


def _field_of(prediction: Any, field: str, metric: str) -> Any:
    if isinstance(prediction, Mapping):
        if field in prediction:
            return prediction[field]
    elif hasattr(prediction, field):
        return getattr(prediction, field)
    raise AttributeError(
        f"{metric}: the prediction ({type(prediction).__name__}) has no field {field!r}"
    )


def _text(value: Any, metric: str, field: str) -> str:
    """A field's value as answer text: strings as they are, enums by value, numbers printed."""
    if isinstance(value, Enum):
        value = value.value
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    raise TypeError(
        f"{metric}: compares text, but the prediction's {field!r} is a {type(value).__name__}"
    )


def _gold_texts(value: Any, metric: str, label: str) -> list[str]:
    values = list(value) if isinstance(value, list | tuple) else [value]
    if not values:
        raise ValueError(f"{metric}: the example's {label!r} holds no gold answer (an empty list)")
    return [_text(item, metric, label) for item in values]


def _passages(value: Any, metric: str, field: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise TypeError(
            f"{metric}: the prediction's {field!r} must hold passages (a list), "
            f"not a {type(value).__name__}"
        )
    texts = []
    for item in items:
        text = getattr(item, "text", item)
        if not isinstance(text, str):
            raise TypeError(
                f"{metric}: a passage in {field!r} is a {type(item).__name__}, not text"
            )
        texts.append(text)
    return texts


def _quote(text: str, limit: int = 120) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _quoted_golds(golds: list[str]) -> str:
    if len(golds) == 1:
        return _quote(golds[0])
    return "one of " + ", ".join(_quote(gold) for gold in golds)
