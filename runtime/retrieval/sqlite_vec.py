"""A persistent vector store in one SQLite file, searched by the ``sqlite-vec`` extension.

:class:`SQLiteVecStore` keeps each store (``table=``, several may share a file) in
three places of the file:

* ``<table>``: a plain table of ``rowid``, ``id`` (unique), ``text`` and ``metadata``
  (a JSON object). Metadata filters are SQL over this JSON (``json_type`` /
  ``json_extract``; see :mod:`.filters` for the language).
* ``<table>_vec``: a ``vec0`` virtual table of sqlite-vec holding, per rowid, the
  ``float[D]`` embedding (cosine distance) and its binary quantization ``bit[D]``
  (one bit per dimension: 1/32 of the size).
* ``sigforge_stores``: one row per store with its dimensions, metric and embedder, so
  a store reopened with another embedder is refused instead of searched with vectors
  of another space.

Search, both done inside sqlite-vec (no index of our own):

* ``"exact"`` (default): vec0's brute-force KNN over the float vectors.
* ``"approximate"``: vec0's KNN over the bit vectors (Hamming distance) for
  ``k * oversample`` candidates, re-scored with the exact cosine distance of their
  float vectors (the "oversampling and re-scoring" recipe of sqlite-vec's binary
  quantization guide). Several times faster on large stores; recall depends on how
  well the embedding survives binarization (good for normalized sentence embeddings,
  worst for random vectors: bench/retrieval_bench.py measures it). Needs a dimension
  divisible by 8.

A filter restricts the KNN itself (``rowid IN (SELECT rowid FROM <table> WHERE ...)``
inside the vec0 query), so a filtered search still returns ``k`` passages whenever
``k`` match. Scores are cosine similarities (``1 - cosine distance``): 1 for the same
direction, 0 for orthogonal.

Like :class:`~sigforge.runtime.cache.Cache`: one connection per process shared by
every thread, serialised by a lock (a forked child opens its own); every change is one
``BEGIN IMMEDIATE`` transaction in WAL mode, so other processes reading or writing the
same file see whole batches or nothing, and a store survives restarts and crashes.
Embedding happens outside the lock, ``batch_size`` texts per call to the embedder,
each batch written in its own transaction as soon as it is embedded.

``sqlite-vec`` is a loadable extension: Python's own ``sqlite3`` is used when it can
load extensions; builds that cannot (pyenv's default, some system Pythons) use
``sqlean.py``, a ``sqlite3``-compatible module that can. Both come with
``pip install 'sigforge[sqlite-vec]'``. They are imported when the store is first used.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar, cast

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
from .filters import FilterNode, parse_filter, to_sql
from .passage import Passage, Passages

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path
    from types import ModuleType

__all__ = ["MAX_K", "SQLiteVecStore", "Search"]

Search: TypeAlias = Literal["exact", "approximate"]
_T = TypeVar("_T")

#: the most neighbours one vec0 KNN query can return (sqlite-vec's limit)
MAX_K = 4096
#: layout of a store's tables (recorded per store in ``sigforge_stores``)
LAYOUT = 1
#: page size of files this store creates: vec0 keeps vectors in large chunk blobs, and
#: large pages make reading one vector out of a chunk (re-scoring) much cheaper
_PAGE_SIZE = 65536
#: ids per ``IN (...)`` list
_ID_CHUNK = 500
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

_REGISTRY = """
CREATE TABLE IF NOT EXISTS sigforge_stores (
    name TEXT PRIMARY KEY,
    layout INTEGER NOT NULL,
    dimensions INTEGER NOT NULL,
    metric TEXT NOT NULL,
    embedder TEXT,
    created REAL NOT NULL
)
"""


class SQLiteVecStore(VectorStore):
    """A vector store in the SQLite file ``path`` (``":memory:"`` for a throw-away one).

    ``embedder`` embeds texts and queries (a
    :class:`~sigforge.runtime.embeddings.Embedder`). ``dimensions`` is the
    vectors' length: by default the embedder's, else the stored store's, else the
    length of the first vectors added. ``table`` names the store inside the file.
    ``search`` is the default search (``"exact"`` or ``"approximate"``; each
    :meth:`retrieve` may override it), ``oversample`` how many candidates per wanted
    passage an approximate search re-scores. ``batch_size`` texts go to the embedder
    per call. ``busy_timeout`` is how long to wait for another process's write lock
    before :class:`~.base.StoreError`.

    A store that exists in the file with other dimensions, or recorded with an
    embedder of another ``model`` name, is refused with :class:`~.base.StoreError`.
    Nothing is opened until first use. Safe to share between threads; several
    processes may use the same file at once.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        embedder: Embedder,
        *,
        dimensions: int | None = None,
        table: str = "passages",
        search: Search = "exact",
        oversample: int = 8,
        batch_size: int = 64,
        busy_timeout: float = 10.0,
    ) -> None:
        if not _TABLE_NAME.fullmatch(table) or table.lower().startswith(("sqlite_", "sigforge_")):
            raise ValueError(
                f"table must be a plain SQL name (letters, digits, '_'; not starting with "
                f"'sqlite_' or 'sigforge_'), got {table!r}"
            )
        if dimensions is not None and (isinstance(dimensions, bool) or dimensions < 1):
            raise ValueError("dimensions must be a positive integer (or None)")
        if search not in ("exact", "approximate"):
            raise ValueError("search must be 'exact' or 'approximate'")
        if oversample < 1 or batch_size < 1 or busy_timeout < 0:
            raise ValueError("oversample and batch_size must be >= 1, busy_timeout >= 0")
        from pathlib import Path

        self.path: Path | None = None if str(path) == ":memory:" else Path(path)
        self.embedder = embedder
        self.table = table
        self.search: Search = search
        self.oversample = oversample
        self.batch_size = batch_size
        self.busy_timeout = busy_timeout
        #: the vectors' length (``None`` until known: the embedder's ``dimensions`` is
        #: read on first use, as it may load a model)
        self.dimensions = dimensions
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._conn_pid = 0
        self._driver: ModuleType | None = None
        self._created = False  # the store's tables exist (known to this object)

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else ":memory:"
        return (
            f"SQLiteVecStore({where!r}, table={self.table!r}, dimensions={self.dimensions}, "
            f"search={self.search!r})"
        )

    # -- reading ------------------------------------------------------------------------

    def retrieve(
        self,
        query: str,
        k: int = 5,
        filter: Filter | None = None,
        *,
        search: Search | None = None,
    ) -> Passages:
        """The ``k`` stored passages closest to ``query`` (cosine), best first.

        ``filter`` restricts the candidates by metadata; ``search`` overrides the
        store's default (``"exact"`` or ``"approximate"``).
        """
        check_k(k)
        node = parse_filter(filter)
        mode = self._mode(search, k)
        self._prepare()
        vector = self._embed_query(query)
        return self._search(vector, k, node, mode)

    async def aretrieve(
        self,
        query: str,
        k: int = 5,
        filter: Filter | None = None,
        *,
        search: Search | None = None,
    ) -> Passages:
        """Async :meth:`retrieve`: the embedder's ``aembed`` when it has one, and the
        SQLite work in a worker thread."""
        import asyncio

        check_k(k)
        node = parse_filter(filter)
        mode = self._mode(search, k)
        await asyncio.to_thread(self._prepare)
        aembed = getattr(self.embedder, "aembed", None)
        if aembed is not None:
            vectors = check_vectors(await aembed([query]), 1, self.dimensions, repr(self))
            vector = vectors[0]
        else:
            vector = await asyncio.to_thread(self._embed_query, query)
        return await asyncio.to_thread(self._search, vector, k, node, mode)

    def search_vector(
        self,
        vector: Sequence[float],
        k: int = 5,
        filter: Filter | None = None,
        *,
        search: Search | None = None,
    ) -> Passages:
        """:meth:`retrieve` for an embedding you already have."""
        check_k(k)
        self._prepare()
        vectors = check_vectors([vector], 1, self.dimensions, repr(self))
        return self._search(vectors[0], k, parse_filter(filter), self._mode(search, k))

    def get(self, ids: Sequence[str]) -> Passages:
        ids = _id_list(ids)
        found: dict[str, Passage] = {}

        def read(conn: sqlite3.Connection) -> None:
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                for id_, text, metadata in conn.execute(
                    f'SELECT id, text, metadata FROM "{self.table}" WHERE id IN ({marks})',
                    chunk,
                ):
                    found[id_] = Passage(text, id=id_, metadata=json.loads(metadata))

        self._read(read)
        return Passages(found[i] for i in ids if i in found)

    def count(self) -> int:
        counted: list[int] = [0]

        def read(conn: sqlite3.Connection) -> None:
            counted[0] = conn.execute(f'SELECT COUNT(*) FROM "{self.table}"').fetchone()[0]

        self._read(read)
        return counted[0]

    # -- writing ------------------------------------------------------------------------

    def add(
        self,
        texts: Sequence[str],
        *,
        ids: Sequence[str] | None = None,
        metadata: Sequence[Metadata | None] | None = None,
    ) -> list[str]:
        texts, id_list, checked = check_batch(texts, ids, metadata)
        self._prepare()
        if id_list is None:
            id_list = [uuid.uuid4().hex for _ in texts]
        else:
            stored = self.get(id_list).ids
            if stored:
                raise DuplicateIdError(
                    f"{len(stored)} of the ids are already stored (e.g. {stored[0]!r}); "
                    "use upsert() to replace passages",
                    stored,
                )
        self._write_batches(texts, id_list, checked, replace=False)
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
        self._prepare()
        self._write_batches(texts, id_list, checked, replace=True)
        return id_list

    def delete(self, ids: Sequence[str]) -> int:
        ids = _id_list(ids)
        deleted: list[int] = [0]

        def work(conn: sqlite3.Connection) -> None:
            rowids = self._rowids(conn, ids)
            self._delete_rows(conn, list(rowids.values()))
            deleted[0] = len(rowids)

        self._write(work, create=None)
        return deleted[0]

    def close(self) -> None:
        """Close the connection (the store reopens the file on next use)."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None and self._conn_pid == os.getpid():
                with contextlib.suppress(Exception):
                    conn.close()

    def __enter__(self) -> SQLiteVecStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- search -------------------------------------------------------------------------

    def _mode(self, search: Search | None, k: int) -> Search:
        mode = self.search if search is None else search
        if mode not in ("exact", "approximate"):
            raise ValueError("search must be 'exact' or 'approximate'")
        limit = MAX_K // self.oversample if mode == "approximate" else MAX_K
        if k > limit:
            raise ValueError(
                f"k={k} is more than a {mode} search can return here ({limit}; sqlite-vec "
                f"returns at most {MAX_K} neighbours per query)"
            )
        return mode

    def _embed_query(self, query: str) -> Sequence[float]:
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        return check_vectors(self.embedder.embed([query]), 1, self.dimensions, repr(self))[0]

    def _search(
        self, vector: Sequence[float], k: int, node: FilterNode | None, mode: Search
    ) -> Passages:
        blob = _float32(vector)
        table = self.table
        where, params = "", list[Any]()
        if node is not None:
            condition, params = to_sql(node)
            where = f' AND rowid IN (SELECT rowid FROM "{table}" WHERE {condition})'
        if mode == "exact":
            knn = (
                f'SELECT rowid, distance FROM "{table}_vec" '
                f"WHERE embedding MATCH ? AND k = ?{where}"
            )
            args: list[Any] = [blob, k, *params]
        else:
            knn = (
                f"SELECT rowid, vec_distance_cosine(embedding, ?) AS distance FROM ("
                f'SELECT rowid, embedding FROM "{table}_vec" '
                f"WHERE embedding_bits MATCH vec_quantize_binary(?) AND k = ?{where}"
                f") ORDER BY distance LIMIT ?"
            )
            args = [blob, blob, k * self.oversample, *params, k]
        sql = (
            f"WITH knn AS ({knn}) SELECT p.id, p.text, p.metadata, knn.distance "
            f'FROM knn JOIN "{table}" AS p ON p.rowid = knn.rowid ORDER BY knn.distance'
        )
        rows: list[tuple[str, str, str, float]] = []

        def read(conn: sqlite3.Connection) -> None:
            if mode == "approximate" and self.dimensions is not None and self.dimensions % 8:
                raise StoreError(
                    f"{self!r}: approximate search needs a dimension divisible by 8 "
                    f"(binary quantization); this store has {self.dimensions}"
                )
            rows.extend(conn.execute(sql, args))

        self._read(read)
        return Passages(
            Passage(text, id=id_, score=1.0 - distance, metadata=json.loads(metadata))
            for id_, text, metadata, distance in rows
        )

    # -- batches ------------------------------------------------------------------------

    def _write_batches(
        self,
        texts: list[str],
        ids: list[str],
        metadata: list[dict[str, Any]],
        *,
        replace: bool,
    ) -> None:
        for start in range(0, len(texts), self.batch_size):
            end = start + self.batch_size
            batch = texts[start:end]
            vectors = check_vectors(
                self.embedder.embed(batch), len(batch), self.dimensions, repr(self)
            )
            self._write_rows(ids[start:end], batch, vectors, metadata[start:end], replace=replace)

    def _write_rows(
        self,
        ids: list[str],
        texts: list[str],
        vectors: list[Sequence[float]],
        metadata: list[dict[str, Any]],
        *,
        replace: bool,
    ) -> None:
        blobs = [_float32(vector) for vector in vectors]
        encoded = [json.dumps(m, ensure_ascii=False, separators=(",", ":")) for m in metadata]
        table = self.table

        def work(conn: sqlite3.Connection) -> None:
            existing = self._rowids(conn, ids)
            if existing and not replace:
                raise DuplicateIdError(
                    f"{len(existing)} of the ids are already stored (e.g. "
                    f"{next(iter(existing))!r}); use upsert() to replace passages",
                    list(existing),
                )
            self._delete_rows(conn, list(existing.values()))
            top = conn.execute(f'SELECT IFNULL(MAX(rowid), 0) FROM "{table}"').fetchone()[0]
            rowids = [existing.get(id_) or 0 for id_ in ids]
            for index, rowid in enumerate(rowids):
                if not rowid:
                    top += 1
                    rowids[index] = top
            conn.executemany(
                f'INSERT INTO "{table}" (rowid, id, text, metadata) VALUES (?, ?, ?, ?)',
                zip(rowids, ids, texts, encoded, strict=True),
            )
            if self.dimensions is not None and self.dimensions % 8 == 0:
                conn.executemany(
                    f'INSERT INTO "{table}_vec" (rowid, embedding, embedding_bits) '
                    "VALUES (?, ?, vec_quantize_binary(?))",
                    ((rowid, blob, blob) for rowid, blob in zip(rowids, blobs, strict=True)),
                )
            else:
                conn.executemany(
                    f'INSERT INTO "{table}_vec" (rowid, embedding) VALUES (?, ?)',
                    zip(rowids, blobs, strict=True),
                )

        self._write(work, create=len(vectors[0]) if vectors else None)

    def _rowids(self, conn: sqlite3.Connection, ids: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            found.update(
                conn.execute(
                    f'SELECT id, rowid FROM "{self.table}" WHERE id IN ({marks})', chunk
                ).fetchall()
            )
        return found

    def _delete_rows(self, conn: sqlite3.Connection, rowids: list[int]) -> None:
        for chunk in _chunks(rowids):
            marks = ",".join("?" * len(chunk))
            conn.execute(f'DELETE FROM "{self.table}" WHERE rowid IN ({marks})', chunk)
            # vec0 deletes by rowid one at a time (an IN list would scan the table)
            conn.executemany(
                f'DELETE FROM "{self.table}_vec" WHERE rowid = ?', [(r,) for r in chunk]
            )

    # -- the connection -----------------------------------------------------------------

    def _prepare(self) -> None:
        """Open the file and read the store's settings, so the dimensions are known
        before anything is embedded."""
        with self._lock:
            conn = self._connection()
            if not self._created:
                self._run(lambda: self._load_store(conn))

    def _read(self, action: Callable[[sqlite3.Connection], None]) -> None:
        """Run ``action`` on the connection if the store's tables exist (else nothing:
        an empty store)."""
        with self._lock:
            conn = self._connection()
            if not self._created and not self._load_store(conn):
                return
            self._run(lambda: action(conn))

    def _write(self, work: Callable[[sqlite3.Connection], None], *, create: int | None) -> None:
        """``work`` in one write transaction, creating the store's tables first when
        they do not exist and ``create`` gives the dimensions (``None``: nothing to do
        on a store that does not exist yet)."""
        with self._lock:
            conn = self._connection()

            def run() -> None:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if not self._load_store(conn):
                        if create is None:
                            conn.execute("ROLLBACK")
                            return
                        self._create_store(conn, create)
                    work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(Exception):
                        conn.execute("ROLLBACK")
                    raise

            self._run(run)

    def _run(self, action: Callable[[], _T]) -> _T:
        """``action``, with SQLite's errors as :class:`StoreError` / :class:`DuplicateIdError`."""
        assert self._driver is not None
        try:
            return action()
        except self._driver.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise DuplicateIdError(
                    f"{self!r}: an id was stored by someone else meanwhile ({exc}); "
                    "use upsert() to replace passages",
                    [],
                ) from exc
            raise StoreError(f"{self!r}: {exc}") from exc
        except self._driver.Error as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code in (5, 6):  # SQLITE_BUSY, SQLITE_LOCKED
                raise StoreError(
                    f"{self!r}: the file stayed locked by another process for more than "
                    f"{self.busy_timeout:g} s ({exc})"
                ) from exc
            raise StoreError(f"{self!r}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        """The open connection (the caller holds the lock), opening the file on first use."""
        if self._conn is not None and self._conn_pid == os.getpid():
            return self._conn
        # First use, or a forked child: a connection must not cross a fork, so the
        # inherited one is abandoned (not closed: that would disturb the parent).
        self._conn = None
        self._created = False
        driver = self._driver = _sqlite_module()
        conn: sqlite3.Connection | None = None
        target = ":memory:" if self.path is None else str(self.path)
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = driver.connect(
                target,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.enable_load_extension(True)
            try:
                import sqlite_vec  # type: ignore[import-untyped]

                sqlite_vec.load(conn)
            finally:
                conn.enable_load_extension(False)
            if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
                conn.execute(f"PRAGMA page_size = {_PAGE_SIZE}")  # only takes in a new file
            if self.path is not None:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
        except OSError as exc:
            if conn is not None:
                conn.close()
            raise StoreError(f"{self!r}: cannot open the file ({exc})") from exc
        except driver.Error as exc:
            if conn is not None:
                conn.close()
            raise StoreError(f"{self!r}: cannot open the file as a store ({exc})") from exc
        self._conn, self._conn_pid = conn, os.getpid()
        self._resolve_dimensions()
        return conn

    def _resolve_dimensions(self) -> None:
        """Take (or check) the embedder's ``dimensions``, if it states them."""
        size = getattr(self.embedder, "dimensions", None)
        if not isinstance(size, int) or isinstance(size, bool):
            return
        if self.dimensions is None:
            self.dimensions = size
        elif self.dimensions != size:
            raise StoreError(
                f"{self!r}: dimensions={self.dimensions} but the embedder makes "
                f"{size}-dimensional vectors"
            )

    def _load_store(self, conn: sqlite3.Connection) -> bool:
        """Whether the store exists in the file; checks it against this object's settings."""
        registered = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sigforge_stores'"
        ).fetchone()
        row = None
        if registered:
            row = conn.execute(
                "SELECT layout, dimensions, metric, embedder FROM sigforge_stores WHERE name = ?",
                (self.table,),
            ).fetchone()
        if row is None:
            clash = conn.execute(
                "SELECT name FROM sqlite_master WHERE name IN (?, ?)",
                (self.table, f"{self.table}_vec"),
            ).fetchone()
            if clash:
                raise StoreError(
                    f"{self!r}: the file has a table {clash[0]!r} that is not a sigforge "
                    "store; pass another table= name"
                )
            return False
        layout, dimensions, _metric, embedder = row
        if layout > LAYOUT:
            raise StoreError(
                f"{self!r}: the store was written by a newer sigforge (layout {layout}; this "
                f"version reads up to {LAYOUT})"
            )
        if self.dimensions is not None and self.dimensions != dimensions:
            raise StoreError(
                f"{self!r}: the store holds {dimensions}-dimensional vectors but the embedder "
                f"makes {self.dimensions}-dimensional ones; use the embedder the store was "
                f"built with, or another table/file"
            )
        name = _embedder_name(self.embedder)
        if embedder and name and embedder != name:
            raise StoreError(
                f"{self!r}: the store was built with the embedder {embedder!r}, not {name!r}; "
                "vectors of different models cannot be compared"
            )
        self.dimensions = dimensions
        self._created = True
        return True

    def _create_store(self, conn: sqlite3.Connection, dimensions: int) -> None:
        """Create the store's tables (inside the caller's write transaction)."""
        if self.dimensions is None:
            self.dimensions = dimensions
        size = self.dimensions
        table = self.table
        conn.execute(_REGISTRY)
        conn.execute(
            f'CREATE TABLE "{table}" (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, '
            f"text TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{{}}')"
        )
        columns = f"embedding float[{size}] distance_metric=cosine"
        if size % 8 == 0:
            columns += f", embedding_bits bit[{size}]"
        conn.execute(f'CREATE VIRTUAL TABLE "{table}_vec" USING vec0({columns})')
        conn.execute(
            "INSERT INTO sigforge_stores (name, layout, dimensions, metric, embedder, created) "
            "VALUES (?, ?, ?, 'cosine', ?, ?)",
            (table, LAYOUT, size, _embedder_name(self.embedder), time.time()),
        )
        self._created = True


