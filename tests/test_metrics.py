"""Built-in metrics against hand-computed values, edge cases included.

Semantics follow DSPy's answer metrics (normalization, max over gold answers, token F1,
passages containing an answer as whole tokens); the expected values below are worked
out by hand in the comments.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from enum import Enum

import pytest

from generated.classify import ClassifySentimentOutputs
from generated.qa import AnswerQuestionOutputs
from sigforge.runtime.example import Example
from sigforge.runtime.metrics import (
    Score,
    answer_match,
    answer_match_on,
    as_score,
    exact_match,
    exact_match_on,
    f1_on,
    f1_score,
    normalize_text,
    passage_match,
    passage_match_on,
)

DECOMPOSED_CAFE = "cafe\u0301"  # "e" + combining acute accent
COMPOSED_CAFE = "caf\u00e9"


# ---------------------------------------------------------------- normalize_text
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The,  Eiffel  Tower!", "eiffel tower"),
        ("", ""),
        ("   ", ""),
        ("A an THE", ""),  # only articles
        ("  Hello\tWorld\n", "hello world"),
        ("U.S.A.", "usa"),  # punctuation is removed, not replaced by a space
        ("rock'n'roll", "rocknroll"),
        ("theatre another anthem", "theatre another anthem"),  # articles as whole words only
        ("the-end", "theend"),  # punctuation goes first, so "the" is no longer a word
        ("An apple, a day", "apple day"),
        ("«Quoted» — text", "«quoted» — text"),  # only ASCII punctuation is removed
    ],
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


def test_normalize_text_is_nfd_so_composed_and_decomposed_accents_are_equal() -> None:
    assert normalize_text(COMPOSED_CAFE.upper()) == DECOMPOSED_CAFE
    assert normalize_text(COMPOSED_CAFE) == normalize_text(DECOMPOSED_CAFE)
    assert normalize_text("cafe") != normalize_text(COMPOSED_CAFE)  # accents are kept


def test_an_article_followed_by_a_combining_accent_is_a_different_word() -> None:
    # "thé" (tea) decomposed is "the" + U+0301: a word of its own, not the article
    assert normalize_text("Thé vert") == "the\u0301 vert"


# ---------------------------------------------------------------- exact_match
@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("The Eiffel Tower", ["Eiffel Tower", "Louvre"], True),
        ("paris", "Paris", True),
        ("paris", ["Paris, France"], False),
        ("Louvre", ["Eiffel Tower", "the Louvre."], True),  # any gold will do
        ("", "", True),
        ("the", "", True),  # both normalize to ""
        ("", "Paris", False),
        (COMPOSED_CAFE, DECOMPOSED_CAFE, True),
        ("cafe", COMPOSED_CAFE, False),
        ("New  York", ("new york",), True),  # any sequence of golds
    ],
)
def test_exact_match(prediction: str, answers: str | list[str], expected: bool) -> None:
    assert exact_match(prediction, answers) is expected


def test_exact_match_needs_at_least_one_gold_answer() -> None:
    with pytest.raises(ValueError, match="no gold answers"):
        exact_match("x", [])
    with pytest.raises(TypeError, match="must be strings"):
        exact_match("x", [3])  # type: ignore[list-item]


# ---------------------------------------------------------------- f1_score
@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        # 5 predicted tokens, 1 gold token, 1 shared: P=1/5, R=1, F1=2*(1/5)/(6/5)=1/3
        ("Eiffel Tower is in Paris", "Paris", 1 / 3),
        ("the Eiffel Tower", "Eiffel Tower", 1.0),
        # multiplicity: "paris" twice predicted, once gold: shared 1, P=1/2, R=1 -> 2/3
        ("paris paris", "paris", 2 / 3),
        ("", "", 0.0),  # both empty: 0, as in DSPy
        ("", "Paris", 0.0),
        ("Paris", "", 0.0),
        ("London", "Paris", 0.0),
        # 3 predicted (tower paris france), 2 gold (eiffel tower): shared 1,
        # P=1/3, R=1/2 -> 2*(1/6)/(5/6) = 2/5
        ("Tower, Paris, France", "The Eiffel Tower", 0.4),
    ],
)
def test_f1_score(prediction: str, answers: str | list[str], expected: float) -> None:
    assert f1_score(prediction, answers) == pytest.approx(expected)


def test_f1_score_takes_the_best_gold_answer() -> None:
    # "a b c" -> tokens b, c ("a" is an article); "b c d" -> b, c, d; shared 2:
    # P=2/2, R=2/3 -> 2*(2/3)/(5/3) = 0.8; against "x" nothing is shared
    assert f1_score("a b c", "b c d") == pytest.approx(0.8)
    assert f1_score("a b c", ["x", "b c d"]) == pytest.approx(0.8)


# ---------------------------------------------------------------- passage_match
@pytest.mark.parametrize(
    ("passages", "answers", "expected"),
    [
        (["The Eiffel Tower is in Paris."], "eiffel tower", True),
        (["Nothing here.", "The Eiffel Tower is in Paris."], "PARIS", True),
        (["Parisian cafés are famous"], "Paris", False),  # whole tokens only
        (["Paris, France"], ["Lyon", "france"], True),
        ([], "Paris", False),
        ("One single passage about Rome", "rome", True),  # a lone string is one passage
        (["Il a payé 100€ hier"], "100", True),  # "€" is a token of its own
        (["Il a payé 100€ hier"], "100€", True),
        (["Le " + COMPOSED_CAFE + " est bon"], "CAF\u00c9", True),
        (["Le cafe est bon"], COMPOSED_CAFE, False),
        (["anything"], "", True),  # an empty answer is in every passage (as in DSPy)
        (["anything"], "The", True),
        (["Eiffel\nTower"], "eiffel tower", True),  # newlines separate tokens too
        (["tower eiffel"], "eiffel tower", False),  # order matters
    ],
)
def test_passage_match(passages: str | list[str], answers: str | list[str], expected: bool) -> None:
    assert passage_match(passages, answers) is expected


# ---------------------------------------------------------------- answer_match
def test_answer_match_is_exact_at_threshold_one_else_f1_at_or_above_it() -> None:
    golds = ["Eiffel Tower", "Louvre"]
    assert answer_match("The Eiffel Tower", golds) is True
    # "Eiffel Tower in Paris" vs "Eiffel Tower": P=2/4, R=1 -> F1 = 2/3
    assert answer_match("Eiffel Tower in Paris", golds) is False
    assert answer_match("Eiffel Tower in Paris", golds, threshold=0.5) is True
    assert answer_match("Eiffel Tower in Paris", golds, threshold=2 / 3) is True  # at: passes
    assert answer_match("Eiffel Tower in Paris", golds, threshold=0.7) is False
    assert answer_match("", "", threshold=0.5) is False  # F1 of empty sides is 0


# ---------------------------------------------------------------- metrics for a field
def qa(answer: str) -> AnswerQuestionOutputs:
    return AnswerQuestionOutputs(answer=answer, confidence=0.5)


def test_exact_match_on_compares_the_field_with_the_label() -> None:
    metric = exact_match_on("answer")
    example = Example({"question": "Capital of France?"}, {"answer": "Paris"})
    assert metric(example, qa("paris.")) is True
    assert metric(example, qa("Lyon")) is False
    several = Example({"question": "q"}, {"answer": ["Paris", "City of Light"]})
    assert metric(several, qa("the city of light")) is True
    assert repr(metric) == "exact_match_on('answer')"


def test_a_metric_on_a_differently_named_label_and_on_mappings() -> None:
    metric = exact_match_on("answer", "gold")
    assert metric.__name__ == "exact_match_on('answer', 'gold')"
    assert metric(Example({"q": "x"}, {"gold": "Yes"}), {"answer": "yes"}) is True


def test_feedback_says_what_was_expected_and_what_came() -> None:
    example = Example({"question": "q"}, {"answer": "Paris"})
    metric = exact_match_on("answer", feedback=True)
    assert metric(example, qa("Lyon")) == Score(0.0, "expected 'Paris', got 'Lyon'")
    assert metric(example, qa("PARIS")) == Score(1.0, "correct")
    several = Example({"question": "q"}, {"answer": ["Paris", "Lutetia"]})
    assert metric(several, qa("Rome")) == Score(
        0.0, "expected one of 'Paris', 'Lutetia', got 'Rome'"
    )
    # "light city" vs "the city of light" -> (city, of, light): shared 2, P=1, R=2/3 -> 0.8
    f1 = f1_on("answer", feedback=True)(several, qa("light city"))
    assert isinstance(f1, Score)
    assert f1.value == pytest.approx(0.0)  # against Paris / Lutetia nothing is shared
    light = Example({"question": "q"}, {"answer": "the city of light"})
    scored = f1_on("answer", feedback=True)(light, qa("light city"))
    assert isinstance(scored, Score) and scored.value == pytest.approx(0.8)
    assert scored.feedback == "token F1 0.80: expected 'the city of light', got 'light city'"
    assert f1_on("answer")(light, qa("light city")) == pytest.approx(0.8)


def test_answer_match_on_with_a_threshold() -> None:
    example = Example({"question": "q"}, {"answer": "Eiffel Tower"})
    strict, loose = answer_match_on("answer"), answer_match_on("answer", threshold=0.5)
    assert strict(example, qa("Eiffel Tower in Paris")) is False
    assert loose(example, qa("Eiffel Tower in Paris")) is True
    assert loose.__name__ == "answer_match_on('answer', threshold=0.5)"


def test_typed_fields_literals_enums_and_numbers_compare_as_text() -> None:
    prediction = ClassifySentimentOutputs(sentiment="positive", confidence=0.9)
    assert exact_match_on("sentiment")(
        Example({"text": "t"}, {"sentiment": "Positive"}), prediction
    )

    class Color(Enum):
        RED = "red"

    @dataclass
    class Out:
        color: Color
        count: int

    example = Example({"q": "x"}, {"color": Color.RED, "count": 12})
    assert exact_match_on("color")(example, Out(Color.RED, 12)) is True
    assert exact_match_on("count")(example, Out(Color.RED, 12)) is True
    assert exact_match_on("count")(example, Out(Color.RED, 7)) is False


def test_passage_match_on_reads_passages_from_the_prediction() -> None:
    @dataclass
    class Passage:
        text: str

    example = Example({"question": "q"}, {"answer": "Frank Herbert"})
    metric = passage_match_on("context", feedback=True)
    found = metric(example, {"context": [Passage("Dune"), Passage("Dune is by Frank Herbert.")]})
    assert found == Score(1.0, "'Frank Herbert' appears in the context")
    missing = metric(example, {"context": ["Dune", "A novel"]})
    assert missing == Score(
        0.0, "expected 'Frank Herbert' in the context; none of its 2 passages contains it"
    )
    assert passage_match_on("context")(example, {"context": ["by frank herbert"]}) is True


def test_misuse_is_a_clear_error_not_a_score() -> None:
    example = Example({"question": "q"}, {"answer": "Paris"})
    no_field = r"exact_match_on\('answr'\): the prediction \(AnswerQuestionOutputs\) has no field"
    with pytest.raises(AttributeError, match=no_field):
        exact_match_on("answr")(example, qa("Paris"))
    with pytest.raises(KeyError, match="neither a label nor an input"):
        exact_match_on("answer", "gold")(example, qa("Paris"))
    with pytest.raises(TypeError, match="compares text, but the prediction's 'items' is a list"):
        exact_match_on("items", "answer")(example, {"items": ["Paris"]})
    with pytest.raises(ValueError, match="holds no gold answer"):
        exact_match_on("answer")(Example({"q": "x"}, {"answer": []}), qa("Paris"))
    with pytest.raises(TypeError, match="must hold passages"):
        passage_match_on("context")(example, {"context": 3})


def test_field_metrics_pickle_and_keep_their_behaviour() -> None:
    example = Example({"question": "q"}, {"answer": "Paris"})
    for metric in (
        exact_match_on("answer", feedback=True),
        answer_match_on("answer", threshold=0.5),
    ):
        copy = pickle.loads(pickle.dumps(metric))
        assert repr(copy) == repr(metric)
        assert copy(example, qa("Lyon")) == metric(example, qa("Lyon"))
        assert copy(example, qa("paris")) == metric(example, qa("paris"))


def test_as_score_is_unchanged() -> None:
    assert as_score(True) == Score(1.0)
    assert as_score(0.25) == Score(0.25)
    assert as_score(Score(0.5, "half")) == Score(0.5, "half")
    with pytest.raises(TypeError, match="not str"):
        as_score("1")  # type: ignore[arg-type]
