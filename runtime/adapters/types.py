"""Python annotations turned into the text and schemas the prompt formats need.

These helpers run when the compiler generates code (to precompute ``FieldSpec``s, prompt
constants and the structured-outputs schema) and may run again at run time; either way
they are the one definition of how a type is named, noted and constrained in a prompt.
The wording follows DSPy 3.4.1 byte for byte so prompts stay interchangeable.
"""

from __future__ import annotations

import copy
import datetime
import enum
import functools
import json
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union, cast, get_args, get_origin

from ..signature import FieldSpec, Signature

__all__ = [
    "annotation_name",
    "constraints_text",
    "field_spec",
    "infer_prefix",
    "output_json_schema",
    "response_format",
    "type_note",
]

#: the title of the structured-outputs schema; DSPy sends this name, so we do too
OUTPUT_SCHEMA_TITLE = "DSPyProgramOutputs"

# How each constraint reads after a field description. The first eight are DSPy's
# wording; DSPy prints nothing for the others, so we chose the wording ourselves:
# ``min_items``/``max_items`` are pydantic v1 spellings of ``min_length``/``max_length``
# and read the same, ``pattern`` names the regular expression the value must match.
_CONSTRAINT_LABELS: dict[str, str] = {
    "gt": "greater than",
    "ge": "greater than or equal to",
    "lt": "less than",
    "le": "less than or equal to",
    "min_length": "minimum length",
    "max_length": "maximum length",
    "multiple_of": "a multiple of the given number",
    "allow_inf_nan": "allow 'inf', '-inf', 'nan' values",
    "min_items": "minimum length",
    "max_items": "maximum length",
    "pattern": "matching the regular expression",
}


#: the names of the typing forms that are origins of annotations
_FORM_NAMES: dict[Any, str] = {Literal: "Literal", Union: "Union"}


def annotation_name(annotation: Any) -> str:
    """The type as prompts name it: ``list[str]``, ``Union[str, NoneType]``, ``Literal['a', 'b']``."""
    if type(annotation) is type:  # a plain class (str, int, ...): no origin to look up
        return annotation.__name__
    origin = get_origin(annotation)
    if origin is None:
        name = getattr(annotation, "__name__", None)
        return name if isinstance(name, str) else str(annotation)
    if origin is types.UnionType:  # `X | Y` is named like `typing.Union[X, Y]`
        origin = Union
    args = get_args(annotation)
    if origin is Literal:
        inner = ", ".join(
            [_quote_literal(arg) if isinstance(arg, str) else annotation_name(arg) for arg in args]
        )
    else:
        inner = ", ".join([annotation_name(arg) for arg in args])
    # (typing's forms are named from a table: their __name__ goes through a slow __getattr__)
    return f"{_FORM_NAMES.get(origin) or annotation_name(origin)}[{inner}]"


def _quote_literal(text: str) -> str:
    """Quote a string Literal member, preferring the quote character it does not contain."""
    if "'" in text and '"' not in text:
        return f'"{text}"'
    escaped = text.replace("'", "\\'")
    return f"'{escaped}'"


def constraints_text(metadata: Mapping[str, Any] | None) -> str:
    """Constraints as a prompt lists them, e.g. ``greater than or equal to: 0, maximum length: 3``.

    ``metadata`` maps constraint names (``ge gt le lt min_length max_length pattern
    min_items max_items``, plus DSPy's ``multiple_of`` and ``allow_inf_nan``) to their
    values; they are listed in the mapping's order. An unknown name is a ``ValueError``.
    """
    if not metadata:
        return ""
    parts = []
    for key, value in metadata.items():
        label = _CONSTRAINT_LABELS.get(key)
        if label is None:
            known = ", ".join(_CONSTRAINT_LABELS)
            raise ValueError(f"unknown constraint {key!r}; known constraints: {known}")
        parts.append(f"{label}: {value}")
    return ", ".join(parts)


