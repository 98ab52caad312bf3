"""Language-model clients: the :class:`BaseLM` interface, the HTTP :class:`LM` and fallbacks.

:class:`BaseLM` does what every LM needs around the actual request: cache lookup and
storage, token accounting and the call history, for whole answers (``complete``) and
streams (``stream``). Subclasses implement ``_send`` / ``_asend`` (one request, no
caching), optionally ``_stream`` / ``_astream``, and :meth:`BaseLM.cache_identity`.

:class:`LM` is the one HTTP client for every provider: streaming over server-sent
events (httpx-sse), the rate limiter and the LM's own errors are here; the HTTP policy it
shares with the retrieval clients (connections, timeouts, retries with tenacity, circuit
breaker, typed transport and HTTP errors) is :class:`~sigforge.runtime.transport.HTTPClient`;
each provider's wire format is a :class:`~sigforge.runtime.providers.Provider`.
:class:`FallbackLM` chains LMs.

``httpx``, ``tenacity`` and ``httpx_sse`` are imported only when the first request is
made, so importing this module stays cheap.
"""

from __future__ import annotations

import abc
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from . import history
from ._version import __version__
from .cache import CompletionCache, cache_key
from .callbacks import lm_requested, lm_responded
from .errors import (
    BadResponseError,
    CircuitOpenError,
    ConfigurationError,
    ContextLengthError,
    LMError,
    LMTimeoutError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)
from .messages import Completion, LMRequest, StreamEvent, StreamRestart, TextDelta, Usage
from .settings import current_cache
from .transport import MAX_ERROR_BODY, HTTPClient, Timeout, as_timeout, timed_out, tries

if TYPE_CHECKING:
    import httpx

    from .callbacks import Callback
    from .providers import StreamState
    from .resilience import CircuitBreaker, RateLimiter

__all__ = ["LM", "BaseLM", "FallbackLM", "Timeout"]


