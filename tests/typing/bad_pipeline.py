"""Deliberate mistakes: mypy --strict must report each one (see test_typing.py)."""

from __future__ import annotations

from generated.qa import Answerer

out = Answerer()(questoin="Who wrote Dune?", context=["..."])  # misspelled input
out2 = Answerer()(question=42, context=["..."])  # wrong type for an input
print(out.answr)  # misspelled output
