"""An in-process LM that answers from a script: no network, no waiting.

Use it in unit tests of predictors and pipelines, and in benchmarks of the runtime's own
overhead. It goes through :class:`~sigforge.runtime.lm.BaseLM`, so usage accounting, the
cache and the call history behave exactly as with a real LM.

It streams natively too (``lm.stream(request)``, and so ``predictor.stream(...)``): a
scripted text is sent in pieces of ``chunk_size`` characters, and a :class:`Streamed`
item scripts the pieces exactly, with restarts and errors mid-stream.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from sigforge.runtime.cache import CompletionCache
from sigforge.runtime.lm import BaseLM
from sigforge.runtime.messages import (
    Completion,
    LMRequest,
    StreamEvent,
    StreamRestart,
    TextDelta,
    Usage,
    message_text,
)

__all__ = ["ScriptExhaustedError", "ScriptedLM", "Streamed"]


class Streamed:
    """A streamed reply, piece by piece.

    Each part is a piece of text (sent as one :class:`~sigforge.runtime.messages.TextDelta`),
    a :class:`~sigforge.runtime.messages.StreamRestart` (sent as is: the LM retries a broken
    stream from the start, so the text after it is the whole answer), or an exception
    (raised at that point: the stream breaks off for good). The completion that ends the
    stream holds the text after the last restart and ``finish_reason`` (``"length"``
    scripts a reply cut off by the token limit).

    Answering an ordinary (not streamed) request, the parts are sent at once: an
    exception among them is raised, else the completion is returned.
    """

    def __init__(
        self, *parts: str | StreamRestart | BaseException, finish_reason: str = "stop"
    ) -> None:
        self.parts = parts
        self.finish_reason = finish_reason

    def __repr__(self) -> str:
        return f"Streamed({', '.join(map(repr, self.parts))}, finish_reason={self.finish_reason!r})"

    @property
    def text(self) -> str:
        """The answer's text: the text parts after the last restart."""
        text = ""
        for part in self.parts:
            if isinstance(part, str):
                text += part
            elif isinstance(part, StreamRestart):
                text = ""
        return text


#: a reply item: text to answer with, a ready completion, a scripted stream, or an
#: exception to raise
ScriptItem = str | Completion | Streamed | BaseException
ScriptResponder = Callable[[LMRequest], str | Completion | Streamed]


class ScriptExhaustedError(AssertionError):
    """A :class:`ScriptedLM` was called more often than it had replies for."""


class ScriptedLM(BaseLM):
    """Answers each request with the next scripted item, or from a responder callable.

    ``replies`` items may be ``str`` (the completion text), a :class:`Completion`
    (returned as given), a :class:`Streamed` reply or an exception instance (raised,
    e.g. to simulate a ``RateLimitError``). A callable instead computes the answer from
    the request. When the script runs out, ``default`` answers if given, else
    :class:`ScriptExhaustedError` is raised.

    Streamed, a text (or a completion's text) is sent in pieces of ``chunk_size``
    characters (``None``: in one piece), then the completion; a :class:`Streamed` item
    is sent exactly as scripted.

    Token usage is estimated as one token per four characters. Caching is off unless
    ``cache`` says otherwise. Every request is kept in :attr:`requests`, or only the last
    ``keep_requests`` of them (for long runs, such as benchmarks: :attr:`calls` still
    counts them all).
    """

    def __init__(
        self,
        replies: Iterable[ScriptItem] | ScriptResponder = (),
        *,
        model: str = "scripted",
        default: str | None = None,
        cache: bool | CompletionCache = False,
        chunk_size: int | None = None,
        keep_requests: int | None = None,
    ) -> None:
        super().__init__(model, cache=cache)
        if chunk_size is not None and chunk_size < 1:
            raise ValueError("chunk_size must be at least 1 (or None for one piece)")
        if keep_requests is not None and keep_requests < 1:
            raise ValueError("keep_requests must be at least 1 (or None for all)")
        self.chunk_size = chunk_size
        self._responder: ScriptResponder | None = None
        self._script: deque[ScriptItem] = deque()
        if callable(replies):
            self._responder = replies
        else:
            self._script.extend(replies)
        self.default = default
        self.requests: list[LMRequest] = []
        self.keep_requests = keep_requests
        self._calls = 0

    def __repr__(self) -> str:
        return f"ScriptedLM(model={self.model!r}, remaining={len(self._script)})"

    @property
    def calls(self) -> int:
        """How many requests reached the script (cache hits do not)."""
        return self._calls

    @property
    def remaining(self) -> int:
        """Scripted replies not yet used."""
        return len(self._script)

    def add_replies(self, *replies: ScriptItem) -> None:
        """Append more replies to the script."""
        self._script.extend(replies)

    def cache_identity(self) -> dict[str, Any]:
        return {"provider": "scripted", "model": self.model}

    def _send(self, request: LMRequest) -> Completion:
        item = self._next_item(request)
        if isinstance(item, Completion):
            return item
        if isinstance(item, Streamed):
            for part in item.parts:
                if isinstance(part, BaseException):
                    raise part
            return self._completion(request, item.text, item.finish_reason)
        return self._completion(request, item, "stop")

    async def _asend(self, request: LMRequest) -> Completion:
        return self._send(request)

    def _stream(self, request: LMRequest) -> Iterator[StreamEvent]:
        item = self._next_item(request)
        parts, completion = self._stream_parts(request, item)
        for part in parts:
            if isinstance(part, BaseException):
                raise part
            yield part
        yield completion

    async def _astream(self, request: LMRequest) -> AsyncIterator[StreamEvent]:
        import asyncio

        item = self._next_item(request)
        parts, completion = self._stream_parts(request, item)
        for part in parts:
            await asyncio.sleep(0)  # let other tasks run between pieces, as a network would
            if isinstance(part, BaseException):
                raise part
            yield part
        yield completion

    def _stream_parts(
        self, request: LMRequest, item: str | Completion | Streamed
    ) -> tuple[list[TextDelta | StreamRestart | BaseException], Completion]:
        """What a stream of ``item`` sends before its completion, and the completion."""
        if isinstance(item, Streamed):
            parts = [TextDelta(p) if isinstance(p, str) else p for p in item.parts]
            return parts, self._completion(request, item.text, item.finish_reason)
        completion = (
            item if isinstance(item, Completion) else self._completion(request, item, "stop")
        )
        text, size = completion.text, self.chunk_size or max(len(completion.text), 1)
        return [TextDelta(text[i : i + size]) for i in range(0, len(text), size)], completion

    def _completion(self, request: LMRequest, text: str, finish_reason: str) -> Completion:
        prompt_chars = sum(len(message_text(message)) for message in request.messages)
        return Completion(
            text=text,
            usage=Usage((prompt_chars + 3) // 4, (len(text) + 3) // 4),
            model=self.model,
            finish_reason=finish_reason,
        )

    def _next_item(self, request: LMRequest) -> str | Completion | Streamed:
        """The scripted answer to ``request`` (recorded); a scripted exception is raised."""
        with self._counters_lock:
            self._calls += 1
            number = self._calls
            self.requests.append(request)
            if self.keep_requests is not None and len(self.requests) > self.keep_requests:
                del self.requests[0]
        item: ScriptItem
        if self._responder is not None:
            item = self._responder(request)
        else:
            try:
                item = self._script.popleft()
            except IndexError:
                if self.default is None:
                    raise ScriptExhaustedError(
                        f"ScriptedLM({self.model!r}) ran out of replies at request "
                        f"{number}; add more or pass default=..."
                    ) from None
                item = self.default
        if isinstance(item, BaseException):
            raise item
        return item
