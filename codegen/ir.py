"""The template IR: exactly what `templates/module.py.jinja` needs, already as Python source.

Lowering happens here, once: types become annotations, values become literals, and the
constant prompt parts are computed by the runtime's own adapters (the single
implementation of the prompt format), so the templates only place text.

IR objects are never changed once made; like the layout nodes (see :mod:`.layout`) their
classes are not ``frozen`` dataclasses, whose attributes are each set through
``object.__setattr__`` (a noticeable share of the lowering's time).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sigforge.runtime.adapters.prompts import PROMPT_FORMATS, default_instructions
from sigforge.runtime.adapters.types import annotation_name, field_spec, output_json_schema
from sigforge.runtime.signature import FieldSpec

from .extend import (
    CALL_DISCRIMINATOR,
    attempt_signature_name,
    run_signature_name,
    tool_call_union,
)
from .layout import Bracket, Node, call_node, import_node, string_node, value_node
from .model import (
    CheckedField,
    CheckedModule,
    CheckedPredictor,
    CheckedSignature,
    CheckedTool,
)
from .names import (
    KIND_ROLES,
    STREAMING_NAMES,
    inner_predictor_name,
    partial_name,
    tool_class_names,
)
from .pysource import py_literal, py_str
from .pytypes import enum_docstring, pydantic_field
from .types import (
    DeclaredType,
    ImageType,
    LiteralOf,
    Primitive,
    SigType,
    TypeResolver,
    partial_type,
    walk,
)

if TYPE_CHECKING:
    from pydantic import BaseModel


@dataclass(slots=True)
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
    #: the type as prompts (and saved program states) name it, for signature fields
    type_name: str = ""


@dataclass(slots=True)
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
    #: False when the outputs models are another signature's (refine's hinted attempts)
    define_outputs_model: bool
    #: the signature this one extends (its inputs are that signature's inputs)
    extends: str | None
    input_fields: tuple[FieldIR, ...]
    output_fields: tuple[FieldIR, ...]
    #: the ``input_fields = (...)`` and ``output_fields = (...)`` statements (the first
    #: "" for an extension: the template names its base's)
    input_specs: Node
    output_specs: Node
    #: the ``prompts = {...}`` and ``output_schema = {...}`` statements (the second ""
    #: unless a predictor of the module runs the signature with the JSON format: the JSON
    #: adapter makes it on first use then)
    prompts: Node
    output_schema: Node


@dataclass(slots=True)
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
    #: field name -> type name of the signature it runs (what saved states record)
    fields: tuple[tuple[str, str], ...] = ()
    #: the class attributes ``sigforge freeze`` baked in, and where they came from
    frozen: tuple[Node, ...] = ()
    frozen_note: str = ""


@dataclass(slots=True)
class InnerIR:
    """A predictor a module kind runs inside: a small subclass naming its signature."""

    name: str
    #: the ``class Name(Base[In, Out]):`` line, and ``Base``
    header: Node
    base: str
    docstring: str
    signature: str
    adapter: str
    fields: tuple[tuple[str, str], ...] = ()
    frozen: tuple[Node, ...] = ()
    frozen_note: str = ""


@dataclass(slots=True)
class ReactIR:
    """What a react predictor ``P`` generates besides its signatures and predictors."""

    #: ``PToolCall = Annotated[ACall | BCall | Finish, Field(discriminator="tool")]``
    tool_call: Node
    tool_call_name: str
    #: ``PTools``: one attribute per tool, ``name: NameFunction | NameAsyncFunction``
    tools_class: str
    tools: tuple[Node, ...]
    trajectory_step: str
    #: the attributes of ``PTrajectoryStep``: ``thought``, ``call``, ``observation``
    step_fields: tuple[Node, ...]
    outputs: str
    #: ``trajectory: list[PTrajectoryStep] = Field(...)``, the attribute ``POutputs`` adds
    trajectory_field: Node
    extract_outputs: str


@dataclass(slots=True)
class KindIR:
    """A predictor of a module kind: a ``Module`` subclass running inner predictors."""

    name: str
    kind: str
    #: the runtime base class (``ReAct``, ``BestOfN``, ...)
    base: str
    #: the declaration as it reads with every option (defaults included)
    declared: str
    outputs_model: str
    inner: tuple[InnerIR, ...]
    #: the ``class Name(Base[...]):`` line, the class attributes
    header: Node
    attributes: tuple[Node, ...]
    #: what the inner predictors are, for the class docstring
    inner_doc: str
    params: tuple[FieldIR, ...]
    #: the bodies of ``forward`` and ``aforward``
    forward: Node
    aforward: Node
    react: ReactIR | None


@dataclass(slots=True)
class EnumMemberIR:
    name: str
    value: str


@dataclass(slots=True)
class EnumIR:
    name: str
    docstring: str
    members: tuple[EnumMemberIR, ...]


@dataclass(slots=True)
class ClassIR:
    name: str
    docstring: str
    fields: tuple[FieldIR, ...]
    #: the class's partial model and its attributes
    partial_name: str
    partial_fields: tuple[Node, ...]


@dataclass(slots=True)
class ToolIR:
    name: str
    #: the ``description = "..."`` statement
    description: Node
    docstring: str
    args_model: str
    function: str
    async_function: str
    tool_class: str
    #: the call model: the tool's name in ``tool``, then the arguments
    call_model: str
    call_docstring: str
    call_tool: str
    params: tuple[FieldIR, ...]
    returns: str
    returns_name: str
    args_schema: Node


@dataclass(slots=True)
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
    #: predictors of the kinds beyond predict and chain_of_thought
    kinds: tuple[KindIR, ...]
    #: whether the module uses ``dataclass`` (react predictors' tools)
    uses_dataclass: bool
    #: ``from pydantic import ...`` names, sorted
    pydantic_imports: tuple[str, ...]
    #: the ``from sigforge.runtime import ...`` statement
    runtime_import: Node
    #: the ``from sigforge.runtime.streaming import ...`` statement ("" when not needed)
    streaming_import: Node
    #: the ``from sigforge.runtime.modules import ...`` statement ("" when not needed)
    modules_import: Node


#: the attributes of ``FieldSpec`` after ``name``, with their keyword (``name=``) and default
_SPEC_DEFAULTS = tuple((f.name, f"{f.name}=", f.default) for f in dataclasses.fields(FieldSpec))[1:]


def _spec_node(spec: FieldSpec) -> Node:
    """``FieldSpec(...)`` naming only the attributes that differ from their defaults."""
    parts: list[Node] = [f"name={py_literal(spec.name)}"]
    for name, keyword, default in _SPEC_DEFAULTS:
        value = getattr(spec, name)
        if value != default:
            parts.append(string_node(keyword, value) if isinstance(value, str) else keyword + py_literal(value))
    return call_node("FieldSpec", parts)


class _Lowered:
    """The fields of one module lowered so far, by identity: an extension such as
    ``XWithReasoning`` shares its fields with ``X``, and they are lowered once. (Each entry
    keeps its field, so that no other object can take its ``id``.)"""

    def __init__(self, types: TypeResolver) -> None:
        self.types = types
        self._fields: dict[int, tuple[CheckedField, FieldIR, FieldSpec]] = {}
        self._partials: dict[tuple[int, frozenset[str]], tuple[CheckedField, Node]] = {}

    def field(self, field: CheckedField) -> tuple[FieldIR, FieldSpec]:
        """:func:`_field_ir` of ``field``."""
        done = self._fields.get(id(field))
        if done is None:
            done = self._fields[id(field)] = (field, *_field_ir(field, self.types))
        return done[1], done[2]

    def partial(self, field: CheckedField, whole: frozenset[str]) -> Node:
        """:func:`_partial_attribute` of ``field``."""
        key = (id(field), whole)
        done = self._partials.get(key)
        if done is None:
            done = self._partials[key] = (field, _partial_attribute(field, whole))
        return done[1]



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
    return _attribute_ir(field, _spec_node(spec), spec.type_name), spec


def _attribute_ir(field: CheckedField, spec: Node = "", type_name: str = "") -> FieldIR:
    """A model attribute (and keyword parameter): annotation, ``Field(...)``, default;
    ``spec`` and ``type_name``: see :class:`FieldIR`."""
    source = field.type.source()
    head = f"{field.name}: {source}"
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
    return FieldIR(field.name, source, attribute, uses_field, param_default, spec, type_name)


def _partial_attribute(field: CheckedField, whole: frozenset[str] = frozenset()) -> Node:
    """A partial model's attribute: the field's partial type, default None, its description
    (constraints are left to the complete model: a prefix of a valid value may break them).

    ``whole``: declared type names whose values only ever arrive whole (a react step's
    tool call), so their partial type is the type itself."""
    if isinstance(field.type, DeclaredType) and field.type.name in whole:
        head = f"{field.name}: {field.type.source()} | None"
    else:
        head = f"{field.name}: {partial_type(field.type).source()}"
    if field.description:
        return call_node(f"{head} = Field", ["default=None", string_node("description=", field.description)])
    return f"{head} = None"


def _specs_node(lead: str, fields: tuple[FieldIR, ...]) -> Node:
    specs = tuple([f.spec for f in fields])
    return Bracket(f"{lead} = (", specs, ")", one_tuple=len(specs) == 1)


def _signature_ir(
    sig: CheckedSignature,
    types: TypeResolver,
    lowered: _Lowered,
    formats: frozenset[str],
    inherited: str = "",
    whole: frozenset[str] = frozenset(),
) -> SignatureIR:
    """``lowered``: the fields of the module lowered so far (see :class:`_Lowered`);
    ``formats``: the prompt formats whose constant parts the signature carries (see
    :func:`prompt_formats`); ``inherited``: the instructions of the signature an extension
    extends (DSPy keeps them); ``whole``: see :func:`_partial_attribute`."""
    base = sig.extends or sig.name
    outputs_of = sig.outputs_from or sig.name
    inputs = [lowered.field(f) for f in sig.inputs]
    outputs = [lowered.field(f) for f in sig.outputs]
    in_specs = tuple([s for _, s in inputs])
    out_specs = tuple([s for _, s in outputs])
    instructions = (
        sig.instructions or inherited or default_instructions(in_specs, out_specs)
    )
    prompts: list[Node] = []
    for adapter in PROMPT_FORMATS.values():
        if adapter.name not in formats:
            continue
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
    output_schema: Node = ""
    if "json" in formats:
        schema = output_json_schema({f.name: f.type.annotation(types) for f in sig.outputs})
        output_schema = value_node(schema, "output_schema = ")
    doc = instructions
    if sig.extension_note:
        doc = f"{doc}\n\n({sig.extension_note})"
    input_fields = tuple([f for f, _ in inputs])
    output_fields = tuple([f for f, _ in outputs])
    return SignatureIR(
        name=sig.name,
        docstring=doc,
        instructions_text=instructions,
        instructions=string_node("instructions = ", instructions),
        inputs_model=f"{base}Inputs",
        outputs_model=f"{outputs_of}Outputs",
        partial_model=partial_name(f"{outputs_of}Outputs"),
        partial_fields=tuple([lowered.partial(f, whole) for f in sig.outputs]),
        define_inputs_model=sig.extends is None,
        define_outputs_model=sig.outputs_from is None,
        extends=sig.extends,
        input_fields=input_fields,
        output_fields=output_fields,
        # (an extension's class names its base's input fields)
        input_specs=_specs_node("input_fields", input_fields) if sig.extends is None else "",
        output_specs=_specs_node("output_fields", output_fields),
        prompts=Bracket("prompts = {", tuple(prompts), "}"),
        output_schema=output_schema,
    )


def call_docstring(tool: CheckedTool) -> str:
    """The docstring of a tool's call model: its description in JSON schemas."""
    return tool.description or f"A call of the tool `{tool.name}`."


