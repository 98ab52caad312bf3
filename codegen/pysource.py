"""Text from `.sig` files -> Python source literals. The only way user text enters generated code.

Every value goes through ``repr`` of a real Python object (or a docstring form that is
checked to be safe), so quotes, backslashes, newlines and template syntax in descriptions
or instructions are data in the generated module, never code.
"""

from __future__ import annotations

import datetime
import enum
import math
from typing import Any


def py_literal(value: Any) -> str:
    """A Python expression equal to ``value`` (str, int, float, bool, None, list, tuple, dict,
    an enum member as ``Enum.member``, a date or datetime from its ISO text)."""
    if isinstance(value, float) and not math.isfinite(value):  # inf and NaN have no literal
        raise ValueError(f"{value} cannot be written as a literal")
    if isinstance(value, enum.Enum):  # the generated module defines or imports the enum
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, datetime.date):  # `datetime` and `date` are imported by name
        kind = "datetime" if isinstance(value, datetime.datetime) else "date"
        return f"{kind}.fromisoformat({value.isoformat()!r})"
    if isinstance(value, dict):
        items = ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(py_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, str | int | float | bool) or value is None:
        return repr(value)
    raise TypeError(f"no literal for {type(value).__name__}")


def py_string_lines(text: str) -> str:
    """A string literal that shows one source line per line of ``text`` (implicit concatenation)."""
    lines = text.splitlines(keepends=True)
    if len(lines) <= 1:
        return repr(text)
    return "(\n" + "\n".join(repr(line) for line in lines) + "\n)"


def py_comment(text: str) -> str:
    """Text safe inside a ``#`` comment: characters that are not printable are escaped."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def py_docstring(text: str) -> str:
    """A readable triple-quoted docstring when that is safe, else a plain escaped literal."""
    safe = (
        '"""' not in text
        and "\\" not in text
        and not text.endswith('"')
        and all(ch == "\n" or ch.isprintable() for ch in text)
    )
    if not safe:
        return repr(text)
    if "\n" in text:
        return f'"""{text}\n"""'
    return f'"""{text}"""'
