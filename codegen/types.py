"""The checked type model and its one rendering table.

A :class:`SigType` is what a `.sig` type means once names are resolved. Each type knows
how to write itself as Python source (for generated code) and how to build the equal
Python annotation object (so the runtime's prompt helpers can describe it at build time);
declared enums and classes are built by a :class:`TypeResolver` (see :mod:`.pytypes`).
Prompt names and JSON schemas are derived from that annotation by the runtime, never
spelled a second time here.
"""

from __future__ import annotations

import datetime
import functools
import operator
import typing
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .names import partial_name
from .pysource import py_literal

PRIMITIVES = ("str", "int", "float", "bool", "date", "datetime")
LiteralScalar = str | int | float | bool

_PRIMITIVE_TYPES: dict[str, type] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "date": datetime.date,
    "datetime": datetime.datetime,
}


class TypeResolver(Protocol):
    """Builds the Python type (enum class or pydantic model) of a declared type."""

    def python_type(self, module: str, name: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class Primitive:
    name: str  # one of PRIMITIVES

    def source(self) -> str:
        return self.name

    def annotation(self, types: TypeResolver) -> Any:
        return _PRIMITIVE_TYPES[self.name]


@dataclass(frozen=True, slots=True)
class ImageType:
    """An image input (URL, file or bytes), sent as an image content part."""

    def source(self) -> str:
        return "Image"

    def annotation(self, types: TypeResolver) -> Any:
        from sigforge.runtime.image import Image

        return Image


@dataclass(frozen=True, slots=True)
class DeclaredType:
    """A user-declared ``enum`` or ``class``, by the module that declares it."""

    kind: Literal["enum", "class"]
    name: str
    module: str

    def source(self) -> str:
        return self.name

    def annotation(self, types: TypeResolver) -> Any:
        return types.python_type(self.module, self.name)


@dataclass(frozen=True, slots=True)
class NoneType_:
    def source(self) -> str:
        return "None"

    def annotation(self, types: TypeResolver) -> Any:
        return type(None)


@dataclass(frozen=True, slots=True)
class ListOf:
    item: SigType

    def source(self) -> str:
        return f"list[{self.item.source()}]"

    def annotation(self, types: TypeResolver) -> Any:
        return list[self.item.annotation(types)]  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class TupleOf:
    """``tuple[A, B]`` (fixed) or ``tuple[A, ...]`` (``variadic``: any length of ``A``)."""

    items: tuple[SigType, ...]
    variadic: bool = False

    def source(self) -> str:
        inner = ", ".join([i.source() for i in self.items])
        return f"tuple[{inner}, ...]" if self.variadic else f"tuple[{inner}]"

    def annotation(self, types: TypeResolver) -> Any:
        args = tuple(i.annotation(types) for i in self.items)
        if self.variadic:
            return tuple[args[0], ...]  # type: ignore[valid-type]
        return tuple.__class_getitem__(args)


@dataclass(frozen=True, slots=True)
class DictOf:
    key: SigType
    value: SigType

    def source(self) -> str:
        return f"dict[{self.key.source()}, {self.value.source()}]"

    def annotation(self, types: TypeResolver) -> Any:
        return dict[self.key.annotation(types), self.value.annotation(types)]  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class LiteralOf:
    values: tuple[LiteralScalar, ...]

    def source(self) -> str:
        return "Literal[" + ", ".join([py_literal(v) for v in self.values]) + "]"

    def annotation(self, types: TypeResolver) -> Any:
        return typing.Literal.__getitem__(self.values)


@dataclass(frozen=True, slots=True)
class UnionOf:
    members: tuple[SigType, ...]  # at least two; NoneType_ last when present

    def source(self) -> str:
        return " | ".join([m.source() for m in self.members])

    def annotation(self, types: TypeResolver) -> Any:
        return functools.reduce(operator.or_, (m.annotation(types) for m in self.members))

    @property
    def optional(self) -> bool:
        return any(isinstance(m, NoneType_) for m in self.members)

    def without_none(self) -> SigType:
        rest = tuple(m for m in self.members if not isinstance(m, NoneType_))
        return rest[0] if len(rest) == 1 else UnionOf(rest)


SigType = (
    Primitive | ImageType | DeclaredType | NoneType_ | ListOf | TupleOf | DictOf | LiteralOf | UnionOf
)


def children(t: SigType) -> tuple[SigType, ...]:
    """The types directly inside ``t`` (declared types are leaves)."""
    if isinstance(t, ListOf):
        return (t.item,)
    if isinstance(t, TupleOf):
        return t.items
    if isinstance(t, DictOf):
        return (t.key, t.value)
    if isinstance(t, UnionOf):
        return t.members
    return ()


def walk(t: SigType) -> typing.Iterator[SigType]:
    """``t`` and every type nested in it, outermost first."""
    yield t
    for child in children(t):
        yield from walk(child)


def strip_optional(t: SigType) -> SigType:
    """``X | None`` -> ``X``; anything else unchanged."""
    if isinstance(t, UnionOf) and t.optional:
        return t.without_none()
    return t


def partial_type(t: SigType) -> SigType:
    """The type of ``t``'s value while it streams in, ``None`` while it has not arrived.

    Declared classes become their partial models (``CitationPartial``, every field
    optional), inside lists, dicts, tuples and unions too, so an object that is still
    incomplete validates; every other type is unchanged (its values arrive whole)."""

    def inner(t: SigType) -> SigType:
        if isinstance(t, DeclaredType) and t.kind == "class":
            return DeclaredType("class", partial_name(t.name), t.module)
        if isinstance(t, ListOf):
            return ListOf(inner(t.item))
        if isinstance(t, TupleOf):
            return TupleOf(tuple(inner(i) for i in t.items), t.variadic)
        if isinstance(t, DictOf):
            return DictOf(t.key, inner(t.value))  # keys are never classes
        if isinstance(t, UnionOf):
            return UnionOf(tuple(inner(m) for m in t.members))
        return t

    partial = inner(t)
    if isinstance(partial, UnionOf):
        return partial if partial.optional else UnionOf((*partial.members, NoneType_()))
    return UnionOf((partial, NoneType_()))
