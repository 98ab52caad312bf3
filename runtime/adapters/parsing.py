"""LM replies turned into typed outputs.

Each adapter first splits a reply into raw field values (:func:`split_chat`,
:func:`split_json`); everything after that is shared: :func:`build_outputs` coerces each
value leniently towards its declared type and lets pydantic validate the whole outputs
model. How each field is coerced is planned once per signature class and cached.
"""

from __future__ import annotations

import ast
import enum
import json
import re
import types
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from ..errors import OutputParseError
from ..signature import Signature

__all__ = ["ParsePlan", "build_outputs", "parse_plan", "split_chat", "split_json"]

_MARKER = re.compile(r"\[\[\s*##\s*(\w+)\s*##\s*\]\]")
# a markdown code fence; a language tag is only taken when a line break follows it
_FENCE_BODY = r"```(?:[^\S\n]*[\w+-]*[^\S\n]*\n)?(.*?)\s*```"
_FENCE = re.compile(_FENCE_BODY, re.DOTALL)
_WHOLE_FENCE = re.compile(rf"\A{_FENCE_BODY}\Z", re.DOTALL)
_JSON = json.JSONDecoder()
_NONE_WORDS = frozenset({"None", "null"})
_TRUE_WORDS = frozenset({"true", "yes"})
_FALSE_WORDS = frozenset({"false", "no"})

Coercer = Callable[[Any], Any]


# --------------------------------------------------------------------- splitting


def split_chat(text: str, names: frozenset[str]) -> dict[str, str]:
    """The sections of a ``[[ ## name ## ]]``-delimited reply that belong to ``names``.

    Markers are found anywhere (no newline needed before one, spaces inside the brackets
    are free); a section runs to the next marker of any name and is stripped. Unknown
    names, text before the first marker and after ``[[ ## completed ## ]]`` are ignored;
    when a name repeats, its first section counts.
    """
    found: dict[str, str] = {}
    matches = list(_MARKER.finditer(text))
    for index, match in enumerate(matches):
        name = match.group(1)
        if name not in names or name in found:
            continue
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        found[name] = text[match.end() : end].strip()
    return found


def split_json(text: str) -> dict[str, Any] | None:
    """The JSON object a reply holds, or None when it holds none.

    Tried in turn: the whole reply, the content of a markdown code fence, the first
    balanced JSON object embedded in prose.
    """
    try:
        whole = json.loads(text)
    except ValueError:
        pass
    else:
        return whole if isinstance(whole, dict) else None
    for fence in _FENCE.finditer(text):
        try:
            fenced = json.loads(fence.group(1))
        except ValueError:
            continue
        if isinstance(fenced, dict):
            return fenced
    start = text.find("{")
    while start != -1:
        try:
            embedded, _ = _JSON.raw_decode(text, start)
        except ValueError:
            pass
        else:
            if isinstance(embedded, dict):
                return embedded
        start = text.find("{", start + 1)
    return None


# --------------------------------------------------------------------- coercion


def _unfence(text: str) -> str:
    match = _WHOLE_FENCE.match(text)
    return match.group(1).strip() if match else text


def _unquote(text: str) -> str:
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'`":
        return text[1:-1].strip()
    return text


def _as_text(value: Any) -> Any:
    """A ``str`` field's value: text as is, other JSON values as their text."""
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _as_data(value: Any) -> Any:
    """Structured data from text: JSON, else a Python literal, else the text itself."""
    if not isinstance(value, str):
        return value
    text = _unfence(value.strip())
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text


