"""The HTTP policy of the runtime's clients: connections, time limits, retries, typed errors.

Two clients talk HTTP: :class:`~sigforge.runtime.lm.LM` (every LM provider) and
:class:`~sigforge.runtime.retrieval._http.JSONService` (Chroma, ColBERTv2 and
OpenAI-compatible ``/embeddings``). Both derive from :class:`HTTPClient`, the one
implementation of what they share:

* **connections**: one blocking ``httpx.Client``, and one ``httpx.AsyncClient`` per
  event loop (an async client's connections belong to the loop that opened them;
  clients of closed loops are dropped), all made on first use; :meth:`~HTTPClient.close`
  / :meth:`~HTTPClient.aclose` release them and a later request opens new ones;
* **time limits**: a :class:`Timeout` (``connect``, ``read``, and a ``total`` deadline
  across retries that caps every attempt, also a slowly dripping async body);
* **retries**: tenacity with full-jitter back-off, honouring the wait the server asks
  for (``Retry-After`` and whatever the error dialect reads) up to ``retry_after_max``,
  for the errors that say another attempt could succeed (:attr:`LMError.retryable`).
  Attempt 1 runs before tenacity is involved (:meth:`~HTTPClient._retry`):
  tenacity costs ~20 us per call, a measurable share of a loopback request, and is
  only needed once an attempt failed;
* **the circuit breaker** of the server, asked before and told after every attempt;
* **typed errors** (:mod:`sigforge.runtime.errors`) for HTTP error answers (read by an
  :class:`ErrorDialect`: an LM provider's wire format, or a service's own) and for
  requests that got no answer (timeouts, lost connections), with credentials blotted out.

A client sets its settings as attributes (``timeout``, ``max_retries``,
``backoff_base``, ``backoff_max``, ``retry_after_max``, ``circuit_breaker``; read at
each call, so changing one later takes effect) and says who it is in messages
(:meth:`~HTTPClient._subject`, :meth:`~HTTPClient._provider_name`), how to build its
clients (:meth:`~HTTPClient._client_options`) and what a URL httpx cannot use means
(:meth:`~HTTPClient._unusable_url`).

``httpx`` and ``tenacity`` are imported on the first request, so importing this module
stays cheap.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

from .errors import CircuitOpenError, LMConnectionError, LMError, LMTimeoutError, RateLimitError

if TYPE_CHECKING:
    import asyncio
    from types import TracebackType

    import httpx
    from tenacity import AsyncRetrying, RetryCallState, Retrying

    from .resilience import CircuitBreaker

__all__ = ["ErrorDialect", "HTTPClient", "Timeout", "as_timeout"]

T = TypeVar("T")

#: how much of an error body is kept in exceptions
MAX_ERROR_BODY = 2000
#: a timeout this close to the call's deadline is taken as the deadline's (seconds)
DEADLINE_SLACK = 0.01


@dataclass(frozen=True, slots=True)
class Timeout:
    """Time limits of an HTTP client, in seconds (``None``: no limit).

    ``connect`` bounds opening a connection; ``read`` bounds the wait for each piece
    of the answer (for a stream: between events); ``total`` bounds the whole call,
    retries and their back-off included -- no attempt starts, and no read waits, past
    it. A plain number as ``LM(timeout=...)`` is ``Timeout(connect=n, read=n)``.
    """

    connect: float | None = 10.0
    read: float | None = 60.0
    total: float | None = None

    def __post_init__(self) -> None:
        for name in ("connect", "read", "total"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"timeout {name} must be positive (or None for no limit)")


def as_timeout(timeout: float | Timeout | None) -> Timeout:
    """A client's ``timeout=`` argument as a :class:`Timeout`: a number is the connect
    and read limit, ``None`` no limit at all."""
    if timeout is None:
        return Timeout(connect=None, read=None)
    if isinstance(timeout, Timeout):
        return timeout
    if not timeout > 0:
        raise ValueError("timeout must be positive (or None for no timeout)")
    return Timeout(connect=float(timeout), read=float(timeout))


class ErrorDialect(Protocol):
    """How a server's HTTP error answers read (an LM provider's wire format is one)."""

    def error_message(self, data: Any) -> str | None:
        """The message in a decoded error body (``None``: not found)."""
        ...

    def error_class(self, status: int, data: Any, message: str) -> type[LMError]:
        """Which :class:`LMError` the status (and body) means."""
        ...

    def retry_after(self, headers: Mapping[str, str], data: Any) -> float | None:
        """Seconds the server asks to wait before another attempt (``None``: unsaid)."""
        ...


class HTTPClient(abc.ABC):
    """Connections, deadlines, retries, breaker and typed errors of one HTTP client.

    See the module docstring; subclasses call :meth:`_init_clients` in ``__init__``.
    """

    timeout: Timeout
    max_retries: int
    backoff_base: float
    backoff_max: float
    retry_after_max: float
    circuit_breaker: CircuitBreaker | None

    _client: httpx.Client | None
    _async_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient]
    _clients_lock: threading.Lock

    # -- what a client provides -------------------------------------------------------------

    @abc.abstractmethod
    def _subject(self) -> str:
        """Who the error messages name first (the model, the service)."""

    @abc.abstractmethod
    def _provider_name(self) -> str:
        """The ``provider`` of the errors this client raises."""

    @abc.abstractmethod
    def _client_options(self) -> dict[str, Any]:
        """Keyword arguments of the blocking ``httpx.Client``."""

    def _async_client_options(self) -> dict[str, Any]:
        """Keyword arguments of each ``httpx.AsyncClient`` (default: the blocking ones)."""
        return self._client_options()

    @abc.abstractmethod
    def _unusable_url(self, exc: httpx.UnsupportedProtocol, url: str, attempt: int) -> LMError:
        """The error for a URL httpx cannot use (raise instead to make it no LMError)."""

    def _circuit_subject(self) -> str:
        """Who a :class:`CircuitOpenError` names first (default: :meth:`_subject`)."""
        return self._subject()

    def _redact(self, text: str) -> str:
        """``text`` with the client's credentials blotted out (a server may echo them)."""
        return text

    # -- clients ----------------------------------------------------------------------------

    def _init_clients(self) -> None:
        self._client = None
        # An AsyncClient's connections belong to the event loop that made them, so each
        # loop gets its own client; clients of closed loops are dropped.
        self._async_clients = {}
        self._clients_lock = threading.Lock()

    def _sync_client(self) -> httpx.Client:
        client = self._client
        if client is None:
            import httpx

            with self._clients_lock:
                client = self._client
                if client is None:
                    client = self._client = httpx.Client(**self._client_options())
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
                    client = httpx.AsyncClient(**self._async_client_options())
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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- one request --------------------------------------------------------------------------

    def _request(
        self,
        client: httpx.Client,
        method: str,
        url: str,
        deadline: float | None,
        attempt: int,
        **options: Any,
    ) -> httpx.Response:
        """One blocking request within the deadline; no answer is a typed error."""
        import httpx

        try:
            if deadline is None:
                return client.request(method, url, **options)
            return client.request(method, url, **options, **self._timeouts(deadline, attempt, url))
        except httpx.TransportError as exc:
            raise self._transport_error(exc, url, attempt, deadline) from exc

    async def _arequest(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        deadline: float | None,
        attempt: int,
        **options: Any,
    ) -> httpx.Response:
        """Async :meth:`_request`; the deadline also bounds a slowly dripping body."""
        import httpx

        try:
            if deadline is None:
                return await client.request(method, url, **options)
            import asyncio

            timeouts = self._timeouts(deadline, attempt, url)
            async with asyncio.timeout(self._remaining(deadline, attempt, url)):
                return await client.request(method, url, **options, **timeouts)
        except TimeoutError:
            raise self._total_timeout(attempt, url) from None
        except httpx.TransportError as exc:
            raise self._transport_error(exc, url, attempt, deadline) from exc

    # -- retry policy (tenacity) --------------------------------------------------------------

    def _retry(self, attempt: Callable[[int], T], failed: LMError, deadline: float | None) -> T:
        """After ``attempt(1)`` failed with ``failed``: ``attempt(2)``, ``attempt(3)``, ...
        as the policy allows, until one succeeds (``failed`` is raised if none may run).

        A request runs attempt 1 itself, so a call that succeeds at once costs no more
        than the attempt::

            try:
                return attempt(1)
            except LMError as error:
                failed = error
            return self._retry(attempt, failed, deadline)
        """
        wait = self._first_attempt_failed(failed, deadline)
        if wait is None:
            raise failed
        time.sleep(wait)
        for retry in self._retrying(deadline, first=2):
            with retry:
                return attempt(retry.retry_state.attempt_number + 1)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _aretry(
        self, attempt: Callable[[int], Awaitable[T]], failed: LMError, deadline: float | None
    ) -> T:
        """Async :meth:`_retry`."""
        import asyncio

        wait = self._first_attempt_failed(failed, deadline)
        if wait is None:
            raise failed
        await asyncio.sleep(wait)
        async for retry in self._aretrying(deadline, first=2):
            with retry:
                return await attempt(retry.retry_state.attempt_number + 1)
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_options(self, deadline: float | None, first: int) -> dict[str, Any]:
        """tenacity's policy for the attempts from number ``first`` on."""
        from tenacity import retry_if_exception

        attempts = self.max_retries + 2 - first  # how many tenacity may make

        def stop(state: RetryCallState) -> bool:
            # out of attempts, or the next one would start past the call's deadline
            if state.attempt_number >= attempts:
                return True
            upcoming = state.upcoming_sleep or 0.0
            return deadline is not None and time.monotonic() + upcoming >= deadline

        return {
            "stop": stop,
            "wait": lambda state: self._delay(state.attempt_number + first - 1, state),
            "retry": retry_if_exception(_is_retryable),
            "reraise": True,
        }

    def _retrying(self, deadline: float | None, first: int = 1) -> Retrying:
        """Blocking attempts from number ``first`` on (for a ``for attempt in ...`` loop)."""
        from tenacity import Retrying

        return Retrying(sleep=time.sleep, **self._retry_options(deadline, first))

    def _aretrying(self, deadline: float | None, first: int = 1) -> AsyncRetrying:
        """Async :meth:`_retrying`."""
        import asyncio

        from tenacity import AsyncRetrying

        return AsyncRetrying(sleep=asyncio.sleep, **self._retry_options(deadline, first))

    def _delay(self, attempt: int, failed: RetryCallState | LMError) -> float:
        """Seconds to wait after failed attempt number ``attempt``: what the server asked
        for (up to ``retry_after_max``), else full jitter."""
        error: BaseException | None
        if isinstance(failed, LMError):
            error = failed
        else:
            error = failed.outcome.exception() if failed.outcome is not None else None
        retry_after = error.retry_after if isinstance(error, LMError) else None
        if retry_after is not None:
            return max(0.0, min(retry_after, self.retry_after_max))
        import random

        return random.uniform(0.0, min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)))

    def _first_attempt_failed(self, error: LMError, deadline: float | None) -> float | None:
        """After attempt 1 failed: the wait before attempt 2, or ``None`` to give up."""
        if not error.retryable or self.max_retries == 0:
            return None
        wait = self._delay(1, error)
        if deadline is not None and time.monotonic() + wait >= deadline:
            return None
        return wait

    # -- deadlines ----------------------------------------------------------------------------

    def _deadline(self) -> float | None:
        total = self.timeout.total
        return None if total is None else time.monotonic() + total

    def _timeouts(self, deadline: float | None, attempt: int, url: str) -> dict[str, Any]:
        """Per-request ``timeout`` keyword: the client's limits capped by the deadline."""
        if deadline is None:
            return {}
        import httpx

        remaining = self._remaining(deadline, attempt, url)
        connect, read = self.timeout.connect, self.timeout.read
        return {
            "timeout": httpx.Timeout(
                remaining,
                connect=remaining if connect is None else min(connect, remaining),
                read=remaining if read is None else min(read, remaining),
            )
        }

    def _remaining(self, deadline: float, attempt: int, url: str) -> float:
        """Seconds left before the deadline (none left: the total timeout's error)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._total_timeout(attempt, url)
        return remaining

    def _total_timeout(self, attempt: int, url: str) -> LMTimeoutError:
        return LMTimeoutError(
            f"{self._subject()}: no answer from {url} within the total timeout of "
            f"{self.timeout.total:g} s{tries(attempt)}",
            attempts=attempt,
            provider=self._provider_name(),
            retryable=False,
        )

    # -- circuit breaker ----------------------------------------------------------------------

    def _check_breaker(self, attempt: int) -> None:
        """Before an attempt: fail fast when the circuit is open."""
        breaker = self.circuit_breaker
        if breaker is None:
            return
        try:
            breaker.before_call()
        except CircuitOpenError as exc:
            exc.args = (f"{self._circuit_subject()}: {exc}{tries(attempt)}",)
            exc.attempts, exc.provider = attempt, self._provider_name()
            raise

    def _report_to_breaker(self, error: BaseException | None) -> None:
        """After an attempt: tell the breaker how the server did.

        Failures of the server (5xx, timeouts, lost connections, malformed answers, broken
        streams) count against it; any other outcome, a 429 included, shows the server is
        up. An open circuit is not an attempt and reports nothing.
        """
        breaker = self.circuit_breaker
        if breaker is None or isinstance(error, CircuitOpenError):
            return
        if isinstance(error, LMError) and error.retryable and not isinstance(error, RateLimitError):
            breaker.record_failure()
        else:
            breaker.record_success()

    # -- failures as typed errors -------------------------------------------------------------

    def _http_error(
        self, response: httpx.Response, url: str, attempt: int, dialect: ErrorDialect
    ) -> LMError:
        """A non-2xx answer as the :class:`LMError` ``dialect`` says it means."""
        status = response.status_code
        try:
            data: Any = response.json()
        except ValueError:
            data = None
        detail = dialect.error_message(data) or response.text.strip()[:500]
        message = f"{self._subject()}: HTTP {status} from {url}{tries(attempt)}"
        if detail:
            message += f": {detail}"
        cls = dialect.error_class(status, data, detail)
        retry_after = None
        if status == 429 or status >= 500:
            retry_after = dialect.retry_after(response.headers, data)
        return cls(
            self._redact(message),
            status=status,
            attempts=attempt,
            body=self._redact(response.text[:MAX_ERROR_BODY]),
            retry_after=retry_after,
            provider=self._provider_name(),
        )

    def _transport_error(
        self, exc: httpx.TransportError, url: str, attempt: int, deadline: float | None
    ) -> LMError:
        """The error for a request that got no (complete) response."""
        import httpx

        if deadline is not None and timed_out(exc) and time.monotonic() >= deadline - DEADLINE_SLACK:
            return self._total_timeout(attempt, url)  # the deadline cut it short: final
        if isinstance(exc, httpx.UnsupportedProtocol):
            return self._unusable_url(exc, url, attempt)
        if timed_out(exc):
            limit = (
                self.timeout.connect if isinstance(exc, httpx.ConnectTimeout) else self.timeout.read
            )
            what = "timed out" + (f" (timeout {limit:g} s)" if limit else "")
            return LMTimeoutError(
                self._redact(f"{self._subject()}: request to {url} {what}{tries(attempt)}"),
                attempts=attempt,
                provider=self._provider_name(),
            )
        return LMConnectionError(
            self._redact(
                f"{self._subject()}: could not reach {url}{tries(attempt)}: "
                f"{type(exc).__name__}: {exc}"
            ),
            attempts=attempt,
            provider=self._provider_name(),
        )


def timed_out(exc: BaseException) -> bool:
    """Whether a transport error is a timeout.

    httpx says so by type; the aiohttp transport maps some errors that are not timeouts
    (a dropped connection) to ``ConnectTimeout``, so its original error decides.
    """
    import httpx

    if not isinstance(exc, httpx.TimeoutException):
        return False
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.startswith("aiohttp"):
        return isinstance(cause, TimeoutError)
    return True


def tries(attempt: int) -> str:
    """How error messages say that ``attempt`` attempts were made (nothing for one)."""
    return f" (after {attempt} attempts)" if attempt > 1 else ""


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, LMError) and error.retryable
