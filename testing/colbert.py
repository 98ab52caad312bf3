"""A real ColBERTv2-style search server on 127.0.0.1, for testing retrieval pipelines.

.. code-block:: python

    with ColBERTv2Server(["Dune | Dune is a 1965 novel by Frank Herbert.", ...]) as server:
        retriever = ColBERTv2(server.url)
        passages = retriever.retrieve("Who wrote Dune?", k=3)
        assert server.requests[0].query == {"query": "Who wrote Dune?", "k": "3"}

It serves the API of the ColBERTv2 servers DSPy's ``ColBERTv2`` client talks to, at
``path`` (default ``/search``): ``GET ?query=...&k=...`` and ``POST`` with the JSON
body ``{"query": ..., "k": ...}``, answered with ``{"query": ..., "topk": [{"text",
"pid", "rank", "score", "prob", "long_text"}, ...]}``, best first. Requests are checked:
``query`` must be a non-empty string and ``k`` an integer from 1 to ``max_k`` (in the
query string for GET, in a JSON object body sent as ``application/json`` for POST);
violations are recorded in ``server.violations`` and answered with HTTP 400.

The ranking is a stand-in for ColBERT's late interaction, deterministic and cheap: a
passage scores the number of query words it contains (case-insensitive, counted with
repetition, plus a small bonus per distinct word matched); ties go to the lower
``pid`` (the passage's index in ``corpus``); ``prob`` is the softmax of the returned
scores. Passages that share no word with the query are not returned.

``replies`` are :class:`~sigforge.testing.Reply` items answered first, in order, before
the corpus takes over: errors (``Reply(status=503)``), delays, dropped connections
(``Reply(disconnect=True)``) or raw bodies (``Reply(body={...})``). It is the shared
:class:`~sigforge.testing.ScriptedServer` machinery (recording, outages,
``max_lifetime``), with a ColBERTv2 dialect.
"""

from __future__ import annotations

import math
import re
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._checks import Problems, is_int
from ._core import (
    NOT_JSON,
    Answer,
    Dialect,
    Event,
    Inspection,
    RecordedRequest,
    Reply,
    Route,
    ScriptedServer,
)

__all__ = ["ColBERTv2Dialect", "ColBERTv2Server"]

_WORD = re.compile(r"\w+")


class ColBERTv2Dialect(Dialect):
    """The ColBERTv2 search API at one path (see the module docstring)."""

    name = "colbertv2"

    def __init__(self, *, path: str = "/search", max_k: int = 100) -> None:
        super().__init__()
        if not path.startswith("/"):
            raise ValueError("path must start with '/'")
        self.base_path = path.rstrip("/") or "/"
        self.max_k = max_k

    def route(self, method: str, path: str, query: Mapping[str, str]) -> Route | None:
        if method in ("GET", "POST") and (path.rstrip("/") or "/") == self.base_path:
            return Route(f"search.{method.lower()}", stream=False)
        return None

    def inspect(
        self, route: Route, headers: Mapping[str, str], query: Mapping[str, str], body: Any
    ) -> Inspection:
        problems = Problems()
        if route.name == "search.get":
            text, k = query.get("query"), query.get("k")
            for key in query:
                if key not in ("query", "k"):
                    problems.add(f"{key}: unknown query parameter")
            if body is not NOT_JSON:
                problems.add("a GET search carries no body")
            number = int(k) if isinstance(k, str) and re.fullmatch(r"\d+", k) else None
            if k is None:
                problems.add("k: required query parameter")
            elif number is None:
                problems.add(f"k: expected an integer, got {k!r}")
        else:
            data = self.json_object(headers, body, problems)
            if data is None:
                return Inspection(problems)
            for key in data:
                if key not in ("query", "k"):
                    problems.add(f"{key}: unknown field")
            text, raw_k = data.get("query"), data.get("k")
            number = raw_k if is_int(raw_k) else None
            if "k" not in data:
                problems.add("k: required")
            elif number is None:
                problems.add(f"k: expected an integer, got {raw_k!r}")
        if text is None:
            problems.add("query: required")
        elif not isinstance(text, str) or not text.strip():
            problems.add("query: expected a non-empty string")
        if number is not None and not 1 <= number <= self.max_k:
            problems.add(f"k: must be between 1 and {self.max_k}, got {number}")
        return Inspection(problems, texts=[text] if isinstance(text, str) else [])

    def completion(self, answer: Answer) -> dict[str, Any]:
        """A scripted text reply as a one-passage result."""
        text = answer.reply.content or ""
        entry = {"text": text, "pid": 0, "rank": 1, "score": 1.0, "prob": 1.0, "long_text": text}
        return {"query": answer.request.last_text, "topk": [entry]}

    def stream_head(self, answer: Answer) -> list[Event]:
        return []

    def stream_piece(self, answer: Answer, piece: str, index: int) -> Event:
        return Event(piece)

    def stream_tail(self, answer: Answer) -> list[Event]:
        return []

    def error_type(self, status: int) -> str:
        return {400: "Bad Request", 404: "Not Found", 429: "Too Many Requests"}.get(
            status, "Internal Server Error" if status >= 500 else "Error"
        )

    def error_body(
        self, status: int, message: str, error_type: str, retry_after: float | None
    ) -> dict[str, Any]:
        return {"error": message}


