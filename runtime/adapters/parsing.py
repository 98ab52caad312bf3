"""LM replies turned into typed outputs, repairing sloppy replies when their intent is clear.

Each adapter first splits a reply into raw field values (:func:`split_chat`,
:func:`split_json`); everything after that is shared: :func:`build_outputs` coerces each
value towards its declared type and lets pydantic validate the whole outputs model. How
each field is coerced is planned once per signature class and cached.

A reply that is not exactly what the format asks for is repaired when only one reading
makes sense — JSON in a code fence or in prose, broken JSON syntax (through the
``json-repair`` library, only for text that has an object's braces and a key), numbers
and booleans sent as strings, a choice in another casing or inside a short sentence, a
single value for a list, unknown keys, a missing field with a default. Every repair
applied is recorded under one of the names in :data:`REPAIRS` (at most once per reply, in
the order applied), so callers can count them. When two readings are possible — a
missing required field, two different choices named, a number inside prose, a refusal
without fields — nothing is guessed: :class:`OutputParseError` names the field.

The happy path stays as cheap as it was: a well-formed reply takes the first branch of
every step (one JSON decode, one pass over the fields, one validation); scanning for
objects, ``json-repair`` and the second, deeper coercion pass only run after a cheaper
step failed. docs/parsing.md lists what is repaired and what is an error.
"""

from __future__ import annotations

import ast
import enum
import json
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from ..errors import OutputParseError
from ..signature import Signature

__all__ = [
    "BOOL_FROM_STRING",
    "CHOICE_CASE",
    "CHOICE_IN_SENTENCE",
    "DATA_FROM_STRING",
    "DEFAULT_FOR_MISSING",
    "EXTRA_KEYS_DROPPED",
    "EXTRA_SECTIONS_DROPPED",
    "FIRST_OF_SEVERAL",
    "JSON_FENCE",
    "JSON_IN_CHAT_FORMAT",
    "JSON_IN_PROSE",
    "JSON_SYNTAX",
    "MARKERS_IN_JSON_FORMAT",
    "NONE_FOR_MISSING",
    "NUMBER_FROM_STRING",
    "REPAIRS",
    "SINGLE_AS_LIST",
    "VALUE_AS_TEXT",
    "CutOffReply",
    "ParsePlan",
    "ParsedReply",
    "build_outputs",
    "parse_plan",
    "split_chat",
    "split_json",
]

# --------------------------------------------------------------------- repair names
# Where the outputs were found
#: the JSON was taken out of a markdown code fence
JSON_FENCE = "json_fence"
#: the JSON object or list was taken out of surrounding prose
JSON_IN_PROSE = "json_in_prose"
#: broken JSON syntax was repaired (trailing commas, comments, unquoted keys, single
#: quotes, Python's True/False/None, missing commas)
JSON_SYNTAX = "json_syntax"
#: the reply held several answers (JSON objects, or repeated chat sections); the first was used
FIRST_OF_SEVERAL = "first_of_several"
#: a chat-format reply was a JSON object instead of ``[[ ## field ## ]]`` sections
JSON_IN_CHAT_FORMAT = "json_in_chat_format"
#: a JSON-format reply used ``[[ ## field ## ]]`` sections instead of a JSON object
MARKERS_IN_JSON_FORMAT = "markers_in_json_format"
#: keys that are not fields were dropped (top level or inside nested objects)
EXTRA_KEYS_DROPPED = "extra_keys_dropped"
#: chat sections with names that are not output fields were ignored
EXTRA_SECTIONS_DROPPED = "extra_sections_dropped"
# Fields missing from the reply
#: a missing output field took its declared default
DEFAULT_FOR_MISSING = "default_for_missing"
#: a missing output field without a default but allowing None became None
NONE_FOR_MISSING = "none_for_missing"
# Values
#: a number field's value was a string (a JSON string, or a quoted chat value)
NUMBER_FROM_STRING = "number_from_string"
#: a bool field's value was a string (JSON), or a word other than true/false (chat)
BOOL_FROM_STRING = "bool_from_string"
#: a JSON string held the list or object a field expects
DATA_FROM_STRING = "data_from_string"
#: a text field's value was another JSON value (a number, a list ...), used as its text
VALUE_AS_TEXT = "value_as_text"
#: an enum or Literal value matched a member in another casing or wrapping: quotes, a
#: final period, ``Literal['x']``, ``Enum.NAME``, or the enum member's name
CHOICE_CASE = "choice_case"
#: an enum or Literal value was the one member named in a short sentence
CHOICE_IN_SENTENCE = "choice_in_sentence"
#: a single value was given where a list is expected
SINGLE_AS_LIST = "single_as_list"

