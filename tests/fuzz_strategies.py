"""Hypothesis strategies that produce `.sig` sources, and the "never crashes" property.

Shared by ``tests/test_property.py`` (1000 examples per run) and
``bench/fuzz_compiler.py`` (as many as you like). Every strategy produces a
:data:`SourceFiles` mapping -- relative ``.sig`` path -> content, ``bytes`` being written
as they are -- and :func:`compile_and_check` compiles it and asserts the property:

    ``compile_sources`` never raises; it ends either with generated files (every module
    valid Python with the sigforge header) or with at least one well-formed error
    diagnostic and no files.

The strategies, from the least to the most structured:

- :func:`text_files`: arbitrary unicode text (control characters included);
- :func:`byte_files`: arbitrary bytes and damaged encodings (invalid UTF-8 must be E001);
- :func:`mutated_files`: a real example file (with the files it imports from) or a seed
  file, after random edits (delete or duplicate a span, insert a token of the language,
  swap two lines, truncate);
- :func:`generated_files`: programs generated from the grammar, from well-formed ones that
  should compile to deliberately odd ones (reserved names, unknown types, bad values);
- :func:`multi_file_programs`: 2-3 generated files importing names from each other.

The generator covers the whole language: signatures, predictors, ``enum``, ``class``,
``tool`` and ``from ... import`` declarations, and ``tuple``/``date``/``datetime``/``Image``
types besides the original ones.
"""

from __future__ import annotations

import json
import keyword
import re
import string
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from hypothesis import strategies as st

from sigforge.codegen.diagnostics import Diagnostic
from sigforge.codegen.pipeline import CompileResult, compile_sources

ROOT = Path(__file__).resolve().parents[1]

#: relative path of a `.sig` file below the source folder -> its content
SourceFiles = dict[str, str | bytes]

T = TypeVar("T")

# ------------------------------------------------------------------ corpus
#
# A "project" is a set of files compiled together: the example files of one folder (their
# imports resolve), or the hand-written seed project below.


def _read_projects() -> tuple[dict[str, str], ...]:
    """The repository's example files, one project per folder, read at import time."""
    paths = sorted({*ROOT.glob("signatures/*.sig"), *ROOT.glob("tests/fixtures/**/*.sig")})
    projects: dict[Path, dict[str, str]] = {}
    for path in paths:
        text = path.read_bytes().decode("utf-8", errors="replace")
        projects.setdefault(path.parent, {})[path.name] = text
    return tuple(projects.values())


#: The example files of the repository: ``signatures/*.sig`` and ``tests/fixtures/**/*.sig``.
EXAMPLE_PROJECTS: tuple[dict[str, str], ...] = _read_projects()

#: Hand-written files with every newer construct (a subpackage, a dotted import, enum wire
#: values, a recursive class, tuples, dates, images, a tool, prefix and format), so that
#: mutations hit them whatever the example files contain.
SEED_PROJECT: dict[str, str] = {
    "pkg/shared.sig": '''"""Shared types for the fuzzing seeds."""

enum Severity {
    """How bad it is."""
    low "Can wait"
    very_high = "very high" "Drop everything"
    unknown = ""
}

class Note {
    """A note, possibly answering other notes."""
    text: str (min_length=1, max_length=2000) "The text, with \\"quotes\\" and {{ braces }}"
    written: datetime
    replies: list[Note] = []
    pinned: bool = False
}
''',
    "tickets.sig": '''"""Support tickets: every newer construct once."""
from pkg.shared import Note, Severity

class Ticket {
    title: str (max_length=80, prefix="Title:") "One line"
    tags: tuple[str, ...] = []
    scores: tuple[float, int] "Two numbers"
    opened: datetime
    due: date | None = None
    severity: Severity = "low"
    notes: list[Note] (max_items=5) = []
}

tool search(query: str "What to look for", k: int (ge=1) = 3) -> list[str] "Search the corpus"

signature Triage {
    """
    Triage a ticket. Quote it as \\"\\"\\"text\\"\\"\\" if needed; {% raw %} stays text.
    """
    in  ticket: Ticket
    in  screenshot: Image | None "Attached picture" = None
    in  language: Literal["en", "de", 1, True] = "en"
    out severity: Severity
    out answer: str (format="markdown") "The reply"
    out confidence: float (ge=0.0, le=1.0)
    out follow_up: dict[str, list[int] | None] (max_items=3)
}

predictor Triager = chain_of_thought(Triage, adapter="json")
predictor QuickTriage = predict(Triage)
''',
}

PROJECTS: tuple[dict[str, str], ...] = (*EXAMPLE_PROJECTS, SEED_PROJECT)
#: Every file of every project, to be mutated: (project index, relative path).
_TARGETS: tuple[tuple[int, str], ...] = tuple(
    (index, rel) for index, project in enumerate(PROJECTS) for rel in sorted(project)
)
ALL_TEXTS: tuple[str, ...] = tuple(PROJECTS[i][rel] for i, rel in _TARGETS)

# ------------------------------------------------------------------ vocabulary

