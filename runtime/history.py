"""A process-wide, bounded record of recent LM calls, for debugging and inspection.

Every call made through :class:`~sigforge.runtime.lm.BaseLM` (cached or not) appends one
:class:`HistoryEntry`. Only the newest entries are kept (200 by default, see
:func:`set_history_limit`). Token totals per LM live on the LM (``lm.usage``), not here.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from .messages import Message, Usage, message_text

__all__ = [
    "HistoryEntry",
    "clear_history",
    "inspect_history",
    "last",
    "record",
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
    #: the messages sent (copies; mutating them does not affect the caller's prompts)
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


_lock = threading.Lock()
_entries: deque[HistoryEntry] = deque(maxlen=DEFAULT_HISTORY_LIMIT)


def record(entry: HistoryEntry) -> None:
    """Append ``entry``, dropping the oldest entry when the history is full."""
    with _lock:
        _entries.append(entry)


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
    lines.append(tokens)
    return "\n".join(lines) + "\n"