#: every repair name, in documentation order
REPAIRS: tuple[str, ...] = (
    JSON_FENCE,
    JSON_IN_PROSE,
    JSON_SYNTAX,
    FIRST_OF_SEVERAL,
    JSON_IN_CHAT_FORMAT,
    MARKERS_IN_JSON_FORMAT,
    EXTRA_KEYS_DROPPED,
    EXTRA_SECTIONS_DROPPED,
    DEFAULT_FOR_MISSING,
    NONE_FOR_MISSING,
    NUMBER_FROM_STRING,
    BOOL_FROM_STRING,
    DATA_FROM_STRING,
    VALUE_AS_TEXT,
    CHOICE_CASE,
    CHOICE_IN_SENTENCE,
    SINGLE_AS_LIST,
)


_set_attribute = object.__setattr__


@dataclass(frozen=True, slots=True, init=False)
class ParsedReply:
    """A reply as typed outputs, with the repairs that took (names from :data:`REPAIRS`)."""

    outputs: BaseModel
    repairs: tuple[str, ...]

    def __init__(self, outputs: BaseModel, repairs: tuple[str, ...] = ()) -> None:
        # one is made per prediction: this costs half of the __init__ dataclass writes
        _set_attribute(self, "outputs", outputs)
        _set_attribute(self, "repairs", repairs)


class CutOffReply(Exception):
    """The reply's JSON object with output keys never closes: the answer was cut off.

    Raised by :func:`split_json`; the adapter turns it into a structural
    :class:`OutputParseError`. A cut-off answer is never completed by guessing.
    """


def _loads(text: str) -> Any:
    """JSON text as data (pydantic-core's decoder: several times faster than ``json.loads``).

    Raises ValueError. The standard library has the last word on text with ``\\u``
    escapes (it accepts a lone surrogate, pydantic-core does not), so the two never
    disagree about valid JSON.
    """
    try:
        return from_json(text)
    except ValueError:
        if "\\u" not in text:
            raise
    return json.loads(text)


def _note(repairs: list[str], name: str) -> None:
    if name not in repairs:
        repairs.append(name)


_MARKER = re.compile(r"\[\[\s*##\s*(\w+)\s*##\s*\]\]")
_COMPLETED = "completed"
# a markdown code fence; a language tag is only taken when a line break follows it
_FENCE_BODY = r"```(?:[^\S\n]*[\w+-]*[^\S\n]*\n)?(.*?)\s*```"
_FENCE = re.compile(_FENCE_BODY, re.DOTALL)
_WHOLE_FENCE = re.compile(rf"\A{_FENCE_BODY}\Z", re.DOTALL)
# what matters when looking for the end of an object: strings (a double-quoted one may
# run to the end of a cut-off reply; a single-quoted one must close on its line, else its
# quote is an apostrophe), comments (which may hold braces) and braces
_OBJECT_TOKEN = re.compile(
    r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)'
    r"|'[^'\\\n]*(?:\\.[^'\\\n]*)*'"
    r"|//[^\n]*|/\*.*?(?:\*/|\Z)"
    r"|[{}]",
    re.DOTALL,
)
#: objects tried (and repaired) per reply at most
_MAX_CANDIDATES = 16
#: a text with one of these (item separators, brackets) is not taken as a single list item
_NOT_SINGLE = re.compile(r"[,;\n\[\]{}]")
#: a longer text is not read as a sentence naming a choice
_SENTENCE_LIMIT = 200
_NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|none)\b|n't\b")
_NONE_WORDS = frozenset({"None", "null"})
_BOOL_WORDS = {
    **dict.fromkeys(("true", "yes", "on", "1", "t", "y"), True),
    **dict.fromkeys(("false", "no", "off", "0", "f", "n"), False),
}
_CHAT_BOOLS = frozenset({"True", "False", "true", "false"})
_MISSING: Any = object()

#: ``coerce(value, textual, repairs)``: a raw value towards a type. ``textual`` is True for
#: the text of a chat section (where numbers and booleans are written as text by design),
#: False for JSON values; repairs applied are noted in ``repairs``.
Coercer = Callable[[Any, bool, list[str]], Any]