LANGUAGE_KEYWORDS = (
    "signature", "class", "enum", "tool", "predictor", "from", "import", "in", "out",
)  # fmt: skip
PUNCTUATION = ("{", "}", "(", ")", "[", "]", ":", ",", "=", "|", "->", "...", '"""', '"', "#", ".")
TYPE_WORDS = (
    "str", "int", "float", "bool", "list", "dict", "tuple", "Literal", "None",
    "date", "datetime", "Image", "True", "False",
)  # fmt: skip
#: Numbers the grammar accepts, including ones Python cannot represent exactly or at all.
NUMBERS = (
    "0", "1", "-1", "+3", "0.5", ".5", "1.", "-0", "1e-3", "1e999", "-1e999", "1e-999",
    "99999999999999999999999999", "00", "1e400", "-0.0",
)  # fmt: skip
#: Numbers that do not lex as one number, or have more digits than `int()` converts.
ODD_NUMBERS = ("9" * 5000, "1_000", "0x10", "1e", "--1", "1.2.3", "nan", "inf")
UNICODE_NAMES = (
    "café", "名前", "Ωmega", "ñandú", "x\u200by", "\U0001d518nicode", "ﬁeld", "\uff21", "é",
)  # fmt: skip
#: Names that break or shadow something in Python, pydantic or the generated module.
AWKWARD_NAMES = (
    *keyword.kwlist,
    *keyword.softkwlist,
    "list", "str", "int", "type", "id", "object", "print", "len", "property", "super",
    "model_config", "model_fields", "model_dump", "model_x", "schema", "json", "copy",
    "dict", "validate", "construct", "fields", "parse_obj", "self", "cls", "completed",
    "reasoning", "_", "_private", "__init__", "__class__", "__dict__", "_Sig",
    "BaseModel", "ConfigDict", "Field", "Literal", "Signature", "FieldSpec",
    "AdapterPrompts", "Predict", "ChainOfThought", "check_generated_version",
    "annotations", "Image", "date", "datetime", "Enum", "Any", "Optional",
    "QAInputs", "QAOutputs", "QAWithReasoning", "Protocol", "StrEnum", "ToolSpec", "Tool",
    "out", "name", "value", "mro", "upper", "title", "format", "items", "keys",
)  # fmt: skip
#: Everything a random edit may insert.
VOCABULARY = (
    *LANGUAGE_KEYWORDS, *PUNCTUATION, *TYPE_WORDS, *NUMBERS, *ODD_NUMBERS, *UNICODE_NAMES,
    *AWKWARD_NAMES,
    "predict", "chain_of_thought", "react", "adapter", '"json"', '"chat"', "ge", "le",
    "min_length", "max_items", "pattern", "\n", "\t", " ", "\\", '"\\q"', "\r\n", "\x00",
)  # fmt: skip
#: Texts for descriptions and docstrings that tend to break quoting or templating.
TRICKY_TEXTS = (
    "",
    'He said "hi"',
    '"""',
    "'''",
    '\\"""',
    "back\\slash",
    "ends with a backslash \\",
    "\\n is not a newline",
    "{{ user_input }}",
    "{% if x %}y{% endif %}",
    "{# comment #}",
    "}}{{",
    "{0} %s %(name)s ${x}",
    "line one\nline two",
    "tab\there",
    "crlf\r\nline",
    "nul \x00 byte",
    "escape \x1b[31m red",
    "\u2028 line separator \u2029",
    "\ufeff BOM",
    "émoji 🎉 and 名前",
    "# not a comment",
    "--> <!-- -->",
    "\\u0000",
)

# ------------------------------------------------------------------ small helpers


