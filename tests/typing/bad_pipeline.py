"""Deliberate mistakes: mypy --strict must report each one (see test_typing.py)."""

from __future__ import annotations

from generated.qa import Answerer

out = Answerer()(questoin="Who wrote Dune?", context=["..."])  # misspelled input
out2 = Answerer()(question=42, context=["..."])  # wrong type for an input
print(out.answr)  # misspelled output

# The richer language (signatures/support.sig, signatures/common.sig)
import datetime  # noqa: E402

from generated.common import Citation, Priority  # noqa: E402
from generated.support import LookupOrderFunction, Triage  # noqa: E402

res = Triage()(message="Help", received="yesterday")  # a str where a datetime is declared
Citation(article_id=1, title="x", page=3)  # no such class field
level: Priority = "urgent"  # a str is not an enum member


def lookup(*, order_id: int, include_items: bool = False) -> dict[str, str]:
    return {}


tool: LookupOrderFunction = lookup  # the tool's argument is a str, not an int
ok = Triage()(message="Help", received=datetime.datetime.now())
print(ok.summary.department.valuee)  # misspelled attribute of an enum member
for partial in Answerer().stream(question="Who?", context=["..."]):
    print(partial.answr)  # misspelled field of a partial
    text: str = partial.answer  # a partial's field may still be None