class _Unclear(ValueError):
    """A value that reads two ways (two choices named, a negated choice)."""


# --------------------------------------------------------------------- splitting


def split_chat(text: str, names: frozenset[str], repairs: list[str]) -> dict[str, str]:
    """The sections of a ``[[ ## name ## ]]``-delimited reply that belong to ``names``.

    Markers are found anywhere (no newline needed before one, spaces inside the brackets
    are free); a section runs to the next marker of any name and is stripped. Text before
    the first marker and after ``[[ ## completed ## ]]`` is ignored; sections of other
    names are dropped (:data:`EXTRA_SECTIONS_DROPPED`); when a name repeats, its first
    section counts (:data:`FIRST_OF_SEVERAL`).
    """
    found: dict[str, str] = {}
    matches = list(_MARKER.finditer(text))
    for index, match in enumerate(matches):
        name = match.group(1)
        if name not in names:
            if name != _COMPLETED:
                _note(repairs, EXTRA_SECTIONS_DROPPED)
            continue
        if name in found:
            _note(repairs, FIRST_OF_SEVERAL)
            continue
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        found[name] = text[match.end() : end].strip()
    return found


def split_json(text: str, names: frozenset[str], repairs: list[str]) -> dict[str, Any] | None:
    """The output fields (``names``) of the JSON object a reply holds; None without one.

    A reply that is one JSON object is used as is (its other keys are dropped). A reply
    that is valid JSON but no object holds none. Otherwise the top-level ``{...}``
    regions of the reply are tried in order — strictly, then through ``json-repair``
    when the region has a ``:`` — and the first that decodes to an object with at least
    one output key is used. Raises :class:`CutOffReply` when the reply ends inside an
    object that names an output key.
    """
    try:
        data = _loads(text)
    except ValueError:
        data = _find_object(text, names, repairs)
        if data is None:
            return None
    else:
        if not isinstance(data, dict):
            return None
    found = {key: value for key, value in data.items() if key in names}
    if len(found) < len(data):
        _note(repairs, EXTRA_KEYS_DROPPED)
    return found


def _object_spans(text: str) -> list[tuple[int, int, bool]]:
    """The top-level ``{...}`` regions of ``text`` as ``(start, end, closed)``.

    Braces inside strings and comments do not count; a region still open at the end of
    the text runs to the end (``closed`` False) and is the last.
    """
    spans: list[tuple[int, int, bool]] = []
    start = text.find("{")
    while start != -1 and len(spans) < _MAX_CANDIDATES:
        depth = 0
        end = -1
        for token in _OBJECT_TOKEN.finditer(text, start):
            brace = token.group()
            if brace == "{":
                depth += 1
            elif brace == "}":
                depth -= 1
                if depth == 0:
                    end = token.end()
                    break
        if end == -1:
            spans.append((start, len(text), False))
            break
        spans.append((start, end, True))
        start = text.find("{", end)
    return spans


def _repair_json(text: str) -> Any:
    """``text`` read by json-repair (imported on first use: happy paths never need it)."""
    from json_repair import repair_json

    try:
        return repair_json(text, return_objects=True, skip_json_loads=True)
    except Exception:  # a third-party parser on arbitrary text: failing means "no data"
        return None


def _decode_object(chunk: str) -> tuple[dict[str, Any] | None, bool]:
    """A ``{...}`` region as an object, and whether its syntax had to be repaired."""
    try:
        data = _loads(chunk)
    except ValueError:
        pass
    else:
        return (data if isinstance(data, dict) else None), False
    if ":" not in chunk:  # no key anywhere: prose in braces, not an object
        return None, False
    repaired = _repair_json(chunk)
    return (repaired if isinstance(repaired, dict) else None), True


