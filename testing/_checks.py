"""Small helpers the provider dialects use to check request bodies against a wire format.

A dialect walks a request body and reports every problem it finds into one
:class:`Problems` collection, each with a readable location (``messages[1].content[0].
source.media_type``). Most problems are *violations*: the client broke the provider's
documented format, and the server records them in ``server.violations``. A few are
refusals that are not the client's format at fault (a wrong API key when the server was
given one); they are answered the same way but not recorded as violations.

``check_fields`` checks the optional fields of one JSON object from a table of
:class:`Field` specs, so each dialect states its format as data instead of as a page of
``if`` statements.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Field", "Problem", "Problems", "check_fields", "is_int", "is_number"]

Kind = Literal["str", "int", "number", "bool", "object", "list", "str_list", "any"]

_KIND_NAMES: dict[str, str] = {
    "str": "a string",
    "int": "an integer",
    "number": "a number",
    "bool": "a boolean",
    "object": "an object",
    "list": "a list",
    "str_list": "a list of strings",
    "any": "any JSON value",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason to refuse a request."""

    message: str
    #: the HTTP status the provider answers this problem with
    status: int = 400
    #: False for refusals that are not format violations (e.g. a wrong API key)
    violation: bool = True


@dataclass(frozen=True, slots=True)
class Field:
    """How one optional field of a JSON object must look."""

    kind: Kind
    minimum: float | None = None
    maximum: float | None = None
    #: most items a list may hold
    max_items: int | None = None
    #: the only values allowed (for strings)
    choices: tuple[str, ...] | None = None


def is_int(value: object) -> bool:
    """A JSON integer (``True``/``False`` are not integers here, as in JSON)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A finite JSON number."""
    if is_int(value):
        return True
    return isinstance(value, float) and math.isfinite(value)


class Problems:
    """The problems found in one request, in the order they were found."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, message: str, *, status: int = 400, violation: bool = True) -> None:
        self.items.append(Problem(message, status, violation))

    @property
    def violations(self) -> list[str]:
        return [problem.message for problem in self.items if problem.violation]

    def field(self, value: Any, spec: Field, where: str) -> bool:
        """Check ``value`` against ``spec``; report and return False if it does not fit."""
        ok = _fits(value, spec.kind)
        if not ok:
            self.add(f"{where}: expected {_KIND_NAMES[spec.kind]}, got {_describe(value)}")
            return False
        if spec.kind in ("int", "number"):
            if spec.minimum is not None and value < spec.minimum:
                self.add(f"{where}: {value!r} is below the minimum {spec.minimum:g}")
                return False
            if spec.maximum is not None and value > spec.maximum:
                self.add(f"{where}: {value!r} is above the maximum {spec.maximum:g}")
                return False
        if spec.max_items is not None and len(value) > spec.max_items:
            self.add(f"{where}: at most {spec.max_items} items are allowed, got {len(value)}")
            return False
        if spec.choices is not None and value not in spec.choices:
            allowed = ", ".join(repr(choice) for choice in spec.choices)
            self.add(f"{where}: {value!r} is not one of {allowed}")
            return False
        return True

    def base64(self, value: Any, where: str) -> bool:
        """``value`` is standard base64 text (not a ``data:`` URI)."""
        if not isinstance(value, str) or not value:
            self.add(f"{where}: expected base64 text, got {_describe(value)}")
            return False
        if value.startswith("data:"):
            self.add(f"{where}: expected bare base64 data, got a data: URI")
            return False
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            self.add(f"{where}: not valid base64")
            return False
        return True


def check_fields(
    problems: Problems,
    obj: Mapping[str, Any],
    fields: Mapping[str, Field],
    where: str = "",
    *,
    unknown: str | None = "{where}{name}: unknown field",
) -> None:
    """Check each field of ``obj`` that ``fields`` describes.

    Fields ``fields`` does not name are reported with the ``unknown`` template (which
    may use ``{where}`` and ``{name}``), or accepted when it is ``None``.
    """
    prefix = f"{where}." if where else ""
    for name, value in obj.items():
        spec = fields.get(name)
        if spec is None:
            if unknown is not None:
                problems.add(unknown.format(where=prefix, name=name))
            continue
        problems.field(value, spec, f"{prefix}{name}")


def _fits(value: Any, kind: Kind) -> bool:
    if kind == "any":
        return True
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return is_int(value)
    if kind == "number":
        return is_number(value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _describe(value: Any) -> str:
    """A short description of a JSON value, for problem messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if is_int(value):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
