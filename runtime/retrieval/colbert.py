"""A client of ColBERTv2 retrieval servers, speaking the API DSPy's ``ColBERTv2`` uses.

The server answers ``GET <url>?query=...&k=...`` (or, with ``post=True``, ``POST <url>``
with the JSON body ``{"query": ..., "k": ...}``) with::

    {"topk": [{"text": "...", "pid": 123, "rank": 1, "score": 27.3, "prob": 0.41,
               "long_text": "..."}, ...], ...}

best first. Each entry becomes a :class:`~.passage.Passage`: its text is ``long_text``
when the server sends one, else ``text``; its id is ``pid``; its score is ColBERT's
``score`` (a late-interaction sum: higher is better, not bounded to [0, 1]); its
metadata holds ``pid``, ``rank``, ``prob`` and any other field the server added (the
shorter ``text`` too, when it differs from the passage's text). A server returns at
most ``k`` entries; extra ones are dropped. The hosted servers accept ``k`` up to 100
(``max_k``).

ColBERTv2 servers do not filter: any ``filter`` is a :class:`~.base.FilterError`.
Requests are made as :class:`~sigforge.runtime.lm.LM` makes them (timeouts, retries,
circuit breaker, typed errors with ``provider="colbertv2"``; see :mod:`._http`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import BadResponseError
from ..transport import Timeout
from .base import Filter, FilterError, check_k
from .passage import Passage, Passages

if TYPE_CHECKING:
    from ..resilience import CircuitBreaker

__all__ = ["ColBERTv2"]


class ColBERTv2:
    """A :class:`~.base.Retriever` backed by a ColBERTv2 server at ``url``.

    ``url`` is the full endpoint (e.g. ``http://host:2017/wiki17_abstracts``); ``port``
    is added to it when given (DSPy's two-argument form). ``post=True`` sends POST
    requests with a JSON body instead of GET with query parameters. ``max_k`` refuses
    larger ``k`` before asking (``None``: no limit). ``timeout``, ``max_retries`` and
    ``circuit_breaker`` work as for :class:`~sigforge.runtime.lm.LM`.
    """

    def __init__(
        self,
        url: str,
        port: int | str | None = None,
        *,
        post: bool = False,
        max_k: int | None = 100,
        timeout: float | Timeout | None = 10.0,
        max_retries: int = 3,
        circuit_breaker: bool | CircuitBreaker = True,
    ) -> None:
        from ._http import JSONService

        if port is not None:
            url = f"{url.rstrip('/')}:{port}"
        self.url = url
        self.post = post
        self.max_k = max_k
        self._http = JSONService(
            url,
            service="colbertv2",
            timeout=timeout,
            max_retries=max_retries,
            circuit_breaker=circuit_breaker,
        )

    def __repr__(self) -> str:
        return f"ColBERTv2({self.url!r}{', post=True' if self.post else ''})"

    def retrieve(self, query: str, k: int = 5, filter: Filter | None = None) -> Passages:
        """The server's ``k`` best passages for ``query``, best first."""
        self._check(query, k, filter)
        if self.post:
            data = self._http.request("POST", json={"query": query, "k": k})
        else:
            data = self._http.request("GET", params={"query": query, "k": k})
        return self._passages(data, k)

    async def aretrieve(self, query: str, k: int = 5, filter: Filter | None = None) -> Passages:
        """Async :meth:`retrieve`."""
        self._check(query, k, filter)
        if self.post:
            data = await self._http.arequest("POST", json={"query": query, "k": k})
        else:
            data = await self._http.arequest("GET", params={"query": query, "k": k})
        return self._passages(data, k)

    def __call__(self, query: str, k: int = 5) -> Passages:
        """``retrieve(query, k)``, as DSPy's client is called."""
        return self.retrieve(query, k)

    def close(self) -> None:
        self._http.close()

    def _check(self, query: str, k: int, filter: Filter | None) -> None:
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        check_k(k)
        if self.max_k is not None and k > self.max_k:
            raise ValueError(f"k={k} is more than this ColBERTv2 server serves ({self.max_k})")
        if filter:
            raise FilterError("ColBERTv2 servers cannot filter by metadata")

    def _passages(self, data: Any, k: int) -> Passages:
        topk = data.get("topk") if isinstance(data, dict) else None
        if not isinstance(topk, list):
            raise self._bad("the answer has no 'topk' list")
        passages = Passages()
        for index, entry in enumerate(topk[:k]):
            if not isinstance(entry, dict):
                raise self._bad(f"topk[{index}] is not an object")
            long_text, text = entry.get("long_text"), entry.get("text")
            body = long_text if isinstance(long_text, str) else text
            if not isinstance(body, str):
                raise self._bad(f"topk[{index}] has no 'text'")
            score = entry.get("score")
            if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
                raise self._bad(f"topk[{index}].score is not a number")
            metadata = {
                key: value
                for key, value in entry.items()
                if key not in ("long_text", "score") and not (key == "text" and value == body)
            }
            pid = entry.get("pid")
            passages.append(
                Passage(body, id="" if pid is None else str(pid), score=score, metadata=metadata)
            )
        return passages

    def _bad(self, problem: str) -> BadResponseError:
        return BadResponseError(
            f"colbertv2: the answer of {self.url} is not a ColBERTv2 result: {problem}",
            provider="colbertv2",
            retryable=False,
        )
