"""Metadata filters: one small language for every store, checked once, translated per store.

A filter is a mapping (Chroma's ``where`` language, which is also MongoDB's)::

    {"source": "faq"}                                  # equality
    {"year": {"$gte": 2020}, "lang": {"$in": ["en", "de"]}}   # several keys: all must hold
    {"$or": [{"source": "faq"}, {"pinned": True}]}     # $and / $or over sub-filters

Operators: ``$eq``, ``$ne``, ``$gt``, ``$gte``, ``$lt``, ``$lte``, ``$in``, ``$nin``;
``$and`` and ``$or`` take a non-empty list of filters. Semantics, the same in every
store (they are Chroma's):

* Values are typed: ``{"n": 1}`` matches the number 1 (``1`` and ``1.0`` alike), not
  the string ``"1"`` nor ``True``; booleans match only booleans.
* ``$gt``/``$gte``/``$lt``/``$lte`` compare numbers only (a string or boolean operand
  is a :class:`~.base.FilterError`), and only passages whose value is a number match.
* ``$ne`` and ``$nin`` are the negations of ``$eq`` and ``$in``: a passage without the
  key matches them.
* ``$in``/``$nin`` take a non-empty list of values of one type.

:func:`parse_filter` checks a filter and returns its tree; :func:`matches` evaluates
it on one metadata mapping (the reference semantics); :func:`to_sql` and
:func:`to_chroma` translate it for :class:`~.sqlite_vec.SQLiteVecStore` (SQL over the
JSON metadata column) and :class:`~.chroma.ChromaRetriever`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from .base import FilterError, check_key

__all__ = ["All", "AnyOf", "Condition", "FilterNode", "matches", "parse_filter", "to_chroma", "to_sql"]

Scalar: TypeAlias = str | int | float | bool

_COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
_MEMBERSHIP = ("$in", "$nin")
_ORDERING = ("$gt", "$gte", "$lt", "$lte")


@dataclass(frozen=True, slots=True)
class Condition:
    """``metadata[key] <op> value``."""

    key: str
    op: str
    value: Scalar | tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class All:
    """Every part holds."""

    parts: tuple[FilterNode, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one part holds."""

    parts: tuple[FilterNode, ...]


FilterNode: TypeAlias = Condition | All | AnyOf


def parse_filter(filter: Mapping[str, Any] | None) -> FilterNode | None:
    """The checked tree of ``filter`` (``None`` for no filter or an empty one).

    Raises :class:`~.base.FilterError` naming the first problem.
    """
    if filter is None:
        return None
    node = _parse(filter, "filter")
    if isinstance(node, All) and not node.parts:
        return None
    return node


def _parse(filter: object, where: str) -> FilterNode:
    if not isinstance(filter, Mapping):
        raise FilterError(f"{where}: a filter must be a mapping, got {type(filter).__name__}")
    parts: list[FilterNode] = []
    for key, value in filter.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list | tuple) or not value:
                raise FilterError(f"{where}.{key}: expected a non-empty list of filters")
            subs = tuple(_parse(sub, f"{where}.{key}[{i}]") for i, sub in enumerate(value))
            if len(subs) == 1:
                parts.append(subs[0])
            else:
                parts.append(All(subs) if key == "$and" else AnyOf(subs))
            continue
        if isinstance(key, str) and key.startswith("$"):
            raise FilterError(f"{where}: unknown logical operator {key!r} (use $and or $or)")
        try:
            check_key(key, where)
        except ValueError as exc:
            raise FilterError(str(exc)) from None
        parts.append(_condition(key, value, f"{where}.{key}"))
    if len(parts) == 1:
        return parts[0]
    return All(tuple(parts))


def _condition(key: str, spec: object, where: str) -> FilterNode:
    if not isinstance(spec, Mapping):
        return Condition(key, "$eq", _scalar(spec, where))
    if not spec:
        raise FilterError(f"{where}: an operator mapping must not be empty")
    conditions: list[FilterNode] = []
    for op, value in spec.items():
        if op in _COMPARISONS:
            operand = _scalar(value, f"{where}.{op}")
            if op in _ORDERING and (isinstance(operand, bool) or not isinstance(operand, int | float)):
                raise FilterError(f"{where}.{op}: compares numbers only, got {operand!r}")
            conditions.append(Condition(key, op, operand))
        elif op in _MEMBERSHIP:
            if not isinstance(value, list | tuple) or not value:
                raise FilterError(f"{where}.{op}: expected a non-empty list of values")
            values = tuple(_scalar(item, f"{where}.{op}") for item in value)
            if len({_kind(item) for item in values}) > 1:
                raise FilterError(f"{where}.{op}: the values must all be of one type")
            conditions.append(Condition(key, op, values))
        else:
            known = ", ".join((*_COMPARISONS, *_MEMBERSHIP))
            raise FilterError(f"{where}: unknown operator {op!r} (known: {known})")
    return conditions[0] if len(conditions) == 1 else All(tuple(conditions))


