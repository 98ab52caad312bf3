"""Every error sigforge raises on purpose; catch ``SigforgeError`` to catch them all."""

from __future__ import annotations


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
        self, message: str, *, status: int | None = None, attempts: int = 1, body: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts
        self.body = body


class RateLimitError(LMError):
    """HTTP 429 after all retries."""


class ServerError(LMError):
    """HTTP 5xx after all retries."""


class LMTimeoutError(LMError):
    """The request timed out (or the connection failed) after all retries."""


class LMConnectionError(LMTimeoutError):
    """The server could not be reached after all retries."""


class BadRequestError(LMError):
    """HTTP 400/404/422: the request itself is wrong; not retried."""


class AuthenticationError(LMError):
    """HTTP 401/403: the API key is missing or refused; not retried."""


class BadResponseError(LMError):
    """The server answered 2xx with a body that is not a chat completion."""


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
