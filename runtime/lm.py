"""Language-model clients: the :class:`BaseLM` interface and the OpenAI-compatible :class:`LM`.

:class:`BaseLM` does what every LM needs around the actual request: cache lookup and
storage, token accounting and the call history. Subclasses only implement ``_send`` /
``_asend`` (one request, no caching) and :meth:`BaseLM.cache_identity`.

``httpx`` (and ``asyncio``) are imported only when the first request is made, so
importing this module stays cheap.
"""

from __future__ import annotations

import abc
import math
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import history
from ._version import __version__
from .cache import CompletionCache, cache_key
from .errors import (
    AuthenticationError,
    BadRequestError,
    BadResponseError,
    ConfigurationError,
    LMConnectionError,
    LMError,
    LMTimeoutError,
    RateLimitError,
    ServerError,
)
from .messages import Completion, LMRequest, StreamEvent, TextDelta, Usage
from .settings import current_cache

if TYPE_CHECKING:
    import asyncio
    from types import TracebackType

    import httpx

__all__ = ["LM", "BaseLM"]


class BaseLM(abc.ABC):
    """What predictors call: ``complete`` / ``acomplete`` with caching, usage and history.

    ``cache``: ``True`` uses the cache from the settings (see
    :func:`~sigforge.runtime.settings.current_cache`), ``False`` never caches this LM's
    calls, a :class:`Cache` instance uses that cache. ``configure(cache=False)`` turns
    caching off for every LM regardless.
    """

    model: str

    def __init__(self, model: str, *, cache: bool | CompletionCache = True) -> None:
        self.model = model
        self.cache = cache
        self._usage = Usage()
        self._usage_lock = threading.Lock()

    # -- what subclasses provide -------------------------------------------------------

    @abc.abstractmethod
    def _send(self, request: LMRequest) -> Completion:
        """Make one request (blocking); no caching, no accounting."""

    @abc.abstractmethod
    async def _asend(self, request: LMRequest) -> Completion:
        """Make one request (async); no caching, no accounting."""

    @abc.abstractmethod
    def cache_identity(self) -> dict[str, Any]:
        """Everything besides the request that determines the answer, as JSON data.

        Provider, model, base URL and sampling parameters belong here; the API key,
        timeouts and retry settings must not (they do not change the answer).
        """

    def _stream(self, request: LMRequest) -> Iterator[StreamEvent]:
        """Stream one request: deltas (restarts on retry), then one :class:`Completion`.

        The default makes one ordinary request and yields its text as a single delta;
        LMs that can stream natively override it.
        """
        completion = self._send(request)
        if completion.text:
            yield TextDelta(completion.text)
        yield completion

    async def _astream(self, request: LMRequest) -> AsyncIterator[StreamEvent]:
        """Async :meth:`_stream`."""
        completion = await self._asend(request)
        if completion.text:
            yield TextDelta(completion.text)
        yield completion

    def request_params(self, request: LMRequest) -> dict[str, Any]:
        """The parameters sent besides the messages; recorded in the history.

        The default is ``request.params``; LMs with sampling parameters add theirs.
        """
        return dict(request.params)

    # -- the public interface ----------------------------------------------------------

    def complete(self, request: LMRequest) -> Completion:
        """Answer ``request``, from the cache when possible."""
        started, wall = time.perf_counter(), time.time()
        cache, key = self._cache_for(request)
        if cache is not None and key is not None:
            hit = cache.get(key)
            if hit is not None:
                self._record(request, hit, wall, started)
                return hit
        completion = self._send(request)
        self._store(cache, key, completion)
        self._record(request, completion, wall, started)
        return completion

    async def acomplete(self, request: LMRequest) -> Completion:
        """Answer ``request`` without blocking the event loop on the network.

        Cache lookups are local SQLite reads and are done inline.
        """
        started, wall = time.perf_counter(), time.time()
        cache, key = self._cache_for(request)
        if cache is not None and key is not None:
            hit = cache.get(key)
            if hit is not None:
                self._record(request, hit, wall, started)
                return hit
        completion = await self._asend(request)
        self._store(cache, key, completion)
        self._record(request, completion, wall, started)
        return completion

    def stream(self, request: LMRequest) -> Iterator[StreamEvent]:
        """Answer ``request`` piece by piece.

        Yields :class:`TextDelta` s as text arrives, a :class:`StreamRestart` when a
        broken stream is retried from the start (drop the text received so far), and
        finally exactly one :class:`Completion` holding the whole answer. A cached
        answer arrives as one delta. Only complete answers are cached.
        """
        started, wall = time.perf_counter(), time.time()
        cache, key = self._cache_for(request)
        if cache is not None and key is not None:
            hit = cache.get(key)
            if hit is not None:
                self._record(request, hit, wall, started)
                if hit.text:
                    yield TextDelta(hit.text)
                yield hit
                return
        for event in self._stream(request):
            if isinstance(event, Completion):
                self._store(cache, key, event)
                self._record(request, event, wall, started)
                yield event
                return
            yield event
        raise AssertionError(f"{type(self).__name__}._stream ended without a Completion")

    async def astream(self, request: LMRequest) -> AsyncIterator[StreamEvent]:
        """Async :meth:`stream`."""
        started, wall = time.perf_counter(), time.time()
        cache, key = self._cache_for(request)
        if cache is not None and key is not None:
            hit = cache.get(key)
            if hit is not None:
                self._record(request, hit, wall, started)
                if hit.text:
                    yield TextDelta(hit.text)
                yield hit
                return
        async for event in self._astream(request):
            if isinstance(event, Completion):
                self._store(cache, key, event)
                self._record(request, event, wall, started)
                yield event
                return
            yield event
        raise AssertionError(f"{type(self).__name__}._astream ended without a Completion")

    @property
    def usage(self) -> Usage:
        """Tokens used by this LM's requests so far (cache hits are free and not counted)."""
        return self._usage

    def reset_usage(self) -> Usage:
        """Set the running total back to zero; returns the total it had."""
        with self._usage_lock:
            total, self._usage = self._usage, Usage()
        return total

    # -- helpers -------------------------------------------------------------------------

    def _cache_for(self, request: LMRequest) -> tuple[CompletionCache | None, str | None]:
        """The cache to use for this call and the request's key in it (or ``None``s)."""
        if self.cache is False:
            return None, None
        cache = current_cache()
        if cache is None:  # caching is off everywhere
            return None, None
        if isinstance(self.cache, CompletionCache):
            cache = self.cache
        return cache, cache_key(self.cache_identity(), request)

    def _store(self, cache: CompletionCache | None, key: str | None, completion: Completion) -> None:
        if cache is not None and key is not None:
            cache.put(key, completion)
        with self._usage_lock:
            self._usage = self._usage + completion.usage

    def _record(
        self, request: LMRequest, completion: Completion, wall: float, started: float
    ) -> None:
        history.record(
            history.HistoryEntry(
                timestamp=wall,
                model=self.model,
                messages=tuple(message.copy() for message in request.messages),
                params=self.request_params(request),
                response=completion.text,
                usage=completion.usage,
                cached=completion.cached,
                duration=time.perf_counter() - started,
                finish_reason=completion.finish_reason,
            )
        )


