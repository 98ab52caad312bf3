"""Every error sigforge raises on purpose; catch ``SigforgeError`` to catch them all."""

from __future__ import annotations

from typing import ClassVar


class SigforgeError(Exception):
    """Base class of all sigforge errors."""


class ConfigurationError(SigforgeError):
    """Settings are missing or contradict each other (e.g. no LM configured)."""


class GeneratedCodeVersionError(SigforgeError, ImportError):
    """A generated module was written by a sigforge version this runtime cannot serve."""


class StateError(SigforgeError):
    """Saved predictor state (demos, instructions) does not fit the predictor."""


class LMError(SigforgeError):
    """A request to a language model failed.

    ``status`` is the HTTP status when there was a response, ``attempts`` how many
    requests were made before giving up.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        attempts: int = 1,
        body: str = "",
        retry_after: float | None = None,
        provider: str = "",
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self._retryable = retryable
        self.status = status
        self.attempts = attempts
        self.body = body
        #: seconds the server asked us to wait (``Retry-After`` or a rate-limit reset
        #: header), when it said
        self.retry_after = retry_after
        #: which provider answered ("openai", "anthropic", "gemini", ...)
        self.provider = provider

    #: whether errors of this class are worth another attempt by default
    RETRYABLE: ClassVar[bool] = False

    @property
    def retryable(self) -> bool:
        """Whether another attempt could succeed (rate limits, 5xx, timeouts, broken streams).

        The class decides, unless the error was raised with ``retryable=`` (e.g. a timeout
        of the whole call is final although timeouts usually are not).
        """
        return type(self).RETRYABLE if self._retryable is None else self._retryable


class RateLimitError(LMError):
    """HTTP 429 (Anthropic: also 529 overloaded is a :class:`ServerError`) after all retries."""

    RETRYABLE = True


class ServerError(LMError):
    """HTTP 5xx after all retries."""

    RETRYABLE = True


class LMTimeoutError(LMError):
    """The request timed out (or the connection failed) after all retries."""

    RETRYABLE = True


class LMConnectionError(LMTimeoutError):
    """The server could not be reached after all retries."""


class BadRequestError(LMError):
    """HTTP 400/404/422: the request itself is wrong; not retried."""


class ContextLengthError(BadRequestError):
    """The prompt (plus ``max_tokens``) does not fit the model's context window."""


class AuthenticationError(LMError):
    """HTTP 401/403: the API key is missing or refused; not retried."""


class BadResponseError(LMError):
    """The server answered 2xx with a body that is not a chat completion."""

    RETRYABLE = True


class StreamInterruptedError(LMError):
    """A streamed answer broke off before its end (connection lost, bad event)."""

    RETRYABLE = True


class CircuitOpenError(LMError):
    """The endpoint failed repeatedly; calls fail fast until the breaker's cool-down ends.

    ``retry_after`` says how many seconds remain until a probe request is allowed.
    """


class OutputParseError(SigforgeError):
    """The LM's reply could not be turned into the typed outputs.

    ``field`` names the output field at fault (``None`` when the reply had no usable
    structure at all), ``expected`` the type it should have had, ``raw`` the whole reply.
    ``structural`` is True when the reply lacked the expected structure (empty, no
    fields found, fields missing) rather than carrying a present but invalid value; a
    predictor may retry such a reply once with another format.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None,
        expected: str,
        raw: str,
        structural: bool = False,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.expected = expected
        self.raw = raw
        self.structural = structural


class TruncatedOutputError(OutputParseError):
    """The reply was cut off by the token limit (``finish_reason: length``).

    Raised even when the cut-off reply happens to parse: a truncated answer is never
    returned as a complete one. Raise ``max_tokens`` or shorten the prompt.
    """