def build_call_model(tool: CheckedTool, types: TypeResolver) -> type[BaseModel]:
    """The call model of a tool as the generated module defines it (for prompt schemas)."""
    from pydantic import ConfigDict, create_model

    fields: dict[str, Any] = {CALL_DISCRIMINATOR: (Literal.__getitem__(tool.name), ...)}
    fields.update({p.name: pydantic_field(p, types) for p in tool.params})
    model: type[BaseModel] = create_model(
        tool_class_names(tool.name)[4],
        __config__=ConfigDict(extra="forbid"),
        __doc__=call_docstring(tool),
        **fields,
    )
    return model


class _KindTypes:
    """The Python types of a module's fields: declared enums and classes (from ``inner``),
    and each react predictor's tool-call union (the call models and ``Finish``)."""

    def __init__(self, inner: TypeResolver, module: CheckedModule) -> None:
        self.inner = inner
        self._unions: dict[tuple[str, str], Any] = {}
        calls: dict[tuple[str, str], type[BaseModel]] = {}
        for pred in module.predictors:
            if pred.kind != "react":
                continue
            from sigforge.runtime.modules.react import Finish

            members: list[Any] = []
            for use in pred.tools:
                key = (use.module, use.tool.name)
                if key not in calls:
                    calls[key] = build_call_model(use.tool, inner)
                members.append(calls[key])
            members.append(Finish)
            union = members[0]
            for member in members[1:]:
                union = union | member
            self._unions[(module.module, tool_call_union(pred))] = union

    def python_type(self, module: str, name: str) -> Any:
        union = self._unions.get((module, name))
        return union if union is not None else self.inner.python_type(module, name)