class ColBERTv2Server(ScriptedServer):
    """A ColBERTv2 search server over ``corpus`` on ``127.0.0.1`` (ephemeral port).

    ``url`` is the endpoint a client is given (``http://127.0.0.1:PORT/search``).
    ``replies`` are answered first (see the module docstring); ``long_text=False``
    leaves ``long_text`` out of the results (as GET answers of some servers do).
    Start and stop it with ``with``, or with :meth:`start` / :meth:`stop`; it stops
    itself after ``max_lifetime`` seconds.
    """

    dialect: ColBERTv2Dialect

    def __init__(
        self,
        corpus: Sequence[str] = (),
        *,
        replies: Iterable[str | Reply] = (),
        path: str = "/search",
        max_k: int = 100,
        long_text: bool = True,
        max_lifetime: float | None = 120.0,
    ) -> None:
        self.corpus = list(corpus)
        self.long_text = long_text
        self._queued: deque[str | Reply] = deque(replies)
        self._queue_lock = threading.Lock()
        self._words = [_words(text) for text in self.corpus]
        super().__init__(
            self._respond,
            dialect=ColBERTv2Dialect(path=path, max_k=max_k),
            max_lifetime=max_lifetime,
        )

    @property
    def url(self) -> str:
        """The search endpoint, ``http://127.0.0.1:PORT/search``."""
        return self.base_url

    def search(self, query: str, k: int) -> list[dict[str, Any]]:
        """The ``topk`` entries the server answers ``query`` with."""
        wanted = _words(query)
        scored: list[tuple[float, int]] = []
        for pid, words in enumerate(self._words):
            hits = sum(words.count(word) for word in set(wanted))
            distinct = sum(1 for word in set(wanted) if word in words)
            if hits:
                scored.append((hits + 0.5 * distinct, pid))
        scored.sort(key=lambda item: (-item[0], item[1]))
        top = scored[:k]
        total = sum(math.exp(score - top[0][0]) for score, _ in top) if top else 1.0
        entries = []
        for rank, (score, pid) in enumerate(top, start=1):
            entry: dict[str, Any] = {
                "text": self.corpus[pid],
                "pid": pid,
                "rank": rank,
                "score": score,
                "prob": math.exp(score - top[0][0]) / total,
            }
            if self.long_text:
                entry["long_text"] = self.corpus[pid]
            entries.append(entry)
        return entries

    def _respond(self, request: RecordedRequest) -> str | Reply:
        with self._queue_lock:
            if self._queued:
                return self._queued.popleft()
        if request.method == "GET":
            query, k = request.query["query"], int(request.query["k"])
        else:
            query, k = request.json["query"], int(request.json["k"])
        return Reply(body={"query": query, "topk": self.search(query, k)})


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())
