"""The constant prompt text of each format: system message and output request.

This is the part of a prompt format that depends only on a signature's field specs and
instructions, never on values: the compiler computes it at generation time (the
``prompts`` constants of generated signatures), and predictors recompute it at run time
only when instructions change. It is plain text from :class:`FieldSpec`s and imports
nothing heavy (no pydantic), so ``sigforge generate`` does not load the run-time stack.

:class:`~.base.Adapter` (per-call messages, reply parsing) extends :class:`PromptFormat`;
:class:`~.chat.ChatAdapter` and :class:`~.json_adapter.JSONAdapter` take their constant
text from :class:`ChatPrompts` and :class:`JSONPrompts`.
"""

from __future__ import annotations

import abc
import inspect
import json.encoder
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

from ..signature import AdapterPrompts, FieldSpec

__all__ = [
    "PROMPT_FORMATS",
    "ChatPrompts",
    "JSONPrompts",
    "PromptFormat",
    "default_instructions",
]

STRUCTURE_INTRO = "All interactions will be structured in the following way, with the appropriate values filled in."
#: the chat format's end marker
COMPLETED = "[[ ## completed ## ]]"
_NOTE_PREFIX = " " * 8 + "# note: the value you produce "
_OBJECTIVE_INDENT = "\n" + " " * 8


def default_instructions(
    input_fields: Sequence[FieldSpec], output_fields: Sequence[FieldSpec]
) -> str:
    """The instructions DSPy gives a signature that declares none."""
    inputs = ", ".join([f"`{spec.name}`" for spec in input_fields])
    outputs = ", ".join([f"`{spec.name}`" for spec in output_fields])
    return f"Given the fields {inputs}, produce the fields {outputs}."


def placeholder(spec: FieldSpec, *, with_note: bool) -> str:
    """``{name}`` as the structure section shows a field, with its type note for outputs."""
    if with_note and spec.type_note:
        return f"{{{spec.name}}}{_NOTE_PREFIX}{spec.type_note}"
    return f"{{{spec.name}}}"


def field_blocks(fields: Sequence[FieldSpec], *, with_notes: bool) -> str:
    """The ``[[ ## name ## ]]`` blocks of the structure section."""
    blocks = [
        f"[[ ## {spec.name} ## ]]\n{placeholder(spec, with_note=with_notes)}" for spec in fields
    ]
    return "\n\n".join(blocks).strip()


def type_hint(spec: FieldSpec) -> str:
    """The output request's reminder of a non-text field's type."""
    return "" if spec.is_str else f" (must be formatted as a valid Python {spec.type_name})"


def describe_fields(fields: Sequence[FieldSpec]) -> str:
    """The numbered field list of the system message: name, type, description, format
    and constraints of each field."""
    lines = []
    for number, spec in enumerate(fields, 1):
        line = f"{number}. `{spec.name}` ({spec.type_name}): {spec.description}"
        if spec.format:
            line += f" (format: {spec.format})"
        if spec.constraints:
            line += f"\nConstraints: {spec.constraints}"
        lines.append(line)
    return "\n".join(lines).strip()


def _objective(instructions: str) -> str:
    # DSPy reads instructions like a docstring (inspect.cleandoc: tabs expanded, the
    # indentation of the lines after the first and surrounding blank lines removed),
    # then dedents them; each line goes on its own line, indented by eight spaces.
    if "\t" in instructions or any(line[:1].isspace() for line in instructions.split("\n")):
        text = textwrap.dedent(inspect.cleandoc(instructions))
    else:  # no tab, no indented line: of the two, only cleandoc's removal of blank lines at
        # either end changes anything (the usual case; the other way costs regexes)
        text = instructions.strip("\n")
    lines = text.splitlines()
    return "In adhering to this structure, your objective is: " + "".join(
        [_OBJECTIVE_INDENT + line for line in lines]
    )


#: JSON text of a string, as ``json.dumps(text, ensure_ascii=False)`` writes it (the
#: encoder's own C function for strings)
_json_string: Callable[[str], str] = json.encoder.encode_basestring


