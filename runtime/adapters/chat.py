"""The chat format: fields as ``[[ ## name ## ]]`` sections, closed by ``[[ ## completed ## ]]``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..signature import FieldSpec
from .base import STRUCTURE_INTRO, Adapter, field_blocks, type_hint
from .parsing import JSON_IN_CHAT_FORMAT, split_chat, split_json
from .values import format_value

__all__ = ["ChatAdapter"]

_COMPLETED = "[[ ## completed ## ]]"


class ChatAdapter(Adapter):
    """DSPy's default format; replies are split at the field markers."""

    name: ClassVar[str] = "chat"

    def field_structure(
        self, input_fields: Sequence[FieldSpec], output_fields: Sequence[FieldSpec]
    ) -> str:
        parts = [
            STRUCTURE_INTRO,
            field_blocks(input_fields, with_notes=False),
            field_blocks(output_fields, with_notes=True),
            f"{_COMPLETED}\n",
        ]
        return "\n\n".join(parts).strip()

    def output_request(self, output_fields: Sequence[FieldSpec]) -> str:
        fields = ", then ".join(
            [f"`[[ ## {spec.name} ## ]]`{type_hint(spec)}" for spec in output_fields]
        )
        return (
            f"Respond with the corresponding output fields, starting with the field {fields}, "
            f"and then ending with the marker for `{_COMPLETED}`."
        )

    def format_assistant(
        self,
        output_fields: Sequence[FieldSpec],
        values: Mapping[str, Any],
        *,
        missing: str | None = None,
    ) -> str:
        blocks = (
            f"[[ ## {spec.name} ## ]]\n{format_value(values.get(spec.name, missing), is_str=spec.is_str)}"
            for spec in output_fields
        )
        return "\n\n".join(blocks).strip() + f"\n\n{_COMPLETED}\n"

    def split_reply(
        self, text: str, names: frozenset[str], repairs: list[str]
    ) -> tuple[dict[str, Any], bool]:
        """Sections by marker; a reply without any output section may still be a JSON object."""
        found: dict[str, Any] = split_chat(text, names, repairs)
        if found:
            return found, True
        inner: list[str] = []
        data = split_json(text, names, inner)
        if not data:
            return {}, True
        repairs[:] = [JSON_IN_CHAT_FORMAT, *inner]  # no section was used: none was dropped
        return data, False

    def expected_structure(self, output_fields: Sequence[str]) -> str:
        markers = ", ".join(f"[[ ## {name} ## ]]" for name in output_fields)
        return f"the sections {markers}"
