"""A process-wide, bounded record of recent LM calls, for debugging and inspection.

Every call made through :class:`~sigforge.runtime.lm.BaseLM` (cached or not) appends one
:class:`HistoryEntry`. Only the newest entries are kept (200 by default, see
:func:`set_history_limit`). Token totals per LM live on the LM (``lm.usage``), not here.

When a predictor had to repair the reply of a call to read it (JSON in prose, a value in
other casing, ...; see docs/parsing.md), the repairs are added to that call's entry and
counted process-wide: :func:`repair_counts` tells how often a model needs help.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import threading
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from .messages import Message, Usage, message_text

__all__ = [
    "HistoryEntry",
    "add_repairs",
    "clear_history",
    "inspect_history",
    "last",
    "next_call_id",
    "record",
    "repair_counts",
    "reset_repair_counts",
    "set_history_limit",
]

DEFAULT_HISTORY_LIMIT = 200


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One LM call as it was made and answered."""

    #: wall-clock time the call started (seconds since the epoch, as ``time.time()``)
    timestamp: float
    #: the LM's model string, e.g. ``openai/gpt-4o-mini``
    model: str
    #: the messages sent (the request's own: read them, do not change them)
    messages: tuple[Message, ...]
    #: sampling and request parameters that were sent besides the messages
    params: Mapping[str, Any]
    #: the completion text
    response: str
    usage: Usage
    #: True when the answer came from the cache and no request was made
    cached: bool
    #: seconds from the start of the call until the answer was available
    duration: float
    finish_reason: str | None = None
    #: this call's number, unique in the process (``Completion.call_id`` of its answer)
    call_id: int = 0
    #: repairs the reply needed before it could be read (names from ``parsing.REPAIRS``)
    repairs: tuple[str, ...] = ()

    @property
    def cost(self) -> float | None:
        """What the call cost in USD by :mod:`~sigforge.runtime.pricing` (0 for a cache
        hit), or ``None`` when the model has no known price."""
        if self.cached:
            return 0.0
        from .pricing import price_for

        provider, _, name = self.model.partition("/")
        price = price_for(provider, name) if name else None
        return None if price is None else price.cost(self.usage)


_lock = threading.Lock()
_entries: deque[HistoryEntry] = deque(maxlen=DEFAULT_HISTORY_LIMIT)
_repairs: Counter[str] = Counter()
# ``next`` on an itertools.count is atomic under the GIL
_call_ids = itertools.count(1)


def next_call_id() -> int:
    """A new call number (unique in the process)."""
    return next(_call_ids)


def record(entry: HistoryEntry) -> None:
    """Append ``entry``, dropping the oldest entry when the history is full."""
    with _lock:
        _entries.append(entry)


def add_repairs(call_id: int, repairs: tuple[str, ...]) -> None:
    """Record that the reply of call ``call_id`` needed ``repairs`` to be read.

    They are counted (see :func:`repair_counts`) and added to the call's history entry
    if it is still kept.
    """
    if not repairs:
        return
    with _lock:
        _repairs.update(repairs)
        if not call_id:
            return
        for index in range(len(_entries) - 1, -1, -1):  # the call is almost always the newest
            entry = _entries[index]
            if entry.call_id == call_id:
                _entries[index] = dataclasses.replace(entry, repairs=entry.repairs + repairs)
                return


def repair_counts() -> dict[str, int]:
    """How many replies needed each kind of repair since the process started (or the
    last :func:`reset_repair_counts`)."""
    with _lock:
        return dict(_repairs)


def reset_repair_counts() -> None:
    with _lock:
        _repairs.clear()


def last(n: int = 1) -> list[HistoryEntry]:
    """The ``n`` most recent entries, oldest first (fewer if the history is shorter)."""
    if n <= 0:
        return []
    with _lock:
        count = min(n, len(_entries))
        return [_entries[i] for i in range(len(_entries) - count, len(_entries))]


def clear_history() -> None:
    """Forget every recorded call."""
    with _lock:
        _entries.clear()


def set_history_limit(max_entries: int) -> None:
    """Keep at most ``max_entries`` calls (the newest ones are kept when shrinking)."""
    global _entries
    if max_entries < 1:
        raise ValueError("the history must keep at least one entry")
    with _lock:
        _entries = deque(_entries, maxlen=max_entries)


def inspect_history(n: int = 1, file: TextIO | None = None) -> list[HistoryEntry]:
    """Print the ``n`` most recent calls readably to ``file`` (stdout) and return them."""
    entries = last(n)
    out = sys.stdout if file is None else file
    if not entries:
        out.write("(no LM calls recorded)\n")
    for entry in entries:
        out.write(render_entry(entry))
        out.write("\n")
    return entries


def render_entry(entry: HistoryEntry) -> str:
    """A multi-line, human-readable rendering of one call."""
    import datetime

    when = datetime.datetime.fromtimestamp(entry.timestamp).strftime("%Y-%m-%d %H:%M:%S")
    source = "cache" if entry.cached else f"{entry.duration:.2f} s"
    lines = [f"[{when}] {entry.model} ({source})", ""]
    for message in entry.messages:
        lines.append(f"{message['role'].capitalize()} message:")
        lines.append("")
        lines.append(message_text(message))
        lines.append("")
    lines.append("Response:")
    lines.append("")
    lines.append(entry.response)
    lines.append("")
    usage = entry.usage
    tokens = (
        f"Tokens: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion"
        f" = {usage.total_tokens}"
    )
    if entry.cached:
        tokens += " (cached: not counted in the LM's usage)"
    else:
        cost = entry.cost
        if cost is not None:
            tokens += f", cost ${cost:.6f}"
    lines.append(tokens)
    if entry.repairs:
        lines.append(f"Repairs: {', '.join(entry.repairs)}")
    return "\n".join(lines) + "\n"
