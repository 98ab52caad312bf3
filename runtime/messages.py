"""Plain data that flows between predictors, adapters and LMs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict


class Message(TypedDict):
    """One chat message, exactly as the OpenAI chat format sends it.

    ``content`` is text, or a list of content parts when a user turn holds images
    (``{"type": "text", "text": ...}``, ``{"type": "image_url", "image_url": {"url": ...}}``).
    """

    role: Literal["system", "user", "assistant"]
    content: str | list[dict[str, Any]]


def message_text(message: Message) -> str:
    """The text of a message; an image part reads as ``[image]``."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(
        part.get("text", "") if part.get("type") == "text" else "[image]" for part in content
    )


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call (or a sum of calls)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True, slots=True)
class LMRequest:
    """What a predictor asks of an LM: the messages and any extra request parameters.

    ``params`` holds per-request additions such as ``response_format``; sampling
    parameters (temperature, max_tokens) belong to the LM and are merged by it.
    """

    messages: tuple[Message, ...]
    params: dict[str, Any] = field(default_factory=dict)
    #: tells apart requests that should get separate answers although they are the same
    #: (several samples of one prompt: best_of_n, bootstrapping rounds). Part of the cache
    #: key, never sent to the provider. ``None`` for an ordinary request.
    rollout_id: int | str | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    """An LM's answer to one request."""

    text: str
    usage: Usage = Usage()
    model: str = ""
    finish_reason: str | None = None
    #: True when served from the cache (no request was made)
    cached: bool = False
    #: the call's number in the history (see :mod:`~sigforge.runtime.history`); 0 when
    #: the completion did not come from ``BaseLM.complete``/``stream``
    call_id: int = 0


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of a streamed answer's text, in order."""

    text: str


@dataclass(frozen=True, slots=True)
class StreamRestart:
    """A stream broke off and is being retried from the start: forget the text so far.

    ``attempt`` is the attempt that is starting (2 for the first retry); ``error`` is
    what ended the previous one.
    """

    attempt: int
    error: Exception


#: what ``BaseLM.stream`` yields: deltas (and restarts), then exactly one ``Completion``
StreamEvent = TextDelta | StreamRestart | Completion
