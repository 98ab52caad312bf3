"""The JSON format: inputs as ``[[ ## name ## ]]`` sections, outputs as one JSON object."""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Mapping, Sequence
from typing import Any

from ..signature import FieldSpec, Signature
from .base import Adapter
from .parsing import MARKERS_IN_JSON_FORMAT, split_chat, split_json
from .prompts import JSONPrompts
from .types import response_format, signature_output_schema
from .values import jsonable

__all__ = ["JSONAdapter"]


class JSONAdapter(JSONPrompts, Adapter):
    """Asks for a JSON object (with a structured-outputs schema) and reads it back."""

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
        return {"response_format": response_format(signature_output_schema(signature_cls))}

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
