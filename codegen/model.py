"""The checked model: what a `.sig` file means once names, types and constraints are valid.

Produced by :mod:`.check`, extended per module kind by :mod:`.extend`, and lowered to the
template IR by :mod:`.ir`. Spans are kept so later stages can still point at the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .ast import Span
from .types import SigType

PyValue = None | bool | int | float | str | list["PyValue"]

PredictorKind = Literal[
    "predict",
    "chain_of_thought",
    "react",
    "program_of_thought",
    "multi_chain_comparison",
    "best_of_n",
    "refine",
]
AdapterName = Literal["chat", "json"]
#: what best_of_n and refine run for each attempt
AttemptKind = Literal["predict", "chain_of_thought"]


@dataclass(frozen=True, slots=True)
class CheckedField:
    """A signature field, a class attribute (``direction`` None) or a tool argument."""

    name: str
    direction: Literal["in", "out"] | None
    type: SigType
    description: str
    #: pydantic ``Field`` keyword -> value, in a stable order (ge gt le lt min_length max_length pattern)
    constraints: tuple[tuple[str, int | float | str], ...]
    has_default: bool
    #: the default as pydantic validated it (an enum member, a tuple, a date, ...)
    default: Any
    span: Span
    #: the field's label (DSPy's ``prefix``); None means inferred from the name
    prefix: str | None = None
    #: a hint on how the value is written, shown with the description in prompts
    format: str = ""


@dataclass(frozen=True, slots=True)
class CheckedEnumMember:
    name: str
    value: str
    description: str


@dataclass(frozen=True, slots=True)
class CheckedEnum:
    name: str
    doc: str
    members: tuple[CheckedEnumMember, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class CheckedClass:
    name: str
    doc: str
    fields: tuple[CheckedField, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class CheckedTool:
    name: str
    description: str
    params: tuple[CheckedField, ...]
    returns: SigType
    span: Span


@dataclass(frozen=True, slots=True)
class CheckedImport:
    """``from <module> import <names>`` in generated code (names are Python names)."""

    module: str
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CheckedSignature:
    name: str
    #: instructions as written; ``""`` when the signature has none (the runtime's default
    #: sentence is used then, see :func:`sigforge.runtime.adapters.default_instructions`)
    instructions: str
    inputs: tuple[CheckedField, ...]
    outputs: tuple[CheckedField, ...]
    span: Span
    #: for signatures made by extension: the signature whose inputs they take as they are
    #: (they use its inputs model)
    extends: str | None = None
    #: what the extension added, for the generated docstring
    extension_note: str = ""
    #: for signatures made by extension that return another signature's outputs as they
    #: are (refine's hinted attempts): that signature (they use its outputs models)
    outputs_from: str | None = None


@dataclass(frozen=True, slots=True)
class ToolUse:
    """A tool a react predictor may call, with the module that declares it."""

    tool: CheckedTool
    module: str


@dataclass(frozen=True, slots=True)
class CheckedPredictor:
    name: str
    kind: PredictorKind
    signature: CheckedSignature  # the base signature as declared
    adapter: AdapterName
    span: Span
    #: react: the tools it may call, in the order given
    tools: tuple[ToolUse, ...] = ()
    #: react and program_of_thought: the most steps (tool calls; code attempts)
    max_iters: int | None = None
    #: multi_chain_comparison: how many reasoning attempts are compared
    m: int | None = None
    #: best_of_n and refine: how many attempts at most, and what each attempt runs
    n: int | None = None
    attempt: AttemptKind = "predict"


@dataclass(frozen=True, slots=True)
class CheckedModule:
    #: the source as the generated header names it: source folder name + relative path
    #: (``signatures/qa.sig``), the same wherever the generator runs
    source: str
    #: dotted module path inside the output package (``qa``, ``sub.qa``)
    module: str
    doc: str | None
    signatures: tuple[CheckedSignature, ...]
    predictors: tuple[CheckedPredictor, ...]
    extended: tuple[CheckedSignature, ...] = field(default=())
    enums: tuple[CheckedEnum, ...] = ()
    classes: tuple[CheckedClass, ...] = ()
    tools: tuple[CheckedTool, ...] = ()
    imports: tuple[CheckedImport, ...] = ()
