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
from .layout import Bracket, Node, call_node, import_node, string_node, value_node
from .model import CheckedField, CheckedModule, CheckedSignature, CheckedTool
from .names import STREAMING_NAMES, partial_name, tool_class_names
from .pysource import py_literal
from .pytypes import enum_docstring, pydantic_field
from .types import (
    ImageType,
    Primitive,
    SigType,
    TypeResolver,
    partial_type,
    uses_literal,
    walk,
)


@dataclass(frozen=True, slots=True)
class FieldIR:
    name: str
    annotation: str
    #: the model attribute: ``name: type``, ``name: type = default`` or ``... = Field(...)``
    attribute: Node
    #: whether the attribute uses pydantic's ``Field``
    uses_field: bool
    #: the default of the keyword parameter in ``__call__``, or None when required
    param_default: str | None
    #: ``FieldSpec(...)`` for signature fields
    spec: Node


@dataclass(frozen=True, slots=True)
class SignatureIR:
    name: str
    docstring: str
    #: the instructions text, and the same as the ``instructions = ...`` statement
    instructions_text: str
    instructions: Node
    inputs_model: str
    outputs_model: str
    #: the outputs while they stream in (every field optional), and its attributes
    partial_model: str
    partial_fields: tuple[Node, ...]
    define_inputs_model: bool
    #: the signature this one extends (its inputs are that signature's inputs)
    extends: str | None
    input_fields: tuple[FieldIR, ...]
    output_fields: tuple[FieldIR, ...]
    #: the ``input_fields = (...)`` and ``output_fields = (...)`` statements
    input_specs: Node
    output_specs: Node
    #: the ``prompts = {...}`` and ``output_schema = {...}`` statements
    prompts: Node
    output_schema: Node


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
    #: the ``class Name(Base[In, Out]):`` line
    header: Node
    #: the bodies of ``__call__`` and ``acall``
    run: Node
    arun: Node
    #: the return annotations (``) -> PredictionStream[...]:`` lines) and bodies of
    #: ``stream`` and ``astream``
    stream_returns: Node
    astream_returns: Node
    stream: Node
    astream: Node


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
    #: the class's partial model and its attributes
    partial_name: str
    partial_fields: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class ToolIR:
    name: str
    #: the ``description = "..."`` statement
    description: Node
    docstring: str
    args_model: str
    function: str
    tool_class: str
    params: tuple[FieldIR, ...]
    returns: str
    returns_name: str
    args_schema: Node


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
    #: ``from .module import ...`` statements for declarations of sibling modules
    imports: tuple[Node, ...]
    enums: tuple[EnumIR, ...]
    classes: tuple[ClassIR, ...]
    tools: tuple[ToolIR, ...]
    signatures: tuple[SignatureIR, ...]
    predictors: tuple[PredictorIR, ...]
    #: ``from pydantic import ...`` names, sorted
    pydantic_imports: tuple[str, ...]
    #: the ``from sigforge.runtime import ...`` statement
    runtime_import: Node
    #: the ``from sigforge.runtime.streaming import ...`` statement ("" when not needed)
    streaming_import: Node


def _spec_node(spec: FieldSpec) -> Node:
    """``FieldSpec(...)`` naming only the attributes that differ from their defaults."""
    parts: list[Node] = [f"name={py_literal(spec.name)}"]
    for f in dataclasses.fields(FieldSpec):
        if f.name == "name":
            continue
        value = getattr(spec, f.name)
        if value != f.default:
            parts.append(string_node(f"{f.name}=", value) if isinstance(value, str) else f"{f.name}={py_literal(value)}")
    return call_node("FieldSpec", parts)


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
    return _attribute_ir(field, _spec_node(spec)), spec


def _attribute_ir(field: CheckedField, spec: Node = "") -> FieldIR:
    """A model attribute (and keyword parameter): annotation, ``Field(...)``, default."""
    head = f"{field.name}: {field.type.source()}"
    args: list[Node] = []
    if field.has_default:
        args.append(value_node(field.default, "default="))
    args += [f"{k}={py_literal(v)}" for k, v in field.constraints]
    if field.description:
        args.append(string_node("description=", field.description))
    uses_field = bool(args) and not (field.has_default and len(args) == 1)
    if uses_field:
        attribute: Node = call_node(f"{head} = Field", args)
    elif field.has_default:
        attribute = value_node(field.default, f"{head} = ")
    else:
        attribute = head
    param_default = py_literal(field.default) if field.has_default else None
    return FieldIR(field.name, field.type.source(), attribute, uses_field, param_default, spec)


def _partial_attribute(field: CheckedField) -> Node:
    """A partial model's attribute: the field's partial type, default None, its description
    (constraints are left to the complete model: a prefix of a valid value may break them)."""
    head = f"{field.name}: {partial_type(field.type).source()}"
    if field.description:
        return call_node(f"{head} = Field", ["default=None", string_node("description=", field.description)])
    return f"{head} = None"


