"""Field values turned into prompt text (the inverse of :mod:`.parsing`)."""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import to_jsonable_python

from ..image import Image, ImageSlots

__all__ = ["format_value", "jsonable"]

_SCALARS = (int, float, bool)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: models become dicts, enums their values, dates ISO text.

    What cannot be converted becomes its ``str()``.
    """
    return to_jsonable_python(value, by_alias=False, fallback=str)


def format_value(value: Any, *, is_str: bool, slots: ImageSlots | None = None) -> str:
    """One field's value as it appears under its ``[[ ## name ## ]]`` header.

    Text is used as is; lists and mappings (also inside models) as compact JSON; other
    scalars, ``None`` included, as their ``str()``. A list given to a ``str`` field
    becomes a numbered list of text blobs, as DSPy renders it. Images (alone or in lists
    and mappings) become markers in ``slots``, turned into image parts by the adapter.
    """
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind in _SCALARS or value is None:
        return str(value)
    if slots is not None:
        if kind is Image:
            return slots.marker(value)
        value = _mark_images(value, slots)
    if is_str and isinstance(value, list):
        return _numbered_list(value)
    data = jsonable(value)
    if isinstance(data, dict | list):
        return json.dumps(data, ensure_ascii=False)
    return str(data)


def _numbered_list(items: list[Any]) -> str:
    if not items:
        return "N/A"
    if len(items) == 1:
        return _blob(items[0])
    return "\n".join(f"[{number}] {_blob(item)}" for number, item in enumerate(items, 1))


def _blob(item: Any) -> str:
    """One list item, fenced so that item boundaries stay unambiguous.

    (DSPy fails on non-text items here; we use their ``str()``.)
    """
    text = item if isinstance(item, str) else str(item)
    if "\n" in text or "«" in text or "»" in text:
        indented = text.replace("\n", "\n    ")
        return f"«««\n    {indented}\n»»»"
    return f"«{text}»"


def _mark_images(value: Any, slots: ImageSlots) -> Any:
    """``value`` with every image inside lists, tuples and dicts replaced by its marker."""
    if isinstance(value, Image):
        return slots.marker(value)
    if isinstance(value, list | tuple):
        return [_mark_images(item, slots) for item in value]
    if isinstance(value, dict):
        return {key: _mark_images(item, slots) for key, item in value.items()}
    return value
