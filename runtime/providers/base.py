"""What a provider is to :class:`~sigforge.runtime.lm.LM`: a wire format, nothing more.

:class:`LM` owns the HTTP side (connections, timeouts, retries, rate limits, circuit
breaking, streaming transport). A :class:`Provider` only translates: sigforge's
provider-neutral request (OpenAI-shaped :class:`~sigforge.runtime.messages.Message` s
plus OpenAI-named parameters such as ``max_tokens`` and ``response_format``) into the
provider's URL, headers and JSON body, and the provider's answers -- whole bodies,
stream events and error bodies -- back into a :class:`Completion` or a typed
:class:`~sigforge.runtime.errors.LMError`.

Finish reasons are normalised to OpenAI's words: ``"stop"``, ``"length"`` (cut off by
the token limit), ``"content_filter"``, ``"tool_calls"``; anything else is kept as sent.
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    LMError,
    RateLimitError,
    ServerError,
)
from ..messages import Completion, Message, Usage

__all__ = ["PresetInfo", "Provider", "StreamState", "WireFormatError", "data_url_parts"]


class WireFormatError(ValueError):
    """A 2xx body or stream event that does not have the provider's documented shape."""


@dataclass(frozen=True, slots=True)
class PresetInfo:
    """Where an OpenAI-compatible service lives and where its key usually comes from."""

    base_url: str
    #: environment variable holding the API key (``None``: the server needs no key)
    api_key_env: str | None


@dataclass
class StreamState:
    """What a stream has said so far; the provider's ``feed`` fills it in.

    ``done`` turns true at the provider's end-of-stream event; a stream that stops
    before that was interrupted.
    """

    model: str
    parts: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    done: bool = False

    def completion(self) -> Completion:
        return Completion(
            text="".join(self.parts),
            usage=Usage(self.prompt_tokens, self.completion_tokens),
            model=self.model,
            finish_reason=self.finish_reason,
        )


class Provider(abc.ABC):
    """One wire format. Instances hold no state and are shared by every LM using them."""

    #: the prefix of model strings, e.g. ``"anthropic"`` in ``anthropic/claude-...``
    name: ClassVar[str]
    #: the server's root as the provider's own SDKs configure it (OpenAI's includes /v1)
    default_base_url: ClassVar[str]
    #: where the API key is read from when none is passed
    api_key_env: ClassVar[str | None]

    # -- requests ---------------------------------------------------------------------

    @abc.abstractmethod
    def url(self, base_url: str, model: str, *, stream: bool) -> str:
        """The endpoint for one request."""

    @abc.abstractmethod
    def auth_headers(self, api_key: str) -> dict[str, str]:
        """The headers that carry ``api_key`` (only called with a key)."""

    def static_headers(self) -> dict[str, str]:
        """Headers every request carries besides auth (e.g. an API version)."""
        return {}

    @abc.abstractmethod
    def body(
        self,
        model: str,
        messages: Sequence[Message],
        params: Mapping[str, Any],
        *,
        stream: bool,
    ) -> dict[str, Any]:
        """The JSON body for ``messages`` with OpenAI-named ``params``."""

    # -- answers ------------------------------------------------------------------------

    @abc.abstractmethod
    def completion(self, data: Any, model: str) -> Completion:
        """A whole 2xx body as a completion; raises :class:`WireFormatError`."""

    @abc.abstractmethod
    def feed(self, state: StreamState, event: str, data: str) -> str:
        """Take one server-sent event into ``state``; return the text it adds (maybe "").

        Raises :class:`LMError` for an error event and :class:`WireFormatError` for an
        event that cannot be read.
        """

    # -- errors ---------------------------------------------------------------------------

    def error_message(self, data: Any) -> str | None:
        """The human-readable message inside an error body (``None`` if not found).

        The default reads OpenAI-style bodies (``{"error": {"message": ...}}``) and
        common variants (``detail``, a plain ``error`` string).
        """
        if isinstance(data, dict):
            error = data.get("error", data)
            if isinstance(error, dict):
                for key in ("message", "detail", "error"):
                    if isinstance(error.get(key), str):
                        return str(error[key])
            elif isinstance(error, str):
                return error
        return None

    def error_class(self, status: int, data: Any, message: str) -> type[LMError]:
        """Which :class:`LMError` an HTTP error status (and body) means."""
        error = status_error_class(status)
        if error is BadRequestError and self.is_context_length(status, data, message):
            return ContextLengthError
        return error

    def is_context_length(self, status: int, data: Any, message: str) -> bool:
        """Whether a 4xx answer says the prompt does not fit the context window."""
        lowered = message.lower()
        return status in (400, 413) and any(
            phrase in lowered
            for phrase in (
                "context length",
                "context_length",
                "context window",
                "maximum context",
                "prompt is too long",
                "too many tokens",
                "exceeds the maximum number of tokens",
            )
        )

    def retry_after(self, headers: Mapping[str, str], data: Any) -> float | None:
        """Seconds the server asks us to wait: ``retry-after-ms``, or ``Retry-After`` as
        seconds or an HTTP date. ``None`` when it does not say. Providers add their own
        rate-limit headers and body fields."""
        milliseconds = seconds_value(headers.get("retry-after-ms"))
        if milliseconds is not None:
            return milliseconds / 1000.0
        value = headers.get("retry-after")
        if value is None:
            return None
        seconds = seconds_value(value)
        if seconds is not None:
            return seconds
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


# -- helpers shared by the providers -------------------------------------------------------


def status_error_class(status: int) -> type[LMError]:
    """Which :class:`LMError` an HTTP error status means, for any service: 429 rate limit,
    5xx server error, 401/403 authentication, any other status a bad request."""
    if status == 429:
        return RateLimitError
    if status >= 500:
        return ServerError
    if status in (401, 403):
        return AuthenticationError
    return BadRequestError


def seconds_value(text: str | None) -> float | None:
    """``text`` as a non-negative, finite number of seconds, else ``None``."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return max(0.0, value) if math.isfinite(value) else None


def data_url_parts(url: str) -> tuple[str, str] | None:
    """``(mime_type, base64 data)`` of a ``data:<mime>;base64,<data>`` URL, else ``None``."""
    if not url.startswith("data:"):
        return None
    header, _, payload = url[5:].partition(",")
    mime, _, encoding = header.partition(";")
    if encoding != "base64" or not mime:
        return None
    return mime, payload


def integer(value: object) -> int:
    """A token count from a body: ints as they are, anything else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def split_system(messages: Sequence[Message]) -> tuple[str | None, list[Message]]:
    """The system messages' text joined (``None`` when there are none), and the rest."""
    from ..messages import message_text

    system = [message_text(m) for m in messages if m["role"] == "system"]
    rest = [m for m in messages if m["role"] != "system"]
    return ("\n\n".join(system) if system else None), rest


def json_loads(data: str) -> Any:
    """An event's JSON payload; raises :class:`WireFormatError` when it is not JSON."""
    import json

    try:
        return json.loads(data)
    except ValueError:
        raise WireFormatError(f"an event is not JSON: {data[:200]!r}") from None
