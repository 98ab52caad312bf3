"""Semantic checks: resolve names and types, validate constraints and defaults.

Every problem becomes a :class:`~.diagnostics.Diagnostic`; checking goes on after an
error so that one run reports all of them.
"""

from __future__ import annotations

import builtins
import json
import keyword
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, cast

from sigforge.runtime.adapters.prompts import PROMPT_FORMATS

from . import ast
from .diagnostics import Diagnostic
from .extend import CALL_DISCRIMINATOR, FINISH_TOOL, added_fields
from .model import (
    AdapterName,
    AttemptKind,
    CheckedClass,
    CheckedEnum,
    CheckedEnumMember,
    CheckedField,
    CheckedImport,
    CheckedModule,
    CheckedPredictor,
    CheckedSignature,
    CheckedTool,
    PredictorKind,
    PyValue,
    ToolUse,
)
from .names import (
    MODULE_KIND_NAMES,
    RUNTIME_NAMES,
    STREAMING_NAMES,
    generated_names,
    partial_name,
    tool_class_names,
)
from .pysource import py_literal
from .pytypes import build_enum
from .types import (
    PRIMITIVES,
    DeclaredType,
    DictOf,
    ImageType,
    ListOf,
    LiteralOf,
    LiteralScalar,
    NoneType_,
    Primitive,
    SigType,
    TupleOf,
    UnionOf,
    strip_optional,
    walk,
)

PREDICTOR_KINDS: tuple[PredictorKind, ...] = (
    "predict",
    "chain_of_thought",
    "react",
    "program_of_thought",
    "multi_chain_comparison",
    "best_of_n",
    "refine",
)
#: the prompt formats a predictor may name: the runtime's (tests/test_check.py keeps the
#: ``AdapterName`` type equal to them)
ADAPTERS = cast(tuple[AdapterName, ...], tuple(PROMPT_FORMATS))
ATTEMPT_KINDS: tuple[AttemptKind, ...] = ("predict", "chain_of_thought")
#: the options each predictor kind takes (see docs/language.md, Predictors)
KIND_OPTIONS: dict[str, tuple[str, ...]] = {
    "predict": ("adapter",),
    "chain_of_thought": ("adapter",),
    "react": ("tools", "max_iters", "adapter"),
    "program_of_thought": ("max_iters", "adapter"),
    "multi_chain_comparison": ("m", "adapter"),
    "best_of_n": ("n", "module", "adapter"),
    "refine": ("n", "module", "adapter"),
}
REQUIRED_OPTIONS: dict[str, tuple[str, ...]] = {
    "react": ("tools",),
    "best_of_n": ("n",),
    "refine": ("n",),
}
#: defaults where DSPy has them: ReAct(max_iters=20), ProgramOfThought(max_iters=3),
#: MultiChainComparison(M=3); BestOfN and Refine take N without a default
DEFAULT_COUNTS: dict[tuple[str, str], int] = {
    ("react", "max_iters"): 20,
    ("program_of_thought", "max_iters"): 3,
    ("multi_chain_comparison", "m"): 3,
}
#: the largest max_iters, m or n accepted (a typo like `m=300` would be a costly run)
_MAX_COUNT = 100
TYPE_NAMES = (*PRIMITIVES, "list", "dict", "tuple", "Literal", "None", "Image")
#: the types that take no arguments, by name (made once: types are immutable values)
_SIMPLE_TYPES: dict[str, SigType] = {
    **{name: Primitive(name) for name in PRIMITIVES},
    "None": NoneType_(),
    "Image": ImageType(),
}
_STR, _INT, _FLOAT = _SIMPLE_TYPES["str"], _SIMPLE_TYPES["int"], _SIMPLE_TYPES["float"]
# Names users coming from Python typing or other languages reach for.
_TYPE_ALIASES = {
    "string": "str",
    "String": "str",
    "integer": "int",
    "Integer": "int",
    "number": "float",
    "double": "float",
    "boolean": "bool",
    "Boolean": "bool",
    "List": "list",
    "Dict": "dict",
    "literal": "Literal",
    "none": "None",
    "null": "None",
    "Tuple": "tuple",
    "Date": "date",
    "DateTime": "datetime",
    "Datetime": "datetime",
    "image": "Image",
}

# Constraint -> (pydantic keyword, applies to, what the value must be)
_NUMERIC = "int and float"
_CONSTRAINTS: dict[str, tuple[str, str]] = {
    "ge": ("ge", _NUMERIC),
    "gt": ("gt", _NUMERIC),
    "le": ("le", _NUMERIC),
    "lt": ("lt", _NUMERIC),
    "min_length": ("min_length", "str"),
    "max_length": ("max_length", "str"),
    "pattern": ("pattern", "str"),
    "min_items": ("min_length", "list and dict"),
    "max_items": ("max_length", "list and dict"),
}
_CONSTRAINT_ORDER = ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern")

# Names the generated module itself defines or imports, and every builtin: user
# declarations may not take them (the generated code refers to them unqualified).
RESERVED_MODULE_NAMES = frozenset(
    {
        "BaseModel",
        "ConfigDict",
        "Field",
        "Literal",
        "Protocol",
        "StrEnum",
        "Annotated",
        "dataclass",
        "date",
        "datetime",
        "annotations",
        *RUNTIME_NAMES,
        *STREAMING_NAMES,
        *MODULE_KIND_NAMES,
        *(n for n in dir(builtins) if not n.startswith("_")),
    }
)
#: enum member names Python's ``enum`` or ``str`` give a meaning to
_RESERVED_MEMBER_NAMES = frozenset({"name", "value", "mro"} | {n for n in dir(str) if not n.startswith("_")})
#: field names with a meaning in the prompt formats (the chat format's end marker)
RESERVED_FIELD_NAMES = frozenset({"completed", "self"})


