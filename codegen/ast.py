"""The syntax tree of a `.sig` file: frozen dataclasses, every node with its source span."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple


class Span(NamedTuple):
    """1-based line and column of the first character, and of the character after the last.

    A named tuple rather than a frozen dataclass like the nodes: every token has one, and
    a tuple is made several times faster."""

    line: int
    column: int
    end_line: int
    end_column: int


# ---------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class StringValue:
    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class NumberValue:
    value: int | float
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class NameValue:
    """A bare name used as a value: ``True``, ``False``, ``None`` (anything else is an error)."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class ListValue:
    items: tuple[Value, ...]
    span: Span


Value = StringValue | NumberValue | NameValue | ListValue
LiteralArg = StringValue | NumberValue


# ---------------------------------------------------------------- types


@dataclass(frozen=True, slots=True)
class EllipsisArg:
    """``...`` as a type argument: ``tuple[int, ...]``."""

    span: Span


@dataclass(frozen=True, slots=True)
class TypeRef:
    """``name`` or ``name[args]``; ``Literal`` takes literal arguments, the rest take types."""

    name: str
    args: tuple[TypeExpr | LiteralArg | EllipsisArg, ...] | None
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class TypeExpr:
    """``A | B | ...``; a single member when there is no ``|``."""

    members: tuple[TypeRef, ...]
    span: Span


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    value: Value
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class Doc:
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Field:
    """A named, typed slot: a signature field (with a direction), a class attribute or a
    tool argument (``direction`` None)."""

    direction: Literal["in", "out"] | None
    name: str
    type: TypeExpr
    options: tuple[Option, ...]
    description: StringValue | None
    default: Value | None
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class SignatureDecl:
    name: str
    doc: Doc | None
    fields: tuple[Field, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class PositionalArg:
    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class PredictorDecl:
    name: str
    kind: str
    args: tuple[PositionalArg, ...]
    options: tuple[Option, ...]
    span: Span
    name_span: Span
    kind_span: Span


@dataclass(frozen=True, slots=True)
class EnumMember:
    name: str
    #: the wire value when it differs from the name (``very_high = "very high"``)
    value: StringValue | None
    description: StringValue | None
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class EnumDecl:
    name: str
    doc: Doc | None
    members: tuple[EnumMember, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class ClassDecl:
    name: str
    doc: Doc | None
    fields: tuple[Field, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class ToolDecl:
    name: str
    params: tuple[Field, ...]
    returns: TypeExpr
    description: StringValue | None
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class ImportedName:
    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class ImportDecl:
    """``from module.path import A, B``: ``module`` is dotted, relative to the source root."""

    module: str
    names: tuple[ImportedName, ...]
    span: Span
    module_span: Span


Declaration = EnumDecl | ClassDecl | ToolDecl | SignatureDecl | PredictorDecl


@dataclass(frozen=True, slots=True)
class SigFile:
    """One parsed `.sig` file. ``path`` is as the user should see it (relative to the cwd)."""

    path: str
    doc: Doc | None
    imports: tuple[ImportDecl, ...]
    declarations: tuple[Declaration, ...]