def weighted(*options: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """One of the strategies, chosen with the given integer weights."""
    choices = tuple(strategy for weight, strategy in options for _ in range(weight))
    return st.sampled_from(choices).flatmap(lambda strategy: strategy)


def _choice(draw: st.DrawFn, items: Sequence[T]) -> T:
    """One of ``items`` (shrinks towards the first); cheaper than a new ``sampled_from``."""
    return items[draw(st.integers(0, len(items) - 1))]


def sig_string(text: str, *, broken: bool = False) -> str:
    """``text`` as a one-line `.sig` string literal (JSON escapes); ``broken`` damages it."""
    if broken:
        return '"' + text.replace('"', '\\"') + '\\q"'
    return json.dumps(text, ensure_ascii=False)


def sig_docstring(text: str, *, raw: bool = False) -> str:
    """``text`` as a `.sig` triple-quoted string; ``raw`` leaves quotes and backslashes alone."""
    if raw:
        return f'"""{text}"""'
    return '"""' + text.replace("\\", "\\\\").replace('"', '\\"') + '"""'


def _long_text(length: int) -> str:
    return ("very long text, " * (length // 16 + 1))[:length]


_IDENT_REST = string.ascii_letters + string.digits + "_"

plain_names: st.SearchStrategy[str] = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(string.ascii_letters),
    st.text(alphabet=_IDENT_REST, max_size=10),
)
capital_names: st.SearchStrategy[str] = plain_names.map(lambda n: n[0].upper() + n[1:])

#: Text for descriptions and docstrings: tricky, arbitrary, plain, or very long.
prose: st.SearchStrategy[str] = weighted(
    (4, st.sampled_from(TRICKY_TEXTS)),
    (3, st.text(max_size=30)),
    (3, st.text(alphabet=string.ascii_letters + " .,'", max_size=60)),
    (1, st.integers(min_value=200, max_value=4000).map(_long_text)),
)
sig_strings: st.SearchStrategy[str] = prose.map(sig_string)
broken_strings: st.SearchStrategy[str] = prose.map(lambda text: sig_string(text, broken=True))

_CONSTANT_WORDS = ("True", "False", "None", "nan", "inf", "null", "true", "x")


def _value_lists(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]")


_SCALARS = (
    (3, sig_strings),
    (3, st.sampled_from(NUMBERS)),
    (2, st.floats().map(repr)),
    (2, st.integers().map(str)),
    (2, st.sampled_from(_CONSTANT_WORDS)),
    (1, plain_names),
)
#: A default, constraint or option value the grammar accepts: string, number, constant,
#: name, or a list of them; any of them may not fit where it is used.
values: st.SearchStrategy[str] = st.recursive(weighted(*_SCALARS), _value_lists, max_leaves=10)
#: The same, plus strings with bad escapes and numbers that do not lex.
broken_values: st.SearchStrategy[str] = st.recursive(
    weighted(*_SCALARS, (1, broken_strings), (1, st.sampled_from(ODD_NUMBERS))),
    _value_lists,
    max_leaves=10,
)
literal_values: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(('"a"', '"b"', "1", "-2", "0", "-0", "True", "False", "None", "1.5", "x")),
    st.text(max_size=8).map(sig_string),
    st.integers().map(str),
)

# ------------------------------------------------------------------ (a) text and (b) bytes

_STRUCTURAL = '{}()[]:,=|->."#\\ \n\tinoutsignaturepredictorclassenumtool'


def text_files() -> st.SearchStrategy[SourceFiles]:
    """One file of arbitrary text (no surrogates: files are UTF-8)."""
    any_text = st.text(alphabet=st.characters(codec="utf-8"))
    structural = st.text(alphabet=_STRUCTURAL)
    return st.one_of(any_text, structural).map(lambda text: {"m.sig": text})


def _damage_bytes(data: bytes, position: int, junk: bytes) -> bytes:
    position = min(position, len(data))
    return data[:position] + junk + data[position:]


_BAD_UTF8 = (
    b"\xff",
    b"\xfe",
    b"\xc3",  # a lead byte without its continuation
    b"\xe2\x82",
    b"\xed\xa0\x80",  # an encoded surrogate
    b"\xc0\xaf",  # overlong
    b"\x80",
    b"\xf8\x88\x80\x80\x80",
)


def byte_files() -> st.SearchStrategy[SourceFiles]:
    """One file of raw bytes: random, an example with bytes that break UTF-8, or re-encoded."""
    damaged = st.builds(
        _damage_bytes,
        st.sampled_from(ALL_TEXTS).map(lambda t: t.encode("utf-8")),
        st.integers(min_value=0, max_value=5000),
        st.sampled_from(_BAD_UTF8),
    )
    other_encodings = st.builds(
        lambda text, codec: text.encode(codec, errors="replace"),
        st.sampled_from(ALL_TEXTS),
        st.sampled_from(("utf-16", "utf-32", "latin-1", "cp1252", "utf-8-sig")),
    )
    return st.one_of(st.binary(max_size=400), damaged, other_encodings).map(
        lambda data: {"m.sig": data}
    )


# ------------------------------------------------------------------ (c) mutations

_INSERTABLE = st.one_of(st.sampled_from(VOCABULARY), plain_names)


def _delete(draw: st.DrawFn, text: str) -> str:
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, min(len(text), start + 40)))
    return text[:start] + text[end:]


def _duplicate(draw: st.DrawFn, text: str) -> str:
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, min(len(text), start + 80)))
    return text[:end] + text[start:end] + text[end:]


def _insert(draw: st.DrawFn, text: str) -> str:
    at = draw(st.integers(0, len(text)))
    pad = _choice(draw, ("", " ", "\n"))
    return text[:at] + pad + draw(_INSERTABLE) + pad + text[at:]


def _swap_lines(draw: st.DrawFn, text: str) -> str:
    lines = text.split("\n")
    i = draw(st.integers(0, len(lines) - 1))
    j = draw(st.integers(0, len(lines) - 1))
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def _truncate(draw: st.DrawFn, text: str) -> str:
    return text[: draw(st.integers(0, len(text)))]


_EDITS: tuple[Callable[[st.DrawFn, str], str], ...] = (
    _delete,
    _duplicate,
    _insert,
    _insert,
    _swap_lines,
    _truncate,
)


def _mutate(draw: st.DrawFn, text: str) -> str:
    for _ in range(draw(st.integers(1, 5))):
        text = _choice(draw, _EDITS)(draw, text)
    return text