#: the public attributes of pydantic's ``BaseModel`` that do not start with ``model_`` (those
#: are all reserved): its pydantic 1 API, kept as deprecated methods through pydantic 2
#: (written out rather than read from pydantic, so that the compiler does not import it;
#: tests/test_check.py compares it with the installed pydantic)
PYDANTIC_V1_NAMES = frozenset(
    {
        "construct",
        "copy",
        "dict",
        "from_orm",
        "json",
        "parse_file",
        "parse_obj",
        "parse_raw",
        "schema",
        "schema_json",
        "update_forward_refs",
        "validate",
    }
)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    close = _close(name, list(candidates))
    return f"did you mean `{close}`?" if close else None



_D = TypeVar("_D", bound=ast.Declaration)


SymbolKind = Literal["enum", "class", "tool", "signature", "predictor"]


@dataclass(frozen=True, slots=True)
class Symbol:
    """A top-level name of a module: declared there, or imported from ``module``."""

    kind: SymbolKind
    name: str
    #: the module that declares it
    module: str
    decl: ast.Declaration


def symbol_kind(decl: ast.Declaration) -> SymbolKind:
    if isinstance(decl, ast.EnumDecl):
        return "enum"
    if isinstance(decl, ast.ClassDecl):
        return "class"
    if isinstance(decl, ast.ToolDecl):
        return "tool"
    if isinstance(decl, ast.SignatureDecl):
        return "signature"
    return "predictor"


@dataclass
class Exports:
    """What checking one module made available to the modules that import from it."""

    #: checked declarations by name (missing when the declaration had errors)
    signatures: dict[str, CheckedSignature]
    enums: dict[str, CheckedEnum]
    classes: dict[str, CheckedClass]
    tools: dict[str, CheckedTool]
    #: declared types (module, name) that the module's own fields refer to
    used_types: set[tuple[str, str]]