def _find_object(text: str, names: frozenset[str], repairs: list[str]) -> dict[str, Any] | None:
    """The first top-level object of ``text`` with an output key (see :func:`split_json`)."""
    spans = _object_spans(text)
    for index, (start, end, closed) in enumerate(spans):
        chunk = text[start:end]
        if not closed:
            if any(f'"{name}"' in chunk or f"'{name}'" in chunk for name in names):
                raise CutOffReply(chunk)
            return None
        data, repaired = _decode_object(chunk)
        if data is None or names.isdisjoint(data):
            continue
        # the other answers after this one (objects with an output key)
        answers = [(start, end)]
        for later_start, later_end, later_closed in spans[index + 1 :]:
            other = _decode_object(text[later_start:later_end])[0] if later_closed else None
            if other is not None and not names.isdisjoint(other):
                answers.append((later_start, later_end))
        fences = [
            fence.span()
            for fence in _FENCE.finditer(text)
            if any(fence.start(1) <= s and e <= fence.end(1) for s, e in answers)
        ]
        if any(fs <= start and end <= fe for fs, fe in fences):
            _note(repairs, JSON_FENCE)
        if _has_prose(text, answers + fences):
            _note(repairs, JSON_IN_PROSE)
        if repaired:
            _note(repairs, JSON_SYNTAX)
        if len(answers) > 1:
            _note(repairs, FIRST_OF_SEVERAL)
        return data
    return None


def _has_prose(text: str, covered: list[tuple[int, int]]) -> bool:
    """Whether ``text`` has anything but white space outside the ``covered`` ranges."""
    position = 0
    for start, end in sorted(covered):
        if start > position and not text[position:start].isspace():
            return True
        position = max(position, end)
    return position < len(text) and not text[position:].isspace()


# --------------------------------------------------------------------- coercion


def _unfence(text: str) -> str:
    match = _WHOLE_FENCE.match(text)
    return match.group(1).strip() if match else text


def _unquote(text: str) -> str:
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'`":
        return text[1:-1].strip()
    return text


def _literal(text: str) -> Any:
    """A Python literal, or ``_MISSING``."""
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _MISSING


def _identity(value: Any, textual: bool, repairs: list[str]) -> Any:
    return value


