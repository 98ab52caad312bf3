"""Python types for declared enums and classes, built at generation time.

The runtime's prompt helpers describe a field from its Python annotation (type name,
notes, JSON schema). For a user's ``enum`` or ``class`` that annotation is built here,
from the checked declaration, as the same ``StrEnum`` or pydantic model the generated
module defines: same name, docstring, fields, constraints and descriptions.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any, ForwardRef

from .model import CheckedClass, CheckedEnum, CheckedField, CheckedModule
from .types import TypeResolver


def enum_docstring(decl: CheckedEnum) -> str:
    """The docstring of a generated enum: its doc, then one line per described value."""
    described = [f"- `{m.value}`: {m.description}" for m in decl.members if m.description]
    parts = [decl.doc] if decl.doc else []
    if described:
        parts.append("\n".join(described))
    return "\n\n".join(parts)


def build_enum(decl: CheckedEnum) -> type[enum.StrEnum]:
    made = enum.StrEnum(decl.name, [(m.name, m.value) for m in decl.members])  # type: ignore[misc]
    made.__doc__ = enum_docstring(decl) or None
    return made


class PythonTypes:
    """Builds (once) the Python type of every declared enum and class of a compilation."""

    def __init__(self, modules: Iterable[CheckedModule] = ()) -> None:
        self._enums: dict[tuple[str, str], CheckedEnum] = {}
        self._classes: dict[tuple[str, str], CheckedClass] = {}
        self._built: dict[tuple[str, str], Any] = {}
        self._building: set[tuple[str, str]] = set()
        #: forward-reference name -> model, for recursive classes
        self._namespace: dict[str, Any] = {}
        self._unfinished: list[Any] = []
        for module in modules:
            self.add(module)

    def add(self, module: CheckedModule) -> None:
        for e in module.enums:
            self._enums[(module.module, e.name)] = e
        for c in module.classes:
            self._classes[(module.module, c.name)] = c

    def python_type(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in self._built:
            return self._built[key]
        if key in self._enums:
            self._built[key] = build_enum(self._enums[key])
            return self._built[key]
        if key in self._building:  # a recursive reference: resolved when the cycle is built
            return ForwardRef(_reference_name(key))
        model = self._build_class(key)
        if not self._building:
            for unfinished in self._unfinished:
                unfinished.model_rebuild(_types_namespace=self._namespace)
            self._unfinished.clear()
        return model

    def _build_class(self, key: tuple[str, str]) -> Any:
        from pydantic import ConfigDict, create_model

        decl = self._classes[key]
        self._building.add(key)
        try:
            fields = {f.name: pydantic_field(f, self) for f in decl.fields}
            model = create_model(  # type: ignore[call-overload]
                decl.name,
                __config__=ConfigDict(extra="forbid", defer_build=True),
                __doc__=decl.doc or None,
                **fields,
            )
        finally:
            self._building.discard(key)
        self._built[key] = model
        self._namespace[_reference_name(key)] = model
        self._unfinished.append(model)
        return model


def pydantic_field(f: CheckedField, types: TypeResolver) -> tuple[Any, Any]:
    """``(annotation, FieldInfo)`` of a field, for ``pydantic.create_model``."""
    from pydantic import Field

    options: dict[str, Any] = {"description": f.description or None, **dict(f.constraints)}
    return f.type.annotation(types), Field(f.default if f.has_default else ..., **options)


def _reference_name(key: tuple[str, str]) -> str:
    module, name = key
    return f"_{module.replace('.', '_')}__{name}"
