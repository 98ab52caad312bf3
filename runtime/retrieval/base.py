"""The retrieval interfaces: :class:`Retriever` (read) and :class:`VectorStore` (read and
write), the embedder they use, and the errors of retrieval.

A :class:`Retriever` answers a query with ranked :class:`~.passage.Passages` (best
first), optionally restricted by a metadata ``filter`` (the language is in
:mod:`.filters`). Every retriever has a blocking ``retrieve`` and an ``aretrieve`` for
asyncio code; both take the same arguments and return the same passages.

A :class:`VectorStore` is a retriever you can write to: ``add`` (new ids only),
``upsert`` (insert or replace), ``delete``, ``get`` and ``count``. Texts are embedded by
the store's embedder in batches as they are added. Metadata values are JSON scalars
(``str``, ``int``, ``float``, ``bool``) under string keys that do not start with ``$``.

Stores and clients live beside this module: :class:`~.sqlite_vec.SQLiteVecStore` (one
local SQLite file), :class:`~.chroma.ChromaRetriever` (a Chroma server),
:class:`~.colbert.ColBERTv2` (a ColBERTv2 server; read-only).
:func:`~.config.retriever_from_url` picks one from a URL.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeAlias, runtime_checkable

from ..embeddings import Embedder
from ..errors import SigforgeError
from .passage import Passages

__all__ = [
    "DuplicateIdError",
    "Embedder",
    "Filter",
    "FilterError",
    "Metadata",
    "RetrievalError",
    "Retriever",
    "StoreError",
    "VectorStore",
    "check_metadata",
]

#: metadata stored with a passage: JSON scalars under string keys
Metadata: TypeAlias = Mapping[str, str | int | float | bool]
#: a metadata filter (see :mod:`sigforge.runtime.retrieval.filters`)
Filter: TypeAlias = Mapping[str, Any]


class RetrievalError(SigforgeError):
    """Retrieval failed for a reason that is not the network (see the subclasses).

    Failures of a retrieval *server* (Chroma, ColBERTv2) are the same typed errors as an
    LM's: :class:`~sigforge.runtime.errors.ServerError`,
    :class:`~sigforge.runtime.errors.LMTimeoutError`,
    :class:`~sigforge.runtime.errors.BadRequestError`, ... with ``provider`` naming the
    service.
    """


class StoreError(RetrievalError):
    """A store cannot be used as asked: a file that is not a store, a newer layout, a
    collection or table whose dimensions differ from the embedder's, a missing
    SQLite extension."""


class FilterError(RetrievalError, ValueError):
    """A metadata filter is malformed or uses something the store cannot evaluate."""


class DuplicateIdError(RetrievalError, ValueError):
    """``add`` was given ids that are already stored (or repeated); use ``upsert``."""

    def __init__(self, message: str, ids: Sequence[str]) -> None:
        super().__init__(message)
        #: the offending ids
        self.ids = list(ids)


@runtime_checkable
class Retriever(Protocol):
    """Anything that answers a query with ranked passages.

    ``k`` is how many passages to return at most (fewer when fewer match);
    ``filter`` restricts the candidates by metadata (see
    :mod:`sigforge.runtime.retrieval.filters`); a retriever that cannot filter raises
    :class:`FilterError` for any filter. Scores: higher is better.
    """

    def retrieve(self, query: str, k: int = 5, filter: Filter | None = None) -> Passages:
        """The ``k`` best passages for ``query``, best first."""
        ...

    async def aretrieve(self, query: str, k: int = 5, filter: Filter | None = None) -> Passages:
        """Async :meth:`retrieve`."""
        ...


class VectorStore(abc.ABC):
    """A retriever you can write to: texts are embedded and stored with ids and metadata."""

    #: the embedder that turns texts (and queries) into vectors
    #: (:class:`~sigforge.runtime.embeddings.Embedder`; one that also has
    #: ``async def aembed(texts)`` is awaited by ``aretrieve``)
    embedder: Embedder

    @abc.abstractmethod
    def retrieve(self, query: str, k: int = 5, filter: Filter | None = None) -> Passages:
        """The ``k`` stored passages closest to ``query``, best first."""

    @abc.abstractmethod
    async def aretrieve(self, query: str, k: int = 5, filter: Filter | None = None) -> Passages:
        """Async :meth:`retrieve`."""

    @abc.abstractmethod
    def add(
        self,
        texts: Sequence[str],
        *,
        ids: Sequence[str] | None = None,
        metadata: Sequence[Metadata | None] | None = None,
    ) -> list[str]:
        """Embed and store new passages; returns their ids.

        ``ids`` default to fresh random ids. Ids that are already stored (or repeated
        in the call) raise :class:`DuplicateIdError` before anything is embedded.
        """

    @abc.abstractmethod
    def upsert(
        self,
        texts: Sequence[str],
        *,
        ids: Sequence[str],
        metadata: Sequence[Metadata | None] | None = None,
    ) -> list[str]:
        """Store passages under ``ids``, replacing (text, vector and metadata) any that exist."""

    @abc.abstractmethod
    def delete(self, ids: Sequence[str]) -> int:
        """Remove the passages with these ids; returns how many there were."""

    @abc.abstractmethod
    def get(self, ids: Sequence[str]) -> Passages:
        """The stored passages with these ids, in the order asked (missing ids left out;
        scores are ``None``)."""

    @abc.abstractmethod
    def count(self) -> int:
        """How many passages are stored."""


# -- checks shared by the stores ---------------------------------------------------------


def check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def check_key(key: object, where: str) -> str:
    """``key`` if it can name a metadata field, else :class:`FilterError`/``ValueError``."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"{where}: metadata keys must be non-empty strings, got {key!r}")
    if key.startswith("$") or '"' in key or "\\" in key:
        raise ValueError(
            f"{where}: metadata key {key!r} may not start with '$' or contain '\"' or '\\'"
        )
    return key