def _tool_ir(tool: CheckedTool, types: TypeResolver) -> ToolIR:
    from pydantic import ConfigDict, create_model

    args_model, function, async_function, tool_class, call_model = tool_class_names(tool.name)
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
        async_function=async_function,
        tool_class=tool_class,
        call_model=call_model,
        call_docstring=call_docstring(tool),
        call_tool=f"{CALL_DISCRIMINATOR}: Literal[{py_str(tool.name)}]",
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


#: the primitive types imported from ``datetime``
_DATE_TYPES = ("date", "datetime")


#: the prompt formats of a signature that no predictor of its module runs: the format
#: predictors use unless told otherwise (``Predictor.default_adapter``)
DEFAULT_FORMATS = frozenset({"chat"})


def prompt_formats(module: CheckedModule) -> dict[str, frozenset[str]]:
    """The prompt formats (adapter names) each signature is run with by the module's own
    predictors, by signature name; a signature missing here gets :data:`DEFAULT_FORMATS`.

    A signature carries the constant prompt parts of these formats only: a predictor run
    with another adapter (set at run time, or a predictor of another module) has its
    adapter make them on first use, from the same code. Only the module's own predictors
    count, so that a module's output never depends on the modules importing it."""
    used: dict[str, set[str]] = {}
    for pred in module.predictors:
        if pred.kind in ("predict", "chain_of_thought"):
            names = [run_signature_name(pred)]
        else:
            names = [
                f"{pred.name}{role}" if own else attempt_signature_name(pred)
                for role, own in KIND_ROLES[pred.kind]
            ]
        for name in names:
            used.setdefault(name, set()).add(pred.adapter)
    return {name: frozenset(adapters) for name, adapters in used.items()}


