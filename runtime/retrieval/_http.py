"""JSON over HTTP for retrieval servers (Chroma, ColBERTv2), with the LM client's policy.

:class:`JSONService` sends one JSON request and returns the decoded answer, the way
:class:`~sigforge.runtime.lm.LM` treats a request:

* time limits from a :class:`~sigforge.runtime.lm.Timeout` (``connect``, ``read``, and
  a ``total`` deadline across retries);
* retries by tenacity with full-jitter back-off, honouring ``Retry-After``, for the
  failures another attempt could fix (429, 5xx, timeouts, lost connections, 2xx bodies
  that are not JSON);
* the process-wide circuit breaker of the server
  (:func:`~sigforge.runtime.resilience.breaker_for`), fed by every attempt;
* the typed errors of :mod:`sigforge.runtime.errors` (``ServerError``,
  ``RateLimitError``, ``LMTimeoutError``, ``LMConnectionError``, ``BadRequestError``,
  ``AuthenticationError``, ``BadResponseError``, ``CircuitOpenError``), with
  ``provider`` naming the service.

A service that speaks an LM provider's dialect (OpenAI-compatible ``/v1/embeddings``)
passes that provider's :class:`~sigforge.runtime.providers.Provider` as
``wire_format``: its error answers are then read exactly as :class:`LM` reads them (the
provider's error messages, ``ContextLengthError``, its rate-limit headers).

``httpx`` and ``tenacity`` are imported on the first request.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..errors import (
    AuthenticationError,
    BadRequestError,
    BadResponseError,
    CircuitOpenError,
    LMConnectionError,
    LMError,
    LMTimeoutError,
    RateLimitError,
    ServerError,
)
from ..lm import Timeout

if TYPE_CHECKING:
    import asyncio

    import httpx
    from tenacity import RetryCallState

    from ..providers import Provider
    from ..resilience import CircuitBreaker

__all__ = ["JSONService"]

_MAX_ERROR_BODY = 2000


class JSONService:
    """A JSON client of one HTTP service (``service`` names it in errors and the breaker).

    ``timeout`` is a number (connect and read limit) or a :class:`Timeout`;
    ``max_retries`` further attempts after a retryable failure; ``circuit_breaker``:
    ``True`` for the process-wide breaker of ``base_url``, a breaker, or ``False``.
    ``wire_format``: the LM provider whose error answers the service gives (see the
    module docstring); ``None`` reads common error bodies.
    """

    def __init__(
        self,
        base_url: str,
        *,
        service: str,
        timeout: float | Timeout | None = 30.0,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        retry_after_max: float = 60.0,
        circuit_breaker: bool | CircuitBreaker = True,
        headers: Mapping[str, str] | None = None,
        wire_format: Provider | None = None,
    ) -> None:
        from ..resilience import breaker_for

        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if timeout is None:
            timeout = Timeout(connect=None, read=None)
        elif not isinstance(timeout, Timeout):
            if not timeout > 0:
                raise ValueError("timeout must be positive (or None for no timeout)")
            timeout = Timeout(connect=float(timeout), read=float(timeout))
        self.base_url = base_url.rstrip("/")
        self.service = service
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        if circuit_breaker is True:
            circuit_breaker = breaker_for(f"{service}:{self.base_url}")
        self.circuit_breaker: CircuitBreaker | None = circuit_breaker or None
        self.headers = {"User-Agent": f"sigforge/{__version__}", **(headers or {})}
        self.wire_format = wire_format
        self._client: httpx.Client | None = None
        self._async_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        self._lock = threading.Lock()

    # -- requests ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str = "",
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        read: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Send one request (retried as the class says); the decoded JSON answer.

        ``read`` turns the decoded answer into the result inside each attempt: a
        ``ValueError`` it raises makes the answer malformed (``BadResponseError``,
        retried like a body that is not JSON).
        """
        import httpx

        url = self._url(path)
        client = self._sync_client()
        deadline = self._deadline()

        def attempt(number: int) -> Any:
            self._admit(number)
            try:
                try:
                    response = client.request(
                        method, url, params=params, json=json, **self._timeouts(deadline, number)
                    )
                except httpx.TransportError as exc:
                    raise self._transport_error(exc, url, number, deadline) from exc
                data = self._decode(response, url, number, read)
            except BaseException as exc:
                self._report(exc)
                raise
            self._report(None)
            return data

        for retry in self._retrying(deadline):
            with retry:
                return attempt(retry.retry_state.attempt_number)
        raise AssertionError("unreachable")  # pragma: no cover

    async def arequest(
        self,
        method: str,
        path: str = "",
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        read: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Async :meth:`request`."""
        import asyncio

        import httpx

        url = self._url(path)
        client = self._async_client()
        deadline = self._deadline()

        async def attempt(number: int) -> Any:
            self._admit(number)
            try:
                try:
                    timeouts = self._timeouts(deadline, number)
                    if deadline is None:
                        response = await client.request(method, url, params=params, json=json)
                    else:  # also bound a slowly dripping body
                        async with asyncio.timeout(self._remaining(deadline, url, number)):
                            response = await client.request(
                                method, url, params=params, json=json, **timeouts
                            )
                except TimeoutError:
                    raise self._total_timeout(url, number) from None
                except httpx.TransportError as exc:
                    raise self._transport_error(exc, url, number, deadline) from exc
                data = self._decode(response, url, number, read)
            except BaseException as exc:
                self._report(exc)
                raise
            self._report(None)
            return data

        async for retry in self._aretrying(deadline):
            with retry:
                return await attempt(retry.retry_state.attempt_number)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close the blocking client's connections (async clients are forgotten)."""
        with self._lock:
            client, self._client = self._client, None
            self._async_clients.clear()
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the running event loop's async client (and the blocking client)."""
        import asyncio

        with self._lock:
            client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
        self.close()

    # -- clients ----------------------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        import httpx

        return {
            "headers": self.headers,
            "timeout": httpx.Timeout(None, connect=self.timeout.connect, read=self.timeout.read),
        }

    def _sync_client(self) -> httpx.Client:
        client = self._client
        if client is None:
            import httpx

            with self._lock:
                client = self._client
                if client is None:
                    client = self._client = httpx.Client(**self._options())
        return client

    def _async_client(self) -> httpx.AsyncClient:
        import asyncio

        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            import httpx

            with self._lock:
                for old in [lp for lp in self._async_clients if lp.is_closed()]:
                    del self._async_clients[old]
                client = self._async_clients.get(loop)
                if client is None:
                    client = self._async_clients[loop] = httpx.AsyncClient(**self._options())
        return client

    def _url(self, path: str) -> str:
        if not path:
            return self.base_url
        return f"{self.base_url}/{path.lstrip('/')}"

    # -- policy -----------------------------------------------------------------------------

    def _retry_options(self, deadline: float | None) -> dict[str, Any]:
        from tenacity import retry_if_exception

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number > self.max_retries:
                return True
            upcoming = state.upcoming_sleep or 0.0
            return deadline is not None and time.monotonic() + upcoming >= deadline

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome is not None else None
            retry_after = error.retry_after if isinstance(error, LMError) else None
            if retry_after is not None:
                return max(0.0, min(retry_after, self.retry_after_max))
            ceiling = self.backoff_base * 2 ** (state.attempt_number - 1)
            return random.uniform(0.0, min(self.backoff_max, ceiling))

        def retryable(error: BaseException) -> bool:
            return isinstance(error, LMError) and error.retryable

        return {"stop": stop, "wait": wait, "retry": retry_if_exception(retryable), "reraise": True}

    def _retrying(self, deadline: float | None) -> Any:
        from tenacity import Retrying

        return Retrying(sleep=time.sleep, **self._retry_options(deadline))

    def _aretrying(self, deadline: float | None) -> Any:
        import asyncio

        from tenacity import AsyncRetrying

        return AsyncRetrying(sleep=asyncio.sleep, **self._retry_options(deadline))

    def _deadline(self) -> float | None:
        total = self.timeout.total
        return None if total is None else time.monotonic() + total

    def _remaining(self, deadline: float, url: str, attempt: int) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._total_timeout(url, attempt)
        return remaining

    def _timeouts(self, deadline: float | None, attempt: int) -> dict[str, Any]:
        if deadline is None:
            return {}
        import httpx

        remaining = self._remaining(deadline, self.base_url, attempt)
        connect, read = self.timeout.connect, self.timeout.read
        return {
            "timeout": httpx.Timeout(
                remaining,
                connect=remaining if connect is None else min(connect, remaining),
                read=remaining if read is None else min(read, remaining),
            )
        }

    def _admit(self, attempt: int) -> None:
        breaker = self.circuit_breaker
        if breaker is None:
            return
        try:
            breaker.before_call()
        except CircuitOpenError as exc:
            exc.args = (f"{self.service} at {self.base_url}: {exc}{_tries(attempt)}",)
            exc.attempts, exc.provider = attempt, self.service
            raise

    def _report(self, error: BaseException | None) -> None:
        """Tell the breaker how the server did (5xx, timeouts, lost connections and
        malformed answers count against it; any other answer shows it is up)."""
        breaker = self.circuit_breaker
        if breaker is None or isinstance(error, CircuitOpenError):
            return
        if isinstance(error, LMError) and error.retryable and not isinstance(error, RateLimitError):
            breaker.record_failure()
        elif error is None or isinstance(error, LMError):
            breaker.record_success()

    # -- answers and errors -----------------------------------------------------------------

    def _decode(
        self,
        response: httpx.Response,
        url: str,
        attempt: int,
        read: Callable[[Any], Any] | None = None,
    ) -> Any:
        status = response.status_code
        if not 200 <= status < 300:
            raise self._http_error(response, url, attempt)
        try:
            data = response.json()
        except ValueError:
            problem = "is not JSON"
        else:
            if read is None:
                return data
            try:
                return read(data)
            except ValueError as exc:
                problem = f"is not a valid answer: {exc}"
        raise BadResponseError(
            self._redact(f"{self.service}: HTTP {status} from {url} {problem}{_tries(attempt)}"),
            status=status,
            attempts=attempt,
            body=self._redact(response.text[:_MAX_ERROR_BODY]),
            provider=self.service,
        )

    def _http_error(self, response: httpx.Response, url: str, attempt: int) -> LMError:
        from ..providers.base import seconds_value

        status = response.status_code
        try:
            data: Any = response.json()
        except ValueError:
            data = None
        wire_format = self.wire_format
        if wire_format is not None:
            detail = wire_format.error_message(data) or response.text.strip()[:500]
        else:
            detail = _error_message(data) or response.text.strip()[:500]
        message = f"{self.service}: HTTP {status} from {url}{_tries(attempt)}"
        if detail:
            message += f": {detail}"
        cls: type[LMError]
        if wire_format is not None:
            cls = wire_format.error_class(status, data, detail)
        elif status == 429:
            cls = RateLimitError
        elif status >= 500:
            cls = ServerError
        elif status in (401, 403):
            cls = AuthenticationError
        else:
            cls = BadRequestError
        retry_after = None
        if status == 429 or status >= 500:
            if wire_format is not None:
                retry_after = wire_format.retry_after(response.headers, data)
            else:
                retry_after = seconds_value(response.headers.get("retry-after"))
        return cls(
            self._redact(message),
            status=status,
            attempts=attempt,
            body=self._redact(response.text[:_MAX_ERROR_BODY]),
            retry_after=retry_after,
            provider=self.service,
        )

    def _transport_error(
        self, exc: httpx.TransportError, url: str, attempt: int, deadline: float | None
    ) -> LMError:
        import httpx

        from ..lm import _timed_out

        if deadline is not None and _timed_out(exc) and time.monotonic() >= deadline - 0.01:
            return self._total_timeout(url, attempt)
        if isinstance(exc, httpx.UnsupportedProtocol):
            return BadRequestError(
                f"{self.service}: unusable URL {url!r}: {exc}",
                attempts=attempt,
                provider=self.service,
            )
        if _timed_out(exc):
            limit = (
                self.timeout.connect if isinstance(exc, httpx.ConnectTimeout) else self.timeout.read
            )
            what = "timed out" + (f" (timeout {limit:g} s)" if limit else "")
            return LMTimeoutError(
                f"{self.service}: request to {url} {what}{_tries(attempt)}",
                attempts=attempt,
                provider=self.service,
            )
        return LMConnectionError(
            f"{self.service}: could not reach {url}{_tries(attempt)}: {type(exc).__name__}: {exc}",
            attempts=attempt,
            provider=self.service,
        )

    def _redact(self, text: str) -> str:
        """``text`` with the credentials this client sends blotted out (a server may echo
        them): the ``Authorization`` value after its scheme, and the whole value of any
        header whose name mentions a key, token or secret."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "<redacted>")
        return text

    @property
    def _secrets(self) -> list[str]:
        found = []
        for name, value in self.headers.items():
            lowered = name.lower()
            if lowered in ("authorization", "proxy-authorization"):
                value = value.partition(" ")[2] or value
            elif not any(word in lowered for word in ("key", "token", "secret", "auth")):
                continue
            if len(value) >= 4:
                found.append(value)
        return found

    def _total_timeout(self, url: str, attempt: int) -> LMTimeoutError:
        return LMTimeoutError(
            f"{self.service}: no answer from {url} within the total timeout of "
            f"{self.timeout.total:g} s{_tries(attempt)}",
            attempts=attempt,
            provider=self.service,
            retryable=False,
        )


def _error_message(data: Any) -> str | None:
    """The message in an error body: ``{"message"}``, ``{"error": {"message"}}``,
    ``{"error": "..."}`` or ``{"detail": ...}``."""
    if not isinstance(data, dict):
        return None
    for key in ("message", "detail"):
        if isinstance(data.get(key), str):
            return str(data[key])
    error = data.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return None


def _tries(attempt: int) -> str:
    return f" (after {attempt} attempts)" if attempt > 1 else ""
