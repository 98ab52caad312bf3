"""Semantic checks: resolve names and types, validate constraints and defaults.

Every problem becomes a :class:`~.diagnostics.Diagnostic`; checking goes on after an
error so that one run reports all of them.
"""

from __future__ import annotations

import difflib
import keyword
import math
import re
from collections.abc import Iterable
from typing import Annotated, Any, cast

from . import ast
from .diagnostics import Diagnostic
from .model import (
    AdapterName,
    CheckedField,
    CheckedModule,
    CheckedPredictor,
    CheckedSignature,
    PredictorKind,
    PyValue,
)
from .pysource import py_literal
from .types import (
    PRIMITIVES,
    DictOf,
    ListOf,
    LiteralOf,
    LiteralScalar,
    NoneType_,
    Primitive,
    SigType,
    UnionOf,
    strip_optional,
)

PREDICTOR_KINDS: tuple[PredictorKind, ...] = ("predict", "chain_of_thought")
ADAPTERS: tuple[AdapterName, ...] = ("chat", "json")
TYPE_NAMES = (*PRIMITIVES, "list", "dict", "Literal", "None")
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

# Names the generated module itself defines or imports; user declarations may not take them.
RESERVED_MODULE_NAMES = frozenset(
    {
        "BaseModel",
        "ConfigDict",
        "Field",
        "Literal",
        "Signature",
        "FieldSpec",
        "AdapterPrompts",
        "Predict",
        "ChainOfThought",
        "check_generated_version",
        "annotations",
        # builtins the generated annotations and code refer to
        "str",
        "int",
        "float",
        "bool",
        "list",
        "dict",
        "tuple",
        "None",
        "True",
        "False",
    }
)
#: field names with a meaning in the prompt formats (the chat format's end marker)
RESERVED_FIELD_NAMES = frozenset({"completed", "self"})


def _pydantic_reserved() -> frozenset[str]:
    from pydantic import BaseModel

    return frozenset(n for n in dir(BaseModel) if not n.startswith("__"))


def _did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