class Checker:
    def __init__(
        self,
        sig_file: ast.SigFile,
        source: str,
        module: str,
        *,
        imported: Mapping[str, Symbol] | None = None,
        exports: Mapping[str, Exports] | None = None,
    ) -> None:
        self.file = sig_file
        self.source = source
        self.module = module
        self.diagnostics: list[Diagnostic] = []
        #: how many of ``diagnostics`` are errors (counted as they are reported: a
        #: declaration's check compares the count before and after)
        self._error_count = 0
        #: modules already checked, for imported declarations
        self._exports = dict(exports or {})
        # Every visible top-level name: declared here first, then imported.
        self.symbols: dict[str, Symbol] = {}
        for decl in sig_file.declarations:
            self.symbols.setdefault(decl.name, Symbol(symbol_kind(decl), decl.name, module, decl))
        self._imported = dict(imported or {})
        for name, sym in self._imported.items():
            self.symbols.setdefault(name, sym)
        # Every name at the top level of the generated module: a field may not shadow one,
        # because model classes and predictors refer to them in their own scope.
        self._generated = {name: generated_names(sym.decl) for name, sym in self.symbols.items()}
        self._module_names = RESERVED_MODULE_NAMES.union(*self._generated.values())
        self.used_types: set[tuple[str, str]] = set()
        self._used_names: set[str] = set()
        self._import_spans = {n.name: n.span for imp in sig_file.imports for n in imp.names}
        self._local_enums: dict[str, CheckedEnum] = {}
        self._local_classes: dict[str, CheckedClass] = {}
        self._local_tools: dict[str, CheckedTool] = {}

    # ------------------------------------------------------------ helpers
    def error(self, span: ast.Span, code: str, message: str, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(self.file.path, span, code, message, hint))
        self._error_count += 1

    def warning(self, span: ast.Span, code: str, message: str, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(self.file.path, span, code, message, hint, "warning"))

    def _errors(self) -> int:
        return self._error_count

    @property
    def failed(self) -> bool:
        return self._errors() > 0

    # ------------------------------------------------------------ entry point
    def run(self) -> CheckedModule | None:
        declared: dict[str, ast.Span] = {}
        for imp in self.file.imports:
            for name in imp.names:
                self._check_decl_name(name.name, name.span, declared, imported=True)
        for decl in self.file.declarations:
            self._check_decl_name(decl.name, decl.name_span, declared)
        self._check_generated_names()
        enums = [e for d in self._decls(ast.EnumDecl) if (e := self._enum(d)) is not None]
        self._local_enums = {e.name: e for e in enums}
        classes = [c for d in self._decls(ast.ClassDecl) if (c := self._class(d)) is not None]
        self._local_classes = {c.name: c for c in classes}
        self._check_constructible(classes)
        tools = [t for d in self._decls(ast.ToolDecl) if (t := self._tool(d)) is not None]
        self._local_tools = {t.name: t for t in tools}
        signatures: dict[str, CheckedSignature] = {}
        for decl in self._decls(ast.SignatureDecl):
            checked = self._signature(decl)
            if checked is not None:
                signatures.setdefault(decl.name, checked)
        predictors = [
            p for d in self._decls(ast.PredictorDecl) if (p := self._predictor(d, signatures)) is not None
        ]
        self._warn_unused_imports()
        self.exports = Exports(
            signatures=signatures,
            enums={e.name: e for e in enums},
            classes={c.name: c for c in classes},
            tools={t.name: t for t in tools},
            used_types=self.used_types,
        )
        if self.failed:
            return None
        return CheckedModule(
            source=self.file.path,
            module=self.module,
            doc=self.file.doc.text if self.file.doc else None,
            signatures=tuple(signatures.values()),
            predictors=tuple(predictors),
            enums=tuple(enums),
            classes=tuple(classes),
            tools=tuple(tools),
            imports=self._imports(),
        )

    def _decls(self, kind: type[_D]) -> list[_D]:
        return [d for d in self.file.declarations if isinstance(d, kind)]

    def _check_decl_name(
        self, name: str, span: ast.Span, declared: dict[str, ast.Span], *, imported: bool = False
    ) -> None:
        if name in declared:
            first = declared[name]
            self.error(
                span,
                "E206",
                f"`{name}` is already {'imported' if name in self._imported else 'declared'}",
                f"first at line {first.line}; top-level names in one file must be unique",
            )
            return
        declared[name] = span
        if imported:
            return  # the declaring file checks the name itself
        if keyword.iskeyword(name):
            self.error(span, "E207", f"`{name}` is a Python keyword and cannot name a declaration")
        elif name in RESERVED_MODULE_NAMES:
            self.error(
                span,
                "E207",
                f"`{name}` is a Python builtin or used by the generated module itself",
                "choose another name",
            )
        elif name.startswith("_"):
            self.error(span, "E207", f"`{name}`: declaration names may not start with `_`")

    def _check_generated_names(self) -> None:
        """Two declarations may not generate the same class (e.g. `A` and `AInputs`)."""
        owners: dict[str, Symbol] = {}
        for symbol_name, sym in self.symbols.items():
            for name in self._generated[symbol_name]:
                other = owners.setdefault(name, sym)
                if other.name != sym.name:  # the same name twice is E206
                    where = (
                        f"line {other.decl.name_span.line}"
                        if other.module == self.module
                        else f"imported from `{other.module}`"
                    )
                    self.error(
                        self._span_here(sym),
                        "E210",
                        f"`{sym.name}` would generate `{name}`, which `{other.name}` ({where}) "
                        "also generates",
                        "rename one of them",
                    )

    def _span_here(self, sym: Symbol) -> ast.Span:
        """Where a symbol enters this file: its declaration, or its import."""
        if sym.module == self.module:
            return sym.decl.name_span
        return self._import_spans[sym.name]

    def _imports(self) -> tuple[CheckedImport, ...]:
        """What the generated module imports from its sibling modules, by module."""
        by_module: dict[str, list[str]] = {}
        for name, sym in sorted(self._imported.items()):
            names = by_module.setdefault(sym.module, [])
            if sym.kind == "signature":
                names += [name, f"{name}Inputs", f"{name}Outputs", partial_name(f"{name}Outputs")]
            elif sym.kind == "tool":
                names += list(tool_class_names(name))
            elif sym.kind == "class":
                names += [name, partial_name(name)]
            else:
                names.append(name)
        return tuple(CheckedImport(m, tuple(sorted(n))) for m, n in sorted(by_module.items()))

    def _warn_unused_imports(self) -> None:
        for imp in self.file.imports:
            for name in imp.names:
                if name.name in self._imported and name.name not in self._used_names:
                    self.warning(
                        name.span,
                        "W103",
                        f"`{name.name}` is imported but not used",
                        "remove it from the import",
                    )

    # ------------------------------------------------------------ enums
    def _enum(self, decl: ast.EnumDecl) -> CheckedEnum | None:
        errors_before = self._errors()
        if not decl.members:
            self.error(decl.name_span, "E212", f"enum `{decl.name}` has no values", "add at least one")
        names: dict[str, ast.EnumMember] = {}
        values: dict[str, ast.EnumMember] = {}
        members: list[CheckedEnumMember] = []
        for m in decl.members:
            value = m.value.value if m.value else m.name
            if m.name in names:
                self.error(m.name_span, "E212", f"`{m.name}` appears twice in enum `{decl.name}`")
                continue
            names[m.name] = m
            if keyword.iskeyword(m.name) or m.name.startswith("_") or m.name in _RESERVED_MEMBER_NAMES:
                self.error(
                    m.name_span,
                    "E211",
                    f"`{m.name}` cannot name an enum value in Python",
                    f'give it another name and keep the text as its value: `{m.name}_ = "{m.name}"`'
                    if not m.name.startswith("_")
                    else "enum value names may not start with `_`",
                )
            if value in values:
                self.error(
                    (m.value or m).span,
                    "E212",
                    f"value {value!r} appears twice in enum `{decl.name}`",
                    f"`{values[value].name}` (line {values[value].span.line}) has it too",
                )
                continue
            values[value] = m
            members.append(
                CheckedEnumMember(m.name, value, m.description.value if m.description else "")
            )
        if self._errors() > errors_before:
            return None
        return CheckedEnum(decl.name, decl.doc.text if decl.doc else "", tuple(members), decl.span)

    # ------------------------------------------------------------ classes and tools
    def _class(self, decl: ast.ClassDecl) -> CheckedClass | None:
        fields = self._fields(decl.fields, f"class `{decl.name}`")
        if fields is None:
            return None
        return CheckedClass(decl.name, decl.doc.text if decl.doc else "", fields, decl.span)

    def _tool(self, decl: ast.ToolDecl) -> CheckedTool | None:
        errors_before = self._errors()
        for param in decl.params:
            if param.name == CALL_DISCRIMINATOR:
                self.error(
                    param.name_span,
                    "E208",
                    f"a tool argument cannot be named `{CALL_DISCRIMINATOR}`",
                    f"the tool's call model names the tool in `{CALL_DISCRIMINATOR}`; rename the argument",
                )
        params = self._fields(decl.params, f"tool `{decl.name}`")
        returns = self._type(decl.returns)
        if self._errors() > errors_before or params is None or returns is None:
            return None
        return CheckedTool(
            decl.name, decl.description.value if decl.description else "", params, returns, decl.span
        )

    def _fields(self, fields: Iterable[ast.Field], owner: str) -> tuple[CheckedField, ...] | None:
        errors_before = self._errors()
        seen: dict[str, ast.Field] = {}
        checked: list[CheckedField] = []
        for f in fields:
            if f.name in seen:
                self.error(
                    f.name_span,
                    "E204",
                    f"duplicate field `{f.name}` in {owner}",
                    f"first declared at line {seen[f.name].span.line}; every field needs its own name",
                )
                continue
            seen[f.name] = f
            c = self._field(f)
            if c is not None:
                checked.append(c)
        if self._errors() > errors_before:
            return None
        return tuple(checked)

    def _check_constructible(self, classes: list[CheckedClass]) -> None:
        """A class whose required fields always lead back to itself can have no value."""
        local = {c.name: c for c in classes}
        ok: set[str] = set()
        changed = True
        while changed:
            changed = False
            for c in classes:
                if c.name not in ok and all(
                    f.has_default or self._has_value(f.type, ok, local) for f in c.fields
                ):
                    ok.add(c.name)
                    changed = True
        for c in classes:
            if c.name not in ok:
                self.error(
                    c.span,
                    "E214",
                    f"class `{c.name}` can never have a value: its required fields refer back to it",
                    "make the reference optional (`T | None`) or a list (`list[T]`)",
                )

    def _has_value(self, t: SigType, ok: set[str], local: Mapping[str, CheckedClass]) -> bool:
        if isinstance(t, DeclaredType):
            return t.kind == "enum" or t.module != self.module or t.name in ok
        if isinstance(t, UnionOf):
            return any(self._has_value(m, ok, local) for m in t.members)
        if isinstance(t, TupleOf) and not t.variadic:
            return all(self._has_value(i, ok, local) for i in t.items)
        return True  # lists, dicts, variadic tuples can be empty; the rest are values

    # ------------------------------------------------------------ signatures
    def _signature(self, decl: ast.SignatureDecl) -> CheckedSignature | None:
        errors_before = self._errors()
        fields = self._fields(decl.fields, f"signature `{decl.name}`")
        if not any(f.direction == "out" for f in decl.fields):
            self.error(
                decl.name_span,
                "E205",
                f"signature `{decl.name}` has no output fields",
                "add at least one, e.g. `out answer: str`",
            )
        for f in fields or ():
            if f.direction == "out" and self._contains_image(f.type, set()):
                self.error(
                    f.span,
                    "E215",
                    f"output `{f.name}` contains an `Image`",
                    "images can only be inputs; LMs answer in text",
                )
        for field in decl.fields:
            if field.direction == "out" and field.description is None:
                self.warning(
                    field.name_span,
                    "W101",
                    f"output `{field.name}` has no description",
                    'a description tells the LM what to produce: `out answer: str "A short answer"`',
                )
        if self._errors() > errors_before or fields is None:
            return None
        instructions = decl.doc.text if decl.doc else ""
        return CheckedSignature(
            decl.name,
            instructions,
            tuple(f for f in fields if f.direction == "in"),
            tuple(f for f in fields if f.direction == "out"),
            decl.span,
        )

    def _contains_image(self, t: SigType, seen: set[tuple[str, str]]) -> bool:
        for x in walk(t):
            if isinstance(x, ImageType):
                return True
            if isinstance(x, DeclaredType) and x.kind == "class" and (x.module, x.name) not in seen:
                seen.add((x.module, x.name))
                cls = self._class_of(x)
                if cls is not None and any(self._contains_image(f.type, seen) for f in cls.fields):
                    return True
        return False

    def _class_of(self, t: DeclaredType) -> CheckedClass | None:
        if t.module == self.module:
            return self._local_classes.get(t.name)
        other = self._exports.get(t.module)
        return other.classes.get(t.name) if other else None

    def enum_of(self, module: str, name: str) -> CheckedEnum | None:
        if module == self.module:
            return self._local_enums.get(name)
        other = self._exports.get(module)
        return other.enums.get(name) if other else None

    def is_class(self, module: str, name: str) -> bool:
        sym = self.symbols.get(name)
        return sym is not None and sym.module == module and sym.kind == "class"

    def _field(self, f: ast.Field) -> CheckedField | None:
        errors_before = self._errors()
        if keyword.iskeyword(f.name):
            self.error(f.name_span, "E208", f"field `{f.name}` is a Python keyword", "rename the field")
        elif f.name.startswith("_"):
            self.error(
                f.name_span, "E208", f"field `{f.name}` starts with `_`", "pydantic treats such names as private"
            )
        elif f.name in RESERVED_FIELD_NAMES or f.name in PYDANTIC_V1_NAMES or f.name.startswith("model_"):
            self.error(
                f.name_span,
                "E208",
                f"field name `{f.name}` is reserved by the generated pydantic models",
                "rename the field (names starting with `model_` and BaseModel attributes are reserved)",
            )
        elif f.name in self._module_names:
            self.error(
                f.name_span,
                "E208",
                f"field name `{f.name}` would shadow a name of the generated module",
                "rename the field; type names, builtins and generated class names are reserved",
            )
        sig_type = self._type(f.type)
        if sig_type is None:
            return None
        if isinstance(sig_type, NoneType_):
            self.error(f.type.span, "E203", "a field cannot have type `None`", "use `T | None` for optional values")
            return None
        constraints, prefix, fmt = self._constraints(f, sig_type)
        has_default = f.default is not None
        default: Any = None
        if f.default is not None:
            value = self._value(f.default)
            if value is not _INVALID:
                default = self._check_default(f, sig_type, constraints, cast(PyValue, value))
        if self._errors() > errors_before:
            return None
        return CheckedField(
            f.name,
            f.direction,
            sig_type,
            f.description.value if f.description else "",
            constraints,
            has_default,
            default,
            f.span,
            prefix=prefix,
            format=fmt,
        )

    # ------------------------------------------------------------ types
    def _type(self, expr: ast.TypeExpr) -> SigType | None:
        if len(expr.members) == 1:  # the usual case: not a union
            return self._type_ref(expr.members[0])
        members = [self._type_ref(m) for m in expr.members]
        if any(m is None for m in members):
            return None
        resolved: list[SigType] = [m for m in members if m is not None]
        if len(resolved) == 1:
            return resolved[0]
        unique: list[SigType] = []
        for m, ref in zip(resolved, expr.members, strict=True):
            if m in unique:
                self.error(ref.span, "E209", f"`{m.source()}` appears twice in this union")
                return None
            unique.append(m)
        # None goes last, so `None | str` and `str | None` generate the same code.
        unique.sort(key=lambda m: isinstance(m, NoneType_))
        return UnionOf(tuple(unique))

    def _declared_type(self, ref: ast.TypeRef) -> SigType | None:
        sym = self.symbols[ref.name]
        if sym.kind not in ("enum", "class"):
            self.error(
                ref.name_span,
                "E201",
                f"`{ref.name}` is a {sym.kind}, not a type",
                "field types are built-in types, enums and classes",
            )
            return None
        if ref.args is not None:
            self.error(ref.span, "E202", f"`{ref.name}` takes no type arguments")
            return None
        self._used_names.add(ref.name)
        self.used_types.add((sym.module, sym.name))
        kind: Literal["enum", "class"] = "enum" if sym.kind == "enum" else "class"
        return DeclaredType(kind, sym.name, sym.module)

    def _unknown_type(self, ref: ast.TypeRef) -> None:
        name = ref.name
        hint: str | None
        declared = [n for n, s in self.symbols.items() if s.kind in ("enum", "class")]
        if name == "Optional":
            hint = "write `T | None` for an optional type"
        else:
            known = _TYPE_ALIASES.get(name) or _close(name, [*TYPE_NAMES, *declared])
            if known is not None:
                # show the whole type as it would read, arguments included: `list[str]`
                text = self._text(ref.span)
                hint = f"did you mean `{known}{text[len(name):]}`?"
            else:
                hint = None
        self.error(
            ref.name_span,
            "E201",
            f"unknown type `{name}`",
            hint or f"known types: {', '.join(TYPE_NAMES)}; declare others with `class` or `enum`",
        )

    def _text(self, span: ast.Span) -> str:
        lines = self.source.splitlines()
        if span.line != span.end_line or span.line > len(lines):
            return ""
        return lines[span.line - 1][span.column - 1 : span.end_column - 1]

    def _type_ref(self, ref: ast.TypeRef) -> SigType | None:
        name, args = ref.name, ref.args
        simple = _SIMPLE_TYPES.get(name)
        if simple is not None:
            if args is not None:
                self.error(ref.span, "E202", f"`{name}` takes no type arguments")
                return None
            return simple
        if name not in TYPE_NAMES:
            if name in self.symbols:
                return self._declared_type(ref)
            self._unknown_type(ref)
            return None
        if name == "Literal":
            return self._literal(ref)
        if name == "tuple":
            return self._tuple(ref)
        expected = 1 if name == "list" else 2
        example = "list[str]" if name == "list" else "dict[str, int]"
        if args is None or len(args) != expected:
            self.error(
                ref.span,
                "E202",
                f"`{name}` takes {expected} type argument{'s' if expected > 1 else ''}",
                f"e.g. `{example}`",
            )
            return None
        resolved = self._type_args(name, args, example)
        if resolved is None:
            return None
        if name == "list":
            return ListOf(resolved[0])
        key = resolved[0]
        if not (key in (_STR, _INT) or _is_enum(key)):
            self.error(
                args[0].span,
                "E202",
                "dictionary keys must be `str`, `int` or an enum",
                "JSON objects have text keys; `int` and enum keys are converted from it",
            )
            return None
        return DictOf(key, resolved[1])

    def _type_args(
        self, name: str, args: Iterable[ast.TypeExpr | ast.LiteralArg | ast.EllipsisArg], example: str
    ) -> list[SigType] | None:
        resolved: list[SigType] = []
        for arg in args:
            if not isinstance(arg, ast.TypeExpr):
                what = "`...`" if isinstance(arg, ast.EllipsisArg) else "values"
                self.error(arg.span, "E202", f"`{name}` takes types, not {what}", f"e.g. `{example}`")
                return None
            t = self._type(arg)
            if t is None:
                return None
            if isinstance(t, NoneType_):
                self.error(arg.span, "E203", "`None` alone is not a useful type here", "use `T | None`")
                return None
            resolved.append(t)
        return resolved

    def _tuple(self, ref: ast.TypeRef) -> SigType | None:
        args = ref.args or ()
        example = "e.g. `tuple[str, int]` or `tuple[float, ...]`"
        if not args:
            self.error(ref.span, "E202", "`tuple` needs item types", example)
            return None
        variadic = isinstance(args[-1], ast.EllipsisArg)
        dots = [a for a in args if isinstance(a, ast.EllipsisArg)]
        if dots and not (variadic and len(args) == 2):
            self.error(
                dots[0].span, "E202", "`...` follows exactly one type: `tuple[T, ...]`", example
            )
            return None
        items = self._type_args("tuple", args[:-1] if variadic else args, "tuple[str, int]")
        if items is None:
            return None
        return TupleOf(tuple(items), variadic)

    def _literal(self, ref: ast.TypeRef) -> SigType | None:
        if not ref.args:
            self.error(ref.span, "E202", "`Literal` needs at least one value", 'e.g. `Literal["yes", "no"]`')
            return None
        values: list[LiteralScalar] = []
        for arg in ref.args:
            value: LiteralScalar
            if isinstance(arg, ast.StringValue | ast.NumberValue):
                value = arg.value
            elif (
                isinstance(arg, ast.TypeExpr)
                and len(arg.members) == 1
                and arg.members[0].args is None
                and arg.members[0].name in ("True", "False")
            ):
                value = arg.members[0].name == "True"
            else:
                self.error(
                    arg.span,
                    "E202",
                    "`Literal` takes strings, numbers, True or False",
                    'quote text values, e.g. `Literal["yes", "no"]`',
                )
                return None
            if isinstance(value, float):
                self.error(arg.span, "E202", "`Literal` values cannot be floats")
                return None
            if any(type(v) is type(value) and v == value for v in values):
                self.error(arg.span, "E209", f"`{value!r}` appears twice in this Literal")
                return None
            values.append(value)
        return LiteralOf(tuple(values))


    # ------------------------------------------------------------ constraints and options
    def _constraints(
        self, f: ast.Field, t: SigType
    ) -> tuple[tuple[tuple[str, int | float | str], ...], str | None, str]:
        """The field's constraints (pydantic keywords, in a stable order), prefix and format."""
        if not f.options:  # the usual case
            return (), None, ""
        base = strip_optional(t)
        found: dict[str, tuple[int | float | str, ast.Option]] = {}
        texts: dict[str, str] = {}
        for opt in f.options:
            if opt.name in _TEXT_OPTIONS:
                if opt.name in texts:
                    self.error(opt.span, "E304", f"option `{opt.name}` is given twice")
                elif not isinstance(opt.value, ast.StringValue):
                    self.error(opt.value.span, "E303", f"`{opt.name}` takes text in quotes")
                else:
                    texts[opt.name] = opt.value.value
                continue
            if opt.name not in _CONSTRAINTS:
                self.error(
                    opt.name_span,
                    "E301",
                    f"unknown constraint `{opt.name}`",
                    did_you_mean(opt.name, [*_CONSTRAINTS, *_TEXT_OPTIONS])
                    or f"known: {', '.join([*_CONSTRAINTS, *_TEXT_OPTIONS])}",
                )
                continue
            pyname, applies = _CONSTRAINTS[opt.name]
            if base == _INT and applies == _NUMERIC and isinstance(opt.value, ast.NumberValue) and not isinstance(opt.value.value, int):
                self.error(
                    opt.value.span,
                    "E303",
                    f"`{opt.name}` on an `int` field takes a whole number",
                    f"e.g. `{opt.name}={math.ceil(opt.value.value) if opt.name in ('ge', 'gt') else math.floor(opt.value.value)}`"
                    if math.isfinite(opt.value.value)
                    else None,
                )
                continue
            if not _applies(applies, base):
                self.error(
                    opt.span,
                    "E302",
                    f"`{opt.name}` does not apply to a `{t.source()}` field",
                    f"`{opt.name}` applies to {applies} fields",
                )
                continue
            value = self._constraint_value(opt, applies)
            if value is None:
                continue
            if pyname in found:
                self.error(opt.span, "E304", f"constraint `{opt.name}` is given twice")
                continue
            found[pyname] = (value, opt)
        self._check_bounds(found)
        constraints = tuple((k, found[k][0]) for k in _CONSTRAINT_ORDER if k in found)
        return constraints, texts.get("prefix"), texts.get("format", "")

    def _constraint_value(self, opt: ast.Option, applies: str) -> int | float | str | None:
        v = opt.value
        if opt.name == "pattern":
            if not isinstance(v, ast.StringValue):
                self.error(v.span, "E303", "`pattern` takes a regular expression in quotes")
                return None
            try:
                re.compile(v.value)
            except re.error as exc:
                self.error(v.span, "E303", f"invalid regular expression: {exc}")
                return None
            return v.value
        if applies == _NUMERIC:
            if not isinstance(v, ast.NumberValue):
                self.error(v.span, "E303", f"`{opt.name}` takes a number")
                return None
            return v.value if self._finite(v) else None
        if not isinstance(v, ast.NumberValue) or not isinstance(v.value, int) or v.value < 0:
            self.error(v.span, "E303", f"`{opt.name}` takes a whole number of at least 0")
            return None
        if v.value >= 2**63:  # pydantic's length bounds are 64-bit
            self.error(v.span, "E303", f"`{opt.name}` is too large", "lengths stay below 2**63")
            return None
        return v.value

    def _check_bounds(self, found: dict[str, tuple[int | float | str, ast.Option]]) -> None:
        pairs = (("ge", "le", False), ("gt", "le", True), ("ge", "lt", True), ("gt", "lt", True))
        for lo, hi, strict in pairs:
            if lo in found and hi in found:
                low, high = found[lo][0], found[hi][0]
                assert isinstance(low, int | float) and isinstance(high, int | float)
                if low > high or (strict and low >= high):
                    self.error(
                        found[lo][1].span,
                        "E305",
                        f"no value satisfies {found[lo][1].name}={low} and {found[hi][1].name}={high}",
                        "the lower bound must be below the upper bound",
                    )
        if "min_length" in found and "max_length" in found:
            low, high = found["min_length"][0], found["max_length"][0]
            assert isinstance(low, int) and isinstance(high, int)
            if low > high:
                opt = found["min_length"][1]
                self.error(
                    opt.span,
                    "E305",
                    f"{opt.name}={low} is greater than {found['max_length'][1].name}={high}",
                )

    # ------------------------------------------------------------ values and defaults
    def _value(self, v: ast.Value) -> PyValue | object:
        if isinstance(v, ast.NumberValue) and not self._finite(v):
            return _INVALID
        if isinstance(v, ast.StringValue | ast.NumberValue):
            return v.value
        if isinstance(v, ast.NameValue):
            consts: dict[str, PyValue] = {"True": True, "False": False, "None": None}
            if v.name in consts:
                return consts[v.name]
            self.error(
                v.span,
                "E306",
                f"unknown value `{v.name}`",
                f'text values need quotes: "{v.name}"; constants are True, False and None',
            )
            return _INVALID
        items = [self._value(i) for i in v.items]
        if any(i is _INVALID for i in items):
            return _INVALID
        return items

    def _finite(self, v: ast.NumberValue) -> bool:
        if isinstance(v.value, float) and not math.isfinite(v.value):
            self.error(v.span, "E303", f"`{v.text}` is too large to be a number here")
            return False
        return True

    def _check_default(
        self,
        f: ast.Field,
        t: SigType,
        constraints: tuple[tuple[str, int | float | str], ...],
        value: PyValue,
    ) -> Any:
        """The default as the generated model will hold it, or None after reporting why not.

        pydantic validates it, strictly and from JSON (no "1" for an int; "low" for an enum
        value, a list for a tuple, "2024-05-01" for a date), so the default is checked
        exactly as the generated model checks data."""
        from pydantic import Field, TypeAdapter, ValidationError

        assert f.default is not None
        if value is not None and any(isinstance(x, ImageType) for x in walk(t)):
            self.error(
                f.default.span,
                "E307",
                "an `Image` field can only default to None",
                "build images in Python: `Image.from_url(...)`, `Image.from_file(...)`",
            )
            return None
        try:
            python_type = t.annotation(_DefaultTypes(self))
        except _NotChecked:
            return None  # a declared type with its own errors, reported where it is declared
        annotation: Any = Annotated[python_type, Field(**dict(constraints))]  # type: ignore[call-overload]
        try:
            return TypeAdapter(annotation).validate_json(json.dumps(value), strict=True)
        except ValidationError as exc:
            first = exc.errors()[0]["msg"]
            self.error(
                f.default.span,
                "E307",
                f"default {py_literal(value)} does not fit `{t.source()}`: {first[0].lower()}{first[1:]}",
            )
            return None

    # ------------------------------------------------------------ predictors
    def _predictor_options(
        self, decl: ast.PredictorDecl, kind: PredictorKind
    ) -> _PredictorOptions | None:
        """The options of a predictor of a known kind, checked; None after reporting errors."""
        allowed = KIND_OPTIONS[kind]
        found = _PredictorOptions()
        ok = True
        seen: set[str] = set()
        for opt in decl.options:
            if opt.name in seen:
                self.error(opt.span, "E404", f"option `{opt.name}` is given twice")
                ok = False
                continue
            seen.add(opt.name)
            if opt.name not in allowed:
                elsewhere = sorted(k for k, names in KIND_OPTIONS.items() if opt.name in names)
                self.error(
                    opt.name_span,
                    "E404",
                    f"unknown option `{opt.name}` for `{kind}`",
                    did_you_mean(opt.name, allowed)
                    or f"`{kind}` takes: {', '.join(allowed)}"
                    + (f" (`{opt.name}` is an option of {', '.join(elsewhere)})" if elsewhere else ""),
                )
                ok = False
            elif not self._predictor_option(opt, found):
                ok = False
        for name in REQUIRED_OPTIONS.get(kind, ()):
            if name not in seen:
                example = f"{name}=[search]" if name == "tools" else f"{name}=3"
                self.error(
                    decl.kind_span,
                    "E408",
                    f"`{kind}` needs the option `{name}`",
                    f"e.g. `predictor {decl.name} = {kind}({_first_arg(decl)}, {example})`",
                )
                ok = False
        return found if ok else None

    def _predictor_option(self, opt: ast.Option, found: _PredictorOptions) -> bool:
        """Check one option of a known name and store it in ``found``; False after an error."""
        v = opt.value
        if opt.name == "adapter":
            if isinstance(v, ast.StringValue) and v.value in ADAPTERS:
                found.adapter = "json" if v.value == "json" else "chat"
                return True
            self.error(v.span, "E405", '`adapter` must be "chat" or "json"', 'e.g. `adapter="json"`')
            return False
        if opt.name == "module":
            if isinstance(v, ast.StringValue) and v.value in ATTEMPT_KINDS:
                found.attempt = "chain_of_thought" if v.value == "chain_of_thought" else "predict"
                return True
            self.error(
                v.span,
                "E405",
                '`module` must be "predict" or "chain_of_thought"',
                'what each attempt runs, e.g. `module="chain_of_thought"`',
            )
            return False
        if opt.name == "tools":
            tools = self._tool_list(opt)
            if tools is None:
                return False
            found.tools = tools
            return True
        # max_iters, m, n: a whole number of at least 1
        if not isinstance(v, ast.NumberValue) or not isinstance(v.value, int) or isinstance(v.value, bool):
            self.error(v.span, "E405", f"`{opt.name}` takes a whole number", f"e.g. `{opt.name}=3`")
            return False
        if v.value < 1:
            self.error(v.span, "E405", f"`{opt.name}` must be at least 1, got {v.value}", f"e.g. `{opt.name}=3`")
            return False
        if v.value > _MAX_COUNT:
            self.error(
                v.span, "E405", f"`{opt.name}` is too large ({v.value})", f"at most {_MAX_COUNT}"
            )
            return False
        setattr(found, opt.name, v.value)
        return True

    def _tool_list(self, opt: ast.Option) -> tuple[ToolUse, ...] | None:
        """``tools=[a, b]``: every name a declared or imported tool, each once."""
        v = opt.value
        tool_names = [n for n, s in self.symbols.items() if s.kind == "tool"]
        if not isinstance(v, ast.ListValue) or not v.items:
            self.error(
                v.span,
                "E405",
                "`tools` takes a list of tool names",
                f"e.g. `tools=[{', '.join(tool_names[:2]) or 'search'}]`; declare tools with `tool name(...) -> type`",
            )
            return None
        uses: list[ToolUse] = []
        ok = True
        seen: set[str] = set()
        for item in v.items:
            if not isinstance(item, ast.NameValue):
                self.error(
                    item.span,
                    "E407",
                    "`tools` lists tool names without quotes",
                    f"e.g. `tools=[{', '.join(tool_names[:2]) or 'search'}]`",
                )
                ok = False
                continue
            name = item.name
            sym = self.symbols.get(name)
            if sym is None or sym.kind != "tool":
                self.error(
                    item.span,
                    "E407",
                    f"`{name}` is a {sym.kind}, not a tool" if sym else f"unknown tool `{name}`",
                    did_you_mean(name, tool_names)
                    or "declare it with `tool name(arg: type) -> type` or import it with "
                    "`from module import name`",
                )
                ok = False
                continue
            self._used_names.add(name)
            if name == FINISH_TOOL:
                self.error(
                    item.span,
                    "E407",
                    f"a react predictor cannot call a tool named `{FINISH_TOOL}`",
                    f"`{FINISH_TOOL}` is how the agent ends its work; rename the tool",
                )
                ok = False
                continue
            if name in seen:
                self.error(item.span, "E407", f"tool `{name}` is listed twice")
                ok = False
                continue
            seen.add(name)
            if sym.module == self.module:
                tool = self._local_tools.get(name)
            else:
                other = self._exports.get(sym.module)
                tool = other.tools.get(name) if other else None
            if tool is None:
                ok = False  # the tool's own errors are reported where it is declared
                continue
            uses.append(ToolUse(tool, sym.module))
        return tuple(uses) if ok else None

    def _predictor(
        self, decl: ast.PredictorDecl, signatures: Mapping[str, CheckedSignature]
    ) -> CheckedPredictor | None:
        known = decl.kind in PREDICTOR_KINDS
        if not known:
            self.error(
                decl.kind_span,
                "E401",
                f"unknown predictor kind `{decl.kind}`",
                did_you_mean(decl.kind, PREDICTOR_KINDS) or f"kinds: {', '.join(PREDICTOR_KINDS)}",
            )
        if len(decl.args) != 1:
            self.error(
                decl.kind_span,
                "E402",
                f"`{decl.kind}` takes exactly one signature, got {len(decl.args)}",
                f"e.g. `predictor {decl.name} = {decl.kind}(MySignature)`",
            )
            return None
        arg = decl.args[0]
        sym = self.symbols.get(arg.name)
        if sym is None or sym.kind != "signature":
            sig_names = [n for n, s in self.symbols.items() if s.kind == "signature"]
            what = f"`{arg.name}` is a {sym.kind}, not a signature" if sym else f"unknown signature `{arg.name}`"
            self.error(
                arg.span,
                "E403",
                what,
                did_you_mean(arg.name, sig_names)
                or "declare it with `signature Name { ... }` or import it with `from module import Name`",
            )
            return None
        self._used_names.add(arg.name)
        kind = cast(PredictorKind, decl.kind) if known else None
        options = self._predictor_options(decl, kind) if kind is not None else None
        if sym.module == self.module:
            sig = signatures.get(arg.name)
        else:
            other = self._exports.get(sym.module)
            sig = other.signatures.get(arg.name) if other else None
        if sig is None or options is None or kind is None:
            return None  # the signature's own errors are already reported
        if not self._added_fields_free(kind, options, sig, arg.span):
            return None
        return CheckedPredictor(
            decl.name,
            kind,
            sig,
            options.adapter,
            decl.span,
            tools=options.tools,
            max_iters=options.max_iters or DEFAULT_COUNTS.get((kind, "max_iters")),
            m=options.m or DEFAULT_COUNTS.get((kind, "m")),
            n=options.n,
            attempt=options.attempt,
        )

    def _added_fields_free(
        self, kind: PredictorKind, options: _PredictorOptions, sig: CheckedSignature, span: ast.Span
    ) -> bool:
        """E406 when the signature has a field whose name the kind adds to it."""
        added = added_fields(kind, attempt=options.attempt, m=options.m or DEFAULT_COUNTS.get((kind, "m")))
        taken = [f for f in (*sig.inputs, *sig.outputs) if f.name in added]
        for f in taken:
            if kind == "chain_of_thought":
                self.error(
                    span,
                    "E406",
                    f"`chain_of_thought` adds a `reasoning` output, but `{sig.name}` already has a field `reasoning`",
                    "rename that field, or use `predict`",
                )
            else:
                self.error(
                    span,
                    "E406",
                    f"`{kind}` adds a field `{f.name}`, but `{sig.name}` already has a field `{f.name}` "
                    f"(line {f.span.line})",
                    f"rename that field; `{kind}` adds {', '.join(f'`{n}`' for n in added)}",
                )
        return not taken