def lower(module: CheckedModule, types: TypeResolver) -> ModuleIR:
    """Lower a checked, extended module (name collisions were rejected by the checks)."""
    types = _KindTypes(types, module)
    whole = frozenset(tool_call_union(p) for p in module.predictors if p.kind == "react")
    lowered = _Lowered(types)
    formats = prompt_formats(module)
    by_name = {
        s.name: _signature_ir(s, types, lowered, formats.get(s.name, DEFAULT_FORMATS))
        for s in module.signatures
    }
    emitted = set(by_name)
    bases = {p.signature.name: p.signature for p in module.predictors}
    none: frozenset[str] = frozenset()  # (for the IR of imported signatures, never emitted)
    for ext in module.extended:
        inherited = ""
        if ext.extends is not None:
            # an extension keeps the instructions of the signature it extends (also imported ones)
            extended = by_name.get(ext.extends) or _signature_ir(
                bases[ext.extends], types, lowered, none
            )
            inherited = extended.instructions_text
        by_name[ext.name] = _signature_ir(
            ext,
            types,
            lowered,
            formats.get(ext.name, DEFAULT_FORMATS),
            inherited=inherited,
            whole=whole,
        )
        emitted.add(ext.name)
    # imported signatures are defined in their own module
    signatures = [s for s in by_name.values() if s.name in emitted]
    for pred in module.predictors:
        if pred.signature.name not in by_name:  # an imported signature, run as declared
            by_name[pred.signature.name] = _signature_ir(pred.signature, types, lowered, none)
    predictors = []
    kinds = []
    for pred in module.predictors:
        if pred.kind in ("predict", "chain_of_thought"):
            predictors.append(_predictor_ir(pred, by_name[run_signature_name(pred)]))
        else:
            kinds.append(_kind_ir(pred, by_name))
    doc = module.doc or f"Typed signatures and predictors generated from {module.source}."
    all_types = [x for t in _all_types(module) for x in walk(t)]
    typing_imports = {"Literal"} if any(isinstance(t, LiteralOf) for t in all_types) else set()
    if module.tools:
        typing_imports |= {"Literal", "Protocol"}  # call models name their tool in a Literal
    reacts = [k.react for k in kinds if k.react is not None]
    if reacts:
        typing_imports.add("Annotated")
    runtime = {"check_generated_version"} | {p.base for p in predictors}
    modules_names = {k.base for k in kinds}
    for k in kinds:
        for inner in k.inner:
            (runtime if inner.base in RUNTIME_BASES else modules_names).add(inner.base)
    if reacts:
        modules_names |= {"Finish", "InvalidToolCall"}
    if signatures:
        runtime |= {"AdapterPrompts", "FieldSpec", "Signature"}
    if module.tools:
        runtime.add("ToolSpec")
    if any(isinstance(t, ImageType) for t in all_types):
        runtime.add("Image")
    needs_models = signatures or module.classes or module.tools or reacts
    pydantic = {"BaseModel", "ConfigDict"} if needs_models else set()
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
    tools = tuple(_tool_ir(t, types) for t in module.tools)
    attributes = [f for s in signatures for f in (*s.input_fields, *s.output_fields)]
    attributes += [f for c in classes for f in c.fields]
    attributes += [p for t in tools for p in t.params]
    partial_attributes = [a for s in signatures for a in s.partial_fields]
    partial_attributes += [a for c in classes for a in c.partial_fields]
    # a partial attribute is a ``Field(...)`` call (a layout node) exactly when it has a description
    if (
        any(f.uses_field for f in attributes)
        or any(not isinstance(a, str) for a in partial_attributes)
        or reacts
    ):
        pydantic.add("Field")
    return ModuleIR(
        source=module.source,
        doc=doc,
        typing_imports=tuple(sorted(typing_imports)),
        datetime_imports=tuple(
            sorted({t.name for t in all_types if isinstance(t, Primitive) and t.name in _DATE_TYPES})
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
        tools=tools,
        signatures=tuple(signatures),
        predictors=tuple(predictors),
        kinds=tuple(kinds),
        uses_dataclass=bool(reacts),
        pydantic_imports=tuple(sorted(pydantic)),
        runtime_import=import_node("sigforge.runtime", sorted(runtime)),
        streaming_import=import_node("sigforge.runtime.streaming", STREAMING_NAMES) if predictors else "",
        modules_import=import_node("sigforge.runtime.modules", sorted(modules_names))
        if modules_names
        else "",
    )


#: inner predictor base classes that come from ``sigforge.runtime`` (the others from
#: ``sigforge.runtime.modules``)
RUNTIME_BASES = frozenset({"Predict", "ChainOfThought"})

#: the runtime base class of each module kind (in ``sigforge.runtime.modules``)
KIND_BASES = {
    "react": "ReAct",
    "program_of_thought": "ProgramOfThought",
    "multi_chain_comparison": "MultiChainComparison",
    "best_of_n": "BestOfN",
    "refine": "Refine",
}


def _predictor_ir(pred: CheckedPredictor, run: SignatureIR) -> PredictorIR:
    build = call_node(run.inputs_model, [f"{f.name}={f.name}" for f in run.input_fields])
    base = "ChainOfThought" if pred.kind == "chain_of_thought" else "Predict"
    models = (run.partial_model, run.outputs_model)
    return PredictorIR(
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
        fields=signature_fields(run),
    )


def signature_fields(sig: SignatureIR) -> tuple[tuple[str, str], ...]:
    """Field name -> prompt type name, inputs then outputs (as saved states record them)."""
    return tuple([(f.name, f.type_name) for f in (*sig.input_fields, *sig.output_fields)])


def declared_text(pred: CheckedPredictor) -> str:
    """The predictor's declaration with every option it runs with (defaults included)."""
    options: list[str] = []
    if pred.kind == "react":
        options.append(f"tools=[{', '.join(u.tool.name for u in pred.tools)}]")
    if pred.max_iters is not None:
        options.append(f"max_iters={pred.max_iters}")
    if pred.m is not None:
        options.append(f"m={pred.m}")
    if pred.n is not None:
        options.append(f"n={pred.n}")
    if pred.kind in ("best_of_n", "refine") and pred.attempt != "predict":
        options.append(f"module={py_str(pred.attempt)}")
    if pred.adapter != "chat":
        options.append(f"adapter={py_str(pred.adapter)}")
    return f"{pred.kind}({', '.join([pred.signature.name, *options])})"


#: what each inner predictor does, by role, for docstrings
_ROLE_DOCS = {
    "Step": "a thought and the next tool call, once per turn",
    "Extract": "the outputs, with reasoning, from the finished trajectory",
    "Generate": "the first Python code",
    "Regenerate": "corrected code after an error",
    "Answer": "the outputs, with reasoning, from the code and what it printed",
    "Attempt": "one attempt (run several times)",
    "Compare": "the outputs, from the compared reasoning attempts",
    "Hinted": "an attempt with advice from the previous one",
    "Feedback": "advice after an attempt below the threshold",
}


def _inner_base(pred: CheckedPredictor, role: str, signature: SignatureIR) -> str:
    if pred.kind == "react" and role == "Step":
        return "ReActStep"
    if signature.output_fields and signature.output_fields[0].name == "reasoning":
        return "ChainOfThought"
    return "Predict"


def _kind_ir(pred: CheckedPredictor, by_name: dict[str, SignatureIR]) -> KindIR:
    base_sig = by_name[pred.signature.name]
    inner: list[InnerIR] = []
    attributes: list[Node] = [f"signature = {pred.signature.name}"]
    for role, own in KIND_ROLES[pred.kind]:
        sig = by_name[f"{pred.name}{role}" if own else attempt_signature_name(pred)]
        name = inner_predictor_name(pred.name, role)
        base = _inner_base(pred, role, sig)
        inner.append(
            InnerIR(
                name=name,
                header=Bracket(f"class {name}(", (f"{base}[{sig.inputs_model}, {sig.outputs_model}]",), "):"),
                docstring=f"`{pred.name}`'s {role.lower()} predictor: {_ROLE_DOCS[role]}.",
                signature=sig.name,
                adapter=pred.adapter,
                base=base,
                fields=signature_fields(sig),
            )
        )
        attributes.append(f"{role.lower()}_predictor = {name}")
    react = None
    outputs_model = by_name[inner[-1].signature].outputs_model
    if pred.kind == "react":
        react = _react_ir(pred, by_name)
        outputs_model = react.outputs
        tool_classes = [tool_class_names(u.tool.name)[3] for u in pred.tools]
        attributes.insert(
            1, Bracket("tool_specs = (", tuple(tool_classes), ")", one_tuple=len(tool_classes) == 1)
        )
        attributes += [f"outputs_model = {react.outputs}", f"trajectory_step = {react.trajectory_step}"]
    elif pred.kind == "program_of_thought":
        outputs_model = by_name[f"{pred.name}Answer"].outputs_model
    elif pred.kind == "multi_chain_comparison":
        outputs_model = by_name[f"{pred.name}Compare"].outputs_model
    elif pred.kind in ("best_of_n", "refine"):
        outputs_model = by_name[attempt_signature_name(pred)].outputs_model
    if pred.max_iters is not None:
        attributes.append(f"default_max_iters = {pred.max_iters}")
    if pred.m is not None:
        attributes.append(f"m = {pred.m}")
    if pred.n is not None:
        attributes.append(f"default_n = {pred.n}")
    build = call_node(base_sig.inputs_model, [f"{f.name}={f.name}" for f in base_sig.input_fields])
    kind_base = KIND_BASES[pred.kind]
    type_args = [base_sig.inputs_model, outputs_model]
    if react is not None:
        type_args.append(react.tools_class)
    # refine's hinted predictor is made per call from the attempt predictor's state
    roles = ", ".join(
        f"`{r.lower()}` (`{inner_predictor_name(pred.name, r)}`)"
        for r, _ in KIND_ROLES[pred.kind]
        if r != "Hinted"
    )
    return KindIR(
        name=pred.name,
        kind=pred.kind,
        base=kind_base,
        declared=declared_text(pred),
        outputs_model=outputs_model,
        inner=tuple(inner),
        header=Bracket(f"class {pred.name}(", (f"{kind_base}[{', '.join(type_args)}]",), "):"),
        attributes=tuple(attributes),
        inner_doc=f"Inner predictors: {roles}.",
        params=base_sig.input_fields,
        forward=call_node("return self.run", [build]),
        aforward=call_node("return await self.arun", [build]),
        react=react,
    )


def _described(head: str, description: str) -> Node:
    """``head = Field(description=...)``: a required model attribute with a description."""
    return call_node(f"{head} = Field", [string_node("description=", description)])


def _react_ir(pred: CheckedPredictor, by_name: dict[str, SignatureIR]) -> ReactIR:
    union = tool_call_union(pred)
    step = f"{pred.name}TrajectoryStep"
    calls = [tool_class_names(u.tool.name)[4] for u in pred.tools]
    members = " | ".join([*calls, "Finish"])
    tools = tuple(
        f"{u.tool.name}: {names[1]} | {names[2]}"
        for u in pred.tools
        if (names := tool_class_names(u.tool.name))
    )
    return ReactIR(
        tool_call=Bracket(
            f"{union} = Annotated[", (members, f'Field(discriminator="{CALL_DISCRIMINATOR}")'), "]"
        ),
        tool_call_name=union,
        tools_class=f"{pred.name}Tools",
        tools=tools,
        trajectory_step=step,
        step_fields=(
            _described("thought: str", "The reasoning before the call"),
            _described(f"call: {union} | InvalidToolCall", "The tool call, or the invalid call the LM wrote"),
            _described("observation: str", "The tool's result as text, or the error instead"),
        ),
        outputs=f"{pred.name}Outputs",
        trajectory_field=_described(f"trajectory: list[{step}]", "Every turn, in order"),
        extract_outputs=by_name[f"{pred.name}Extract"].outputs_model,
    )