class BaseLM(abc.ABC):
    """What predictors call: ``complete`` / ``acomplete`` with caching, usage and history.

    ``cache``: ``True`` uses the cache from the settings (see
    :func:`~sigforge.runtime.settings.current_cache`), ``False`` never caches this LM's
    calls, a :class:`Cache` instance uses that cache. ``configure(cache=False)`` turns
    caching off for every LM regardless.
    """

    model: str

    def __init__(
        self,
        model: str,
        *,
        cache: bool | CompletionCache = True,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.model = model
        prefix, _, name = model.partition("/")
        #: who serves the model ("openai", "anthropic", ...; "" when the model string
        #: names none) and the model's own name, as callbacks and telemetry report them
        self.provider = prefix if name else ""
        self.model_name = name or model
        self.cache = cache
        #: callbacks that see this LM's calls (besides those of the settings)
        self.callbacks = tuple(callbacks)
        self._usage = Usage()
        #: guards this LM's counters (its usage; a test LM's record of requests)
        self._counters_lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """What pickles: the attributes without the lock (unpickling makes a new one)."""
        state = dict(self.__dict__)
        state.pop("_counters_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._counters_lock = threading.Lock()

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
        call = lm_requested(self.model_name, self.provider, request, self.callbacks)
        try:
            cache, key = self._cache_for(request)
            completion = cache.get(key) if cache is not None and key is not None else None
            if completion is None:
                completion = self._send(request)
                self._store(cache, key, completion)
            completion = self._record(request, completion, wall, started)
        except BaseException as error:
            lm_responded(call, None, error)
            raise
        lm_responded(call, completion, None)
        return completion

    async def acomplete(self, request: LMRequest) -> Completion:
        """Answer ``request`` without blocking the event loop on the network.

        Cache lookups are local reads and are done inline.
        """
        started, wall = time.perf_counter(), time.time()
        call = lm_requested(self.model_name, self.provider, request, self.callbacks)
        try:
            cache, key = self._cache_for(request)
            completion = cache.get(key) if cache is not None and key is not None else None
            if completion is None:
                completion = await self._asend(request)
                self._store(cache, key, completion)
            completion = self._record(request, completion, wall, started)
        except BaseException as error:
            lm_responded(call, None, error)
            raise
        lm_responded(call, completion, None)
        return completion

    def stream(self, request: LMRequest) -> Iterator[StreamEvent]:
        """Answer ``request`` piece by piece.

        Yields :class:`TextDelta` s as text arrives, a :class:`StreamRestart` when a
        broken stream is retried from the start (drop the text received so far), and
        finally exactly one :class:`Completion` holding the whole answer. A cached
        answer arrives as one delta. Only complete answers are cached.
        """
        started, wall = time.perf_counter(), time.time()
        call = lm_requested(self.model_name, self.provider, request, self.callbacks)
        answered = False
        try:
            cache, key = self._cache_for(request)
            hit = cache.get(key) if cache is not None and key is not None else None
            events = _replay(hit) if hit is not None else self._stream(request)
            for event in events:
                if isinstance(event, Completion):
                    if hit is None:
                        self._store(cache, key, event)
                    completion = self._record(request, event, wall, started)
                    answered = True
                    lm_responded(call, completion, None)
                    yield completion
                    return
                yield event
            raise AssertionError(f"{type(self).__name__}._stream ended without a Completion")
        except BaseException as error:
            if not answered:  # a consumer that stops reading early is no error
                lm_responded(call, None, None if isinstance(error, GeneratorExit) else error)
            raise

    async def astream(self, request: LMRequest) -> AsyncIterator[StreamEvent]:
        """Async :meth:`stream`."""
        started, wall = time.perf_counter(), time.time()
        call = lm_requested(self.model_name, self.provider, request, self.callbacks)
        answered = False
        try:
            cache, key = self._cache_for(request)
            hit = cache.get(key) if cache is not None and key is not None else None
            events = _areplay(hit) if hit is not None else self._astream(request)
            async for event in events:
                if isinstance(event, Completion):
                    if hit is None:
                        self._store(cache, key, event)
                    completion = self._record(request, event, wall, started)
                    answered = True
                    lm_responded(call, completion, None)
                    yield completion
                    return
                yield event
            raise AssertionError(f"{type(self).__name__}._astream ended without a Completion")
        except BaseException as error:
            if not answered:
                lm_responded(call, None, None if isinstance(error, GeneratorExit) else error)
            raise

    @property
    def usage(self) -> Usage:
        """Tokens used by this LM's requests so far (cache hits are free and not counted)."""
        return self._usage

    def reset_usage(self) -> Usage:
        """Set the running total back to zero; returns the total it had."""
        with self._counters_lock:
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
        with self._counters_lock:
            self._usage = self._usage + completion.usage

    def _record(
        self, request: LMRequest, completion: Completion, wall: float, started: float
    ) -> Completion:
        """Add the call to the history; ``completion`` carrying the call's id."""
        call_id = history.next_call_id()
        history.record(
            history.HistoryEntry(
                call_id=call_id,
                timestamp=wall,
                model=self.model,
                messages=request.messages,
                params=self.request_params(request),
                response=completion.text,
                usage=completion.usage,
                cached=completion.cached,
                duration=time.perf_counter() - started,
                finish_reason=completion.finish_reason,
            )
        )
        return replace(completion, call_id=call_id)


def _unpickle_lm(cls: type[LM], settings: dict[str, Any]) -> LM:
    """The LM :meth:`LM.__reduce__` pickled, built again from its settings."""
    return cls(**settings)


def _replay(completion: Completion) -> Iterator[StreamEvent]:
    """A cached answer as a stream: its text in one delta, then the completion."""
    if completion.text:
        yield TextDelta(completion.text)
    yield completion


async def _areplay(completion: Completion) -> AsyncIterator[StreamEvent]:
    for event in _replay(completion):
        yield event


# ------------------------------------------------------------------------------------------
# The HTTP client for every provider
# ------------------------------------------------------------------------------------------

class LM(BaseLM, HTTPClient):
    """An HTTP client for a hosted or local model: ``LM("provider/model", ...)``.

    The prefix picks the wire format and where the server is (see
    :mod:`sigforge.runtime.providers`): ``openai/gpt-4o-mini``,
    ``anthropic/claude-sonnet-4-5``, ``gemini/gemini-2.5-flash``, and OpenAI-compatible
    presets such as ``groq/...``, ``together/...``, ``ollama/llama3.2``,
    ``vllm/...``. A bare model name means an OpenAI-compatible server at ``base_url``.

    The API key is ``api_key`` or, when that is not given, the provider's usual
    environment variable (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ``GEMINI_API_KEY``,
    ``GROQ_API_KEY``, ...). For a bare model name with a custom ``base_url`` no
    environment key is used, so a key is never sent to some other server by accident.
    ``api_key=""`` sends no key at all. The key never appears in ``repr``, the cache,
    the history or error messages.

    ``temperature``, ``max_tokens`` and any further keyword (``top_p=...``, ``seed=...``)
    are sent with every request unless ``None`` (OpenAI's names; each provider
    translates them); ``request.params`` win over them.

    Failed attempts are retried (``max_retries=3``: up to 4 attempts) when another
    attempt could succeed: rate limits, 5xx, timeouts, lost connections, broken streams
    and malformed answers. The wait before retry ``n`` is random in ``[0,
    min(backoff_max, backoff_base * 2**(n-1))]`` (full jitter) unless the server says
    how long to wait (``Retry-After`` and the providers' rate-limit headers), which is
    obeyed up to ``retry_after_max`` seconds. ``timeout`` is a number or a
    :class:`Timeout`.

    ``rate_limiter``: a :class:`~sigforge.runtime.resilience.RateLimiter` every attempt
    waits for (share one between LMs that share a budget); each attempt is charged one
    request and an estimate of its tokens (prompt characters / 4 plus ``max_tokens``),
    corrected by the usage the answer reports. ``circuit_breaker``: by default the
    process-wide breaker of this LM's server
    (:func:`~sigforge.runtime.resilience.breaker_for`: opens after 5 consecutive failed
    attempts -- 5xx, timeouts, lost connections, malformed answers -- and fails fast
    with :class:`CircuitOpenError` for 30 s, then lets one probe through); pass a
    :class:`~sigforge.runtime.resilience.CircuitBreaker` for other settings, or
    ``False`` for none.

    ``async_transport``: what carries the async calls (``acomplete``, ``astream``,
    ``abatch``): ``"aiohttp"`` (default; aiohttp behind httpx's interface) or
    ``"httpx"`` (httpx's own transport, several times slower under concurrency here:
    see bench/throughput.py).

    Pickling (``pickle``, cloudpickle, Ray) keeps what was configured, never what is
    live: an LM pickles as its settings -- model, ``base_url``, sampling parameters,
    timeouts, retries and back-off, the ``cache`` argument, ``extra_headers``,
    ``callbacks``, a rate limiter or breaker passed in -- and is built again from them
    when unpickled, so it opens its own connections on first use and starts with zero
    usage; the default breaker is the process-wide one of its server in the process that
    unpickles it. The API key goes as it came: a key the LM read from the environment is
    not pickled, the unpickled LM reads the same variable in its own process (set it
    there); a key passed as ``api_key=`` is pickled, in plain text as everything in a
    pickle is, so keep such pickles as private as the key itself (or let the LM read the
    key from the environment). ``extra_headers`` are pickled as given. A rate limiter,
    breaker, cache or callback given to the LM is pickled with it and must pickle itself.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | Timeout | None = 60.0,
        max_retries: int = 3,
        cache: bool | CompletionCache = True,
        extra_headers: Mapping[str, str] | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        retry_after_max: float = 60.0,
        max_connections: int = 100,
        rate_limiter: RateLimiter | None = None,
        circuit_breaker: bool | CircuitBreaker = True,
        callbacks: Sequence[Callback] = (),
        async_transport: Literal["aiohttp", "httpx"] = "aiohttp",
        **extra_params: Any,
    ) -> None:
        from .providers import NATIVE, PRESETS, provider_for
        from .resilience import breaker_for

        super().__init__(model, cache=cache, callbacks=callbacks)
        prefix, _, name = model.partition("/")
        if not name:  # a bare model name: an OpenAI-compatible server
            prefix, name = "", model
        try:
            wire_format, preset = provider_for(prefix or "openai")
        except KeyError:
            known = ", ".join(sorted([*NATIVE, *PRESETS]))
            raise ConfigurationError(
                f"unknown provider {prefix!r} in model {model!r} (known: {known}). For an "
                f"OpenAI-compatible server whose model names contain '/', write "
                f"'openai/{model}' and pass base_url=..."
            ) from None
        if not name:
            raise ConfigurationError(f"model {model!r} names no model")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        if async_transport not in ("aiohttp", "httpx"):
            raise ValueError("async_transport must be 'aiohttp' or 'httpx'")

        self.provider = prefix or "openai"
        self.wire_format = wire_format
        self.model_name = name
        self.base_url = (base_url or preset.base_url).rstrip("/")
        key = api_key
        if key is None and preset.api_key_env and (prefix or base_url is None):
            key = os.environ.get(preset.api_key_env)
        # Private, and excluded from repr(), cache_identity() and every error message.
        self._api_key = key or None
        self.temperature = None if temperature is None else float(temperature)
        self.max_tokens = max_tokens
        timeout = as_timeout(timeout)
        self.timeout = timeout
        self.max_retries = max_retries
        self.extra_headers = dict(extra_headers or {})
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.max_connections = max_connections
        self.async_transport = async_transport
        self.rate_limiter = rate_limiter
        breaker = circuit_breaker
        if breaker is True:  # one breaker per server, shared by every LM that talks to it
            breaker = breaker_for(f"{wire_format.name}:{self.base_url}")
        self.circuit_breaker: CircuitBreaker | None = breaker or None
        self.extra_params = extra_params
        # What copy() and pickling need to build an equivalent LM: the arguments as given
        # (api_key=None: the environment's key, read again; circuit_breaker=True: the
        # process-wide breaker of the server, looked up again).
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
            "max_connections": max_connections,
            "rate_limiter": rate_limiter,
            "circuit_breaker": circuit_breaker,
            "callbacks": callbacks,
            "async_transport": async_transport,
            **extra_params,
        }
        self.url = wire_format.url(self.base_url, name, stream=False)
        self.stream_url = wire_format.url(self.base_url, name, stream=True)
        self._init_clients()

    def __repr__(self) -> str:
        parts = [repr(self.model)]
        if self.base_url != self.wire_format.default_base_url and self.provider in (
            "openai",
            self.wire_format.name,
        ):
            parts.append(f"base_url={self.base_url!r}")
        parts.extend(f"{name}={value!r}" for name, value in self.sampling_params().items())
        return f"LM({', '.join(parts)})"

    def copy(self, **overrides: Any) -> LM:
        """A new LM with the same settings except ``overrides`` (own connections, usage).

        A key read from the environment is read from it again, as a new LM would.
        """
        return LM(**{**self._init_kwargs, **overrides})

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle the settings, never a connection, lock, usage or environment key (see
        "Pickling" in the class docstring)."""
        return _unpickle_lm, (type(self), dict(self._init_kwargs))

    @staticmethod
    def fallback(primary: BaseLM, *others: BaseLM, **options: Any) -> FallbackLM:
        """An LM that asks ``primary`` and, when it fails, each of ``others`` in turn.

        See :class:`FallbackLM` for which failures move on (``options`` go to it).
        """
        return FallbackLM(primary, *others, **options)

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

    def _body(self, request: LMRequest, *, stream: bool) -> dict[str, Any]:
        return self.wire_format.body(
            self.model_name, request.messages, self.request_params(request), stream=stream
        )

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": f"sigforge/{__version__}", **self.wire_format.static_headers()}
        if self._api_key:
            headers.update(self.wire_format.auth_headers(self._api_key))
        headers.update(self.extra_headers)
        return headers

    # -- clients -----------------------------------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        import httpx

        return {
            "headers": self._headers(),
            "timeout": httpx.Timeout(
                None, connect=self.timeout.connect, read=self.timeout.read
            ),
            # Keep every connection alive: closing above a keep-alive limit would make
            # busy batches open a new connection for each request.
            "limits": httpx.Limits(
                max_connections=self.max_connections,
                max_keepalive_connections=self.max_connections,
            ),
        }

    def _async_client_options(self) -> dict[str, Any]:
        """Options of the async client: aiohttp underneath unless ``async_transport="httpx"``.

        httpx's own async transport (httpcore on anyio) spends several times the CPU of
        the blocking one per request and slows down as more requests are in flight
        (bench/throughput.py measures both); aiohttp behind httpx's interface (the
        httpx-aiohttp transport, the one OpenAI's and Anthropic's SDKs offer) keeps
        concurrent calls cheap. Timeouts, streaming and errors behave the same.
        """
        options = self._client_options()
        if self.async_transport == "aiohttp":
            from httpx_aiohttp import AiohttpTransport

            options["transport"] = AiohttpTransport(limits=options.pop("limits"))
        return options

    # -- admission: circuit breaker and rate limiter --------------------------------------------

    def _estimate(self, request: LMRequest) -> int:
        """Tokens to charge the rate limiter for one attempt (0 when it has no token budget)."""
        limiter = self.rate_limiter
        if limiter is None or limiter.tokens_per_minute is None:
            return 0
        from .messages import message_text

        prompt = sum(len(message_text(message)) for message in request.messages)
        completion = self.request_params(request).get("max_tokens")
        return (prompt + 3) // 4 + (completion if isinstance(completion, int) else 0)

    def _admit(self, attempt: int, tokens: int) -> None:
        """Before an attempt: fail fast on an open circuit, then wait for the rate limiter."""
        self._check_breaker(attempt)
        if self.rate_limiter is not None:
            self.rate_limiter.acquire(tokens)

    async def _aadmit(self, attempt: int, tokens: int) -> None:
        self._check_breaker(attempt)
        if self.rate_limiter is not None:
            await self.rate_limiter.aacquire(tokens)

    def _report(self, tokens: int, completion: Completion | None, error: BaseException | None) -> None:
        """After an attempt: tell the breaker how the server did, settle the token charge.

        Failures of the server (5xx, timeouts, lost connections, malformed answers, broken
        streams) count against the breaker; any other answer, a 429 included, shows the
        server is up. An open circuit is not an attempt and reports nothing.
        """
        if isinstance(error, CircuitOpenError):
            return
        self._report_to_breaker(error)
        if tokens and self.rate_limiter is not None:
            actual = completion.usage.total_tokens if completion is not None else 0
            self.rate_limiter.settle(tokens, actual)

    # -- one request ---------------------------------------------------------------------------

    def _send(self, request: LMRequest) -> Completion:
        body = self._body(request, stream=False)
        client = self._sync_client()
        deadline = self._deadline()
        tokens = self._estimate(request)
        url = self.url

        def attempt(number: int) -> Completion:
            self._admit(number, tokens)
            try:
                response = self._request(client, "POST", url, deadline, number, json=body)
                completion = self._completion(response, number)
            except BaseException as exc:
                self._report(tokens, None, exc)
                raise
            self._report(tokens, completion, None)
            return completion

        try:
            return attempt(1)
        except LMError as error:
            failed = error
        return self._retry(attempt, failed, deadline)

    async def _asend(self, request: LMRequest) -> Completion:
        body = self._body(request, stream=False)
        client = self._async_client()
        deadline = self._deadline()
        tokens = self._estimate(request)
        url = self.url

        async def attempt(number: int) -> Completion:
            await self._aadmit(number, tokens)
            try:
                response = await self._arequest(client, "POST", url, deadline, number, json=body)
                completion = self._completion(response, number)
            except BaseException as exc:
                self._report(tokens, None, exc)
                raise
            self._report(tokens, completion, None)
            return completion

        try:
            return await attempt(1)
        except LMError as error:
            failed = error
        return await self._aretry(attempt, failed, deadline)

    def _stream(self, request: LMRequest) -> Iterator[StreamEvent]:
        import httpx
        from httpx_sse import EventSource, SSEError

        from .providers import StreamState

        body = self._body(request, stream=True)
        client = self._sync_client()
        deadline = self._deadline()
        tokens = self._estimate(request)
        sent_text = False
        last_error: LMError | None = None
        for attempt in self._retrying(deadline):
            with attempt:
                number = attempt.retry_state.attempt_number
                if sent_text and last_error is not None:
                    yield StreamRestart(number, last_error)
                    sent_text = False
                self._admit(number, tokens)
                state = StreamState(self.model_name)
                try:
                    timeouts = self._timeouts(deadline, number, self.url)
                    with client.stream("POST", self.stream_url, json=body, **timeouts) as response:
                        if not 200 <= response.status_code < 300:
                            response.read()
                            raise self._http_error(response, self.url, number, self.wire_format)
                        for event in EventSource(response).iter_sse():
                            text = self._feed(state, event.event, event.data, number)
                            if text:
                                sent_text = True
                                yield TextDelta(text)
                            if state.done:
                                break
                            if deadline is not None:
                                self._remaining(deadline, number, self.url)
                    if not state.done and state.finish_reason is None:
                        raise self._interrupted(number, "the stream ended before its end event")
                except (httpx.TransportError, SSEError, LMError) as exc:
                    last_error = self._stream_failed(exc, number, sent_text, deadline, tokens)
                    if last_error is exc:
                        raise
                    raise last_error from exc
                except GeneratorExit:  # the consumer stopped reading: the server was fine
                    self._report(tokens, None, None)
                    raise
                completion = state.completion()
                self._report(tokens, completion, None)
                yield completion
                return
        raise AssertionError("unreachable")  # pragma: no cover

    async def _astream(self, request: LMRequest) -> AsyncIterator[StreamEvent]:
        import httpx
        from httpx_sse import EventSource, SSEError

        from .providers import StreamState

        body = self._body(request, stream=True)
        client = self._async_client()
        deadline = self._deadline()
        tokens = self._estimate(request)
        sent_text = False
        last_error: LMError | None = None
        async for attempt in self._aretrying(deadline):
            with attempt:
                number = attempt.retry_state.attempt_number
                if sent_text and last_error is not None:
                    yield StreamRestart(number, last_error)
                    sent_text = False
                await self._aadmit(number, tokens)
                state = StreamState(self.model_name)
                try:
                    timeouts = self._timeouts(deadline, number, self.url)
                    async with client.stream(
                        "POST", self.stream_url, json=body, **timeouts
                    ) as response:
                        if not 200 <= response.status_code < 300:
                            await response.aread()
                            raise self._http_error(response, self.url, number, self.wire_format)
                        async for event in EventSource(response).aiter_sse():
                            text = self._feed(state, event.event, event.data, number)
                            if text:
                                sent_text = True
                                yield TextDelta(text)
                            if state.done:
                                break
                            if deadline is not None:
                                self._remaining(deadline, number, self.url)
                    if not state.done and state.finish_reason is None:
                        raise self._interrupted(number, "the stream ended before its end event")
                except (httpx.TransportError, SSEError, LMError) as exc:
                    last_error = self._stream_failed(exc, number, sent_text, deadline, tokens)
                    if last_error is exc:
                        raise
                    raise last_error from exc
                except GeneratorExit:  # the consumer stopped reading: the server was fine
                    self._report(tokens, None, None)
                    raise
                completion = state.completion()
                self._report(tokens, completion, None)
                yield completion
                return
        raise AssertionError("unreachable")  # pragma: no cover

    # -- answers and errors ------------------------------------------------------------------

    def _completion(self, response: httpx.Response, attempt: int) -> Completion:
        """A 2xx response as a completion; anything else as the fitting :class:`LMError`."""
        from .providers import WireFormatError

        if not 200 <= response.status_code < 300:
            raise self._http_error(response, self.url, attempt, self.wire_format)
        try:
            data = response.json()
        except ValueError:
            raise self._bad_response(response, attempt, "the body is not JSON") from None
        try:
            return self.wire_format.completion(data, self.model_name)
        except WireFormatError as exc:
            raise self._bad_response(response, attempt, str(exc)) from None

    def _feed(self, state: StreamState, event: str, data: str, attempt: int) -> str:
        from .providers import WireFormatError

        try:
            return self.wire_format.feed(state, event, data)
        except WireFormatError as exc:
            raise self._bad_stream(attempt, str(exc)) from None
        except LMError as exc:
            exc.args = (self._redact(f"{self.model}: {exc}{tries(attempt)}"),)
            exc.attempts = attempt
            raise

    def _bad_response(self, response: httpx.Response, attempt: int, problem: str) -> LMError:
        return BadResponseError(
            self._redact(
                f"{self.model}: HTTP {response.status_code} from {self.url} is not a "
                f"{self.wire_format.name} completion{tries(attempt)}: {problem}"
            ),
            status=response.status_code,
            attempts=attempt,
            body=self._redact(response.text[:MAX_ERROR_BODY]),
            provider=self.provider,
        )

    def _bad_stream(self, attempt: int, problem: str) -> LMError:
        return BadResponseError(
            self._redact(
                f"{self.model}: the stream from {self.stream_url} is not a "
                f"{self.wire_format.name} stream{tries(attempt)}: {problem}"
            ),
            attempts=attempt,
            provider=self.provider,
        )

    def _interrupted(self, attempt: int, problem: str) -> LMError:
        return StreamInterruptedError(
            self._redact(f"{self.model}: {problem} ({self.stream_url}){tries(attempt)}"),
            attempts=attempt,
            provider=self.provider,
        )

    def _stream_failed(
        self,
        exc: Exception,
        attempt: int,
        sent_text: bool,
        deadline: float | None,
        tokens: int,
    ) -> LMError:
        """The typed error that ends a stream attempt (reported to breaker and limiter)."""
        import httpx

        error: LMError
        if isinstance(exc, LMError):
            error = exc
        elif isinstance(exc, httpx.TransportError):
            if sent_text and not timed_out(exc):
                error = self._interrupted(
                    attempt, f"the stream broke off: {type(exc).__name__}: {exc}"
                )
            else:
                error = self._transport_error(exc, self.url, attempt, deadline)
        else:  # httpx_sse.SSEError: the answer is not an event stream
            error = self._bad_stream(attempt, str(exc))
        self._report(tokens, None, error)
        return error

    def _unusable_url(self, exc: httpx.UnsupportedProtocol, url: str, attempt: int) -> LMError:
        raise ConfigurationError(f"{self.model}: unusable base_url {self.base_url!r}") from None

    def _subject(self) -> str:
        return self.model

    def _provider_name(self) -> str:
        return self.provider

    def _redact(self, text: str) -> str:
        """``text`` with the API key blotted out, in case a server echoes it back."""
        if self._api_key and self._api_key in text:
            return text.replace(self._api_key, "<redacted>")
        return text


# ------------------------------------------------------------------------------------------
# Fallback chains
# ------------------------------------------------------------------------------------------

#: failures after which a fallback chain moves on to its next LM
DEFAULT_FALLBACK_ON: tuple[type[LMError], ...] = (
    RateLimitError,
    ServerError,
    LMTimeoutError,
    BadResponseError,
    StreamInterruptedError,
    CircuitOpenError,
    ContextLengthError,
)


class FallbackLM(BaseLM):
    """Asks each LM in turn until one answers: ``LM.fallback(primary, secondary, ...)``.

    An LM's failure moves the call to the next LM when it is one of ``on`` (by default
    :data:`DEFAULT_FALLBACK_ON`: rate limits, server errors, timeouts and lost
    connections, malformed answers, broken streams, an open circuit, and a prompt too
    long for the model's context); any other error (a bad request, a refused key) is
    raised at once. When every LM fails, the last LM's error is raised. Each LM keeps
    its own retries, cache, usage and history entries; the chain adds none of its own.

    A stream that fails before its first delta moves on silently; one that fails
    after yields a :class:`StreamRestart` first.

    A chain pickles as its LMs (each as its settings, see :class:`LM`) and ``on``.
    """

    def __init__(
        self, *lms: BaseLM, on: tuple[type[BaseException], ...] = DEFAULT_FALLBACK_ON
    ) -> None:
        if len(lms) < 2:
            raise ValueError("a fallback chain needs at least two LMs")
        super().__init__("fallback(" + ", ".join(lm.model for lm in lms) + ")", cache=False)
        self.lms = lms
        self.on = on

    def __repr__(self) -> str:
        return f"LM.fallback({', '.join(repr(lm) for lm in self.lms)})"

    def cache_identity(self) -> dict[str, Any]:
        return {"fallback": [lm.cache_identity() for lm in self.lms]}

    @property
    def usage(self) -> Usage:
        total = Usage()
        for lm in self.lms:
            total = total + lm.usage
        return total

    def complete(self, request: LMRequest) -> Completion:
        for lm in self.lms[:-1]:
            try:
                return lm.complete(request)
            except self.on:
                continue
        return self.lms[-1].complete(request)

    async def acomplete(self, request: LMRequest) -> Completion:
        for lm in self.lms[:-1]:
            try:
                return await lm.acomplete(request)
            except self.on:
                continue
        return await self.lms[-1].acomplete(request)

    def stream(self, request: LMRequest) -> Iterator[StreamEvent]:
        sent_text = False
        for index, lm in enumerate(self.lms):
            last = index == len(self.lms) - 1
            try:
                for event in lm.stream(request):
                    if isinstance(event, TextDelta):
                        sent_text = True
                    yield event
                return
            except self.on as exc:
                if last:
                    raise
                if sent_text:
                    yield StreamRestart(1, exc if isinstance(exc, Exception) else Exception(exc))
                    sent_text = False

    async def astream(self, request: LMRequest) -> AsyncIterator[StreamEvent]:
        sent_text = False
        for index, lm in enumerate(self.lms):
            last = index == len(self.lms) - 1
            try:
                async for event in lm.astream(request):
                    if isinstance(event, TextDelta):
                        sent_text = True
                    yield event
                return
            except self.on as exc:
                if last:
                    raise
                if sent_text:
                    yield StreamRestart(1, exc if isinstance(exc, Exception) else Exception(exc))
                    sent_text = False

    def _send(self, request: LMRequest) -> Completion:
        return self.complete(request)

    async def _asend(self, request: LMRequest) -> Completion:
        return await self.acomplete(request)
