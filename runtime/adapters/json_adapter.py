"""The JSON format: inputs as ``[[ ## name ## ]]`` sections, outputs as one JSON object."""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ..signature import FieldSpec, Signature
from .base import STRUCTURE_INTRO, Adapter, field_blocks, placeholder, type_hint
from .parsing import MARKERS_IN_JSON_FORMAT, split_chat, split_json
from .types import response_format
from .values import jsonable

__all__ = ["JSONAdapter"]


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


class JSONAdapter(Adapter):
    """Asks for a JSON object (with a structured-outputs schema) and reads it back."""

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

    def format_assistant(
        self,
        output_fields: Sequence[FieldSpec],
        values: Mapping[str, Any],
        *,
        missing: str | None = None,
    ) -> str:
        data = {spec.name: values.get(spec.name, missing) for spec in output_fields}
        return json.dumps(jsonable(data), indent=2, ensure_ascii=False)

    def request_params(self, signature_cls: type[Signature]) -> dict[str, Any]:
        """``response_format``: the signature's strict schema, or JSON mode without one."""
        return {"response_format": response_format(signature_cls.output_schema)}

    def split_reply(
        self, text: str, names: frozenset[str], repairs: list[str]
    ) -> tuple[dict[str, Any], bool]:
        """The reply's JSON object; a reply without one may still use field markers."""
        data = split_json(text, names, repairs)
        if data is not None:
            return data, False
        inner: list[str] = []
        found: dict[str, Any] = split_chat(text, names, inner)
        if found:
            repairs += [MARKERS_IN_JSON_FORMAT, *inner]
        return found, True

    def expected_structure(self, output_fields: Sequence[str]) -> str:
        keys = ", ".join(f'"{name}"' for name in output_fields)
        return f"a JSON object with the keys {keys}"