# ------------------------------------------------------------------------------------------
# The OpenAI-compatible HTTP client
# ------------------------------------------------------------------------------------------

OPENAI_BASE_URL = "https://api.openai.com/v1"
OPENAI_API_KEY_ENV = "OPENAI_API_KEY"

#: statuses worth another attempt; anything else that is not 2xx fails at once
_RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: statuses whose ``Retry-After`` header is honoured
_RETRY_AFTER_STATUSES = frozenset({429, 503})
#: how much of an error body is kept in exceptions
_MAX_ERROR_BODY = 2000


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one attempt produced: a completion, or an error and whether to try again."""

    completion: Completion | None = None
    error: LMError | ConfigurationError | None = None
    retry: bool = False
    #: the server's ``Retry-After`` in seconds, when it sent one we honour
    retry_after: float | None = None


class LM(BaseLM):
    """A client for any server speaking OpenAI's ``/chat/completions`` format.

    ``model`` is ``"openai/<name>"`` or a bare ``"<name>"``; both are sent as ``<name>``
    to ``base_url`` (default ``https://api.openai.com/v1``). The API key is ``api_key``
    or, when that is not given, ``$OPENAI_API_KEY`` -- for a bare model name with a
    custom ``base_url`` the environment key is *not* used, so an OpenAI key is never
    sent to some other server by accident. ``api_key=""`` sends no key at all.

    ``temperature``, ``max_tokens`` and any further keyword (``top_p=...``, ``seed=...``)
    are sent with every request unless ``None``; ``request.params`` win over them.

    Failed requests are retried: ``max_retries=3`` means up to 4 attempts in total.
    Retried are HTTP 429/500/502/503/504, timeouts and connection errors, with
    exponential backoff and full jitter (a random wait in ``[0, min(backoff_max,
    backoff_base * 2**n)]`` before retry ``n + 1``). A ``Retry-After`` header on 429/503
    is obeyed instead, up to ``retry_after_max`` seconds. ``timeout`` applies to
    connecting, sending and each read; ``None`` waits forever.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = 60.0,
        max_retries: int = 3,
        cache: bool | CompletionCache = True,
        extra_headers: Mapping[str, str] | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        retry_after_max: float = 60.0,
        **extra_params: Any,
    ) -> None:
        super().__init__(model, cache=cache)
        provider, _, name = model.partition("/")
        if not name:  # a bare model name
            provider, name = "", model
        elif provider != "openai":
            raise ConfigurationError(
                f"unknown provider {provider!r} in model {model!r}: only 'openai/<model>' "
                f"(any OpenAI-compatible server) is supported. For a server whose model "
                f"names contain '/', write 'openai/{model}'."
            )
        if not name:
            raise ConfigurationError(f"model {model!r} names no model")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive (or None for no timeout)")

        self.provider = provider or "openai"
        self.model_name = name
        self.base_url = (base_url or OPENAI_BASE_URL).rstrip("/")
        if api_key is None and (provider or base_url is None):
            api_key = os.environ.get(OPENAI_API_KEY_ENV)
        # Private, and excluded from repr(), cache_identity() and every error message.
        self._api_key = api_key or None
        self.temperature = None if temperature is None else float(temperature)
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.max_retries = max_retries
        self.extra_headers = dict(extra_headers or {})
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.extra_params = extra_params
        # What copy() needs to build an equivalent LM.
        self._init_kwargs: dict[str, Any] = {
            "model": model,
            "base_url": base_url,
            "api_key": api_key,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "timeout": timeout,
            "max_retries": max_retries,
            "cache": cache,
            "extra_headers": extra_headers,
            "backoff_base": backoff_base,
            "backoff_max": backoff_max,
            "retry_after_max": retry_after_max,
            **extra_params,
        }
        self._client: httpx.Client | None = None
        # An AsyncClient's connections belong to the event loop that made them, so each
        # loop gets its own client; clients of closed loops are dropped.
        self._async_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        self._clients_lock = threading.Lock()

    def __repr__(self) -> str:
        parts = [repr(self.model)]
        if self.base_url != OPENAI_BASE_URL:
            parts.append(f"base_url={self.base_url!r}")
        parts.extend(f"{name}={value!r}" for name, value in self.sampling_params().items())
        return f"LM({', '.join(parts)})"

    def copy(self, **overrides: Any) -> LM:
        """A new LM with the same settings except ``overrides`` (own connections, usage)."""
        return LM(**{**self._init_kwargs, **overrides})

    # -- what the request contains ---------------------------------------------------------

    def sampling_params(self) -> dict[str, Any]:
        """The LM's own parameters sent with each request (those that are not ``None``)."""
        params: dict[str, Any] = {}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        params.update((k, v) for k, v in self.extra_params.items() if v is not None)
        return params

    def request_params(self, request: LMRequest) -> dict[str, Any]:
        return {**self.sampling_params(), **request.params}

    def cache_identity(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model_name,
            "base_url": self.base_url,
            "params": self.sampling_params(),
        }

    def _body(self, request: LMRequest) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "messages": list(request.messages),
            **self.request_params(request),
        }

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": f"sigforge/{__version__}", **self.extra_headers}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    # -- clients -----------------------------------------------------------------------------

    def _sync_client(self) -> httpx.Client:
        client = self._client
        if client is None:
            import httpx

            with self._clients_lock:
                client = self._client
                if client is None:
                    client = self._client = httpx.Client(
                        timeout=self.timeout, headers=self._headers()
                    )
        return client

    def _async_client(self) -> httpx.AsyncClient:
        import asyncio

        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            import httpx

            with self._clients_lock:
                for old in [lp for lp in self._async_clients if lp.is_closed()]:
                    # Its loop is gone: it can neither be used nor closed properly.
                    del self._async_clients[old]
                client = self._async_clients.get(loop)
                if client is None:
                    client = httpx.AsyncClient(timeout=self.timeout, headers=self._headers())
                    self._async_clients[loop] = client
        return client

    def close(self) -> None:
        """Close the blocking client's connections (a later request reopens them).

        Async clients are forgotten; close them with :meth:`aclose` inside their event
        loop to release their connections promptly.
        """
        with self._clients_lock:
            client, self._client = self._client, None
            self._async_clients.clear()
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the async client of the running event loop (and the blocking client)."""
        import asyncio

        loop = asyncio.get_running_loop()
        with self._clients_lock:
            client = self._async_clients.pop(loop, None)
        if client is not None:
            await client.aclose()
        self.close()

    def __enter__(self) -> LM:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> LM:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- sending, with retries -------------------------------------------------------------

    def _send(self, request: LMRequest) -> Completion:
        import httpx

        body = self._body(request)
        client = self._sync_client()
        attempts = self.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                response = client.post(self.url, json=body)
            except httpx.TransportError as exc:
                outcome = self._transport_outcome(exc, attempt)
            else:
                outcome = self._response_outcome(response, attempt)
            if outcome.completion is not None:
                return outcome.completion
            assert outcome.error is not None
            if not outcome.retry or attempt == attempts:
                raise outcome.error
            time.sleep(self._retry_delay(attempt, outcome.retry_after))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _asend(self, request: LMRequest) -> Completion:
        import asyncio

        import httpx

        body = self._body(request)
        client = self._async_client()
        attempts = self.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                response = await client.post(self.url, json=body)
            except httpx.TransportError as exc:
                outcome = self._transport_outcome(exc, attempt)
            else:
                outcome = self._response_outcome(response, attempt)
            if outcome.completion is not None:
                return outcome.completion
            assert outcome.error is not None
            if not outcome.retry or attempt == attempts:
                raise outcome.error
            await asyncio.sleep(self._retry_delay(attempt, outcome.retry_after))
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.retry_after_max))
        import random

        return random.uniform(0.0, min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)))

    def _transport_outcome(self, exc: httpx.TransportError, attempt: int) -> _Outcome:
        """The outcome of a request that got no response."""
        import httpx

        if isinstance(exc, httpx.UnsupportedProtocol):
            return _Outcome(
                error=ConfigurationError(f"{self.model}: unusable base_url {self.base_url!r}")
            )
        if isinstance(exc, httpx.TimeoutException):
            what = "timed out" + (f" (timeout {self.timeout:g} s)" if self.timeout else "")
            error: LMError = LMTimeoutError(
                self._redact(f"{self.model}: request to {self.url} {what}{_tries(attempt)}"),
                attempts=attempt,
            )
        else:
            error = LMConnectionError(
                self._redact(
                    f"{self.model}: could not reach {self.url}{_tries(attempt)}: "
                    f"{type(exc).__name__}: {exc}"
                ),
                attempts=attempt,
            )
        return _Outcome(error=error, retry=True)

    def _response_outcome(self, response: httpx.Response, attempt: int) -> _Outcome:
        """The outcome of a request that got a response."""
        status = response.status_code
        if 200 <= status < 300:
            return _Outcome(completion=self._parse(response, attempt))
        body = self._redact(response.text[:_MAX_ERROR_BODY])
        message = f"{self.model}: HTTP {status} from {self.url}{_tries(attempt)}"
        detail = _server_message(response)
        if detail:
            message += f": {self._redact(detail)}"
        if status == 429:
            error: LMError = RateLimitError(message, status=status, attempts=attempt, body=body)
        elif status >= 500:
            error = ServerError(message, status=status, attempts=attempt, body=body)
        elif status in (401, 403):
            error = AuthenticationError(message, status=status, attempts=attempt, body=body)
        else:  # 400, 404, 422 and any other client error: retrying would not help
            error = BadRequestError(message, status=status, attempts=attempt, body=body)
        retry_after = None
        if status in _RETRY_AFTER_STATUSES:
            retry_after = _parse_retry_after(response.headers)
        return _Outcome(error=error, retry=status in _RETRYABLE_STATUSES, retry_after=retry_after)

    def _parse(self, response: httpx.Response, attempt: int) -> Completion:
        """Turn a 2xx response into a completion, or raise :class:`BadResponseError`."""

        def bad(problem: str) -> BadResponseError:
            return BadResponseError(
                f"{self.model}: HTTP {response.status_code} from {self.url} is not a chat "
                f"completion: {problem}",
                status=response.status_code,
                attempts=attempt,
                body=self._redact(response.text[:_MAX_ERROR_BODY]),
            )

        try:
            data = response.json()
        except ValueError:
            raise bad("the body is not JSON") from None
        if not isinstance(data, dict):
            raise bad("the body is not a JSON object")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise bad("it has no 'choices'")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise bad("choices[0] has no 'message'")
        content = message.get("content")
        if content is None:  # e.g. a refusal or a tool call: no text
            content = ""
        if not isinstance(content, str):
            raise bad("choices[0].message.content is not a string")
        finish_reason = choices[0].get("finish_reason")
        usage = data.get("usage")
        if not isinstance(usage, dict):
            usage = {}
        model = data.get("model")
        return Completion(
            text=content,
            usage=Usage(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))),
            model=model if isinstance(model, str) else self.model_name,
            finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        )

    def _redact(self, text: str) -> str:
        """``text`` with the API key blotted out, in case a server echoes it back."""
        if self._api_key and self._api_key in text:
            return text.replace(self._api_key, "<redacted>")
        return text


def _tries(attempt: int) -> str:
    return f" (after {attempt} attempts)" if attempt > 1 else ""


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _server_message(response: httpx.Response) -> str:
    """The error message a server put in its body (OpenAI style and common variants)."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:500]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            for field in ("message", "detail", "error"):
                if isinstance(error.get(field), str):
                    return str(error[field])
        elif isinstance(error, str):
            return error
    return response.text.strip()[:500]


def _parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, or ``Retry-After`` as
    seconds or an HTTP date. ``None`` when absent or unreadable."""
    milliseconds = _seconds(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _seconds(text: str | None) -> float | None:
    """``text`` as a non-negative, finite number, else ``None``."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return max(0.0, value) if math.isfinite(value) else None