def _indented_json_object(entries: Mapping[str, str]) -> str:
    """``json.dumps(entries, indent=2, ensure_ascii=False)`` for a mapping of strings to
    strings, written directly (json.dumps with an indent runs its pure-Python encoder,
    several times slower; the compiler writes this text for every signature)."""
    if not entries:
        return "{}"
    lines = ",\n".join([f"  {_json_string(key)}: {_json_string(value)}" for key, value in entries.items()])
    return f"{{\n{lines}\n}}"


class PromptFormat(abc.ABC):
    """The constant text of one prompt format. Stateless: one instance serves every signature."""

    #: the key of this format in ``Signature.prompts`` ("chat", "json")
    name: ClassVar[str]

    def system_message(
        self,
        input_fields: Sequence[FieldSpec],
        output_fields: Sequence[FieldSpec],
        instructions: str,
    ) -> str:
        """Field list, structure section and task, as one system message."""
        return (
            f"Your input fields are:\n{describe_fields(input_fields)}\n"
            f"Your output fields are:\n{describe_fields(output_fields)}\n"
            f"{self.field_structure(input_fields, output_fields)}\n"
            f"{_objective(instructions)}"
        )

    @abc.abstractmethod
    def field_structure(
        self, input_fields: Sequence[FieldSpec], output_fields: Sequence[FieldSpec]
    ) -> str:
        """The section of the system message that shows how messages are laid out."""

    @abc.abstractmethod
    def output_request(self, output_fields: Sequence[FieldSpec]) -> str:
        """The closing sentence of the final user message ("Respond with ...")."""

    def prompts(
        self,
        input_fields: Sequence[FieldSpec],
        output_fields: Sequence[FieldSpec],
        instructions: str,
    ) -> AdapterPrompts:
        """The constant prompt parts for one signature and instructions."""
        return AdapterPrompts(
            system=self.system_message(input_fields, output_fields, instructions),
            output_request=self.output_request(output_fields),
        )


class ChatPrompts(PromptFormat):
    """DSPy's default format: every field a ``[[ ## name ## ]]`` section, then the end marker."""

    name: ClassVar[str] = "chat"

    def field_structure(
        self, input_fields: Sequence[FieldSpec], output_fields: Sequence[FieldSpec]
    ) -> str:
        parts = [
            STRUCTURE_INTRO,
            field_blocks(input_fields, with_notes=False),
            field_blocks(output_fields, with_notes=True),
            f"{COMPLETED}\n",
        ]
        return "\n\n".join(parts).strip()

    def output_request(self, output_fields: Sequence[FieldSpec]) -> str:
        fields = ", then ".join(
            [f"`[[ ## {spec.name} ## ]]`{type_hint(spec)}" for spec in output_fields]
        )
        return (
            f"Respond with the corresponding output fields, starting with the field {fields}, "
            f"and then ending with the marker for `{COMPLETED}`."
        )


class JSONPrompts(PromptFormat):
    """Inputs as ``[[ ## name ## ]]`` sections, outputs as one JSON object."""

    name: ClassVar[str] = "json"

    def field_structure(
        self, input_fields: Sequence[FieldSpec], output_fields: Sequence[FieldSpec]
    ) -> str:
        outputs = {spec.name: placeholder(spec, with_note=True) for spec in output_fields}
        parts = [
            STRUCTURE_INTRO,
            "Inputs will have the following structure:",
            field_blocks(input_fields, with_notes=False),
            "Outputs will be a JSON object with the following fields.",
            _indented_json_object(outputs),
        ]
        return "\n\n".join(parts).strip()

    def output_request(self, output_fields: Sequence[FieldSpec]) -> str:
        fields = ", then ".join([f"`{spec.name}`{type_hint(spec)}" for spec in output_fields])
        return f"Respond with a JSON object in the following order of fields: {fields}."


#: the constant text of every format, by name: the compiler writes each into every
#: generated signature (the formats of :data:`~sigforge.runtime.adapters.ADAPTERS`)
PROMPT_FORMATS: dict[str, PromptFormat] = {fmt.name: fmt for fmt in (ChatPrompts(), JSONPrompts())}
