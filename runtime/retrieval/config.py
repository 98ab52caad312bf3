"""One line of configuration picks the retriever: :func:`retriever_from_url`.

========================================================  ==========================================
URL                                                       retriever
========================================================  ==========================================
``sqlite-vec:///abs/path/store.db``                       :class:`~.sqlite_vec.SQLiteVecStore` (file
``sqlite-vec://relative/store.db``, ``sqlite-vec://:memory:``  path after ``sqlite-vec://``)
``chroma://host:8000/collection``                         :class:`~.chroma.ChromaRetriever` (HTTP)
``chroma+https://host/collection``                        the same over HTTPS
``colbertv2://host:2017/wiki17_abstracts``                :class:`~.colbert.ColBERTv2` (HTTP GET)
``colbertv2+https://host/path``                           the same over HTTPS
========================================================  ==========================================

Query parameters set options: ``sqlite-vec``: ``table``, ``search``
(``exact``/``approximate``), ``oversample``, ``batch_size``, ``dimensions``;
``chroma``: ``tenant``, ``database``, ``space``, ``batch_size``, ``create``
(``true``/``false``); ``colbertv2``: ``post`` (``true``/``false``), ``max_k``. Keyword
arguments of :func:`retriever_from_url` override them. So moving from a file to a team
server is a change of one string, for example in an environment variable::

    retriever = retriever_from_url(os.environ["RAG_STORE"], embedder=embedder)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import ConfigurationError
from .base import Embedder, Retriever

__all__ = ["SCHEMES", "retriever_from_url"]

#: the URL schemes :func:`retriever_from_url` knows
SCHEMES = (
    "sqlite-vec",
    "chroma",
    "chroma+http",
    "chroma+https",
    "colbertv2",
    "colbertv2+http",
    "colbertv2+https",
)

_INTEGERS = {"oversample", "batch_size", "dimensions", "max_k"}
_BOOLEANS = {"create", "post"}


def retriever_from_url(url: str, *, embedder: Embedder | None = None, **options: Any) -> Retriever:
    """The retriever a URL names (see the module docstring for the forms).

    ``embedder`` is required by the vector stores (``sqlite-vec``, ``chroma``) and
    ignored by ColBERTv2 servers, which embed for themselves. ``options`` are passed to
    the retriever's constructor, over any given in the URL's query.
    Raises :class:`~sigforge.runtime.errors.ConfigurationError` for an unknown scheme,
    a missing embedder or a malformed option.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise ConfigurationError(
            f"unknown retriever URL {url!r}: expected one of "
            + ", ".join(f"{s}://..." for s in SCHEMES)
        )
    location, _, query = rest.partition("?")
    settings: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        settings[key] = _option(url, key, value)
    settings.update(options)

    if scheme == "sqlite-vec":
        from .sqlite_vec import SQLiteVecStore

        path = unquote(location)
        if not path:
            raise ConfigurationError(f"{url!r} names no file (sqlite-vec:///path/store.db)")
        return _build(url, SQLiteVecStore, path, _need(embedder, url), **settings)

    transport, _, secure = scheme.partition("+")
    split = urlsplit(f"{secure or 'http'}://{location}")
    if not split.hostname:
        raise ConfigurationError(f"{url!r} names no host")
    base = f"{split.scheme}://{split.netloc}"
    if transport == "chroma":
        from .chroma import ChromaRetriever

        collection = unquote(split.path.strip("/"))
        if not collection or "/" in collection:
            raise ConfigurationError(
                f"{url!r} must name one collection: chroma://host:port/collection"
            )
        return _build(url, ChromaRetriever, collection, _need(embedder, url), url=base, **settings)

    from .colbert import ColBERTv2

    return _build(url, ColBERTv2, base + split.path, **settings)


def _build(source: str, cls: Any, *args: Any, **settings: Any) -> Retriever:
    import inspect

    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        raise ConfigurationError(
            f"{source!r}: {cls.__name__} has no option {', '.join(map(repr, unknown))}"
        )
    retriever: Retriever = cls(*args, **settings)
    return retriever


def _need(embedder: Embedder | None, url: str) -> Embedder:
    if embedder is None:
        raise ConfigurationError(f"{url!r} is a vector store: pass embedder=...")
    return embedder


def _option(url: str, key: str, value: str) -> Any:
    if key in _INTEGERS:
        try:
            return int(value)
        except ValueError:
            raise ConfigurationError(f"{url!r}: {key} must be an integer, got {value!r}") from None
    if key in _BOOLEANS:
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(f"{url!r}: {key} must be true or false, got {value!r}")
    return value
