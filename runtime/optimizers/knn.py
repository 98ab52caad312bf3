"""KNNFewShot: demos chosen per call from the nearest training examples (DSPy's ``KNNFewShot``).

``KNNFewShot(k, trainset, embedder, **bootstrap settings).compile(student)`` returns a
:class:`KNNProgram`. Each call embeds the call's inputs, takes the ``k`` training
examples whose inputs are most similar (cosine similarity of the embeddings; each
example's inputs are embedded once, when the optimizer is made), runs
:class:`~sigforge.runtime.optimizers.bootstrap.BootstrapFewShot` with those ``k``
examples as its training set -- bootstrapped demos from the teacher's successful runs on
them, then labeled ones -- and answers with the program compiled that way. As in DSPy,
every call bootstraps again (the teacher's LM calls on the neighbours are part of the
call; an LM cache makes repeated neighbours free).

Inputs are embedded as DSPy writes them: ``"name: value | name: value"`` over the input
fields, in order. Ties in similarity go to the earlier training example.

Differences from DSPy: the result is a :class:`KNNProgram` module wrapping a copy of the
student (its predictors are named ``student`` or ``student.<name>``) instead of the
student's copy with its ``forward`` replaced; similarity is the cosine (DSPy takes the
dot product, the same for normalized embeddings).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic

from ..embeddings import Embedder, cosine_similarity
from ..example import Example
from ..metrics import Metric
from ..module import Module, Program
from .base import ProgramT, callable_name, optimization_record, reset_copy, run_program
from .bootstrap import BootstrapFewShot

__all__ = ["KNNFewShot", "KNNProgram", "NearestExamples"]


def _as_text(inputs: Mapping[str, Any]) -> str:
    return " | ".join(f"{key}: {value}" for key, value in inputs.items())


class NearestExamples:
    """The ``k`` training examples whose inputs are nearest to given inputs."""

    def __init__(self, k: int, trainset: Sequence[Example], embedder: Embedder) -> None:
        if k < 1:
            raise ValueError("k must be at least 1")
        if not trainset:
            raise ValueError("the training set is empty")
        self.k = k
        self.trainset = list(trainset)
        self.embedder = embedder
        self.vectors = embedder.embed([_as_text(e.inputs) for e in self.trainset])

    def __call__(self, inputs: Mapping[str, Any]) -> list[Example]:
        (query,) = self.embedder.embed([_as_text(inputs)])
        scores = [cosine_similarity(query, vector) for vector in self.vectors]
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return [self.trainset[i] for i in order[: self.k]]


@dataclass(frozen=True)
class _PerCall:
    """What a :class:`KNNProgram` needs besides its student: shared, never saved or copied."""

    nearest: NearestExamples
    bootstrap: BootstrapFewShot
    teacher: Program | None


class KNNProgram(Module, Generic[ProgramT]):
    """The student with demos bootstrapped per call from the nearest training examples."""

    def __init__(
        self,
        student: ProgramT,
        nearest: NearestExamples,
        bootstrap: BootstrapFewShot,
        teacher: Program | None,
    ) -> None:
        self.student = student
        # kept in a plain object, so the teacher's predictors are not this program's
        self._per_call = _PerCall(nearest, bootstrap, teacher)

    def forward(self, **inputs: Any) -> Any:
        """Run the student compiled on the ``k`` training examples nearest to ``inputs``."""
        return run_program(self.compiled_for(inputs), inputs)

    def compiled_for(self, inputs: Mapping[str, Any]) -> ProgramT:
        """The student as compiled for ``inputs`` (the program a call runs)."""
        per_call = self._per_call
        program, _ = per_call.bootstrap.bootstrap_compile(
            self.student, per_call.nearest(inputs), teacher=per_call.teacher
        )
        return program


class KNNFewShot:
    """Per call: BootstrapFewShot on the ``k`` training examples nearest to the inputs.

    The remaining settings are :class:`BootstrapFewShot`'s (``metric``,
    ``max_bootstrapped_demos``, ``max_labeled_demos``, ...), used for every call.
    """

    def __init__(
        self,
        k: int,
        trainset: Sequence[Example],
        embedder: Embedder,
        *,
        metric: Metric | None = None,
        metric_threshold: float | None = None,
        max_bootstrapped_demos: int = 4,
        max_labeled_demos: int = 16,
        max_rounds: int = 1,
        max_errors: int | None = None,
        seed: int = 0,
        num_threads: int = 1,
    ) -> None:
        self.nearest = NearestExamples(k, trainset, embedder)
        self.bootstrap = BootstrapFewShot(
            metric,
            metric_threshold=metric_threshold,
            max_bootstrapped_demos=max_bootstrapped_demos,
            max_labeled_demos=max_labeled_demos,
            max_rounds=max_rounds,
            max_errors=max_errors,
            seed=seed,
            num_threads=num_threads,
            progress=False,
        )

    @property
    def seed(self) -> int:
        return self.bootstrap.seed

    def settings(self) -> dict[str, Any]:
        return {
            "k": self.nearest.k,
            "embedder": type(self.nearest.embedder).__name__,
            "metric": callable_name(self.bootstrap.metric),
            **{k: v for k, v in self.bootstrap.settings().items() if k != "metric"},
        }

    def compile(
        self, student: ProgramT, *, teacher: Program | None = None
    ) -> KNNProgram[ProgramT]:
        """A :class:`KNNProgram` over a demo-less copy of ``student`` (left unchanged)."""
        program = KNNProgram(reset_copy(student), self.nearest, self.bootstrap, teacher)
        program.optimization = optimization_record(
            "KNNFewShot",
            self.settings(),
            seed=self.seed,
            scores={},
            usage=None,
            trainset_size=len(self.nearest.trainset),
        )
        return program
