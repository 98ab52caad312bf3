"""What generated signature classes carry: field metadata and precomputed prompt parts.

A generated module defines, per signature, an inputs model, an outputs model, a partial
outputs model (for streaming) and a subclass of :class:`Signature` that names them and
lists the fields in prompt order.
Nothing here is built per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # (the compiler imports FieldSpec without loading pydantic)
    from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One input or output field as the prompt formats describe it.

    All text is computed at generation time by the runtime's own helpers
    (:mod:`sigforge.runtime.adapters.types`), so generated constants and run-time
    rebuilding cannot drift apart.
    """

    name: str
    #: the type as the prompt names it, e.g. ``list[str]`` or ``Literal['a', 'b']``
    type_name: str
    #: the user's description; ``""`` when none was given
    description: str = ""
    #: human-readable constraints, e.g. ``greater than or equal to: 0.0``; ``""`` if none
    constraints: str = ""
    #: for outputs, the note in the structure section, e.g. ``must be a single float value``
    type_note: str = ""
    #: whether the annotation is plain ``str`` (formatted without a type hint)
    is_str: bool = True
    #: the field's label in DSPy's saved state, e.g. ``Question:``
    prefix: str = ""
    #: how the value is written (the `.sig` option ``format="..."``), shown after the
    #: description in the prompt's field list; ``""`` when none
    format: str = ""


@dataclass(frozen=True, slots=True)
class AdapterPrompts:
    """The constant prompt parts of one adapter for one signature's declared instructions."""

    #: the whole system message
    system: str
    #: the closing request of the final user message ("Respond with ...")
    output_request: str


class Signature:
    """Base class of generated signatures: a namespace of class attributes, never instantiated."""

    name: ClassVar[str]
    instructions: ClassVar[str]
    inputs: ClassVar[type[BaseModel]]
    outputs: ClassVar[type[BaseModel]]
    #: the outputs while they stream in: the same fields, each optional (None until it
    #: arrives), declared classes replaced by their partial models (see
    #: :mod:`sigforge.runtime.streaming`)
    partial_outputs: ClassVar[type[BaseModel]]
    input_fields: ClassVar[tuple[FieldSpec, ...]]
    output_fields: ClassVar[tuple[FieldSpec, ...]]
    #: adapter name ("chat", "json") -> prompt parts for ``instructions``, for the formats
    #: the generated module's predictors use (a predictor builds any other on first use)
    prompts: ClassVar[dict[str, AdapterPrompts]]
    #: JSON schema sent as the ``response_format`` of the JSON adapter; generated when a
    #: predictor of the signature's module runs the JSON format, else made from
    #: :attr:`outputs` on first use (see :func:`.adapters.types.signature_output_schema`)
    output_schema: ClassVar[dict[str, object]]

    def __init__(self) -> None:  # pragma: no cover - guard
        raise TypeError(f"{type(self).__name__} is a signature description; use its predictors")