_IMPORT_LINE = re.compile(r"^[ \t]*from[ \t]+([A-Za-z_][A-Za-z0-9_.]*)[ \t]+import", re.MULTILINE)


def with_imports(project: dict[str, str], rel: str) -> dict[str, str]:
    """``rel`` and the files of ``project`` it imports from, transitively."""
    found: dict[str, str] = {}
    todo = [rel]
    while todo:
        name = todo.pop()
        if name in found or name not in project:
            continue
        found[name] = project[name]
        todo += [module.replace(".", "/") + ".sig" for module in _IMPORT_LINE.findall(found[name])]
    return found


@st.composite
def mutated_files(draw: st.DrawFn) -> SourceFiles:
    """An example file (with the files it imports from) after 1-5 random edits.

    Sometimes one of the imported files is edited too.
    """
    index, rel = _choice(draw, _TARGETS)
    files: SourceFiles = dict(with_imports(PROJECTS[index], rel))
    edited = [rel]
    if len(files) > 1 and draw(st.integers(0, 3)) == 0:
        edited.append(_choice(draw, sorted(files)))
    for name in edited:
        files[name] = _mutate(draw, str(files[name]))
    return files


# ------------------------------------------------------------------ (d) generated programs
#
# Every program is generated at a "chaos" level:
#   0: programs that should compile: plain distinct names, known types, fitting constraints;
#   1: still syntactically valid, but awkward and duplicate names, unknown and mis-applied
#      types, random constraints, values and defaults: food for the semantic checks;
#   2: the same with odd layout (no newlines, tabs, form feeds, comments, CRLF);
#   3: also syntax errors: unicode names, bad string escapes, unlexable numbers, `list[]`.
# Independently, a "modern" program may use the newer constructs (enum, class, tool,
# from-import, `tuple[T, ...]`, date, datetime, Image).


class _Scope:
    """What one file declares so far, for references (types, signatures, tools)."""

    def __init__(self, chaos: int, imported: Sequence[str], *, modern: bool) -> None:
        self.chaos = chaos
        self.broken = chaos == 3  # may contain syntax errors
        self.modern = modern
        self.pool: list[str] = []  # names already used, to provoke duplicates
        self.types: list[str] = list(imported)  # enum / class names usable as types
        self.signatures: list[str] = []
        self.tools: list[str] = []
        self.exported: list[str] = []  # declaration names another file may import
        self.enum_values: list[str] = []  # enum member names and wire values, as .sig strings


_GENERATED_SUFFIXES = ("", "Inputs", "Outputs", "WithReasoning", "WithReasoningOutputs")


def _name(draw: st.DrawFn, scope: _Scope, *, capital: bool = False) -> str:
    roll = draw(st.integers(0, 99)) if scope.chaos else 99
    if roll < 8 * scope.chaos and scope.pool:
        # reuse a name, or make one that collides with a generated class name
        name = _choice(draw, scope.pool) + _choice(draw, _GENERATED_SUFFIXES)
    elif roll < 16 * scope.chaos:
        name = _choice(draw, AWKWARD_NAMES)
    elif roll < 60 and scope.broken:
        name = _choice(draw, UNICODE_NAMES)
    else:
        name = draw(capital_names if capital else plain_names)
        if scope.chaos == 0 and (name in scope.pool or name in AWKWARD_NAMES):
            name += f"_{len(scope.pool)}"
    scope.pool.append(name)
    return name


_UNKNOWN_TYPES = (
    "string", "List", "Optional", "Any", "bytes", "object", "Dict", "none", "Self",
    "Literal", "list", "tuple", "dict", "None", "true",
)  # fmt: skip


def _leaf_type(draw: st.DrawFn, scope: _Scope) -> str:
    roll = draw(st.integers(0, 9))
    if roll < 8 or scope.chaos == 0:
        newer = ["date", "datetime", "Image"] if scope.modern else ["None"]
        return _choice(draw, ["str", "int", "float", "bool", *newer, *scope.types])
    if roll == 8:
        return _choice(draw, _UNKNOWN_TYPES)
    return draw(plain_names)


def _type(draw: st.DrawFn, scope: _Scope, depth: int = 3) -> str:
    """A random type expression nested up to ``depth`` levels (all well-formed at chaos 0)."""
    leaf = _leaf_type(draw, scope)
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        return leaf

    def sub() -> str:
        return _type(draw, scope, depth - 1)

    def several(low: int, high: int) -> list[str]:
        return [sub() for _ in range(draw(st.integers(low, high)))]

    shape = draw(st.integers(0, 7 if scope.chaos == 0 else 11 if scope.broken else 9))
    if shape == 0:
        return f"list[{sub()}]"
    if shape == 1:
        return f"dict[str, {sub()}]"
    if shape == 2:
        return f"dict[{sub()}, {sub()}]"
    if shape == 3:
        return f"tuple[{sub()}, ...]" if scope.modern else f"tuple[{sub()}]"
    if shape == 4:
        return f"tuple[{', '.join(several(1, 3))}]"
    if shape == 5:
        count = draw(st.integers(0 if scope.broken else 1, 4))
        literals = [draw(literal_values) for _ in range(count)]
        return f"Literal[{', '.join(literals)}]"
    if shape == 6:
        return f"{sub()} | None"
    if shape == 7:
        return " | ".join(several(2, 3))
    if shape == 8:
        return f"Optional[{sub()}]"
    if shape == 9:
        return f"list[{sub()}, {sub()}]"
    if shape == 10:
        return "list[]"
    return f"{leaf}[...]"


