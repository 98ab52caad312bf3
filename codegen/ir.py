"""The template IR: exactly what `templates/module.py.jinja` needs, already as Python source.

Lowering happens here, once: types become annotations, values become literals, and the
constant prompt parts are computed by the runtime's own adapters (the single
implementation of the prompt format), so the templates only place text.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sigforge.runtime.adapters import ADAPTERS, default_instructions
from sigforge.runtime.adapters.types import field_spec, output_json_schema
from sigforge.runtime.signature import FieldSpec

from .extend import run_signature_name
from .model import CheckedField, CheckedModule, CheckedSignature
from .pysource import py_literal, py_string_lines
from .types import SigType, uses_literal


@dataclass(frozen=True, slots=True)
class FieldIR:
    name: str
    annotation: str
    #: the right-hand side after ``=`` in the model, or None for a bare annotation
    model_default: str | None
    #: the default of the keyword parameter in ``__call__``, or None when required
    param_default: str | None
    spec: str


@dataclass(frozen=True, slots=True)
class PromptIR:
    adapter: str
    system: str
    output_request: str


@dataclass(frozen=True, slots=True)
class SignatureIR:
    name: str
    docstring: str
    #: the instructions text, and the same as a Python literal
    instructions_text: str
    instructions: str
    inputs_model: str
    outputs_model: str
    define_inputs_model: bool
    #: the signature this one extends (its inputs are that signature's inputs)
    extends: str | None
    input_fields: tuple[FieldIR, ...]
    output_fields: tuple[FieldIR, ...]
    prompts: tuple[PromptIR, ...]
    output_schema: str


@dataclass(frozen=True, slots=True)
class PredictorIR:
    name: str
    base: str
    kind: str
    signature: str
    declared_signature: str
    inputs_model: str
    outputs_model: str
    params: tuple[FieldIR, ...]
    adapter: str


@dataclass(frozen=True, slots=True)
class ModuleIR:
    source: str
    doc: str
    uses_literal: bool
    signatures: tuple[SignatureIR, ...]
    predictors: tuple[PredictorIR, ...]
    #: names imported from sigforge.runtime, sorted
    runtime_imports: tuple[str, ...]


def _spec_source(spec: FieldSpec) -> str:
    """``FieldSpec(...)`` naming only the attributes that differ from their defaults."""
    parts = [f"name={py_literal(spec.name)}"]
    for f in dataclasses.fields(FieldSpec):
        if f.name == "name":
            continue
        value = getattr(spec, f.name)
        if value != f.default:
            parts.append(f"{f.name}={py_literal(value)}")
    return f"FieldSpec({', '.join(parts)})"


def _field_ir(field: CheckedField) -> tuple[FieldIR, FieldSpec]:
    constraints = dict(field.constraints)
    spec = field_spec(
        field.name,
        field.type.annotation(),
        description=field.description,
        constraints=constraints,
        is_input=field.direction == "in",
    )
    args: list[str] = []
    if field.has_default:
        args.append(f"default={py_literal(field.default)}")
    args += [f"{k}={py_literal(v)}" for k, v in field.constraints]
    if field.description:
        args.append(f"description={py_literal(field.description)}")
    if args == [f"default={py_literal(field.default)}"]:
        model_default: str | None = py_literal(field.default)
    else:
        model_default = f"Field({', '.join(args)})" if args else None
    param_default = py_literal(field.default) if field.has_default else None
    return (
        FieldIR(
            field.name,
            field.type.source(),
            model_default,
            param_default,
            _spec_source(spec),
        ),
        spec,
    )


def _signature_ir(sig: CheckedSignature, inherited: str = "") -> SignatureIR:
    """``inherited``: the instructions of the signature an extension extends (DSPy keeps them)."""
    base = sig.extends or sig.name
    inputs = [_field_ir(f) for f in sig.inputs]
    outputs = [_field_ir(f) for f in sig.outputs]
    in_specs = tuple(s for _, s in inputs)
    out_specs = tuple(s for _, s in outputs)
    instructions = (
        sig.instructions or inherited or default_instructions(in_specs, out_specs)
    )
    prompts = []
    for adapter in ADAPTERS.values():
        parts = adapter.prompts(in_specs, out_specs, instructions)
        prompts.append(
            PromptIR(
                adapter.name,
                py_string_lines(parts.system),
                py_string_lines(parts.output_request),
            )
        )
    schema = output_json_schema({f.name: f.type.annotation() for f in sig.outputs})
    doc = instructions
    if sig.extension_note:
        doc = f"{doc}\n\n({sig.extension_note})"
    return SignatureIR(
        name=sig.name,
        docstring=doc,
        instructions_text=instructions,
        instructions=py_string_lines(instructions),
        inputs_model=f"{base}Inputs",
        outputs_model=f"{sig.name}Outputs",
        define_inputs_model=sig.extends is None,
        extends=sig.extends,
        input_fields=tuple(f for f, _ in inputs),
        output_fields=tuple(f for f, _ in outputs),
        prompts=tuple(prompts),
        output_schema=py_literal(schema),
    )


def _all_types(module: CheckedModule) -> list[SigType]:
    return [f.type for s in module.signatures for f in (*s.inputs, *s.outputs)]


def lower(module: CheckedModule) -> ModuleIR:
    """Lower a checked, extended module (name collisions were rejected by the checks)."""
    by_name = {s.name: _signature_ir(s) for s in module.signatures}
    for ext in module.extended:
        assert ext.extends is not None
        by_name[ext.name] = _signature_ir(
            ext, inherited=by_name[ext.extends].instructions_text
        )
    signatures = list(by_name.values())
    predictors = []
    for pred in module.predictors:
        run = by_name[run_signature_name(pred)]
        predictors.append(
            PredictorIR(
                name=pred.name,
                base="ChainOfThought" if pred.kind == "chain_of_thought" else "Predict",
                kind=pred.kind,
                signature=run.name,
                declared_signature=pred.signature.name,
                inputs_model=run.inputs_model,
                outputs_model=run.outputs_model,
                params=run.input_fields,
                adapter=pred.adapter,
            )
        )
    doc = (
        module.doc or f"Typed signatures and predictors generated from {module.source}."
    )
    return ModuleIR(
        source=module.source,
        doc=doc,
        uses_literal=any(uses_literal(t) for t in _all_types(module)),
        signatures=tuple(signatures),
        predictors=tuple(predictors),
        runtime_imports=tuple(
            sorted(
                {"AdapterPrompts", "FieldSpec", "Signature", "check_generated_version"}
                | {p.base for p in predictors}
            )
        ),
    )