@dataclass
class _PredictorOptions:
    adapter: AdapterName = "chat"
    tools: tuple[ToolUse, ...] = ()
    max_iters: int | None = None
    m: int | None = None
    n: int | None = None
    attempt: AttemptKind = "predict"


def _first_arg(decl: ast.PredictorDecl) -> str:
    return decl.args[0].name if decl.args else "MySignature"


_INVALID = object()
_TEXT_OPTIONS = ("prefix", "format")


class _NotChecked(Exception):
    pass


class _DefaultTypes:
    """Python types to validate defaults with: enums as declared; a class has no value a
    `.sig` literal can write (there are no object literals), so it stands for any object."""

    def __init__(self, checker: Checker) -> None:
        self.checker = checker

    def python_type(self, module: str, name: str) -> Any:
        enum_decl = self.checker.enum_of(module, name)
        if enum_decl is not None:
            return build_enum(enum_decl)
        if self.checker.is_class(module, name):
            return dict[str, Any]
        raise _NotChecked(f"{module}.{name}")


def _is_enum(t: SigType) -> bool:
    return isinstance(t, DeclaredType) and t.kind == "enum"


def _close(name: str, candidates: list[str]) -> str | None:
    """The candidate closest to ``name`` (also one differing only in case), if any."""
    import difflib  # only for the hint of an error: not loaded by a build without one

    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if not close:
        close = [c for c in candidates if c.lower() == name.lower()]
    return close[0] if close else None


def _applies(applies: str, t: SigType) -> bool:
    if applies == _NUMERIC:
        return t in (_INT, _FLOAT)
    if applies == "str":
        return t == _STR
    return isinstance(t, ListOf | DictOf)




def check(
    sig_file: ast.SigFile,
    source: str,
    module: str,
    *,
    imported: Mapping[str, Symbol] | None = None,
    exports: Mapping[str, Exports] | None = None,
) -> tuple[CheckedModule | None, list[Diagnostic]]:
    checker = Checker(sig_file, source, module, imported=imported, exports=exports)
    result = checker.run()
    return result, checker.diagnostics