#: Well-formed type / constraint combinations, used at chaos level 0.
_FITTING: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("str", ("min_length=1", "max_length=200", 'pattern="^[a-z]+$"', 'format="markdown"')),
    ("int", ("ge=0", "le=100", "gt=-5", "lt=10")),
    ("float", ("ge=0.0", "le=1.0")),
    ("bool", ()),
    ("list[str]", ("min_items=1", "max_items=5")),
    ("dict[str, float]", ("max_items=10",)),
    ("str | None", ("max_length=50",)),
    ("list[int] | None", ()),
    ('Literal["yes", "no", 1, True]', ()),
    ("list[list[dict[str, int]]]", ()),
)
_FITTING_MODERN = (
    *_FITTING,
    ("tuple[int, ...]", ("min_items=1",)),
    ("tuple[str, float, bool]", ()),
    ("date", ()),
    ("datetime | None", ()),
    ("Image", ()),
    ("list[Image] | None", ("max_items=3",)),
)
_CONSTRAINT_NAMES = (
    "ge", "gt", "le", "lt", "min_length", "max_length", "pattern", "min_items", "max_items",
    "prefix", "format", "multiple_of", "strict", "description", "alias", "default",
)  # fmt: skip
_PATTERNS = ('"^[a-z]+$"', '"["', '"(?P<x"', '"\\\\d+"', '"(a|b)*c"', '""', '"(?i)x"')


#: Defaults that fit some type or other: strings, dates, images, numbers, lists, constants.
_PLAUSIBLE_DEFAULTS = (
    '""', '"a"', '"2024-01-31"', '"2024-01-31T12:30:00"', '"2024-01-31T12:30:00+02:00"',
    '"https://example.com/cat.png"', '"data:image/png;base64,iVBORw0KGgo="', '"yes"',
    "[]", "[1, 2]", '["a", "b"]', "[[]]", "[1.5, true]", "0", "1", "-1", "0.5", "1e999",
    "99999999999999999999999999", "True", "False", "None",
)  # fmt: skip
_TWIST_OPTIONS = (
    "ge", "gt", "le", "lt", "min_length", "max_length", "min_items", "max_items", "prefix",
)  # fmt: skip
_TWIST_OPTION_VALUES = ("0", "1", "-1", "0.5", "2.5", "-0.5", "1e-9", "100", '"x"', "True")


def _twisted_slot(draw: st.DrawFn, scope: _Scope, name: str) -> str:
    """A slot of a well-formed program, with unusual but plausible parts.

    Any well-formed type, loosely fitting constraints, a default that may fit: such
    programs often pass the checks, and test the code generation behind them.
    """
    parts = [f"{name}:", _type(draw, scope)]
    if draw(st.booleans()):
        options = [
            f"{_choice(draw, _TWIST_OPTIONS)}={_choice(draw, _TWIST_OPTION_VALUES)}"
            for _ in range(draw(st.integers(1, 2)))
        ]
        parts.append(f"({', '.join(options)})")
    parts.append(draw(sig_strings))
    if draw(st.integers(0, 3)):
        default = _choice(draw, [*_PLAUSIBLE_DEFAULTS, *scope.enum_values])
        parts.append(f"= {default}")
    return " ".join(parts)


def _fitting_slot(draw: st.DrawFn, scope: _Scope, name: str) -> str:
    if draw(st.integers(0, 9)) == 0:
        return _twisted_slot(draw, scope, name)
    if scope.types and draw(st.integers(0, 2)) == 0:
        return f"{name}: {_choice(draw, scope.types)}"
    type_, fitting = _choice(draw, _FITTING_MODERN if scope.modern else _FITTING)
    parts = [f"{name}:", type_]
    options = sorted(draw(st.sets(st.sampled_from(fitting)))) if fitting else []
    if draw(st.integers(0, 3)) == 0:
        options.append("prefix=" + draw(sig_strings))
    if options:
        parts.append(f"({', '.join(options)})")
    if draw(st.booleans()):
        parts.append(draw(sig_strings))
    if "None" in type_ and draw(st.booleans()):
        parts.append("= None")
    return " ".join(parts)


def _deeply_nested(draw: st.DrawFn, opening: str, inner: str, closing: str) -> str:
    depth = draw(st.integers(50, 1500))
    return opening * depth + inner + closing * depth