class Checker:
    def __init__(self, sig_file: ast.SigFile, source: str, module: str) -> None:
        self.file = sig_file
        self.source = source
        self.module = module
        self.diagnostics: list[Diagnostic] = []
        self._reserved_fields = _pydantic_reserved() | RESERVED_FIELD_NAMES
        # Every name at the top level of the generated module: a field may not shadow one,
        # because model classes and predictors refer to them in their own scope.
        self._module_names = set(RESERVED_MODULE_NAMES)
        for decl in sig_file.declarations:
            self._module_names |= set(generated_names(decl))

    # ------------------------------------------------------------ helpers
    def error(self, span: ast.Span, code: str, message: str, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(self.file.path, span, code, message, hint))

    # ------------------------------------------------------------ entry point
    def run(self) -> CheckedModule | None:
        signatures: dict[str, CheckedSignature] = {}
        declared: dict[str, ast.Span] = {}
        for decl in self.file.declarations:
            self._check_decl_name(decl.name, decl.name_span, declared)
        self._check_generated_names()
        for decl in self.file.declarations:
            if isinstance(decl, ast.SignatureDecl):
                checked = self._signature(decl)
                if checked is not None and decl.name not in signatures:
                    signatures[decl.name] = checked
        predictors: list[CheckedPredictor] = []
        sig_names = [d.name for d in self.file.declarations if isinstance(d, ast.SignatureDecl)]
        for decl in self.file.declarations:
            if isinstance(decl, ast.PredictorDecl):
                pred = self._predictor(decl, signatures, sig_names)
                if pred is not None:
                    predictors.append(pred)
        if self.diagnostics:
            return None
        return CheckedModule(
            source=self.file.path,
            module=self.module,
            doc=self.file.doc.text if self.file.doc else None,
            signatures=tuple(signatures.values()),
            predictors=tuple(predictors),
        )

    def _check_decl_name(self, name: str, span: ast.Span, declared: dict[str, ast.Span]) -> None:
        if name in declared:
            first = declared[name]
            self.error(
                span,
                "E206",
                f"`{name}` is already declared",
                f"first declared at line {first.line}; names in one file must be unique",
            )
            return
        declared[name] = span
        if keyword.iskeyword(name):
            self.error(span, "E207", f"`{name}` is a Python keyword and cannot name a declaration")
        elif name in RESERVED_MODULE_NAMES:
            self.error(
                span,
                "E207",
                f"`{name}` is used by the generated module itself",
                "choose another name",
            )
        elif name.startswith("_"):
            self.error(span, "E207", f"`{name}`: declaration names may not start with `_`")

    def _check_generated_names(self) -> None:
        """Two declarations may not generate the same class (e.g. `A` and `AInputs`)."""
        owners: dict[str, ast.Declaration] = {}
        for decl in self.file.declarations:
            for name in generated_names(decl):
                other = owners.setdefault(name, decl)
                if other.name != decl.name:  # same-name declarations are E206
                    self.error(
                        decl.name_span,
                        "E210",
                        f"`{decl.name}` would generate a class `{name}`, which `{other.name}` "
                        f"(line {other.span.line}) also generates",
                        "rename one of them",
                    )

    # ------------------------------------------------------------ signatures
    def _signature(self, decl: ast.SignatureDecl) -> CheckedSignature | None:
        errors_before = len(self.diagnostics)
        seen: dict[str, ast.Field] = {}
        inputs: list[CheckedField] = []
        outputs: list[CheckedField] = []
        for f in decl.fields:
            if f.name in seen:
                self.error(
                    f.name_span,
                    "E204",
                    f"duplicate field `{f.name}` in signature `{decl.name}`",
                    f"first declared at line {seen[f.name].span.line}; every input and output needs its own name",
                )
                continue
            seen[f.name] = f
            checked = self._field(f)
            if checked is not None:
                (inputs if f.direction == "in" else outputs).append(checked)
        if not any(f.direction == "out" for f in decl.fields):
            self.error(
                decl.name_span,
                "E205",
                f"signature `{decl.name}` has no output fields",
                "add at least one, e.g. `out answer: str`",
            )
        if len(self.diagnostics) > errors_before:
            return None
        instructions = decl.doc.text if decl.doc else ""
        return CheckedSignature(decl.name, instructions, tuple(inputs), tuple(outputs), decl.span)

    def _field(self, f: ast.Field) -> CheckedField | None:
        errors_before = len(self.diagnostics)
        if keyword.iskeyword(f.name):
            self.error(f.name_span, "E208", f"field `{f.name}` is a Python keyword", "rename the field")
        elif f.name.startswith("_"):
            self.error(
                f.name_span, "E208", f"field `{f.name}` starts with `_`", "pydantic treats such names as private"
            )
        elif f.name in self._reserved_fields or f.name.startswith("model_"):
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
        constraints = self._constraints(f, sig_type)
        has_default = f.default is not None
        default: PyValue = None
        if f.default is not None:
            value = self._value(f.default)
            if value is not _INVALID:
                default = cast(PyValue, value)
                self._check_default(f, sig_type, constraints, default)
        if len(self.diagnostics) > errors_before:
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
        )

    # ------------------------------------------------------------ types
    def _type(self, expr: ast.TypeExpr) -> SigType | None:
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

    def _type_ref(self, ref: ast.TypeRef) -> SigType | None:
        name, args = ref.name, ref.args
        if name not in TYPE_NAMES:
            hint: str | None
            if name == "Optional":
                hint = "write `T | None` for an optional type"
            elif name in _TYPE_ALIASES:
                hint = f"did you mean `{_TYPE_ALIASES[name]}`?"
            else:
                hint = _did_you_mean(name, TYPE_NAMES)
            self.error(
                ref.name_span,
                "E201",
                f"unknown type `{name}`",
                hint or f"known types: {', '.join(TYPE_NAMES)}",
            )
            return None
        if name in PRIMITIVES or name == "None":
            if args is not None:
                self.error(ref.span, "E202", f"`{name}` takes no type arguments")
                return None
            return NoneType_() if name == "None" else Primitive(name)
        if name == "Literal":
            return self._literal(ref)
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
        resolved: list[SigType] = []
        for arg in args:
            if not isinstance(arg, ast.TypeExpr):
                self.error(arg.span, "E202", f"`{name}` takes types, not values", f"e.g. `{example}`")
                return None
            t = self._type(arg)
            if t is None:
                return None
            if isinstance(t, NoneType_):
                self.error(arg.span, "E203", "`None` alone is not a useful type here", "use `T | None`")
                return None
            resolved.append(t)
        if name == "list":
            return ListOf(resolved[0])
        if resolved[0] != Primitive("str"):
            self.error(
                args[0].span if isinstance(args[0], ast.TypeExpr) else ref.span,
                "E202",
                "dictionary keys must be `str`",
                "JSON objects only have string keys",
            )
            return None
        return DictOf(resolved[0], resolved[1])

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
                len(arg.members) == 1
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

    # ------------------------------------------------------------ constraints
    def _constraints(self, f: ast.Field, t: SigType) -> tuple[tuple[str, int | float | str], ...]:
        base = strip_optional(t)
        found: dict[str, tuple[int | float | str, ast.Option]] = {}
        for opt in f.options:
            if opt.name not in _CONSTRAINTS:
                self.error(
                    opt.name_span,
                    "E301",
                    f"unknown constraint `{opt.name}`",
                    _did_you_mean(opt.name, _CONSTRAINTS) or f"known constraints: {', '.join(_CONSTRAINTS)}",
                )
                continue
            pyname, applies = _CONSTRAINTS[opt.name]
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
        return tuple((k, found[k][0]) for k in _CONSTRAINT_ORDER if k in found)

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
    ) -> None:
        # Validate with pydantic itself (strictly: no "1" for an int), so the default is
        # checked exactly as the generated model will check it.
        from pydantic import Field, TypeAdapter, ValidationError

        assert f.default is not None
        annotation: Any = Annotated[t.annotation(), Field(**dict(constraints))]  # type: ignore[call-overload]
        try:
            TypeAdapter(annotation).validate_python(value, strict=True)
        except ValidationError as exc:
            first = exc.errors()[0]["msg"]
            self.error(
                f.default.span,
                "E307",
                f"default {py_literal(value)} does not fit `{t.source()}`: {first[0].lower()}{first[1:]}",
            )


    # ------------------------------------------------------------ predictors
    def _predictor_options(self, decl: ast.PredictorDecl) -> AdapterName | None:
        adapter: AdapterName = "chat"
        ok = True
        seen: set[str] = set()
        for opt in decl.options:
            if opt.name in seen:
                self.error(opt.span, "E404", f"option `{opt.name}` is given twice")
                ok = False
                continue
            seen.add(opt.name)
            if opt.name == "adapter":
                v = opt.value
                if isinstance(v, ast.StringValue) and v.value in ADAPTERS:
                    adapter = "json" if v.value == "json" else "chat"
                else:
                    self.error(
                        v.span, "E405", "`adapter` must be \"chat\" or \"json\"", 'e.g. `adapter="json"`'
                    )
                    ok = False
            else:
                self.error(
                    opt.name_span,
                    "E404",
                    f"unknown option `{opt.name}` for `{decl.kind}`",
                    _did_you_mean(opt.name, ["adapter"]) or "options: adapter",
                )
                ok = False
        return adapter if ok else None


    def _predictor(
        self,
        decl: ast.PredictorDecl,
        signatures: dict[str, CheckedSignature],
        sig_names: list[str],
    ) -> CheckedPredictor | None:
        ok = True
        if decl.kind not in PREDICTOR_KINDS:
            self.error(
                decl.kind_span,
                "E401",
                f"unknown predictor kind `{decl.kind}`",
                _did_you_mean(decl.kind, PREDICTOR_KINDS) or f"kinds: {', '.join(PREDICTOR_KINDS)}",
            )
            ok = False
        if len(decl.args) != 1:
            self.error(
                decl.kind_span,
                "E402",
                f"`{decl.kind}` takes exactly one signature, got {len(decl.args)}",
                f"e.g. `predictor {decl.name} = {decl.kind}(MySignature)`",
            )
            return None
        arg = decl.args[0]
        if arg.name not in sig_names:
            self.error(
                arg.span,
                "E403",
                f"unknown signature `{arg.name}`",
                _did_you_mean(arg.name, sig_names) or "declare it with `signature Name { ... }` in this file",
            )
            return None
        adapter = self._predictor_options(decl)
        sig = signatures.get(arg.name)
        if sig is None or adapter is None or not ok:
            return None  # the signature's own errors are already reported
        kind = cast(PredictorKind, decl.kind)
        if kind == "chain_of_thought" and any(
            f.name == "reasoning" for f in (*sig.inputs, *sig.outputs)
        ):
            self.error(
                arg.span,
                "E406",
                f"`chain_of_thought` adds a `reasoning` output, but `{sig.name}` already has a field `reasoning`",
                "rename that field, or use `predict`",
            )
            return None
        return CheckedPredictor(decl.name, kind, sig, adapter, decl.span)


_INVALID = object()


def generated_names(decl: ast.Declaration) -> tuple[str, ...]:
    """The top-level classes a declaration generates (the one table of derived names).

    The ``WithReasoning`` names are reserved for every signature, whether or not a
    chain_of_thought predictor uses it, so adding one never renames anything."""
    if isinstance(decl, ast.PredictorDecl):
        return (decl.name,)
    base = decl.name
    return (
        base,
        f"{base}Inputs",
        f"{base}Outputs",
        f"{base}WithReasoning",
        f"{base}WithReasoningOutputs",
    )


def _applies(applies: str, t: SigType) -> bool:
    if applies == _NUMERIC:
        return t in (Primitive("int"), Primitive("float"))
    if applies == "str":
        return t == Primitive("str")
    return isinstance(t, ListOf | DictOf)


def check(sig_file: ast.SigFile, source: str, module: str) -> tuple[CheckedModule | None, list[Diagnostic]]:
    checker = Checker(sig_file, source, module)
    result = checker.run()
    return result, checker.diagnostics
