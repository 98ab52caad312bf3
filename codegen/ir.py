"""The template IR: exactly what `templates/module.py.jinja` needs, already as Python source.

Lowering happens here, once: types become annotations, values become literals, and the
constant prompt parts are computed by the runtime's own adapters (the single
implementation of the prompt format), so the templates only place text.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sigforge.runtime.adapters import ADAPTERS, default_instructions
from sigforge.runtime.adapters.types import annotation_name, field_spec, output_json_schema
from sigforge.runtime.signature import FieldSpec

from .extend import run_signature_name
from .model import CheckedField, CheckedModule, CheckedSignature, CheckedTool
from .names import tool_class_names
from .pysource import py_literal, py_string_lines
from .pytypes import enum_docstring, pydantic_field
from .types import (
    ImageType,
    Primitive,
    SigType,
    TypeResolver,
    uses_literal,
    walk,
)


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
class EnumMemberIR:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class EnumIR:
    name: str
    docstring: str
    members: tuple[EnumMemberIR, ...]


@dataclass(frozen=True, slots=True)
class ClassIR:
    name: str
    docstring: str
    fields: tuple[FieldIR, ...]


@dataclass(frozen=True, slots=True)
class ToolIR:
    name: str
    description: str
    docstring: str
    args_model: str
    function: str
    tool_class: str
    params: tuple[FieldIR, ...]
    returns: str
    returns_name: str
    args_schema: str


@dataclass(frozen=True, slots=True)
class ImportIR:
    #: relative module path, e.g. ``.common`` or ``..shared.types``
    module: str
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ModuleIR:
    source: str
    doc: str
    #: ``from typing import ...`` names, sorted
    typing_imports: tuple[str, ...]
    #: ``from datetime import ...`` names, sorted
    datetime_imports: tuple[str, ...]
    #: whether the module defines an enum (imports StrEnum)
    uses_enum: bool
    imports: tuple[ImportIR, ...]
    enums: tuple[EnumIR, ...]
    classes: tuple[ClassIR, ...]
    tools: tuple[ToolIR, ...]
    signatures: tuple[SignatureIR, ...]
    predictors: tuple[PredictorIR, ...]
    #: ``from pydantic import ...`` names, sorted (``Field`` is added by the template use)
    pydantic_imports: tuple[str, ...]
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


def _field_ir(field: CheckedField, types: TypeResolver) -> tuple[FieldIR, FieldSpec]:
    constraints = dict(field.constraints)
    spec = field_spec(
        field.name,
        field.type.annotation(types),
        description=field.description,
        constraints=constraints,
        is_input=field.direction == "in",
        prefix=field.prefix,
        format=field.format,
    )
    return _attribute_ir(field, _spec_source(spec)), spec


def _attribute_ir(field: CheckedField, spec: str = "") -> FieldIR:
    """A model attribute (and keyword parameter): annotation, ``Field(...)``, default."""
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
    return FieldIR(field.name, field.type.source(), model_default, param_default, spec)


def _signature_ir(sig: CheckedSignature, types: TypeResolver, inherited: str = "") -> SignatureIR:
    """``inherited``: the instructions of the signature an extension extends (DSPy keeps them)."""
    base = sig.extends or sig.name
    inputs = [_field_ir(f, types) for f in sig.inputs]
    outputs = [_field_ir(f, types) for f in sig.outputs]
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
    schema = output_json_schema({f.name: f.type.annotation(types) for f in sig.outputs})
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


def _tool_ir(tool: CheckedTool, types: TypeResolver) -> ToolIR:
    from pydantic import BaseModel, ConfigDict, create_model

    args_model, function, tool_class = tool_class_names(tool.name)
    fields = {p.name: pydantic_field(p, types) for p in tool.params}
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        args_model, __config__=ConfigDict(extra="forbid"), **fields
    )
    properties = model.model_json_schema().get("properties", {})
    return ToolIR(
        name=tool.name,
        description=tool.description,
        docstring=f"The tool `{tool.name}`: {tool.description}"
        if tool.description
        else f"The tool `{tool.name}`.",
        args_model=args_model,
        function=function,
        tool_class=tool_class,
        params=tuple(_attribute_ir(p) for p in tool.params),
        returns=tool.returns.source(),
        returns_name=annotation_name(tool.returns.annotation(types)),
        args_schema=py_literal(properties),
    )


def _relative(importer: str, target: str) -> str:
    """The relative import path of module ``target`` seen from module ``importer``."""
    return "." * importer.count(".") + "." + target


def _all_types(module: CheckedModule) -> list[SigType]:
    fields = [f for s in module.signatures for f in (*s.inputs, *s.outputs)]
    fields += [f for c in module.classes for f in c.fields]
    fields += [p for t in module.tools for p in t.params]
    return [f.type for f in fields] + [t.returns for t in module.tools]


def lower(module: CheckedModule, types: TypeResolver) -> ModuleIR:
    """Lower a checked, extended module (name collisions were rejected by the checks)."""
    by_name = {s.name: _signature_ir(s, types) for s in module.signatures}
    local = set(by_name)
    bases = {p.signature.name: p.signature for p in module.predictors}
    for ext in module.extended:
        assert ext.extends is not None
        # an extension keeps the instructions of the signature it extends (also imported ones)
        base = by_name.get(ext.extends) or _signature_ir(bases[ext.extends], types)
        by_name[ext.name] = _signature_ir(ext, types, inherited=base.instructions_text)
    # imported signatures are defined in their own module
    signatures = [s for s in by_name.values() if s.name in local or s.extends]
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
    doc = module.doc or f"Typed signatures and predictors generated from {module.source}."
    all_types = [x for t in _all_types(module) for x in walk(t)]
    typing_imports = {"Literal"} if any(uses_literal(t) for t in all_types) else set()
    if module.tools:
        typing_imports.add("Protocol")
    runtime = {"check_generated_version"} | {p.base for p in predictors}
    if signatures:
        runtime |= {"AdapterPrompts", "FieldSpec", "Signature"}
    if module.tools:
        runtime.add("ToolSpec")
    if any(isinstance(t, ImageType) for t in all_types):
        runtime.add("Image")
    pydantic = {"BaseModel", "ConfigDict"} if signatures or module.classes or module.tools else set()
    attributes = [f for s in signatures for f in (*s.input_fields, *s.output_fields)]
    attributes += [_attribute_ir(f) for c in module.classes for f in c.fields]
    attributes += [_attribute_ir(p) for t in module.tools for p in t.params]
    if any(f.model_default and f.model_default.startswith("Field(") for f in attributes):
        pydantic.add("Field")
    classes = tuple(
        ClassIR(c.name, c.doc, tuple(_attribute_ir(f) for f in c.fields)) for c in module.classes
    )
    return ModuleIR(
        source=module.source,
        doc=doc,
        typing_imports=tuple(sorted(typing_imports)),
        datetime_imports=tuple(
            sorted({t.name for t in all_types if t in (Primitive("date"), Primitive("datetime"))})
        ),
        uses_enum=bool(module.enums),
        imports=tuple(
            ImportIR(_relative(module.module, i.module), i.names) for i in module.imports
        ),
        enums=tuple(
            EnumIR(
                e.name,
                enum_docstring(e),
                tuple(EnumMemberIR(m.name, py_literal(m.value)) for m in e.members),
            )
            for e in module.enums
        ),
        classes=classes,
        tools=tuple(_tool_ir(t, types) for t in module.tools),
        signatures=tuple(signatures),
        predictors=tuple(predictors),
        pydantic_imports=tuple(sorted(pydantic)),
        runtime_imports=tuple(sorted(runtime)),
    )