def _typed_slot(draw: st.DrawFn, scope: _Scope) -> str:
    """``name: type (options) "description" = default``: a field, class attribute or tool argument."""
    name = _name(draw, scope)
    if scope.chaos == 0:
        return _fitting_slot(draw, scope, name)
    if scope.broken and draw(st.integers(0, 30)) == 0:  # nesting deeper than any recursion limit
        type_ = _deeply_nested(draw, "list[", "str", "]")
        default = _deeply_nested(draw, "[", "", "]")
        return f"{name}: {type_} = {default}"
    parts = [f"{name}:", _type(draw, scope)]
    any_value = broken_values if scope.broken else values
    if draw(st.integers(0, 2)) == 0:
        options = []
        for _ in range(draw(st.integers(0, 3))):
            option = _choice(draw, _CONSTRAINT_NAMES)
            value = _choice(draw, _PATTERNS) if option == "pattern" else draw(any_value)
            options.append(f"{option}={value}")
        trailing = "," if draw(st.booleans()) else ""
        parts.append(f"({', '.join(options)}{trailing})")
    if draw(st.booleans()):
        broken = scope.broken and draw(st.integers(0, 4)) == 0
        parts.append(draw(broken_strings if broken else sig_strings))
    if draw(st.integers(0, 3)) == 0:
        parts.append("= " + draw(any_value))
    return " ".join(parts)


def _doc(draw: st.DrawFn, scope: _Scope) -> str:
    """An optional docstring, or a one-line string in its place."""
    if not draw(st.booleans()):
        return ""
    if draw(st.integers(0, 3)) == 0:
        return draw(broken_strings if scope.broken and draw(st.booleans()) else sig_strings)
    return sig_docstring(draw(prose), raw=scope.broken and draw(st.booleans()))


def _signature(draw: st.DrawFn, scope: _Scope) -> str:
    name = _name(draw, scope, capital=True)
    inputs = draw(st.integers(0, 4))
    outputs = draw(st.integers(1 if scope.chaos == 0 else 0, 4))
    fields = [f"{d} {_typed_slot(draw, scope)}" for d in ["in"] * inputs + ["out"] * outputs]
    if scope.chaos:
        fields = draw(st.permutations(fields))
    scope.signatures.append(name)
    body = "".join(f"\n    {line}" for line in fields)
    return f"signature {name} {{\n    {_doc(draw, scope)}{body}\n}}"


_PREDICTOR_KINDS = ("predict", "chain_of_thought", "react", "program_of_thought", "Predict", "x")
_PREDICTOR_OPTIONS = (
    'adapter="json"',
    'adapter="chat"',
    'adapter="xml"',
    "adapter=json",
    "adapter=1",
    "max_iters=3",
    "max_iters=-1",
    "temperature=0.5",
    "n=99999999999999999999",
)


def _predictor(draw: st.DrawFn, scope: _Scope) -> str:
    name = _name(draw, scope, capital=True)
    if scope.chaos == 0:
        kind = _choice(draw, ("predict", "chain_of_thought"))
        adapter = _choice(draw, ("", ', adapter="json"', ', adapter="chat"'))
        return f"predictor {name} = {kind}({_choice(draw, scope.signatures)}{adapter})"
    args = []
    for _ in range(draw(st.integers(0, 3))):
        roll = draw(st.integers(0, 9))
        if roll < 4:
            args.append(_choice(draw, scope.signatures or ["Missing"]))
        elif roll < 7:
            args.append(_choice(draw, _PREDICTOR_OPTIONS))
        elif roll < 9:
            args.append("tools=[" + ", ".join(scope.tools) + "]")
        else:
            args.append(draw(plain_names))
    return f"predictor {name} = {_choice(draw, _PREDICTOR_KINDS)}({', '.join(args)})"


def _enum(draw: st.DrawFn, scope: _Scope) -> str:
    name = _name(draw, scope, capital=True)
    members = []
    for _ in range(draw(st.integers(0 if scope.chaos else 1, 5))):
        member = _name(draw, scope)
        scope.enum_values.append(sig_string(member))
        if draw(st.booleans()):
            wire = draw(sig_strings)
            scope.enum_values.append(wire)
            member += " = " + wire
        if draw(st.booleans()):
            member += " " + draw(sig_strings)
        members.append(member)
    scope.types.append(name)
    scope.exported.append(name)
    body = "".join(f"\n    {member}" for member in members)
    return f"enum {name} {{ {_doc(draw, scope)}{body}\n}}"


def _class(draw: st.DrawFn, scope: _Scope) -> str:
    name = _name(draw, scope, capital=True)
    if scope.chaos:
        scope.types.append(name)  # classes may refer to themselves, in any odd way
    attributes = [_typed_slot(draw, scope) for _ in range(draw(st.integers(0, 4)))]
    if not scope.chaos:
        if draw(st.integers(0, 3)) == 0:
            attributes.append(f"{_name(draw, scope)}: list[{name}] = []")  # a tree
        scope.types.append(name)
    scope.exported.append(name)
    body = "".join(f"\n    {attribute}" for attribute in attributes)
    return f"class {name} {{\n    {_doc(draw, scope)}{body}\n}}"


