"""Text from `.sig` files -> Python source literals. The only way user text enters generated code.

Every value goes through ``repr`` of a real Python object (or a docstring form that is
checked to be safe), so quotes, backslashes, newlines and template syntax in descriptions
or instructions are data in the generated module, never code.
"""

from __future__ import annotations

import datetime
import enum
import functools
import math
import re
from typing import Any


def py_literal(value: Any) -> str:
    """A Python expression equal to ``value`` (str, int, float, bool, None, list, tuple, dict,
    an enum member as ``Enum.member``, a date or datetime from its ISO text)."""
    if type(value) is str:  # the common case first (a str enum member is not exactly str)
        return py_str(value)
    cls = type(value)
    # then exactly int, bool or a finite float (an IntEnum member is none of them): its repr
    if cls is int or cls is bool or (cls is float and math.isfinite(value)):
        return repr(value)
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
    if isinstance(value, str):
        return py_str(value)
    if isinstance(value, int | float | bool) or value is None:
        return repr(value)
    raise TypeError(f"no literal for {type(value).__name__}")


@functools.lru_cache(maxsize=4096)
def py_str(text: str) -> str:
    """A string literal in black's style: double quotes unless they need more escapes.

    Remembered for the last few thousand texts: most lines of the prompt constants come
    again and again (the format's fixed lines, the chat and JSON forms of the same field
    list, an extension's copy of its signature's fields), 70-80% of them in this
    repository's projects."""
    single = repr(text)
    if single[0] == '"':  # repr chose double quotes already (the text has ' but no ")
        return single
    if '"' not in text:  # no quotes inside: the same body between double quotes
        return f'"{single[1:-1]}"'
    if "'" not in text:  # only double quotes inside: escaping them would add escapes
        return single
    body: list[str] = []
    escaped_single = escaped_double = 0
    i, inner = 0, single[1:-1]
    while i < len(inner):
        if inner[i] == "\\":
            pair = inner[i : i + 2]
            if pair == "\\'":
                escaped_single += 1
                body.append("'")
            else:
                body.append(pair)
            i += 2
            continue
        if inner[i] == '"':
            escaped_double += 1
            body.append('\\"')
        else:
            body.append(inner[i])
        i += 1
    if escaped_double > escaped_single:
        return single
    return '"' + "".join(body) + '"'


def py_string_parts(text: str) -> tuple[str, ...]:
    """String literals, one per line of ``text``, whose implicit concatenation is ``text``."""
    lines = text.splitlines(keepends=True)
    return tuple(map(py_str, lines)) if len(lines) > 1 else (py_str(text),)


def py_comment(text: str) -> str:
    """Text safe inside a ``#`` comment: characters that are not printable are escaped."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def docstring_is_safe(text: str) -> bool:
    """Whether ``text`` can be a triple-quoted docstring that reads back exactly and that
    black leaves as it is (black strips and re-indents docstring lines and pads quotes)."""
    lines = text.split("\n")
    rest = [line for line in lines[1:] if line]
    return (
        bool(text)
        and '"""' not in text
        and "\\" not in text
        and not text.startswith(('"', " "))
        and not text.endswith('"')
        and text.replace("\n", "").isprintable()
        and all(line == line.rstrip() for line in lines)
        and (not rest or min(len(line) - len(line.lstrip()) for line in rest) == 0)
    )


def py_docstring(text: str, indent: str = "") -> str:
    """The triple-quoted docstring of a text for which :func:`docstring_is_safe` holds, its
    lines after the first indented by ``indent`` (the empty ones left empty)."""
    if not docstring_is_safe(text):
        raise ValueError("not safe as a docstring; use render.doc_statement")
    return safe_docstring(text, indent)


#: a line break before a line that is not empty
_BEFORE_TEXT = re.compile(r"\n(?=[^\n])")


def safe_docstring(text: str, indent: str = "") -> str:
    """:func:`py_docstring` of a text already found safe (not checked again)."""
    if "\n" not in text:
        return f'"""{text}"""'
    if indent:
        text = _BEFORE_TEXT.sub(f"\n{indent}", text)
    return f'"""{text}\n{indent}"""'