def _as_bool(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    word = _unquote(value.strip()).rstrip(".").lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    return word  # pydantic also knows 1/0, on/off, t/f, y/n


def _choice_coercer(
    choices: Mapping[str, Any], fallback: Coercer, exact: Mapping[str, Any]
) -> Coercer:
    """Match text against the choices: exactly first (``exact``: text members as spelled),
    then ignoring case and surrounding quotes (``choices``: keys lower-cased)."""

    def coerce(value: Any) -> Any:
        if not isinstance(value, str):
            return fallback(value)
        if value in exact:
            return exact[value]
        text = _unquote(_unfence(value.strip()))
        if text.startswith("Literal[") and text.endswith("]"):
            text = _unquote(text[len("Literal[") : -1].strip())
        if text in exact:
            return exact[text]
        key = text.lower()
        if key in choices:
            return choices[key]
        stripped = key.rstrip(".")
        if stripped in choices:
            return choices[stripped]
        return fallback(text)

    return coerce


def _literal_coercer(annotation: Any) -> Coercer:
    allowed = get_args(annotation)
    choices = {str(member).lower(): member for member in allowed}
    # non-text members (numbers, booleans) may still arrive as JSON data
    fallback = _as_data if any(not isinstance(member, str) for member in allowed) else _identity
    exact = {member: member for member in allowed if isinstance(member, str)}
    return _choice_coercer(choices, fallback, exact)


def _enum_coercer(enum_cls: type[enum.Enum]) -> Coercer:
    choices: dict[str, Any] = {}
    for member in enum_cls:  # values first: they win over a clashing name
        choices.setdefault(str(member.value).lower(), member)
    for member in enum_cls:
        choices.setdefault(member.name.lower(), member)
        choices.setdefault(f"{enum_cls.__name__}.{member.name}".lower(), member)
    exact = {member.value: member for member in enum_cls if isinstance(member.value, str)}
    return _choice_coercer(choices, _identity, exact)


def _optional_coercer(inner: Coercer) -> Coercer:
    def coerce(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip() in _NONE_WORDS):
            return None
        return inner(value)

    return coerce


def _identity(value: Any) -> Any:
    return value


def _coercer(annotation: Any) -> Coercer:
    """How a raw value (text from a chat reply, any JSON value) is prepared for ``annotation``."""
    if annotation is str:
        return _as_text
    if annotation is bool:
        return _as_bool
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum_coercer(annotation)
    origin = get_origin(annotation)
    if origin is Literal:
        return _literal_coercer(annotation)
    if origin is Union or origin is types.UnionType:
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1 and len(members) < len(get_args(annotation)):
            inner = _coercer(members[0])
            if inner is not _as_data:
                return _optional_coercer(inner)
    return _as_data


def _allows_none(annotation: Any) -> bool:
    if annotation is None or annotation is type(None):
        return True
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return any(_allows_none(arg) for arg in get_args(annotation))
    return False


# --------------------------------------------------------------------- building


class _FieldPlan(NamedTuple):
    name: str
    type_name: str
    coerce: Coercer
    #: a value must be found (no default in the outputs model, does not allow None)
    required: bool
    #: when missing and without a default: None (the type allows it)
    none_if_missing: bool


class ParsePlan(NamedTuple):
    """How to turn raw field values into one signature's outputs model."""

    outputs: type[BaseModel]
    fields: tuple[_FieldPlan, ...]
    names: frozenset[str]
    type_names: Mapping[str, str]


_PLANS: dict[type[Signature], ParsePlan] = {}


def parse_plan(signature_cls: type[Signature]) -> ParsePlan:
    """The (cached) parse plan of a signature class."""
    plan = _PLANS.get(signature_cls)
    if plan is None:
        plan = _PLANS[signature_cls] = _make_plan(signature_cls)
    return plan


def _make_plan(signature_cls: type[Signature]) -> ParsePlan:
    outputs = signature_cls.outputs
    fields = []
    for spec in signature_cls.output_fields:
        info = outputs.model_fields.get(spec.name)
        if info is None:
            raise TypeError(
                f"{signature_cls.__name__}.outputs ({outputs.__name__}) has no field {spec.name!r}"
            )
        has_default = not info.is_required()
        allows_none = _allows_none(info.annotation)
        fields.append(
            _FieldPlan(
                name=spec.name,
                type_name=spec.type_name,
                coerce=_coercer(info.annotation),
                required=not has_default and not allows_none,
                none_if_missing=not has_default and allows_none,
            )
        )
    return ParsePlan(
        outputs=outputs,
        fields=tuple(fields),
        names=frozenset(f.name for f in fields),
        type_names={f.name: f.type_name for f in fields},
    )


def build_outputs(plan: ParsePlan, found: Mapping[str, Any], raw: str) -> BaseModel:
    """Coerce and validate the raw values ``found`` in the reply ``raw``.

    A missing field that allows None becomes None; one with a default gets it.
    Raises :class:`OutputParseError` with ``structural=True`` when required fields are
    missing, ``structural=False`` when a value is invalid.
    """
    values: dict[str, Any] = {}
    missing: list[str] = []
    for field in plan.fields:
        if field.name in found:
            values[field.name] = field.coerce(found[field.name])
        elif field.required:
            missing.append(field.name)
        elif field.none_if_missing:
            values[field.name] = None
    if missing:
        names = ", ".join(f"`{name}`" for name in missing)
        first = missing[0]
        raise OutputParseError(
            f"The LM reply is missing the output field{'s' if len(missing) > 1 else ''} {names}.",
            field=first,
            expected=plan.type_names[first],
            raw=raw,
            structural=True,
        )
    try:
        return plan.outputs.model_validate(values)
    except ValidationError as error:
        raise _invalid_value(plan, error, found, raw) from error


def _invalid_value(
    plan: ParsePlan, error: ValidationError, found: Mapping[str, Any], raw: str
) -> OutputParseError:
    """The error for the first invalid field, listing every problem with the value as found."""
    problems = []
    first: str | None = None
    for detail in error.errors(include_url=False):
        location = detail["loc"]
        name = str(location[0]) if location else ""
        if first is None and name in plan.type_names:
            first = name
        inside = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in location[1:]
        ).lstrip(".")
        where = f"{inside}: " if inside else ""
        expected = plan.type_names.get(name, "?")
        got = _preview(found.get(name))
        problems.append(f"`{name}` should be {expected}: {where}{detail['msg']} (got {got})")
    return OutputParseError(
        "The LM reply has an invalid output value: " + "; ".join(problems),
        field=first,
        expected=plan.type_names.get(first, "") if first else "",
        raw=raw,
        structural=False,
    )


def _preview(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