def _scalar(value: object, where: str) -> Scalar:
    if not isinstance(value, str | int | float | bool):
        raise FilterError(
            f"{where}: expected a str, int, float or bool, got {type(value).__name__}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise FilterError(f"{where}: numbers must be finite")
    return value


def _kind(value: object) -> str:
    """``"bool"``, ``"number"`` or ``"str"``: what typed equality distinguishes."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "str"


# -- the reference semantics ------------------------------------------------------------------


def matches(node: FilterNode | None, metadata: Mapping[str, Any]) -> bool:
    """Whether ``metadata`` satisfies ``node`` (``None`` matches everything)."""
    if node is None:
        return True
    if isinstance(node, All):
        return all(matches(part, metadata) for part in node.parts)
    if isinstance(node, AnyOf):
        return any(matches(part, metadata) for part in node.parts)
    present = node.key in metadata
    value = metadata.get(node.key)
    if node.op == "$ne":
        return not (present and _equal(value, node.value))
    if node.op == "$eq":
        return present and _equal(value, node.value)
    if node.op in ("$in", "$nin"):
        assert isinstance(node.value, tuple)
        found = present and any(_equal(value, item) for item in node.value)
        return found if node.op == "$in" else not found
    if not present or _kind(value) != "number":
        return False
    number, operand = float(value), float(node.value)  # type: ignore[arg-type]
    if node.op == "$gt":
        return number > operand
    if node.op == "$gte":
        return number >= operand
    if node.op == "$lt":
        return number < operand
    return number <= operand


def _equal(value: object, operand: object) -> bool:
    return _kind(value) == _kind(operand) and value == operand


# -- SQL over a JSON column (SQLite) -----------------------------------------------------------

_SQL_ORDERING = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def to_sql(node: FilterNode, column: str = "metadata") -> tuple[str, list[Any]]:
    """A SQLite boolean expression over the JSON object in ``column``, and its parameters.

    Typed like :func:`matches`: ``json_type`` tells numbers, strings and booleans apart.
    """
    params: list[Any] = []
    return _sql(node, column, params), params


def _sql(node: FilterNode, column: str, params: list[Any]) -> str:
    if isinstance(node, All | AnyOf):
        joiner = " AND " if isinstance(node, All) else " OR "
        return "(" + joiner.join(_sql(part, column, params) for part in node.parts) + ")"
    path = f'$."{node.key}"'
    if node.op in ("$eq", "$ne"):
        test = _sql_equal(column, path, node.value, params)
        return test if node.op == "$eq" else f"NOT IFNULL({test}, 0)"
    if node.op in ("$in", "$nin"):
        assert isinstance(node.value, tuple)
        test = "(" + " OR ".join(_sql_equal(column, path, v, params) for v in node.value) + ")"
        return test if node.op == "$in" else f"NOT IFNULL({test}, 0)"
    params.extend((path, path, node.value))
    return (
        f"(json_type({column}, ?) IN ('integer', 'real') "
        f"AND json_extract({column}, ?) {_SQL_ORDERING[node.op]} ?)"
    )


def _sql_equal(column: str, path: str, value: object, params: list[Any]) -> str:
    if isinstance(value, bool):
        params.append(path)
        return f"(json_type({column}, ?) = '{'true' if value else 'false'}')"
    if isinstance(value, int | float):
        params.extend((path, path, value))
        return f"(json_type({column}, ?) IN ('integer', 'real') AND json_extract({column}, ?) = ?)"
    params.extend((path, path, value))
    return f"(json_type({column}, ?) = 'text' AND json_extract({column}, ?) = ?)"


# -- Chroma's where ------------------------------------------------------------------------------


def to_chroma(node: FilterNode) -> dict[str, Any]:
    """Chroma's ``where`` object: one key per object, several conditions under ``$and``."""
    if isinstance(node, All | AnyOf):
        parts = [to_chroma(part) for part in node.parts]
        if len(parts) == 1:
            return parts[0]
        return {"$and" if isinstance(node, All) else "$or": parts}
    value = list(node.value) if isinstance(node.value, tuple) else node.value
    return {node.key: {node.op: value}}