def _as_text(value: Any, textual: bool, repairs: list[str]) -> Any:
    """A ``str`` field's value: text as is, other JSON values as their text."""
    if isinstance(value, str) or value is None:
        return value
    _note(repairs, VALUE_AS_TEXT)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _as_number(value: Any, textual: bool, repairs: list[str]) -> Any:
    """An ``int`` or ``float`` field's value; text is read by pydantic (one number, no prose)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    unquoted = _unquote(text)
    if not textual or unquoted is not text:
        _note(repairs, NUMBER_FROM_STRING)
    return unquoted


def _as_bool(value: Any, textual: bool, repairs: list[str]) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    result = _BOOL_WORDS.get(_unquote(text).rstrip(".").lower())
    if result is None:
        return text
    if not (textual and text in _CHAT_BOOLS):
        _note(repairs, BOOL_FROM_STRING)
    return result


def _as_data(value: Any, textual: bool, repairs: list[str]) -> Any:
    """Data from text (other types, unions): JSON, else a Python literal, else the text."""
    if not isinstance(value, str):
        return value
    text = _unfence(value.strip())
    try:
        data = _loads(text)
    except ValueError:
        data = _literal(text)
        if data is _MISSING:
            return text
    if not textual and not isinstance(data, str):
        _note(repairs, _from_string(data))
    return data


def _from_string(data: Any) -> str:
    if isinstance(data, bool):
        return BOOL_FROM_STRING
    if isinstance(data, int | float):
        return NUMBER_FROM_STRING
    return DATA_FROM_STRING


def _decode_container(text: str, repairs: list[str]) -> Any:
    """A list or object written as text: JSON or a Python literal, fenced, with broken
    syntax (repaired when the text is enclosed in brackets), or inside prose; else the
    stripped text."""
    text = text.strip()
    try:
        return _loads(text)
    except ValueError:
        pass
    unfenced = _unfence(text)
    if unfenced is not text:
        _note(repairs, JSON_FENCE)
        text = unfenced
        try:
            return _loads(text)
        except ValueError:
            pass
    data = _literal(text)
    if data is not _MISSING:
        return data
    if text[:1] + text[-1:] in ("{}", "[]") and (text[0] == "[" or ":" in text):
        data = _repair_json(text)
        if isinstance(data, dict if text[0] == "{" else list):
            _note(repairs, JSON_SYNTAX)
            return data
    opens = [i for i in (text.find("["), text.find("{")) if i != -1]
    if opens:
        first = min(opens)
        last = max(text.rfind("]"), text.rfind("}"))
        if last > first:
            chunk = text[first : last + 1]
            try:
                data = _loads(chunk)
            except ValueError:
                data = _literal(chunk)
            if isinstance(data, dict | list):
                _note(repairs, JSON_IN_PROSE)
                return data
    return text


def _wrap_single(value: Any, repairs: list[str], item: Coercer | None = None) -> Any:
    """A single value where a list is expected, as a one-item list.

    Text that could hold several items (a comma, semicolon or line break) or a broken
    list (brackets) is left alone.
    """
    if value is None or isinstance(value, list | tuple | set | frozenset):
        return value
    if isinstance(value, str) and _NOT_SINGLE.search(value):
        return value
    _note(repairs, SINGLE_AS_LIST)
    return [item(value, False, repairs) if item is not None else value]


def _container_coercer(listish: bool) -> Coercer:
    """Lists, tuples, sets, dicts and models: decode text, wrap a single value for a list."""

    def coerce(value: Any, textual: bool, repairs: list[str]) -> Any:
        if isinstance(value, str):
            found: list[str] = []
            decoded = _decode_container(value, found)
            if not textual and not isinstance(decoded, str):
                _note(repairs, _from_string(decoded))
            for name in found:
                _note(repairs, name)
            value = decoded
        return _wrap_single(value, repairs) if listish else value

    return coerce


def _choice_coercer(
    choices: Mapping[str, Any],
    exact: Mapping[str, Any],
    native: Mapping[str, Any],
    fallback: Coercer,
) -> Coercer:
    """Match text against the members of an enum or Literal.

    ``exact``: text members as spelled; ``native``: other members by their text, as a
    chat reply writes them; ``choices``: every member by its lower-cased spellings.
    Tried in turn: as spelled, as written in chat, ignoring case and wrapping, then the
    one member named in a short sentence (whole words; members only named inside a
    longer member do not count).
    """
    keys = sorted((key for key in choices if any(c.isalpha() for c in key)), key=len, reverse=True)
    words = (
        re.compile(r"(?<!\w)(" + "|".join(re.escape(key) for key in keys) + r")(?!\w)")
        if keys
        else None
    )

    def coerce(value: Any, textual: bool, repairs: list[str]) -> Any:
        if not isinstance(value, str):
            return fallback(value, textual, repairs)
        member = exact.get(value, _MISSING)
        if member is not _MISSING:
            return member
        text = value.strip()
        if textual:
            member = native.get(text, _MISSING)
            if member is not _MISSING:
                return member
        text = _unquote(_unfence(text).rstrip(".").rstrip())
        if text.startswith("Literal[") and text.endswith("]"):
            text = _unquote(text[len("Literal[") : -1].strip())
        key = text.lower()
        member = exact.get(text, choices.get(key, _MISSING))
        if member is not _MISSING:
            _note(repairs, CHOICE_CASE)
            return member
        if words is not None and len(text) <= _SENTENCE_LIMIT:
            named = {choices[m.group(1)]: m.group(1) for m in words.finditer(key)}
            if len(named) > 1:
                raise _Unclear(f"the text names more than one choice ({', '.join(named.values())})")
            if named:
                negations = {m.group() for m in _NEGATION.finditer(key)} - choices.keys()
                if negations:
                    raise _Unclear(f"the text negates a choice ({', '.join(sorted(negations))})")
                _note(repairs, CHOICE_IN_SENTENCE)
                return next(iter(named))
        return fallback(text, textual, repairs)

    return coerce


def _literal_coercer(annotation: Any) -> Coercer:
    allowed = get_args(annotation)
    choices = {str(member).lower(): member for member in allowed}
    # non-text members (numbers, booleans) may still arrive as JSON data
    fallback = _as_data if any(not isinstance(member, str) for member in allowed) else _identity
    exact = {member: member for member in allowed if isinstance(member, str)}
    native = {str(member): member for member in allowed if not isinstance(member, str)}
    return _choice_coercer(choices, exact, native, fallback)


def _enum_coercer(enum_cls: type[enum.Enum]) -> Coercer:
    choices: dict[str, Any] = {}
    for member in enum_cls:  # values first: they win over a clashing name
        choices.setdefault(str(member.value).lower(), member)
    for member in enum_cls:
        choices.setdefault(member.name.lower(), member)
        choices.setdefault(f"{enum_cls.__name__}.{member.name}".lower(), member)
    exact = {member.value: member for member in enum_cls if isinstance(member.value, str)}
    native = {str(member.value): member for member in enum_cls if not isinstance(member.value, str)}
    return _choice_coercer(choices, exact, native, _identity)


def _optional_coercer(inner: Coercer) -> Coercer:
    def coerce(value: Any, textual: bool, repairs: list[str]) -> Any:
        if value is None or (textual and isinstance(value, str) and value.strip() in _NONE_WORDS):
            return None
        return inner(value, textual, repairs)

    return coerce


def _is_listish(origin: Any, args: tuple[Any, ...]) -> bool:
    return origin in (list, set, frozenset) or (origin is tuple and args[-1:] == (Ellipsis,))


def _coercer(annotation: Any) -> Coercer:
    """How a raw value (text from a chat reply, any JSON value) is prepared for ``annotation``."""
    if annotation is str:
        return _as_text
    if annotation is bool:
        return _as_bool
    if annotation is int or annotation is float:
        return _as_number
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return _enum_coercer(annotation)
        if issubclass(annotation, BaseModel):
            return _container_coercer(listish=False)
    origin = get_origin(annotation)
    if origin is Annotated:
        return _coercer(get_args(annotation)[0])
    if origin is Literal:
        return _literal_coercer(annotation)
    if origin is Union or origin is types.UnionType:
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1 and len(members) < len(get_args(annotation)):
            return _optional_coercer(_coercer(members[0]))
    if origin in (list, set, frozenset, tuple, dict):
        return _container_coercer(listish=_is_listish(origin, get_args(annotation)))
    return _as_data


def _allows_none(annotation: Any) -> bool:
    if annotation is None or annotation is type(None):
        return True
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return any(_allows_none(arg) for arg in get_args(annotation))
    return False


# ------------------------------------------------------ deep coercion (second pass)
# Values inside lists, dicts and models are left to pydantic on the first pass. Only
# when validation fails are they coerced too: choices inside models and lists, unknown
# keys of nested objects, a single value for a nested list. Numbers and booleans inside
# are left to pydantic's lax mode throughout (it reads "3" and "true" itself).

_DEEP: dict[Any, Coercer | None] = {}
_MODEL_FIELDS: dict[type[BaseModel], dict[str, Coercer | None]] = {}


def _deep_coercer(annotation: Any) -> Coercer | None:
    """The second-pass coercer of values of ``annotation`` (None: nothing to do)."""
    try:
        return _DEEP[annotation]
    except KeyError:
        pass
    except TypeError:  # unhashable annotation
        return None
    coercer = _DEEP[annotation] = _make_deep(annotation)
    return coercer


def _make_deep(annotation: Any) -> Coercer | None:
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return _enum_coercer(annotation)
        if issubclass(annotation, BaseModel):
            return _model_deep(annotation)
        return None
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return _deep_coercer(args[0])
    if origin is Literal:
        return _literal_coercer(annotation)
    if _is_listish(origin, args):
        return _list_deep(_deep_coercer(args[0]) if args else None)
    if origin is tuple:
        return _tuple_deep(tuple(_deep_coercer(arg) for arg in args))
    if origin is dict and len(args) == 2:
        return _dict_deep(_deep_coercer(args[1]))
    if origin is Union or origin is types.UnionType:
        members = [arg for arg in args if arg is not type(None)]
        if len(members) == 1:  # every deep coercer passes None through
            return _deep_coercer(members[0])
    return None


def _list_deep(item: Coercer | None) -> Coercer:
    def coerce(value: Any, textual: bool, repairs: list[str]) -> Any:
        if isinstance(value, list | tuple):
            return value if item is None else [item(v, False, repairs) for v in value]
        return _wrap_single(value, repairs, item)

    return coerce


def _tuple_deep(items: tuple[Coercer | None, ...]) -> Coercer | None:
    if all(item is None for item in items):
        return None

    def coerce(value: Any, textual: bool, repairs: list[str]) -> Any:
        if not isinstance(value, list | tuple) or len(value) != len(items):
            return value
        return [v if c is None else c(v, False, repairs) for c, v in zip(items, value, strict=True)]

    return coerce


def _dict_deep(item: Coercer | None) -> Coercer | None:
    if item is None:
        return None

    def coerce(value: Any, textual: bool, repairs: list[str]) -> Any:
        if not isinstance(value, dict):
            return value
        return {key: item(v, False, repairs) for key, v in value.items()}

    return coerce


def _model_deep(model: type[BaseModel]) -> Coercer:
    """Drop unknown keys (unless the model keeps extras) and coerce the known ones."""
    keep_extra = model.model_config.get("extra") == "allow"

    def coerce(value: Any, textual: bool, repairs: list[str]) -> Any:
        if not isinstance(value, dict):
            return value
        fields = _model_field_coercers(model)
        result: dict[str, Any] = {}
        for key, item in value.items():
            coercer = fields.get(key, _MISSING)
            if coercer is _MISSING:
                if keep_extra:
                    result[key] = item
                else:
                    _note(repairs, EXTRA_KEYS_DROPPED)
            else:
                result[key] = item if coercer is None else coercer(item, False, repairs)
        return result

    return coerce


def _model_field_coercers(model: type[BaseModel]) -> dict[str, Coercer | None]:
    # built on first use, not when the model's coercer is made: recursive models refer
    # to themselves through their fields
    fields = _MODEL_FIELDS.get(model)
    if fields is None:
        fields = {}
        for name, info in model.model_fields.items():
            coercer = _deep_coercer(info.annotation)
            fields[name] = coercer
            if info.alias:
                fields[info.alias] = coercer
        _MODEL_FIELDS[model] = fields
    return fields


# --------------------------------------------------------------------- building


class _FieldPlan(NamedTuple):
    name: str
    type_name: str
    coerce: Coercer
    #: the second-pass coercer (lists, dicts, models), None for scalars
    deep: Coercer | None
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
        deep = _deep_coercer(info.annotation)
        if deep is not None and (
            (isinstance(info.annotation, type) and issubclass(info.annotation, enum.Enum))
            or get_origin(info.annotation) is Literal
        ):
            deep = None  # the first pass already matched the choice
        fields.append(
            _FieldPlan(
                name=spec.name,
                type_name=spec.type_name,
                coerce=_coercer(info.annotation),
                deep=deep,
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


def build_outputs(
    plan: ParsePlan,
    found: Mapping[str, Any],
    raw: str,
    repairs: list[str],
    textual: bool,
) -> BaseModel:
    """Coerce and validate the raw values ``found`` in the reply ``raw``.

    ``textual``: the values are chat sections (text by design), not JSON values. A
    missing field that allows None becomes None; one with a default gets it. Repairs
    are noted in ``repairs``. Raises :class:`OutputParseError` with ``structural=True``
    when required fields are missing, ``structural=False`` when a value is invalid or
    unclear.
    """
    values: dict[str, Any] = {}
    missing: list[str] = []
    for field in plan.fields:
        value = found.get(field.name, _MISSING)
        if value is not _MISSING:
            try:
                values[field.name] = field.coerce(value, textual, repairs)
            except _Unclear as unclear:
                raise _unclear_value(plan, field.name, unclear, found, raw) from None
        elif field.required:
            missing.append(field.name)
        elif field.none_if_missing:
            _note(repairs, NONE_FOR_MISSING)
            values[field.name] = None
        else:
            _note(repairs, DEFAULT_FOR_MISSING)
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
        second = _deep_pass(plan, values, error, found, raw)
        if second is None:
            raise _invalid_value(plan, error, found, raw) from error
        deeper, more = second
        try:
            outputs = plan.outputs.model_validate(deeper)
        except ValidationError as still:
            raise _invalid_value(plan, still, found, raw) from still
        for name in more:
            _note(repairs, name)
        return outputs


def _deep_pass(
    plan: ParsePlan,
    values: dict[str, Any],
    error: ValidationError,
    found: Mapping[str, Any],
    raw: str,
) -> tuple[dict[str, Any], list[str]] | None:
    """The values with the invalid lists, dicts and models coerced inside, and the
    repairs that took; None when that changes nothing."""
    invalid = {str(detail["loc"][0]) for detail in error.errors() if detail["loc"]}
    repairs: list[str] = []
    deeper = dict(values)
    for field in plan.fields:
        if field.deep is not None and field.name in invalid and field.name in values:
            try:
                deeper[field.name] = field.deep(values[field.name], False, repairs)
            except _Unclear as unclear:
                raise _unclear_value(plan, field.name, unclear, found, raw) from None
    return (deeper, repairs) if repairs else None


def _unclear_value(
    plan: ParsePlan, name: str, unclear: _Unclear, found: Mapping[str, Any], raw: str
) -> OutputParseError:
    expected = plan.type_names[name]
    return OutputParseError(
        f"The LM reply has an unclear output value: `{name}` should be {expected}: "
        f"{unclear} (got {_preview(found.get(name))})",
        field=name,
        expected=expected,
        raw=raw,
        structural=False,
    )


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