def _tool(draw: st.DrawFn, scope: _Scope) -> str:
    name = _name(draw, scope)
    arguments = ", ".join(_typed_slot(draw, scope) for _ in range(draw(st.integers(0, 3))))
    returns = _type(draw, scope) if scope.chaos else _choice(draw, ("str", "list[str]", "int"))
    description = " " + draw(sig_strings) if draw(st.booleans()) else ""
    scope.tools.append(name)
    return f"tool {name}({arguments}) -> {returns}{description}"


_Declaration = Callable[[st.DrawFn, _Scope], str]
_MODERN: tuple[_Declaration, ...] = (_signature, _predictor, _enum, _class, _tool)
_ORIGINAL: tuple[_Declaration, ...] = (_signature, _predictor)
_SEPARATORS = ("\n\n", "\n", " ", "\t", "\n# a comment\n", "\r\n", "\f", "\n#\n\n\n")


@st.composite
def sig_program(
    draw: st.DrawFn,
    imports: tuple[tuple[str, tuple[str, ...]], ...] = (),
    chaos: int | None = None,
    modern: bool | None = None,
) -> tuple[str, tuple[str, ...]]:
    """A generated `.sig` file and the names it declares that other files could import.

    ``imports`` lists ``(dotted module, names it declares)`` for the other files of a
    multi-file program; a modern program imports some of those names and uses them as
    types. Unless ``modern`` is given, half of the programs stick to the original language
    (signatures and predictors, no imports). ``chaos`` is drawn unless given.
    """
    if chaos is None:
        chaos = draw(st.integers(0, 3))
    if modern is None:
        modern = draw(st.booleans())
    lines: list[str] = []
    imported: list[str] = []
    for module, names in imports if modern else ():
        if not draw(st.booleans()):
            continue
        chosen = sorted(draw(st.sets(st.sampled_from(names), min_size=1))) if names else []
        if chaos and (not chosen or draw(st.integers(0, 3)) == 0):
            chosen.append(draw(plain_names))  # a name the module does not declare
        if chosen:
            lines.append(f"from {module} import {', '.join(chosen)}")
            imported.extend(chosen)
    if modern and chaos > 1 and draw(st.integers(0, 5)) == 0:
        lines.append(f"from {draw(plain_names)} import {draw(plain_names)}")
    scope = _Scope(chaos, imported, modern=modern)
    if draw(st.booleans()):
        lines.insert(0, sig_docstring(draw(prose)))
    kinds: list[_Declaration]
    if chaos == 0:
        # Well-formed declarations in a sensible order; in a modern program, an enum and a
        # class come first and fields may use them.
        kinds = [_signature] * draw(st.integers(0, 3))
        kinds += [_predictor] * (draw(st.integers(0, 2)) if kinds else 0)
        if modern:
            kinds = [_enum, _class, _tool, *kinds]
    else:
        kinds = draw(st.lists(st.sampled_from(_MODERN if modern else _ORIGINAL), max_size=6))
        kinds.sort(key=lambda kind: kind is _predictor)  # predictors refer to signatures
    lines.extend(make(draw, scope) for make in kinds)
    separator = "\n\n" if chaos < 2 else _choice(draw, _SEPARATORS)
    ending = _choice(draw, ("\n", "", "\n\n"))
    return separator.join(lines) + ending, tuple(scope.exported)


def generated_files() -> st.SearchStrategy[SourceFiles]:
    return sig_program().map(lambda program: {"m.sig": program[0]})


_LAYOUTS = (
    ("a.sig", "b.sig"),
    ("common.sig", "qa.sig"),
    ("a.sig", "b.sig", "c.sig"),
    ("a.sig", "pkg/b.sig"),
    ("pkg/a.sig", "pkg/b.sig", "main.sig"),
    ("common.sig", "pkg/common.sig"),
    ("typing.sig", "enum.sig", "pydantic.sig"),  # module names the generated code imports
)
_BAD_LAYOUTS = (
    ("a.sig", "a/b.sig"),  # a module and a package of the same name: E002
    ("class.sig", "ok.sig"),  # not a module name: E002
)


@st.composite
def multi_file_programs(draw: st.DrawFn) -> SourceFiles:
    """2-3 generated files; later files import (some of) what earlier ones declare.

    Sometimes the first file also imports from the last one, closing an import cycle, and
    sometimes the file names cannot be module names.
    """
    layout = _choice(draw, _BAD_LAYOUTS if draw(st.integers(0, 9)) == 0 else _LAYOUTS)
    # One level for all files, else a whole project would almost never be well-formed.
    chaos = _choice(draw, (0, 0, 1, 2, 3))
    files: SourceFiles = {}
    declared: list[tuple[str, tuple[str, ...]]] = []
    for path in layout:
        modern = draw(st.integers(0, 3)) > 0  # imports need the newer syntax
        text, names = draw(sig_program(imports=tuple(declared), chaos=chaos, modern=modern))
        files[path] = text
        declared.append((path.removesuffix(".sig").replace("/", "."), names))
    if chaos and draw(st.integers(0, 4)) == 0:  # a cycle is an error: not in a clean project
        last_module, last_names = declared[-1]
        name = _choice(draw, last_names) if last_names else draw(plain_names)
        files[layout[0]] = f"{files[layout[0]]!s}\nfrom {last_module} import {name}\n"
    return files


