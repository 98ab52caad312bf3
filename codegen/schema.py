"""``sigforge schema NAME``: the JSON Schema of a signature's inputs and of its outputs.

Built from the checked signature with the same pydantic types the generated module
defines (constraints, descriptions, defaults, enums and classes included), so the schema
is what the generated ``Inputs``/``Outputs`` models accept.
"""

from __future__ import annotations

from typing import Any

from .model import CheckedField, CheckedSignature
from .pipeline import CompileResult
from .pytypes import PythonTypes, pydantic_field


class SchemaLookupError(LookupError):
    """No signature, or more than one, answers to the name."""


def find_signature(result: CompileResult, name: str) -> tuple[str, CheckedSignature]:
    """The module and signature called ``name`` (``Sig`` or ``module.Sig``)."""
    module_part, _, sig_name = name.rpartition(".")
    found = [
        (module, sig)
        for module, checked in result.modules.items()
        for sig in checked.signatures
        if sig.name == sig_name and module_part in ("", module)
    ]
    if not found:
        known = sorted(f"{m}.{s.name}" for m, c in result.modules.items() for s in c.signatures)
        raise SchemaLookupError(
            f"no signature `{name}`; signatures: {', '.join(known) or 'none'}"
        )
    if len(found) > 1:
        choices = ", ".join(f"{m}.{s.name}" for m, s in found)
        raise SchemaLookupError(f"`{name}` is ambiguous: {choices}")
    return found[0]


def signature_schema(result: CompileResult, name: str) -> dict[str, Any]:
    """``{"signature", "module", "instructions", "inputs", "outputs"}`` for one signature."""
    module, sig = find_signature(result, name)
    types = PythonTypes(result.modules.values())
    return {
        "signature": sig.name,
        "module": module,
        "instructions": sig.instructions,
        "inputs": _model_schema(f"{sig.name}Inputs", sig.inputs, types),
        "outputs": _model_schema(f"{sig.name}Outputs", sig.outputs, types),
    }


def _model_schema(title: str, fields: tuple[CheckedField, ...], types: PythonTypes) -> Any:
    from pydantic import ConfigDict, create_model

    model = create_model(  # type: ignore[call-overload]
        title,
        __config__=ConfigDict(extra="forbid"),
        **{f.name: pydantic_field(f, types) for f in fields},
    )
    return model.model_json_schema()