def _specs_node(lead: str, fields: tuple[FieldIR, ...]) -> Node:
    specs = tuple(f.spec for f in fields)
    return Bracket(f"{lead} = (", specs, ")", one_tuple=len(specs) == 1)


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
    prompts: list[Node] = []
    for adapter in ADAPTERS.values():
        parts = adapter.prompts(in_specs, out_specs, instructions)
        prompts.append(
            call_node(
                f"{py_literal(adapter.name)}: AdapterPrompts",
                [
                    string_node("system=", parts.system),
                    string_node("output_request=", parts.output_request),
                ],
            )
        )
    schema = output_json_schema({f.name: f.type.annotation(types) for f in sig.outputs})
    doc = instructions
    if sig.extension_note:
        doc = f"{doc}\n\n({sig.extension_note})"
    input_fields = tuple(f for f, _ in inputs)
    output_fields = tuple(f for f, _ in outputs)
    return SignatureIR(
        name=sig.name,
        docstring=doc,
        instructions_text=instructions,
        instructions=string_node("instructions = ", instructions),
        inputs_model=f"{base}Inputs",
        outputs_model=f"{sig.name}Outputs",
        partial_model=partial_name(f"{sig.name}Outputs"),
        partial_fields=tuple(_partial_attribute(f) for f in sig.outputs),
        define_inputs_model=sig.extends is None,
        extends=sig.extends,
        input_fields=input_fields,
        output_fields=output_fields,
        input_specs=_specs_node("input_fields", input_fields),
        output_specs=_specs_node("output_fields", output_fields),
        prompts=Bracket("prompts = {", tuple(prompts), "}"),
        output_schema=value_node(schema, "output_schema = "),
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
        description=string_node("description = ", tool.description),
        docstring=f"The tool `{tool.name}`: {tool.description}"
        if tool.description
        else f"The tool `{tool.name}`.",
        args_model=args_model,
        function=function,
        tool_class=tool_class,
        params=tuple(_attribute_ir(p) for p in tool.params),
        returns=tool.returns.source(),
        returns_name=annotation_name(tool.returns.annotation(types)),
        args_schema=value_node(properties, "args_schema = "),
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
        extended = by_name.get(ext.extends) or _signature_ir(bases[ext.extends], types)
        by_name[ext.name] = _signature_ir(ext, types, inherited=extended.instructions_text)
    # imported signatures are defined in their own module
    signatures = [s for s in by_name.values() if s.name in local or s.extends]
    predictors = []
    for pred in module.predictors:
        if run_signature_name(pred) not in by_name:  # an imported signature, run as declared
            by_name[pred.signature.name] = _signature_ir(pred.signature, types)
        run = by_name[run_signature_name(pred)]
        build = call_node(run.inputs_model, [f"{f.name}={f.name}" for f in run.input_fields])
        base = "ChainOfThought" if pred.kind == "chain_of_thought" else "Predict"
        models = (run.partial_model, run.outputs_model)
        predictors.append(
            PredictorIR(
                name=pred.name,
                base=base,
                kind=pred.kind,
                signature=run.name,
                declared_signature=pred.signature.name,
                inputs_model=run.inputs_model,
                outputs_model=run.outputs_model,
                params=run.input_fields,
                adapter=pred.adapter,
                header=Bracket(f"class {pred.name}(", (f"{base}[{run.inputs_model}, {run.outputs_model}]",), "):"),
                run=call_node("return self.run", [build]),
                arun=call_node("return await self.arun", [build]),
                stream_returns=Bracket(") -> PredictionStream[", models, "]:"),
                astream_returns=Bracket(") -> AsyncPredictionStream[", models, "]:"),
                stream=call_node("return self.run_stream", [build]),
                astream=call_node("return self.arun_stream", [build]),
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
    partial_attributes = [a for s in signatures for a in s.partial_fields]
    classes = tuple(
        ClassIR(
            c.name,
            c.doc,
            tuple(_attribute_ir(f) for f in c.fields),
            partial_name(c.name),
            tuple(_partial_attribute(f) for f in c.fields),
        )
        for c in module.classes
    )
    partial_attributes += [a for c in classes for a in c.partial_fields]
    # a partial attribute is a ``Field(...)`` call (a layout node) exactly when it has a description
    if any(f.uses_field for f in attributes) or any(not isinstance(a, str) for a in partial_attributes):
        pydantic.add("Field")
    return ModuleIR(
        source=module.source,
        doc=doc,
        typing_imports=tuple(sorted(typing_imports)),
        datetime_imports=tuple(
            sorted({t.name for t in all_types if t in (Primitive("date"), Primitive("datetime"))})
        ),
        uses_enum=bool(module.enums),
        imports=tuple(
            import_node(_relative(module.module, i.module), i.names) for i in module.imports
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
        runtime_import=import_node("sigforge.runtime", sorted(runtime)),
        streaming_import=import_node("sigforge.runtime.streaming", STREAMING_NAMES) if predictors else "",
    )
