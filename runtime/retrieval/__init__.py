"""Retrieval: typed passages from a local SQLite file, a Chroma server or a ColBERTv2 server.

* :class:`Passage` / :class:`Passages` -- what every retriever returns; passages are
  strings and ``Passages`` is a ``list[str]``, so they feed generated predictors as
  they are.
* :class:`Retriever` -- the protocol (``retrieve`` / ``aretrieve``);
  :class:`VectorStore` -- a retriever you can write to (``add``, ``upsert``,
  ``delete``, ``get``, ``count``).
* :class:`SQLiteVecStore` -- a persistent store in one SQLite file (sqlite-vec):
  exact and approximate search, metadata filters.
* :class:`ChromaRetriever` -- the same interface on a Chroma server.
* :class:`ColBERTv2` -- a client of ColBERTv2 servers (the API DSPy uses).
* :func:`retriever_from_url` -- one of the above from a URL
  (``sqlite-vec:///path/store.db``, ``chroma://host:8000/collection``,
  ``colbertv2://host:2017/index``).

Heavy modules (sqlite3 drivers, httpx) are imported on first use. docs/retrieval.md is
the user's guide.
"""

from __future__ import annotations

from .base import (
    DuplicateIdError,
    Embedder,
    Filter,
    FilterError,
    Metadata,
    RetrievalError,
    Retriever,
    StoreError,
    VectorStore,
)
from .chroma import ChromaRetriever
from .colbert import ColBERTv2
from .config import retriever_from_url
from .passage import Passage, Passages
from .sqlite_vec import SQLiteVecStore

__all__ = [
    "ChromaRetriever",
    "ColBERTv2",
    "DuplicateIdError",
    "Embedder",
    "Filter",
    "FilterError",
    "Metadata",
    "Passage",
    "Passages",
    "RetrievalError",
    "Retriever",
    "SQLiteVecStore",
    "StoreError",
    "VectorStore",
    "retriever_from_url",
]