def _float32(vector: Sequence[float]) -> bytes:
    """A vector as sqlite-vec's ``float[]`` blob: little-endian float32s."""
    tobytes = getattr(vector, "tobytes", None)
    if tobytes is not None and getattr(vector, "dtype", None) is not None:  # a numpy array
        data: bytes = vector.astype("<f4").tobytes()  # type: ignore[attr-defined]
        return data
    import array
    import sys

    values = array.array("f", vector)
    if sys.byteorder == "big":
        values.byteswap()
    return values.tobytes()


def _embedder_name(embedder: object) -> str | None:
    """The embedder's model name when it states one (``model`` or ``model_name``)."""
    for attribute in ("model", "model_name"):
        value = getattr(embedder, attribute, None)
        if isinstance(value, str) and value:
            return value
    return None


def _id_list(ids: Sequence[str]) -> list[str]:
    if isinstance(ids, str):
        raise TypeError("ids must be a sequence of strings, not one string")
    result = list(ids)
    for item in result:
        if not isinstance(item, str):
            raise TypeError(f"ids must be strings, got {type(item).__name__}")
    return result


def _chunks(items: Sequence[_T]) -> Iterator[list[_T]]:
    for start in range(0, len(items), _ID_CHUNK):
        yield list(items[start : start + _ID_CHUNK])


_DRIVER: ModuleType | None = None


def _sqlite_module() -> ModuleType:
    """A ``sqlite3`` module that can load extensions: the standard one if it can, else
    ``sqlean`` (sqlean.py); :class:`StoreError` saying what to install otherwise."""
    global _DRIVER
    if _DRIVER is not None:
        return _DRIVER
    try:
        import sqlite_vec  # noqa: F401
    except ImportError:
        raise StoreError(
            "SQLiteVecStore needs the sqlite-vec package: pip install 'sigforge[sqlite-vec]'"
        ) from None
    import sqlite3

    if hasattr(sqlite3.Connection, "enable_load_extension"):
        _DRIVER = sqlite3
        return sqlite3
    try:
        import sqlean  # type: ignore[import-untyped]
    except ImportError:
        raise StoreError(
            "this Python's sqlite3 module cannot load extensions (it was built without "
            "them, as pyenv does by default), and sqlean.py, which can, is not installed: "
            "pip install 'sigforge[sqlite-vec]'"
        ) from None
    _DRIVER = driver = cast("ModuleType", sqlean)
    return driver

