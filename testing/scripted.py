"""An in-process LM that answers from a script: no network, no waiting.

Use it in unit tests of predictors and pipelines, and in benchmarks of the runtime's own
overhead. It goes through :class:`~sigforge.runtime.lm.BaseLM`, so usage accounting and
the call history behave exactly as with a real LM.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from sigforge.runtime.cache import Cache
from sigforge.runtime.lm import BaseLM
from sigforge.runtime.messages import Completion, LMRequest, Usage, message_text

__all__ = ["ScriptExhaustedError", "ScriptedLM"]

#: a reply item: text to answer with, a ready completion, or an exception to raise
ScriptItem = str | Completion | BaseException
ScriptResponder = Callable[[LMRequest], str | Completion]


class ScriptExhaustedError(AssertionError):
    """A :class:`ScriptedLM` was called more often than it had replies for."""


class ScriptedLM(BaseLM):
    """Answers each request with the next scripted item, or from a responder callable.

    ``replies`` items may be ``str`` (the completion text), a :class:`Completion`
    (returned as given) or an exception instance (raised, e.g. to simulate a
    ``RateLimitError``). A callable instead computes the answer from the request. When
    the script runs out, ``default`` answers if given, else :class:`ScriptExhaustedError`
    is raised.

    Token usage is estimated as one token per four characters. Caching is off unless
    ``cache`` says otherwise. Every request is kept in :attr:`requests`.
    """

    def __init__(
        self,
        replies: Iterable[ScriptItem] | ScriptResponder = (),
        *,
        model: str = "scripted",
        default: str | None = None,
        cache: bool | Cache = False,
    ) -> None:
        super().__init__(model, cache=cache)
        self._responder: ScriptResponder | None = None
        self._script: deque[ScriptItem] = deque()
        if callable(replies):
            self._responder = replies
        else:
            self._script.extend(replies)
        self.default = default
        self.requests: list[LMRequest] = []

    def __repr__(self) -> str:
        return f"ScriptedLM(model={self.model!r}, remaining={len(self._script)})"

    @property
    def calls(self) -> int:
        """How many requests reached the script (cache hits do not)."""
        return len(self.requests)

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
        self.requests.append(request)  # list.append and deque.popleft are thread-safe
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
                        f"{len(self.requests)}; add more or pass default=..."
                    ) from None
                item = self.default
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, Completion):
            return item
        prompt_chars = sum(len(message_text(message)) for message in request.messages)
        return Completion(
            text=item,
            usage=Usage((prompt_chars + 3) // 4, (len(item) + 3) // 4),
            model=self.model,
            finish_reason="stop",
        )

    async def _asend(self, request: LMRequest) -> Completion:
        return self._send(request)