# ------------------------------------------------------------------ the property

HEADER = "# Generated by sigforge"
_CODE = re.compile(r"[A-Z]\d{3,}")


@dataclass(frozen=True)
class KnownCrash:
    """A crash of the compiler that is reported and not fixed yet.

    Each one is pinned by a strict xfail test in tests/test_property.py; the property tests
    set inputs that hit it aside (so the suite stays green), and bench/fuzz_compiler.py
    counts them and goes on looking for new ones. Remove the entry once it is fixed.
    """

    name: str
    exception: str  # the exception's class name
    message: str  # a part of its message
    functions: tuple[str, ...]  # the traceback passes through one of these functions


#: None at the moment: those found so far are fixed (regression tests in test_property.py).
#: An entry looks like
#: ``KnownCrash("image-default", "TypeError", "no literal for Image", ("py_literal",))``.
KNOWN_CRASHES: tuple[KnownCrash, ...] = ()


def known_crash(exc: BaseException) -> KnownCrash | None:
    """The known crash ``exc`` is an instance of, if any."""
    functions = {frame.name for frame in traceback.extract_tb(exc.__traceback__)}
    for crash in KNOWN_CRASHES:
        if (
            type(exc).__name__ == crash.exception
            and crash.message in str(exc)
            and not functions.isdisjoint(crash.functions)
        ):
            return crash
    return None


def _squash(text: str) -> str:
    """``text`` with each run of whitespace as one space (the rendering may replace some)."""
    return " ".join(text.split())


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def write_sources(src: Path, files: SourceFiles) -> None:
    """Write ``files`` below ``src``, text as UTF-8 and bytes as they are."""
    for rel, content in files.items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))


def compile_and_check(files: SourceFiles) -> CompileResult:
    """Compile ``files`` in a fresh temporary folder and assert the property; returns the result."""
    with tempfile.TemporaryDirectory(prefix="sigforge-fuzz-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        write_sources(src, files)
        result = compile_sources(src, Path(tmp) / "generated")
    check_result(files, result)
    return result


def check_diagnostic(diagnostic: Diagnostic, source: str | None) -> None:
    """A well-formed diagnostic: position, code, message, and both renderings."""
    d, span = diagnostic, diagnostic.span
    assert span.line >= 1 and span.column >= 1, f"position {span} in {d}"
    assert d.code and _CODE.fullmatch(d.code), f"bad code in {d}"
    assert d.message.strip(), f"empty message in {d}"
    assert d.severity in ("error", "warning"), d
    rendered = d.render(source)
    assert rendered.startswith(f"{d.path}:{span.line}:{span.column}: {d.severity}[{d.code}]: ")
    if source is not None:
        # the source line shown is the one the span points at (lines end at "\n" only)
        assert span.line <= source.count("\n") + 1, f"{d} points past the end of the file"
        gutter = f" {span.line} | "
        shown = [line for line in rendered.split("\n")[1:] if line.startswith(gutter)]
        expected = _squash(source.split("\n")[span.line - 1])
        assert [_squash(line[len(gutter) :]) for line in shown] == [expected], rendered
    data = json.loads(d.to_json())
    assert (data["line"], data["column"], data["code"], data["message"]) == (
        span.line,
        span.column,
        d.code,
        d.message,
    )


def check_result(files: SourceFiles, result: CompileResult) -> None:
    """The property, for a result of compiling ``files``."""
    for d in result.diagnostics:
        check_diagnostic(d, result.sources.get(d.path))
        assert any(d.path.endswith(f"/{rel}") for rel in files), f"{d} names no input file"
    # Exactly the files that are not UTF-8 get E001.
    undecodable = sorted(
        rel
        for rel, content in files.items()
        if isinstance(content, bytes) and not _is_utf8(content)
    )
    e001 = sorted(d.path for d in result.diagnostics if d.code == "E001")
    assert len(e001) == len(undecodable), (e001, undecodable)
    for rel in undecodable:
        assert any(path.endswith(rel) for path in e001), f"no E001 for {rel}: {e001}"
    if not result.ok:
        assert any(d.severity == "error" for d in result.diagnostics)
        assert result.files == {}, "files generated despite errors"
        return
    # One module per .sig file -- empty and comment-only files too -- plus the package files.
    modules = {rel.removesuffix(".sig") + ".py" for rel in files}
    packages = {"__init__.py"} | {
        f"{parent}/__init__.py"
        for rel in files
        for parent in (p.as_posix() for p in Path(rel).parents)
        if parent != "."
    }
    assert set(result.files) == modules | packages | {"py.typed"}, sorted(result.files)
    for path, text in result.files.items():
        if path.endswith(".py"):
            assert text.startswith(HEADER), f"{path} lacks the header: {text[:80]!r}"
            compile(text, path, "exec")  # syntax only: generated code is never executed here
