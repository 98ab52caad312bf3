"""What generated code says about a declared ``tool``: its name, description and arguments."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

__all__ = ["ToolSpec"]


class ToolSpec:
    """Base class of generated tool descriptions (a namespace, never instantiated).

    A ``tool search(query: str) -> list[str] "..."`` declaration generates ``SearchArgs``
    (the arguments model), ``SearchFunction`` and ``SearchAsyncFunction`` (the protocols a
    plain or an ``async`` implementation satisfies), ``SearchTool(ToolSpec)`` and
    ``SearchCall`` (``tool: Literal["search"]`` and the arguments: the call a react
    predictor's model writes; see :mod:`sigforge.runtime.modules.react`).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    args: ClassVar[type[BaseModel]]
    #: the JSON schema of each argument, by name (computed at generation time)
    args_schema: ClassVar[dict[str, Any]]
    #: the return type as prompts name it, e.g. ``list[str]``
    returns: ClassVar[str]

    def __init__(self) -> None:  # pragma: no cover - guard
        raise TypeError(f"{type(self).__name__} describes a tool; it is not instantiated")
