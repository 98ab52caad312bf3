"""JSON over HTTP for retrieval servers (Chroma, ColBERTv2), with the LM client's policy.

:class:`JSONService` sends one JSON request and returns the decoded answer. It is an
:class:`~sigforge.runtime.transport.HTTPClient`, as :class:`~sigforge.runtime.lm.LM` is,
so a request is treated exactly as an LM request:

* time limits from a :class:`~sigforge.runtime.transport.Timeout` (``connect``,
  ``read``, and a ``total`` deadline across retries);
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

Only what is a service's own is here: the JSON request and its answer, the error bodies
of services that are no LM provider, and which credentials to blot out of errors.
``httpx`` and ``tenacity`` are imported on the first request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..errors import (
    BadRequestError,
    BadResponseError,
    LMError,
)
from ..transport import MAX_ERROR_BODY, ErrorDialect, HTTPClient, Timeout, as_timeout, tries

if TYPE_CHECKING:
    import httpx

    from ..providers import Provider
    from ..resilience import CircuitBreaker

__all__ = ["JSONService"]


class JSONService(HTTPClient):
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
        timeout = as_timeout(timeout)
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
        self._errors: ErrorDialect = wire_format if wire_format is not None else _SERVICE_ERRORS
        self._init_clients()

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
        url = self._url(path)
        client = self._sync_client()
        deadline = self._deadline()

        def attempt(number: int) -> Any:
            self._check_breaker(number)
            try:
                response = self._request(
                    client, method, url, deadline, number, params=params, json=json
                )
                data = self._decode(response, url, number, read)
            except BaseException as exc:
                self._report_to_breaker(exc)
                raise
            self._report_to_breaker(None)
            return data

        try:
            return attempt(1)
        except LMError as error:
            failed = error
        return self._retry(attempt, failed, deadline)

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
        url = self._url(path)
        client = self._async_client()
        deadline = self._deadline()

        async def attempt(number: int) -> Any:
            self._check_breaker(number)
            try:
                response = await self._arequest(
                    client, method, url, deadline, number, params=params, json=json
                )
                data = self._decode(response, url, number, read)
            except BaseException as exc:
                self._report_to_breaker(exc)
                raise
            self._report_to_breaker(None)
            return data

        try:
            return await attempt(1)
        except LMError as error:
            failed = error
        return await self._aretry(attempt, failed, deadline)

    def _url(self, path: str) -> str:
        if not path:
            return self.base_url
        return f"{self.base_url}/{path.lstrip('/')}"

    # -- what the transport asks of a client -------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        import httpx

        return {
            "headers": self.headers,
            "timeout": httpx.Timeout(None, connect=self.timeout.connect, read=self.timeout.read),
        }

    def _subject(self) -> str:
        return self.service

    def _circuit_subject(self) -> str:
        return f"{self.service} at {self.base_url}"

    def _provider_name(self) -> str:
        return self.service

    def _unusable_url(self, exc: httpx.UnsupportedProtocol, url: str, attempt: int) -> LMError:
        return BadRequestError(
            f"{self.service}: unusable URL {url!r}: {exc}",
            attempts=attempt,
            provider=self.service,
        )

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
            raise self._http_error(response, url, attempt, self._errors)
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
            self._redact(f"{self.service}: HTTP {status} from {url} {problem}{tries(attempt)}"),
            status=status,
            attempts=attempt,
            body=self._redact(response.text[:MAX_ERROR_BODY]),
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


class _ServiceErrors:
    """The error answers of services that are no LM provider (:class:`ErrorDialect`):
    the message in common bodies, the class by status, ``Retry-After`` in seconds."""

    def error_message(self, data: Any) -> str | None:
        """``{"message"}``, ``{"error": {"message"}}``, ``{"error": "..."}`` or ``{"detail": ...}``."""
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

    def error_class(self, status: int, data: Any, message: str) -> type[LMError]:
        from ..providers.base import status_error_class

        return status_error_class(status)

    def retry_after(self, headers: Mapping[str, str], data: Any) -> float | None:
        from ..providers.base import seconds_value

        return seconds_value(headers.get("retry-after"))


_SERVICE_ERRORS = _ServiceErrors()
