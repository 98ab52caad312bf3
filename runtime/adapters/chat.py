"""The chat format: fields as ``[[ ## name ## ]]`` sections, closed by ``[[ ## completed ## ]]``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..signature import FieldSpec
from .base import Adapter
from .parsing import JSON_IN_CHAT_FORMAT, split_chat, split_json
from .prompts import COMPLETED, ChatPrompts
from .values import format_value

__all__ = ["ChatAdapter"]


class ChatAdapter(ChatPrompts, Adapter):
    """DSPy's default format; replies are split at the field markers."""

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
        return "\n\n".join(blocks).strip() + f"\n\n{COMPLETED}\n"

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
