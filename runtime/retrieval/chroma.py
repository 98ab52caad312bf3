"""A :class:`~.base.VectorStore` on a Chroma server, over Chroma's REST API (v2).

For a team that outgrows one SQLite file: the same interface as
:class:`~.sqlite_vec.SQLiteVecStore` (``retrieve``/``aretrieve``, ``add``, ``upsert``,
``delete``, ``get``, ``count``, the same filter language) on a collection of a Chroma
server (``chroma run --path DIR --host 127.0.0.1 --port 8000``, from the ``chromadb``
package, or Chroma's Docker image).

Why REST over httpx rather than the ``chromadb`` client package: the client package
pulls in its own HTTP stack, OpenTelemetry exporters, Kubernetes and ONNX dependencies
(hundreds of MB for ``chromadb``; ``chromadb-client`` is lighter but still brings its
own pinned dependencies), none of which a retriever needs; its sync and async clients are
separate classes; and its errors are not sigforge's. The REST API is small and
documented (``/api/v2/tenants/{tenant}/databases/{database}/collections/...``), so the
adapter is a thin layer on the runtime's HTTP policy (:mod:`._http`: timeouts,
retries, the circuit breaker, typed errors with ``provider="chroma"``), sync and async
alike, and needs nothing installed beyond sigforge. The ``chroma`` extra installs
``chromadb`` only to run a server locally.

Chroma stores vectors it is given (embedding happens here, with the retriever's
embedder), so every client of a collection must use the same embedder. A collection
this retriever creates uses cosine distance; scores are ``1 - distance`` for cosine and
inner-product collections (the similarity) and ``-distance`` for L2 ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from ..errors import BadRequestError
from ..transport import Timeout
from .base import (
    DuplicateIdError,
    Embedder,
    Filter,
    Metadata,
    StoreError,
    VectorStore,
    check_batch,
    check_k,
    check_vectors,
)
from .filters import FilterNode, parse_filter, to_chroma
from .passage import Passage, Passages

if TYPE_CHECKING:
    from ..resilience import CircuitBreaker

__all__ = ["ChromaRetriever"]


class ChromaRetriever(VectorStore):
    """The Chroma collection ``collection`` on the server at ``url``, as a vector store.

    ``embedder`` embeds texts and queries. ``tenant`` and ``database`` select where the
    collection lives (Chroma's defaults). A missing collection is created on first use
    (with ``space`` as its distance) unless ``create=False``, which raises
    :class:`~.base.StoreError` instead. ``headers`` are sent with every request (e.g.
    ``{"X-Chroma-Token": "..."}`` for a server with token auth). ``batch_size`` texts
    are embedded and sent per request. ``timeout``, ``max_retries`` and
    ``circuit_breaker`` work as for :class:`~sigforge.runtime.lm.LM`.
    """

    def __init__(
        self,
        collection: str,
        embedder: Embedder,
        *,
        url: str = "http://127.0.0.1:8000",
        tenant: str = "default_tenant",
        database: str = "default_database",
        create: bool = True,
        space: Literal["cosine", "l2", "ip"] = "cosine",
        headers: dict[str, str] | None = None,
        batch_size: int = 64,
        timeout: float | Timeout | None = 30.0,
        max_retries: int = 3,
        circuit_breaker: bool | CircuitBreaker = True,
    ) -> None:
        from ._http import JSONService

        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if space not in ("cosine", "l2", "ip"):
            raise ValueError("space must be 'cosine', 'l2' or 'ip'")
        self.collection = collection
        self.embedder = embedder
        self.url = url.rstrip("/")
        self.tenant = tenant
        self.database = database
        self.create = create
        self.space: str = space
        self.batch_size = batch_size
        #: the vectors' length (``None`` until known; the embedder's ``dimensions`` is read
        #: when the collection is first used, as it may load a model)
        self.dimensions: int | None = None
        self._http = JSONService(
            f"{self.url}/api/v2/tenants/{quote(tenant, safe='')}/databases/"
            f"{quote(database, safe='')}",
            service="chroma",
            timeout=timeout,
            max_retries=max_retries,
            circuit_breaker=circuit_breaker,
            headers=headers,
        )
        self._id: str | None = None

    def __repr__(self) -> str:
        return f"ChromaRetriever({self.collection!r}, url={self.url!r})"

    # -- reading ------------------------------------------------------------------------

    def retrieve(self, query: str, k: int = 5, filter: Filter | None = None) -> Passages:
        check_k(k)
        node = parse_filter(filter)
        vector = self._embed([query])[0]
        path = f"collections/{self._collection_id()}/query"
        return self._ranked(self._http.request("POST", path, json=self._query(vector, k, node)))

    async def aretrieve(self, query: str, k: int = 5, filter: Filter | None = None) -> Passages:
        """Async :meth:`retrieve` (the embedder's ``aembed`` when it has one, else
        ``embed`` in a worker thread)."""
        import asyncio

        check_k(k)
        node = parse_filter(filter)
        aembed = getattr(self.embedder, "aembed", None)
        if aembed is not None:
            vector = check_vectors(await aembed([query]), 1, self.dimensions, repr(self))[0]
        else:
            vector = (await asyncio.to_thread(self._embed, [query]))[0]
        path = f"collections/{await self._acollection_id()}/query"
        data = await self._http.arequest("POST", path, json=self._query(vector, k, node))
        return self._ranked(data)

    def get(self, ids: Sequence[str]) -> Passages:
        ids = list(ids)
        if not ids:
            return Passages()
        data = self._http.request(
            "POST",
            f"collections/{self._collection_id()}/get",
            json={"ids": ids, "include": ["documents", "metadatas"]},
        )
        found: dict[str, Passage] = {}
        got_ids, documents = _field(data, "ids"), _field(data, "documents")
        metadatas = data.get("metadatas") or [None] * len(got_ids)
        for id_, text, metadata in zip(got_ids, documents, metadatas, strict=True):
            found[id_] = Passage(text or "", id=id_, metadata=metadata or None)
        return Passages(found[i] for i in ids if i in found)

    def count(self) -> int:
        data = self._http.request("GET", f"collections/{self._collection_id()}/count")
        if not isinstance(data, int):
            raise StoreError(f"{self!r}: the server's count is not a number: {data!r}")
        return data

    # -- writing ------------------------------------------------------------------------

    def add(
        self,
        texts: Sequence[str],
        *,
        ids: Sequence[str] | None = None,
        metadata: Sequence[Metadata | None] | None = None,
    ) -> list[str]:
        texts, id_list, checked = check_batch(texts, ids, metadata)
        if id_list is None:
            id_list = [uuid.uuid4().hex for _ in texts]
        else:
            # Chroma ignores ids it already has; say so instead of dropping passages.
            stored = self.get(id_list).ids
            if stored:
                raise DuplicateIdError(
                    f"{len(stored)} of the ids are already stored (e.g. {stored[0]!r}); "
                    "use upsert() to replace passages",
                    stored,
                )
        self._send_batches("add", texts, id_list, checked)
        return id_list

    def upsert(
        self,
        texts: Sequence[str],
        *,
        ids: Sequence[str],
        metadata: Sequence[Metadata | None] | None = None,
    ) -> list[str]:
        if ids is None:
            raise ValueError("upsert needs ids")
        texts, id_list, checked = check_batch(texts, ids, metadata)
        assert id_list is not None
        self._send_batches("upsert", texts, id_list, checked)
        return id_list

    def delete(self, ids: Sequence[str]) -> int:
        present = self.get(ids).ids
        if present:
            self._http.request(
                "POST", f"collections/{self._collection_id()}/delete", json={"ids": present}
            )
        return len(present)

    def drop(self) -> None:
        """Delete the whole collection from the server."""
        self._http.request("DELETE", f"collections/{quote(self.collection, safe='')}")
        self._id = None

    def close(self) -> None:
        self._http.close()

    # -- helpers ------------------------------------------------------------------------

    def _embed(self, texts: list[str]) -> list[Sequence[float]]:
        return check_vectors(self.embedder.embed(texts), len(texts), self.dimensions, repr(self))

    def _send_batches(
        self, action: str, texts: list[str], ids: list[str], metadata: list[dict[str, Any]]
    ) -> None:
        path = f"collections/{self._collection_id()}/{action}"
        for start in range(0, len(texts), self.batch_size):
            end = start + self.batch_size
            vectors = self._embed(texts[start:end])
            if self.dimensions is None and vectors:
                self.dimensions = len(vectors[0])
            self._http.request(
                "POST",
                path,
                json={
                    "ids": ids[start:end],
                    "embeddings": [list(map(float, v)) for v in vectors],
                    "documents": texts[start:end],
                    "metadatas": [m or None for m in metadata[start:end]],
                },
            )

    def _query(self, vector: Sequence[float], k: int, node: FilterNode | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "query_embeddings": [list(map(float, vector))],
            "n_results": k,
            "include": ["documents", "metadatas", "distances"],
        }
        if node is not None:
            body["where"] = to_chroma(node)
        return body

    def _ranked(self, data: Any) -> Passages:
        ids, documents, distances = (
            _field(data, "ids"),
            _field(data, "documents"),
            _field(data, "distances"),
        )
        metadatas = data.get("metadatas") or [None]
        if not (ids and documents and distances):
            return Passages()
        first_metadata = metadatas[0] or [None] * len(ids[0])
        passages = Passages()
        for id_, text, distance, metadata in zip(
            ids[0], documents[0], distances[0], first_metadata, strict=True
        ):
            score = None if distance is None else self._score(float(distance))
            passages.append(Passage(text or "", id=id_, score=score, metadata=metadata or None))
        return passages

    def _score(self, distance: float) -> float:
        return -distance if self.space == "l2" else 1.0 - distance

    def _collection_id(self) -> str:
        if self._id is None:
            try:
                data = self._http.request("GET", f"collections/{quote(self.collection, safe='')}")
            except BadRequestError as exc:
                if exc.status != 404:
                    raise
                if not self.create:
                    raise StoreError(
                        f"{self!r}: the collection does not exist on the server "
                        "(create=False)"
                    ) from None
                data = self._http.request("POST", "collections", json=self._create_body())
            self._adopt(data)
        assert self._id is not None
        return self._id

    async def _acollection_id(self) -> str:
        if self._id is None:
            try:
                data = await self._http.arequest(
                    "GET", f"collections/{quote(self.collection, safe='')}"
                )
            except BadRequestError as exc:
                if exc.status != 404:
                    raise
                if not self.create:
                    raise StoreError(
                        f"{self!r}: the collection does not exist on the server "
                        "(create=False)"
                    ) from None
                data = await self._http.arequest("POST", "collections", json=self._create_body())
            self._adopt(data)
        assert self._id is not None
        return self._id

    def _create_body(self) -> dict[str, Any]:
        return {
            "name": self.collection,
            "get_or_create": True,
            "configuration": {"hnsw": {"space": self.space}},
        }

    def _adopt(self, data: Any) -> None:
        """Take the collection's id, distance and dimensions from the server's description."""
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise StoreError(f"{self!r}: the server's collection description has no id")
        configuration = data.get("configuration_json") or {}
        for index in ("hnsw", "spann"):
            part = configuration.get(index) if isinstance(configuration, dict) else None
            if isinstance(part, dict) and part.get("space") in ("cosine", "l2", "ip"):
                self.space = part["space"]
                break
        size = getattr(self.embedder, "dimensions", None)
        if self.dimensions is None and isinstance(size, int) and not isinstance(size, bool):
            self.dimensions = size
        dimension = data.get("dimension")
        if isinstance(dimension, int):
            if self.dimensions is not None and dimension != self.dimensions:
                raise StoreError(
                    f"{self!r}: the collection holds {dimension}-dimensional vectors but the "
                    f"embedder makes {self.dimensions}-dimensional ones"
                )
            self.dimensions = dimension
        self._id = data["id"]


def _field(data: Any, name: str) -> list[Any]:
    value = data.get(name) if isinstance(data, dict) else None
    if value is None:
        return []
    if not isinstance(value, list):
        raise StoreError(f"chroma: the server's answer has a malformed {name!r}")
    return value