def type_note(annotation: Any) -> str:
    """What an output's value must look like, e.g. ``must be a single float value``; ``""`` for str."""
    if annotation is str:
        return ""
    if annotation is bool:
        return "must be True or False"
    if annotation is int or annotation is float:
        return f"must be a single {annotation.__name__} value"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "must be one of: " + "; ".join(str(member.value) for member in annotation)
    if get_origin(annotation) is Literal:
        choices = "; ".join(str(arg) for arg in get_args(annotation))
        return f"must exactly match (no extra characters) one of: {choices}"
    return _schema_note(annotation, annotation_name(annotation))


@functools.lru_cache(maxsize=1024)
def _schema_note(annotation: Any, name: str) -> str:
    """:func:`type_note` of a type described by its JSON schema, made once per type (keyed
    as :func:`_cached_type_schemas` is)."""
    # (_type_first builds new mappings and lists: the cached schema is left as it is)
    schema = json.dumps(_type_first(_cached_type_schemas(annotation, name).schema), ensure_ascii=False)
    return f"must adhere to the JSON schema: {schema}"


@dataclass(frozen=True, slots=True)
class _TypeSchemas:
    """The JSON schemas of one annotation, made once per annotation (never modify them)."""

    #: pydantic's schema of the annotation
    schema: dict[str, Any]
    #: the schema as a property of an outputs model, as pydantic writes it there: keys
    #: sorted, with a ``title`` in its place (an empty one, which :func:`_outputs_object`
    #: fills in) when :attr:`titled`; a model or an enum is a ``$ref`` to :attr:`defs`
    property: dict[str, Any]
    #: whether pydantic titles the property after its field (not a bare ``$ref``, say)
    titled: bool
    #: the definitions (models, enums) the property refers to, by name
    defs: dict[str, Any]
    #: ``property`` made strict (see :func:`_make_strict`); ``{}`` when it has ``defs``,
    #: whose references are resolved in the whole schema
    strict: dict[str, Any]
    #: whether the schema holds an open-ended mapping (see :func:`output_json_schema`)
    open_mapping: bool


def _type_schemas(annotation: Any) -> _TypeSchemas:
    # Keyed by the annotation and its name: equal annotations can have different schemas
    # (unions compare as sets, `int | str == str | int`, but `anyOf` keeps their order).
    return _cached_type_schemas(annotation, annotation_name(annotation))


@functools.lru_cache(maxsize=1024)
def _cached_type_schemas(annotation: Any, name: str) -> _TypeSchemas:
    schema = _plain_schema(annotation)
    if schema is None:
        from pydantic import TypeAdapter

        schema = TypeAdapter(annotation).json_schema()
    if "title" in schema or "$defs" in schema:
        prop, titled, defs = _model_property(annotation)
        return _TypeSchemas(schema, prop, titled, defs, {}, _has_open_mapping(schema))
    prop = dict(sorted({**schema, "title": ""}.items()))
    strict = _make_strict(copy.deepcopy(prop), prop)  # (no `$ref` to resolve without `$defs`)
    return _TypeSchemas(schema, prop, True, {}, strict, _has_open_mapping(schema))


def _model_property(annotation: Any) -> tuple[dict[str, Any], bool, dict[str, Any]]:
    """How pydantic writes a field of a type that is (or holds) a model or an enum in an
    outputs model: its property (titled ``""`` where pydantic titles it), whether it is
    titled, and the definitions it refers to. Read from a model of that one field, once
    per type, instead of building a model per signature (whose other fields add nothing
    to this one's schema)."""
    model_schema = _built_model_schema({"field": annotation})
    prop: dict[str, Any] = model_schema["properties"]["field"]
    titled = "title" in prop
    if titled:
        prop["title"] = ""
    return prop, titled, model_schema.get("$defs", {})


#: JSON schemas of the scalar types, as pydantic writes them
_SCALAR_SCHEMAS: dict[Any, dict[str, str]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    datetime.date: {"format": "date", "type": "string"},
    datetime.datetime: {"format": "date-time", "type": "string"},
}
#: the JSON type of a ``Literal`` value, by its Python type
_LITERAL_TYPES = {str: "string", int: "integer", bool: "boolean", type(None): "null"}
_NULL = _SCALAR_SCHEMAS[type(None)]