def check_metadata(metadata: Metadata | None, where: str) -> dict[str, str | int | float | bool]:
    """A copy of ``metadata`` after checking keys and values (``ValueError`` if unfit)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValueError(f"{where}: metadata must be a mapping, got {type(metadata).__name__}")
    checked: dict[str, str | int | float | bool] = {}
    for key, value in metadata.items():
        check_key(key, where)
        if not isinstance(value, str | int | float | bool):
            raise ValueError(
                f"{where}: metadata value of {key!r} must be a str, int, float or bool, "
                f"got {type(value).__name__}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{where}: metadata value of {key!r} must be finite")
        checked[key] = value
    return checked


def check_batch(
    texts: Sequence[str],
    ids: Sequence[str] | None,
    metadata: Sequence[Metadata | None] | None,
) -> tuple[list[str], list[str] | None, list[dict[str, str | int | float | bool]]]:
    """``texts``, ``ids`` and ``metadata`` as lists after checking types, lengths and
    that no id repeats (:class:`DuplicateIdError`)."""
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] must be a str, got {type(text).__name__}")
    id_list: list[str] | None = None
    if ids is not None:
        if isinstance(ids, str):
            raise TypeError("ids must be a sequence of strings, not one string")
        id_list = list(ids)
        if len(id_list) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(id_list)} ids")
        for index, item in enumerate(id_list):
            if not isinstance(item, str) or not item:
                raise ValueError(f"ids[{index}] must be a non-empty str, got {item!r}")
        seen: set[str] = set()
        repeated = [i for i in id_list if i in seen or seen.add(i)]  # type: ignore[func-returns-value]
        if repeated:
            raise DuplicateIdError(
                f"ids repeated within one call: {', '.join(sorted(set(repeated))[:5])}",
                sorted(set(repeated)),
            )
    checked: list[dict[str, str | int | float | bool]]
    if metadata is None:
        checked = [{} for _ in texts]
    else:
        metadata = list(metadata)
        if len(metadata) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(metadata)} metadata entries")
        checked = [check_metadata(m, f"metadata[{i}]") for i, m in enumerate(metadata)]
    return texts, id_list, checked


def check_vectors(
    vectors: object, count: int, dimensions: int | None, who: str
) -> list[Sequence[float]]:
    """The embedder's answer, checked: ``count`` vectors of equal (and expected) length.

    The vectors are returned as they are (converting millions of floats one by one
    would cost more than storing them).
    """
    if not isinstance(vectors, Sequence) or len(vectors) != count:
        got = len(vectors) if isinstance(vectors, Sequence) else type(vectors).__name__
        raise StoreError(f"{who}: the embedder returned {got} vectors for {count} texts")
    for vector in vectors:
        size = len(vector)
        if dimensions is not None and size != dimensions:
            raise StoreError(
                f"{who}: the embedder returned a vector of {size} dimensions; the "
                f"store holds {dimensions}-dimensional vectors"
            )
        dimensions = size
    return list(vectors)
