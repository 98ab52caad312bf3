"""The checked type model and its one rendering table.

A :class:`SigType` is what a `.sig` type means once names are resolved. Each type knows
how to write itself as Python source (for generated code) and how to build the equal
Python annotation object (so the runtime's prompt helpers can describe it at build time).
Prompt names and JSON schemas are derived from that annotation by the runtime, never
spelled a second time here.
"""

from __future__ import annotations

import functools
import operator
import typing
from dataclasses import dataclass
from typing import Any

from .pysource import py_literal

PRIMITIVES = ("str", "int", "float", "bool")
LiteralScalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Primitive:
    name: str  # one of PRIMITIVES

    def source(self) -> str:
        return self.name

    def annotation(self) -> Any:
        return {"str": str, "int": int, "float": float, "bool": bool}[self.name]


@dataclass(frozen=True, slots=True)
class NoneType_:
    def source(self) -> str:
        return "None"

    def annotation(self) -> Any:
        return type(None)


@dataclass(frozen=True, slots=True)
class ListOf:
    item: SigType

    def source(self) -> str:
        return f"list[{self.item.source()}]"

    def annotation(self) -> Any:
        return list[self.item.annotation()]  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class DictOf:
    key: SigType
    value: SigType

    def source(self) -> str:
        return f"dict[{self.key.source()}, {self.value.source()}]"

    def annotation(self) -> Any:
        return dict[self.key.annotation(), self.value.annotation()]  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class LiteralOf:
    values: tuple[LiteralScalar, ...]

    def source(self) -> str:
        return "Literal[" + ", ".join(py_literal(v) for v in self.values) + "]"

    def annotation(self) -> Any:
        return typing.Literal.__getitem__(self.values)


@dataclass(frozen=True, slots=True)
class UnionOf:
    members: tuple[SigType, ...]  # at least two; NoneType_ last when present

    def source(self) -> str:
        return " | ".join(m.source() for m in self.members)

    def annotation(self) -> Any:
        return functools.reduce(operator.or_, (m.annotation() for m in self.members))

    @property
    def optional(self) -> bool:
        return any(isinstance(m, NoneType_) for m in self.members)

    def without_none(self) -> SigType:
        rest = tuple(m for m in self.members if not isinstance(m, NoneType_))
        return rest[0] if len(rest) == 1 else UnionOf(rest)


SigType = Primitive | NoneType_ | ListOf | DictOf | LiteralOf | UnionOf


def strip_optional(t: SigType) -> SigType:
    """``X | None`` -> ``X``; anything else unchanged."""
    if isinstance(t, UnionOf) and t.optional:
        return t.without_none()
    return t


def uses_literal(t: SigType) -> bool:
    if isinstance(t, LiteralOf):
        return True
    if isinstance(t, ListOf):
        return uses_literal(t.item)
    if isinstance(t, DictOf):
        return uses_literal(t.key) or uses_literal(t.value)
    if isinstance(t, UnionOf):
        return any(uses_literal(m) for m in t.members)
    return False