def _plain_schema(annotation: Any) -> dict[str, Any] | None:
    """pydantic's JSON schema of an annotation made only of scalars, ``list``, ``dict``,
    ``tuple``, ``Literal`` and unions; None for anything else (a model, an enum, an
    image...), which pydantic describes itself.

    The plain types are most output fields, and writing their schemas directly spares
    the compiler importing pydantic (a tenth of a second) when no field needs more;
    tests/test_schema_plain.py checks them against pydantic's own, type by type."""
    scalar = _SCALAR_SCHEMAS.get(annotation)
    if scalar is not None:
        return dict(scalar)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list and len(args) == 1:
        items = _plain_schema(args[0])
        return None if items is None else {"items": items, "type": "array"}
    if origin is dict and len(args) == 2 and args[0] in (str, int):  # (pydantic drops the key type)
        values = _plain_schema(args[1])
        return None if values is None else {"additionalProperties": values, "type": "object"}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            items = _plain_schema(args[0])
            return None if items is None else {"items": items, "type": "array"}
        members = [_plain_schema(arg) for arg in args]
        if any(member is None for member in members):
            return None
        if not members:
            return {"maxItems": 0, "minItems": 0, "type": "array"}
        return {"maxItems": len(args), "minItems": len(args), "prefixItems": members, "type": "array"}
    if origin is Literal:
        kinds = {type(value) for value in args}
        if not kinds <= _LITERAL_TYPES.keys():
            return None
        schema: dict[str, Any] = {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
        if len(kinds) == 1:
            schema["type"] = _LITERAL_TYPES[kinds.pop()]
        return schema
    if origin is Union or origin is types.UnionType:
        # as pydantic: a union with None is the union of the rest, then null
        rest = [_plain_schema(arg) for arg in args if arg is not type(None)]
        if any(variant is None for variant in rest):
            return None
        union = _any_of(cast(list[dict[str, Any]], rest))
        if len(rest) == len(args):
            return union
        return union if union == _NULL else _any_of([union, dict(_NULL)])
    return None



def _any_of(variants: list[dict[str, Any]]) -> dict[str, Any]:
    """``anyOf`` as pydantic writes it: nested ones flattened, equal variants kept once
    (the first), and a single variant left as it is."""
    members: list[dict[str, Any]] = []
    for variant in variants:
        for member in variant["anyOf"] if list(variant) == ["anyOf"] else [variant]:
            if member not in members:
                members.append(member)
    return members[0] if len(members) == 1 else {"anyOf": members}


def _field_schemas(annotations: Mapping[str, Any]) -> dict[str, _TypeSchemas]:
    """The schemas of each field's annotation, by field name."""
    return {name: _type_schemas(annotation) for name, annotation in annotations.items()}


def _type_first(node: Any) -> Any:
    """Sort mapping keys recursively, ``type`` first and the rest alphabetically (readability)."""
    if isinstance(node, Mapping):
        keys = sorted(node, key=lambda key: (key != "type", key))
        return {key: _type_first(node[key]) for key in keys}
    if isinstance(node, list):
        return [_type_first(item) for item in node]
    return node


# Word boundaries inside identifiers: before a capitalised word, between a lower-case
# letter or digit and a capital, and between letters and digits.
_CAPITALISED_WORD = re.compile(r"(.)([A-Z][a-z]+)")
_LOWER_THEN_UPPER = re.compile(r"([a-z0-9])([A-Z])")
_LETTER_THEN_DIGIT = re.compile(r"([a-zA-Z])(\d)")
_DIGIT_THEN_LETTER = re.compile(r"(\d)([a-zA-Z])")
#: what each of the four patterns needs to match at all
_CAPITAL_OR_DIGIT = re.compile(r"[A-Z\d]")


def infer_prefix(name: str) -> str:
    """A human label for a field name: ``some_field`` -> ``Some Field``, ``HTMLParser`` -> ``HTML Parser``."""
    snake = name
    if _CAPITAL_OR_DIGIT.search(name):  # (most names are snake_case: nothing to split)
        snake = _CAPITALISED_WORD.sub(r"\1_\2", snake)
        snake = _LOWER_THEN_UPPER.sub(r"\1_\2", snake)
        snake = _LETTER_THEN_DIGIT.sub(r"\1_\2", snake)
        snake = _DIGIT_THEN_LETTER.sub(r"\1_\2", snake)
    return " ".join([word if word.isupper() else word.capitalize() for word in snake.split("_")])


def field_spec(
    name: str,
    annotation: Any,
    *,
    description: str = "",
    constraints: Mapping[str, Any] | None = None,
    is_input: bool,
    prefix: str | None = None,
    format: str = "",
) -> FieldSpec:
    """Everything the prompt formats need to know about one field.

    ``prefix`` is the field's label (inferred from the name when None); ``format`` a hint
    on how the value is written."""
    return FieldSpec(
        name=name,
        type_name=annotation_name(annotation),
        description=description,
        constraints=constraints_text(constraints),
        type_note="" if is_input else type_note(annotation),
        is_str=annotation is str,
        prefix=f"{infer_prefix(name)}:" if prefix is None else prefix,
        format=format,
    )


def output_json_schema(annotations: Mapping[str, Any]) -> dict[str, Any]:
    """The structured-outputs JSON schema for output fields, as DSPy's JSON adapter sends it.

    Every object lists all its properties as required and forbids others, ``null``
    defaults are dropped and ``$ref``s with sibling keys are inlined (what OpenAI's strict
    mode demands). Open-ended mappings (``dict[str, X]`` anywhere in an output type) cannot
    be expressed in strict mode: then the result is ``{}``, which :func:`response_format`
    turns into plain JSON mode. (DSPy does that only for a top-level ``dict``; for a nested
    one it sends a schema that forces the mapping to be empty.)
    """
    fields = _field_schemas(annotations)
    if any(f.open_mapping for f in fields.values()):
        return {}
    if not any(f.defs for f in fields.values()):
        plain = _outputs_object(fields, strict=True)
        assert plain is not None  # (without definitions, no two can disagree)
        return plain
    schema = _outputs_object(fields, strict=False) or _built_model_schema(annotations)
    return _make_strict(schema, schema)


def _model_schema(annotations: Mapping[str, Any]) -> dict[str, Any]:
    """pydantic's JSON schema of a model with these required fields (``extra="forbid"``).

    Assembled from each annotation's own schemas, which are cached, instead of building a
    model per signature (tests/test_language.py compares the two)."""
    return _outputs_object(_field_schemas(annotations), strict=False) or _built_model_schema(
        annotations
    )


def _outputs_object(fields: Mapping[str, _TypeSchemas], *, strict: bool) -> dict[str, Any] | None:
    """The outputs model's schema from its fields' property schemas (``strict``: their
    strict forms, for fields without definitions), each one copied and titled after the
    field as pydantic titles it, with the definitions they refer to (sorted by name, as
    pydantic sorts them). None when two fields refer to different definitions of one
    name: pydantic renames them then, and only building the model says how."""
    definitions: dict[str, Any] = {}
    for f in fields.values():
        for key, definition in f.defs.items():
            if definitions.setdefault(key, definition) != definition:
                return None
    properties: dict[str, Any] = {}
    for name, f in fields.items():
        field = properties[name] = _copy_json(f.strict if strict else f.property)
        if f.titled:
            field["title"] = name.title().replace("_", " ")
    schema: dict[str, Any] = {}
    if definitions:
        schema["$defs"] = {key: _copy_json(definitions[key]) for key in sorted(definitions)}
    schema.update(
        additionalProperties=False,
        properties=properties,
        required=list(fields),
        title=OUTPUT_SCHEMA_TITLE,
        type="object",
    )
    return schema


def _copy_json(node: Any) -> Any:
    """A copy of a JSON value (what ``copy.deepcopy`` does, for dicts, lists and scalars only)."""
    if type(node) is dict:
        return {key: _copy_json(value) for key, value in node.items()}
    if type(node) is list:
        return [_copy_json(item) for item in node]
    return node


def _built_model_schema(annotations: Mapping[str, Any]) -> dict[str, Any]:
    from pydantic import ConfigDict, create_model

    fields: dict[str, Any] = {name: (annotation, ...) for name, annotation in annotations.items()}
    model = create_model(OUTPUT_SCHEMA_TITLE, __config__=ConfigDict(extra="forbid"), **fields)
    schema: dict[str, Any] = model.model_json_schema()
    return schema


def _has_open_mapping(node: Any) -> bool:
    if isinstance(node, Mapping):
        if node.get("type") == "object" and not isinstance(node.get("properties"), Mapping):
            return True
        return any(_has_open_mapping(value) for value in node.values())
    if isinstance(node, list):
        return any(_has_open_mapping(item) for item in node)
    return False


def _make_strict(
    node: dict[str, Any], root: dict[str, Any], expanding: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Rewrite ``node`` in place (and return it) to satisfy strict structured outputs.

    ``expanding``: the references being inlined around ``node``; a recursive reference
    is kept as a plain ``$ref`` (its sibling keys dropped) instead of inlined forever."""
    for key in ("$defs", "definitions"):
        definitions = node.get(key)
        if isinstance(definitions, dict):
            for definition in definitions.values():
                _make_strict(definition, root, expanding)
    properties = node.get("properties")
    if isinstance(properties, dict):
        node["required"] = list(properties)
        node["additionalProperties"] = False
        for name, sub_schema in properties.items():
            properties[name] = _make_strict(sub_schema, root, expanding)
    items = node.get("items")
    if isinstance(items, dict):
        node["items"] = _make_strict(items, root, expanding)
    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        node["anyOf"] = [_make_strict(variant, root, expanding) for variant in any_of]
    all_of = node.get("allOf")
    if isinstance(all_of, list):
        if len(all_of) == 1:
            node.update(_make_strict(all_of[0], root, expanding))
            del node["allOf"]
        else:
            node["allOf"] = [_make_strict(part, root, expanding) for part in all_of]
    if "default" in node and node["default"] is None:
        del node["default"]
    ref = node.get("$ref")
    if isinstance(ref, str) and len(node) > 1:
        if ref in expanding:
            node.clear()
            node["$ref"] = ref
            return node
        # the node's own keys win over the referenced definition's
        node.update({**copy.deepcopy(_resolve_ref(root, ref)), **node})
        del node["$ref"]
        return _make_strict(node, root, expanding | {ref})
    return node


def _resolve_ref(root: dict[str, Any], ref: str) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"cannot resolve schema reference {ref!r}")
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    if not isinstance(target, dict):
        raise ValueError(f"schema reference {ref!r} does not name an object")
    return target


def signature_output_schema(signature_cls: type[Signature]) -> Mapping[str, Any]:
    """A signature's ``output_schema``: the generated one, or, for a signature its module
    runs only with the chat format, :func:`output_json_schema` of its outputs model, made
    on first use and kept on the class (equal to what the compiler would have generated:
    the compiler describes the same types)."""
    schema: Mapping[str, Any] | None = vars(signature_cls).get("output_schema")
    if schema is None:
        outputs = signature_cls.outputs
        outputs.model_rebuild()  # (forward references, e.g. of a recursive class, resolved)
        annotations = {name: info.annotation for name, info in outputs.model_fields.items()}
        schema = output_json_schema(annotations)
        signature_cls.output_schema = schema
    return schema


def response_format(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The ``response_format`` request parameter for an output schema.

    A strict ``json_schema`` format named after the schema's title; an empty schema (see
    :func:`output_json_schema`) asks for plain JSON mode, ``{"type": "json_object"}``.
    """
    if not schema:
        return {"type": "json_object"}
    return {
        "type": "json_schema",
        "json_schema": {
            "name": str(schema.get("title", OUTPUT_SCHEMA_TITLE)),
            "schema": schema,
            "strict": True,
        },
    }
