"""The example's retrieval-augmented pipeline, its data and its metrics.

:class:`RAG` is a :class:`~sigforge.runtime.module.Module`: it retrieves ``k`` passages
for the question from any :class:`~sigforge.runtime.retrieval.Retriever` (a
``SQLiteVecStore`` built by ``sigforge index``, a Chroma collection, ...) and gives
them, as they are, to the generated ``CitedAnswerer`` (``signatures/rag.sig``: a
chain-of-thought answer with citations). Its result, :class:`CitedAnswer`, keeps the
passages next to the answer, so one evaluation measures retrieval and answering:

* :func:`answer_metric` -- the answer, after SQuAD-style normalization, equals the gold
  one (``I don't know`` for questions the encyclopedia cannot answer);
* :func:`retrieval_hit` -- a retrieved passage names the question's entity and contains
  the gold answer (recall@k; ``None`` for unanswerable questions);
* :func:`citation_correct` -- every cited position exists and a cited passage contains
  the answer (for an abstention: nothing is cited);
* :func:`summarize` -- all of them over an evaluation.

Everything here type-checks under ``mypy --strict`` (CI runs it on ``examples/rag``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from generated.rag import AnswerWithCitationsWithReasoningOutputs, CitedAnswerer
from sigforge.runtime.evaluate import EvaluationResult
from sigforge.runtime.example import Example, load_jsonl
from sigforge.runtime.metrics import Score, exact_match, normalize_text, passage_match
from sigforge.runtime.module import Module
from sigforge.runtime.retrieval import Passage, Passages, Retriever

__all__ = [
    "ABSTAIN",
    "CORPUS",
    "QUESTIONS",
    "RAG",
    "CitedAnswer",
    "RAGReport",
    "answer_metric",
    "citation_correct",
    "load_questions",
    "retrieval_hit",
    "summarize",
]

HERE = Path(__file__).resolve().parent
#: the folder ``sigforge index`` reads
CORPUS = HERE / "corpus"
#: the questions with their gold answers
QUESTIONS = HERE / "questions.jsonl"
#: the gold answer of a question the corpus cannot answer
ABSTAIN = "I don't know"


class CitedAnswer(BaseModel):
    """What :class:`RAG` returns: the answer, its citations and the passages it saw."""

    answer: str
    #: positions in ``passages`` (from 1) of the passages the answer comes from
    citations: list[int]
    reasoning: str
    passages: list[Passage]

    def cited(self) -> list[Passage]:
        """The cited passages (positions that exist), in citation order."""
        return [self.passages[i - 1] for i in self.citations if 1 <= i <= len(self.passages)]


class RAG(Module):
    """Retrieve ``k`` passages, then answer with citations (one LM call)."""

    def __init__(self, retriever: Retriever, *, k: int = 5) -> None:
        self.retriever = retriever
        self.k = k
        self.answer = CitedAnswerer()

    def forward(self, *, question: str) -> CitedAnswer:
        passages = self.retriever.retrieve(question, k=self.k)
        return self._result(passages, self.answer(question=question, passages=passages))

    async def aforward(self, *, question: str) -> CitedAnswer:
        passages = await self.retriever.aretrieve(question, k=self.k)
        outputs = await self.answer.acall(question=question, passages=passages)
        return self._result(passages, outputs)

    @staticmethod
    def _result(passages: Passages, outputs: AnswerWithCitationsWithReasoningOutputs) -> CitedAnswer:
        return CitedAnswer(
            answer=outputs.answer,
            citations=outputs.citations,
            reasoning=outputs.reasoning,
            passages=[passage for passage in passages],  # items read as Passage
        )


def load_questions(split: str | None = "dev", path: Path = QUESTIONS) -> list[Example]:
    """The questions of one split (``"dev"``, ``"train"``; ``None``: all) as examples:
    input ``question``; labels ``answer`` and ``entity``."""
    examples = load_jsonl(path, ["question"], id_key="id")
    return [e for e in examples if split is None or e.labels["split"] == split]


def answer_metric(example: Example, prediction: CitedAnswer) -> Score:
    """1 when the answer matches the gold answer (normalized), with feedback."""
    gold = str(example.labels["answer"])
    if exact_match(prediction.answer, gold):
        return Score(1.0)
    return Score(0.0, f"expected {gold!r}, got {prediction.answer!r}")


def retrieval_hit(example: Example, passages: list[Passage]) -> bool | None:
    """Whether a passage names the entity and contains the gold answer (``None`` when the
    question has no answer in the corpus)."""
    gold = str(example.labels["answer"])
    if gold == ABSTAIN:
        return None
    entity = normalize_text(str(example.labels["entity"]))
    return any(
        entity in normalize_text(passage) and passage_match(passage, gold) for passage in passages
    )


def citation_correct(example: Example, prediction: CitedAnswer) -> bool:
    """Every citation points at a passage, and (unless the answer is an abstention) a cited
    passage contains the answer given."""
    if any(not 1 <= i <= len(prediction.passages) for i in prediction.citations):
        return False
    if normalize_text(prediction.answer) == normalize_text(ABSTAIN):
        return not prediction.citations
    return passage_match(prediction.cited(), prediction.answer)


@dataclass(frozen=True)
class RAGReport:
    """The scores of one evaluation, each 0 to 1."""

    k: int
    questions: int
    answerable: int
    #: answers equal to the gold answer (abstentions included)
    answer_accuracy: float
    #: answerable questions whose retrieved passages hold the answer (recall@k)
    recall_at_k: float
    #: answerable questions answered correctly
    answerable_accuracy: float
    #: unanswerable questions answered "I don't know"
    abstention_accuracy: float
    #: predictions whose citations point at passages holding the answer
    citation_accuracy: float
    errors: int

    def lines(self) -> list[str]:
        """The report as aligned ``name: value`` lines."""
        rows = [
            ("questions", f"{self.questions} ({self.answerable} answerable)"),
            ("answer accuracy", f"{self.answer_accuracy:.3f}"),
            (f"recall@{self.k}", f"{self.recall_at_k:.3f}"),
            ("answerable accuracy", f"{self.answerable_accuracy:.3f}"),
            ("abstention accuracy", f"{self.abstention_accuracy:.3f}"),
            ("citation accuracy", f"{self.citation_accuracy:.3f}"),
            ("errors", str(self.errors)),
        ]
        return [f"{name + ':':22}{value}" for name, value in rows]


def summarize(result: EvaluationResult[CitedAnswer], k: int) -> RAGReport:
    """The report of an evaluation of :class:`RAG` with :func:`answer_metric`."""
    hits: list[bool] = []
    answered: list[float] = []
    abstained: list[float] = []
    cited: list[bool] = []
    for item in result.results:
        prediction = item.prediction
        hit = None if prediction is None else retrieval_hit(item.example, prediction.passages)
        unanswerable = str(item.example.labels["answer"]) == ABSTAIN
        (abstained if unanswerable else answered).append(item.score.value)
        if not unanswerable:
            hits.append(bool(hit))
        cited.append(prediction is not None and citation_correct(item.example, prediction))
    return RAGReport(
        k=k,
        questions=len(result.results),
        answerable=len(answered),
        answer_accuracy=result.score,
        recall_at_k=_mean([float(h) for h in hits]),
        answerable_accuracy=_mean(answered),
        abstention_accuracy=_mean(abstained),
        citation_accuracy=_mean([float(c) for c in cited]),
        errors=result.errors,
    )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
